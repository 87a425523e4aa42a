"""Skip, or fail, a test that needs an outside service (PostgreSQL, Redis, ...).

A test calls ``require_service("redis", check)`` first. When the service is down the test is
skipped with the reason, unless ``REQUIRE_SERVICES=1`` is set (CI, where a missing service is
a broken environment and must not pass silently as skips), in which case it fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest


def require_service(name: str, check: Callable[[], object]) -> None:
    """Return when ``check()`` succeeds; otherwise skip, or fail under ``REQUIRE_SERVICES=1``.

    Args:
        name: what the service is, for the message (``"PostgreSQL at 127.0.0.1:5432"``).
        check: raises, or returns ``False``, when the service is not usable.
    """
    try:
        ok = check() is not False
        reason = "" if ok else "the check returned False"
    except Exception as exc:  # any failure of the probe means "not available"
        ok, reason = False, f"{type(exc).__name__}: {exc}"
    if ok:
        return None
    message = f"{name} is not available ({reason})"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}; REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
    pytest.skip(message)


MARIADB_URL = "mysql://root@127.0.0.1:3306/test"


def require_mariadb() -> None:
    """MariaDB at 127.0.0.1:3306 (user root, no password), with the database ``test``
    (created when missing): the db instruction's MySQL driver."""

    def check() -> None:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=2)
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE DATABASE IF NOT EXISTS test")
        finally:
            conn.close()

    require_service("MariaDB at 127.0.0.1:3306 (user root, no password)", check)
