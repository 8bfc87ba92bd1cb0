"""Real escapes tried from inside the sandbox: each test runs processes under bubblewrap and checks what the
task could reach. A fake DAGMERGE_HOME holds a secret key, a database, a workspace clone and two worktrees;
the task runs in one of them with the home hidden, as a task would.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from merges.engine import isolation, processes
from merges.engine.isolation import Isolation, wrap
from merges.engine.processes import Limits, kill_process_group, process_environment
from merges.engine.runner import ProcessResult, run_confined
from tests.processes import SANDBOX_PYTHON, gone, marker, matching

CANARY = "canary-XYZ-7f3a"
SECRET_KEY = "django-insecure-secret-key-canary"

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bwrap is not installed (Debian: apt-get install bubblewrap; CI installs it)")


@pytest.fixture
def iso() -> Isolation:
    found = Isolation.detect()
    assert found.isolated, f"bwrap is installed but does not work: {found.reason}"
    return found


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A DAGMERGE_HOME as the worker has it, and the worker's secrets in its environment.

    Not under /tmp: the sandbox's private /tmp would hide it by itself, and the hiding under test would
    never be exercised.
    """
    for name in ("ANTHROPIC_API_KEY", "DAGMERGE_SECRET_KEY", "DATABASE_URL", "DAYTONA_API_KEY"):
        monkeypatch.setenv(name, f"{CANARY}-{name}")
    outside_tmp = Path(tempfile.mkdtemp(prefix="dagmerge-test-home-", dir="/var/tmp"))
    try:
        yield _populate(outside_tmp / "home")
    finally:
        shutil.rmtree(outside_tmp)


def _populate(home: Path) -> Path:
    (home / "workspace" / "worktrees" / "t1").mkdir(parents=True)
    (home / "workspace" / "worktrees" / "t2").mkdir()
    (home / "workspace" / "worktrees" / "t2" / "other.txt").write_text("another task's work")
    (home / "workspace" / "clone.git").mkdir()
    (home / "workspace" / "clone.git" / "config").write_text("[core]\n\tbare = true\n")
    (home / "secret_key").write_text(SECRET_KEY)
    (home / "db.sqlite3").write_text("SQLite format 3 canary rows")
    return home


@pytest.fixture
def workdir(home: Path) -> Path:
    return home / "workspace" / "worktrees" / "t1"


def sandboxed(iso: Isolation, home: Path, script: str, **kwargs) -> ProcessResult:
    kwargs.setdefault("timeout", 30)
    kwargs.setdefault("extra_env", {"TASK_VAR": "visible-to-task"})
    return run_confined(["sh", "-c", script], isolation=iso, workdir=home / "workspace" / "worktrees" / "t1",
               hide=[home], **kwargs)


def test_environment_policy_passes_only_the_allow_list_and_named_extras(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.delenv("PATH")
    env = process_environment({"DAGMERGE_RESULT": "/scratch/result.json"})
    assert env == {"PATH": processes.DEFAULT_PATH, "LANG": "C.UTF-8", "TZ": "UTC",
                   "DAGMERGE_RESULT": "/scratch/result.json"}
    with pytest.raises(ValueError):
        process_environment({"BAD=NAME": "x"})
    with pytest.raises(ValueError):
        process_environment({"OK": "nul\0byte"})


def test_task_sees_no_worker_secret_in_any_proc_environ_or_cmdline(iso, home):
    done = sandboxed(iso, home, "for f in /proc/$PPID/environ /proc/1/environ /proc/[0-9]*/environ "
                                "/proc/[0-9]*/cmdline; do tr '\\0' '\\n' < $f; done; echo PPID=$PPID; env")
    assert done.exit_code == 0, done.output_tail
    assert "TASK_VAR=visible-to-task" in done.output_tail  # reading works; only the secrets are absent
    assert CANARY not in done.output_tail


def test_extra_env_values_are_not_on_any_host_command_line(iso, home):
    """bwrap gets its options through a memfd: /proc/<pid>/cmdline is readable by every user."""
    seen: list[list[str]] = []

    def look() -> None:
        time.sleep(0.5)
        seen.append(matching("agent-key-canary"))

    looker = threading.Thread(target=look)
    looker.start()
    done = sandboxed(iso, home, "sleep 1; echo $ANTHROPIC_API_KEY", extra_env={"ANTHROPIC_API_KEY": "agent-key-canary"})
    looker.join()
    assert done.output_tail.strip() == "agent-key-canary"  # the one secret the agent may hold
    assert seen == [[]]


def test_worker_pid_is_invisible_and_cannot_be_signalled(iso, home):
    worker = os.getpid()
    done = sandboxed(iso, home, f"test -e /proc/{worker} && echo VISIBLE; kill -0 {worker} && echo SIGNALLED; "
                                "ls /proc | grep -c '^[0-9]'")
    assert "VISIBLE" not in done.output_tail and "SIGNALLED" not in done.output_tail
    assert int(done.output_tail.split()[-1]) < 10  # the sandbox's own few processes only


def test_secret_key_relative_to_the_workdir_cannot_be_read(iso, home):
    done = sandboxed(iso, home, f"cat ../../../secret_key; cat {home}/secret_key; echo rc=$?")
    assert SECRET_KEY not in done.output_tail
    assert "rc=1" in done.output_tail


def test_database_workspace_clone_and_other_worktrees_are_invisible(iso, home):
    listing = sandboxed(iso, home, f"ls -a {home} {home}/workspace {home}/workspace/worktrees")
    assert listing.exit_code == 0, listing.output_tail
    names = {line for line in listing.output_tail.splitlines() if line and not line.endswith(":")}
    assert names == {".", "..", "workspace", "worktrees", "t1"}  # only the path down to the task's worktree
    reads = sandboxed(iso, home, f"cat {home}/db.sqlite3 ../t2/other.txt ../../clone.git/config")
    assert reads.output_tail.count("No such file or directory") == 3, reads.output_tail


def test_only_the_workdir_is_writable(iso, home, workdir):
    done = sandboxed(iso, home, f"echo ok > mine.txt; echo x > ../escape.txt; echo x > /etc/dagmerge-escape; "
                                f"echo x > {home}/escape.txt; echo x >> ../../clone.git/config; "
                                f"echo x > {Path.home()}/dagmerge-escape; echo done")
    assert (workdir / "mine.txt").read_text() == "ok\n"
    for path in (workdir.parent / "escape.txt", Path("/etc/dagmerge-escape"), home / "escape.txt",
                 Path.home() / "dagmerge-escape"):
        assert not path.exists(), path
    assert (home / "workspace" / "clone.git" / "config").read_text() == "[core]\n\tbare = true\n"
    assert done.output_tail.count("Read-only file system") == 4, done.output_tail  # the 5th: no such dir


def test_symlink_out_of_the_worktree_cannot_reach_a_hidden_file(iso, home, workdir):
    (workdir / "committed-link").symlink_to(home / "secret_key")  # as if it came with the task's branch
    (workdir / "relative-link").symlink_to(Path("../../../secret_key"))
    done = sandboxed(iso, home, f"cat committed-link relative-link; ln -s {home}/db.sqlite3 made-link; "
                                "cat made-link; readlink -f committed-link")
    assert SECRET_KEY not in done.output_tail and "canary rows" not in done.output_tail
    assert done.output_tail.count("No such file or directory") == 3, done.output_tail


def test_a_hidden_file_outside_the_home_cannot_be_read(iso, home):
    credentials = home.parent / "netrc"  # e.g. the worker's ~/.netrc: files are covered with /dev/null
    credentials.write_text("machine example.com password hunter2-canary")
    done = run_confined(["sh", "-c", f"cat {credentials}; echo x > {credentials}"], isolation=iso,
               workdir=home / "workspace" / "worktrees" / "t1", hide=[home, credentials], extra_env={}, timeout=30)
    assert "hunter2" not in done.output_tail and "Permission denied" in done.output_tail
    assert credentials.read_text() == "machine example.com password hunter2-canary"


def test_root_in_the_sandbox_cannot_unhide_remount_or_nest_namespaces(iso, home):
    """As root bwrap would keep every capability inside; --cap-drop ALL and --disable-userns take them."""
    done = sandboxed(iso, home, f"umount -l {home}; mount -o remount,rw,bind /; mount -t tmpfs x /etc; "
                                f"unshare -Urm sh -c 'umount {home}'; cat {home}/secret_key; "
                                "touch /etc/dagmerge-remount-escape; grep CapEff /proc/self/status")
    assert SECRET_KEY not in done.output_tail
    assert not Path("/etc/dagmerge-remount-escape").exists()
    assert "CapEff:\t0000000000000000" in done.output_tail


def test_kernel_settings_and_cgroups_are_read_only(iso, home):
    """bwrap 0.8 leaves /proc/sys writable by uid 0; kernel.core_pattern runs a program as root on a crash.
    The task writes back the current value, so the test changes nothing even where the cover is missing."""
    current = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    done = sandboxed(iso, home, f"printf '%s\\n' '{current}' > /proc/sys/kernel/core_pattern && echo SYSCTL-WRITTEN; "
                                "for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/pids/cgroup.procs; do "
                                "test -e $f && echo 0 > $f && echo CGROUP-LEFT; done; true")
    assert "SYSCTL-WRITTEN" not in done.output_tail and "CGROUP-LEFT" not in done.output_tail
    assert "Read-only file system" in done.output_tail


def test_unix_socket_under_a_hidden_directory_cannot_be_reached(iso, home):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(home / "worker.sock"))
    server.listen()
    try:
        done = sandboxed(iso, home, f"{SANDBOX_PYTHON} -I -c \"import socket; s = socket.socket(socket.AF_UNIX); "
                                    f"s.connect('{home}/worker.sock'); print('CONNECTED')\"")
    finally:
        server.close()
    assert "CONNECTED" not in done.output_tail and "FileNotFoundError" in done.output_tail


@pytest.fixture(params=["cgroup-if-any", "namespace-only"])
def iso_teardown(request, iso: Isolation) -> Isolation:
    """Both ways a run's processes end: the pids cgroup (where the machine has one) and, without it, the
    PID namespace alone."""
    return iso if request.param == "cgroup-if-any" else dataclasses.replace(iso, processes="none")


def test_daemons_left_behind_are_dead_when_the_run_ends(iso_teardown, home):
    mark = marker()
    done = sandboxed(iso_teardown, home, f"sleep {mark} & setsid sleep {mark} & "
                                f"sh -c 'trap \"\" TERM; sleep {mark}' & (nohup sleep {mark} >/dev/null 2>&1 &); "
                                "sleep 0.3; echo started")
    assert done.exit_code == 0 and "started" in done.output_tail
    assert matching(mark) == []


def test_timeout_kills_every_process_of_the_sandbox_before_run_returns(iso_teardown, home):
    mark = marker()
    done = sandboxed(iso_teardown, home, f"setsid sleep {mark} & sh -c 'trap \"\" TERM; sleep {mark}' & sleep {mark}",
                     timeout=1)
    assert done.timed_out and done.exit_code is None
    assert matching(mark) == []


def test_killing_bwrap_tears_down_its_pid_namespace(iso, workdir):
    """No cleanup of ours involved: SIGTERM reaches bwrap only, --die-with-parent kills the sandbox's PID 1,
    and the kernel kills every process of a PID namespace whose PID 1 dies."""
    mark = marker()
    argv = wrap(["sh", "-c", f"setsid sleep {mark} & sh -c 'trap \"\" TERM; sleep {mark}' & sleep {mark}"],
                workdir=workdir, env=process_environment({}), bwrap=iso.bwrap)
    proc = subprocess.Popen(argv, env=process_environment({}), start_new_session=True)
    deadline = time.monotonic() + 10
    while len(matching(mark)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len([line for line in matching(mark) if line.startswith("sleep")]) == 3
    kill_process_group(proc, grace=2)
    assert gone(mark)


def test_kill_process_group_kills_a_group_whose_leader_already_exited():
    mark = marker()
    proc = subprocess.Popen(["sh", "-c", f"(trap '' TERM; exec sleep {mark}) & exit 0"], start_new_session=True)
    proc.wait()  # the leader is gone and reaped; its child ignores SIGTERM and keeps the group alive
    deadline = time.monotonic() + 5
    while not matching(mark) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert matching(mark)
    started = time.monotonic()
    kill_process_group(proc, grace=0.5)
    assert gone(mark)
    assert time.monotonic() - started >= 0.5  # it waited for SIGTERM before escalating
    kill_process_group(proc, grace=0.5)  # an empty group: nothing to do, no error


def test_network_is_off_by_default_and_on_when_asked(iso, home):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    probe = (f"{SANDBOX_PYTHON} -I -c \"import socket; "
             f"socket.create_connection(('127.0.0.1', {port}), 5); print('CONNECTED')\"")
    try:
        off = sandboxed(iso, home, probe)
        on = sandboxed(iso, home, probe, network=True)
    finally:
        server.close()
    assert "CONNECTED" not in off.output_tail and "ConnectionRefusedError" in off.output_tail
    assert "CONNECTED" in on.output_tail, on.output_tail



def test_with_the_network_on_names_resolve_though_resolv_conf_links_into_a_hidden_folder(iso, home, monkeypatch):
    """systemd-resolved makes /etc/resolv.conf a link into /run, which is hidden: a sandbox with the network
    (the agent's, a task's with ``network: true``) would reach the network and resolve no name."""
    stub = home / "run" / "resolve" / "stub-resolv.conf"
    stub.parent.mkdir(parents=True)
    stub.write_text("nameserver 127.0.0.53\n")
    link = home.parent / "resolv.conf"
    link.symlink_to(stub)
    monkeypatch.setattr(isolation, "RESOLV_CONF", link)
    assert "nameserver" not in sandboxed(iso, home, f"cat {link}").output_tail
    assert sandboxed(iso, home, f"cat {link}", network=True).output_tail == "nameserver 127.0.0.53\n"

def test_fork_bomb_is_bounded_and_the_run_ends(iso, home):
    assert iso.processes != "none", "no process bound on this machine: refusing to start a fork bomb"
    mark = f"bomb{random.randrange(10**8)}"
    peak = 0
    finished = threading.Event()

    def count() -> None:
        nonlocal peak
        while not finished.is_set():
            peak = max(peak, len(matching(mark)))
            time.sleep(0.02)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        done = sandboxed(iso, home, f"bash -c ':(){{ :|:& }};: # {mark}'; sleep 2", timeout=4,
                         limits=Limits(processes=64))
    finally:
        finished.set()
        counter.join()
    assert done.duration_s < 15
    assert 32 <= peak <= 64, peak  # it did explode, up to the bound
    assert matching(mark) == []


def test_a_gigabyte_of_output_is_capped(iso, home):
    received: list[str] = []
    done = sandboxed(iso, home, "head -c 1073741824 /dev/zero; echo; echo END",
                     limits=Limits(output_bytes=1 << 20), on_output=received.append, timeout=120)
    passed = "".join(received)
    assert done.output_capped and done.exit_code == 0
    assert passed.count("\0") == 1 << 20
    assert len(done.output_tail) <= 64 * 1024 and done.output_tail.endswith("END\n")


def test_files_private_tmp_and_shm_are_size_capped(iso, home, workdir):
    done = sandboxed(iso, home, "head -c 5000000 /dev/zero > big; head -c 3000000 /dev/zero > /tmp/big; "
                                "head -c 3000000 /dev/zero > /dev/shm/big",
                     limits=Limits(file_bytes=1 << 20, tmp_bytes=512 << 10))
    assert (workdir / "big").stat().st_size == 1 << 20
    assert done.output_tail.count("No space left on device") == 2, done.output_tail


def test_trusted_mode_runs_unconfined_with_the_same_environment_policy(home, workdir):
    trusted = Isolation("trusted", "operator chose trusted-code mode")
    done = run_confined(["sh", "-c", "env; test -r ../../../secret_key && echo HOME-VISIBLE"], isolation=trusted,
               workdir=workdir, extra_env={"TASK_VAR": "x"}, timeout=30)
    assert "TASK_VAR=x" in done.output_tail and CANARY not in done.output_tail
    assert "HOME-VISIBLE" in done.output_tail  # what trusted means: documented, not hidden


def test_a_missing_command_says_so(iso, workdir):
    for mode in (iso, Isolation("trusted", "operator chose trusted-code mode")):
        done = run_confined(["no-such-command-dagmerge"], isolation=mode, workdir=workdir, extra_env={}, timeout=30)
        assert done.exit_code != 0 and "no-such-command-dagmerge" in done.output_tail
        assert "No such file or directory" in done.output_tail


def test_detect_says_why_bubblewrap_cannot_be_used(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    monkeypatch.setenv("PATH", str(fake))
    isolation._detect.cache_clear()
    try:
        missing = Isolation.detect()
        (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
        (fake / "bwrap").chmod(0o755)
        isolation._detect.cache_clear()
        broken = Isolation.detect()
    finally:
        isolation._detect.cache_clear()
    assert missing.mode == "trusted" and "bwrap not found" in missing.reason
    assert broken.mode == "trusted"
    assert broken.reason == "bwrap does not work here: bwrap: No permissions to create new namespace"


def test_mounts_are_ordered_so_a_workdir_inside_a_hidden_dir_stays_visible(home, workdir):
    argv = wrap(["true"], workdir=workdir, hide=[home], env={})
    private_tmp, hidden, bound = argv.index("/tmp"), argv.index(str(home)), argv.index(str(workdir))
    assert argv[hidden - 1] == "--tmpfs" and argv[bound - 1] == "--bind"
    assert private_tmp < hidden < bound < argv.index("--remount-ro")
    with pytest.raises(ValueError):
        wrap(["true"], workdir=workdir, hide=[workdir], env={})
