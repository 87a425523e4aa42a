"""GET /api/runs/: every filter, both orderings, and a cursor that stays put."""

from __future__ import annotations

from datetime import timedelta

import pytest

from taskapp import models
from taskapp.services import run_advance, run_start

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [r["id"] for r in response.json()["results"]]


@pytest.fixture
def runs(shop, waiting, clock):
    """Three runs: pending (v2), waiting (v1), failed (v1); created a minute apart."""
    failed = waiting("F")
    clock.advance(3601)
    run_advance(run_id=failed.pk)
    wait = waiting("W")
    clock.advance(60)
    shop(2)
    pending, _ = run_start(task="shop_order", input={"order_id": "P"})
    return {"failed": failed, "waiting": wait, "pending": pending}


def test_list_is_newest_first_and_paginated_with_a_cursor(api, runs):
    body = api.get("/api/runs/").json()
    assert set(body) == {"next", "previous", "results"}
    assert [r["id"] for r in body["results"]] == [
        str(runs[k].pk) for k in ("pending", "waiting", "failed")]


@pytest.mark.parametrize("query, expected", [
    ("task=shop_order", {"pending", "waiting", "failed"}),
    ("task=other", set()),
    ("version=2", {"pending"}),
    ("status=waiting", {"waiting"}),
    ("status=waiting&status=failed", {"waiting", "failed"}),
    ("state=awaiting_payment", {"waiting"}),
    ("state=expired", {"failed"}),
])
def test_filters(api, runs, query, expected):
    assert set(_ids(api.get(f"/api/runs/?{query}"))) == {str(runs[k].pk) for k in expected}


def test_time_in_the_current_state(api, runs, clock):
    clock.advance(3600)  # the waiting run has now been in awaiting_payment for an hour
    longer = _ids(api.get("/api/runs/?state=awaiting_payment&in_state_longer_than=30m"))
    assert longer == [str(runs["waiting"].pk)]
    assert _ids(api.get("/api/runs/?state=awaiting_payment&in_state_longer_than=2h")) == []
    assert _ids(api.get("/api/runs/?state=awaiting_payment&in_state_longer_than=1800")) == [
        str(runs["waiting"].pk)]
    assert _ids(api.get("/api/runs/?state=awaiting_payment&in_state_shorter_than=2h")) == [
        str(runs["waiting"].pk)]


def test_created_and_finished_ranges(api, runs):
    failed = models.Run.objects.get(pk=runs["failed"].pk)
    created = failed.created_at
    after = (created + timedelta(microseconds=1)).isoformat()
    assert str(failed.pk) not in _ids(api.get("/api/runs/", {"created_after": after}))
    assert _ids(api.get("/api/runs/", {"created_before": after})) == [str(failed.pk)]
    finished = failed.finished_at
    assert _ids(api.get("/api/runs/", {"finished_after": finished.isoformat()})) == [
        str(failed.pk)]
    assert _ids(api.get("/api/runs/", {
        "finished_before": (finished - timedelta(seconds=1)).isoformat()})) == []


def test_ordering_by_last_transition(api, runs, clock):
    run_advance(run_id=runs["pending"].pk)  # the newest change is now the pending run's
    models.Run.objects.filter(pk=runs["failed"].pk).update(
        updated_at=models.Run.objects.get(pk=runs["pending"].pk).updated_at + timedelta(1))
    ids = _ids(api.get("/api/runs/?ordering=-updated_at"))
    assert ids[0] == str(runs["failed"].pk)
    assert _ids(api.get("/api/runs/?ordering=updated_at"))[-1] == str(runs["failed"].pk)
    assert _ids(api.get("/api/runs/?ordering=created_at"))[0] == str(runs["failed"].pk)


@pytest.mark.parametrize("query, field", [
    ("status=bogus", "status"),
    ("in_state_longer_than=soon", "in_state_longer_than"),
    ("in_state_longer_than=-5", "in_state_longer_than"),
    ("in_state_longer_than=1e300", "in_state_longer_than"),
    ("created_after=yesterday", "created_after"),
    ("finished_before=0001-01-01T00:00:00%2B10:00", "finished_before"),
    ("version=x", "version"),
    ("ordering=name", "ordering"),
    ("cursor=garbage", "cursor"),
    ("page_size=0", "page_size"),
    ("page_size=x", "page_size"),
])
def test_bad_filters_are_400_naming_the_parameter(api, runs, query, field):
    response = api.get(f"/api/runs/?{query}")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]


def test_the_cursor_is_stable_while_new_runs_arrive(api, shop):
    first = [run_start(task="shop_order", input={"order_id": str(i)})[0] for i in range(5)]
    page1 = api.get("/api/runs/?page_size=2").json()
    for i in range(3):  # newer runs arrive between pages
        run_start(task="shop_order", input={"order_id": f"new-{i}"})
    page2 = api.get(page1["next"]).json()
    page3 = api.get(page2["next"]).json()
    seen = [r["id"] for page in (page1, page2, page3) for r in page["results"]]
    assert seen == [str(r.pk) for r in reversed(first)]
    assert page3["next"] is None
    back = api.get(page2["previous"]).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in page1["results"]]


def test_times_with_any_offset_are_read_in_utc(api, runs):
    # PostgreSQL refuses offsets past 15:59; Python accepts them up to 24 h.
    response = api.get("/api/runs/?finished_before=1754-08-16T12:05:25%2B16:08")
    assert response.status_code == 200 and response.json()["results"] == []
