"""Per-process caches are dropped in a forked child, through one mechanism."""

from __future__ import annotations

from engine import forksafe
from engine.instructions import http
from tests.engine.forking import in_child


def test_a_fork_safe_dict_is_empty_in_a_child_and_kept_in_the_parent():
    cache = forksafe.fork_safe_dict()
    cache["connection"] = object()
    assert in_child(lambda: cache == {}) == 0
    assert "connection" in cache


def test_a_fork_safe_local_is_empty_in_a_child():
    local = forksafe.fork_safe_local()
    local.value = 1
    assert in_child(lambda: not hasattr(local, "value")) == 0
    assert local.value == 1


def test_a_child_opens_its_own_http_session():
    parent = http.session()
    assert http.session() is parent
    assert in_child(lambda: http.session() is not parent) == 0


def test_forget_after_fork_runs_in_the_child_only():
    ran: list[int] = []
    forksafe.forget_after_fork(lambda: ran.append(1))
    assert in_child(lambda: ran == [1]) == 0
    assert ran == []
