"""The cluster's task queue alone: one process puts N task-sized messages (what django-q2's
pusher puts: a dict with a run id), two forked processes take them (the workers), for
django-q2's ``multiprocessing.Queue`` and ``taskapp.cluster_queue.KillSafeQueue``,
alternating, so their ratio is read on one machine state. No database, no broker.

    .venv/bin/python bench/cluster_queue.py 20000 3
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from taskapp.cluster_queue import KillSafeQueue  # noqa: E402

_FORK = multiprocessing.get_context("fork")
READERS = 2


def _task() -> dict:
    run_id = str(uuid.uuid4())
    return {"id": uuid.uuid4().hex, "name": f"advance {run_id}", "func":
            "taskapp.tasks.advance_run", "args": (run_id,), "kwargs": {}, "started": None,
            "cluster": "async_states", "ack_id": uuid.uuid4().hex}


def _take(tasks, done) -> None:
    taken = 0
    for _ in iter(tasks.get, "STOP"):
        taken += 1
    done.put(taken)


def per_second(make_queue, count: int) -> float:
    tasks, done = make_queue(), _FORK.Queue()
    readers = [_FORK.Process(target=_take, args=(tasks, done)) for _ in range(READERS)]
    for reader in readers:
        reader.start()
    message = _task()
    began = time.perf_counter()
    for _ in range(count):
        tasks.put(message)
    for _ in readers:
        tasks.put("STOP")
    assert sum(done.get(timeout=60) for _ in readers) == count
    took = time.perf_counter() - began
    for reader in readers:
        reader.join(10)
    return count / took


def main(count: int, rounds: int) -> None:
    from django_q.queues import Queue

    queues = {"django-q2 Queue": Queue, "KillSafeQueue": KillSafeQueue,
              # bounded as in a cluster: queue_limit = workers ** 2
              "django-q2 Queue, maxsize 4": lambda: Queue(maxsize=4),
              "KillSafeQueue, maxsize 4": lambda: KillSafeQueue(maxsize=4)}
    rates: dict[str, list[float]] = {name: [] for name in queues}
    for _ in range(rounds):
        for name, make in queues.items():
            rates[name].append(per_second(make, count))
    for name, values in rates.items():
        print(f"{name:27} {statistics.median(values):9,.0f} messages/s "
              f"(min {min(values):,.0f}, max {max(values):,.0f})")
    for bound in ("", ", maxsize 4"):
        ratio = statistics.median(rates[f"KillSafeQueue{bound}"]) / statistics.median(
            rates[f"django-q2 Queue{bound}"])
        print(f"KillSafeQueue / django-q2 Queue{bound}: {ratio:.2f}")


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "async_states.settings")
    django.setup()  # django_q reads its settings as it is imported
    main(int(sys.argv[1]), int(sys.argv[2]))
