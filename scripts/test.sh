#!/usr/bin/env bash
# The whole suite, twice where it matters:
#   1. every test on the embedded default (SQLite, ORM broker);
#   2. the tests marked `postgres` or `e2e` again with PostgreSQL as the database.
# PostgreSQL is at TEST_POSTGRES_URL (default: the local server). When it is not reachable
# the second pass is skipped with a reason, unless REQUIRE_SERVICES=1 (CI), where that fails.
# Extra arguments go to both pytest runs.
#
# The two passes run at the same time: the end-to-end tests spend most of their time waiting
# (a cluster starting, timers, brokers), so together they take little more than the longer
# one. Each pass writes to its own log (var/test-logs/pass1.log, pass2.log), printed whole,
# pass 1 then pass 2, when both have ended. Each pass gets TEST_PASS (sqlite, postgres) so
# that what tests leave behind (var/test-artifacts/<pass>/) stays apart; names on the shared
# services (queues, streams, Redis keys, the test database) are already per process. Pass 2
# keeps its own pytest cache, .pytest_cache/postgres (each pass rewrites the last-failed list
# it read at its start): rerun its failures with that -o cache_dir and --lf.
# TEST_SERIAL=1 runs them one after the other instead, printing as they go.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTEST=.venv/bin/pytest
PG_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/async_states}
LOGS=var/test-logs

# pytest exits 5 when it collected nothing: that must not pass quietly.
run_pytest() {
  "$PYTEST" "$@"; local status=$?
  if [ $status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi
  return $status
}

pg_up() { .venv/bin/python - "$PG_URL" <<'PY'
import sys, psycopg2
from urllib.parse import urlparse
url = urlparse(sys.argv[1])
psycopg2.connect(url._replace(path="/postgres").geturl(), connect_timeout=3).close()
PY
}

pass1() {
  echo "== pass 1: SQLite (the embedded default)"
  TEST_PASS=sqlite run_pytest "$@"
}

pass2() {
  echo "== pass 2: PostgreSQL ($PG_URL)"
  if pg_up 2>/dev/null; then
    TEST_PASS=postgres DATABASE_URL=$PG_URL run_pytest -m "postgres or e2e" \
      -o cache_dir=.pytest_cache/postgres "$@"
  elif [ "${REQUIRE_SERVICES:-0}" = 1 ]; then
    echo "make test: PostgreSQL is required (REQUIRE_SERVICES=1) but not reachable at $PG_URL" >&2
    return 1
  else
    echo "make test: skipping the PostgreSQL pass: nothing answers at $PG_URL"
  fi
}

# The exit status of background job $1, waiting again when a signal's trap cut the wait short.
finish() {
  local status
  wait "$1"; status=$?
  while kill -0 "$1" 2>/dev/null; do wait "$1"; status=$?; done
  return $status
}

if [ "${TEST_SERIAL:-0}" = 1 ]; then
  pass1 "$@"; first=$?
  pass2 "$@"; second=$?
else
  mkdir -p "$LOGS"
  echo "make test: both passes at once; output when both have ended ($LOGS/pass1.log, pass2.log)"
  # Job control: each pass is a process group of its own that does not ignore SIGINT (a
  # background job otherwise does), so Ctrl-C reaches pytest, which stops its subprocesses.
  set -m
  pass1 "$@" >"$LOGS/pass1.log" 2>&1 & one=$!
  pass2 "$@" >"$LOGS/pass2.log" 2>&1 & two=$!
  trap 'kill -INT -- "-$one" "-$two" 2>/dev/null' INT TERM
  finish "$one"; first=$?
  finish "$two"; second=$?
  trap - INT TERM
  set +m
  cat "$LOGS/pass1.log" "$LOGS/pass2.log"
fi

[ $first -eq 0 ] && [ $second -eq 0 ]
