"""One fault campaign: private servers up, the project's processes started on them, load
through the REST API while faults and hostile inputs land at seeded random moments, then a
bounded drain and the checks (``bench/faults/checks.py``)."""

from __future__ import annotations

import os
import random
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.far_end import FarEnd
from bench.faults import checks, probe
from bench.faults.fleet import FAULTS, Fleet
from bench.faults.hostile import CASES
from bench.faults.load import HOSTILE_TASK, KINDS, Load, far_end_handler
from bench.faults.services import PrivatePostgres, PrivateRedis
from bench.harness import setup_django


@dataclass(frozen=True)
class Plan:
    runs: int  # runs started through the API
    rate: float  # runs started per second
    faults: dict[str, int]  # kind -> how many times
    hostile_rounds: int  # each hostile case is sent this many times
    drain_seconds: float  # the longest wait for the runs to finish after the load
    clusters: int = 2

    @property
    def load_seconds(self) -> float:
        return self.runs / self.rate


QUICK = Plan(runs=150, rate=5, faults={kind: 1 for kind in FAULTS}, hostile_rounds=1,
             drain_seconds=120)
# 30 rounds, 24 of them kills; about 12 minutes of load.
LONG = Plan(runs=3600, rate=5, faults={"worker_kill": 6, "cluster_kill": 8, "cluster_term": 5,
                                       "daphne_kill": 5, "postgres_restart": 3,
                                       "redis_restart": 3},
            hostile_rounds=2, drain_seconds=180)


def timeline(plan: Plan, rng: random.Random) -> list[tuple[float, str, Any]]:
    """(seconds after the load began, "fault" or "hostile", what), in order; the faults
    fall in the first 90 % of the load so each one's runs are still under load."""
    actions = [("fault", kind) for kind, n in plan.faults.items() for _ in range(n)]
    actions += [("hostile", case) for case in CASES for _ in range(plan.hostile_rounds)]
    rng.shuffle(actions)
    moments = sorted(rng.uniform(0.05, 0.9) * plan.load_seconds for _ in actions)
    return [(at, what, item) for at, (what, item) in zip(moments, actions, strict=True)]


class Campaign:
    def __init__(self, plan: Plan, seed: int):
        self.plan, self.seed = plan, seed
        self.workdir = Path(tempfile.mkdtemp(prefix="async-states-faults-"))
        self.pg = PrivatePostgres(self.workdir)
        self.redis = PrivateRedis(self.workdir)
        self.far = FarEnd()
        self.faults: list[dict] = []
        self.hostile: list[dict] = []
        self.fleet: Fleet | None = None

    # ------------------------------------------------------------------ setup

    def setup(self) -> tuple[str, dict[str, str]]:
        self.pg.init()
        self.pg.start()
        url = self.pg.create_database("faults")
        self.redis.start()
        self.far.route("/call", far_end_handler(random.Random(self.seed + 3)))
        setup_django(url, REDIS_URL=self.redis.url, SECRET_KEY=secrets.token_urlsafe(40),
                     ASYNC_STATES_SECRET_FAR=self.far.url, Q_CLUSTER_NAME="faults",
                     Q_WORKERS="2", ASYNC_STATES_VAR_DIR=str(self.workdir))
        token, tokens = self._load_and_tokens()
        env = {k: v for k, v in os.environ.items() if k != "Q_WORKERS"}  # Cluster sets it
        self.fleet = Fleet(env, self.pg, self.redis, self.plan.clusters,
                           random.Random(self.seed + 2))
        self.fleet.start()
        return token, tokens

    def _load_and_tokens(self) -> tuple[str, dict[str, str]]:
        from django.contrib.auth.models import User
        from rest_framework.authtoken.models import Token

        from bench.scenarios.common import api_token
        from taskapp.services import definition_load

        for text in [text for text, _ in KINDS.values()] + [HOSTILE_TASK]:
            result = definition_load(text=text, source="faults")
            assert result.status == "loaded", (result.status, result.message, result.problems)
        nobody = User.objects.create_user("nobody")
        token = api_token()
        return token, {"user": token, "nobody": Token.objects.create(user=nobody).key}

    # ------------------------------------------------------------------ the campaign

    def run(self) -> dict[str, Any]:
        began_all = time.monotonic()
        try:
            token, tokens = self.setup()
            load = Load(self.fleet.web.url, token, random.Random(self.seed + 1), f"s{self.seed}")
            driver = threading.Thread(target=load.run, args=(self.plan.runs, self.plan.rate),
                                      daemon=True)
            print(f"load: {self.plan.runs} runs at {self.plan.rate}/s; "
                  f"{sum(self.plan.faults.values())} faults, "
                  f"{len(CASES) * self.plan.hostile_rounds} hostile inputs", flush=True)
            driver.start()
            self._execute(timeline(self.plan, random.Random(self.seed)), tokens)
            driver.join()
            self.fleet.watch()
            drained = checks.drain(load.record, self.plan.drain_seconds)
            result = self._check(load, drained)
            result["processes_left"] = self.fleet.stop()
        finally:
            self._teardown()
        result["seconds"] = round(time.monotonic() - began_all, 1)
        return result

    def _execute(self, actions: list[tuple[float, str, Any]], tokens: dict[str, str]) -> None:
        began = time.monotonic()
        for at, what, item in actions:
            while time.monotonic() < began + at:
                time.sleep(min(2.0, max(0.0, began + at - time.monotonic())))
                self.fleet.watch()
            if what == "fault":
                self._fault(item, time.monotonic() - began)
            else:
                self._hostile(item, tokens)
            self.fleet.watch()

    def _fault(self, kind: str, offset: float) -> None:
        try:
            record = self.fleet.inject(kind)
        except Exception as exc:  # a fault that could not be done: reported, the campaign goes on
            self.fleet.finding("error", kind, f"{type(exc).__name__}: {exc}"[:500])
            return
        record["offset"] = round(offset, 1)
        self.faults.append(record)
        print(f"  {offset:6.1f}s {kind} held={len(record.get('held', []))}", flush=True)

    def _hostile(self, case, tokens: dict[str, str]) -> None:
        result = probe.send(case, self.fleet.web.url, tokens)
        self.hostile.append(result)
        if result["problem"]:
            self.fleet.finding("hostile", case.name, result["problem"])
        if result["status"] is None and not self.fleet.healthy():
            self.fleet.finding("hang", "daphne", f"stopped answering /api/health/ after "
                               f"{case.name!r}; SIGKILLed and restarted")
            self.fleet.restart_web()

    def _check(self, load: Load, drained: float) -> dict[str, Any]:
        record = load.record
        return {
            "seed": self.seed, "plan": asdict(self.plan), "drain_seconds": drained,
            "faults": self.faults, "hostile": self.hostile, "findings": self.fleet.findings,
            "load": {"attempted": len(record.attempted), "accepted": len(record.accepted),
                     "gave_up": record.gave_up, "refused": record.refused,
                     "retries": record.retries, "server_errors": record.server_errors,
                     "samples_500": record.samples_500,
                     "events_sent": record.events_sent,
                     "events_gave_up": record.events_gave_up},
            "runs": checks.check_runs(record),
            "calls": checks.check_calls(self.far.requests["/call"], record),
            "takeover": checks.takeovers(self.faults),
        }

    def _teardown(self) -> None:
        from django.db import connections

        if self.fleet:
            self.fleet.stop()
        connections.close_all()
        self.redis.kill()
        self.pg.destroy()
        self.far.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
