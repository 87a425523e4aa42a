"""Webhook secrets: third parties that cannot hold a user token send events to one task.

The task file names the secret (``webhook_secret: SHOP_WEBHOOK``); its value lives only in
the environment, in the variable the task language reads secrets from
(``ASYNC_STATES_SECRET_SHOP_WEBHOOK`` with the default prefix), never in the database. The
caller presents it in the ``X-Async-States-Webhook-Secret`` header on
``POST /api/tasks/{name}/events/``, and it is compared in constant time.
"""

from __future__ import annotations

import hmac
import os

from rest_framework import exceptions

from taskapp import selectors
from taskapp.conf import conf
from taskapp.selectors import definition_of

HEADER = "X-Async-States-Webhook-Secret"
_META = "HTTP_" + HEADER.upper().replace("-", "_")


def presented(request) -> bool:
    return _META in request.META


def check(request, *, task: str) -> bool:
    """True when the request's secret is the task's; ``AuthenticationFailed`` otherwise."""
    expected = expected_secret(task)
    given = request.META.get(_META, "")
    # compare_digest on bytes: constant time whatever the two values are.
    if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise exceptions.AuthenticationFailed(
            f"the {HEADER} header does not match the webhook secret of task '{task}'"
            if expected is not None else
            f"task '{task}' accepts no webhook secret (its file names none, or the "
            "environment does not set it)"
        )
    return True


def expected_secret(task: str) -> str | None:
    """The secret's value from the environment, or None when the task has none."""
    latest = selectors.task_definition(name=task)
    if latest is None:
        return None
    name = definition_of(latest.pk).webhook_secret
    value = os.environ.get(f"{conf.SECRETS_PREFIX}{name}") if name else None
    return value or None
