"""State diagrams of task definitions: a graph model and its DOT, Mermaid and SVG forms.

``diagram_of(task)`` builds the graph once; ``to_dot``, ``to_mermaid`` and ``to_svg`` format
it. Pure Python: used by ``manage.py graph``, the API and the dashboard alike.
"""

from engine.diagram.dot import to_dot
from engine.diagram.mermaid import to_mermaid
from engine.diagram.model import Diagram, Edge, EdgeKind, Lint, Node, diagram_of
from engine.diagram.svg import to_svg

FORMATS = ("svg", "dot", "mermaid")
RENDERERS = {"svg": to_svg, "dot": to_dot, "mermaid": to_mermaid}


def render(task, fmt: str) -> str:
    """``task`` (a ``TaskDef``) drawn in ``fmt``, one of ``FORMATS``."""
    return RENDERERS[fmt](diagram_of(task))


__all__ = ["FORMATS", "Diagram", "Edge", "EdgeKind", "Lint", "Node", "diagram_of", "render",
           "to_dot", "to_mermaid", "to_svg"]
