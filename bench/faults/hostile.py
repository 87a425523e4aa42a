"""The hostile inputs the campaign sends to the running web server, one case each.

Add a case by appending a ``Hostile`` to ``CASES``. The campaign sends each at a random moment
of the load and records the answer; a finding is a 5xx, no answer within
``ANSWER_SECONDS``, an error that is not the API's JSON shape (``code``/``message``), or a web
server that stops answering ``/api/health/`` afterwards.

``auth`` is who sends it: ``"user"`` (may start runs), ``"nobody"`` (signed in with no
permission at all: what anyone with an account can do), or ``"anonymous"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

ANSWER_SECONDS = 10.0


@dataclass(frozen=True)
class Hostile:
    name: str
    method: str
    path: str
    body: Callable[[], bytes] | None = None  # made when sent: some are large
    content_type: str = "application/json"
    auth: str = "user"


def _json(value: object) -> Callable[[], bytes]:
    return lambda: json.dumps(value).encode()


def _raw(text: str) -> Callable[[], bytes]:
    return lambda: text.encode("utf-8", "surrogatepass")


def _run_body(input_json: str) -> Callable[[], bytes]:
    return _raw('{"task": "faults_hostile", "input": ' + input_json + "}")


def _validate(text: str) -> Callable[[], bytes]:
    return _json({"text": text, "source": "hostile.yaml"})


def _task(extra_state_lines: str, top: str = "") -> str:
    """A task file around some hostile lines in its one state."""
    return (f"name: hostile\nversion: 1\n{top}start_state: a\nstates:\n  a:\n"
            f"{extra_state_lines}    transitions:\n      - to: done\n"
            "  done: {final: succeeded}\n")


def _laughs(levels: int) -> str:
    """Nested YAML aliases ("billion laughs"): 9**levels strings from a few hundred bytes."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\ndescription: *l{levels}\n" + _task("")


def _set(expression: str) -> str:
    return _task(f'    instructions:\n      - set: {{x: "{expression}"}}\n')


DEEP = 10_000

CASES: tuple[Hostile, ...] = (
    # POST /api/runs/ bodies
    Hostile("runs: JSON nested 10,000 deep", "POST", "/api/runs/",
            _run_body("[" * DEEP + "]" * DEEP)),
    Hostile("runs: NUL in an input string", "POST", "/api/runs/", _run_body('{"s": "a\\u0000b"}')),
    Hostile("runs: lone surrogate in input", "POST", "/api/runs/", _run_body('{"s": "\\ud800"}')),
    Hostile("runs: 5,000-digit integer in input", "POST", "/api/runs/",
            _run_body('{"n": ' + "9" * 5000 + "}")),
    Hostile("runs: version in Unicode digits", "POST", "/api/runs/",
            _json({"task": "faults_hostile", "version": "²"})),
    Hostile("runs: 10 MB body", "POST", "/api/runs/",
            _json({"task": "faults_hostile", "input": {"s": "x" * 10_000_000}})),
    Hostile("runs: not JSON at all", "POST", "/api/runs/", _raw("{\"task\": ")),
    Hostile("runs: idempotency key of 10,000 chars", "POST", "/api/runs/",
            _json({"task": "faults_hostile", "idempotency_key": "k" * 10_000})),
    # listing and paths
    Hostile("list: page_size in Unicode digits", "GET", "/api/runs/?page_size=%C2%B2"),
    Hostile("list: page_size of 5,000 digits", "GET", "/api/runs/?page_size=" + "9" * 5000),
    Hostile("list: version in Unicode digits", "GET", "/api/runs/?version=%C2%B2"),
    Hostile("path: NUL in a run id", "GET", "/api/runs/%00/"),
    # events
    Hostile("events: NUL in event data", "POST", "/api/events/",
            _json({"name": "go", "correlation": "nobody", "data": {"s": "a\u0000b"}})),
    Hostile("events: JSON nested 10,000 deep in data", "POST", "/api/events/",
            _raw('{"name": "go", "correlation": "x", "data": ' + "[" * DEEP + "]" * DEEP + "}")),
    # task texts to /api/tasks/validate/, sent by a user with no permissions
    Hostile("validate: billion laughs, 6 levels", "POST", "/api/tasks/validate/",
            _validate(_laughs(6)), auth="nobody"),
    Hostile("validate: recursive alias", "POST", "/api/tasks/validate/",
            _validate("a: &a [*a]\n" + _task("")), auth="nobody"),
    Hostile("validate: flow nesting 10,000 deep", "POST", "/api/tasks/validate/",
            _validate("x: " + "[" * DEEP + "]" * DEEP + "\n" + _task("")), auth="nobody"),
    Hostile("validate: duration 99999999999999999999", "POST", "/api/tasks/validate/",
            _validate(_task("", top="deadline: 99999999999999999999\n")), auth="nobody"),
    Hostile("validate: {{ 10**(10**8) }}", "POST", "/api/tasks/validate/",
            _validate(_set("{{ 10**(10**8) }}")), auth="nobody"),
    Hostile("validate: {{ 'x'|center(10**9) }}", "POST", "/api/tasks/validate/",
            _validate(_set("{{ 'x'|center(10**9) }}")), auth="nobody"),
    Hostile("validate: YAML body with a NUL", "POST", "/api/tasks/validate/",
            _raw("name: a\x00b\n"), content_type="application/yaml", auth="nobody"),
)
