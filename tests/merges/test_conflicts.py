from __future__ import annotations

from merges.engine.conflicts import describe_conflicts, parse_hunks
from tests.gitrepo import Repo, numbered_lines, replace_line


def _conflict(tmp_path, base_files, ours_files, theirs_files):
    repo = Repo(tmp_path / "repo")
    base = repo.commit(base_files, "base")
    repo.branch("ours", base)
    ours = repo.commit(ours_files, "ours")
    repo.branch("theirs", base)
    theirs = repo.commit(theirs_files, "theirs")
    return describe_conflicts(repo.git, repo.git.merge_tree(ours, theirs))


def test_content_conflict_has_three_sides_and_hunks_with_base(tmp_path):
    text = numbered_lines(30)
    ours = replace_line(replace_line(text, 5, "ours 5"), 20, "ours 20")
    theirs = replace_line(replace_line(text, 5, "theirs 5"), 20, "theirs 20")
    [detail] = _conflict(tmp_path, {"c.py": text}, {"c.py": ours}, {"c.py": theirs})
    assert detail.kind == "content"
    assert detail.base_text == text
    assert len(detail.hunks) == 2 and detail.hunk_count == 2
    first = detail.hunks[0]
    assert (first.ours, first.base, first.theirs) == (["ours 5"], ["line 5"], ["theirs 5"])
    assert detail.merged_text.splitlines()[first.start - 1].startswith("<<<<<<< ")


def test_modify_delete_add_add_and_binary_conflicts_are_told_apart(tmp_path):
    details = _conflict(
        tmp_path,
        {"gone.txt": "keep\n", "img.bin": b"\x89PNG\0\x01"},
        {"gone.txt": "modified\n", "both.txt": "ours\n", "img.bin": b"\x89PNG\0\x02"},
        {"gone.txt": None, "both.txt": "theirs\n", "img.bin": b"\x89PNG\0\x03"},
    )
    kinds = {d.path: d.kind for d in details}
    assert kinds == {"gone.txt": "modify/delete", "both.txt": "add/add", "img.bin": "binary"}
    binary = next(d for d in details if d.path == "img.bin")
    assert binary.ours_text is None and binary.hunks == []


def test_parse_hunks_ignores_marker_like_lines_outside_a_conflict():
    text = "a\n=======\n<<<<<<< ours\nx\n||||||| base\nb\n=======\ny\n>>>>>>> theirs\nz\n"
    [hunk] = parse_hunks(text)
    assert (hunk.start, hunk.ours, hunk.base, hunk.theirs) == (3, ["x"], ["b"], ["y"])
