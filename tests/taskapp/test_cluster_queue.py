"""``KillSafeQueue``: the cluster's task queue, which a reader SIGKILLed while waiting on it
cannot wedge — unlike django-q2's ``multiprocessing.Queue``, shown here wedging the same
way. Real forked processes, real signals."""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time

import pytest

from taskapp.cluster_queue import KillSafeQueue, MessageTooLarge, Overflow
from tests.processes import blocked_reading


def _await_reading(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if blocked_reading(pid):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never blocked reading its queue")


def _read_forever(q) -> None:
    while True:
        q.get()


def _reader(q, out) -> None:
    for item in iter(q.get, "STOP"):
        out.put(item)


def _fork(target, *args) -> multiprocessing.Process:
    process = multiprocessing.get_context("fork").Process(target=target, args=args,
                                                          daemon=True)
    process.start()
    return process


def _kill(process: multiprocessing.Process) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.join(5)


def test_django_q2s_queue_is_wedged_by_a_reader_killed_while_waiting():
    wedged = multiprocessing.get_context("fork").Queue()
    victim = _fork(_read_forever, wedged)
    _await_reading(victim.pid)  # holding the queue's read lock
    _kill(victim)
    wedged.put("task")
    with pytest.raises(queue.Empty):
        wedged.get(timeout=1)


def test_a_reader_killed_while_waiting_leaves_the_others_every_message():
    tasks, out = KillSafeQueue(), multiprocessing.get_context("fork").Queue()
    victim = _fork(_read_forever, tasks)
    survivor = _fork(_reader, tasks, out)
    _await_reading(victim.pid)
    _await_reading(survivor.pid)
    _kill(victim)
    for i in range(20):
        tasks.put({"task": i})
    tasks.put("STOP")
    assert [out.get(timeout=5)["task"] for _ in range(20)] == list(range(20))
    survivor.join(5)
    assert survivor.exitcode == 0
    assert tasks.empty()


def test_a_bounded_queue_counts_exactly_where_it_is_put_and_refuses_past_maxsize():
    tasks = KillSafeQueue(maxsize=3)
    for i in range(3):
        tasks.put("x" * (i * 50))
    assert tasks.qsize() == 3
    with pytest.raises(queue.Full):
        tasks.put("one too many", block=False)
    with pytest.raises(queue.Full):
        tasks.put("one too many", timeout=0.05)
    assert tasks.get() == ""
    assert tasks.qsize() == 2
    tasks.put("room again", block=False)
    assert [tasks.get(), tasks.get(), tasks.get()] == ["x" * 50, "x" * 100, "room again"]
    assert (tasks.qsize(), tasks.empty()) == (0, True)


def test_a_put_waits_for_a_reader_to_make_room():
    tasks, out = KillSafeQueue(maxsize=1), multiprocessing.get_context("fork").Queue()
    tasks.put(0)
    reader = _fork(_reader, tasks, out)
    for i in range(1, 10):
        tasks.put(i, timeout=5)
    tasks.put("STOP", timeout=5)
    assert [out.get(timeout=5) for _ in range(10)] == list(range(10))
    reader.join(5)


def test_get_with_a_timeout_raises_empty_and_without_blocking_at_once():
    tasks = KillSafeQueue()
    began = time.monotonic()
    with pytest.raises(queue.Empty):
        tasks.get(timeout=0.1)
    assert time.monotonic() - began >= 0.1
    with pytest.raises(queue.Empty):
        tasks.get(block=False)
    tasks.put("here")
    assert tasks.get(block=False) == "here"


def test_a_message_past_the_socket_limit_is_refused_with_the_limit_named():
    tasks = KillSafeQueue()
    with pytest.raises(MessageTooLarge) as caught:
        tasks.put(b"x" * (tasks.max_message_bytes + 1))
    assert caught.value.limit == tasks.max_message_bytes
    assert f"{tasks.max_message_bytes} bytes" in str(caught.value)
    assert tasks.empty()


def test_the_only_reader_killed_while_waiting_is_replaced_by_one_that_reads_on():
    """The monitor's case: one reader of the workers' results, replaced by the Sentinel."""
    results, out = KillSafeQueue(overflow=Overflow.DROP), multiprocessing.get_context(
        "fork").Queue()
    monitor = _fork(_read_forever, results)
    _await_reading(monitor.pid)
    _kill(monitor)
    results.put({"result": 1})
    replacement = _fork(_reader, results, out)
    results.put("STOP")
    assert out.get(timeout=5) == {"result": 1}
    replacement.join(5)
    assert replacement.exitcode == 0


def test_a_dropping_queue_never_blocks_a_writer_and_logs_what_it_dropped(caplog):
    """Nobody reads (the monitor dead or stuck): a worker's result put returns at once."""
    results = KillSafeQueue(overflow=Overflow.DROP)
    sent = 0
    while not caplog.records and sent < 100_000:
        results.put({"result": "x" * 1000})
        sent += 1
    assert caplog.records, "the buffer never filled"
    assert 100 < sent < 1000  # 256 KiB of 1 KB results, and their overhead
    assert "cluster_queue.dropped" in caplog.records[0].getMessage()
    results.put(b"x" * (results.max_message_bytes + 1))  # too large: dropped, not raised
    assert results.get(timeout=1) == {"result": "x" * 1000}
