"""The real processes a fault campaign kills, stops and restarts: Celery workers, beat, daphne, servers.

Each runs in its own session (its own process group), as ``dagmerge demo`` starts them, so one
``killpg`` takes the whole worker — main process, pool and every git or command child still in the group.
What was started in a session of its own (a task command, a verify command) is not in the group: the
campaign records which of those outlived their worker.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from dagmerge_site.cli import stop_servers


def processes() -> list[tuple[int, str, int, int]]:
    """(pid, state, ppid, pgrp) of every process, from /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            state, ppid, pgrp = stat[stat.rindex(")") + 2:].split(" ", 3)[:3]
            found.append((int(entry.name), state, int(ppid), int(pgrp)))
    return found


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (by parent pid), live ones only."""
    table = [(pid, ppid) for pid, state, ppid, _ in processes() if state not in "ZX"]
    found, frontier = [], [root]
    while frontier:
        found += frontier
        frontier = [pid for pid, ppid in table if ppid in frontier]
    return found


def alive(pids: list[int]) -> list[int]:
    live = {pid for pid, state, _, _ in processes() if state not in "ZX"}
    return [pid for pid in pids if pid in live]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:300]
    except OSError:
        return "?"


def wait_until(condition, timeout: float, what: str, interval: float = 0.1, state=None):
    """Poll ``condition`` until it returns something truthy; AssertionError naming ``what`` (and what
    ``state()`` says) at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            said = f": {state()}" if state else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{said}")
        time.sleep(interval)


class Service:
    """One server process in its own session: started, killed (the whole group), stopped and continued."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path, ready: str):
        self.name, self.argv, self.env, self.logs, self.ready = name, argv, env, logs, ready
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path = logs / f"{name}-0.log"

    def start(self, timeout: float = 90) -> float:
        """Start it and wait until its log says ``ready``; returns the seconds that took."""
        started = time.monotonic()
        self.starts += 1
        self.log_path = self.logs / f"{self.name}-{self.starts}.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: self._started(), timeout, f"{self.name} to start (log: {self.log_path})", 0.2)
        return time.monotonic() - started

    def _started(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
        return self.ready in self.log_path.read_text(errors="replace")

    def kill(self) -> list[int]:
        """SIGKILL the whole process group; returns the pids below it that were not in the group and live on."""
        assert self.proc is not None
        below = descendants(self.proc.pid)
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        group = self.proc.pid
        wait_until(lambda: not any(pgrp == group and state not in "ZX" for _, state, _, pgrp in processes()),
                   30, f"{self.name}'s process group to die")
        return alive([pid for pid in below if pid != self.proc.pid])

    def freeze(self, everything: bool) -> list[int]:
        """SIGSTOP the worker's process group (``kill -STOP -<pgid>``: what it started in sessions of its
        own runs on), or with ``everything`` the worker and every process below it, as a paused machine
        would be; returns the pids stopped."""
        assert self.proc is not None
        if not everything:
            group = [pid for pid, state, _, pgrp in processes() if pgrp == self.proc.pid and state not in "ZX"]
            os.killpg(self.proc.pid, signal.SIGSTOP)
            return group
        stopped: list[int] = []
        while True:  # a stopped process forks no more: repeat until nothing new appears
            fresh = [pid for pid in descendants(self.proc.pid) if pid not in stopped]
            if not fresh:
                return stopped
            for pid in fresh:
                try:
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
                except ProcessLookupError:
                    pass

    @staticmethod
    def thaw(pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def stop_all(services: list[Service]) -> None:
    """Polite stop at the end of a test, every service at once, as ``dagmerge demo`` stops its servers."""
    stop_servers([s.proc for s in services if s.proc is not None and s.proc.poll() is None])


def celery_worker(name: str, env: dict[str, str], logs: Path, concurrency: int = 2) -> Service:
    return Service(name, [sys.executable, "-m", "celery", "-A", "dagmerge_site", "worker", "-Q", "agents,git",
                          "-c", str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                          "--hostname", f"{name}-{os.getpid()}@%h"], env, logs, ready="ready.")


def celery_beat(env: dict[str, str], logs: Path) -> Service:
    schedule = Path(env["DAGMERGE_HOME"]) / f"beat-{os.getpid()}"
    return Service("beat", [sys.executable, "-m", "celery", "-A", "dagmerge_site", "beat", "--loglevel", "INFO",
                            "-s", str(schedule)], env, logs, ready="beat: Starting")


def daphne(env: dict[str, str], logs: Path, port: int) -> Service:
    binary = str(Path(sys.executable).parent / "daphne")
    return Service("daphne", [binary, "-b", "127.0.0.1", "-p", str(port), "dagmerge_site.asgi:application"],
                   env, logs, ready="Listening on TCP address")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the servers (only where the campaign may restart them: local, and managed the way .ci/run does) ---


def local_redis(url: str) -> tuple[str, int] | str:
    """(host, port) of a Redis this machine can restart, or why it cannot."""
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        return f"REDIS_URL points at {parsed.hostname}, not this machine"
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        return "redis-server / redis-cli are not installed here"
    return parsed.hostname, parsed.port or 6379


def restart_redis(host: str, port: int) -> None:
    """Shut Redis down without saving (what it held is lost, as in a crash of a server without persistence)
    and start it again as .ci/run does."""
    subprocess.run(["redis-cli", "-h", host, "-p", str(port), "shutdown", "nosave"], capture_output=True,
                   timeout=30)
    wait_until(lambda: subprocess.run(["redis-cli", "-h", host, "-p", str(port), "ping"], capture_output=True,
                                      timeout=10).returncode != 0, 30, "Redis to stop")
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", host, "--port", str(port), "--save", "",
                    "--appendonly", "no"], check=True, capture_output=True, timeout=30)
    wait_until(lambda: subprocess.run(["redis-cli", "-h", host, "-p", str(port), "ping"], capture_output=True,
                                      timeout=10).returncode == 0, 30, "Redis to start", 0.2)


def local_postgres(host: str, port: int) -> list[str] | str:
    """The ``pg_ctlcluster VERSION NAME`` of the local cluster on ``port``, or why there is none."""
    if host not in ("127.0.0.1", "localhost", ""):
        return f"the database is on {host}, not this machine"
    if not shutil.which("pg_lsclusters") or not shutil.which("pg_ctlcluster"):
        return "pg_lsclusters / pg_ctlcluster are not installed here"
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=30).stdout
    for line in out.splitlines():
        version, name, cluster_port, *_ = line.split()
        if int(cluster_port) == port:
            return [version, name]
    return f"no local cluster listens on port {port}"


def stop_postgres(cluster: list[str]) -> None:
    """Stop PostgreSQL with ``-m fast`` (every session cut) and leave it down until ``start_postgres``."""
    subprocess.run(["pg_ctlcluster", *cluster, "stop", "-m", "fast"], check=True, capture_output=True, timeout=120)


def start_postgres(cluster: list[str]) -> None:
    subprocess.run(["pg_ctlcluster", *cluster, "start"], check=True, capture_output=True, timeout=120)


def restart_postgres(cluster: list[str]) -> None:
    """Restart PostgreSQL with ``-m fast``: every session is cut, as a crash or a failover would."""
    subprocess.run(["pg_ctlcluster", *cluster, "restart", "-m", "fast"], check=True, capture_output=True,
                   timeout=120)
