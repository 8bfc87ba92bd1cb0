"""A fake Daytona on 127.0.0.1: the control-plane API and each sandbox's toolbox, real enough to run git.

It answers what the sync ``daytona`` SDK sends (urllib3 for the API and toolbox, httpx for file
transfers): ``POST/GET/DELETE /api/sandbox``, and under ``/toolbox/{id}``: ``work-dir``,
``process/execute``, ``git/clone``, ``files/bulk-upload`` and ``files/bulk-download``. Each sandbox is a
temporary directory; execute runs its command with ``bash -c`` there, standing in for the remote
machine's shell. Every request is recorded; a route it does not know (or a request without the API
key, like the SDK's socket.io event stream) lands in ``unhandled``, which the tests check is empty, so
an SDK that starts calling something new fails loudly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BOUNDARY = "DAYTONA-FILE-BOUNDARY"


class Reply(Exception):
    """Ends a request with an error envelope shaped like the daemon's."""

    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class FakeSandbox:
    record: dict[str, Any]
    root: Path
    deleted: bool = False

    @property
    def workdir(self) -> Path:
        return self.root / "home" / "daytona"

    def path(self, raw: str) -> Path:
        """A path the SDK sent, resolved inside this sandbox; anything outside it is refused."""
        resolved = (self.workdir / raw).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise Reply(400, f"path {raw} is outside the sandbox", "INVALID_FILE_PATH")
        return resolved


@dataclass
class FakeDaytona:
    root: Path
    api_key: str = "fake-daytona-key"
    create_state: str = "started"  # "error": a sandbox that never starts
    requests: list[tuple[str, str]] = field(default_factory=list)
    unhandled: list[str] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)  # the bodies of POST /api/sandbox
    uploads: list[tuple[str, bytes]] = field(default_factory=list)  # (path in the sandbox, content)
    sandboxes: dict[str, FakeSandbox] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                                        name="fake-daytona")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api"

    def start(self) -> FakeDaytona:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def calls(self, suffix: str) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.requests if path.endswith(suffix)]

    def deletes(self) -> list[str]:
        """The id or name of every DELETE /api/sandbox/... received."""
        return [path.rsplit("/", 1)[1] for method, path in self.requests if method == "DELETE"]

    def live(self) -> list[str]:
        """Ids of sandboxes created and not deleted."""
        return [sid for sid, box in self.sandboxes.items() if not box.deleted]

    def find(self, id_or_name: str) -> FakeSandbox:
        with self._lock:
            box = self.sandboxes.get(id_or_name) or next(
                (b for b in self.sandboxes.values() if b.record["name"] == id_or_name), None)
        if box is None or box.deleted:
            raise Reply(404, f"sandbox {id_or_name} not found", "NOT_FOUND")
        return box

    # -- control plane ------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        sid = uuid.uuid4().hex
        box = FakeSandbox(record={
            "id": sid, "organizationId": "org-fake", "name": body.get("name") or sid,
            "snapshot": body.get("snapshot"), "user": "daytona", "env": body.get("env") or {},
            "labels": body.get("labels") or {}, "public": False, "networkBlockAll": False, "kvm": False,
            "target": body.get("target") or "us", "cpu": 1, "gpu": 0, "memory": 1, "disk": 3,
            "state": self.create_state,
            "errorReason": "fake: told not to start" if self.create_state == "error" else None,
            "toolboxProxyUrl": f"{self.base_url}/toolbox",
        }, root=self.root / sid)
        box.workdir.mkdir(parents=True)
        with self._lock:
            self.created.append(body)
            self.sandboxes[sid] = box
        return box.record

    def delete(self, id_or_name: str) -> dict[str, Any]:
        box = self.find(id_or_name)
        box.deleted = True
        shutil.rmtree(box.root, ignore_errors=True)
        return {**box.record, "state": "destroying"}

    # -- toolbox ------------------------------------------------------------------------------

    def execute(self, box: FakeSandbox, body: dict[str, Any]) -> dict[str, Any]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(box.workdir), "LANG": "C.UTF-8",
               **(body.get("envs") or {})}
        proc = subprocess.Popen(["bash", "-c", body["command"]], cwd=box.path(body.get("cwd") or "."), env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=body.get("timeout") or None)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise Reply(408, "command execution timeout", "REQUEST_TIMEOUT") from None
        return {"exitCode": proc.returncode, "result": output.decode(errors="replace")}

    def git_clone(self, box: FakeSandbox, body: dict[str, Any]) -> None:
        target = box.path(body["path"])
        argv = ["git", "clone", "-q", "--single-branch"]
        if body.get("branch"):
            argv += ["--branch", body["branch"]]
        steps = [[*argv, "--", body["url"], str(target)]]
        if body.get("commit_id"):
            steps.append(["git", "-C", str(target), "checkout", "-q", body["commit_id"]])
        for step in steps:
            proc = subprocess.run(step, cwd=box.workdir, capture_output=True, text=True, check=False,
                                  env={"PATH": os.environ.get("PATH", ""), "HOME": str(box.workdir)})
            if proc.returncode:
                raise Reply(404, proc.stderr.strip() or "clone failed", "NOT_FOUND")

    def upload(self, box: FakeSandbox, content_type: str, payload: bytes) -> None:
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + payload)
        paths: dict[str, str] = {}
        files: dict[str, bytes] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition") or ""
            index, _, kind = name.partition(".")
            data = part.get_payload(decode=True) or b""
            if kind == "path":
                paths[index] = data.decode()
            elif kind == "file":
                files[index] = data
        if not files or files.keys() != paths.keys():
            raise Reply(400, "files[i].path and files[i].file must come in pairs", "BAD_REQUEST")
        for index, data in files.items():
            target = box.path(paths[index])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            self.uploads.append((paths[index], data))

    def download(self, box: FakeSandbox, body: dict[str, Any]) -> bytes:
        out = bytearray()
        for raw in body["paths"]:
            target = box.path(raw)
            if target.is_file():
                kind, ctype, data = "file", "application/octet-stream", target.read_bytes()
            else:
                kind, ctype = "error", "application/json; charset=utf-8"
                data = json.dumps({"statusCode": 404, "message": f"file not found: {raw}",
                                   "code": "FILE_NOT_FOUND"}).encode()
            out += (f"--{BOUNDARY}\r\nContent-Type: {ctype}\r\n"
                    f'Content-Disposition: form-data; name="{kind}"; filename="{raw}"\r\n\r\n').encode()
            out += data + b"\r\n"
        out += f"--{BOUNDARY}--\r\n".encode()
        return bytes(out)


def _handler(fake: FakeDaytona) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pools expect
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK waits

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def _serve(self) -> None:
            body = self._body()
            path = self.path.split("?", 1)[0]
            fake.requests.append((self.command, path))
            try:
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    fake.unhandled.append(f"{self.command} {path} without the API key")
                    raise Reply(401, "bad API key", "UNAUTHORIZED")
                self._route(path, body)
            except Reply as reply:
                self._send(reply.status, json.dumps(
                    {"statusCode": reply.status, "message": reply.message, "code": reply.code}).encode())

        def _route(self, path: str, body: bytes) -> None:
            parts = path.strip("/").split("/")
            route = (self.command, *parts[:1], *parts[2:]) if parts[0] == "toolbox" else (self.command, *parts)
            match route:
                case ("POST", "api", "sandbox"):
                    self._json(fake.create(json.loads(body)))
                case ("GET", "api", "sandbox", sid):
                    self._json(fake.find(sid).record)
                case ("DELETE", "api", "sandbox", sid):
                    self._json(fake.delete(sid))
                case ("GET", "toolbox", "work-dir"):
                    self._json({"dir": str(self._box(parts).workdir)})
                case ("POST", "toolbox", "process", "execute"):
                    self._json(fake.execute(self._box(parts), json.loads(body)))
                case ("POST", "toolbox", "git", "clone"):
                    fake.git_clone(self._box(parts), json.loads(body))
                    self._send(200, b"")
                case ("POST", "toolbox", "files", "bulk-upload"):
                    fake.upload(self._box(parts), self.headers.get("Content-Type", ""), body)
                    self._json({})
                case ("POST", "toolbox", "files", "bulk-download"):
                    data = fake.download(self._box(parts), json.loads(body))
                    self._send(200, data, f"multipart/form-data; boundary={BOUNDARY}")
                case _:
                    fake.unhandled.append(f"{self.command} {path}")
                    raise Reply(404, f"the fake does not know {self.command} {path}", "NOT_FOUND")

        def _box(self, parts: list[str]) -> FakeSandbox:
            return fake.find(parts[1])

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = bytearray()
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return bytes(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _json(self, value: Any) -> None:
            self._send(200, json.dumps(value).encode())

        def _send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
