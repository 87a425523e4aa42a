"""The admin renders every model read-only, and its actions go through the services."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from taskapp import models
from taskapp.services import event_send, run_advance, run_cancel, run_start

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_every_changelist_renders(admin_client, waiting_run):
    event_send(name="ping", run_id=waiting_run.pk, payload={"a": 1})
    for model in ("taskdefinition", "run", "transition", "event"):
        response = admin_client.get(f"/admin/taskapp/{model}/")
        assert response.status_code == 200, model


def test_run_list_filters_and_searches(admin_client, waiting_run):
    base = "/admin/taskapp/run/"
    for query in ("?status__exact=waiting", "?task_name=greeter", "?state=resting",
                  f"?q={waiting_run.pk}", "?q=not-a-uuid", "?q=greeter"):
        assert admin_client.get(base + query).status_code == 200, query
    page = admin_client.get(f"{base}?q={waiting_run.pk}").content.decode()
    assert str(waiting_run.pk)[:8] in page


def test_run_page_shows_history_and_pretty_json(admin_client, waiting_run):
    response = admin_client.get(f"/admin/taskapp/run/{waiting_run.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "&quot;greeting&quot;: &quot;Hello Ada&quot;" in page  # indented JSON in <pre>
    assert page.index("greet") < page.index("resting")
    assert 'name="_save"' not in page  # read-only: no save button


def test_definition_page_highlights_source_and_diffs_versions(admin_client, greeter):
    greeter(1)
    second = greeter(2)
    response = admin_client.get(f"/admin/taskapp/taskdefinition/{second.pk}/change/")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'class="yaml-source"' in page and "linenos" in page
    assert 'class="diff"' in page and "v1" in page
    first_page = admin_client.get(f"/admin/taskapp/taskdefinition/{second.pk - 1}/change/")
    assert "the first version" in first_page.content.decode()


def test_event_page_renders(admin_client, waiting_run):
    event, _ = event_send(name="ping", run_id=waiting_run.pk, payload={"a": 1})
    assert admin_client.get(f"/admin/taskapp/event/{event.pk}/change/").status_code == 200


@pytest.mark.parametrize("model", ["taskdefinition", "run", "transition", "event"])
def test_nothing_can_be_added(admin_client, model):
    assert admin_client.get(f"/admin/taskapp/{model}/add/").status_code == 403


def run_action(admin_client, action: str, runs: list[models.Run]):
    return admin_client.post(
        "/admin/taskapp/run/",
        {"action": action, "index": 0, "_selected_action": [str(r.pk) for r in runs]},
        follow=True,
    )


def test_cancel_action_cancels_and_reports_each_refusal(admin_client, waiting_run):
    finished = waiting_run
    run_cancel(run_id=finished.pk)
    run_advance(run_id=finished.pk)
    other, _ = run_start(task="greeter")
    response = run_action(admin_client, "cancel_runs", [finished, other])
    assert models.Run.objects.get(pk=other.pk).cancel_requested
    texts = messages_of(response)
    assert "cancel requested for 1 run" in texts
    assert any(f"cannot cancel run {finished.pk}" in t for t in texts)


def test_redrive_action_puts_a_cancelled_run_back_to_work(admin_client, waiting_run):
    run_cancel(run_id=waiting_run.pk)
    run_advance(run_id=waiting_run.pk)
    assert models.Run.objects.get(pk=waiting_run.pk).status == "cancelled"
    response = run_action(admin_client, "redrive_runs", [waiting_run])
    assert messages_of(response) == ["redriven: 1 run"]
    run = models.Run.objects.get(pk=waiting_run.pk)
    assert (run.status, run.state) == ("running", "resting")
    assert run.transitions.order_by("seq").last().trigger == "redrive"



def test_lists_do_not_query_per_row(admin_client, waiting_run):
    def queries_per_list() -> dict[str, int]:
        counts = {}
        for model in ("run", "transition", "event", "taskdefinition"):
            with CaptureQueriesContext(connection) as queries:
                admin_client.get(f"/admin/taskapp/{model}/")
            counts[model] = len(queries)
        return counts

    few = queries_per_list()
    for _ in range(5):
        run_start(task="greeter")
        event_send(name="ping", run_id=waiting_run.pk)
    assert queries_per_list() == few
