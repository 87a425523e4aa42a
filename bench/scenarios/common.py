"""What several scenarios share: the benchmark's task files, starting runs through the
service layer or the REST API, and reading the engine's own history back for timings.

Every time is wall-clock (``time.time()``) on this one machine: the bench process, the
cluster workers (which stamp ``Transition.at``) and daphne share the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from bench.harness import wait_until

# 10 states, 9 of them left at once by an unconditional transition: a run commits 10
# Transition rows (the start, then s1→s2 … s9→done) and calls nothing outside.
CHAIN10 = "name: chain10\nversion: 1\nstart_state: s1\nstates:\n" + "".join(
    f"  s{i}:\n    transitions:\n      - to: {f's{i + 1}' if i < 9 else 'done'}\n"
    for i in range(1, 10)) + "  done: {final: succeeded}\n"

# Parked on an event (correlated by input.key) and on a timer (input.due, epoch seconds).
PARKED = """
name: parked
version: 1
start_state: parked
states:
  parked:
    transitions:
      - to: by_event
        subscribe:
          event: go
          correlate: "{{ input.key }}"
      - to: by_timer
        wait: {until: "{{ input.due }}"}
  by_event: {final: succeeded}
  by_timer: {final: succeeded}
"""

TIMED = """
name: timed
version: 1
start_state: waiting
states:
  waiting:
    transitions:
      - to: fired
        wait: {until: "{{ input.due }}"}
  fired: {final: succeeded}
"""

# Ten states, each calling the local far end once: compared with chain10, the difference
# per state is what one HTTP instruction costs.
_CALL = '      - http: {method: POST, url: "{{ secrets.FAR }}/ping", json: {step: %d}}\n'
HTTP10 = "name: http10\nversion: 1\nstart_state: s1\nstates:\n" + "".join(
    f"  s{i}:\n    instructions:\n{_CALL % i}    transitions:\n"
    f"      - to: {f's{i + 1}' if i < 9 else 'done'}\n"
    for i in range(1, 10)) + "  done: {final: succeeded}\n"


# Hops between two states on each "go" event sent to it: one transition per event, for as
# long as events come (the dashboard's browser scenario).
RELAY = """
name: relay
version: 1
start_state: ping
states:
  ping:
    transitions:
      - to: pong
        subscribe: {event: go}
  pong:
    transitions:
      - to: ping
        subscribe: {event: go}
"""

TASKS = (CHAIN10, PARKED, TIMED, HTTP10, RELAY)


def load_tasks() -> None:
    from taskapp.services import definition_load

    for text in TASKS:
        result = definition_load(text=text, source="bench")
        assert result.status in {"loaded", "unchanged"}, (result.status, result.message)


def api_available() -> str | None:
    """None when the REST API is installed, else why not (scenarios then skip)."""
    try:
        import taskapp.api.urls  # noqa: F401
    except ImportError as exc:
        return f"not available: the REST API (taskapp.api.urls) is not there yet ({exc})"
    return None


def websocket_available() -> str | None:
    from dashboard.routing import websocket_urlpatterns

    if not websocket_urlpatterns:
        return "not available: the dashboard has no websocket yet"
    return None


def api_token() -> str:
    """A token for a superuser ``bench`` (made once per database)."""
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@example.invalid", None)
    return Token.objects.get_or_create(user=user)[0].key


class RestClient:
    """POST /api/runs/ and GET /api/runs/ with a token, one keep-alive session per thread."""

    def __init__(self, base_url: str, token: str):
        import threading

        self.base_url, self.token = base_url, token
        self._local = threading.local()

    def _session(self):
        import requests

        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.headers["Authorization"] = f"Token {self.token}"
        return self._local.session

    def start(self, task: str, input: dict | None = None) -> str:
        response = self._session().post(f"{self.base_url}/api/runs/",
                                        json={"task": task, "input": input or {}}, timeout=30)
        response.raise_for_status()
        return response.json()["id"]

    def list(self, **params: str) -> float:
        """Seconds for one GET /api/runs/ with these filters."""
        began = time.perf_counter()
        response = self._session().get(f"{self.base_url}/api/runs/", params=params, timeout=60)
        elapsed = time.perf_counter() - began
        response.raise_for_status()
        return elapsed


def service_start(task: str, input: dict | None = None) -> str:
    from taskapp.services import run_start

    return str(run_start(task=task, input=input or {})[0].pk)


def start_many(start: Callable[[int], str], count: int, threads: int = 1) -> list[str]:
    if threads == 1:
        return [start(i) for i in range(count)]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(start, range(count)))


def finished(ids: Iterable[str], timeout: float) -> bool:
    from taskapp import models

    ids = list(ids)
    return wait_until(lambda: models.Run.objects.filter(
        id__in=ids, finished_at__isnull=False).count() >= len(ids), timeout, every=0.1)


def throughput(start: Callable[[int], str], count: int, timeout: float,
               threads: int = 1) -> dict[str, float]:
    """Start ``count`` chain10 runs and wait for them: transitions committed per second
    from the first start to the last commit, end to end."""
    from django.db.models import Count, Max

    from taskapp import models

    began = time.time()
    ids = start_many(start, count, threads)
    done = finished(ids, timeout)
    rows = models.Transition.objects.filter(run_id__in=ids).aggregate(n=Count("id"),
                                                                        last=Max("at"))
    elapsed = rows["last"].timestamp() - began
    return {"transitions_per_s": rows["n"] / elapsed, "seconds": elapsed,
            "transitions": rows["n"], "unfinished": 0 if done else 1,
            "ms_per_transition": 1000 * elapsed / rows["n"]}
