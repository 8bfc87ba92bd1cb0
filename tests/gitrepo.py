"""Real git repositories for tests, built in temp dirs."""

from __future__ import annotations

from pathlib import Path

from merges.engine.git import Git, init_repository


class Repo:
    def __init__(self, path: Path):
        self.path = path
        self.git = init_repository(path) if not (path / ".git").exists() else Git(path)

    def write(self, files: dict[str, str | bytes | None]) -> None:
        for name, content in files.items():
            target = self.path / name
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)

    def commit(self, files: dict[str, str | bytes | None], message: str = "change") -> str:
        self.write(files)
        self.git.run("add", "-A")
        self.git.run("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def branch(self, name: str, start: str = "HEAD") -> None:
        self.git.run("checkout", "-q", "-b", name, start)

    def checkout(self, name: str) -> None:
        self.git.run("checkout", "-q", name)

    def head(self, rev: str = "HEAD") -> str:
        sha = self.git.rev_parse(rev)
        assert sha, rev
        return sha

    def show(self, rev: str, path: str) -> str:
        return self.git.run("show", f"{rev}:{path}").stdout.decode()


def numbered_lines(count: int = 60) -> str:
    return "".join(f"line {i}\n" for i in range(1, count + 1))


def replace_line(text: str, number: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[number - 1] = new + "\n"
    return "".join(lines)
