"""``PatientLock``, the lock on each worker's timer in ``qcluster``'s Sentinel: a worker
SIGKILLed while holding it no longer hangs the Sentinel's guard for good. Real forked
processes, real signals."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

from taskapp.management.commands.qcluster import TIMER_LOCK_PATIENCE, PatientLock

_FORK = multiprocessing.get_context("fork")


def _die_holding(timer) -> None:
    with timer.get_lock():
        timer.value = 7
        os.kill(os.getpid(), signal.SIGKILL)


def _hold_briefly(timer, held) -> None:
    with timer.get_lock():
        held.set()
        time.sleep(0.2)
        timer.value = 2


def test_a_lock_whose_holder_died_is_given_up_after_the_patience():
    timer = _FORK.Value("f", -1, lock=PatientLock())
    holder = _FORK.Process(target=_die_holding, args=(timer,))
    holder.start()
    holder.join(5)
    assert holder.exitcode == -signal.SIGKILL
    began = time.monotonic()
    with timer.get_lock() as taken:  # what the guard does before it checks is_alive()
        alive = holder.is_alive()
    assert (taken, alive) == (False, False)
    assert time.monotonic() - began >= TIMER_LOCK_PATIENCE


def test_a_live_holder_is_waited_for_and_the_lock_is_reentrant():
    timer = _FORK.Value("f", -1, lock=PatientLock())
    held = _FORK.Event()
    holder = _FORK.Process(target=_hold_briefly, args=(timer, held))
    holder.start()
    assert held.wait(5)
    with timer.get_lock() as taken:
        assert taken
        assert timer.value == 2  # the accessor takes the lock again inside
        timer.value = 3
    holder.join(5)
    assert (holder.exitcode, timer.value) == (0, 3)
