"""The live dashboard in a real browser: Debian's Chromium driven by Playwright, against
daphne and the real cluster as subprocesses on the test database.

A signed-in page must show a run started after it loaded, and follow it to ``succeeded``,
without a reload; the run's page must append its transitions as they are committed. The
embedded default is what runs here (SQLite or PostgreSQL, in-memory channel layer), so the
news travels by daphne's poller. Screenshots go to ``var/test-artifacts/``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connections

from taskapp.services import definition_load, run_start
from tests.e2e.conftest import ARTIFACTS, Cluster, Daphne, server_environment
from tests.services import require_service

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
# The flags this machine needs (headless, no sandbox as root, no calls home: the network is
# closed and Chromium's background connections are refused).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PASSWORD = "browser-test-password"

DEMO = """
name: browser_demo
version: 1
description: Greets, waits two seconds, succeeds.
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
        wait: 2s
  done:
    final: succeeded
"""


def _needs_browser() -> None:
    def chromium() -> None:
        if not os.access(CHROMIUM, os.X_OK):
            raise FileNotFoundError(f"{CHROMIUM} (apt-get install -y chromium)")

    def playwright() -> None:
        if importlib.util.find_spec("playwright") is None:
            raise ModuleNotFoundError("playwright (pip install -e '.[dev]')")

    require_service("Chromium", chromium)
    require_service("Playwright", playwright)


@contextmanager
def running(env: dict[str, str], log: Path) -> Iterator[str]:
    """A cluster and daphne with ``env``; daphne's address."""
    cluster = Cluster(env)
    cluster.start()
    web = Daphne(env, log=log)
    try:
        yield web.url
    finally:
        web.stop()
        cluster.stop()


@pytest.fixture
def servers(transactional_db) -> Iterator[str]:
    _needs_browser()
    with running(server_environment(), ARTIFACTS / "daphne.log") as url:
        yield url


@pytest.fixture
def browser():
    """A browser context (one cookie jar, any number of pages)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium.new_context(viewport={"width": 1200, "height": 900})
        chromium.close()


def _in_thread(function, **kwargs):
    """Django's ORM refuses to run on a thread where Playwright's event loop runs. The
    thread's connection is closed after (PostgreSQL would not drop the test database)."""
    def call():
        try:
            return function(**kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def test_dashboard_follows_a_new_run_live_without_reload(servers, browser, django_user_model):
    from playwright.sync_api import expect

    assert _in_thread(definition_load, text=DEMO, source="browser.yaml").status == "loaded"
    _in_thread(django_user_model.objects.create_superuser, username="browser",
               email="b@example.invalid", password=PASSWORD)
    page = browser.new_page()

    page.goto(f"{servers}/admin/login/?next=/")
    page.fill("#id_username", "browser")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{servers}/")
    expect(page.locator("#live")).to_have_class("live live", timeout=10_000)
    expect(page.locator("#no-runs")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    run = _in_thread(run_start, task="browser_demo", input={"name": "Ada"})[0]
    row = page.locator(f'#recent-runs tr[data-run="{run.pk}"]')
    expect(row).to_be_visible(timeout=10_000)
    expect(row.locator('[data-field="state"]')).to_have_text("pause", timeout=10_000)

    detail = browser.new_page()
    detail.goto(f"{servers}/runs/{run.pk}/")
    expect(detail.locator("#live")).to_have_class("live live", timeout=10_000)

    expect(row.locator('[data-field="status"]')).to_have_text("succeeded", timeout=20_000)
    succeeded = page.locator('#status-counts [data-status="succeeded"] .n')
    expect(succeeded).to_have_text("1", timeout=10_000)
    expect(page.locator('#tasks tr[data-task="browser_demo"] .states')).to_have_text(
        "succeeded · done: 1", timeout=10_000)
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#no-runs")).to_be_hidden()

    # The run's page, opened while it waited in ``pause``, appended the last transition.
    expect(detail.locator('#transitions tr[data-seq="3"] td').nth(3)).to_have_text(
        "done", timeout=10_000)
    expect(detail.locator('[data-field="status"]')).to_have_text("succeeded")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1700)  # let the flash fade for a readable picture
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    detail.screenshot(path=str(ARTIFACTS / "run.png"), full_page=True)
