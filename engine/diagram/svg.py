"""A standalone SVG of a ``Diagram`` laid out by ``engine.diagram.layout``.

The same markup is inlined in the dashboard's task and run pages, whose script finds nodes
by ``data-state`` and edges by ``data-from``/``data-to`` to overlay runs. Every user text is
XML-escaped (and characters XML cannot carry, such as NUL, become U+FFFD), in text and in
attributes alike, so a state called ``<script>`` is text, never markup. Kinds are told apart
by more than colour: final states have a double border and say ``final: …``; ``on_error``
edges are dashed and ``on_timeout`` edges dotted, and both say so in their label.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, quoteattr

from engine.diagram.layout import NAME_CHARS, Box, Layout, Route, layout
from engine.diagram.model import Diagram, Edge, EdgeKind, Node, shorten

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

STYLE = """
.diagram{font-family:system-ui,sans-serif;font-size:13px}
.diagram .node rect.box{fill:#fff;stroke:#475467;stroke-width:1.5}
.diagram .node.start rect.box{stroke-width:3}
.diagram .node.final-succeeded rect.box{fill:#e7f5ec}
.diagram .node.final-failed rect.box{fill:#fdecea}
.diagram .node rect.ring{fill:none;stroke:#475467;stroke-width:1}
.diagram .node.lint rect.box{stroke:#b42318;stroke-dasharray:5 3}
.diagram .node text.name{font-weight:600;fill:#101828}
.diagram .node text.sub{font-size:11px;fill:#475467}
.diagram .node text.lint{font-size:11px;fill:#b42318}
.diagram .node:focus{outline:none}
.diagram .node:focus rect.box{stroke:#1849a9;stroke-width:3}
.diagram .edge path{fill:none;stroke:#667085;stroke-width:1.4}
.diagram .edge.on_error path{stroke:#b42318;stroke-dasharray:6 4}
.diagram .edge.on_timeout path{stroke:#9a6700;stroke-dasharray:2 3}
.diagram .edge text{font-size:11px;fill:#344054}
.diagram .edge.on_error text{fill:#b42318}
.diagram .edge.on_timeout text{fill:#9a6700}
.diagram .edge rect.label-bg{fill:#fff;opacity:.85}
"""


def text(value: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", value))


def attr(value: str) -> str:
    return quoteattr(_NOT_XML.sub("\ufffd", value), {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def to_svg(diagram: Diagram, *, id_prefix: str = "d") -> str:
    """The diagram as an SVG document (no XML declaration, so it can also be inlined)."""
    placed = layout(diagram)
    title = f"State diagram of {diagram.task} v{diagram.version}: {len(diagram.nodes)} states"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="diagram" '
        f'viewBox="0 0 {placed.width:.0f} {placed.height:.0f}" width="{placed.width:.0f}" '
        f'height="{placed.height:.0f}" role="group" tabindex="-1" aria-label={attr(title)} '
        f'data-task={attr(diagram.task)} data-version="{diagram.version}">',
        f"<title>{text(title)}</title>",
        f"<style>{STYLE}</style>",
        _markers(id_prefix),
        '<g class="edges">',
        *(_edge(edge, route, index, id_prefix)
          for index, (edge, route) in enumerate(zip(diagram.edges, placed.routes, strict=True))),
        '</g><g class="nodes" role="list" aria-label="States">',
        *(_node(node, placed.boxes[node.name], index, id_prefix)
          for index, node in enumerate(diagram.nodes)),
        "</g></svg>",
    ]
    return "\n".join(parts) + "\n"


def _markers(prefix: str) -> str:
    colours = {EdgeKind.TRANSITION: "#667085", EdgeKind.ON_ERROR: "#b42318",
               EdgeKind.ON_TIMEOUT: "#9a6700"}
    markers = "".join(
        f'<marker id="{prefix}-arrow-{kind}" viewBox="0 0 10 10" refX="10" refY="5" '
        f'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        for kind, colour in colours.items())
    return f"<defs>{markers}</defs>"


def _edge(edge: Edge, route: Route, index: int, prefix: str) -> str:
    width = len(edge.label) * 6.2 + 6
    left = route.label_x - (width / 2 if route.anchor == "middle" else 2)
    tooltip = f"{edge.source} → {edge.target}: {edge.detail or edge.label}"
    return (
        f'<g class="edge {edge.kind}" data-index="{index}" data-from={attr(edge.source)} '
        f'data-to={attr(edge.target)} data-condition="{edge.condition}">'
        f'<title>{text(tooltip)}</title>'
        f'<path d="{route.path}" marker-end="url(#{prefix}-arrow-{edge.kind})"/>'
        f'<rect class="label-bg" x="{left:.1f}" y="{route.label_y - 10:.1f}" '
        f'width="{width:.1f}" height="14" rx="3"/>'
        f'<text x="{route.label_x:.1f}" y="{route.label_y:.1f}" '
        f'text-anchor="{route.anchor}">{text(edge.label)}</text></g>')


def _node(node: Node, box: Box, index: int, prefix: str) -> str:
    classes = ["node"]
    if node.start:
        classes.append("start")
    if node.outcome:
        classes += ["final", f"final-{node.outcome}"]
    if node.lints:
        classes.append("lint")
    lints = " · ".join(f"⚠ {lint}" for lint in node.lints)
    label = ": ".join(part for part in (node.name, node.subtitle, lints) if part)
    lines = [(node.subtitle, "sub")] + ([(lints, "lint")] if lints else [])
    height = box.height + (14 if lints else 0)
    body = [
        f'<g class="{" ".join(classes)}" id="{prefix}-state-{index}" data-state={attr(node.name)} '
        f'tabindex="0" role="listitem" aria-label={attr(label)}><title>{text(node.name)}</title>',
        f'<rect class="box" x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
        f'height="{height:.1f}" rx="10"/>',
    ]
    if node.outcome:
        body.append(f'<rect class="ring" x="{box.x + 4:.1f}" y="{box.y + 4:.1f}" '
                    f'width="{box.width - 8:.1f}" height="{height - 8:.1f}" rx="7"/>')
    body.append(f'<text class="name" x="{box.cx:.1f}" y="{box.y + 20:.1f}" '
                f'text-anchor="middle">{text(shorten(node.name, NAME_CHARS))}</text>')
    for offset, (line, kind) in enumerate(lines):
        if line:
            body.append(f'<text class="{kind}" x="{box.cx:.1f}" y="{box.y + 36 + 14 * offset:.1f}"'
                        f' text-anchor="middle">{text(line)}</text>')
    body.append("</g>")
    return "".join(body)


__all__ = ["Layout", "to_svg"]
