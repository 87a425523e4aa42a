"""The state diagram in a real browser (Debian's Chromium, Playwright), against daphne and
the real cluster: a task's diagram before any run, then a run started through the API lights
up its node on the task page and on its own page, whose path grows as transitions commit —
all without a reload. Screenshots go to ``var/test-artifacts/``.
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from taskapp.services import definition_load
from tests.dashboard.test_browser import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    PASSWORD,
    _in_thread,
    browser,
    servers,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# The run waits in ``pause`` for an event the test sends, so nothing races a timer.
TASK = """
name: diagram_demo
version: 1
description: Greets, waits for "go", succeeds.
start_state: greeting
states:
  greeting:
    instructions:
      - set: {greeting: "Hello {{ input.name }}"}
    transitions:
      - to: pause
  pause:
    transitions:
      - to: done
        subscribe: {event: go}
      - to: given_up
        wait: 1h
  done:
    final: succeeded
  given_up:
    final: failed
"""


def _api(base: str, token: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


def _token(user_model) -> str:
    from rest_framework.authtoken.models import Token

    user = user_model.objects.create_superuser(
        username="diagrams", email="d@example.invalid", password=PASSWORD)
    return Token.objects.create(user=user).key


def _sign_in(page, base: str) -> None:
    page.goto(f"{base}/admin/login/?next=/")
    page.fill("#id_username", "diagrams")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/")


def _node(page, state: str):
    return page.locator(f'svg.diagram g.node[data-state="{state}"]')


def _edge(page, source: str, target: str):
    return page.locator(f'svg.diagram g.edge[data-from="{source}"][data-to="{target}"]')


def test_diagram_lights_up_a_run_and_grows_its_path_live(
        servers, browser, django_user_model):  # noqa: F811 (the fixtures imported above)
    from playwright.sync_api import expect

    assert _in_thread(definition_load, text=TASK, source="demo.yaml").status == "loaded"
    token = _in_thread(_token, user_model=django_user_model)
    task_page = browser.new_page()
    _sign_in(task_page, servers)

    # Before any run: the diagram, its controls, the YAML; no counts on any node.
    task_page.goto(f"{servers}/tasks/diagram_demo/")
    expect(task_page.locator("#live")).to_have_class("live live", timeout=10_000)
    expect(_node(task_page, "pause")).to_be_visible()
    expect(task_page.locator("#task-runs")).to_contain_text("no runs yet")
    expect(task_page.locator("svg.diagram g.badge")).to_have_count(0)
    expect(_edge(task_page, "pause", "given_up")).to_contain_text("wait 1h")
    expect(task_page.get_by_role("button", name="Fit the whole diagram")).to_be_visible()
    task_page.evaluate("window.notReloaded = true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    task_page.screenshot(path=str(ARTIFACTS / "task-before-run.png"), full_page=True)

    run = _api(servers, token, "/api/runs/", {"task": "diagram_demo", "input": {"name": "Ada"}})
    pause = _node(task_page, "pause")
    expect(pause).to_have_class("node has-runs", timeout=20_000)
    expect(pause.locator("g.badge.count")).to_have_text("1 run")
    expect(pause).to_have_attribute("aria-label", "pause. 1 run (waiting 1)")

    run_page = browser.new_page()
    run_page.goto(f"{servers}/runs/{run['id']}/")
    expect(run_page.locator("#live")).to_have_class("live live", timeout=10_000)
    expect(_node(run_page, "pause")).to_have_class("node visited current")
    expect(_node(run_page, "pause").locator("g.badge.now")).to_have_text("▶ now")
    expect(_edge(run_page, "greeting", "pause")).to_have_class("edge transition taken")
    expect(_edge(run_page, "pause", "done")).to_have_class("edge transition")
    run_page.evaluate("window.notReloaded = true")

    _api(servers, token, f"/api/runs/{run['id']}/events/", {"name": "go"})

    # The path grows on the open run page: the subscribe edge is taken, done is current.
    done = _node(run_page, "done")
    expect(done).to_have_class("node final final-succeeded visited current", timeout=20_000)
    expect(done.locator("g.badge.now")).to_have_text("■ ended here")
    expect(_edge(run_page, "pause", "done")).to_have_class("edge transition taken")
    expect(_edge(run_page, "pause", "done").locator("text")).to_have_text(
        "subscribe go ×1")
    expect(_node(run_page, "pause")).to_have_class("node visited")
    expect(_edge(run_page, "pause", "given_up")).to_have_class("edge transition")
    # The task page moved its count from pause to done.
    expect(_node(task_page, "done").locator("g.badge.count")).to_have_text(
        "1 run", timeout=20_000)
    expect(pause.locator("g.badge")).to_have_count(0)

    # Keyboard: a node takes the focus and says what it is.
    run_page.locator(".diagram-view").focus()
    run_page.keyboard.press("Tab")
    focused = run_page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused.startswith("greeting: start · 1 instruction")

    assert task_page.evaluate("window.notReloaded") is True
    assert run_page.evaluate("window.notReloaded") is True
    task_page.screenshot(path=str(ARTIFACTS / "task-after-run.png"), full_page=True)
    run_page.screenshot(path=str(ARTIFACTS / "run-diagram.png"), full_page=True)


def _big_task(states: int) -> str:
    lines = ["name: big_demo", "version: 1", "start_state: s00", "states:"]
    for i in range(states - 1):
        lines += [f"  s{i:02d}:", "    transitions:", f"      - to: s{i + 1:02d}",
                  "        wait: 1s", "      - to: s00", "        when: data.retry"]
    lines += [f"  s{states - 1:02d}:", "    final: succeeded"]
    return "\n".join(lines) + "\n"


def _view_box(page) -> list[float]:
    return [float(v) for v in page.locator("svg.diagram").get_attribute("viewBox").split()]


def test_a_fifty_state_diagram_fits_zooms_and_pans(servers, browser,  # noqa: F811
                                                    django_user_model):
    from playwright.sync_api import expect

    assert _in_thread(definition_load, text=_big_task(50), source="big.yaml").status == "loaded"
    _in_thread(_token, user_model=django_user_model)
    page = browser.new_page()
    _sign_in(page, servers)
    page.goto(f"{servers}/tasks/big_demo/")
    expect(page.locator("svg.diagram g.node")).to_have_count(50)

    # Too big to fit legibly: it opens at its natural size on the start state.
    full_height = float(page.locator("svg.diagram").get_attribute("height"))
    opened = _view_box(page)
    assert opened[3] < full_height / 3
    start = page.locator('svg.diagram g.node[data-state="s00"] rect.box')
    assert opened[1] <= float(start.get_attribute("y")) <= opened[1] + opened[3]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "task-50-states.png"))

    page.get_by_role("button", name="Fit the whole diagram").click()
    fitted = _view_box(page)
    assert fitted[3] >= full_height
    page.get_by_role("button", name="Zoom in").click()
    page.get_by_role("button", name="Zoom in").click()
    zoomed = _view_box(page)
    assert zoomed[2] < fitted[2] * 0.7
    page.locator(".diagram-view").focus()
    page.keyboard.press("ArrowDown")
    assert _view_box(page)[1] > zoomed[1]
    # A state reached with the keyboard far down the chain is brought into view.
    page.locator('svg.diagram g.node[data-state="s45"]').focus()
    node_y = float(page.locator('svg.diagram g.node[data-state="s45"] rect.box')
                   .get_attribute("y"))
    box = _view_box(page)
    assert box[1] <= node_y <= box[1] + box[3]
    page.get_by_role("button", name="Fit the whole diagram").click()
    assert _view_box(page) == fitted
    page.screenshot(path=str(ARTIFACTS / "task-50-states-fitted.png"))


def test_the_task_page_compares_two_versions_by_keyboard(servers, browser,  # noqa: F811
                                                         django_user_model):
    from playwright.sync_api import expect

    second = TASK.replace("version: 1", "version: 2").replace("wait: 1h", "wait: 2h")
    for text in (TASK, second):
        assert _in_thread(definition_load, text=text, source="demo.yaml").status == "loaded"
    _in_thread(_token, user_model=django_user_model)
    page = browser.new_page()
    _sign_in(page, servers)
    page.goto(f"{servers}/tasks/diagram_demo/")

    # The newest version opens with its diff against the previous one, signed line by line.
    diff = page.get_by_role("region", name="Changes from v1 to v2")
    expect(diff.locator("del")).to_contain_text(["-version: 1", "-        wait: 1h"])
    expect(diff.locator("ins")).to_contain_text(["+version: 2", "+        wait: 2h"])

    # Keyboard only: choose v1 in the labelled picker, Tab to the button, Enter.
    page.get_by_label("Show version").focus()
    page.keyboard.press("ArrowDown")  # the list is newest first: v2, then v1
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.locator("#compare")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/tasks/diagram_demo/?version=1&diff=")
    expect(page.locator("#diff-none")).to_contain_text("nothing before it")
    # And back, comparing v2 with v1 chosen explicitly.
    page.goto(f"{servers}/tasks/diagram_demo/?version=2&diff=1")
    expect(page.get_by_label("compared with")).to_have_value("1")
    page.get_by_role("region", name="Changes from v1 to v2").focus()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "task-version-diff.png"), full_page=True)


def test_a_dry_run_from_the_task_page_lights_up_its_path(servers, browser,  # noqa: F811
                                                         django_user_model):
    from playwright.sync_api import expect

    from tests.dashboard.test_task_dry_run import HELLO, SCRIPT

    assert _in_thread(definition_load, text=HELLO, source="hello.yaml").status == "loaded"
    _in_thread(_token, user_model=django_user_model)  # a superuser: may simulate
    page = browser.new_page()
    _sign_in(page, servers)
    page.goto(f"{servers}/tasks/hello/")
    page.get_by_label("Script (YAML or JSON)").fill(SCRIPT)
    page.get_by_role("button", name="Dry run").click()
    page.wait_for_url("**/tasks/hello/simulate/**")

    expect(page.locator("#sim-outcome")).to_contain_text("✓ succeeded in done")
    done = _node(page, "done")
    expect(done).to_have_class("node final final-succeeded visited current", timeout=10_000)
    expect(done.locator("g.badge.now")).to_have_text("■ ended here")
    expect(_node(page, "shouting").locator("g.badge.count")).to_have_text("×1")
    expect(_node(page, "shouting")).to_have_attribute("aria-label", re.compile("entered 1 time"))
    expect(_edge(page, "greeting", "shouting")).to_have_class("edge transition taken")
    expect(_edge(page, "greeting", "pause")).to_have_class("edge transition")
    expect(_edge(page, "pause", "done").locator("text")).to_have_text("wait 2s ×1")
    expect(page.get_by_role("region", name="History")).to_contain_text(
        "hello v1: succeeded in done")
    # The script stays in the form for the next try.
    expect(page.get_by_label("Script (YAML or JSON)")).to_have_value(SCRIPT)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "task-dry-run.png"), full_page=True)
    # Clearing it goes back to the task page, whose diagram shows no path.
    page.get_by_role("link", name="Clear the dry run").click()
    page.wait_for_url(f"{servers}/tasks/hello/?version=1")
    expect(page.locator("svg.diagram g.node.visited")).to_have_count(0)
    # A script kept beside taskdefs/hello.yaml fills the form, and its expect: is checked.
    page.get_by_label("Scripts kept beside the task's file").select_option("hello.sim.yaml")
    page.get_by_role("button", name="Use this script").click()
    page.wait_for_url("**/tasks/hello/?version=1&script=hello.sim.yaml*")
    expect(page.get_by_label("Script (YAML or JSON)")).to_have_value(SCRIPT)
    expect(page.locator("#sim-expect")).to_contain_text("expects status succeeded")
    page.get_by_role("button", name="Dry run").click()
    page.wait_for_url("**/tasks/hello/simulate/**")
    expect(_node(page, "done")).to_have_class("node final final-succeeded visited current",
                                              timeout=10_000)
    expect(_edge(page, "greeting", "shouting")).to_have_class("edge transition taken")
    expect(page.locator("#sim-expect")).to_contain_text("hello.sim.yaml")
    expect(page.locator("#sim-expect")).to_contain_text("✓ met")
