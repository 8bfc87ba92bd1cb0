"""The house's shape, checked on the code itself: no import cycle between any two modules, no module past
400 lines.

The import-linter contracts (pyproject.toml) say which way imports point between layers and forbid cycles
among the siblings of a package; a cycle can still run through modules of different packages, or through a
package's ``__init__``. This builds the whole import graph with grimp (the library import-linter is built
on) and looks for any cycle at all. Imports under ``if TYPE_CHECKING:`` are left out: they are not run.
"""

from __future__ import annotations

from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("coordination", "merges", "dagmerge_site")
MAX_LINES = 400


def import_cycles(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    """A shortest cycle through each import that is part of one, each cycle once: (a, b, ..., a)."""
    cycles: dict[frozenset[str], tuple[str, ...]] = {}
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                cycle = (importer, *back)
                cycles.setdefault(frozenset(cycle), cycle)
    return list(cycles.values())


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)
    assert {m.split(".")[0] for m in graph.modules} == set(PACKAGES)
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_cycle_check_reports_each_cycle_once_with_its_chain() -> None:
    """The check above passes on an empty answer, so the search itself is tested on a graph with known cycles."""
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d"),
                               ("q.x", "q.y"), ("q.y", "q.x"), ("p.d", "q.x")]:
        graph.add_import(importer=importer, imported=imported)
    assert sorted(import_cycles(graph)) == [("p.a", "p.b", "p.c", "p.a"), ("q.x", "q.y", "q.x")]


def test_no_module_over_400_lines() -> None:
    """Generated migrations aside: a module past the limit becomes a package split by what its parts do."""
    lengths = {
        path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
        for package in ("coordination", "merges")
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    assert len(lengths) > 50  # the walk found the code
    too_long = {path: lines for path, lines in sorted(lengths.items()) if lines > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"
