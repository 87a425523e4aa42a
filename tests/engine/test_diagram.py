"""engine.diagram: the graph model of a task and its DOT, Mermaid and SVG forms.

Every condition kind has its label, ``on_error``/``on_timeout`` routes are their own edge kinds,
lints sit on the nodes, and no state name or predicate, however hostile, can break a format
or inject markup: SVG parses as XML with the text intact, DOT and Mermaid labels read back as
exactly the text written.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.diagram import EdgeKind, Lint, diagram_of, to_dot, to_mermaid, to_svg
from engine.diagram.layout import layout
from engine.language import load_text
from engine.language.model import Outcome, State, TaskDef, Transition, WhenCondition

SVG = "{http://www.w3.org/2000/svg}"

SHOP = """
name: shop
version: 3
start_state: created
states:
  created:
    instructions:
      - http: {url: "https://example.invalid/orders", method: POST}
        name: create_order
        on_error: cancelled
    transitions:
      - to: awaiting_payment
  awaiting_payment:
    timeout: 2d
    on_timeout: cancelled
    transitions:
      - to: paid
        subscribe: {event: payment.received}
      - to: cancelled
        wait: 5s
      - to: reminded
        when: "data.amount > 100 and data.customer.tier == 'gold' and data.retries < 3"
  reminded:
    transitions:
      - to: awaiting_payment
        name: back
  paid:
    transitions:
      - to: shipped
        poll:
          http: {url: "https://example.invalid/shipping"}
          every: 30s
          until: "result.shipped"
          max_attempts: 3
          on_error: lost
  shipped: {final: succeeded}
  cancelled: {final: failed}
  lost: {final: failed}
"""


def shop():
    return load_text(SHOP, "shop.yaml")


def test_nodes_mark_start_finals_by_outcome_and_instructions():
    diagram = diagram_of(shop())
    assert diagram.node("created").start and diagram.node("created").instructions == 1
    assert diagram.node("created").subtitle == "start · 1 instruction"
    assert diagram.node("shipped").outcome == "succeeded"
    assert diagram.node("lost").subtitle == "final: failed"
    assert not diagram.node("paid").start and diagram.node("paid").outcome is None


def test_every_condition_kind_and_route_has_its_label_and_kind():
    edges = {(e.source, e.target, e.kind): e for e in diagram_of(shop()).edges}
    labels = {key: edge.label for key, edge in edges.items()}
    assert labels[("created", "awaiting_payment", EdgeKind.TRANSITION)] == "always"
    assert labels[("created", "cancelled", EdgeKind.ON_ERROR)] == "on_error: create_order"
    assert labels[("awaiting_payment", "paid", EdgeKind.TRANSITION)] == "subscribe payment.received"
    assert labels[("awaiting_payment", "cancelled", EdgeKind.TRANSITION)] == "wait 5s"
    assert labels[("awaiting_payment", "cancelled", EdgeKind.ON_TIMEOUT)] == "on_timeout 2d"
    assert labels[("paid", "shipped", EdgeKind.TRANSITION)] == "poll every 30s"
    assert labels[("paid", "lost", EdgeKind.ON_ERROR)] == "on_error: poll gave up"
    when = edges[("awaiting_payment", "reminded", EdgeKind.TRANSITION)]
    assert when.label.startswith("when data.amount > 100") and when.label.endswith("…")
    assert len(when.label) == 40 and when.detail.endswith("data.retries < 3")
    back = edges[("reminded", "awaiting_payment", EdgeKind.TRANSITION)]
    assert (back.label, back.detail) == ("always", "back: always")


def test_wait_until_is_labelled_with_its_template():
    task = load_text("""
name: t
version: 1
start_state: a
states:
  a:
    transitions: [{to: b, wait: {until: "{{ input.at }}"}}]
  b: {final: succeeded}
""")
    assert diagram_of(task).edges[0].label == "wait until {{ input.at }}"


def test_lints_mark_unreachable_states_and_states_with_no_way_to_a_final():
    task = TaskDef(name="t", version=1, start_state="a", states=(
        State("a", transitions=(Transition("b"), Transition("loop"))),
        State("loop", transitions=(Transition("loop"),)),
        State("island", transitions=(Transition("b"),)),
        State("b", outcome=Outcome.SUCCEEDED)))
    diagram = diagram_of(task)
    assert diagram.node("a").lints == ()
    assert diagram.node("loop").lints == (Lint.NO_FINAL,)
    assert diagram.node("island").lints == (Lint.UNREACHABLE,)
    svg = to_svg(diagram)
    assert "⚠ no path to a final state" in svg and "⚠ unreachable" in svg
    assert 'class s1 lint' in to_mermaid(diagram)


def test_svg_has_one_focusable_node_per_state_and_one_edge_per_route():
    root = ET.fromstring(to_svg(diagram_of(shop())))
    nodes = root.findall(f".//{SVG}g[@data-state]")
    assert [n.get("data-state") for n in nodes] == list(shop().state_names)
    assert all(n.get("tabindex") == "0" and n.get("aria-label") for n in nodes)
    edges = root.findall(f".//{SVG}g[@data-from]")
    assert len(edges) == len(diagram_of(shop()).edges)
    kinds = {e.get("class") for e in edges}
    assert kinds == {"edge transition", "edge on_error", "edge on_timeout"}


def test_long_edges_bend_around_the_layers_they_cross():
    placed = layout(diagram_of(shop()))
    boxes = placed.boxes
    assert boxes["created"].y < boxes["awaiting_payment"].y < boxes["paid"].y
    # created → cancelled crosses two layers: one cubic segment per layer crossed, and the
    # path passes no state box's centre.
    index = [i for i, e in enumerate(diagram_of(shop()).edges)
             if (e.source, e.target) == ("created", "cancelled")][0]
    assert placed.routes[index].path.count("C") >= 2


# --------------------------------------------------------------------------- hostile text

HOSTILE = ['<script>alert("x")</script>', 'a"b', "it's", "line\nbreak", "back`tick`",
           "%% comment", "a|b", "x]; evil[", "\\N\\G", "a & b", "click s0 call alert()",
           "-->", "{{ 1 }}", "\x00nul", "tab\tbed", "é ✓ 🚀"]


def hostile_task(names: list[str], predicate: str = "x") -> TaskDef:
    last = len(names)
    states = [State(name, transitions=(Transition(names[i + 1] if i + 1 < last else "end",
                                                  WhenCondition(predicate)),))
              for i, name in enumerate(names)]
    return TaskDef(name="hostile<t>", version=1, start_state=names[0],
                   states=(*states, State("end", outcome=Outcome.SUCCEEDED)))


def dot_strings(dot: str) -> list[str]:
    """The text of every double-quoted DOT string, unescaped as Graphviz reads it; fails
    on anything outside strings that is not DOT punctuation or an identifier."""
    strings = []
    pattern = re.compile(r'"((?:[^"\\\n]|\\.)*)"|([A-Za-z0-9_.#=,;\[\]{}\->\s]+)', re.S)
    position = 0
    while position < len(dot):
        match = pattern.match(dot, position)
        assert match, f"unexpected DOT at {dot[position:position + 40]!r}"
        if match.group(1) is not None:
            strings.append(re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], match[1]))
        position = match.end()
    return strings


def mermaid_labels(text: str) -> list[str]:
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    labels = []
    for line in lines[1:]:
        assert re.fullmatch(r'  s\d+(\(\[|\(\(|\[)"[^"`<>\n]*"(\]\)|\)\)|\])'
                            r'|  s\d+ (-->|-\.->|==>)\|"[^"`<>\n|]*"\| s\d+'
                            r'|  classDef \w+ [\w:.\- ]+|  class s\d+ \w+', line), line
        labels += [re.sub(r"#(\d+);", lambda m: chr(int(m[1])), label)
                   for label in re.findall(r'"([^"]*)"', line)]
    return labels


def check_all_formats(task: TaskDef) -> None:
    diagram = diagram_of(task)
    root = ET.fromstring(to_svg(diagram))
    shown = [n.get("data-state") for n in root.findall(f".//{SVG}g[@data-state]")]
    assert shown == [_xml_safe(n.name) for n in diagram.nodes]
    assert root.find(f".//{SVG}script") is None
    assert not [e for e in root.iter() if not e.tag.startswith(SVG)]
    strings = dot_strings(to_dot(diagram))
    labels = mermaid_labels(to_mermaid(diagram))
    for node in diagram.nodes:
        # each node's tooltip is its exact name (DOT has one kind of line break)
        assert node.name.replace("\r\n", "\n").replace("\r", "\n") in strings
        assert any(label.startswith(node.name) for label in labels)


def _xml_safe(text: str) -> str:
    return re.sub("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", "\ufffd", text)


def test_hostile_state_names_and_predicates_never_break_an_output():
    check_all_formats(hostile_task(HOSTILE, predicate='data.x == "</text><script>"'))
    svg = to_svg(diagram_of(hostile_task(HOSTILE)))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=6, unique=True)
       .filter(lambda names: "end" not in names),
       st.text(max_size=60))
def test_any_state_names_and_predicate_keep_every_format_well_formed(names, predicate):
    check_all_formats(hostile_task(names, predicate))


def test_fifty_states_draw_quickly_and_bounded_for_a_thousand():
    def chain(count: int) -> TaskDef:
        states = [State(f"s{i}", transitions=(Transition(f"s{i + 1}"),
                                               Transition("s0", WhenCondition("retry"))))
                  for i in range(count)]
        return TaskDef(name="big", version=1, start_state="s0",
                       states=(*states, State(f"s{count}", outcome=Outcome.SUCCEEDED)))

    root = ET.fromstring(to_svg(diagram_of(chain(50))))
    assert len(root.findall(f".//{SVG}g[@data-state]")) == 51
    started = time.monotonic()
    to_svg(diagram_of(chain(1000)))
    assert time.monotonic() - started < 60  # generous: the figure is in bench/RESULTS.md


def test_timeouts_label_the_on_timeout_edge_only_when_known():
    task = TaskDef(name="t", version=1, start_state="a", states=(
        State("a", transitions=(Transition("b"),), on_timeout="b",
              timeout=timedelta(minutes=5)),
        State("b", outcome=Outcome.SUCCEEDED)))
    assert [e.label for e in diagram_of(task).edges] == ["always", "on_timeout 5m"]


def test_lints_agree_with_validation_on_a_loaded_task():
    """A loaded task can carry the warning "no final state can be reached" (unreachable
    states are errors, so never loaded): the diagram marks exactly the states it names."""
    from engine.language import validate_text

    text = """
name: t
version: 1
start_state: a
states:
  a:
    transitions: [{to: b, when: data.ok}, {to: spin}]
  spin:
    transitions: [{to: spin2, wait: 1s}]
  spin2:
    transitions: [{to: spin, wait: 1s}]
  b: {final: succeeded}
"""
    report = validate_text(text, "t.yaml")
    warned = {p.path.split(".")[1] for p in report.problems if "no final state" in p.message}
    linted = {n.name for n in diagram_of(report.task).nodes if Lint.NO_FINAL in n.lints}
    assert warned == linted == {"spin", "spin2"}
