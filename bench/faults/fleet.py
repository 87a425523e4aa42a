"""The processes under test and the faults done to them: two ``qcluster`` process groups
(as if on two hosts), one daphne, the private PostgreSQL and Redis.

Each fault returns a record of what was done, when (``time.time()``, the clock the workers
stamp transitions with) and which runs were held by the processes it killed, so that the
takeover time of each can be read from the history afterwards.
"""

from __future__ import annotations

import os
import random
import signal
import time
from typing import Any

from bench.faults.services import PrivatePostgres, PrivateRedis
from bench.harness import Cluster, WebServer, group_members, process_tree, wait_until

FAULTS = ("worker_kill", "cluster_kill", "cluster_term", "daphne_kill", "postgres_restart",
          "redis_restart")
KILLS = {"worker_kill", "cluster_kill", "cluster_term", "daphne_kill"}
TERM_SECONDS = 20.0  # a cluster sent SIGTERM on its group must be gone by then
HEALTH_SECONDS = 5.0  # /api/health/ must answer (any status) within this


HOLD_WAIT = 5.0  # seconds a kill waits for its victim to hold a run (then kills anyway)


def held_runs(pids: set[int]) -> list[str]:
    """Runs whose lease a process in ``pids`` holds now (the owner is host:pid:...)."""
    from django.db import Error, close_old_connections

    from taskapp import models

    try:
        owners = models.Run.objects.exclude(lease_owner="").values_list("id", "lease_owner")
        return [str(run) for run, owner in owners if int(owner.split(":")[1]) in pids]
    except Error:  # the database is down (a fault of the campaign's own making)
        close_old_connections()
        return []


class Fleet:
    def __init__(self, env: dict[str, str], pg: PrivatePostgres, redis: PrivateRedis,
                 clusters: int, rng: random.Random):
        self.env, self.pg, self.redis, self.rng = env, pg, redis, rng
        # Which process dies depends on who holds a lease at that moment: drawn from a
        # stream of its own, so the seed still replays every other choice.
        self.victims = random.Random(rng.random())
        self.clusters: list[Cluster] = [Cluster(**env) for _ in range(clusters)]
        self.web: WebServer | None = None
        self.findings: list[dict[str, Any]] = []

    def start(self) -> None:
        for cluster in self.clusters:
            cluster.__enter__()
        self.web = WebServer(**self.env).__enter__()

    # ------------------------------------------------------------------ faults

    def inject(self, kind: str) -> dict[str, Any]:
        return getattr(self, kind)()

    def worker_kill(self) -> dict[str, Any]:
        """SIGKILL one worker: a holder of a lease if any, else any child of a sentinel."""
        index, cluster = self._pick_cluster()

        def tree() -> set[int]:
            return _workers(cluster.process.pid) or set(cluster.tree())

        wait_until(lambda: held_runs(tree()), HOLD_WAIT, every=0.02)
        for _ in range(3):  # a worker may exit by itself (recycled) between look and kill
            workers = tree()
            holders = sorted({pid for pid in workers if held_runs({pid})})
            victim = self.victims.choice(holders or sorted(workers))
            held = held_runs({victim})
            at = time.time()
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                continue
            return {"kind": "worker_kill", "at": at, "cluster": index, "pid": victim,
                    "held": held}
        raise RuntimeError("every worker picked had exited before the kill, three times")

    def cluster_kill(self) -> dict[str, Any]:
        """SIGKILL a whole cluster's process group (a host lost), restart it 1-3 s later."""
        index, cluster = self._pick_cluster()
        held = self._await_held(cluster)
        at = time.time()
        cluster.kill()
        time.sleep(self.rng.uniform(1, 3))
        self._restart_cluster(index)
        return {"kind": "cluster_kill", "at": at, "cluster": index, "held": held}

    def cluster_term(self) -> dict[str, Any]:
        """SIGTERM a cluster's whole process group (systemd's default stop), then restart."""
        index, cluster = self._pick_cluster()
        held = self._await_held(cluster)
        at = time.time()
        pgid = cluster.process.pid
        os.killpg(pgid, signal.SIGTERM)
        stopped = wait_until(lambda: not group_members(pgid), TERM_SECONDS, every=0.1)
        if not stopped:
            self.finding("hang", f"cluster {index}", "did not stop within "
                         f"{TERM_SECONDS:.0f}s of SIGTERM to its process group "
                         f"(left: {_describe(group_members(pgid))}); SIGKILLed")
            os.killpg(pgid, signal.SIGKILL)
        cluster.process.wait(timeout=10)
        self._restart_cluster(index)
        return {"kind": "cluster_term", "at": at, "cluster": index, "held": held,
                "stop_seconds": round(time.time() - at, 2), "stopped": stopped}

    def daphne_kill(self) -> dict[str, Any]:
        at = time.time()
        self.restart_web()
        return {"kind": "daphne_kill", "at": at}

    def postgres_restart(self) -> dict[str, Any]:
        at = time.time()
        self.pg.restart(self.rng.uniform(0.5, 3))
        return {"kind": "postgres_restart", "at": at, "down": round(time.time() - at, 2)}

    def redis_restart(self) -> dict[str, Any]:
        at = time.time()
        self.redis.restart(self.rng.uniform(0.5, 3))
        return {"kind": "redis_restart", "at": at, "down": round(time.time() - at, 2)}

    # ------------------------------------------------------------------ upkeep

    def _pick_cluster(self) -> tuple[int, Cluster]:
        index = self.rng.randrange(len(self.clusters))
        return index, self.clusters[index]

    def _await_held(self, cluster: Cluster) -> list[str]:
        """The runs the cluster holds, at the first moment (within ``HOLD_WAIT``) it holds
        some: a kill then interrupts work in flight, and its takeover can be timed."""
        held: list[str] = []

        def holding() -> bool:
            held[:] = held_runs(set(cluster.tree()))
            return bool(held)
        wait_until(holding, HOLD_WAIT, every=0.02)
        return held

    def _restart_cluster(self, index: int) -> None:
        self.clusters[index] = Cluster(**self.env).__enter__()

    def restart_web(self) -> None:
        """SIGKILL daphne's process group and start it again on the same port."""
        old = self.web
        old.kill()
        self.web = WebServer(port=old.port, **self.env).__enter__()

    def healthy(self) -> bool:
        """Does daphne answer /api/health/ at all (a 503 while a service is down counts)?"""
        import requests

        try:
            requests.get(f"{self.web.url}/api/health/", timeout=HEALTH_SECONDS)
        except requests.RequestException:
            return False
        return True

    def watch(self) -> None:
        """Restart what died without being told (a finding), and a daphne that hangs."""
        for index, cluster in enumerate(self.clusters):
            if cluster.process.poll() is not None:
                self.finding("exit", f"cluster {index}", "exited by itself "
                             f"({cluster.process.returncode}): "
                             + "".join(cluster.log[-5:]).strip()[-500:])
                self._restart_cluster(index)
        if self.web.process.poll() is not None:
            self.finding("exit", "daphne", f"exited by itself ({self.web.process.returncode})")
            self.restart_web()
        elif not self.healthy():
            self.finding("hang", "daphne", "did not answer /api/health/ within "
                         f"{HEALTH_SECONDS:.0f}s; SIGKILLed and restarted")
            self.restart_web()

    def finding(self, kind: str, where: str, detail: str) -> None:
        self.findings.append({"kind": kind, "where": where, "detail": detail,
                              "at": time.time()})
        print(f"  finding: {kind} {where}: {detail}", flush=True)

    def stop(self) -> list[str]:
        """Stop everything (SIGTERM, as a process manager would); returns what was left
        running afterwards (a leak)."""
        left = []
        for index, cluster in enumerate(self.clusters):
            if cluster.process is None:
                continue
            pgid = cluster.process.pid
            cluster.__exit__()
            if members := group_members(pgid):
                left.append(f"cluster {index}: pids {members}")
                os.killpg(pgid, signal.SIGKILL)
        if self.web:
            self.web.__exit__()
        return left


def _describe(pids: list[int]) -> str:
    """pid, state and parent of each process: enough to tell a wedged child from a leak."""
    described = []
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        described.append(f"{pid} state {fields[0]} parent {fields[1]}")
    return ", ".join(described)


def _workers(root: int) -> set[int]:
    """The processes django-q2's sentinel (the cluster's one child) started: its workers,
    monitor and pusher."""
    tree = set(process_tree(root))
    parents = {}
    for pid in tree:
        try:
            parents[pid] = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    sentinels = {pid for pid, parent in parents.items() if parent == root}
    return {pid for pid, parent in parents.items() if parent in sentinels}
