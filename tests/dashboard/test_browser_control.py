"""The control room in a real browser (Debian's Chromium, Playwright) against daphne and the
real cluster: a run page kept live (data as JSON, attempts, events, the timeline), a
websocket that drops and comes back with nothing missed, the runs list and the overview
following along, and the actions — cancel, redrive chosen on the diagram — for a user who
may control runs, absent (and refused) for one who may not. Screenshots of every page go to
``var/test-artifacts/``.
"""

from __future__ import annotations

import os
import re

import pytest
import redis

from taskapp.services import definition_load
from tests.dashboard import test_browser as base
from tests.dashboard.test_browser_diagram import TASK, _api
from tests.services import require_service

ARTIFACTS, PASSWORD, _in_thread = base.ARTIFACTS, base.PASSWORD, base._in_thread
servers, browser = base.servers, base.browser  # the fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

REDIS_URL = "redis://127.0.0.1:6379/12"

# Instead of WebSocket: refuses to connect (closes at once, as a network failure does) until
# ``window.allowConnect`` is set, so the page stays cut off while the run moves on.
CUT_OFF = """() => {
  window.RealWebSocket = window.WebSocket;
  window.allowConnect = false;
  window.WebSocket = function (url) {
    if (window.allowConnect) return new window.RealWebSocket(url);
    var fake = {send: function () {}, close: function () {}};
    setTimeout(function () { if (fake.onclose) fake.onclose({code: 1006}); }, 20);
    return fake;
  };
  window.AsyncStatesLive.socket.close();
}"""


def _user(user_model, name: str, *, superuser: bool) -> str:
    from rest_framework.authtoken.models import Token

    make = user_model.objects.create_superuser if superuser else user_model.objects.create_user
    user = make(username=name, email=f"{name}@example.invalid", password=PASSWORD)
    return Token.objects.create(user=user).key


def _sign_in(page, base: str, name: str) -> None:
    page.goto(f"{base}/login/?next=/")
    _shot(page, "control-login.png")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@pytest.fixture
def demo(servers, django_user_model):  # noqa: F811 (the fixture imported above)
    assert _in_thread(definition_load, text=TASK, source="demo.yaml").status == "loaded"
    return _in_thread(_user, user_model=django_user_model, name="operator", superuser=True)


def test_run_page_stays_live_and_resyncs_after_its_websocket_drops(servers, browser, demo):  # noqa: F811
    _live_and_resync(servers, browser, demo, shots="control")


@pytest.fixture
def redis_servers(transactional_db):
    """Daphne and a cluster with Redis as the broker and the channel layer (``layer`` mode),
    on the test database; a queue and a channel prefix of their own (the cluster's name)."""
    from tests.e2e.conftest import server_environment

    base._needs_browser()
    require_service("Redis at 127.0.0.1:6379", lambda: redis.Redis.from_url(
        REDIS_URL, socket_connect_timeout=2).ping())
    env = {**server_environment(), "REDIS_URL": REDIS_URL,
           "Q_CLUSTER_NAME": f"browser{os.getpid()}"}
    with base.running(env, ARTIFACTS / "daphne-redis.log") as url:
        yield url


def test_with_redis_the_run_page_stays_live_and_resyncs_too(redis_servers, browser,  # noqa: F811
                                                            django_user_model):
    assert _in_thread(definition_load, text=TASK, source="demo.yaml").status == "loaded"
    token = _in_thread(_user, user_model=django_user_model, name="operator", superuser=True)
    _live_and_resync(redis_servers, browser, token, shots="")


def _live_and_resync(servers: str, browser, demo: str, shots: str) -> None:  # noqa: F811
    from playwright.sync_api import expect

    page = browser.new_page()
    _sign_in(page, servers, "operator")
    run = _api(servers, demo, "/api/runs/",
               {"task": "diagram_demo", "input": {"name": "<b>Ada</b>"}})
    page.goto(f"{servers}/runs/{run['id']}/")
    expect(page.locator("#live")).to_have_class("live live", timeout=10_000)
    expect(page.locator('[data-field="state"]')).to_have_text("pause", timeout=20_000)
    expect(page.locator("#run-data")).to_contain_text('"greeting": "Hello <b>Ada</b>"')
    expect(page.locator("#run-input")).to_have_text('{\n  "name": "<b>Ada</b>"\n}')
    expect(page.locator("h1 code")).to_have_text(run["id"])  # the full id
    expect(page.locator("#wake [data-countdown]")).to_contain_text("in 59 min")
    expect(page.locator("#attempts")).to_contain_text(f"{run['id']}:1:")
    page.evaluate("window.notReloaded = true")

    listing = browser.new_page()
    listing.goto(f"{servers}/runs/?task=diagram_demo")
    row = listing.locator(f'#runs tr[data-run="{run["id"]}"]')
    expect(row.locator('[data-field="state"]')).to_have_text("pause")
    expect(listing.locator("#live")).to_have_class("live live", timeout=10_000)
    if shots:
        _shot(listing, f"{shots}-runs-list.png")

    # The socket drops and cannot come back while the run takes its event and ends.
    page.evaluate(CUT_OFF)
    expect(page.locator("#live")).to_have_class("live reconnecting", timeout=5_000)
    _api(servers, demo, f"/api/runs/{run['id']}/events/", {"name": "go", "data": {"ok": True}})
    expect(row.locator('[data-field="status"]')).to_have_text("succeeded", timeout=20_000)
    expect(row.locator('[data-field="state"]')).to_have_text("done")
    page.wait_for_timeout(1500)
    expect(page.locator('[data-field="state"]')).to_have_text("pause")  # still cut off

    page.evaluate("window.allowConnect = true")
    expect(page.locator("#live")).to_have_class("live live", timeout=30_000)
    expect(page.locator('[data-field="status"]')).to_have_text("succeeded", timeout=10_000)
    expect(page.locator('#transitions tr[data-seq="3"]')).to_have_attribute("data-to", "done")
    expect(page.locator("#events")).to_contain_text('"ok": true')
    expect(page.locator('svg.diagram g.node[data-state="done"]')).to_have_class(
        "node final final-succeeded visited current")
    expect(page.locator("#wake")).to_contain_text("none (the run has ended)")
    assert page.evaluate("window.AsyncStatesLive.connections") == 2
    assert page.evaluate("window.notReloaded") is True
    page.goto(f"{servers}/")
    expect(page.locator("#chart-transitions svg")).to_have_attribute(
        "aria-label", re.compile(r"^Transitions per minute over the last 60 minutes: 3 in all"))
    if not shots:
        return
    _shot(page, f"{shots}-overview.png")
    page.set_viewport_size({"width": 390, "height": 844})
    _shot(page, f"{shots}-overview-phone.png")
    page.goto(f"{servers}/runs/{run['id']}/")
    _shot(page, f"{shots}-run-phone.png")
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(f"{servers}/runs/{run['id']}/")
    page.wait_for_timeout(1700)  # let the flash fade for a readable picture
    _shot(page, f"{shots}-run.png")


def test_cancel_and_redrive_from_the_run_page(servers, browser, demo):  # noqa: F811
    from playwright.sync_api import expect

    page = browser.new_page()
    _sign_in(page, servers, "operator")
    run = _api(servers, demo, "/api/runs/", {"task": "diagram_demo", "input": {"name": "Ada"}})
    page.goto(f"{servers}/runs/{run['id']}/")
    expect(page.locator('[data-field="state"]')).to_have_text("pause", timeout=20_000)
    expect(page.locator("#redrive-form")).to_be_hidden()

    page.get_by_role("button", name="Cancel run…").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Cancel this run?")
    expect(page.locator("#confirm-no")).to_be_focused()
    _shot(page, "control-confirm.png")
    page.keyboard.press("Escape")  # no: nothing happens
    expect(dialog).to_be_hidden()
    expect(page.locator('[data-field="status"]')).to_have_text("waiting")

    page.get_by_role("button", name="Cancel run…").click()
    page.get_by_role("button", name="Yes, do it").click()
    expect(page.locator(".message")).to_have_text("✓ Run cancelled.", timeout=10_000)
    expect(page.locator('[data-field="status"]')).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel run…")).to_be_hidden()

    # Redrive, the state chosen on the diagram.
    expect(page.locator("#redrive-form")).to_be_visible()
    page.locator('svg.diagram g.node[data-state="greeting"]').click()
    expect(page.get_by_label("Redrive from state")).to_have_value("greeting")
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Redrive…").click()
    page.get_by_role("button", name="Yes, do it").click()
    expect(page.locator(".message")).to_have_text("✓ Run redriven from state greeting.",
                                                  timeout=10_000)
    # The redriven run goes back to work, and the page follows it live to ``pause``.
    expect(page.locator('[data-field="state"]')).to_have_text("pause", timeout=20_000)
    expect(page.locator('[data-field="status"]')).to_have_text("waiting")
    expect(page.locator("#transitions tbody tr")).to_have_count(5)  # start, →pause, cancel,
    expect(page.locator("#transitions tr[data-seq=\"4\"]")).to_have_attribute(  # redrive, →pause
        "data-trigger", "redrive")
    expect(page.locator("#redrive-form")).to_be_hidden()
    expect(page.get_by_role("button", name="Cancel run…")).to_be_visible()
    _shot(page, "control-redriven.png")


def test_a_user_who_may_not_control_runs_sees_no_buttons_and_a_forged_post_is_refused(
        servers, browser, demo, django_user_model):  # noqa: F811
    from playwright.sync_api import expect

    _in_thread(_user, user_model=django_user_model, name="viewer", superuser=False)
    run = _api(servers, demo, "/api/runs/", {"task": "diagram_demo", "input": {"name": "Bo"}})
    page = browser.new_page()
    _sign_in(page, servers, "viewer")
    page.goto(f"{servers}/runs/{run['id']}/")
    expect(page.locator('[data-field="state"]')).to_have_text("pause", timeout=20_000)
    expect(page.locator("#actions")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel run…")).to_have_count(0)
    forged = page.evaluate("""async (id) => {
      const token = document.cookie.split("; ").find(c => c.startsWith("csrftoken=")).split("=")[1];
      const body = new URLSearchParams({confirmed: "yes", csrfmiddlewaretoken: token});
      const response = await fetch(`/runs/${id}/cancel/`, {method: "POST", body: body});
      return response.status;
    }""", run["id"])
    assert forged == 403
    expect(page.locator('[data-field="status"]')).to_have_text("waiting")
    _shot(page, "control-run-read-only.png")
