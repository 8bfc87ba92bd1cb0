from __future__ import annotations

from merges.engine.convergence import Source, converge
from tests.gitrepo import Repo, numbered_lines, replace_line

BASE = numbered_lines(40)


def _sources(tmp_path):
    """S1 edits line 10, S3 edits line 12, S2 rewrites lines 10-12: S2 conflicts with both others."""
    repo = Repo(tmp_path / "repo")
    base = repo.commit({"f.txt": BASE, "other.txt": "x\n"}, "base")
    shas = {}
    edits = {
        "S1": replace_line(BASE, 10, "S1 line 10"),
        "S2": replace_line(replace_line(replace_line(BASE, 10, "S2 a"), 11, "S2 b"), 12, "S2 c"),
        "S3": replace_line(BASE, 12, "S3 line 12"),
    }
    for name, text in edits.items():
        repo.branch(name, base)
        shas[name] = repo.commit({"f.txt": text}, name)
    return repo, base, shas


def test_least_conflicts_first_merges_compatible_sources_before_the_entangled_one(tmp_path):
    repo, base, shas = _sources(tmp_path)
    listed_worst_first = [Source(n, shas[n], fork_point=base) for n in ("S2", "S1", "S3")]

    result = converge(repo.git, base, listed_worst_first)

    assert result.order == ["S1", "S3"]
    assert result.pending == ["S2"]
    assert result.conflict_source == "S2"
    assert result.conflict_hunks == 1
    assert result.scores == {"S1": 0, "S3": 0, "S2": 1}
    assert result.pairwise["S2"] == {"S1": 1, "S3": 1}
    assert result.pairwise["S1"]["S3"] == 0
    merged = repo.show(result.head, "f.txt")
    assert "S1 line 10" in merged and "S3 line 12" in merged


def test_the_listed_order_would_have_left_more_conflicts(tmp_path):
    """The same three sources merged in the order given: two sources conflict, not one."""
    repo, base, shas = _sources(tmp_path)
    head = base
    conflicting = []
    for name in ("S2", "S1", "S3"):
        merged = repo.git.merge_tree(head, shas[name])
        if merged.clean:
            head = repo.git.commit_tree(merged.tree, [head, shas[name]], name)
        else:
            conflicting.append(name)
    assert conflicting == ["S1", "S3"]


def test_sources_are_rescored_against_the_new_head_after_each_merge(tmp_path):
    repo = Repo(tmp_path / "repo")
    base = repo.commit({"f.txt": BASE}, "base")
    repo.branch("ticket", base)
    head = repo.commit({"f.txt": replace_line(BASE, 5, "ticket edit")}, "ticket moved on")
    repo.branch("old", base)  # forked before the ticket's edit: conflicts with it
    old = repo.commit({"f.txt": replace_line(BASE, 5, "old edit")}, "old")
    repo.branch("fresh", head)
    fresh = repo.commit({"g.txt": "new\n"}, "fresh")

    result = converge(repo.git, head, [Source("old", old), Source("fresh", fresh)])

    assert result.order == ["fresh"]
    assert result.pending == ["old"]
    assert result.scores == {"fresh": 0, "old": 1}
    assert repo.show(result.head, "g.txt") == "new\n"


def test_disjoint_sources_need_no_scoring_merges(tmp_path):
    repo = Repo(tmp_path / "repo")
    base = repo.commit({f"d{i}.txt": "x\n" for i in range(6)}, "base")
    sources = []
    for i in range(6):
        repo.branch(f"b{i}", base)
        sources.append(Source(f"b{i}", repo.commit({f"d{i}.txt": f"changed {i}\n"}), fork_point=base))

    result = converge(repo.git, base, sources)

    assert result.clean and len(result.order) == 6
    assert result.merge_tree_runs == 6  # one merge per source, no re-scoring
    for i in range(6):
        assert repo.show(result.head, f"d{i}.txt") == f"changed {i}\n"


def test_a_source_already_on_the_head_is_skipped_without_a_commit(tmp_path):
    repo = Repo(tmp_path / "repo")
    base = repo.commit({"a.txt": "a\n"}, "base")
    repo.branch("feature", base)
    feature = repo.commit({"b.txt": "b\n"}, "feature")

    result = converge(repo.git, feature, [Source("feature", feature)])

    assert result.clean and result.head == feature
    assert result.already_merged == ["feature"] and result.order == []


def test_a_source_made_on_top_of_the_head_lands_its_own_tree_in_a_merge_commit_without_a_merge(tmp_path):
    repo, base, shas = _sources(tmp_path)

    result = converge(repo.git, base, [Source("S1", shas["S1"], fork_point=base)])

    assert result.clean and result.order == ["S1"] and result.scores == {"S1": 0}
    assert result.merge_tree_runs == 0
    assert repo.git.tree_of(result.head) == repo.git.tree_of(shas["S1"])
    assert repo.git.text("rev-list", "--parents", "-n", "1", result.head).split()[1:] == [base, shas["S1"]]


def test_a_source_the_head_holds_already_adds_no_commit(tmp_path):
    repo, _, shas = _sources(tmp_path)

    result = converge(repo.git, shas["S1"], [Source("S1", shas["S1"])])

    assert result.clean and result.head == shas["S1"] and result.already_merged == ["S1"] and result.order == []


def test_a_source_not_on_top_of_the_head_is_merged_for_real(tmp_path):
    repo, base, shas = _sources(tmp_path)
    head = converge(repo.git, base, [Source("S1", shas["S1"], fork_point=base)]).head

    result = converge(repo.git, head, [Source("S3", shas["S3"], fork_point=base)])

    assert result.clean and result.merge_tree_runs == 1
    merged = repo.show(result.head, "f.txt")
    assert "S1 line 10" in merged and "S3 line 12" in merged


def test_a_single_source_started_on_the_head_is_made_its_own_tree_with_one_git_process(tmp_path, monkeypatch):
    """A chain's next task started on the head as it is: its fork point says it descends from the head
    (the sandboxes check that), so neither ancestry nor a merge is asked of git, only the commit."""
    repo = Repo(tmp_path / "repo")
    head = repo.commit({"f.txt": BASE}, "base")
    task = repo.commit({"f.txt": replace_line(BASE, 3, "task edit")}, "task")
    calls, run = [], type(repo.git).run
    monkeypatch.setattr(type(repo.git), "run", lambda git, *args, **kw: calls.append(args[0]) or run(git, *args, **kw))

    result = converge(repo.git, head, [Source("A", task, fork_point=head)])

    assert calls == ["commit-tree"]
    assert result.order == ["A"] and repo.git.text("rev-parse", f"{result.head}^{{tree}}") == repo.git.text(
        "rev-parse", f"{task}^{{tree}}")
    assert repo.git.text("rev-parse", f"{result.head}^1", f"{result.head}^2").split() == [head, task]
