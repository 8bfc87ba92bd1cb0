"""The sandbox pool: a reused checkout holds nothing of the task before, each slot has one holder at a
time, and a slot whose holder was killed is taken again.

Real repositories in temp dirs; the tasks' commands run as tasks do (``LocalSandbox.run``: under
bubblewrap where it works, otherwise in trusted mode); takers and crashing holders are real processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from coordination.running.sandboxes.local import LocalSandbox
from coordination.running.sandboxes.pool import SandboxPool, residue
from merges.engine.git import Git
from merges.engine.isolation import Isolation
from tests.gitrepo import Repo

ROOT = Path(__file__).resolve().parents[2]
BASE_FILES = {".gitignore": "build/\n*.log\n", "README.md": "# project\n", "src/app.py": "print('app')\n",
              "src/lib/util.py": "def util():\n    return 1\n", "docs/guide.md": "guide\n"}


@pytest.fixture
def clone(tmp_path: Path) -> tuple[Git, str, str]:
    """A bare clone (as the workspace keeps) of a repository with two commits: (clone, first, second)."""
    source = Repo(tmp_path / "source")
    first = source.commit(BASE_FILES, "first")
    second = source.commit({"src/app.py": "print('app, second')\n", "docs/guide.md": None,
                            "docs/new.md": "new\n"}, "second")
    subprocess.run(["git", "clone", "-q", "--bare", str(source.path), str(tmp_path / "clone.git")], check=True)
    return Git(tmp_path / "clone.git"), first, second


def sandbox(clone: Git, tmp_path: Path, pool: SandboxPool | None, name: str = "task") -> LocalSandbox:
    isolation = Isolation.detect()
    return LocalSandbox(clone, tmp_path / "worktrees" / name, contextlib.nullcontext, isolation=isolation,
                        trusted=not isolation.isolated, pool=pool)


def run(box: LocalSandbox, script: str) -> None:
    done = box.run(["sh", "-c", script], {"HOME": str(box.scratch / "home")}, timeout=60)
    assert done.exit_code == 0, done.output_tail


def snapshot(workdir: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under the work tree (its .git aside), with its mode and content."""
    found = {}
    for path in sorted(workdir.rglob("*")):
        relative = path.relative_to(workdir).as_posix()
        if relative == ".git" or relative.startswith(".git/"):
            continue
        info = path.lstat()
        found[relative] = (info.st_mode, b"" if path.is_dir() else path.read_bytes())
    return found


def fresh_checkout(clone: Git, tmp_path: Path, start: str) -> LocalSandbox:
    """What a task gets without a pool: the reference a reused slot must equal."""
    box = sandbox(clone, tmp_path, None, name=f"fresh-{start[:8]}")
    box.prepare("refs/heads/fresh", start)
    return box


PREVIOUS_TASK = """
set -e
mkdir -p build && echo secret > build/out.o && echo secret > debug.log       # ignored
echo secret > notes.txt && mkdir -p deep/er && echo secret > deep/er/x.txt   # untracked
printf 'SECRET\\n' > README.md && touch -d '2020-01-01' README.md            # same size, old mtime
ln -s /etc/passwd src/lib/link && ln src/app.py src/hard-link                  # links
git config user.name secret && git config core.hooksPath .git/evil           # the task's .git
mkdir -p .git/hooks .git/evil && printf '#!/bin/sh\\necho secret\\n' > .git/hooks/post-checkout
echo 'secret' > .git/info-exclude-secret && echo secret | git hash-object -w --stdin
echo secret > "$HOME/.secret"                                                 # the scratch folder
"""


def test_a_reused_sandbox_holds_nothing_of_the_task_before_it(clone, tmp_path):
    git, first, second = clone
    pool = SandboxPool(tmp_path / "pool", 1)
    before = sandbox(git, tmp_path, pool)
    before.prepare("refs/heads/task-a", first)
    run(before, PREVIOUS_TASK)
    before.close()
    assert (before.root / "clean").exists()  # the scrub vouched for it: reused, not rebuilt

    after = sandbox(git, tmp_path, pool)
    after.prepare("refs/heads/task-b", second)
    assert after.workdir == before.workdir  # the same slot, reused
    fresh = fresh_checkout(git, tmp_path, second)
    assert snapshot(after.workdir) == snapshot(fresh.workdir)
    dot_git = after.workdir / ".git"
    assert sorted(p.relative_to(dot_git) for p in dot_git.rglob("*")) == sorted(
        p.relative_to(fresh.workdir / ".git") for p in (fresh.workdir / ".git").rglob("*"))
    assert not any(b"secret" in p.read_bytes() for p in dot_git.rglob("*") if p.is_file())
    assert (dot_git / "config").read_bytes() == (fresh.workdir / ".git" / "config").read_bytes()
    assert list(after.scratch.rglob("*")) == [after.scratch / "home"]
    assert after.git.text("status", "--porcelain", "--ignored", "--untracked-files=all") == ""
    assert after.git.text("rev-parse", "HEAD") == second


def test_a_reused_sandbox_rewrites_only_the_files_the_next_start_commit_or_the_task_changed(clone, tmp_path):
    git, first, second = clone
    pool = SandboxPool(tmp_path / "pool", 1)
    box = sandbox(git, tmp_path, pool)
    box.prepare("refs/heads/task-a", first)
    written = (box.workdir / "src/lib/util.py").stat().st_ctime_ns
    run(box, "printf 'SECRET\\n' > README.md && touch -d '2020-01-01' README.md")
    box.close()

    box = sandbox(git, tmp_path, pool)
    box.prepare("refs/heads/task-b", second)
    assert (box.workdir / "src/lib/util.py").stat().st_ctime_ns == written  # not written again
    assert (box.workdir / "src/app.py").read_text() == "print('app, second')\n"  # changed by the commit
    assert (box.workdir / "README.md").read_text() == "# project\n"  # changed by the task: written again


@pytest.mark.parametrize("script, found", [
    ("chmod 700 src/lib", "src/lib: mode 700 or links unlike a checkout's"),
    ("chmod 600 src/lib/util.py", "src/lib/util.py: mode 600 or links unlike a checkout's"),
    ("python3 -c 'import os; os.setxattr(\"README.md\", \"user.secret\", b\"x\")'", "README.md: extended attributes"),
    ("mkfifo src/pipe", "src/pipe: not in the index"),  # git clean leaves special files
    ("mkdir src/.git && echo secret > src/.git/config", "src/.git: not in the index"),  # and anything named .git
    ("rm docs/guide.md && mkdir docs/guide.md", "docs/guide.md: not a file"),  # and a folder where a file was
])
def test_what_git_cannot_put_back_makes_the_slot_rebuilt_from_nothing(clone, tmp_path, script, found):
    git, first, _ = clone
    pool = SandboxPool(tmp_path / "pool", 1)
    box = sandbox(git, tmp_path, pool)
    box.prepare("refs/heads/task-a", first)
    run(box, script)
    box.close()
    assert residue(box.workdir, box.index_modes(), since=0) == [found] and not (box.root / "clean").exists()

    box = sandbox(git, tmp_path, pool)
    box.prepare("refs/heads/task-b", first)
    assert box.root == tmp_path / "pool" / "slot-0"
    assert snapshot(box.workdir) == snapshot(fresh_checkout(git, tmp_path, first).workdir)


def test_files_in_a_submodules_folder_are_found(tmp_path):
    """git clean does not look inside a submodule's folder (a dagmerge checkout leaves it empty)."""
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "README.md").write_text("readme")
    assert residue(work, {"README.md": "100644", "sub": "160000"}, since=0) == []
    (work / "sub" / "planted.txt").write_text("secret")
    assert residue(work, {"README.md": "100644", "sub": "160000"}, since=0) == ["sub: files in a submodule's folder"]


def test_with_every_slot_taken_a_task_gets_a_folder_of_its_own_removed_at_its_end(clone, tmp_path):
    git, first, _ = clone
    pool = SandboxPool(tmp_path / "pool", 1)
    pooled, own = sandbox(git, tmp_path, pool, "a"), sandbox(git, tmp_path, pool, "b")
    pooled.prepare("refs/heads/task-a", first)
    own.prepare("refs/heads/task-b", first)
    assert own.root == tmp_path / "worktrees" / "b" and pooled.root == tmp_path / "pool" / "slot-0"
    own.close()
    pooled.close()
    assert not own.root.exists() and (pooled.root / "clean").exists()


TAKER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from coordination.running.sandboxes.pool import SandboxPool
    pool, taken = SandboxPool(Path(sys.argv[2]), 3), 0
    for _ in range(int(sys.argv[3])):
        slot = pool.take()
        if slot is None:
            continue
        # O_EXCL: fails if another holder is inside this slot at the same time
        os.close(os.open(slot.path / "held", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        time.sleep(0.002)
        os.unlink(slot.path / "held")
        slot.release(clean=True)
        taken += 1
    print(taken)
""")


def test_concurrent_takers_never_hold_the_same_slot(tmp_path):
    takers = [subprocess.Popen([sys.executable, "-c", TAKER, str(ROOT), str(tmp_path / "pool"), "150"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [taker.communicate(timeout=120) for taker in takers]
    assert [taker.returncode for taker in takers] == [0] * 6, [err for _, err in results]
    assert sum(int(out) for out, _ in results) > 0
    assert sorted(p.name for p in (tmp_path / "pool").iterdir()) == ["slot-0", "slot-1", "slot-2"]


HOLDER = textwrap.dedent("""
    import contextlib, sys, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from coordination.running.sandboxes.local import LocalSandbox
    from coordination.running.sandboxes.pool import SandboxPool
    from merges.engine.git import Git
    from merges.engine.isolation import Isolation
    box = LocalSandbox(Git(Path(sys.argv[2])), Path(sys.argv[3]) / "own", contextlib.nullcontext,
                       isolation=Isolation("trusted", "test"), trusted=True, pool=SandboxPool(Path(sys.argv[3]), 1))
    box.prepare("refs/heads/held", sys.argv[4])
    (box.workdir / "left-by-the-dead.txt").write_text("secret")
    print(box.root, flush=True)
    time.sleep(300)
""")


def test_a_slot_whose_holder_was_killed_is_taken_again_once_its_command_cannot_run_and_rebuilt(clone, tmp_path):
    """The kernel drops a dead holder's lock; the slot then waits until the run's watchdog has killed any
    command of it (its ``alive`` file stale for longer than ``quiet_for``), and is rebuilt, not reused."""
    git, first, second = clone
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ROOT), str(git.repo), str(tmp_path / "pool"), first],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    held = Path(holder.stdout.readline().strip())
    assert held == tmp_path / "pool" / "slot-0", holder.stderr.read()
    assert SandboxPool(tmp_path / "pool", 1).take() is None  # held by a live process
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    watched = SandboxPool(tmp_path / "pool", 1, quiet_for=40)
    assert watched.take() is None  # its alive file is fresh: a command of the dead run may still write here
    long_ago = time.time() - 60
    os.utime(held / "alive", (long_ago, long_ago))

    box = sandbox(git, tmp_path, watched)
    box.prepare("refs/heads/task-b", second)
    assert box.root == held
    assert not (box.workdir / "left-by-the-dead.txt").exists()
    assert snapshot(box.workdir) == snapshot(fresh_checkout(git, tmp_path, second).workdir)


def test_a_lease_renewal_after_the_task_ended_leaves_the_slot_free(clone, tmp_path):
    """The heartbeat stops after the sandbox closed: a late renewal must not make the slot look busy."""
    git, first, _ = clone
    pool = SandboxPool(tmp_path / "pool", 1, quiet_for=40)
    box = sandbox(git, tmp_path, pool)
    box.prepare("refs/heads/task-a", first)
    box.close()
    box.mark_alive()
    assert not (box.root / "alive").exists()
    slot = pool.take()
    assert slot is not None and slot.reusable
    slot.release(clean=True)
