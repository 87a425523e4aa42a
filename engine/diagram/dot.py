"""Graphviz DOT text of a ``Diagram`` (``dot -Tsvg`` draws it where Graphviz is installed).

Nodes are named ``s0``, ``s1``…; every user-written text goes only into double-quoted
``label``/``tooltip`` strings, where backslash, quote and line breaks are escaped, so no state
name or predicate can end a string, start a statement or use Graphviz's ``\\N``-style escapes.
"""

from __future__ import annotations

from engine.diagram.model import Diagram, EdgeKind, Node

EDGE_STYLE = {
    EdgeKind.TRANSITION: "solid",
    EdgeKind.ON_ERROR: 'dashed, color="#b42318", fontcolor="#b42318"',
    EdgeKind.ON_TIMEOUT: 'dotted, color="#9a6700", fontcolor="#9a6700"',
}


def quote(text: str) -> str:
    """``text`` as a DOT double-quoted string showing exactly ``text``."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n"))
    return f'"{escaped}"'


def to_dot(diagram: Diagram) -> str:
    ids = {node.name: f"s{index}" for index, node in enumerate(diagram.nodes)}
    lines = [f"digraph {quote(f'{diagram.task} v{diagram.version}')} {{",
             "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", '
             'fontname="sans-serif"];',
             '  edge [fontname="sans-serif", fontsize=10];']
    lines += [f"  {ids[node.name]} [{_node_attributes(node)}];" for node in diagram.nodes]
    for edge in diagram.edges:
        attributes = f"label={quote(edge.label)}, style={EDGE_STYLE[edge.kind]}"
        if edge.detail:
            attributes += f", tooltip={quote(edge.detail)}"
        lines.append(f"  {ids[edge.source]} -> {ids[edge.target]} [{attributes}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_attributes(node: Node) -> str:
    text = "\n".join(part for part in (node.name, node.subtitle,
                                       " · ".join(f"⚠ {lint}" for lint in node.lints)) if part)
    attributes = [f"label={quote(text)}", f"tooltip={quote(node.name)}"]
    if node.outcome:
        attributes.append("peripheries=2")
        attributes.append('fillcolor="#e7f5ec"' if node.outcome == "succeeded"
                          else 'fillcolor="#fdecea"')
    if node.start:
        attributes.append("penwidth=2")
    if node.lints:
        attributes.append('color="#b42318", style="rounded,filled,dashed"')
    return ", ".join(attributes)
