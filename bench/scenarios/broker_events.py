"""Broker event → transition latency, per broker, beside the event service's own path, with a
2-worker cluster: runs parked on a ``subscribe`` whose ``source`` is a RabbitMQ queue, an MQTT
topic, a NATS JetStream stream or a Redis stream; the bench publishes one message per run at a
steady rate and reads back when its transition committed. The same runs, woken by
``event_send`` (what ``POST /api/events/`` calls), give the baseline in the same cluster.

A message's path: the broker, the cluster's listener thread (render the templates, commit the
event, find the subscriber, acknowledge), the queue, a worker's step."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from bench.harness import Cluster, paced, repeat, reset_runs, summary, wait_until
from bench.scenarios.common import finished, service_start

UNITS = {"p50_ms": "ms", "p99_ms": "ms", "max_ms": "ms"}
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
MQTT_URL = os.environ.get("BENCH_MQTT_URL", "mqtt://127.0.0.1:1883")
NATS_URL = os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222")

TASK = """
name: fed_by_{broker}
version: 1
start_state: parked
states:
  parked:
    transitions:
      - to: woken
        subscribe:
          event: go_{broker}
          correlate: "{{{{ input.key }}}}"
          source: {source}
  woken: {{final: succeeded}}
"""


def run(suite) -> None:
    count = suite.pick(quick=30, full=300)
    rate = 20.0
    tag = f"bench_{os.getpid()}"
    redis_url = suite.redis_url or "redis://127.0.0.1:6379/0"
    scenario = suite.report.scenario(
        "broker_events", "Broker event → transition, per broker, beside event_send",
        workers=2, reps=suite.reps, events=count, rate_per_s=rate,
        measured="Transition.at (committed, worker clock) minus the publish/send time")
    env = {**suite.env, "ASYNC_STATES_CONNECTION_BENCH_AMQP": AMQP_URL,
           "ASYNC_STATES_CONNECTION_BENCH_MQTT": MQTT_URL,
           "ASYNC_STATES_CONNECTION_BENCH_NATS": NATS_URL,
           "ASYNC_STATES_CONNECTION_BENCH_REDIS": redis_url,
           "ASYNC_STATES_LISTENER_POLL_SECONDS": "0.5"}
    for name in ("amqp", "mqtt", "nats", "redis"):
        _load(name, tag)
    _jetstream(lambda js: js.add_stream(name=tag.upper(), subjects=[f"{tag}.>"]))
    try:
        with Cluster(2, **env):
            stats = repeat(suite.reps, _measure, suite, "api", None, count, rate)
            suite.report.add(scenario, "event_send (the API's path) → transition", stats,
                             UNITS)
            for name in BROKERS:
                with _publisher(name, tag, redis_url) as publish:
                    stats = repeat(suite.reps, _measure, suite, name, publish, count, rate)
                suite.report.add(scenario, f"{name} message → transition", stats, UNITS)
    finally:
        _cleanup(tag, redis_url)


# BENCH_BROKERS=mqtt,nats measures only those (the listeners of all four still run).
BROKERS = tuple(os.environ.get("BENCH_BROKERS", "amqp,mqtt,nats,redis").split(","))


def _sources(tag: str) -> dict[str, str]:
    body = "correlation: '{{ message.body.key }}'"
    return {
        "amqp": f"{{broker: amqp, connection: bench_amqp, queue: {tag}, {body}}}",
        "mqtt": f"{{broker: mqtt, connection: bench_mqtt, topic: {tag}/go, {body}}}",
        "nats": f"{{broker: nats, connection: bench_nats, stream: {tag.upper()}, "
                f"subject: {tag}.go, {body}}}",
        "redis": f"{{broker: redis, connection: bench_redis, stream: {tag}, {body}}}",
    }


def _load(name: str, tag: str) -> None:
    from taskapp.services import definition_load

    text = TASK.format(broker=name, source=_sources(tag)[name])
    result = definition_load(text=text, source="bench")
    assert result.status in {"loaded", "unchanged"}, (result.status, result.problems)


def _measure(suite, name: str, publish, count: int, rate: float) -> dict[str, float]:
    from taskapp import models
    from taskapp.services import event_send

    reset_runs(suite.redis_url)
    task = "fed_by_amqp" if publish is None else f"fed_by_{name}"
    ids = [service_start(task, {"key": f"k{i}"}) for i in range(count)]
    assert wait_until(lambda: models.Run.objects.filter(status="waiting").count() >= count
                      and _listening(4), 120), "runs did not park or listeners not connected"
    sent = {}
    for i in paced(count, rate):
        sent[f"k{i}"] = time.time()
        if publish is None:
            event_send(name="go_amqp", correlation=f"k{i}")
        else:
            publish(f"k{i}")
    finished(ids, 120)
    rows = models.Transition.objects.filter(to_state="woken").values_list("run__input", "at")
    s = summary([(at.timestamp() - sent[data["key"]]) * 1000 for data, at in rows])
    return {"p50_ms": s["p50"], "p99_ms": s["p99"], "max_ms": s["max"]}


def _listening(count: int) -> bool:
    from taskapp import models

    states = [s for row in models.ClusterHeartbeat.objects.all() for s in row.listeners]
    return sum(1 for s in states if s["connected"]) >= count


def _jetstream(action):
    import nats

    async def call():
        client = await nats.connect(NATS_URL)
        try:
            return await action(client.jetstream())
        finally:
            await client.close()

    return asyncio.run(call())


def _body(key: str) -> bytes:
    return json.dumps({"key": key}).encode()


@contextmanager
def _publisher(name: str, tag: str, redis_url: str) -> Iterator:
    """A publishing function for ``name``'s source, on one connection opened for it."""
    if name == "amqp":
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        yield lambda key: channel.basic_publish("", tag, _body(key))
        connection.close()
    elif name == "mqtt":
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        where = urlsplit(MQTT_URL)
        client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        client.connect(where.hostname or "127.0.0.1", where.port or 1883)
        client.loop_start()
        yield lambda key: client.publish(f"{tag}/go", _body(key), qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
    elif name == "nats":
        import nats

        loop = asyncio.new_event_loop()
        client = loop.run_until_complete(nats.connect(NATS_URL))
        js = client.jetstream()
        yield lambda key: loop.run_until_complete(js.publish(f"{tag}.go", _body(key)))
        loop.run_until_complete(client.close())
        loop.close()
    else:
        import redis

        store = redis.Redis.from_url(redis_url)
        yield lambda key: store.xadd(tag, {"body": _body(key)})
        store.close()


def _cleanup(tag: str, redis_url: str) -> None:
    """Drop the queue, streams and consumers this run made (each on a fresh connection)."""
    import pika
    import redis

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    connection.channel().queue_delete(tag)
    connection.close()
    _jetstream(lambda js: js.delete_stream(tag.upper()))
    store = redis.Redis.from_url(redis_url)
    store.delete(tag)
    store.close()
