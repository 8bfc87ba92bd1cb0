"""The server-side drawings: the DAG (lineage data, a dropped source's re-run) and the timeline."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from coordination.web import dagsvg, timeline

NODES = [dagsvg.Node(1, "A", "Set up", "succeeded"), dagsvg.Node(2, "B", "Feature B", "succeeded"),
         dagsvg.Node(3, "C", "Feature C", "succeeded"), dagsvg.Node(4, "D", "Integrate", "running")]
EDGES = [(1, 2), (1, 3), (2, 4), (3, 4)]  # (parent, child)
JOIN = dagsvg.JoinMark(9, 4, "merged")


def href(node: dagsvg.Node) -> str:
    return f"/t/{node.key}/"


def group(svg: str, ident: str) -> str:
    return re.search(rf'<g id="{ident}"[^>]*>', svg)[0]


def translate(svg: str, ident: str) -> tuple[int, int]:
    x, y = re.search(r'transform="translate\((\d+) (\d+)\)"', group(svg, ident)).groups()
    return int(x), int(y)


def test_every_node_names_its_parents_and_every_edge_its_ends_for_the_lineage():
    svg = dagsvg.render(NODES, EDGES, [JOIN], href)
    assert 'data-n="4" data-p="2 3"' in group(svg, "dag-node-4")
    assert 'data-p=""' in group(svg, "dag-node-1")
    assert sorted(re.findall(r'data-e="([^"]+)"', svg)) == ["1>2", "1>3", "2>4", "3>4"]
    assert 'class="dropped"' not in svg and "dag-ghost" not in svg


def test_a_dropped_source_is_drawn_as_its_first_run_and_a_rerun_of_its_own():
    svg = dagsvg.render(NODES, EDGES, [JOIN], href, dropped={3: JOIN.id})  # C was dropped from D's merge
    # Its first run keeps its place and its parent, marked dropped; its edge to the join is dashed.
    ghost = group(svg, "dag-ghost-3")
    assert 'data-n="g3" data-p="1"' in ghost
    assert translate(svg, "dag-ghost-3")[0] == translate(svg, "dag-node-2")[0]  # B's column
    assert '<a href="/t/C/" class="node st-dropped">' in svg and "dropped from the merge" in svg
    assert len(re.findall(r'<path class="dropped" d="', svg)) == 1
    # Its re-run is the live node (id dag-node-3), in D's column, fed by the join's merged head (B's work).
    assert translate(svg, "dag-node-3")[0] == translate(svg, "dag-node-4")[0]
    assert 'data-n="3" data-p="2 g3"' in group(svg, "dag-node-3")
    assert re.search(r'<path class="rerun" data-e="2>3" d="M', svg)
    assert "↻ C" in svg and "re-run on the merged head" in svg
    # D's inputs: B through the join; the dropped edge does not count for the lineage.
    assert 'data-n="4" data-p="2"' in group(svg, "dag-node-4")
    assert "3>4" not in svg and "g3>4" not in svg


def test_what_ran_after_a_dropped_first_run_hangs_from_that_run():
    nodes = [*NODES, dagsvg.Node(5, "E", "After C", "succeeded")]
    svg = dagsvg.render(nodes, [*EDGES, (3, 5)], [JOIN], href, dropped={3: JOIN.id})
    assert 'data-e="g3>5"' in svg  # E took the first run's work
    assert 'data-n="5" data-p="g3"' in group(svg, "dag-node-5")


T0 = datetime(2025, 1, 31, 14, 0, 0, tzinfo=UTC)


def test_the_timeline_has_a_lane_per_task_that_ran_with_its_merges_in_start_order():
    def at(seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    lanes = [
        timeline.Lane("D", "Integrate", "/t/D/", [
            timeline.Span(at(seconds=20), at(seconds=21), "merged", "/m/2/", "merge in"),
            timeline.Span(at(seconds=21), None, "running", "/t/D/", "run")]),
        timeline.Lane("A", "Set up", "/t/A/", [timeline.Span(T0, at(seconds=8), "succeeded", "/t/A/", "run")]),
        timeline.Lane("P", "Pending", "/t/P/"),  # never ran: no lane
    ]
    svg = timeline.render(lanes, now=at(seconds=30))
    assert 'aria-label="timeline of 2 tasks from 2025-01-31 14:00:00"' in svg
    assert svg.index(">A</text>") < svg.index(">D</text>")  # in the order they started
    assert "A: run at +0 ms, 8.0 s (succeeded)" in svg
    assert "D: merge in at +20.0 s, 1.0 s (merged)" in svg
    assert "D: run at +21.0 s, 9.0 s so far (running)" in svg
    assert 'class="run st-running going"' in svg and 'class="merge st-merged"' in svg
    assert '<line class="now"' in svg  # something still runs
    bars = {m[0]: float(m[1]) for m in re.findall(r'class="(run st-succeeded)" x="[\d.]+" y="[\d.]+" width="([\d.]+)"',
                                                  svg)}
    assert 0 < bars["run st-succeeded"] < timeline.PLOT_W / 2  # 8 s of a 30 s axis


def test_nothing_ran_no_timeline():
    assert timeline.render([timeline.Lane("A", "A", "/t/A/")], now=T0) == ""
