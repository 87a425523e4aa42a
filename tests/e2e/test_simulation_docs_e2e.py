"""Every task the docs show, dry run and run on the real cluster against local far ends, records
the same history: the same path, data and attempt counts, and times within the timer's lag.

Each documented task has its scenarios in ``SCENARIOS`` (the task's input, what the far ends
answer, the events the test sends) or a reason in ``EXCLUDED``; a task block with neither
fails ``test_every_documented_task_has_a_scenario_or_a_reason``. One cluster runs every
scenario at once; then each real history is compared with a dry run of the same script. The
script is written from the scenario after the real run: its start is the real run's start
and its events arrive when the test really sent them, so that times compare.

A path that needs a long wait (a 7-day timeout, an hour's wait, 24 hourly polls) runs
compressed, as the shipped tasks' scripts do (``tests/e2e/simworld.py``): the scenario's
``factor`` divides the task's timers (and turns jitter off), the compressed task is loaded
under a name of its own, and the cluster is compared with the compressed dry run; that dry
run must tell the same story as the uncompressed one, the docs' task with the script's times
multiplied back. ``PATHS_LEFT_OUT`` keeps what cannot be compressed, and why.

The world is local: one HTTP far end behind every ``secrets.*_URL`` (it tells runs apart by
the run id in the ``Idempotency-Key`` each request carries, so two scenarios of one task get
their own answers), the docs' named connections on the local RabbitMQ, Mosquitto, NATS,
Redis, MariaDB and a gRPC server of this process, and SQLite files for ``db`` URLs. Names
that the shared brokers and databases would share with other tests (exchanges, subjects,
streams, tables) are renamed in the task's text to this test's own, for both runs.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pika
import pytest
import redis

from engine.instructions import db
from engine.language import load_text
from engine.simulation import Simulation, script_from_data, simulate
from taskapp import models
from taskapp.services import event_send, run_cancel, run_start
from tests.e2e.conftest import ROOT, path_of, sql, wait_listening
from tests.e2e.simcompare import (
    LAG_SECONDS,
    same_details,
    same_history,
    same_times_from_start,
)
from tests.e2e.simworld import compressed_script, compressed_task, same_story
from tests.e2e.test_reach_e2e import wait_until
from tests.engine import brokers
from tests.engine.test_docs_examples import yaml_examples
from tests.engine.test_explore import DOC_INPUTS
from tests.grpcserver import StockServer, free_port
from tests.services import MARIADB_URL, require_mariadb

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

DOCS = ("docs/task-language.md", "docs/simulate.md", "docs/api.md", "README.md")
RUN = "<run>"  # in a scripted result: the real run's id, which the far end echoes back
TOKEN = "docs-e2e-T0ken-1234"  # every token secret: at least 8 characters, as secrets need
NAMES = {  # this test's own names on the shared brokers and databases
    name: brokers.unique(name).replace("-", "_") for name in (
        "shop", "subject", "stream", "lifecycle", "table", "warehouse", "shipments", "depots",
        "warehouse_late", "shipments_late", "depots_late")}
for _stream in ("ORDERS", "ORDERS_LATE"):  # JetStream streams
    NAMES[_stream] = brokers.unique(_stream.lower()).replace("-", "_").upper()


def documented_tasks() -> dict[str, str]:
    """Every task block of ``DOCS`` by its name; a name a later doc repeats for another task
    (README.md's ``hello`` is not task-language.md's) is ``<doc>:<name>``."""
    found: dict[str, str] = {}
    for doc in DOCS:
        for _, body in yaml_examples(ROOT / doc):
            if "start_state:" not in body:
                continue  # a fragment (docs/api.md's webhook_secret) or a script
            name = re.search(r"^name: (\S+)$", body, re.MULTILINE).group(1)
            found[f"{Path(doc).name}:{name}" if name in found else name] = body
    return found


@dataclass(frozen=True)
class Send:
    """An event the test sends once the run waits in ``after`` (at once when None): to the
    run itself without ``correlation``; ``amqp`` publishes it as a message instead, on that
    routing key of this test's exchange, for a subscription fed by the broker."""

    name: str
    data: Any
    correlation: str | None = None
    after: str | None = None
    amqp: str | None = None


@dataclass(frozen=True)
class Scenario:
    """One script of a documented task, and the same world for the cluster.

    ``http`` maps a far end path to (instruction or poll name, its answers call by call, the
    last repeating); ``results`` are the script's replies for instructions whose world is a
    broker, a database or the gRPC server (what those really answer); ``stop_in`` makes a
    partial comparison, taken while the run waits in that state (its next move is a long
    timer), after which the real run is cancelled; ``renames`` make names this test's own.
    """

    input: dict[str, Any] = field(default_factory=dict)
    http: dict[str, tuple[str, list[dict]]] = field(default_factory=dict)
    results: dict[str, list[dict]] = field(default_factory=dict)
    events: tuple[Send, ...] = ()
    stop_in: str | None = None
    renames: tuple[tuple[str, str], ...] = ()
    # The task's timers divided by this, and loaded as a task of its own (see the module).
    factor: float | None = None
    # Data the real world fills with what no script can know, checked by shape instead:
    # dotted path -> check of (real value, dry value).
    shaped: dict[str, Any] = field(default_factory=dict)


def ok(body: Any, status: int = 200) -> dict:
    return {"status": status, "body": body}


def busy() -> dict:
    return {"status": 503, "body": {"error": "busy"}}


def jsonrpc(result: Any) -> dict:
    return {"status": 200, "body": {"jsonrpc": "2.0", "result": result}}


def rendered_now(real: str, dry: str) -> bool:
    """``now`` rendered by the worker that ran the step: at most the lag after the virtual
    one, which is the run's start (a dry run's instructions take no time)."""
    late = (datetime.fromisoformat(real) - datetime.fromisoformat(dry)).total_seconds()
    return 0 <= late < LAG_SECONDS


def track_renames(suffix: str) -> tuple[tuple[str, str], ...]:
    """track_shipment's four sources on this test's destinations (``NAMES[...<suffix>]``)."""
    orders = NAMES[f"ORDERS{suffix.upper()}"]
    return (("exchange: warehouse", f"exchange: {NAMES['warehouse' + suffix]}"),
            ("stream: ORDERS", f"stream: {orders}"),
            ("subject: orders.shipped", f"subject: {orders}.shipped"),
            ("stream: shipments", f"stream: {NAMES['shipments' + suffix]}"),
            ('topic: "depots/+/scans"', f'topic: "{NAMES["depots" + suffix]}/+/scans"'))


SCENARIOS: dict[str, list[Scenario]] = {
    "hello": [Scenario(input={"name": "Ada"})],
    "invoice": [Scenario(input={"customer": "c-1", "amount": 12.5},
                         http={"/invoices": ("http_0", [ok({"id": "I-1"}, 201)])}),
                # No retry and no on_error: the run fails with the attempt's error.
                Scenario(input={"customer": "c-2", "amount": 1},
                         http={"/invoices": ("http_0", [ok({"error": "down"}, 500)])})],
    "shop_order": [Scenario(input={"order_id": "S-1"}, events=(
        Send("payment.succeeded", {"amount": 30}, correlation="S-1"),)),
                   Scenario(input={"order_id": "S-2"}, factor=302_400)],  # unpaid: 7d -> 2s
    "shipment": [Scenario(stop_in="packed"),
                 Scenario(factor=1_800)],  # shipped: 1h -> 2s
    "shipment_on_the_bus": [Scenario(renames=(
        ("to: shipments.lifecycle", f"to: {NAMES['lifecycle']}"),))],
    "review": [Scenario(events=(Send("review.approved", {"by": "ada"}),)),
               Scenario(events=(Send("review.rejected", None),)),
               # Both sent before the run looks: the first to arrive wins, not the first
               # declared (an event is fulfilled at its arrival once the state is entered).
               Scenario(events=(Send("review.rejected", None), Send("review.approved", None))),
               Scenario(factor=1_296_000)],  # abandoned: 30d -> 2s
    "create_user": [Scenario(input={"email": "ada@example.com", "tags": ["a"]}, http={
        "/users": ("post_user", [ok({"id": "u-1"}, 201)]),
        "/login": ("login_form", [ok({"session": "s-1"})])})],
    "reserve_stock": [Scenario(input={"sku": "A-1", "qty": 2}, http={
        "/rpc": ("rpc_0", [jsonrpc({"reserved": 2})])})],
    "reserve_over_grpc": [Scenario(input={"sku": "B-2", "quantity": 3}, results={
        "reserve": [{"result": {"id": "r-B-2-3", "sku": "B-2", "quantity": 3,
                                "idempotency_key": f"{RUN}:1:reserve",
                                "authorization": f"Bearer {TOKEN}"}}]}),
                          # A final gRPC status: not retried, and the run fails.
                          Scenario(input={"sku": "missing", "quantity": 1}, results={
                              "reserve": [{"class": "status", "error": (
                                  "rpc inventory.v1.Stock/Reserve on connection 'inventory': "
                                  "NOT_FOUND: no sku 'missing'")}]})],
    "announce": [Scenario(
        input={"order_id": "A-1"},
        renames=(("exchange: shop", f"exchange: {NAMES['shop']}"),
                 ("bus, to: orders.created", f"bus, to: {NAMES['subject']}"),
                 ("to: orders, stream", f"to: {NAMES['stream']}, stream")),
        results={"to_rabbit": [{"result": {"confirmed": True,
                                           "message_id": f"{RUN}:1:to_rabbit"}}],
                 "to_devices": [{"result": {"qos": 2, "message_id": f"{RUN}:1:to_devices"}}],
                 "to_bus": [{"result": {"stream": NAMES["subject"].upper(), "seq": 1,
                                        "duplicate": False, "message_id": f"{RUN}:1:to_bus"}}],
                 # Not saved: the stream entry's id is never compared.
                 "to_stream": [{"result": {"id": "0-1", "message_id": f"{RUN}:1:to_stream"}}]})],
    "stock_check": [Scenario(input={"sku": "A-1"}, results={"db_0": [{"result": {"qty": 5}}]}),
                    Scenario(input={"sku": "Z-9"}, results={"db_0": [{"result": None}]})],
    "record_reservation": [Scenario(
        input={"sku": "A-1", "quantity": 2},
        renames=(("insert into reservations", f"insert into {NAMES['table']}"),),
        results={"db_0": [{"result": {"rowcount": 1}}]})],
    "totals": [Scenario(input=DOC_INPUTS["totals"])],
    "flaky_call": [
        # The charge's policy has no jitter, so its delays (0.5 s, 1.5 s, 4.5 s) compare.
        Scenario(http={"/ping": ("http_0", [ok({"pong": True})]),
                       "/charge": ("http_1", [busy(), busy(), ok({"charged": True})])}),
        Scenario(http={"/ping": ("http_0", [ok({"pong": True})]),
                       "/charge": ("http_1", [busy()])}),
    ],
    "triage": [Scenario(input={"total": 2000, "country": "FR"}),
               Scenario(input={"total": 2000, "country": "US"})],
    "reminder": [Scenario(input={"remind_at": "<in 2s>", "text": "call Ada"},
                          http={"/notify": ("http_0", [ok({"sent": True})])}, stop_in="remind"),
                 # To done: 1h -> 1s, 10s -> 3ms (the time the input names is not a timer).
                 Scenario(input={"remind_at": "<in 2s>", "text": "call Bo"},
                          http={"/notify": ("http_0", [ok({"sent": True})])}, factor=3_600)],
    "await_payment": [Scenario(input={"order_id": "P-1", "total": 10}, events=(
        Send("payment.received", {"amount": 5}, correlation="P-1"),
        Send("payment.received", {"amount": 12}, correlation="P-1"))),
                      # expired: 2d -> 2s, the one payment too small
                      Scenario(input={"order_id": "P-2", "total": 10}, factor=86_400, events=(
                          Send("payment.received", {"amount": 5}, correlation="P-2"),))],
    "track_shipment": [Scenario(
        input={"order_id": "T-1"}, renames=track_renames(""),
        events=(Send("order.shipped", {"order_id": "T-1", "carrier": "dhl"},
                     correlation="T-1", after="waiting", amqp="orders.eu.shipped"),)),
                       # late: 3d -> 2s; its four sources on destinations of their own
                       Scenario(input={"order_id": "T-2"}, renames=track_renames("_late"),
                                factor=129_600)],
    "await_shipment": [Scenario(input={"order_id": "W-1"}, http={
        "/orders/W-1": ("poll", [ok({"status": "shipped"})])})],
    "await_row": [Scenario(input={"job_id": "J-1"},
                           results={"poll": [{"result": {"status": "done"}}]})],
    "await_inventory": [Scenario(results={"poll": [{"result": {"status": "SERVING"}}]})],
    "approval": [Scenario(events=(Send("approval.granted", {"by": "ada"}),)),
                 # Escalated (3d -> 2s), then no one approves within the hour every state
                 # without a timeout has (1h -> 28ms): timed out.
                 Scenario(factor=129_600)],
    "templates_tour": [Scenario(
        input={"first": "ada", "last": "lovelace", "tags": ["x", "y", "z"]},
        http={"/entries": ("http_1", [ok({"id": "E-1"}, 201)])},
        shaped={"payload.when": rendered_now})],
    "order_fulfilment": [Scenario(input={"order_id": "O-1"}, http={
        "/orders": ("create_order", [ok({"id": "O-1", "total": 40}, 201)]),
        "/orders/O-1": ("poll", [ok({"status": "shipped"})])}, events=(
        Send("payment.received", {"amount": 40}, correlation="O-1"),)),
                         # A 400 is not retried by default: on_error at the first attempt.
                         Scenario(input={"order_id": "O-2"}, http={
                             "/orders": ("create_order", [ok({"error": "bad order"}, 400)])}),
                         # Never paid: cancelled by the 1-day wait (-> 2s).
                         Scenario(input={"order_id": "O-3"}, factor=43_200, http={
                             "/orders": ("create_order", [ok({"id": "O-3", "total": 40}, 201)])}),
                         # Five 503s, 1+2+4+8 s apart (-> 1.9s, no jitter): cancelled.
                         Scenario(input={"order_id": "O-4"}, factor=8, http={
                             "/orders": ("create_order", [busy()])})],
    "refund": [Scenario(input={"payment_id": "P-7", "amount": 25}, http={
        "/refunds": ("open_case", [busy(), ok({"id": "R-1"}, 201)]),
        "/refunds/R-1": ("bank_status", [ok({"state": "settled"})])}, events=(
        Send("refund.approved", {"by": "ada"}, correlation="P-7"),)),
               Scenario(input={"payment_id": "P-8", "amount": 5}, http={
                   "/refunds": ("open_case", [ok({"id": "R-2"}, 201)])}, events=(
                   Send("refund.refused", {"by": "ada"}, correlation="P-8"),)),
               # refused by the 3-day timeout (-> 2s)
               Scenario(input={"payment_id": "P-9", "amount": 5}, factor=129_600, http={
                   "/refunds": ("open_case", [ok({"id": "R-3"}, 201)])}),
               # open_case failing for good: 3 attempts 10s and 20s apart (-> 0.5s, 1s)
               Scenario(input={"payment_id": "P-10", "amount": 5}, factor=20, http={
                   "/refunds": ("open_case", [busy()])})],
    "README.md:hello": [Scenario(input={"name": "Ada Lovelace-Byron"})],
}

# Documented tasks not run here, and why.
EXCLUDED: dict[str, str] = {}

# Paths of scripted tasks left out, and why. Long waits are compressed (``factor``); what is
# left cannot be. Compression divides the timers but not the real cost of each poll attempt:
# its next attempt counts from its end, and a worker picks the run up again, about 60 ms an
# attempt here (measured: refund's 24 polls 0.5 s apart took 12.9 s, not 11.5 s). A poll of
# many attempts drifts past the lag, and a poll ended by its span counts fewer attempts.
PATHS_LEFT_OUT = {
    "track_shipment": "the scanned and other shipped ways are the same subscription fed by "
                      "another broker (tests/e2e/test_broker_sources_e2e.py)",
    "await_shipment": "lost: 200 polls, from 30 s apart up to 10 min (about 33 h): compressed "
                      "or not, 200 attempts add about 12 s of real cost, far past the lag, "
                      "and compressed enough to fit, the 2-day span would end it first",
    "await_row": "not_ready: 16 polls doubling from 5 s; the 15th comes 1.2 h before the day "
                 "is over, the 16th ends it at 45.5 h. Compressed so that 45 h take 30 s, those "
                 "1.2 h are 0.8 s, less than the real cost of 15 attempts: the 15th would end it",
    "await_inventory": "down: 151 attempts 2 s apart until 5 min have passed: compressed, "
                       "their real cost takes a share of the span, and fewer fit",
    "approval": "escalated, then approved: the hour escalated allows is 72 times shorter than "
                "the 3-day timeout before it; compressed so that 3 days take seconds, the hour "
                "is 28 ms, too short to send an event in (escalating is compared: no one "
                "approves, and the hour times the run out)",
    "refund": "stuck_at_bank: 24 polls an hour apart; compressed, their real cost (1.4 s "
              "on a quiet machine, measured) drifts to within a loaded machine's reach of the "
              "lag",
    "order_fulfilment": "cancelled by the 2-day timeout: the 1-day wait always comes first; "
                        "cancelled after 3 days of polling every 30 s: 8,640 attempts, ended "
                        "by the span as await_inventory's",
}


@pytest.mark.usefixtures("sqlite_pass_only")
def test_every_documented_task_has_a_scenario_or_a_reason():
    tasks = set(documented_tasks())
    assert tasks - set(SCENARIOS) - set(EXCLUDED) == set(), (
        "documented tasks with no scenario in SCENARIOS and no reason in EXCLUDED")
    assert set(SCENARIOS) | set(EXCLUDED) <= tasks, "a scenario of a task the docs no longer show"
    assert set(PATHS_LEFT_OUT) <= set(SCENARIOS)


# ---------------------------------------------------------------------------- the world


class Replies:
    """The far end's answers to every scenario: a run's n-th call of a path gets its
    scenario's n-th answer. Runs are told apart by the ``Idempotency-Key`` of each request
    (``<run id>:...``); a call that comes before the test has noted its run waits for it."""

    def __init__(self) -> None:
        self.by_run: dict[str, Scenario] = {}
        self.calls: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    def handler(self, path: str):
        def answer(_n: int, request: dict) -> tuple[int, object, float]:
            key = next((v for k, v in request["headers"].items()
                        if k.lower() == "idempotency-key"), "")
            run = key.split(":")[0]
            deadline = time.monotonic() + 10
            while run not in self.by_run and time.monotonic() < deadline:
                time.sleep(0.02)
            with self.lock:
                self.calls[run, path] += 1
                replies = self.by_run[run].http[path][1]
                reply = replies[min(self.calls[run, path], len(replies)) - 1]
            body = reply["body"]
            if isinstance(body, dict) and body.get("jsonrpc"):
                body = {**body, "id": key}  # JSON-RPC answers with the request's id: the key
            return reply["status"], body, 0
        return answer


@pytest.fixture
def world(monkeypatch, tmp_path, far_end):
    """Every secret and connection the docs' tasks name, on local services, set before the
    cluster starts (it inherits this environment); yields the secrets, the far end's answers
    and a channel to the local RabbitMQ."""
    brokers.require_rabbitmq()
    require_mariadb()
    for name, port in (("Mosquitto", 1883), ("NATS", 4222), ("Redis", 6379)):
        brokers.require_port(name, port)
    warehouse, jobs = tmp_path / "warehouse.db", tmp_path / "jobs.db"
    with sqlite3.connect(warehouse) as conn:
        conn.execute("create table stock (sku text, qty int)")
        conn.execute("insert into stock values ('A-1', 5)")
    with sqlite3.connect(jobs) as conn:
        conn.execute("create table jobs (id text, status text)")
        conn.execute("insert into jobs values ('J-1', 'done')")
    secrets = {name: far_end.url for name in (
        "BILLING_URL", "API_URL", "LEGACY_URL", "INVENTORY_URL", "FLAKY_URL", "AUDIT_URL",
        "SHOP_URL", "BANK_URL")}
    secrets |= {"NOTIFY_URL": f"{far_end.url}/notify", "WAREHOUSE_DB": f"sqlite:///{warehouse}",
                "DB_URL": f"sqlite:///{jobs}", "SHOP_WEBHOOK": TOKEN}
    secrets |= {name: TOKEN for name in (
        "API_TOKEN", "LEGACY_USER", "LEGACY_PASSWORD", "INVENTORY_TOKEN", "AUDIT_TOKEN",
        "SHOP_TOKEN")}
    grpc = StockServer(free_port()).start()
    connections = {"SHOP": brokers.AMQP_URL, "DEVICES": brokers.MQTT_URL,
                   "BUS": brokers.NATS_URL, "CACHE": brokers.REDIS_URL,
                   "INVENTORY": f"grpc://{grpc.target}", "WAREHOUSE": MARIADB_URL,
                   "HOOKS": f"{far_end.url}/hooks"}
    for name, value in secrets.items():
        monkeypatch.setenv(f"ASYNC_STATES_SECRET_{name}", value)
    for name, url in connections.items():
        monkeypatch.setenv(f"ASYNC_STATES_CONNECTION_{name}", url)
    monkeypatch.setenv("ASYNC_STATES_LISTENER_POLL_SECONDS", "0.5")
    replies = Replies()
    for scenarios in SCENARIOS.values():
        for path in {p for s in scenarios for p in s.http}:
            far_end.route(path, replies.handler(path))
    far_end.route("/hooks", lambda n, request: (204, None, 0))  # lifecycle events
    with brokers_ready() as channel:
        yield secrets, replies, channel
    grpc.stop()


class brokers_ready:
    """What the renamed destinations need on the shared services, made and removed: the
    announce exchange with a queue bound (its messages are mandatory), JetStream streams for
    the subjects published and listened to, and the MariaDB table."""

    def __enter__(self) -> pika.adapters.blocking_connection.BlockingChannel:
        self.rabbit = pika.BlockingConnection(pika.URLParameters(brokers.AMQP_URL))
        channel = self.rabbit.channel()
        channel.exchange_declare(NAMES["shop"], "topic", auto_delete=True)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, NAMES["shop"], "orders.*")
        self.channel = channel
        streams = {NAMES["subject"].upper(): [NAMES["subject"]],
                   NAMES["lifecycle"].upper(): [NAMES["lifecycle"]],
                   NAMES["ORDERS"]: [f"{NAMES['ORDERS']}.>"],
                   NAMES["ORDERS_LATE"]: [f"{NAMES['ORDERS_LATE']}.>"]}
        for name, subjects in streams.items():
            asyncio.run(brokers.nats_js(
                lambda js, n=name, s=subjects: js.add_stream(name=n, subjects=s)))
        self.streams = list(streams)
        sql(f"CREATE TABLE {NAMES['table']} (id varchar(64) PRIMARY KEY, sku text, "
            "quantity int, status text)", fetch="none")
        return channel

    def __exit__(self, *exc: object) -> None:
        sql(f"DROP TABLE {NAMES['table']}", fetch="none")
        for name in self.streams:
            asyncio.run(brokers.nats_js(lambda js, n=name: js.delete_stream(n)))
        for warehouse in (NAMES["warehouse"], NAMES["warehouse_late"]):
            self.channel.queue_delete(f"async_states.{warehouse}.orders.*.shipped")
        for exchange in (NAMES["shop"], NAMES["warehouse"], NAMES["warehouse_late"]):
            self.channel.exchange_delete(exchange)
        self.rabbit.close()
        redis.Redis.from_url(brokers.REDIS_URL).delete(
            NAMES["stream"], NAMES["shipments"], NAMES["shipments_late"])
        db._connections().clear()  # the connection ``sql`` opened in this process


@pytest.fixture
def docs_cluster(world, cluster):
    return cluster


# ---------------------------------------------------------------------------- running


@dataclass
class Played:
    """A scenario on the cluster: its run, and each event with the time it was sent."""

    key: str
    scenario: Scenario
    text: str
    run: models.Run
    sent: list[tuple[Send, datetime]] = field(default_factory=list)
    done: bool = False


def task_text(key: str, scenario: Scenario) -> str:
    """The doc's task as the scenario runs it: renamed, and compressed under a name of its
    own (``<name>_x<factor>``) when the scenario has a factor."""
    text = documented_tasks()[key]
    for old, new in scenario.renames:
        assert old in text, f"{key}: {old!r} is no longer in the doc"
        text = text.replace(old, new)
    if ":" in key:  # another doc's task of a name already taken: loaded under its key
        text = _named(text, key.replace(":", "_").replace(".", "_").lower())
    if scenario.factor:
        text = compressed_task(text, scenario.factor)
        text = _named(text, f"{name_of(text)}_x{round(scenario.factor)}")
    return text


def name_of(text: str) -> str:
    return re.search(r"^name: (\S+)$", text, re.MULTILINE).group(1)


def _named(text: str, name: str) -> str:
    return re.sub(r"^name: \S+$", f"name: {name}", text, count=1, flags=re.MULTILINE)


def real_input(scenario: Scenario) -> dict[str, Any]:
    """The input, with ``<in Ns>`` made a time that many seconds from now."""
    def value(v: Any) -> Any:
        if isinstance(v, str) and (m := re.fullmatch(r"<in (\d+)s>", v)):
            return (datetime.now().astimezone() + timedelta(seconds=int(m[1]))).isoformat()
        return v
    return {k: value(v) for k, v in scenario.input.items()}


def start_all(load, replies: Replies) -> list[Played]:
    texts = {(key, index): task_text(key, scenario) for key, scenarios in SCENARIOS.items()
             for index, scenario in enumerate(scenarios)}
    for text in dict.fromkeys(texts.values()):
        load(text)
    # track_shipment's four sources, twice (its late way listens on destinations of its own)
    wait_listening(sum(len(re.findall(r"^ +source:", text, re.MULTILINE))
                       for text in set(texts.values())))
    played = []
    for key, scenarios in SCENARIOS.items():
        for index, scenario in enumerate(scenarios):
            text = texts[key, index]
            run, _ = run_start(task=name_of(text), input=real_input(scenario))
            replies.by_run[str(run.pk)] = scenario
            played.append(Played(key, scenario, text, run))
    return played


def send_due(play: Played, run: models.Run, channel) -> None:
    """Send the scenario's next events whose state the run waits in."""
    for send in play.scenario.events[len(play.sent):]:
        if send.after and not (run.state == send.after and run.status == "waiting"):
            return
        at = datetime.now().astimezone()
        if send.amqp:
            channel.basic_publish(
                NAMES["warehouse"], send.amqp, json.dumps(send.data).encode(),
                pika.BasicProperties(headers={"x-shipment-id": str(play.run.pk)}))
        else:
            event_send(name=send.name, payload=send.data, correlation=send.correlation,
                       run_id=None if send.correlation else play.run.pk,
                       key=event_key(play, send, len(play.sent)))
        play.sent.append((send, at))


def event_key(play: Played, send: Send, index: int) -> str:
    """The event's id: as the test sends it, or as a broker source makes it from the
    message (track_shipment's ``<event>:<x-shipment-id header>``)."""
    return f"{send.name}:{play.run.pk}" if send.amqp else f"{play.run.pk}:{index}"


def finished(play: Played, run: models.Run) -> bool:
    if play.scenario.stop_in:
        return run.state == play.scenario.stop_in and run.status == "waiting"
    return run.status in ("succeeded", "failed", "timed_out", "cancelled")


def play_all(played: list[Played], channel, timeout: float = 60.0) -> None:
    """Send the events as their runs get to them, until every run finished or stopped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for play in (p for p in played if not p.done):
            run = models.Run.objects.get(pk=play.run.pk)
            send_due(play, run, channel)
            if len(play.sent) == len(play.scenario.events) and finished(play, run):
                play.run, play.done = run, True
        if all(p.done for p in played):
            return
        time.sleep(0.05)
    late = [(p.key, p.run.state) for p in played if not p.done]
    raise AssertionError(f"not done after {timeout}s: {late}")


def dry_script(play: Played, secrets: dict[str, str]) -> dict[str, Any]:
    """The scenario as a script, for the run the cluster made of it."""
    start = models.Transition.objects.get(run=play.run, seq=1).at

    def filled(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(RUN, str(play.run.pk))
        if isinstance(value, dict):
            return {k: filled(v) for k, v in value.items()}
        if isinstance(value, list):
            return [filled(v) for v in value]
        return value

    instructions = {name: [reply_of(r) for r in replies]
                    for name, replies in play.scenario.http.values()}
    instructions |= filled(play.scenario.results)
    events = []
    for index, (send, at) in enumerate(play.sent):
        key = event_key(play, send, index)
        # To the microsecond: two events within a millisecond of the start keep their order
        # (rounded to 0 both, they would be already waiting, and the first declared would win).
        seconds = max(0.0, round((at - start).total_seconds(), 6))
        events.append({"at": seconds, "name": send.name, "data": send.data, "key": key}
                      | ({"correlation": send.correlation} if send.correlation else {}))
    script = {"input": play.run.input, "start": start.isoformat(), "secrets": secrets,
              "instructions": instructions, "events": events}
    if play.scenario.stop_in:
        script["until"] = "10m"  # past any time the real run was looked at, before its timer
    return script


def reply_of(reply: dict) -> dict:
    body = reply["body"]
    if isinstance(body, dict) and body.get("jsonrpc"):
        return {"result": body["result"]}  # what a JSON-RPC instruction answers
    return {"status": reply["status"], "body": body}


def uncompressed(play: Played, script: dict[str, Any]) -> Simulation:
    """The dry run of the doc's own task, the script's times multiplied back by the factor:
    the story the compressed one must tell."""
    factor = play.scenario.factor
    script = compressed_script(script, 1 / factor)
    return simulate(load_text(task_text(play.key, replace(play.scenario, factor=None))),
                    script_from_data(script))


def compare(play: Played, dry: Simulation) -> None:
    run = play.run
    for path, check in play.scenario.shaped.items():
        *parents, last = path.split(".")
        real_at, dry_at = run.data, dry.data
        for part in parents:
            real_at, dry_at = real_at[part], dry_at[part]
        assert check(real_at[last], dry_at[last]), (path, real_at[last], dry_at[last])
        real_at[last] = dry_at[last]  # checked: the rest compares exactly
    # An event comes when the test sent it, however late the state before it was entered
    # (a dry run's calls take no time; a real one's do): times from the start, then.
    same_history(run, dry, time_in_state=False)
    same_times_from_start(run, dry)
    same_details(run, dry)


def test_every_documented_task_runs_as_its_dry_run(world, docs_cluster, load, far_end):
    secrets, replies, channel = world
    played = start_all(load, replies)
    play_all(played, channel)
    failures = []
    for play in played:
        script = dry_script(play, secrets)
        dry = simulate(load_text(play.text), script_from_data(script))
        try:
            if play.scenario.factor:
                same_story(uncompressed(play, script), dry)
            compare(play, dry)
        except AssertionError:
            failures.append(f"{play.key} {play.run.input}:\n{traceback.format_exc(limit=-2)}"
                            f"real: {path_of(play.run)}\n  {play.run.data}\n"
                            f"dry: {dry.to_text()}")
        if play.scenario.stop_in:
            run_cancel(run_id=play.run.pk)  # compared: its long timer is not waited for
    assert not failures, "\n".join(failures)
    # shipment's lifecycle: the webhook hears of its start (published after commit, by a
    # thread of the cluster)
    wait_until(lambda: far_end.calls["/hooks"] >= 1, timeout=10)
