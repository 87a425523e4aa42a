"""The task page and the run page's diagram: server-rendered, login required, never writing,
and every user-written name shown as text, never markup."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from engine.language import task_to_dict
from engine.language.model import Outcome, State, TaskDef, Transition, WhenCondition
from taskapp.models import Run, TaskDefinition
from taskapp.services import definition_load, run_start

pytestmark = pytest.mark.django_db

# The loader allows only letters, digits, _ and - in state and transition names, but
# descriptions and predicates are free text.
HOSTILE = """
name: hostile
version: 1
description: "<script>alert('desc')</script>"
start_state: a
states:
  a:
    transitions:
      - to: b
        when: "data.x == '</text><script>alert(2)</script>'"
  b:
    final: succeeded
"""
# States as no loader would take them: the pages must hold even for a stored definition
# that somehow has them (written here directly, bypassing the loader).
HOSTILE_STATES = ("<script>alert(1)</script>", "it's \"quoted\"", "<img src=x onerror=alert(3)>")


def _svg_of(page: str) -> ET.Element:
    start = page.index("<svg xmlns=")
    return ET.fromstring(page[start:page.index("</svg>", start) + len("</svg>")])


def test_task_page_needs_a_login(client, greeter):
    greeter()
    response = client.get("/tasks/greeter/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_task_page_shows_the_diagram_before_any_run_the_yaml_and_versions(admin_client, greeter):
    greeter()
    greeter(2)
    page = admin_client.get("/tasks/greeter/").content.decode()
    svg = _svg_of(page)
    assert svg.get("data-version") == "2"
    names = [g.get("data-state") for g in svg.iter("{http://www.w3.org/2000/svg}g")
             if g.get("data-state")]
    assert names and "resting" in names
    assert "no runs yet" in page and "start_state: " in page
    assert 'href="/tasks/greeter/?version=1"' in page
    assert admin_client.get("/tasks/greeter/?version=1").context["definition"].version == 1
    assert admin_client.get("/tasks/greeter/?version=9").status_code == 404
    assert admin_client.get("/tasks/nope/").status_code == 404


def test_task_page_counts_runs_in_each_state(admin_client, waiting_run):
    page = admin_client.get("/tasks/greeter/").content.decode()
    assert "waiting · resting: 1" in page
    assert '"state": "resting"' in page  # the json_script diagram.js reads


def test_index_and_run_pages_link_the_task_page(admin_client, waiting_run):
    assert 'href="/tasks/greeter/"' in admin_client.get("/").content.decode()
    run_page = admin_client.get(f"/runs/{waiting_run.pk}/").content.decode()
    assert 'href="/tasks/greeter/?version=1"' in run_page
    box = run_page[run_page.index("data-diagram"):]
    assert 'data-current="resting"' in box and 'data-ended="false"' in box
    assert 'data-from="greet" data-to="resting" data-trigger="condition"' in run_page


def test_hostile_descriptions_names_and_predicates_are_shown_escaped(admin_client, no_dispatch):
    assert definition_load(text=HOSTILE, source="hostile.yaml").status == "loaded"
    run, _ = run_start(task="hostile", input={})
    for url in ("/tasks/hostile/", f"/runs/{run.pk}/", "/"):
        page = admin_client.get(url).content.decode()
        assert "<script>alert" not in page, url
    page = admin_client.get("/tasks/hostile/").content.decode()
    assert "&lt;/text&gt;&lt;script&gt;alert(2)" in page  # the predicate, in the YAML and SVG
    _svg_of(page)  # still well-formed XML


def test_hostile_state_names_are_shown_escaped(admin_client):
    states = tuple(State(name, transitions=(Transition(HOSTILE_STATES[i + 1],
                                                       WhenCondition("x")),))
                   for i, name in enumerate(HOSTILE_STATES[:-1]))
    task = TaskDef(name="hostile", version=1, start_state=HOSTILE_STATES[0], states=(
        *states, State(HOSTILE_STATES[-1], outcome=Outcome.SUCCEEDED)))
    definition = TaskDefinition.objects.create(
        name="hostile", version=1, source="name: hostile", checksum="0" * 64,
        definition=task_to_dict(task))
    run = Run.objects.create(definition=definition, task_name="hostile", task_version=1,
                             status="waiting", state=HOSTILE_STATES[1])
    for url in ("/tasks/hostile/", f"/runs/{run.pk}/", "/"):
        page = admin_client.get(url).content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page, url
        assert "it&#x27;s &quot;quoted&quot;" in page, url
    run_page = admin_client.get(f"/runs/{run.pk}/").content.decode()
    assert 'data-current="it&#x27;s &quot;quoted&quot;"' in run_page
    names = [g.get("data-state") for g in _svg_of(run_page).iter(
        "{http://www.w3.org/2000/svg}g") if g.get("data-state")]
    assert names == list(HOSTILE_STATES)
