"""Replaying history through the resolvers: exact figures on repositories whose answers the test knows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from merges.engine.replay import replay, transplant
from tests.gitrepo import Repo

NUMBERED = "".join(f"value_{i} = {i}\n" for i in range(1, 21))


def edit(text: str, number: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[number - 1] = new + "\n"
    return "".join(lines)


def merge_by_hand(repo: Repo, path: str, ours: str, theirs: str, committed: str) -> None:
    """A merge on main of a branch changing ``path`` to ``theirs``, ours being ``ours``; the person who
    resolved the conflict committed ``committed``."""
    repo.branch(f"topic-{path}", "main")
    repo.commit({path: theirs}, f"theirs {path}")
    repo.checkout("main")
    repo.commit({path: ours}, f"ours {path}")
    repo.git.run("merge", "--no-edit", f"topic-{path}", ok=(0, 1))
    repo.commit({path: committed}, f"merge {path}")


def history_repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "history")
    repo.commit({name: NUMBERED for name in ("same.py", "spaces.py", "words.py", "clean.py")}, "base")
    # both sides wrote the same line: same_change settles it as the person did
    merge_by_hand(repo, "same.py", edit(NUMBERED, 3, "value_3 = 'three'"), edit(NUMBERED, 3, "value_3  =  'three'"),
                  edit(NUMBERED, 3, "value_3 = 'three'"))
    # ours only re-spaced a line theirs changed: whitespace_only keeps theirs, the person wrote something else
    merge_by_hand(repo, "spaces.py", edit(NUMBERED, 5, "value_5 = 5   "), edit(NUMBERED, 5, "value_5 = 50"),
                  edit(NUMBERED, 5, "value_5 = 55"))
    # different words on one line: no history-safe resolver may choose
    merge_by_hand(repo, "words.py", edit(NUMBERED, 7, "value_7 = 'a'"), edit(NUMBERED, 7, "value_7 = 'b'"),
                  edit(NUMBERED, 7, "value_7 = 'ab'"))
    # a clean merge
    repo.branch("topic-clean", "main")
    repo.commit({"clean.py": edit(NUMBERED, 1, "value_1 = 'x'")}, "clean")
    repo.checkout("main")
    repo.git.run("merge", "--no-ff", "--no-edit", "topic-clean")
    return repo


def test_history_replay_scores_each_resolver_against_what_people_committed(tmp_path):
    repo = history_repo(tmp_path)

    report = replay(repo.path, "history")

    assert (report.rule_set, report.cases, report.conflicted_cases, report.hunks) == ("history-safe", 4, 3, 3)
    scores = {name: (s.resolved, s.right, s.unjudged) for name, s in report.resolvers.items()}
    assert scores == {"same_change": (1, 1, 0), "whitespace_only": (1, 0, 0)}
    assert report.coverage == 2 / 3 and report.total.precision == 1 / 2


def test_history_replay_with_complementary_rules_keeps_both_sides_where_people_did_not(tmp_path):
    repo = history_repo(tmp_path)
    report = replay(repo.path, "history", rule_set="complementary")
    assert report.total.resolved == 2  # the one-line clash stays unresolved: the edits overlap


def test_history_replay_counts_conflicts_git_only_names_in_a_message(tmp_path):
    repo = Repo(tmp_path / "renamed")
    repo.commit({"a/one.txt": "1\n"}, "base")
    repo.branch("topic")
    repo.commit({"a/new.txt": "new\n"}, "add a file in a/")
    repo.checkout("main")
    repo.git.run("mv", "a", "b")
    repo.commit({}, "rename a/ to b/")
    repo.git.run("merge", "--no-edit", "topic", ok=(0, 1))
    repo.commit({"b/new.txt": "new\n"}, "merge")

    report = replay(repo.path, "history")

    assert (report.conflicted_cases, report.files, report.hunks, report.total.resolved) == (
        1, {"rename": 2}, 2, 0)  # a/new.txt is only named in git's "file location" message


def test_replay_never_writes_into_the_repository(tmp_path):
    repo = history_repo(tmp_path)
    before = (repo.git.text("count-objects", "-v"), repo.git.text("for-each-ref"), repo.git.text("status", "-s"))
    replay(repo.path, "history")
    replay(repo.path, "parallel")
    after = (repo.git.text("count-objects", "-v"), repo.git.text("for-each-ref"), repo.git.text("status", "-s"))
    assert after == before


CHANGES = "Changes\n=======\n\n-   First entry.\n\nOlder\n-----\n\n-   Old entry.\n"


def parallel_repo(tmp_path: Path) -> Repo:
    """Consecutive commits whose changes, made side by side, would conflict (or not) in known ways."""
    repo = Repo(tmp_path / "parallel")
    code = NUMBERED
    repo.commit({"code.py": code, "CHANGES.rst": CHANGES}, "P")
    changes = CHANGES.replace("-   First entry.\n", "-   First entry.\n-   C1 entry.\n")
    repo.commit({"code.py": edit(code, 5, "value_5 = 'C1'"), "CHANGES.rst": changes}, "C1")
    # C2 edits the line next to C1's and appends after C1's entry: line_merge and changelog_union, both right
    code = edit(edit(code, 5, "value_5 = 'C1'"), 6, "value_6 = 'C2'")
    changes = changes.replace("-   C1 entry.\n", "-   C1 entry.\n-   C2 entry.\n")
    repo.commit({"code.py": code, "CHANGES.rst": changes}, "C2")
    # C3 edits the line C2 introduced: the pair (C2, C3) is dropped
    code = edit(code, 6, "value_6 = 'C3'")
    repo.commit({"code.py": code}, "C3")
    # C4 appends a function far from C3's edit: git merges the pair (C3, C4) cleanly
    code += "\n\ndef four():\n    return 4\n"
    repo.commit({"code.py": code}, "C4")
    # C5 appends another right after C4's: both insert at one point in code, no order is known
    code += "\n\ndef five():\n    return 5\n"
    repo.commit({"code.py": code}, "C5")
    return repo


def test_parallel_replay_scores_conflicts_made_from_consecutive_commits(tmp_path):
    repo = parallel_repo(tmp_path)

    report = replay(repo.path, "parallel")

    assert (report.rule_set, report.cases, report.conflicted_cases, report.hunks) == ("complementary", 4, 2, 3)
    scores = {name: (s.resolved, s.right, s.unjudged) for name, s in report.resolvers.items()}
    assert scores == {"line_merge": (1, 1, 0), "changelog_union": (1, 1, 0)}
    assert report.coverage == 2 / 3 and report.total.precision == 1.0
    assert report.notes == {"C2 edits lines C1 introduced": 1, "clean merges": 1}


def test_parallel_replay_limit_takes_the_newest_commit_pairs(tmp_path):
    report = replay(parallel_repo(tmp_path).path, "parallel", limit=1)
    assert (report.cases, report.hunks, report.total.resolved) == (1, 1, 0)


def test_transplant_moves_a_change_onto_the_parent_and_refuses_edits_of_new_lines():
    p = "a\nb\nc\nd\n"
    c1 = "a\nB\nc\nd\n"
    assert transplant(p, c1, "a\nB\nc\nD\n") == "a\nb\nc\nD\n"
    assert transplant(p, c1, "a\nB\nx\nc\nd\n") == "a\nb\nx\nc\nd\n"  # inserted after C1's new line
    assert transplant(p, c1, "a\nBB\nc\nd\n") is None  # edits the line C1 introduced


def test_replay_command_prints_json(tmp_path):
    repo = history_repo(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "dagmerge_site.cli", "replay", "--repo", str(repo.path), "--mode",
                           "history", "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["hunks"], report["resolved"], report["right"]) == (3, 2, 1)
    assert report["resolvers"]["same_change"]["precision"] == 1.0
