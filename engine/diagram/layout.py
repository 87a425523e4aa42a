"""A layered layout of a ``Diagram`` in pure Python, so ``manage.py graph``, the API and the
dashboard draw the same picture without Graphviz or a JavaScript engine.

The classic Sugiyama steps, kept small and bounded: back edges found by a depth-first search
from the start state are reversed (cycles are normal in task graphs: retries, loops); layers by
longest path over the acyclic rest; an edge spanning several layers gets one invisible point
per layer crossed, so it bends around the states in between instead of through them, up to
``MAX_SPAN`` layers; a longer edge (a retry back to the start of a long chain) would add
points quadratically, so it is drawn in a lane along the right of the drawing instead. Order
within a layer by ``SWEEPS`` barycentre sweeps (each O(points + edges)); then coordinates.
The work is O(SWEEPS × (states + edges × MAX_SPAN)); bench/diagram.py has the figures, up
to 1,000 states (the reader's ``max_states``).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.diagram.model import Diagram, shorten

SWEEPS = 8
CHAR_WIDTH = 8.0  # of the 13px (bold) sans-serif the SVG uses, on average
NODE_HEIGHT = 46.0
MIN_WIDTH, MAX_WIDTH = 90.0, 360.0
NAME_CHARS = 42  # longer names are cut on the node; the whole name is its tooltip
GAP_X, GAP_Y, MARGIN = 40.0, 84.0, 24.0
POINT_WIDTH = 24.0  # the room an edge passing through a layer takes
BACK_STEP = 14.0  # each self-loop of a node goes this much further out than the previous
MAX_SPAN = 6  # layers an edge may cross through points; longer ones take a lane on the right
LANE_STEP, LANES = 10.0, 12  # the lanes' spacing, and how many before they are reused


@dataclass(frozen=True, slots=True)
class Box:
    x: float  # left
    y: float  # top
    width: float
    height: float

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True, slots=True)
class Route:
    path: str  # SVG path data
    label_x: float
    label_y: float
    anchor: str = "middle"  # the label's text-anchor


@dataclass(frozen=True, slots=True)
class Layout:
    boxes: dict[str, Box]
    routes: tuple[Route, ...]  # one per diagram edge, in order
    width: float
    height: float


@dataclass(slots=True)
class _Graph:
    """Vertices are ints: states first (in definition order), then the points of long edges."""

    widths: list[float]
    rank: list[int]
    chains: list[list[int]]  # per diagram edge: its vertices from source to target
    lanes: set[int]  # indexes of the edges drawn in a lane on the right


def layout(diagram: Diagram) -> Layout:
    graph = _graph(diagram)
    layers = _order(graph)
    boxes = _place(graph, layers)
    names = [node.name for node in diagram.nodes]
    routes = _routes(graph, boxes, max((b.x + b.width for b in boxes), default=0.0))
    states = {name: boxes[index] for index, name in enumerate(names)}
    width = max((b.x + b.width for b in boxes), default=0.0) + MARGIN
    reach = max((r.label_x + 180 for r in routes if r.anchor == "start"), default=0.0)
    height = max((b.y + b.height for b in boxes), default=0.0) + MARGIN
    return Layout(states, routes, max(width, reach), height)


def node_width(name: str, subtitle: str) -> float:
    chars = max(len(shorten(name, NAME_CHARS)), len(subtitle) * 0.8)
    return min(MAX_WIDTH, max(MIN_WIDTH, chars * CHAR_WIDTH + 24))


def _graph(diagram: Diagram) -> _Graph:
    index = {node.name: i for i, node in enumerate(diagram.nodes)}
    pairs = [(index[e.source], index[e.target]) for e in diagram.edges]
    start = next((index[n.name] for n in diagram.nodes if n.start), 0)
    back = _back_edges(len(index), pairs, start)
    upward = [(t, s) if (s, t) in back else (s, t) for s, t in pairs]
    rank = _ranks(len(index), [(s, t) for s, t in upward if s != t])
    widths = [node_width(n.name, n.subtitle) for n in diagram.nodes]
    graph = _Graph(widths, rank, [], set())
    for index, ((source, target), (low, high)) in enumerate(zip(pairs, upward, strict=True)):
        if rank[high] - rank[low] > MAX_SPAN:
            graph.lanes.add(index)
            graph.chains.append([source, target])
            continue
        chain = [low, *(_point(graph, r) for r in range(rank[low] + 1, rank[high])), high]
        graph.chains.append(chain if (low, high) == (source, target) else chain[::-1])
    return graph


def _point(graph: _Graph, rank: int) -> int:
    graph.widths.append(POINT_WIDTH)
    graph.rank.append(rank)
    return len(graph.widths) - 1


def _back_edges(count: int, pairs: list[tuple[int, int]], start: int) -> set[tuple[int, int]]:
    """Edges closing a cycle in an iterative depth-first search (start state first)."""
    successors: list[list[int]] = [[] for _ in range(count)]
    for source, target in pairs:
        if source != target:
            successors[source].append(target)
    state = [0] * count  # 1: on the stack, 2: done
    back: set[tuple[int, int]] = set()
    for root in [start, *range(count)] if count else []:
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(successors[root]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state[child] == 1:
                back.add((node, child))
            elif not state[child]:
                state[child] = 1
                stack.append((child, iter(successors[child])))
    return back


def _ranks(count: int, edges: list[tuple[int, int]]) -> list[int]:
    """Longest-path layering (Kahn's order over the acyclic edges)."""
    incoming = [0] * count
    successors: list[list[int]] = [[] for _ in range(count)]
    for source, target in edges:
        successors[source].append(target)
        incoming[target] += 1
    rank = [0] * count
    ready = [v for v in range(count) if incoming[v] == 0]
    while ready:
        node = ready.pop()
        for child in successors[node]:
            rank[child] = max(rank[child], rank[node] + 1)
            incoming[child] -= 1
            if incoming[child] == 0:
                ready.append(child)
    return rank


def _order(graph: _Graph) -> list[list[int]]:
    """Barycentre sweeps, down then up: each vertex moves to the mean position of its
    neighbours in the layer above (down) or below (up)."""
    layers: list[list[int]] = [[] for _ in range(max(graph.rank, default=-1) + 1)]
    for vertex, rank in enumerate(graph.rank):  # definition order is the first guess
        layers[rank].append(vertex)
    above, below = _neighbours(graph)
    position = [0] * len(graph.rank)
    for layer in layers:
        for i, v in enumerate(layer):
            position[v] = i
    for sweep in range(SWEEPS):
        neighbours = above if sweep % 2 == 0 else below
        for layer in (layers[1:] if sweep % 2 == 0 else layers[-2::-1]):
            layer.sort(key=lambda v: (_barycentre(neighbours[v], position, position[v]),
                                      position[v]))
            for i, v in enumerate(layer):
                position[v] = i
    return layers


def _neighbours(graph: _Graph) -> tuple[list[list[int]], list[list[int]]]:
    """Per vertex: its neighbours one layer up and one layer down (lane edges left out)."""
    above: list[list[int]] = [[] for _ in graph.rank]
    below: list[list[int]] = [[] for _ in graph.rank]
    for index, chain in enumerate(graph.chains):
        if index in graph.lanes:
            continue
        for a, b in zip(chain, chain[1:], strict=False):
            upper, lower = (a, b) if graph.rank[a] < graph.rank[b] else (b, a)
            if upper != lower:
                below[upper].append(lower)
                above[lower].append(upper)
    return above, below


def _barycentre(neighbours: list[int], position: list[int], own: int) -> float:
    return sum(position[n] for n in neighbours) / len(neighbours) if neighbours else own


def _place(graph: _Graph, layers: list[list[int]]) -> list[Box]:
    spans = [sum(graph.widths[v] for v in layer) + GAP_X * (len(layer) - 1) for layer in layers]
    widest = max(spans, default=0.0)
    boxes: list[Box] = [Box(0, 0, 0, 0)] * len(graph.widths)
    for rank, (layer, span) in enumerate(zip(layers, spans, strict=True)):
        x = MARGIN + (widest - span) / 2
        y = MARGIN + rank * (NODE_HEIGHT + GAP_Y)
        for v in layer:
            boxes[v] = Box(x, y, graph.widths[v], NODE_HEIGHT)
            x += graph.widths[v] + GAP_X
    return boxes


def _routes(graph: _Graph, boxes: list[Box], right: float) -> tuple[Route, ...]:
    seen: dict[tuple[int, int], int] = {}
    loops: dict[int, int] = {}
    routes = []
    lanes = 0
    for index, chain in enumerate(graph.chains):
        ends = (chain[0], chain[-1])
        if index in graph.lanes:
            lane = lanes % LANES
            lanes += 1
            routes.append(_lane(boxes[ends[0]], boxes[ends[1]], right + 24 + lane * LANE_STEP))
            continue
        if ends[0] == ends[1]:
            loops[ends[0]] = loops.get(ends[0], 0) + 1
            routes.append(_loop(boxes[ends[0]], loops[ends[0]] - 1))
            continue
        repeat = seen.get(ends, 0)
        seen[ends] = repeat + 1
        routes.append(_through(graph, [boxes[v] for v in chain], repeat))
    return tuple(routes)


def _through(graph: _Graph, boxes: list[Box], repeat: int) -> Route:
    """Leave the source by its bottom (top, going up), pass each point, enter the target."""
    down = boxes[-1].y > boxes[0].y
    shift = repeat * 12.0
    points = [(boxes[0].cx + shift, boxes[0].y + (boxes[0].height if down else 0))]
    points += [(b.cx, b.cy) for b in boxes[1:-1]]
    points.append((boxes[-1].cx + shift, boxes[-1].y + (0 if down else boxes[-1].height)))
    path = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for (x1, y1), (x2, y2) in zip(points, points[1:], strict=False):
        bend = (y2 - y1) / 2
        path.append(f"C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2:.1f}")
    (x1, y1), (x2, y2) = points[0], points[1]
    return Route(" ".join(path), (x1 + x2) / 2, (y1 + y2) / 2 + repeat * 14)


def _lane(source: Box, target: Box, x: float) -> Route:
    """Out of the source's right side, along the lane at ``x``, into the target's right."""
    x1, y1 = source.x + source.width, source.cy
    x2, y2 = target.x + target.width, target.cy + 6
    path = (f"M{x1:.1f},{y1:.1f} C{x:.1f},{y1:.1f} {x:.1f},{y1:.1f} {x:.1f},{(y1 + y2) / 2:.1f} "
            f"C{x:.1f},{y2:.1f} {x:.1f},{y2:.1f} {x2:.1f},{y2:.1f}")
    return Route(path, x + 4, (y1 + y2) / 2, "start")


def _loop(box: Box, out: int) -> Route:
    """A self-loop leaves by the right side and comes back."""
    reach = 30.0 + out * BACK_STEP
    x, y1, y2 = box.x + box.width, box.cy - 10, box.cy + 10
    far = x + reach
    path = f"M{x:.1f},{y1:.1f} C{far:.1f},{y1 - 8:.1f} {far:.1f},{y2 + 8:.1f} {x:.1f},{y2:.1f}"
    return Route(path, far + 4, box.cy + 4, "start")
