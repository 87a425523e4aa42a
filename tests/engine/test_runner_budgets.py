"""A template over its budget fails its instruction or predicate through the normal routing;
the worker (the runner) goes on driving other runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from engine import instructions
from engine.runner import EngineSettings, Runner
from engine.runs import RunStatus, Trigger
from tests.engine.fakes import ScriptedHttp, new_run, ok

POOL = ThreadPoolExecutor(max_workers=2)

LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}"
HUGE = "{{ 'x' * 300000000 }}"

# ``set`` takes no on_error (the language refuses it): a failing set fails the run.
HOSTILE_SET = f"""
name: hostile
version: 1
start_state: a
states:
  a:
    instructions:
      - set: {{spin: "{LOOPS}"}}
    transitions:
      - to: done
  done: {{final: succeeded}}
"""

# A template in an instruction that takes on_error: the failure is routed there.
HOSTILE_HTTP = """
name: hostile_http
version: 1
start_state: a
states:
  a:
    instructions:
      - http: {url: "http://127.0.0.1:1/x", json: {spin: "TEMPLATE"}}
        save_as: answer
        on_error: broken
    transitions:
      - to: done
  broken: {final: failed}
  done: {final: succeeded}
"""

HOSTILE_WHEN = """
name: hostile_when
version: 1
start_state: a
states:
  a:
    transitions:
      - to: done
        when: "('x' | center(1000000000)) | length > 0"
  done: {final: succeeded}
"""

NORMAL = """
name: normal
version: 1
start_state: a
states:
  a:
    instructions:
      - set: {greeting: "Hello {{ input.name }}", n: "{{ input.items | length }}"}
    transitions:
      - to: done
  done: {final: succeeded}
"""


@pytest.fixture
def http():
    original = instructions.executor_for("http")
    # Renders its spec as the real executor does before it sends anything.
    fake = ScriptedHttp([lambda spec, ctx: ok(ctx.render(spec.json))(spec, ctx)])
    instructions.register(fake, replace=True)
    yield fake
    instructions.register(original, replace=True)


@pytest.fixture
def runner(store, clock):
    return Runner(store=store, clock=clock, pool=POOL, settings=EngineSettings())


def _normal_run_succeeds(runner, clock):
    run = new_run(NORMAL, clock.now(), input={"name": "Ada", "items": [1, 2]})
    assert runner.advance(run).finished
    assert run.status is RunStatus.SUCCEEDED
    assert run.data == {"greeting": "Hello Ada", "n": 2}


@pytest.mark.parametrize("template", [LOOPS, HUGE], ids=["nested loops", "300 MB string"])
def test_hostile_template_goes_to_on_error_and_the_worker_goes_on(runner, store, clock, http,
                                                                   template):
    run = new_run(HOSTILE_HTTP.replace("TEMPLATE", template), clock.now())
    assert runner.advance(run).finished
    assert run.state == "broken" and run.status is RunStatus.FAILED
    assert store.path()[-1] == ("a", "broken", "error")
    attempt = store.attempts[-1]
    assert not attempt.ok and attempt.error_class == "error" and attempt.attempt == 1
    assert "template budget exceeded" in attempt.error
    assert len(http.calls) == 1 and "answer" not in run.data
    _normal_run_succeeds(runner, clock)


@pytest.mark.parametrize("template", [LOOPS, HUGE], ids=["nested loops", "300 MB string"])
def test_hostile_set_fails_the_run_naming_the_budget(runner, store, clock, template):
    run = new_run(HOSTILE_SET.replace(LOOPS, template), clock.now())
    runner.advance(run)
    assert run.status is RunStatus.FAILED and run.error["code"] == "instruction_failed"
    assert "template budget exceeded" in run.error["message"]
    assert "TEMPLATE_MAX_" in run.error["message"] and run.data == {}
    _normal_run_succeeds(runner, clock)


def test_hostile_predicate_fails_the_run_with_the_budget_code(runner, store, clock):
    run = new_run(HOSTILE_WHEN, clock.now())
    runner.advance(run)
    assert run.status is RunStatus.FAILED
    assert run.error["code"] == "budget_exceeded"
    assert "TEMPLATE_MAX_OUTPUT=1000000" in run.error["message"]
    assert store.transitions[-1].trigger is Trigger.ERROR
    _normal_run_succeeds(runner, clock)


def test_a_template_cannot_outlast_the_steps_time(store, clock, http):
    settings = EngineSettings(step_max_seconds=0.2, template_max_seconds=60.0,
                              template_max_operations=10 ** 12)
    runner = Runner(store=store, clock=clock, pool=POOL, settings=settings)
    run = new_run(HOSTILE_HTTP.replace("TEMPLATE", LOOPS), clock.now())
    runner.advance(run)
    assert run.state == "broken"
    assert "evaluation time (seconds) over STEP_MAX_SECONDS=0.2" in store.attempts[-1].error


def test_a_failing_when_predicate_ends_the_run_instead_of_crashing_the_step(runner, clock):
    run = new_run(HOSTILE_WHEN.replace("('x' | center(1000000000)) | length > 0",
                                       "data.nope.x > 1"), clock.now())
    runner.advance(run)
    assert run.status is RunStatus.FAILED and run.error["code"] == "expression_error"
    assert "has no attribute 'nope'" in run.error["message"]


TWO_CALLS = """
name: two_calls
version: 1
start_state: a
states:
  a:
    instructions:
      - http: {url: "http://127.0.0.1:1/one"}
      - http: {url: "http://127.0.0.1:1/two", json: {n: "{{ 1 + 1 }}"}}
        save_as: second
    transitions:
      - to: done
  done: {final: succeeded}
"""


def test_a_step_whose_time_is_spent_parks_before_the_next_instruction(store, clock, http):
    import time

    def slow(spec, ctx):  # a far end slower than the whole step's budget
        time.sleep(0.05)
        return {"status": 200, "body": {}, "headers": {}}

    http.answers = [slow, lambda spec, ctx: ok(ctx.render(spec.json))(spec, ctx)]
    runner = Runner(store=store, clock=clock, pool=POOL,
                    settings=EngineSettings(step_max_seconds=0.02))
    run = new_run(TWO_CALLS, clock.now())
    outcome = runner.advance(run)
    assert not outcome.finished and outcome.wake_at == clock.now()
    assert len(http.calls) == 1 and run.cursor.index == 1
    assert runner.advance(run).finished  # the next step: a fresh budget for the template
    assert run.data["second"]["body"] == {"n": 2} and run.status is RunStatus.SUCCEEDED
