"""A ticket's task DAG drawn as plain SVG on the server: no JavaScript, so it works in any browser.

Layered layout, left to right: a task's column is its depth (the longest path from a root), and the order
within a column comes from a few barycenter sweeps, which untangles most crossings in linear time per
sweep. A join is drawn as a diamond in front of its continuation: the sources' edges meet there, and its
colour is the join's status. Everything is built as one string, so 1,000 tasks draw in milliseconds.
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


def render(nodes: list[Node], edges: list[tuple[int, int]], joins: list[JoinMark],
           href: Callable[[Node], str]) -> str:
    """The DAG as an ``<svg>`` string; ``edges`` are (parent id, child id), ``href`` links a node."""
    if not nodes:
        return '<svg class="dag-svg" width="0" height="0" role="img" aria-label="no tasks"></svg>'
    by_id = {n.id: n for n in nodes}
    edges = [(p, c) for p, c in edges if p in by_id and c in by_id]
    depth = depths(by_id, edges)
    layers: list[list[int]] = [[] for _ in range(max(depth.values()) + 1)]
    for node in nodes:
        layers[depth[node.id]].append(node.id)
    parents: dict[int, list[int]] = defaultdict(list)
    children: dict[int, list[int]] = defaultdict(list)
    for parent, child in edges:
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

    join_of = {j.continuation_id: j for j in joins if j.continuation_id in by_id}
    path: list[str] = []
    for parent, child in edges:
        px, py = xy[parent]
        cx, cy = xy[child]
        x1, y1 = px + NODE_W, py + NODE_H // 2
        x2 = cx - GAP_X // 2 - DIAMOND if child in join_of else cx
        y2 = cy + NODE_H // 2
        bend = (x1 + x2) // 2
        path.append(f"M{x1} {y1}C{bend} {y1} {bend} {y2} {x2} {y2}")
    for continuation_id in join_of:
        cx, cy = xy[continuation_id]
        path.append(f"M{cx - GAP_X // 2 + DIAMOND} {cy + NODE_H // 2}H{cx}")

    out = [
        f'<svg class="dag-svg" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="task graph: {len(nodes)} tasks">',
        f'<path class="edges" d="{"".join(path)}"/>',
    ]
    # Each mark sits in a positioned <g> with a stable id and draws itself at the origin, so a status
    # change is swapped into its <g> alone, without laying the graph out again.
    for continuation_id, join in join_of.items():
        cx, cy = xy[continuation_id]
        out.append(f'<g id="dag-join-{join.id}" transform="translate({cx - GAP_X // 2} {cy + NODE_H // 2})">'
                   f"{join_mark(join, by_id[continuation_id].key)}</g>")
    for node in nodes:
        x, y = xy[node.id]
        mark = node_mark(node, href(node))
        out.append(f'<g id="dag-node-{node.id}" transform="translate({x} {y})">{mark}</g>')
    out.append("</svg>")
    return "".join(out)


def node_mark(node: Node, href: str) -> str:
    """A task's box, drawn at the origin of its ``<g id="dag-node-<id>">``."""
    key = node.key if len(node.key) <= KEY_CHARS else node.key[: KEY_CHARS - 1] + "…"
    return (
        f'<a href="{escape(href)}" class="node st-{node.status}">'
        f'<title>{escape(node.key)}: {escape(node.title)} ({node.status.replace("_", " ")})</title>'
        f'<rect width="{NODE_W}" height="{NODE_H}" rx="5"/>'
        f'<text x="8" y="{NODE_H // 2}">{escape(key)}</text></a>'
    )


def join_mark(join: JoinMark, continuation_key: str) -> str:
    """A join's diamond, centred on the origin of its ``<g id="dag-join-<id>">``."""
    d = DIAMOND
    return (
        f'<a href="#join-{join.id}" class="join st-{join.status}">'
        f'<title>join → {escape(continuation_key)}: {join.status.replace("_", " ")}</title>'
        f'<path d="M{-d} 0L0 {-d}L{d} 0L0 {d}Z"/></a>'
    )
