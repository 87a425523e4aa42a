#!/usr/bin/env bash
# `make run`: prepare the database, load the task files, make sure an admin login exists,
# then run the web server (daphne) and the engine (qcluster) side by side until Ctrl-C.
# If either stops on its own, the other is stopped too and the exit status is non-zero.
# Embedded by default (SQLite + django-q2's ORM broker); DATABASE_URL / REDIS_URL switch.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-8000}"
PY=.venv/bin/python
# Seconds a process gets to stop after SIGTERM before its whole process group is killed.
GRACE=10

"$PY" manage.py migrate --noinput -v0
"$PY" manage.py loadtasks || echo "warning: some task files were not loaded (see above)" >&2
"$PY" manage.py ensure_admin --port "$PORT"

# Job control: each background job gets its own process group, so a Ctrl-C in the terminal
# reaches only this script, which then stops both in order (the cluster's main process
# stops its own workers; signalling them all at once can leave it waiting on dead children).
set -m
.venv/bin/daphne -b 127.0.0.1 -p "$PORT" async_states.asgi:application &
web=$!
"$PY" manage.py qcluster &
cluster=$!
set +m

stop() {
  trap - INT TERM
  kill -TERM "$web" "$cluster" 2>/dev/null || true
  for _ in $(seq $((GRACE * 10))); do
    kill -0 "$web" 2>/dev/null || kill -0 "$cluster" 2>/dev/null || break
    sleep 0.1
  done
  # Whatever is left in either group (a wedged process, orphaned workers) is killed.
  kill -KILL -- -"$web" -"$cluster" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap 'echo; echo "Stopping..."; stop; exit 130' INT
trap 'stop; exit 143' TERM

listening() { (: >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
for _ in $(seq 150); do  # up to 30 s
  listening && break
  if ! kill -0 "$web" 2>/dev/null; then
    echo "daphne exited before listening on port $PORT (see above)" >&2; stop; exit 1
  fi
  sleep 0.2
done
listening || { echo "daphne is not listening on port $PORT after 30 s" >&2; stop; exit 1; }

cat <<MSG

Async States is running.
  Dashboard  http://127.0.0.1:$PORT/
  Admin      http://127.0.0.1:$PORT/admin/
  API docs   http://127.0.0.1:$PORT/api/docs/   (schema: /api/schema/, health: /api/health/)
Start the hello flow in another terminal:
  .venv/bin/python manage.py start_run hello --input '{"name": "Ada"}' --wait
Press Ctrl-C to stop.

MSG

status=0
wait -n "$web" "$cluster" || status=$?
if kill -0 "$web" 2>/dev/null; then gone="qcluster"; else gone="daphne"; fi
echo "$gone stopped unexpectedly (exit status $status); stopping the other." >&2
stop
exit $(( status == 0 ? 1 : status ))
