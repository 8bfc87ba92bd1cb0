"""A ticket's task DAG drawn as plain SVG on the server: no JavaScript, so it works in any browser.

Layered layout, left to right: a task's column is its depth (the longest path from a root), and the order
within a column comes from a few barycenter sweeps, which untangles most crossings in linear time per
sweep. A join is drawn as a diamond in front of its continuation: the sources' edges meet there, and its
colour is the join's status. Everything is built as one string, so 1,000 tasks draw in milliseconds.

A source a reviewer dropped from a join's merge is drawn twice: its first run where it was, with a dashed
edge to the join (its work did not go in), and its re-run as a node of its own beside the continuation,
fed by the join's merged head. Every node carries its parents (``data-p``) and every edge its ends
(``data-e``), so the page's script (static/dagmerge-ticket.js) can light up a task's lineage.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape

NODE_W = 150
NODE_H = 26
GAP_X = 56  # wide enough for a join diamond between two columns
GAP_Y = 10
PAD = 12
DIAMOND = 7  # half the diagonal of a join's diamond
KEY_CHARS = 19
SWEEPS = 2


@dataclass(frozen=True)
class Node:
    id: int
    key: str
    title: str
    status: str
    rerun: bool = False  # dropped from a join's merge: this is its run of its own


@dataclass(frozen=True)
class JoinMark:
    id: int
    continuation_id: int
    status: str


def depths(node_ids: Iterable[int], edges: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Longest path from a root for every node (Kahn's order); nodes on a cycle go after the rest."""
    ids = list(node_ids)
    known = set(ids)
    children: dict[int, list[int]] = defaultdict(list)
    indegree = dict.fromkeys(ids, 0)
    for parent, child in edges:
        if parent in known and child in known:
            children[parent].append(child)
            indegree[child] += 1
    depth = dict.fromkeys(ids, 0)
    queue = [n for n in ids if indegree[n] == 0]
    for node in queue:  # the list grows while we walk it
        for child in children[node]:
            depth[child] = max(depth[child], depth[node] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                queue.append(child)
    if len(queue) < len(ids):  # a cycle: the spec checker forbids it, but never draw nothing
        deepest = max(depth.values(), default=0) + 1
        for node in ids:
            if indegree[node]:
                depth[node] = deepest
    return depth


def _order_layers(layers: list[list[int]], parents: dict[int, list[int]],
                  children: dict[int, list[int]]) -> None:
    """Reorder each layer by the mean position of its neighbours in the previous one (in place)."""
    position: dict[int, float] = {}
    for layer in layers:
        position.update((node, i) for i, node in enumerate(layer))

    def sweep(sequence: list[list[int]], neighbours: dict[int, list[int]]) -> None:
        for layer in sequence:
            def barycenter(node: int) -> float:
                near = neighbours.get(node)
                return sum(position[n] for n in near) / len(near) if near else position[node]
            layer.sort(key=barycenter)
            position.update((node, i) for i, node in enumerate(layer))

    for _ in range(SWEEPS):
        sweep(layers[1:], parents)
        sweep(layers[-2::-1], children)


@dataclass
class _Drawing:
    """What is drawn, after a dropped source's first run became a ghost node of its own."""

    nodes: list[Node]
    edges: list[tuple[int, int]]  # drawn and followed by the lineage
    dropped_edges: list[tuple[int, int]]  # ghost → continuation: drawn dashed, its work did not go in
    reruns: list[tuple[JoinMark, int, list[int]]]  # (join, re-run task, the sources its merged head holds)
    layout_edges: list[tuple[int, int]]  # only to place each re-run in its continuation's column


def _drawing(nodes: list[Node], edges: list[tuple[int, int]], join_of: dict[int, JoinMark],
             dropped: dict[int, int]) -> _Drawing:
    """``dropped``: task id → id of the join whose merge went on without it. The ghost of task ``t`` has
    the id ``-t`` and takes over every edge of the first run; the re-run's only input is the merged head."""
    joins = {j.id: j for j in join_of.values()}
    by_id = {n.id: n for n in nodes}
    dropped = {t: j for t, j in dropped.items() if t in by_id and j in joins}
    if not dropped:
        return _Drawing(nodes, edges, [], [], [])
    continuation_of = {t: joins[j].continuation_id for t, j in dropped.items()}
    drawn, dashed = [], []
    for parent, child in edges:  # what ran after the first run took that run's work: its edges go to the ghost
        if continuation_of.get(parent) == child:
            dashed.append((-parent, child))
        else:
            drawn.append((-parent if parent in dropped else parent, -child if child in dropped else child))
    reruns, layout = [], []
    for task_id, join_id in dropped.items():
        continuation = continuation_of[task_id]
        kept = [-p if p in dropped else p for p, c in edges
                if c == continuation and continuation_of.get(p) != continuation]
        reruns.append((joins[join_id], task_id, kept))
        layout += [(p, task_id) for p in kept] or [(-task_id, task_id)]
    ghosts = [Node(-t, by_id[t].key, by_id[t].title, "dropped") for t in dropped]
    nodes = [Node(n.id, n.key, n.title, n.status, rerun=n.id in dropped) for n in nodes] + ghosts
    return _Drawing(nodes, drawn, dashed, reruns, layout)


def render(nodes: list[Node], edges: list[tuple[int, int]], joins: list[JoinMark],
           href: Callable[[Node], str], dropped: dict[int, int] | None = None) -> str:
    """The DAG as an ``<svg>`` string; ``edges`` are (parent id, child id), ``href`` links a node,
    ``dropped`` maps a task a reviewer dropped from a join's merge to that join's id."""
    if not nodes:
        return '<svg class="dag-svg" width="0" height="0" role="img" aria-label="no tasks"></svg>'
    known = {n.id for n in nodes}
    edges = [(p, c) for p, c in edges if p in known and c in known]
    join_of = {j.continuation_id: j for j in joins if j.continuation_id in known}
    drawing = _drawing(nodes, edges, join_of, dropped or {})
    nodes = drawing.nodes
    by_id = {n.id: n for n in nodes}
    placed = drawing.edges + drawing.dropped_edges + drawing.layout_edges
    depth = depths(by_id, placed)
    layers: list[list[int]] = [[] for _ in range(max(depth.values()) + 1)]
    for node in nodes:
        layers[depth[node.id]].append(node.id)
    parents: dict[int, list[int]] = defaultdict(list)
    children: dict[int, list[int]] = defaultdict(list)
    for parent, child in placed:
        parents[child].append(parent)
        children[parent].append(child)
    _order_layers(layers, parents, children)

    pitch = NODE_H + GAP_Y
    tallest = max(len(layer) for layer in layers)
    xy: dict[int, tuple[int, int]] = {}
    for column, layer in enumerate(layers):
        top = PAD + (tallest - len(layer)) * pitch // 2  # centre short columns
        for row, node_id in enumerate(layer):
            xy[node_id] = (PAD + column * (NODE_W + GAP_X), top + row * pitch)
    width = 2 * PAD + len(layers) * NODE_W + (len(layers) - 1) * GAP_X
    height = 2 * PAD + tallest * pitch - GAP_Y

    def edge(parent: int, child: int) -> str:
        """Parent's right side to the child's left, through the child's join diamond when it has one."""
        px, py = xy[parent]
        cx, cy = xy[child]
        x1, y1, y2 = px + NODE_W, py + NODE_H // 2, cy + NODE_H // 2
        if child not in join_of:
            bend = (x1 + cx) // 2
            return f"M{x1} {y1}C{bend} {y1} {bend} {y2} {cx} {y2}"
        x2 = cx - GAP_X // 2 - DIAMOND
        bend = (x1 + x2) // 2
        return f"M{x1} {y1}C{bend} {y1} {bend} {y2} {x2} {y2}M{x2 + 2 * DIAMOND} {y2}H{cx}"

    lineage: dict[int, list[int]] = defaultdict(list)  # node → the parents its work came from
    out = [
        f'<svg class="dag-svg" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="task graph: {len(by_id)} tasks">',
        '<g class="edges">',
    ]
    for parent, child in drawing.edges:
        lineage[child].append(parent)
        out.append(f'<path data-e="{_ref(parent)}>{_ref(child)}" d="{edge(parent, child)}"/>')
    out += [f'<path class="dropped" d="{edge(p, c)}"/>' for p, c in drawing.dropped_edges]
    for join, task_id, sources in drawing.reruns:
        jx, jy = xy[join.continuation_id]
        x1, y1 = jx - GAP_X // 2 + DIAMOND, jy + NODE_H // 2
        tx, ty = xy[task_id]
        y2 = ty + NODE_H // 2
        lineage[task_id] += [*sources, -task_id]
        pairs = " ".join(f"{_ref(s)}>{_ref(task_id)}" for s in sources)
        out.append(f'<path class="rerun" data-e="{pairs}" d="M{x1} {y1}C{x1 + 8} {y1} {x1 + 8} {y2} {tx} {y2}"/>')
    out.append("</g>")
    # Each mark sits in a positioned <g> with a stable id and draws itself at the origin, so a status
    # change is swapped into its <g> alone, without laying the graph out again.
    for continuation_id, join in join_of.items():
        cx, cy = xy[continuation_id]
        out.append(f'<g id="dag-join-{join.id}" transform="translate({cx - GAP_X // 2} {cy + NODE_H // 2})">'
                   f"{join_mark(join, by_id[continuation_id].key)}</g>")
    for node in nodes:
        x, y = xy[node.id]
        mark = node_mark(node, href(node))
        ident = f"dag-ghost-{-node.id}" if node.id < 0 else f"dag-node-{node.id}"
        ups = " ".join(_ref(p) for p in lineage.get(node.id, ()))
        out.append(f'<g id="{ident}" class="n" data-n="{_ref(node.id)}" data-p="{ups}" '
                   f'transform="translate({x} {y})">{mark}</g>')
    out.append("</svg>")
    return "".join(out)


def _ref(node_id: int) -> str:
    """A node's name in ``data-*`` attributes: its id, ``g<id>`` for a ghost (a dropped first run)."""
    return f"g{-node_id}" if node_id < 0 else str(node_id)


def node_mark(node: Node, href: str) -> str:
    """A task's box, drawn at the origin of its ``<g id="dag-node-<id>">``."""
    label = f"↻ {node.key}" if node.rerun else node.key
    label = label if len(label) <= KEY_CHARS else label[: KEY_CHARS - 1] + "…"
    if node.status == "dropped":
        what = "first run, dropped from the merge: its work did not go in; it runs again on its own"
    else:
        what = ("re-run on the merged head, " if node.rerun else "") + node.status.replace("_", " ")
    return (
        f'<a href="{escape(href)}" class="node st-{node.status}">'
        f"<title>{escape(node.key)}: {escape(node.title)} ({what})</title>"
        f'<rect width="{NODE_W}" height="{NODE_H}" rx="5"/>'
        f'<text x="8" y="{NODE_H // 2}">{escape(label)}</text></a>'
    )


def join_mark(join: JoinMark, continuation_key: str) -> str:
    """A join's diamond, centred on the origin of its ``<g id="dag-join-<id>">``."""
    d = DIAMOND
    return (
        f'<a href="#join-{join.id}" class="join st-{join.status}">'
        f'<title>join → {escape(continuation_key)}: {join.status.replace("_", " ")}</title>'
        f'<path d="M{-d} 0L0 {-d}L{d} 0L0 {d}Z"/></a>'
    )
