"""API test fixtures: users with and without the permissions to change runs (and to
simulate tasks), clients
authenticated by token, a shop-order task with an input schema, a subscription and a
webhook secret, and a FakeClock. Nothing is dispatched to a cluster: tests advance runs by
calling the services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from taskapp.conf import conf
from taskapp.services import definition_load, run_advance, run_start

SHOP = """\
name: shop_order
version: VERSION
description: Waits for the payment of an order.
webhook_secret: SHOP_WEBHOOK
retention: {succeeded_days: 1}
input_schema:
  type: object
  required: [order_id]
  properties:
    order_id: {type: string}
    amount: {type: number, minimum: 0}
start_state: awaiting_payment
states:
  awaiting_payment:
    instructions:
      - set: {status: waiting}
    transitions:
      - to: paid
        subscribe: {event: payment.succeeded, correlate: "{{ input.order_id }}", save_as: payment}
      - to: expired
        wait: 1h
  paid:
    final: succeeded
  expired:
    final: failed
"""
WEBHOOK_SECRET = "s3cret-shop-webhook-value"


@pytest.fixture(autouse=True)
def _no_dispatch(no_dispatch):
    """Every API test drives runs itself (tests/conftest.py's ``no_dispatch``)."""
    yield


@pytest.fixture
def shop(db):
    """Load the shop_order task; ``shop(2)`` loads another version."""

    def load(version: int = 1):
        result = definition_load(text=SHOP.replace("VERSION", str(version)), source="shop.yaml")
        assert result.status == "loaded", result.problems or result.message
        return result.definition

    load()
    return load


@pytest.fixture
def webhook_env(monkeypatch):
    monkeypatch.setenv(f"{conf.SECRETS_PREFIX}SHOP_WEBHOOK", WEBHOOK_SECRET)
    return WEBHOOK_SECRET


def _user(name: str, *perms: str) -> User:
    user = User.objects.create_user(name, password="pw-" + name)
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="taskapp", codename__in=perms))
    return user


def _client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def operator(db) -> User:
    return _user("operator", "add_run", "change_run", "simulate_task")


@pytest.fixture
def reader(db) -> User:
    return _user("reader")


@pytest.fixture
def api(operator) -> APIClient:
    """A client with a token of a user allowed to start, cancel and redrive runs."""
    return _client(operator)


@pytest.fixture
def read_only_api(reader) -> APIClient:
    return _client(reader)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def waiting(shop):
    """A shop_order run advanced once: waiting in awaiting_payment for payment or 1 h."""

    def make(order_id: str = "A-1", **extra):
        run, _ = run_start(task="shop_order", input={"order_id": order_id}, **extra)
        run_advance(run_id=run.pk)
        run.refresh_from_db()
        assert (run.status, run.state) == ("waiting", "awaiting_payment")
        return run

    return make


@pytest.fixture
def failed(waiting, clock):
    """A shop_order run that waited more than an hour: failed in ``expired``."""
    run = waiting("LATE-1")
    clock.advance(3601)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.state) == ("failed", "expired")
    return run
