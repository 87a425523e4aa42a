"""Mermaid ``flowchart`` text of a ``Diagram`` (GitHub, GitLab and most doc sites draw it).

Nodes are named ``s0``, ``s1``…; user text goes only into double-quoted labels, where every
character but letters, digits, space and ``_.,:-·…`` is written as a Mermaid entity code
(``#35;``). Quotes, backticks (Markdown strings), ``<script>``, ``%%`` comments, ``|``, line
breaks and the like therefore cannot end a label, start a statement or become markup.
"""

from __future__ import annotations

import re

from engine.diagram.model import Diagram, EdgeKind, Node

_SAFE = re.compile(r"[A-Za-z0-9 _.,:\-·…]")
ARROW = {EdgeKind.TRANSITION: "-->", EdgeKind.ON_ERROR: "-.->", EdgeKind.ON_TIMEOUT: "==>"}


def quote(text: str) -> str:
    """``text`` as a Mermaid quoted label with every unsafe character an entity code."""
    return '"' + "".join(c if _SAFE.fullmatch(c) else f"#{ord(c)};" for c in text) + '"'


def to_mermaid(diagram: Diagram) -> str:
    ids = {node.name: f"s{index}" for index, node in enumerate(diagram.nodes)}
    lines = ["flowchart TD"]
    lines += [f"  {ids[node.name]}{_shape(node)}" for node in diagram.nodes]
    for edge in diagram.edges:
        lines.append(f"  {ids[edge.source]} {ARROW[edge.kind]}|{quote(edge.label)}| "
                     f"{ids[edge.target]}")
    lines += ["  classDef final stroke-width:3px", "  classDef lint stroke-dasharray:4 3"]
    for node in diagram.nodes:
        if node.outcome:
            lines.append(f"  class {ids[node.name]} final")
        if node.lints:
            lines.append(f"  class {ids[node.name]} lint")
    return "\n".join(lines) + "\n"


def _shape(node: Node) -> str:
    text = " - ".join(part for part in (node.name, node.subtitle,
                                        ", ".join(f"⚠ {lint}" for lint in node.lints)) if part)
    if node.outcome:
        return f"(({quote(text)}))"  # a circle: the run ends here
    if node.start:
        return f"([{quote(text)}])"  # a stadium: the run begins here
    return f"[{quote(text)}]"
