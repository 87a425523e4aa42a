#!/usr/bin/env bash
# The whole suite, twice where it matters:
#   1. every test on the embedded default (SQLite, ORM broker);
#   2. the tests marked `postgres` or `e2e` again with PostgreSQL as the database.
# PostgreSQL is at TEST_POSTGRES_URL (default: the local server). When it is not reachable
# the second pass is skipped with a reason, unless REQUIRE_SERVICES=1 (CI), where that fails.
# Extra arguments go to both pytest runs.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTEST=.venv/bin/pytest
PG_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/async_states}

# pytest exits 5 when it collected nothing: that must not pass quietly.
run_pytest() {
  "$PYTEST" "$@"; local status=$?
  if [ $status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi
  return $status
}

echo "== pass 1: SQLite (the embedded default)"
run_pytest "$@"; first=$?

pg_up() { .venv/bin/python - "$PG_URL" <<'PY'
import sys, psycopg2
from urllib.parse import urlparse
url = urlparse(sys.argv[1])
psycopg2.connect(url._replace(path="/postgres").geturl(), connect_timeout=3).close()
PY
}

echo "== pass 2: PostgreSQL ($PG_URL)"
if pg_up 2>/dev/null; then
  DATABASE_URL=$PG_URL run_pytest -m "postgres or e2e" "$@"; second=$?
elif [ "${REQUIRE_SERVICES:-0}" = 1 ]; then
  echo "make test: PostgreSQL is required (REQUIRE_SERVICES=1) but not reachable at $PG_URL" >&2
  second=1
else
  echo "make test: skipping the PostgreSQL pass: nothing answers at $PG_URL"
  second=0
fi

[ $first -eq 0 ] && [ $second -eq 0 ]
