"""The campaign's load: runs of four kinds started through the REST API with idempotency
keys at a bounded rate, and the events some of them wait for, sent through the API too.

A client that gets no answer, or a 5xx, retries the same request with the same key until a
deadline, as a careful client does: a run is *accepted* once any attempt got a 2xx, and the
campaign then expects exactly one run for that key, finished along its kind's path.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.harness import paced


def _chain(name: str, states: list[tuple[str, str, str]]) -> str:
    """A task whose states (name, instruction lines, transition extra) lead one to the next
    and end in ``done``; every state bumps ``data.n``, so a step committed twice shows."""
    lines = [f"name: {name}", "version: 1", f"start_state: {states[0][0]}", "states:"]
    for i, (state, instructions, extra) in enumerate(states):
        target = states[i + 1][0] if i + 1 < len(states) else "done"
        bump = '{n: 1}' if i == 0 else '{n: "{{ data.n + 1 }}"}'
        lines += [f"  {state}:", "    instructions:", f"      - set: {bump}"]
        lines += [f"      - {line}" for line in instructions.splitlines() if line]
        lines += ["    transitions:", f"      - to: {target}"]
        lines += [f"        {line}" for line in extra.splitlines() if line]
    lines.append("  done: {final: succeeded}")
    return "\n".join(lines) + "\n"


CALL = 'http: {method: POST, url: "{{ secrets.FAR }}/call", json: {run: "{{ run.id }}"}}'

# kind -> (task text, the states a run passes through in order).
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "chain": (_chain("faults_chain", [(f"s{i}", "", "") for i in range(1, 6)]),
              ("s1", "s2", "s3", "s4", "s5", "done")),
    "timer": (_chain("faults_timer", [("arm", "", 'wait: {until: "{{ input.due }}"}'),
                                      ("fired", "", "")]),
              ("arm", "fired", "done")),
    "http": (_chain("faults_http", [("first", CALL, ""), ("second", CALL, "")]),
             ("first", "second", "done")),
    "event": (_chain("faults_event", [
        ("listen", "", 'subscribe: {event: go, correlate: "{{ input.key }}"}'),
        ("heard", "", "")]), ("listen", "heard", "done")),
}
HTTP_CALLS = 2  # http instructions on a faults_http run's path

# Bad bodies go to this task, so what they might start never mixes with the load's runs.
HOSTILE_TASK = ("name: faults_hostile\nversion: 1\nstart_state: done\nstates:\n"
                "  done: {final: succeeded}\n")


def task_of(kind: str) -> str:
    return f"faults_{kind}"


def expected_path(kind: str) -> list[tuple[str, str]]:
    states = KINDS[kind][1]
    return [("", states[0]), *zip(states, states[1:], strict=False)]


@dataclass
class Accepted:
    kind: str
    key: str
    ids: set[str] = field(default_factory=set)  # every id a 2xx answered with
    statuses: list[int] = field(default_factory=list)


@dataclass
class LoadRecord:
    attempted: dict[str, str] = field(default_factory=dict)  # key -> kind
    accepted: dict[str, Accepted] = field(default_factory=dict)
    refused: list[dict] = field(default_factory=list)  # 4xx to a well-formed request
    gave_up: list[str] = field(default_factory=list)  # keys never answered with a 2xx
    retries: int = 0
    server_errors: dict[str, int] = field(default_factory=dict)  # 5xx status -> count
    samples_500: list[dict] = field(default_factory=list)  # when and where (up to 1,000)
    events_sent: int = 0
    events_gave_up: list[str] = field(default_factory=list)


class Load:
    """Starts ``count`` runs at ``rate`` per second through ``base_url`` (daphne)."""

    RETRY_FOR = 120.0  # seconds a client keeps retrying one request

    def __init__(self, base_url: str, token: str, rng: random.Random, tag: str):
        self.base_url, self.token, self.rng, self.tag = base_url, token, rng, tag
        self.record = LoadRecord()
        self.lock = threading.Lock()
        self._events: list[tuple[float, str]] = []
        self._local = threading.local()
        self._starting = True

    def _session(self):
        import requests

        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.headers["Authorization"] = f"Token {self.token}"
        return self._local.session

    def run(self, count: int, rate: float) -> None:
        """Start every run (bounded by count, rate and each request's retry deadline)."""
        plan = [(i, self.rng.choice(tuple(KINDS)), self.rng.uniform(1, 4)) for i in range(count)]
        sender = threading.Thread(target=self._send_events, daemon=True)
        sender.start()
        with ThreadPoolExecutor(8, thread_name_prefix="load") as pool:
            for i in paced(count, rate):
                pool.submit(self._start, *plan[i])
        self._starting = False
        sender.join()

    def _start(self, i: int, kind: str, delay: float) -> None:
        key = f"{self.tag}-{i}"
        task_input = {"key": key, "due": time.time() + delay}
        body = {"task": task_of(kind), "input": task_input, "idempotency_key": key}
        with self.lock:
            self.record.attempted[key] = kind
        response = self._post("/api/runs/", body, key)
        if response is None:
            return
        with self.lock:
            accepted = self.record.accepted.setdefault(key, Accepted(kind, key))
            accepted.ids.add(response.json()["id"])
            accepted.statuses.append(response.status_code)
            if kind == "event":
                heapq.heappush(self._events, (time.time() + delay, key))

    def _post(self, path: str, body: dict, key: str, gave_up: list[str] | None = None):
        """POST until a 2xx or a 4xx; None when it never got a 2xx."""
        import requests

        deadline = time.monotonic() + self.RETRY_FOR
        while time.monotonic() < deadline:
            try:
                response = self._session().post(self.base_url + path, json=body, timeout=10)
            except requests.RequestException:
                response = None
            if response is not None and response.status_code < 500:
                return self._answered(response, path, key)
            self._retrying(response, path)
            time.sleep(0.5)
        with self.lock:
            (self.record.gave_up if gave_up is None else gave_up).append(key)
        return None

    def _answered(self, response, path: str, key: str):
        if response.status_code < 300:
            return response
        with self.lock:
            self.record.refused.append({"path": path, "key": key,
                                        "status": response.status_code,
                                        "body": response.text[:300]})
        return None

    def _retrying(self, response, path: str) -> None:
        with self.lock:
            self.record.retries += 1
            if response is None:
                return
            status = str(response.status_code)
            self.record.server_errors[status] = self.record.server_errors.get(status, 0) + 1
            if status == "500" and len(self.record.samples_500) < 1000:
                self.record.samples_500.append({"path": path, "at": time.time(),
                                                "body": response.text[:300]})

    def _send_events(self) -> None:
        """Send each event run its ``go`` (deduplicated by id, so a retry is harmless)."""
        while self._starting or self._events:
            due = self._next_event()
            if due is None:
                time.sleep(0.1)
                continue
            key = due
            body = {"name": "go", "correlation": key, "id": f"evt-{key}"}
            if self._post("/api/events/", body, key, self.record.events_gave_up) is not None:
                with self.lock:
                    self.record.events_sent += 1

    def _next_event(self) -> str | None:
        with self.lock:
            if self._events and self._events[0][0] <= time.time():
                return heapq.heappop(self._events)[1]
        return None


def far_end_handler(rng: random.Random) -> Callable[[int, dict], tuple[int, object, float]]:
    """The far end answers each call after 50-300 ms: runs are held by workers long
    enough for a kill to catch some mid-call."""
    lock = threading.Lock()

    def handle(number: int, request: dict) -> tuple[int, object, float]:
        with lock:
            delay = rng.uniform(0.05, 0.3)
        return 200, {"ok": True, "call": number}, delay
    return handle
