"""Files text tools must not touch, and inputs the merge commands cannot use.

End to end, sibling tasks conflict on a binary file, a file that is not UTF-8 and a 50 MB text file: no
resolver or agent rewrites them, a person decides each from its card, and what lands is byte for byte the
side chosen. ``dagmerge merge-file`` and ``merge-driver`` given an unwritable output, a device, a FIFO, a
folder or a missing file say so in one line and exit 2, without hanging.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.urls import reverse

from coordination.domain import dispatch
from coordination.jobs.dispatchers import ThreadDispatcher
from coordination.jobs.driving import drive
from merges.models import MergeAttempt
from tests.scenarios import sh, source_repo, submit

DAGMERGE = str(Path(sys.executable).with_name("dagmerge"))
BIG_LINES = 1_300_000  # "line 1234567\n": about 50 MB


def big_text(changed: str = "") -> bytes:
    lines = [f"line {i}\n" for i in range(BIG_LINES)]
    if changed:
        lines[10] = changed + "\n"
    return "".join(lines).encode()


@pytest.mark.django_db(transaction=True)
def test_binary_non_utf8_and_50_mb_conflicts_go_to_a_person_and_land_byte_for_byte(tmp_path, alice_client,
                                                                                    bob_client):
    repo = source_repo(tmp_path, {"README.md": "# project\n"})
    repo.commit({"logo.bin": b"\x89PNG\0base", "latin1.txt": "caf\xe9 base\n".encode("latin-1"),
                 "big.txt": big_text()}, "inputs")
    sed = "sed -i '11s/.*/{}/' big.txt"
    pool = ThreadDispatcher(3)
    dispatch.use(pool)
    ticket = submit(repo, [
        {"key": "B", "command": sh(f"printf '\\211PNG\\000ours' > logo.bin; printf 'caf\\351 B\\n' > latin1.txt; "
                                   f"{sed.format('B wins')}")},
        {"key": "C", "command": sh(f"printf '\\211PNG\\000theirs' > logo.bin; printf 'caf\\351 C\\n' > latin1.txt; "
                                   f"{sed.format('C wins')}")},
        {"key": "D", "depends_on": ["B", "C"], "command": sh("grep -qx 'C wins' big.txt && echo merged > d.txt")},
    ], review_policy="threshold")
    assert drive(ticket.pk, pool, timeout=240) == "awaiting_review"
    attempt = MergeAttempt.objects.get(ticket=ticket, status="conflicted")
    files = {f.path: f for f in attempt.conflict_files.all()}
    assert {path: f.kind for path, f in files.items()} == {p: "binary" for p in ("logo.bin", "latin1.txt", "big.txt")}
    assert all(f.merged_text is None and f.proposed_resolution in (None, "") for f in files.values())

    started = time.monotonic()
    page = bob_client.get(reverse("coordination:review", args=[attempt.pk]))
    assert page.status_code == 200 and time.monotonic() - started < 10
    assert len(page.content) < 1_000_000  # cards, not 50 MB of text
    for path, choice in (("logo.bin", "theirs"), ("latin1.txt", "ours"), ("big.txt", "theirs")):
        url = reverse("coordination:decide_file", args=[attempt.pk, files[path].pk])
        assert alice_client.post(url, {"choice": choice}).status_code == 302
    assert alice_client.post(reverse("coordination:approve", args=[attempt.pk])).status_code == 302
    assert drive(ticket.pk, pool, timeout=240) == "done"
    ticket.refresh_from_db()
    blob = repo.git.run("cat-file", "blob", f"{ticket.head_sha}:{{}}".format("big.txt")).stdout
    assert blob == big_text("C wins") and repo.show(ticket.head_sha, "d.txt") == "merged\n"
    assert repo.git.run("cat-file", "blob", f"{ticket.head_sha}:logo.bin").stdout == b"\x89PNG\0theirs"
    assert repo.git.run("cat-file", "blob", f"{ticket.head_sha}:latin1.txt").stdout == "caf\xe9 B\n".encode("latin-1")


def dagmerge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DAGMERGE, *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def sides(tmp_path: Path) -> Path:
    for name, text in (("base", "a\n"), ("ours", "b\n"), ("theirs", "c\n")):
        (tmp_path / name).write_text(text)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    (tmp_path / "recorded.json").write_text("{not json")
    return tmp_path


@pytest.mark.parametrize(("args", "message"), [
    (["merge-file", "base", "ours", "theirs", "-o", "no/out"], "cannot write no/out: No such file or directory"),
    (["merge-file", "base", "ours", "theirs", "-o", "folder"], "cannot write folder: Is a directory"),
    (["merge-file", "base", "ours", "/dev/zero"], "/dev/zero is not a regular file"),
    (["merge-file", "/dev/urandom", "ours", "theirs"], "/dev/urandom is not a regular file"),
    (["merge-file", "base", "fifo", "theirs"], "fifo is not a regular file"),
    (["merge-file", "base", "ours", "folder"], "folder is not a regular file"),
    (["merge-file", "base", "ours", "missing"], "cannot read missing: No such file or directory"),
    (["merge-file", "base", "ours", "theirs", "--recorded", "recorded.json"],
     "recorded.json is not a JSON file of recorded resolutions: Expecting property name"),
    (["merge-file", "base", "ours", "theirs", "--recorded", "missing.json"],
     "cannot read missing.json: No such file or directory"),
    (["merge-driver", "base", "/proc/version", "theirs", "p.txt"], "cannot write /proc/version: "),
    (["merge-driver", "base", "folder", "theirs", "p.txt"], "folder is not a regular file"),
    (["merge-driver", "/dev/zero", "ours", "theirs", "p.txt"], "/dev/zero is not a regular file"),
    (["merge-driver", "base", "ours", "fifo", "p.txt"], "fifo is not a regular file"),
    (["merge-driver", "base", "missing", "theirs", "p.txt"], "cannot read missing: No such file or directory"),
])
def test_the_merge_commands_refuse_what_they_cannot_use_in_one_line(sides, monkeypatch, args, message):
    monkeypatch.chdir(sides)
    done = dagmerge(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"dagmerge: {message}") and done.stderr.count("\n") == 1, done.stderr
    assert (sides / "ours").read_text() == "b\n"  # a refused driver leaves %A as it was


@pytest.mark.parametrize("size", ["0", "-3", "3", "1025", "seven"])
def test_a_marker_size_git_would_not_read_back_is_refused(sides, monkeypatch, size):
    """Markers shorter than git's 7 came out nested in the default ones, and 0 or less called the file clean."""
    monkeypatch.chdir(sides)
    done = dagmerge("merge-file", "base", "ours", "theirs", "--marker-size", size)
    assert done.returncode == 2 and done.stdout == ""
    assert f"argument --marker-size: {size!r} is not a marker size from 7 to 1024" in done.stderr
