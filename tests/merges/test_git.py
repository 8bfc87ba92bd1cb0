from __future__ import annotations

import shutil

import pytest

from merges.engine.git import Git, RefMoved
from tests.gitrepo import Repo


def test_update_ref_is_compare_and_swap(tmp_path):
    repo = Repo(tmp_path / "repo")
    first = repo.commit({"a.txt": "1\n"})
    second = repo.commit({"a.txt": "2\n"})
    repo.git.update_ref("refs/heads/ticket/1", first, None)

    with pytest.raises(RefMoved):
        repo.git.update_ref("refs/heads/ticket/1", second, second)  # wrong expectation
    with pytest.raises(RefMoved):
        repo.git.update_ref("refs/heads/ticket/1", second, None)  # must not exist, but does
    assert repo.head("refs/heads/ticket/1") == first

    repo.git.update_ref("refs/heads/ticket/1", second, first)
    assert repo.head("refs/heads/ticket/1") == second


def test_update_refs_moves_every_ref_or_none(tmp_path):
    repo = Repo(tmp_path / "repo")
    first = repo.commit({"a.txt": "1\n"})
    second = repo.commit({"a.txt": "2\n"})
    repo.git.update_ref("refs/heads/ticket/1", first, None)

    with pytest.raises(RefMoved):  # the recovery point may be created, but the ticket ref is elsewhere
        repo.git.update_refs([("refs/dagmerge/recovery/1", first, None), ("refs/heads/ticket/1", second, second)])
    assert repo.git.rev_parse("refs/dagmerge/recovery/1") is None and repo.head("refs/heads/ticket/1") == first

    repo.git.update_refs([("refs/dagmerge/recovery/1", first, None), ("refs/heads/ticket/1", second, first)])
    assert repo.git.rev_parse("refs/dagmerge/recovery/1") == first and repo.head("refs/heads/ticket/1") == second


def test_merge_tree_many_reports_clean_and_conflicted_merges_in_one_run(tmp_path):
    repo = Repo(tmp_path / "repo")
    base = repo.commit({"f.txt": "a\nb\nc\n"})
    repo.branch("x", base)
    x = repo.commit({"f.txt": "X\nb\nc\n"})
    repo.branch("y", base)
    y = repo.commit({"f.txt": "Y\nb\nc\n", "new.txt": "n\n"})
    repo.branch("z", base)
    z = repo.commit({"f.txt": "a\nb\nZ\n"})

    conflicted, clean = repo.git.merge_tree_many([(x, y), (x, z)])

    assert not conflicted.clean
    assert conflicted.conflicted_paths == ["f.txt"]
    assert set(conflicted.conflicts[0].stages) == {1, 2, 3}
    assert conflicted.conflicts[0].types == ["CONFLICT (contents)"]
    assert clean.clean and clean.conflicts == []
    assert repo.git.read_blobs([f"{clean.tree}:f.txt"]) == [b"X\nb\nZ\n"]


def test_changed_paths_many_keeps_pairs_apart_even_when_empty(tmp_path):
    repo = Repo(tmp_path / "repo")
    a = repo.commit({"one.txt": "1\n"})
    b = repo.commit({"two.txt": "2\n", "dir/three.txt": "3\n"})
    c = repo.commit({"one.txt": "changed\n"})

    assert repo.git.changed_paths_many([(a, b), (b, b), (b, c), (a, c)]) == [
        {"two.txt", "dir/three.txt"}, set(), {"one.txt"}, {"one.txt", "two.txt", "dir/three.txt"}]


def test_repository_hooks_and_fsmonitor_never_run(tmp_path):
    """A repository's own config must not make dagmerge run its programs (CVE-2024-32002 and kin)."""
    repo = Repo(tmp_path / "repo")
    marker = tmp_path / "pwned"
    hooks = repo.path / "evil-hooks"
    hooks.mkdir()
    for hook in ("pre-commit", "post-commit", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\necho {hook} >> {marker}\n")
        (hooks / hook).chmod(0o755)
    fsmonitor = repo.path / "fsmonitor.sh"
    fsmonitor.write_text(f"#!/bin/sh\necho fsmonitor >> {marker}\n")
    fsmonitor.chmod(0o755)
    repo.git.run("config", "core.hooksPath", str(hooks))
    repo.git.run("config", "core.fsmonitor", str(fsmonitor))

    sha = repo.commit({"a.txt": "a\n"})
    repo.git.run("status")
    repo.git.update_ref("refs/heads/other", sha, None)

    assert not marker.exists()


def test_rev_parse_of_a_missing_ref_is_none(tmp_path):
    repo = Repo(tmp_path / "repo")
    repo.commit({"a.txt": "a\n"})
    assert repo.git.rev_parse("refs/heads/nope") is None
    assert not Git.outside_repository().check_ref_format("refs/heads/bad..name")


def test_branch_head_read_from_the_ref_files_says_what_rev_parse_says(tmp_path, monkeypatch):
    """Loose, packed, packed then moved (the loose one wins), missing, symbolic; in a work tree and a bare
    clone (which packs every ref it copies). Only the symbolic ref, which the files do not plainly say,
    starts git."""
    repo = Repo(tmp_path / "repo")
    first = repo.commit({"a.txt": "a\n"})
    repo.git.run("update-ref", "refs/heads/ticket/1", first)
    repo.git.run("pack-refs", "--all")
    second = repo.commit({"a.txt": "b\n"})
    repo.git.run("update-ref", "refs/heads/ticket/2", second)
    repo.git.run("symbolic-ref", "refs/heads/alias", "refs/heads/ticket/2")
    bare = Git(tmp_path / "bare.git")
    Git(tmp_path).run("clone", "-q", "--bare", str(repo.path), str(bare.repo))
    refs = ["refs/heads/ticket/1", "refs/heads/ticket/2", "refs/heads/main", "refs/heads/nope", "refs/heads/alias"]
    alias_asked = [("--verify", "--quiet", "--end-of-options", "refs/heads/alias^{commit}")]
    started, run = [], Git.run
    for git, asked in ((repo.git, alias_asked), (bare, [])):
        expected = [git.rev_parse(ref) for ref in refs]
        started.clear()
        monkeypatch.setattr(Git, "run", lambda self, *args, **kw: started.append(args[1:]) or run(self, *args, **kw))
        assert [git.branch_head(ref) for ref in refs] == expected
        monkeypatch.undo()
        assert expected[:4] == [first, second, second, None]
        assert started == asked


def test_read_blobs_tells_missing_paths_with_spaces_from_found_objects(tmp_path):
    repo = Repo(tmp_path / "repo")
    head = repo.commit({"Validate Syntax.txt": "found\n", "dir/a b c.txt": "abc\n"})
    assert repo.git.read_blobs([f"{head}:Validate Syntax.txt", f"{head}:Gone Away.txt", f"{head}:dir",
                                f"{head}:dir/a b c.txt", f"{head}:x y z missing"]) == [
        b"found\n", None, None, b"abc\n", None]


def _counting_config_reads(monkeypatch) -> list[str]:
    from merges.engine import git_config

    reads: list[str] = []
    real = git_config.subprocess.run

    def counted(argv, *args, **kwargs):
        if argv[:2] == ["git", "config"]:
            reads.append(str(kwargs.get("cwd")))
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(git_config.subprocess, "run", counted)
    git_config._scans.clear()  # what the fixture's own commits read
    return reads


def test_git_writing_its_own_files_does_not_make_the_config_be_read_again_but_a_config_change_does(
        tmp_path, monkeypatch):
    repo = Repo(tmp_path / "repo")
    repo.commit({"a.txt": "1\n"})
    reads = _counting_config_reads(monkeypatch)
    git = Git(repo.path)

    git.run("status")
    (repo.path / "b.txt").write_text("b\n")
    git.run("add", "-A")  # writes .git/index (and its lock) in the git dir
    git.run("commit", "-q", "-m", "b")  # objects, refs, logs, ORIG_HEAD-style files
    git.update_ref("refs/heads/other", repo.head("HEAD"), None)
    assert len(reads) == 1

    with open(repo.path / ".git" / "config", "a") as config:
        config.write('[filter "evil"]\n\tclean = touch ran\n')
    git.run("status")
    assert len(reads) == 2
    assert git.run("add", "-A").returncode == 0 and not (repo.path / "ran").exists()


def test_a_commondir_appearing_in_the_git_dir_makes_the_config_be_read_again(tmp_path, monkeypatch):
    from merges.engine.git_config import neutral_config

    repo = Repo(tmp_path / "repo")
    repo.commit({"a.txt": "1\n"})
    assert not [key for key, _ in neutral_config(repo.path, {}) if key.startswith("filter.evil.")]
    common = tmp_path / "common"
    shutil.copytree(repo.path / ".git", common)
    with open(common / "config", "a") as config:
        config.write('[filter "evil"]\n\tclean = touch ran\n')

    (repo.path / ".git" / "commondir").write_text(f"{common}\n")

    assert [key for key, _ in neutral_config(repo.path, {}) if key.startswith("filter.evil.")]
