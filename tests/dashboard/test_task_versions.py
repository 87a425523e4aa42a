"""The task page's versions: the list, the chosen version's YAML and its unified diff against
another version, rendered on the server, escaped, with every changed line signed (+/-)."""

from __future__ import annotations

import pytest

from dashboard.versions import MAX_DIFF_LINES, LineKind, version_diff
from taskapp.services import definition_load

pytestmark = pytest.mark.django_db

V1 = """\
name: memo
version: 1
start_state: a
states:
  a:
    transitions:
      - to: b
        wait: 1h
  b:
    final: succeeded
"""
V2 = V1.replace("version: 1", "version: 2").replace("wait: 1h", "wait: 2h")
# User text with markup in it: a description is free text.
V3 = V2.replace("version: 2", "version: 3").replace(
    "start_state: a", "description: \"<script>alert('v3')</script>\"\nstart_state: a")


def _load(*texts: str) -> None:
    for text in texts:
        assert definition_load(text=text, source="memo.yaml").status == "loaded"


def _diff_block(page: str) -> str:
    start = page.index('<pre class="diff"')
    return page[start:page.index("</pre>", start)]


def test_the_latest_version_shows_its_diff_against_the_previous_one(admin_client):
    _load(V1, V2)
    response = admin_client.get("/tasks/memo/")
    page = response.content.decode()
    assert response.context["definition"].version == 2
    diff = _diff_block(page)
    assert '<del class="diff-removed">-        wait: 1h</del>' in diff
    assert '<ins class="diff-added">+        wait: 2h</ins>' in diff
    assert '<del class="diff-removed">-version: 1</del>' in diff
    assert "Changes from v1 to v2" in page and "2 lines added (+), 2 removed" in page
    assert '<span class="diff-header">--- memo v1</span>' in diff
    assert '<span class="diff-same">   b:</span>' in diff  # context, unsigned


def test_version_and_diff_are_chosen_by_query_parameters(admin_client):
    _load(V1, V2, V3)
    page = admin_client.get("/tasks/memo/?version=3&diff=1").content.decode()
    diff = _diff_block(page)
    assert "Changes from v1 to v3" in page
    assert "+        wait: 2h" in diff and "-        wait: 1h" in diff
    assert '<option value="1" selected>v1</option>' in page
    older = admin_client.get("/tasks/memo/?version=2").content.decode()
    assert "Changes from v1 to v2" in older and "description" not in _diff_block(older)
    first = admin_client.get("/tasks/memo/?version=1").content.decode()
    assert '<pre class="diff"' not in first and "nothing before it to compare with" in first
    assert admin_client.get("/tasks/memo/?version=2&diff=9").status_code == 404
    same = admin_client.get("/tasks/memo/?version=2&diff=2").content.decode()
    assert '<pre class="diff"' not in same


def test_a_single_version_has_nothing_to_compare(admin_client):
    _load(V1)
    page = admin_client.get("/tasks/memo/").content.decode()
    assert "The only version loaded" in page and '<pre class="diff"' not in page


def test_hostile_yaml_is_escaped_in_the_diff_and_the_source(admin_client):
    _load(V1, V2, V3)
    page = admin_client.get("/tasks/memo/").content.decode()
    assert "<script>alert(" not in page
    assert ("<ins class=\"diff-added\">+description: &quot;&lt;script&gt;alert(&#x27;v3&#x27;)"
            "&lt;/script&gt;&quot;</ins>") in _diff_block(page)


def test_the_version_picker_is_labelled():
    # A form of two labelled selects and a button: reachable and usable by keyboard alone.
    from django.template.loader import get_template

    source = get_template("dashboard/task.html").template.source
    assert '<label for="pick-version">' in source and '<label for="pick-diff">' in source


def test_a_removed_line_that_looks_like_a_header_stays_a_removal():
    diff = version_diff(name="t", old=1, old_source="a\n-- x\n", new=2, new_source="a\n")
    assert [line.kind for line in diff.lines] == [
        LineKind.HEADER, LineKind.HEADER, LineKind.HUNK, LineKind.SAME, LineKind.REMOVED]


def test_sources_past_the_bound_are_not_diffed():
    long = "x\n" * (MAX_DIFF_LINES + 1)
    diff = version_diff(name="t", old=1, old_source=long, new=2, new_source="x\n")
    assert diff.too_long and diff.lines == ()
