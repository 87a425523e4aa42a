"""The database connections a worker's step threads share (``taskapp.dbpool``): many
threads waiting on the outside world at once on a few connections, nothing lent inside a
transaction, and no connection left behind by a thread that queried while it had lent."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections, transaction

from taskapp import dbpool, models

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pools():
    """Make pools whose connections are closed after the test."""
    made: list[dbpool.ConnectionPool] = []
    yield lambda size: made.append(dbpool.ConnectionPool(size)) or made[-1]
    for pool in made:
        pool.close()


def _count_runs() -> int:
    return models.Run.objects.count()


def test_eight_threads_wait_outside_at_once_on_two_connections(pools):
    pool = pools(2)
    outside = threading.Barrier(8, timeout=10)  # passes only when all 8 wait at once
    used: list[object] = []
    lock = threading.Lock()

    def step() -> None:
        with pool.held():
            _count_runs()
            with lock:
                used.append(connection.connection)
            with dbpool.lent():
                outside.wait()
            _count_runs()
            with lock:
                used.append(connection.connection)

    with ThreadPoolExecutor(8) as threads:
        for done in [threads.submit(step) for _ in range(8)]:
            done.result()
    assert len({id(c) for c in used}) <= 2  # 16 database phases on 2 connections
    assert pool.opened() <= 2 and pool.in_use() == 0


def test_a_thread_outside_a_pool_keeps_its_own_connection():
    with dbpool.lent():
        _count_runs()
    assert connection.connection is not None


def test_nothing_is_lent_inside_a_transaction(pools):
    pool = pools(1)

    def step() -> tuple[int, int]:
        with pool.held(), transaction.atomic():
            _count_runs()
            with dbpool.lent():
                during = pool.in_use()
            _count_runs()
            return during, pool.in_use()

    with ThreadPoolExecutor(1) as threads:
        assert threads.submit(step).result() == (1, 1)


def test_a_query_made_while_lent_gets_a_connection_that_is_closed_on_return(pools):
    pool = pools(1)

    def step() -> bool:
        with pool.held():
            pooled = connections["default"]
            with dbpool.lent():
                _count_runs()  # Django opens this thread a connection of its own
                own = connections["default"]
            assert connections["default"] is pooled
            return own is not pooled and own.connection is None

    with ThreadPoolExecutor(1) as threads:
        assert threads.submit(step).result()
