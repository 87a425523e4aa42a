"""Every shipped task's kept script, dry run as ``simulate --check taskdefs`` runs it, and the
real cluster given the same world record the same history: the same path, data, attempt
counts and poll records, and times within the timer's lag.

The world is local and real: the HTTP far end answers the shop's calls as the script's
replies say; the gRPC stock server and a MariaDB table answer the inventory's; Redis,
Mosquitto, RabbitMQ and NATS carry the messages and the broker-fed events, each published at
the script's time; the other events go to the API. A script's days would take days, so both
the task's timers and the script's times are divided by a factor per case (an hour of a
script is a quarter of a second here), and jitter is turned off: the compressed dry run must
tell the same story as the kept one, and the cluster the same as the compressed dry run, its
times included. All cases run at once on one cluster.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.db import connection

from taskapp import models
from tests.e2e.conftest import ROOT, path_of, sql, wait_listening
from tests.e2e.simcompare import same_history, same_times_from_start
from tests.e2e.simworld import Case, dead_connections, http_routes, play, same_story
from tests.engine.brokers import REDIS_URL, delete_queue, nats_js, unique

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SHOP = "https://shop.example"  # the shop's stand-in URL in order_fulfilment's script


def cases(far_end, table: str) -> list[Case]:
    """Each kept script of taskdefs/ but hello's (tests/e2e/test_simulation_e2e.py), with its
    factor: the script's end within about 7 s. stock_reservation keeps its times (its
    second look at the pick is a second after the first: time for the warehouse to pick)."""
    parcels = unique("P").replace("-", "_").upper()
    return [
        Case("order_fulfilment", "order_fulfilment.shipped.sim.yaml", 3600,
             {SHOP: far_end.url}),
        # Each its own order: both runs would take each other's payments.
        Case("order_approval", "order_approval.approved.sim.yaml", 14400,
             {"ORDER-42": unique("ORDER")}),
        Case("order_approval", "order_approval.expired.sim.yaml", 14400,
             {"ORDER-42": unique("ORDER")}),
        Case("order_events", "order_events.sim.yaml", 1000,
             {"to: orders.placed": f"to: {unique('orders')}",
              "shop/orders/": f"{unique('shop')}/orders/"}),
        Case("stock_reservation", "stock_reservation.sim.yaml", 1, {"reservations": table}),
        Case("parcel_tracking", "parcel_tracking.sim.yaml", 14400,
             {"queue: parcels": f"queue: {unique('parcels')}",
              "topic: depots/": f"topic: {unique('depots')}/",
              "stream: PARCELS": f"stream: {parcels}",
              "subject: parcels.delivered": f"subject: {parcels}.delivered",
              "stream: signatures": f"stream: {unique('sig')}"}),
        Case("parcel_delivery", "parcel_delivery.sim.yaml", 1000,
             {"to: parcels.lifecycle": f"to: {unique('lifecycle')}"}),
    ]


@pytest.fixture
def world(brokers, reach, far_end, monkeypatch):
    """The cases, with the cluster's environment set before it starts: the shop's secrets
    (its URL: the far end), the brokers' and the inventory's connections, and a dead port for
    each connection a script says cannot connect."""
    server, table = reach
    all_cases = cases(far_end, table)
    for case in all_cases:
        script = case.real_script()
        for name, value in (script.get("secrets") or {}).items():
            monkeypatch.setenv(f"ASYNC_STATES_SECRET_{name}", value)
        for name, url in dead_connections(case.real_text(), script).items():
            monkeypatch.setenv(f"ASYNC_STATES_CONNECTION_{name.upper()}", url)
    server.start()  # the health poll's first look finds it serving, as the script says
    for stream in _jetstreams(all_cases):
        asyncio.run(nats_js(lambda js, s=stream: js.add_stream(name=s, subjects=[f"{s}.>"])))
    yield all_cases
    _clean(all_cases)


def _jetstreams(all_cases: list[Case]) -> list[str]:
    return [new.removeprefix("stream: ") for case in all_cases
            for old, new in case.renames.items() if old == "stream: PARCELS"]


@pytest.fixture
def shipped_cluster(world, cluster):
    return cluster


def _clean(all_cases: list[Case]) -> None:
    store = redis.Redis.from_url(REDIS_URL)
    try:
        for case in all_cases:
            for old, new in case.renames.items():
                name = new.split(": ", 1)[-1].rstrip("/")
                if old.startswith("queue:"):
                    delete_queue(name)
                elif old.startswith(("to:", "stream:")) and old != "stream: PARCELS":
                    store.delete(name)
    finally:
        store.close()
    for stream in _jetstreams(all_cases):
        asyncio.run(nats_js(lambda js, s=stream: js.delete_stream(s)))


def _warehouse(table: str, replies: list[dict]):
    """The warehouse's side of ``pick_status``: after the poll's n-th look the row holds
    the script's reply n+1 (the row starts as the run's ``record`` writes it)."""
    shown = {1}

    def beside(run: models.Run) -> None:
        record = models.PollRecord.objects.filter(run=run, state="awaiting_pick").first()
        if record is None or record.attempts not in range(max(shown), len(replies)):
            return
        shown.add(record.attempts + 1)
        row = replies[record.attempts]["result"]
        sets = ", ".join(f"{column} = %({column})s" for column in row)
        sql(f"UPDATE {table} SET {sets} WHERE id = %(id)s", fetch="none",
            id=models.Run.objects.get(pk=run.pk).data["reservation"]["id"], **row)
    return beside


def _real_run(case: Case, table: str) -> models.Run:
    try:
        script = case.real_script()
        beside = None
        if case.task == "stock_reservation":
            beside = _warehouse(table, script["instructions"]["pick_status"])
        return play(case.real_text(), script, beside=beside)
    finally:
        connection.close()


def _known_only(case: Case, run: models.Run, dry) -> None:
    """What the real world adds that no script can know, checked by its shape and then set
    aside: the Redis stream's own entry id and the message id (the run's idempotency key)
    of order_events; the idempotency key and the (empty) authorization the gRPC call
    carried, which the stock server echoes into the reservation."""
    if case.task == "order_events":
        entry = run.data["stream_entry"]
        assert re.fullmatch(r"\d+-\d+", entry.pop("id")), entry
        assert entry.pop("message_id").startswith(f"{run.pk}:")
        entry["id"] = dry.data["stream_entry"]["id"]
    if case.task == "stock_reservation":
        reservation = run.data["reservation"]
        key = reservation.pop("idempotency_key")
        assert key.startswith(f"{run.pk}:") and key.endswith(":reserve"), key
        assert reservation.pop("authorization") == ""  # the task sends no credentials


def test_every_shipped_task_with_its_kept_script_matches_the_cluster(
    world, shipped_cluster, far_end, reach, load
):
    _, table = reach
    kept = {path.name for path in (ROOT / "taskdefs").glob("*.sim.yaml")}
    assert {case.script_name for case in world} == kept - {"hello.sim.yaml"}  # every one of them
    for text in dict.fromkeys(case.real_text() for case in world):
        load(text)  # the two scripts of order_approval share one compressed task
    for case in world:
        http_routes(far_end, case.real_text(), case.real_script())
    wait_listening(4)  # every broker source, before any run starts: no message is missed
    with ThreadPoolExecutor(len(world)) as pool:
        runs = list(pool.map(lambda case: _real_run(case, table), world))
    for case, run in zip(world, runs, strict=True):
        _compare(case, run)


def _compare(case: Case, run: models.Run) -> None:
    kept, dry = case.kept_dry_run(), case.real_dry_run()
    try:
        same_story(kept, dry)
        _known_only(case, run, dry)
        same_history(run, dry, time_in_state=False)
        same_times_from_start(run, dry)
    except AssertionError as exc:
        exc.add_note(f"{case.script_name}: the cluster's path {path_of(run)}, data {run.data}; "
                     f"the dry run's path {dry.path()}, data {dry.data}")
        raise
