"""The system checks refuse contradictory settings with messages that name them."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from taskapp import checks


def _ids(messages) -> list[str]:
    return [message.id for message in messages]


@override_settings(SECRET_KEY_FROM_ENVIRONMENT=True)
def test_shipped_settings_pass_every_check():
    call_command("check", fail_level="WARNING")


@override_settings(ASYNC_STATES={"LEASE_SECOND": 5})
def test_an_unknown_engine_key_is_refused_with_the_known_ones():
    [problem] = checks.check_engine_settings()
    assert problem.id == "async_states.E001"
    assert "'LEASE_SECOND'" in problem.msg and "LEASE_SECONDS" in problem.hint


@pytest.mark.parametrize("value", [0, -1, "60", True, None])
def test_a_lease_that_is_not_a_positive_number_is_refused(value):
    with override_settings(ASYNC_STATES={"LEASE_SECONDS": value}):
        problems = checks.check_engine_settings()
    assert _ids(problems) == ["async_states.E002"]
    assert "LEASE_SECONDS" in problems[0].msg


@pytest.mark.parametrize(("value", "refused"), [
    (None, False), (1, False), (32, False), (0, True), (-4, True), (2.5, True), ("8", True),
    (True, True)])
@pytest.mark.parametrize(("name", "default"), [
    ("STEP_THREADS", "64 on PostgreSQL"), ("STEP_DB_CONNECTIONS", "8 on PostgreSQL")])
def test_pool_sizes_are_none_or_a_whole_number_above_zero(value, refused, name, default):
    with override_settings(ASYNC_STATES={name: value}):
        problems = checks.check_engine_settings()
    assert _ids(problems) == (["async_states.E002"] if refused else [])
    if refused:
        assert name in problems[0].msg and default in problems[0].hint


@override_settings(ASYNC_STATES={"STEP_MAX_SECONDS": 60.0, "LEASE_SECONDS": 30.0})
def test_a_step_budget_longer_than_the_lease_is_warned_about():
    assert _ids(checks.check_time_budgets()) == ["async_states.W010"]


@override_settings(Q_CLUSTER={"timeout": 700, "retry": 660})
def test_a_django_q_timeout_not_below_its_retry_is_refused():
    assert _ids(checks.check_time_budgets()) == ["async_states.E011"]


@override_settings(Q_CLUSTER={"timeout": 20, "retry": 30})
def test_a_django_q_timeout_within_the_step_budget_is_refused():
    assert _ids(checks.check_time_budgets()) == ["async_states.E012"]


@override_settings(DASHBOARD_PUSH="layer",
                   CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
def test_layer_push_over_the_in_memory_layer_is_refused():
    assert "async_states.E020" in _ids(checks.check_deployment())


@override_settings(SECRET_KEY_FROM_ENVIRONMENT=False)
def test_a_generated_key_with_a_shared_database_is_warned_about(monkeypatch):
    monkeypatch.setattr(checks, "_shared_database", lambda: True)
    assert "async_states.W021" in _ids(checks.check_deployment())


def test_a_missing_task_directory_is_warned_about(tmp_path):
    with override_settings(ASYNC_STATES={"TASKDEFS_DIR": str(tmp_path / "nowhere")},
                           SECRET_KEY_FROM_ENVIRONMENT=True):
        problems = checks.check_deployment()
    assert _ids(problems) == ["async_states.W022"]
    assert "nowhere" in problems[0].msg


@override_settings(Q_CLUSTER={"timeout": 700, "retry": 660})
def test_manage_py_check_fails_on_an_error():
    with pytest.raises(SystemCheckError, match="E011"):
        call_command("check")
