"""Takeover after a crash: two clusters (3 workers each) share PostgreSQL and Redis under a
steady load of runs that call a slow far end; in each round the one whose workers hold runs
is SIGKILLed as a whole (a host lost), then restarted. For every run it held:

  released  = the run's lease freed by the surviving cluster − the SIGKILL (polled, 20 ms)
  moved on  = the run's next committed transition (``Transition.at``) − the SIGKILL

"moved on" includes calling the far end again (``HOLD`` seconds): the step that was cut
short is done over. Leases are the default 60 s and the backstop 30 s, so every figure
below them is the liveness takeover (``CLUSTER_DEAD_SECONDS``) at work.
"""

from __future__ import annotations

import time

from bench.far_end import FarEnd
from bench.harness import Cluster, paced, reset_runs, summary, wait_until

HOLD = 0.3
WORKERS = 3
RATE = 1.0  # runs started per second: ~1.3 worker-s/s, under half of one cluster's 3

RELAY = "name: takeover_relay\nversion: 1\nstart_state: s1\nstates:\n" + "".join(
    f"  s{i}:\n    instructions:\n"
    f'      - http: {{method: POST, url: "{{{{ secrets.FAR }}}}/hold", json: {{s: {i}}}}}\n'
    f"    transitions:\n      - to: {f's{i + 1}' if i < 4 else 'done'}\n"
    for i in range(1, 5)) + "  done: {final: succeeded}\n"


def _slow_far_end() -> FarEnd:
    """Answers every POST to /hold after ``HOLD`` seconds."""
    far = FarEnd()
    far.route("/hold", lambda number, request: (200, {}, HOLD))
    return far


def run(suite) -> None:
    from taskapp.services import definition_load

    rounds = suite.pick(quick=2, full=20)
    loaded = definition_load(text=RELAY, source="bench")
    assert loaded.status in {"loaded", "unchanged"}, (loaded.status, loaded.message)
    scenario = suite.report.scenario(
        "takeover", "Takeover: a SIGKILLed cluster's runs move on (2 clusters, PG + Redis)",
        rounds=rounds, clusters=2, workers_per_cluster=WORKERS, far_end_hold_s=HOLD,
        load_runs_per_s=RATE, task="takeover_relay (4 states, one slow call each)",
        lease_s=60, measured="from the SIGKILL, for every run the killed cluster held")
    reset_runs(suite.redis_url)
    far = _slow_far_end()
    released: list[float] = []
    moved: list[float] = []
    env = {**suite.env, "ASYNC_STATES_SECRET_FAR": far.url}
    try:
        with Cluster(WORKERS, **env) as a, Cluster(WORKERS, **env) as b:
            for i in range(rounds):
                victim, survivor = (a, b) if i % 2 == 0 else (b, a)
                got = _round(victim, survivor)
                released += got[0]
                moved += got[1]
    finally:
        far.close()
    for name, values in (("released", released), ("moved on", moved)):
        if not values:
            suite.report.unavailable(scenario, name, "p99_s", "no run was held at a kill")
            continue
        s = summary(values)
        suite.report.add(scenario, f"{name} (n={s['n']})",
                         {k: {"median": s[k], "min": s[k], "max": s[k], "reps": 1}
                          for k in ("p50", "p99", "max")},
                         {"p50": "s", "p99": "s", "max": "s"})
    scenario.notes.append(f"{len(moved)} held runs over {rounds} kill rounds")


def _round(victim: Cluster, others: Cluster) -> tuple[list[float], list[float]]:
    """Load, kill ``victim`` while it holds runs, measure, restart it, drain."""
    from bench.scenarios.common import finished, service_start
    from taskapp import models

    cluster_id = _cluster_id(victim.process.pid)
    ids: list[str] = []
    for _ in paced(60, RATE):
        ids.append(service_start("takeover_relay"))
        if _held(cluster_id) and len(ids) >= 6:
            break
    victim.kill()
    killed = time.time()
    # What it held when it died: read after the kill, when nothing of it can commit (a
    # run it held a moment before may have finished meanwhile).
    held = _held(cluster_id)
    released = _released(cluster_id, held, killed)
    if not wait_until(lambda: all(_count(r) > n for r, n in held.items()), 60, every=0.05):
        stuck = list(models.Run.objects.filter(id__in=list(held)).values_list(
            "id", "lease_owner", "wake_at", "status", "state"))
        raise AssertionError(f"held by {cluster_id}, not moved on in 60 s: {stuck}\n"
                             + "".join(line for line in others.log[-40:]))
    moved = []
    for run_id, count in held.items():
        at = models.Transition.objects.get(run_id=run_id, seq=count + 1).at
        moved.append(at.timestamp() - killed)
    victim.__enter__()  # restarted, as a process manager would
    assert finished(ids, 120), "runs of the round did not finish"
    return released, moved


def _cluster_id(pid: int) -> str:
    from taskapp import models

    found: list[str] = []

    def beating() -> bool:
        owners = models.ClusterHeartbeat.objects.values_list("owner", flat=True)
        found[:] = [o.partition("/")[2] for o in owners if o.partition("/")[0].endswith(
            f":{pid}")]
        return bool(found and found[0])

    assert wait_until(beating, 30, every=0.05), f"cluster {pid} never beat"
    return found[0]


def _held(cluster_id: str) -> dict[str, int]:
    from taskapp import models

    return {str(run_id): _count(run_id) for run_id in models.Run.objects.filter(
        lease_owner__startswith=f"{cluster_id}/").values_list("id", flat=True)}


def _count(run_id: object) -> int:
    from taskapp import models

    return models.Transition.objects.filter(run_id=run_id).count()


def _released(cluster_id: str, held: dict[str, int], killed: float) -> list[float]:
    """Seconds from the kill until no worker of the dead cluster holds each run (a live
    worker may hold it again by then)."""
    from taskapp import models

    left, out = set(held), []
    while left and time.time() < killed + 60:
        still = {str(r) for r in models.Run.objects.filter(
            id__in=left, lease_owner__startswith=f"{cluster_id}/").values_list("id", flat=True)}
        out += [time.time() - killed] * len(left - still)
        left = still
        time.sleep(0.02)
    return out
