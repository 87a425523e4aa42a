"""The runs list (/runs/): the API's filters, full ids, and keyset pages that neither repeat
nor skip a run while runs change or start."""

from __future__ import annotations

import re

import pytest

from dashboard import runs_list

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(greeter, no_dispatch):
    from taskapp.services import run_start

    greeter()
    return [run_start(task="greeter", input={"n": i})[0] for i in range(7)]


def _ids(page: str) -> list[str]:
    return re.findall(r'<tr data-run="([0-9a-f-]{36})"', page)


def test_full_ids_newest_first(admin_client, runs):
    page = admin_client.get("/runs/").content.decode()
    assert _ids(page) == [str(r.pk) for r in reversed(runs)]
    assert all(f"<code>{r.pk}</code>" in page for r in runs)


def test_filters_are_the_apis(admin_client, waiting_run):
    from taskapp.services import run_start

    for i in range(7):
        run_start(task="greeter", input={"n": i})
    page = admin_client.get("/runs/?status=waiting").content.decode()
    assert _ids(page) == [str(waiting_run.pk)]
    page = admin_client.get("/runs/?state=resting&in_state_longer_than=1h").content.decode()
    assert _ids(page) == []
    page = admin_client.get("/runs/?task=greeter&version=1&status=pending").content.decode()
    assert len(_ids(page)) == 7


def test_a_bad_filter_says_which(admin_client, runs):
    page = admin_client.get("/runs/?in_state_longer_than=soon").content.decode()
    assert "✗ in_state_longer_than:" in page and _ids(page) == []


def test_pages_stay_put_while_runs_start(runs):
    from taskapp.selectors import runs_list as everything
    from taskapp.services import run_start

    first = runs_list.page(everything(), size=3)
    assert [r.pk for r in first.runs] == [r.pk for r in reversed(runs)][:3]
    for i in range(4):  # new runs arrive while the user reads the first page
        run_start(task="greeter", input={"late": i})
    second = runs_list.page(everything(), before=str(first.older), size=3)
    assert [r.pk for r in second.runs] == [r.pk for r in reversed(runs)][3:6]
    back = runs_list.page(everything(), after=str(second.newer), size=3)
    assert [r.pk for r in back.runs] == [r.pk for r in first.runs]
    last = runs_list.page(everything(), before=str(second.older), size=3)
    assert [r.pk for r in last.runs] == [runs[0].pk] and last.older is None


def test_pager_links_walk_the_list(admin_client, runs, monkeypatch):
    monkeypatch.setattr(runs_list, "PAGE_SIZE", 4)
    page = admin_client.get("/runs/?task=greeter").content.decode()
    older = re.search(r'href="\?([^"]*before=[^"]+)" rel="next"', page).group(1)
    page2 = admin_client.get("/runs/?" + older.replace("&amp;", "&")).content.decode()
    assert _ids(page2) == [str(r.pk) for r in reversed(runs)][4:]
    assert 'rel="prev"' in page2 and 'rel="next"' not in page2


def test_a_bad_cursor_starts_again(admin_client, runs):
    page = admin_client.get("/runs/?before=nonsense").content.decode()
    assert "is not a position in the runs list" in page
    assert len(_ids(page)) == 7
