"""daphne holds a bounded set of database connections and reuses them (async_states/
pooled_http.py). Under Django's own ASGI handler every request opened a connection on a
thread of its own, and with CONN_MAX_AGE > 0 left it open when that thread ended."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.authtoken.models import Token

from tests.e2e.conftest import ARTIFACTS, Daphne, server_environment

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

THREADS = 3
REQUESTS = 120


def _backends(application_name: str) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    [application_name])
        return cur.fetchone()[0]


def test_daphne_keeps_at_most_its_threads_connections_across_many_requests(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("connections are counted in PostgreSQL's pg_stat_activity")
    user = User.objects.create_superuser("conn", "conn@example.invalid", "pw")
    token = Token.objects.create(user=user).key
    name = f"async-states-web-{uuid.uuid4().hex[:8]}"  # libpq reads PGAPPNAME
    env = server_environment(PGAPPNAME=name, WEB_THREADS=str(THREADS))
    web = Daphne(env, log=ARTIFACTS / "daphne-connections.log")
    try:
        local = threading.local()  # one keep-alive session per client thread

        def get(i: int) -> int:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            return local.session.get(f"{web.url}/api/runs/", timeout=30,
                                     headers={"Authorization": f"Token {token}"}).status_code

        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(get, range(REQUESTS)))
        assert statuses == [200] * REQUESTS
        held = _backends(name)
        assert 1 <= held <= THREADS, f"{held} connections held after {REQUESTS} requests"
    finally:
        web.stop()
