"""The world a kept script describes, made real for the cluster: the far end's answers, the
events at the script's times (sent to the API, or published on the broker a subscription
listens to), and the task and script with their times compressed so that days of a script
take seconds of a test.

One reading of a script drives both sides: the dry run the test compares with reads the same
(compressed) script data, so the two cannot drift.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis
import yaml

from engine.expressions import render
from engine.language import format_duration, load_text, parse_duration
from engine.simulation import parse_script, script_from_data, simulate
from engine.simulation.history import Simulation
from taskapp import models
from taskapp.services import event_send, run_start
from tests.e2e.conftest import ROOT, wait_for
from tests.e2e.simcompare import route, steady
from tests.engine.brokers import REDIS_URL, amqp_publish, mqtt_publish, nats_js
from tests.grpcserver import free_port

# What a duration means decides whether it is compressed: timers (a state's timeout, a wait,
# a poll's interval and span, retry delays, the deadline) are; an attempt's own time limit
# (an instruction's or a poll's ``timeout``) is real I/O and keeps its length.
TASK_TIMERS = ("deadline", "max_global_transition_timeout")
STATE_TIMERS = ("timeout",)
POLL_TIMERS = ("every", "max_duration")
RETRY_TIMERS = {"initial_delay": "1s", "max_delay": "60s"}  # engine.language.model.RetryPolicy
_MESSAGE_BODY = re.compile(r"^\{\{\s*message\.body\.(\w+)\s*\}\}$")
_MESSAGE_HEADER = re.compile(r"^\{\{\s*message\.headers\[['\"]([\w-]+)['\"]\]\s*\}\}$")


def compressed(duration: Any, factor: float) -> str:
    """``duration`` divided by ``factor``, at least 1 ms (durations are whole milliseconds)."""
    shorter = parse_duration(duration) / factor
    return format_duration(max(shorter, timedelta(milliseconds=1)))


def _retry(retry: Any, factor: float) -> Any:
    if retry is None or retry is False:
        return retry
    policy = {"max_attempts": retry} if isinstance(retry, int) else dict(retry)
    for key, default in RETRY_TIMERS.items():
        policy[key] = compressed(policy.get(key, default), factor)
    return {**policy, "jitter": False}


def _instruction(instruction: dict, factor: float) -> None:
    if "retry" in instruction:
        instruction["retry"] = _retry(instruction["retry"], factor)


def _transition(transition: dict, factor: float) -> None:
    wait = transition.get("wait")
    if isinstance(wait, dict):  # {duration: ...} is a timer; {until: ...} a time the input names
        if "duration" in wait:
            wait["duration"] = compressed(wait["duration"], factor)
    elif wait is not None:
        transition["wait"] = compressed(wait, factor)
    poll = transition.get("poll")
    if poll:
        for key in POLL_TIMERS:
            if key in poll:
                poll[key] = compressed(poll[key], factor)
        if poll.get("backoff"):
            backoff = {} if poll["backoff"] is True else poll["backoff"]
            if "max_interval" in backoff:
                backoff["max_interval"] = compressed(backoff["max_interval"], factor)
            poll["backoff"] = {**backoff, "jitter": False}
        _instruction(poll, factor)


def compressed_task(text: str, factor: float) -> str:
    """The task with every timer divided by ``factor`` (retries written as a count get the
    default delays, divided too), and without jitter: each side would draw its own, and
    the times could not be compared (``same_story`` holds the kept script's story to it)."""
    task = yaml.safe_load(text)
    for key in TASK_TIMERS:
        if key in task:
            task[key] = compressed(task[key], factor)
    for state in task["states"].values():
        for key in STATE_TIMERS:
            if key in state:
                state[key] = compressed(state[key], factor)
        for instruction in state.get("instructions", ()):
            _instruction(instruction, factor)
        for transition in state.get("transitions", ()):
            _transition(transition, factor)
    return yaml.safe_dump(task, sort_keys=False, allow_unicode=True)


def compressed_script(script: dict, factor: float) -> dict:
    script = copy.deepcopy(script)
    for event in script.get("events", ()):
        event["at"] = compressed(event["at"], factor)
    if "until" in script:
        script["until"] = compressed(script["until"], factor)
    return script


@dataclass
class Case:
    """A kept script of a shipped task, and the same world compressed for the cluster.

    ``renames`` gives the case destinations of its own (queues, streams, tables), its own
    correlation values when two cases would share one, and the far end's URL for the
    script's stand-in; the compressed dry run reads the renamed text too."""

    task: str
    script_name: str  # the kept script's file name: <task>[.<case>].sim.yaml
    factor: float
    renames: dict[str, str] = field(default_factory=dict)

    @property
    def kept_text(self) -> str:
        return (ROOT / "taskdefs" / f"{self.task}.yaml").read_text()

    @property
    def kept_script(self) -> Path:
        return ROOT / "taskdefs" / self.script_name

    def real_text(self) -> str:
        return compressed_task(self._renamed(self.kept_text), self.factor)

    def real_script(self) -> dict:
        return compressed_script(yaml.safe_load(self._renamed(self.kept_script.read_text())),
                                 self.factor)

    def _renamed(self, text: str) -> str:
        for old, new in self.renames.items():
            text = text.replace(old, new)
        return text

    def kept_dry_run(self) -> Simulation:
        """As ``simulate --check taskdefs`` runs it."""
        return simulate(load_text(self.kept_text), parse_script(self.kept_script.read_text()))

    def real_dry_run(self) -> Simulation:
        return simulate(load_text(self.real_text()), script_from_data(self.real_script()))


def same_story(kept: Simulation, compressed_run: Simulation) -> None:
    """Compressing the times changed nothing but the times: the same path, data, attempts
    and poll records (times are compared between the compressed dry run and the cluster)."""
    assert (kept.status, kept.state) == (compressed_run.status, compressed_run.state)
    assert kept.path() == compressed_run.path()
    assert steady(kept.data) == steady(compressed_run.data)
    assert kept.attempt_counts() == compressed_run.attempt_counts()
    assert [(p.state, p.attempts, p.outcome) for p in kept.polls] == [
        (p.state, p.attempts, p.outcome) for p in compressed_run.polls]


# ------------------------------------------------------------------------------ the far end


def http_routes(far_end, text: str, script: dict) -> None:
    """The far end answers as the script's HTTP replies say: a named instruction at its URL
    (rendered from the input and the secrets, as the executor renders it), a ``calls`` rule
    at its URL (a plain URL, no glob)."""
    context = {"input": script.get("input", {}), "secrets": script.get("secrets", {})}
    urls = {}
    for name, state in _named(yaml.safe_load(text)):
        if "http" in state:
            urls[name] = render(state["http"]["url"], context)
    for key, replies in (script.get("instructions") or {}).items():
        name = key.rsplit("/", 1)[-1]
        if name in urls:
            route(far_end, _path(far_end, urls[name]), _listed(replies))
    for rule in script.get("calls", ()):
        if rule["kind"] == "http":
            route(far_end, _path(far_end, rule["url"]), _listed(rule.get("replies")
                                                                  or rule["reply"]))


def _named(task: dict):
    for state in task["states"].values():
        for instruction in state.get("instructions", ()):
            if "name" in instruction:
                yield instruction["name"], instruction


def _listed(replies: Any) -> list[dict]:
    return replies if isinstance(replies, list) else [replies]


def _path(far_end, url: str) -> str:
    assert url.startswith(far_end.url), f"{url} is not the far end's"
    return url.removeprefix(far_end.url)


# ------------------------------------------------------------------------------ the events


def sources(text: str) -> dict[str, dict]:
    """The broker source of each event name the task subscribes to from a broker."""
    found = {}
    for state in yaml.safe_load(text)["states"].values():
        for transition in state.get("transitions", ()):
            subscribe = transition.get("subscribe") or {}
            if "source" in subscribe:
                found[subscribe["event"]] = subscribe["source"]
    return found


def publish(source: dict, event: dict) -> None:
    """Publish ``event`` as the source's broker carries it: its data as the body, its
    correlation value where the source's ``correlation`` template reads it."""
    body, headers = dict(event.get("data") or {}), {}
    correlation = source["correlation"]
    if match := _MESSAGE_BODY.match(correlation):
        assert body.get(match[1]) == event["correlation"], (event, correlation)
    else:
        match = _MESSAGE_HEADER.match(correlation)
        assert match, f"cannot address {correlation!r}"
        headers[match[1]] = event["correlation"]
    broker, payload = source["broker"], json.dumps(body)
    if broker == "amqp":
        amqp_publish(source["queue"], body, event.get("key") or f"{event['name']}@{event['at']}")
    elif broker == "mqtt":
        mqtt_publish(source["topic"].replace("+", "depot").replace("#", "any"), body)
    elif broker == "nats":
        asyncio.run(nats_js(lambda js: js.publish(source["subject"], payload.encode(),
                                                  headers=headers)))
    else:
        assert broker == "redis" and "stream" in source, source
        store = redis.Redis.from_url(REDIS_URL)
        try:
            store.xadd(source["stream"], {"body": payload})
        finally:
            store.close()


def dead_connections(text: str, script: dict) -> dict[str, str]:
    """The connections of the message instructions that the script says cannot connect (every
    reply a ``connection`` error), each as a URL of its broker at a port nobody listens on."""
    found = {}
    for name, instruction in _named(yaml.safe_load(text)):
        replies = _listed((script.get("instructions") or {}).get(name, []))
        message = instruction.get("message")
        if message and replies and all(r.get("class") == "connection" for r in replies):
            found[message["connection"]] = f"{message['broker']}://127.0.0.1:{free_port()}"
    return found


def deliver(text: str, run: models.Run, event: dict) -> None:
    """One scripted event: published on the broker the task listens to for it, else sent to
    the API (to the run itself when the script names no correlation value)."""
    source = sources(text).get(event["name"])
    if source is not None:
        publish(source, event)
        return
    target = ({"correlation": event["correlation"]} if "correlation" in event
              else {"run_id": run.pk})
    event_send(name=event["name"], payload=event.get("data"), key=event.get("key"), **target)


def play(text: str, script: dict, *, timeout: float = 60.0,
         beside: Callable[[models.Run], None] | None = None) -> models.Run:
    """Start the run with the script's input and deliver its events at their times after
    the start; ``beside`` is called while waiting (a far end that changes with the run).
    Returns the finished run."""
    task = yaml.safe_load(text)["name"]
    run, _ = run_start(task=task, input=script.get("input", {}))
    started = time.monotonic()
    events = sorted(script.get("events", ()), key=lambda e: parse_duration(e["at"]))
    deadline = started + timeout
    for event in events:
        due = started + parse_duration(event["at"]).total_seconds()
        while time.monotonic() < due:
            if beside:
                beside(run)
            time.sleep(min(0.02, max(0.0, due - time.monotonic())))
        deliver(text, run, event)
    while beside and time.monotonic() < deadline:
        beside(run)
        if models.Run.objects.get(pk=run.pk).status in {"succeeded", "failed", "timed_out",
                                                        "cancelled"}:
            break
        time.sleep(0.02)
    return wait_for(run.pk, timeout=max(1.0, deadline - time.monotonic()))

