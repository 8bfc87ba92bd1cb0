"""bench/exact_whatif.py on a real repository: conflicts enumerated as the parallel replay does, cached, and each
finish-order hunk resolved both ways and judged against the author's commit."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from merges.engine.replay.report import ReplayReport
from merges.engine.resolvers.ladder import COMPLEMENTARY
from tests.gitrepo import Repo

ROOT = Path(__file__).resolve().parent.parent


def load_whatif():
    spec = importlib.util.spec_from_file_location("exact_whatif", ROOT / "bench" / "exact_whatif.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["exact_whatif"] = module
    spec.loader.exec_module(module)
    return module


def test_two_appended_functions_are_judged_both_ways_and_the_authors_order_found(tmp_path, capsys):
    repo = Repo(tmp_path / "repo")
    base = "def parse(text):\n    return text.split()\n"
    with_count = base + "\n\ndef count(text):\n    return len(parse(text))\n"
    repo.commit({"words.py": base}, "P")
    repo.commit({"words.py": with_count}, "C1: count")
    repo.commit({"words.py": with_count + "\n\ndef first(text):\n    return parse(text)[0]\n"}, "C2: first")
    whatif = load_whatif()
    stored = tmp_path / "cache.jsonl"

    cases = list(whatif.conflicts(repo.path, stored, "HEAD"))
    tally, table = whatif.Tally(), ReplayReport("parallel", COMPLEMENTARY, "repo", "HEAD")
    for case in cases:
        whatif.measure(case, tally, True, table)
    whatif.report(tally)

    assert [case["path"] for case in cases] == ["words.py"]
    assert list(whatif.conflicts(repo.path, stored, "HEAD")) == cases  # read back from the cache
    # C2 appended below C1's function: finish order (ours first) is the author's order, theirs first is not
    assert [(c["family"], c["place"], c["kept"]) for c in tally.both_ways] == [("definition", "end", "ours")]
    assert (table.hunks, table.total.resolved, table.total.exact) == (1, 1, 1)
    assert "definition   end      1 / 0 / 0" in capsys.readouterr().out
