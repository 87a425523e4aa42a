"""A suspect run's step is alone in its worker process (``taskapp.isolation``): it begins
once the ordinary steps in flight have ended, no ordinary step begins beside it during its
window, and after the window (or its end) ordinary steps go on."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from taskapp.isolation import StepIsolation


def _in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(0.005)


def test_ordinary_steps_run_side_by_side():
    isolation, inside, release = StepIsolation(), [], threading.Event()

    def step() -> None:
        with isolation.shared():
            inside.append(1)
            release.wait(5)

    threads = [_in_thread(step) for _ in range(4)]
    _until(lambda: len(inside) == 4)
    assert isolation.state() == (4, False)
    release.set()
    for thread in threads:
        thread.join(5)
    assert isolation.state() == (0, False)


def test_a_suspect_waits_for_the_steps_in_flight_and_keeps_new_ones_out():
    isolation, events = StepIsolation(), []
    ordinary_may_end, suspect_may_end = threading.Event(), threading.Event()

    def ordinary(name: str, gate: threading.Event | None) -> None:
        with isolation.shared():
            events.append(f"{name} began")
            if gate is not None:
                gate.wait(5)
            events.append(f"{name} ended")

    def suspect() -> None:
        with isolation.shared(), isolation.upgrade(seconds=30):
            events.append("suspect began")
            assert isolation.state() == (0, True)
            suspect_may_end.wait(5)
            events.append("suspect ended")

    first = _in_thread(lambda: ordinary("first", ordinary_may_end))
    _until(lambda: "first began" in events)
    alone = _in_thread(suspect)
    time.sleep(0.1)
    later = _in_thread(lambda: ordinary("later", None))  # arrives while the suspect waits
    time.sleep(0.1)
    assert events == ["first began"]  # the suspect waits for 'first'; 'later' for it
    ordinary_may_end.set()
    _until(lambda: "suspect began" in events)
    time.sleep(0.1)
    assert "later began" not in events  # nothing begins beside the suspect
    suspect_may_end.set()
    for thread in (first, alone, later):
        thread.join(5)
    assert events == ["first began", "first ended", "suspect began", "suspect ended",
                      "later began", "later ended"]


def test_the_window_is_bounded_so_a_hanging_suspect_holds_nothing_back_for_long():
    isolation, events, hang = StepIsolation(), [], threading.Event()

    def suspect() -> None:
        with isolation.shared(), isolation.upgrade(seconds=0.3):
            events.append("suspect began")
            hang.wait(10)

    alone = _in_thread(suspect)
    _until(lambda: events == ["suspect began"])
    began = time.monotonic()
    with isolation.shared():  # waits out the window, not the hanging step
        waited = time.monotonic() - began
    assert 0.1 < waited < 5, waited
    hang.set()
    alone.join(5)


def test_two_suspects_take_turns():
    isolation, running, most = StepIsolation(), [0], [0]
    lock = threading.Lock()

    def suspect() -> None:
        with isolation.shared(), isolation.upgrade(seconds=30):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1

    threads = [_in_thread(suspect) for _ in range(3)]
    for thread in threads:
        thread.join(5)
    assert most[0] == 1 and isolation.state() == (0, False)


def test_a_step_nested_in_another_of_the_same_thread_passes_through():
    """django-q2's sync mode runs the next step inside the caller's: waiting there for the
    outer step to end would never end."""
    isolation = StepIsolation()
    with isolation.shared():
        with isolation.shared(), isolation.upgrade(seconds=30):
            assert isolation.state() == (1, False)
    assert isolation.state() == (0, False)


def test_reset_forgets_what_a_parent_process_held():
    isolation = StepIsolation()
    with isolation.shared():
        isolation.reset()  # what the child of a fork sees
        assert isolation.state() == (0, False)


class _OneConnection:
    """A pool of one database connection, as ``taskapp.dbpool`` hands them to step threads:
    ``held`` for a step, ``lent`` back while it waits."""

    def __init__(self):
        self._free = threading.Semaphore(1)

    @contextmanager
    def held(self):
        self._free.acquire()
        try:
            yield
        finally:
            self._free.release()

    @contextmanager
    def lent(self):
        self._free.release()
        try:
            yield
        finally:
            self._free.acquire()


def test_waiting_lends_the_connection_so_the_steps_waited_for_can_end():
    """A suspect holding the only connection waits for an ordinary step that needs it for
    its commit, while a newer step holding it waits for the suspect: without lending while
    waiting, nobody would move."""
    isolation, pool, events = StepIsolation(), _OneConnection(), []
    call_out, suspect_waits = threading.Event(), threading.Event()

    def ordinary() -> None:
        with pool.held(), isolation.shared(waiting=pool.lent):
            with pool.lent():  # its call is out
                call_out.set()
                suspect_waits.wait(5)
                time.sleep(0.1)
            events.append("ordinary committed")

    def suspect() -> None:
        call_out.wait(5)
        with pool.held(), isolation.shared(waiting=pool.lent):
            suspect_waits.set()
            with isolation.upgrade(seconds=30, waiting=pool.lent):
                events.append("suspect alone")

    def newer() -> None:
        suspect_waits.wait(5)
        time.sleep(0.05)
        with pool.held(), isolation.shared(waiting=pool.lent):
            events.append("newer ran")

    threads = [_in_thread(target) for target in (ordinary, suspect, newer)]
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads), events
    assert events == ["ordinary committed", "suspect alone", "newer ran"]
