"""Replaying history through the resolvers: exact figures on repositories whose answers the test knows, judged
three ways, and the agent tier against the fake Claude CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from merges.engine.conflicts import safe_marker_size
from merges.engine.llm import LLMSettings
from merges.engine.mergefile import git_merge_file
from merges.engine.replay import replay
from merges.engine.replay.agent import AgentReplay
from merges.engine.replay.judging import judge
from merges.engine.replay.transplant import Transplant, transplant
from merges.engine.resolvers.context import Sides
from merges.engine.resolvers.ladder import COMPLEMENTARY, resolve_merged
from tests.fakes.fake_claude import install, recorded_calls
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


def scores(table) -> dict[str, tuple[int, int, int, int, int]]:
    """resolved, exact, layout, equivalent, unjudged per name."""
    return {name: (s.resolved, s.exact, s.layout, s.equivalent, s.unjudged) for name, s in table.items()}


def test_history_replay_scores_each_resolver_against_what_people_committed(tmp_path):
    repo = history_repo(tmp_path)

    report = replay(repo.path, "history")

    assert (report.rule_set, report.cases, report.conflicted_cases, report.hunks) == ("history-safe", 4, 3, 3)
    assert scores(report.resolvers) == {"same_change": (1, 1, 1, 1, 0), "whitespace_only": (1, 0, 0, 0, 0)}
    assert report.coverage == 2 / 3 and report.total.precision("layout") == 1 / 2


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
    # C5 appends another right after C4's: both insert at one point of the module, the structured tier keeps
    # both in finish order (C4's first), as the author did
    code += "\n\ndef five():\n    return 5\n"
    repo.commit({"code.py": code}, "C5")
    return repo


def test_parallel_replay_scores_conflicts_made_from_consecutive_commits(tmp_path):
    repo = parallel_repo(tmp_path)

    report = replay(repo.path, "parallel")

    assert (report.rule_set, report.cases, report.conflicted_cases, report.hunks) == ("complementary", 4, 2, 3)
    assert scores(report.resolvers) == {"line_merge": (1, 1, 1, 1, 0), "changelog_union": (1, 1, 1, 1, 0),
                                        "structured": (1, 1, 1, 1, 0)}
    assert scores(report.rules) == {"finish order": (1, 1, 1, 1, 0)}
    assert scores(report.rules_left_out) == {"finish order": (0, 0, 0, 0, 0)}  # without it: left open
    assert scores(report.languages) == {"python": (2, 2, 2, 2, 0), "changelog": (1, 1, 1, 1, 0)}
    assert report.hunks_by_language == {"python": 2, "changelog": 1}
    assert report.coverage == 1.0 and report.total.precision("exact") == 1.0
    assert report.notes == {"C2 edits lines C1 introduced": 1, "clean merges": 1}


def test_parallel_replay_limit_takes_the_newest_commit_pairs(tmp_path):
    report = replay(parallel_repo(tmp_path).path, "parallel", limit=1)
    assert (report.cases, report.hunks, report.total.resolved) == (1, 1, 1)
    assert list(report.resolvers) == ["structured"]  # the pair (C4, C5): both appended a function


def test_transplant_moves_a_change_onto_the_parent_and_refuses_edits_of_new_lines():
    p = "a\nb\nc\nd\n"
    c1 = "a\nB\nc\nd\n"
    assert transplant(p, c1, "a\nB\nc\nD\n") == Transplant("a\nb\nc\nD\n")
    assert transplant(p, c1, "a\nB\nx\nc\nd\n") == Transplant("a\nb\nx\nc\nd\n", [(2, 2, 1)])  # after C1's new line
    assert transplant(p, c1, "a\nBB\nc\nd\n") is None  # edits the line C1 introduced


def test_a_transplant_that_would_move_c2s_lines_to_another_owner_is_known_by_syntax():
    f, g, new = ("\n    def f(self):\n        pass\n", "\n    def g(self):\n        pass\n",
                 "\n    def new(self):\n        pass\n")
    p, c1 = "class A:" + f + g, "class A:" + f + new + g
    decorated = c1.replace("\n    def new", "\n    @property\n    def new")  # lands above g: another owner
    another = "class A:" + f + new + "\n    def other(self):\n        pass\n" + g  # a sibling: the same class
    assert transplant(p, c1, decorated).moved_away("a.py", decorated)
    assert not transplant(p, c1, another).moved_away("a.py", another)
    assert not transplant(p, c1, decorated).moved_away("a.txt", decorated)  # no syntax known: taken as it is
    js_p, js_c1 = "function a() {}\n\nfunction c() {}\n", "function a() {}\n\nfunction b() {}\n\nfunction c() {}\n"
    documented = js_c1.replace("function b", "/** Bees. */\nfunction b")  # a comment for C1's b: lands above c
    assert transplant(js_p, js_c1, documented).moved_away("a.js", documented)
    py_p = "import os\n\n\ndef first():\n    return 1\n\n"  # ends with a blank line: C1's last one aligns with it
    py_c1 = "import os\nimport sys\n\n\ndef first():\n    return 1\n\n\ndef second():\n    x = 2\n\n"
    in_second = py_c1 + "    assert x\n\n"  # after a blank line, in C1's new function: lands in first()
    moved = transplant(py_p, py_c1, in_second)
    assert moved.text == py_p + "    assert x\n\n" and moved.moved_away("a.py", in_second)


def test_replay_command_prints_json(tmp_path):
    repo = history_repo(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "dagmerge_site.cli", "replay", "--repo", str(repo.path), "--mode",
                           "history", "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["hunks"], report["resolved"], report["exact"], report["layout"], report["equivalent"]) == (
        3, 2, 1, 1, 1)
    assert report["resolvers"]["same_change"]["exact_precision"] == 1.0
    assert report["languages"]["python"]["hunks"] == 3


# -- judged three ways ----------------------------------------------------------------------------------------

SERVICE = "class Service:\n    def start(self):\n        return 1\n"
STOP = "\n    def stop(self):\n        return 0\n"
STATUS = "\n    def status(self):\n        return 2\n"


def test_a_settled_hunk_is_judged_exact_layout_and_equivalent_against_the_authors_file():
    size = safe_marker_size([SERVICE, SERVICE + STOP, SERVICE + STATUS])
    merged, _ = git_merge_file(SERVICE.encode(), (SERVICE + STOP).encode(), (SERVICE + STATUS).encode(), size)
    resolution = resolve_merged(merged.decode(), "service.py", Sides(SERVICE, SERVICE + STOP, SERVICE + STATUS),
                                COMPLEMENTARY, marker_size=size)
    assert resolution.text == SERVICE + STOP + STATUS

    def ways(truth: str) -> tuple[bool, bool, bool]:
        [found] = judge(resolution, truth)
        assert found is not None
        return found.exact, found.layout, found.equivalent

    assert ways(SERVICE + STOP + STATUS) == (True, True, True)
    assert ways(SERVICE + STOP + "\n" + STATUS.replace("return 2", "return  2")) == (False, True, True)
    assert ways(SERVICE + STATUS + STOP) == (False, False, True)  # class members in the other order
    assert ways(SERVICE + STOP + STATUS.replace("return 2", "return 3")) == (False, False, False)


def test_parallel_replay_reports_an_order_the_author_did_not_keep_as_equivalent_only(tmp_path):
    repo = Repo(tmp_path / "order")
    repo.commit({"service.py": SERVICE}, "P")
    repo.commit({"service.py": SERVICE + STOP}, "C1: stop")
    repo.commit({"service.py": SERVICE + STATUS + STOP}, "C2: status, above stop")

    report = replay(repo.path, "parallel")

    assert scores(report.resolvers) == {"structured": (1, 0, 0, 1, 0)}
    assert scores(report.rules) == {"finish order": (1, 0, 0, 1, 0)}
    assert report.total.precision("equivalent") == 1.0 and report.total.precision("exact") == 0.0


# -- the agent tier -------------------------------------------------------------------------------------------

NOTES = "alpha\nbeta\n"


def notes_repo(tmp_path: Path) -> Repo:
    """C1 and C2 each append a line to a plain-text file: no resolver knows their order, the agent is asked."""
    repo = Repo(tmp_path / "notes")
    repo.commit({"notes.txt": NOTES}, "P")
    repo.commit({"notes.txt": NOTES + "gamma\n"}, "Add gamma")
    repo.commit({"notes.txt": NOTES + "gamma\ndelta\n"}, "Add delta")
    return repo


def agent_settings(tmp_path: Path, scenario: dict) -> tuple[LLMSettings, Path]:
    record = tmp_path / "calls.jsonl"
    cli = install(tmp_path / "fake", {"record": str(record), **scenario})
    return LLMSettings(timeout_s=30, max_retries=0, cli_path=str(cli), api_key_present=True), record


@pytest.mark.parametrize(("answer", "ways"), [
    (NOTES + "gamma\ndelta\n", (1, 1, 1)),
    (NOTES + "delta\ngamma\n", (0, 0, 0)),  # plain text: order counts, equivalent is layout
])
def test_the_agent_tier_settles_what_the_resolvers_leave_and_is_judged_with_its_cost(tmp_path, monkeypatch, answer,
                                                                                     ways):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
    settings, record = agent_settings(tmp_path, {"variant": "resolve", "files": {"notes.txt": answer},
                                                 "cost_usd": 0.25})

    report = replay(notes_repo(tmp_path).path, "parallel", agent=AgentReplay(settings, limit=5))

    assert (report.hunks, report.total.resolved) == (1, 0)
    agent = report.agent
    assert (agent.files, agent.hunks, agent.invocations) == (1, 1, 1)
    score = agent.score
    assert (score.resolved, score.exact, score.layout, score.equivalent) == (1, *ways)
    assert agent.cost_usd == pytest.approx(0.25) and agent.seconds > 0
    [call] = recorded_calls(record)
    assert "Add gamma" in call["prompt"] and "Add delta" in call["prompt"] and "- notes.txt" in call["prompt"]
    assert report.as_dict()["agent"]["usd_per_hunk"] == pytest.approx(0.25)


def test_the_agent_tier_stops_at_its_limit_of_files(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
    repo = notes_repo(tmp_path)
    repo.commit({"notes.txt": NOTES + "gamma\ndelta\nepsilon\n"}, "Add epsilon")
    settings, record = agent_settings(tmp_path, {"variant": "markers"})

    report = replay(repo.path, "parallel", agent=AgentReplay(settings, limit=1))

    assert report.agent.files == 1 and len(recorded_calls(record)) == 1
    assert report.agent.errors == {"markers left in notes.txt": 1} and report.agent.score.resolved == 0


def test_replay_tier_agent_needs_a_key_and_runs_the_agent_through_the_cli(tmp_path):
    repo = notes_repo(tmp_path)
    cli = install(tmp_path / "fake", {"variant": "resolve", "files": {"notes.txt": NOTES + "gamma\ndelta\n"},
                                      "cost_usd": 0.5})
    command = [sys.executable, "-m", "dagmerge_site.cli", "replay", "--repo", str(repo.path), "--mode", "parallel",
               "--tier", "agent", "--limit", "3", "--json"]
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}

    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 2 and "no ANTHROPIC_API_KEY configured" in refused.stderr

    env.update(ANTHROPIC_API_KEY="sk-ant-test-not-a-real-key", DAGMERGE_CLAUDE_CLI=str(cli))
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    agent = json.loads(proc.stdout)["agent"]
    assert (agent["files"], agent["hunks"], agent["exact"], agent["exact_precision"]) == (1, 1, 1, 1.0)
    assert agent["cost_usd"] == pytest.approx(0.5) and agent["seconds_per_hunk"] > 0
