"""``dagmerge merge-file`` and ``dagmerge merge-driver``: git's merge-driver convention, in real repositories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from merges.engine.conflicts import parse_hunks
from merges.engine.resolvers.recorded import RecordedResolutions, conflict_key
from tests.gitrepo import Repo

DAGMERGE = str(Path(sys.executable).with_name("dagmerge"))  # the console script, as users call it
BASE = "".join(f"setting_{i} = {i}\n" for i in range(1, 21))


def edit(text: str, number: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[number - 1] = new + "\n"
    return "".join(lines)


def dagmerge(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DAGMERGE, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.fixture
def three(tmp_path):
    """Three versions of a file where the sides edit neighbouring lines."""
    paths = []
    for name, text in (("base", BASE), ("ours", edit(BASE, 10, "setting_10 = 'ours'")),
                       ("theirs", edit(BASE, 11, "setting_11 = 'theirs'"))):
        paths.append(tmp_path / name)
        paths[-1].write_text(text)
    return paths


def test_merge_file_complementary_settles_adjacent_edits_and_exits_0(three, tmp_path):
    out = tmp_path / "out.py"
    proc = dagmerge("merge-file", *map(str, three), "--path", "settings.py", "-o", str(out), "--complementary")
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == edit(edit(BASE, 10, "setting_10 = 'ours'"), 11, "setting_11 = 'theirs'")
    assert "line_merge" in proc.stderr


def test_merge_file_history_safe_leaves_standard_markers_and_exits_1(three, tmp_path):
    out = tmp_path / "out.py"
    proc = dagmerge("merge-file", *map(str, three), "--path", "settings.py", "-o", str(out))
    assert proc.returncode == 1
    markers = [line for line in out.read_text().splitlines() if line[:7] in ("<" * 7, "|" * 7, "=" * 7, ">" * 7)]
    assert markers == ["<<<<<<< ours", "||||||| base", "=======", ">>>>>>> theirs"]


def test_merge_file_reuses_a_recorded_resolution(three, tmp_path):
    first = tmp_path / "first.py"
    dagmerge("merge-file", *map(str, three), "-o", str(first))
    [hunk] = parse_hunks(first.read_text())
    store = RecordedResolutions()
    store.record(hunk, ["setting_10 = 'ours'", "setting_11 = 'theirs'  # approved"], approved_by="alice")
    store.save(tmp_path / "recorded.json")
    assert conflict_key(hunk) in (tmp_path / "recorded.json").read_text()

    out = tmp_path / "out.py"
    proc = dagmerge("merge-file", *map(str, three), "-o", str(out), "--recorded", str(tmp_path / "recorded.json"))
    assert proc.returncode == 0 and "recorded" in proc.stderr
    assert "setting_11 = 'theirs'  # approved\n" in out.read_text()


def test_merge_file_runs_as_a_module_too(three):
    proc = subprocess.run([sys.executable, "-m", "dagmerge_site.cli", "merge-file", *map(str, three),
                           "--complementary"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "setting_11 = 'theirs'" in proc.stdout


def _configured_repo(tmp_path: Path, driver_args: str) -> Repo:
    repo = Repo(tmp_path / "repo")
    repo.commit({"settings.py": BASE, ".gitattributes": "*.py merge=dagmerge\n"}, "base")
    repo.git.run("config", "merge.dagmerge.name", "dagmerge resolvers")
    repo.git.run("config", "merge.dagmerge.driver", f"{DAGMERGE} merge-driver {driver_args} %O %A %B %P")
    repo.branch("sibling")
    repo.commit({"settings.py": edit(BASE, 11, "setting_11 = 'theirs'")}, "theirs")
    repo.checkout("main")
    repo.commit({"settings.py": edit(BASE, 10, "setting_10 = 'ours'")}, "ours")
    return repo


def _users_git(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    """git as the user runs it, with the merge driver they configured (dagmerge's own git empties drivers)."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "user", "GIT_AUTHOR_EMAIL": "user@localhost",
           "GIT_COMMITTER_NAME": "user", "GIT_COMMITTER_EMAIL": "user@localhost"}
    return subprocess.run(["git", *args], cwd=repo.path, env=env, capture_output=True, text=True, timeout=60)


def test_the_merge_driver_configured_in_a_repository_resolves_a_git_merge(tmp_path):
    repo = _configured_repo(tmp_path, "--complementary --marker-size %L")
    proc = _users_git(repo, "merge", "--no-edit", "sibling")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert repo.show("HEAD", "settings.py") == edit(edit(BASE, 10, "setting_10 = 'ours'"), 11,
                                                    "setting_11 = 'theirs'")
    assert len(repo.git.text("rev-list", "--parents", "-1", "HEAD").split()) == 3  # a real merge commit


def test_the_history_safe_driver_leaves_the_conflict_to_a_person(tmp_path):
    repo = _configured_repo(tmp_path, "")
    proc = _users_git(repo, "merge", "--no-edit", "sibling")
    assert proc.returncode == 1
    assert "<<<<<<< ours" in (repo.path / "settings.py").read_text()
    assert repo.git.text("diff", "--name-only", "--diff-filter=U") == "settings.py"


def test_the_driver_keeps_ours_for_a_binary_file_and_reports_a_conflict(tmp_path):
    base, ours, theirs = (tmp_path / n for n in ("O", "A", "B"))
    for path in (base, ours, theirs):
        path.write_bytes(b"\0" + path.name.encode())
    proc = dagmerge("merge-driver", str(base), str(ours), str(theirs), "logo.png")
    assert proc.returncode == 1 and ours.read_bytes() == b"\0A" and "binary" in proc.stderr
