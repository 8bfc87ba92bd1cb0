#!/usr/bin/env python3
"""A stand-in for the Claude Code CLI that speaks its stream-json wire protocol (no network, no model).

The real SDK runs it through ``ClaudeAgentOptions(cli_path=...)``, so tests exercise the SDK's own
spawning, handshake and message parsing. What it does is read from a JSON scenario, named by
``FAKE_CLAUDE_SCENARIO``:

    {"variant": "resolve",        # resolve | markers | outside | error | hang | write
     "sequence": ["error", ...],  # optional: the variant of each invocation, the last one repeating
     "files": {"path": "text"},   # resolve/outside/write: files written in the cwd, as the Edit tool would
     "outside": {"path": "text"}, # outside: files written besides ``files``
     "text": "...",               # the final assistant text (a rationale, a summary)
     "cost_usd": 0.01,
     "exit_code": 1,              # error: exit status after the error result (0: a clean exit)
     "emit_result": true,         # error: false crashes without a result
     "record": "/path/calls.jsonl",
     "probe": ["/path", ...]}     # files the agent tries to read, as its Read tool would: recorded


Each invocation appends one JSON line to ``record`` (argv, cwd, pid, time, prompt, environment) when the
prompt arrives, so tests can assert on what the SDK sent and count retries. dagmerge runs the CLI under
bubblewrap, where no file of the test is writable (or even visible) but the network is on, so the fake sends
each line to a recorder ``install`` starts in the test's process (127.0.0.1), which writes ``record``.

Wire (as claude_agent_sdk 0.2 speaks it): newline-delimited JSON both ways. The SDK sends a
``control_request`` ``initialize`` and waits for a ``control_response``, then a ``user`` message, and closes
stdin straight after (a string prompt needs no more input); the CLI still finishes that turn:
``system``/``init``, ``assistant`` messages, a ``result``, then exits.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import socketserver
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

MODEL = "claude-fake-1"
VERSION = "2.1.330"  # reported in system/init: the SDK warns about a CLI too old to report one
SCENARIO_ENV = "FAKE_CLAUDE_SCENARIO"


def install(directory: Path, scenario: dict[str, Any]) -> Path:
    """Write ``scenario`` and an executable wrapper running this fake with the current interpreter.

    The wrapper is what tests pass as ``cli_path``: it fixes the interpreter (``/usr/bin/env python3`` may not
    be the venv's) and the scenario (an agent's environment may be scrubbed of the test's variables).
    """
    directory.mkdir(parents=True, exist_ok=True)
    scenario_file = directory / "scenario.json"
    if scenario.get("record"):
        scenario = {**scenario, "record_to": _recorder(Path(scenario["record"]))}
    scenario_file.write_text(json.dumps(scenario))
    program = directory / "fake_claude.py"  # beside the wrapper: a confined CLI sees its own folder only
    shutil.copyfile(Path(__file__).resolve(), program)
    wrapper = directory / "claude"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"{SCENARIO_ENV}={shlex.quote(str(scenario_file))} "
        f"exec {shlex.quote(sys.executable)} {shlex.quote(str(program))} \"$@\"\n"
    )
    wrapper.chmod(0o755)
    return wrapper


def _recorder(record: Path) -> list[Any]:
    """A listener appending each line it gets to ``record`` and answering how many lines were there before
    (the fake's invocation number); it lives as long as the test process."""
    lock = threading.Lock()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            with lock:
                index = len(recorded_calls(record))
                with open(record, "ab") as out:
                    out.write(line)
            self.wfile.write(f"{index}\n".encode())

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return list(server.server_address)


def recorded_calls(record: Path) -> list[dict[str, Any]]:
    """The invocations a scenario's ``record`` file holds, in order."""
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


class FakeCLI:
    def __init__(self, scenario: dict[str, Any], argv: list[str]):
        self.scenario = scenario
        self.argv = argv
        self.session_id = str(uuid.uuid4())
        self.model = _option(argv, "--model") or MODEL
        self.initialized = False
        self.turns = 0
        self.started = time.monotonic()

    def serve(self) -> int:
        for line in sys.stdin:
            if not line.strip():
                continue
            message = json.loads(line)
            kind = message.get("type")
            if kind == "control_request":
                self.answer_control(message)
            elif kind == "user":
                if not self.initialized:
                    return _protocol_error("a user message arrived before the initialize handshake")
                status = self.turn(_prompt_text(message))
                if status is not None:
                    return status
            elif kind == "control_response":
                continue  # answers to requests this fake never sends
            else:
                return _protocol_error(f"unexpected message type {kind!r}")
        return 0  # stdin closed: the session is over

    def answer_control(self, message: dict[str, Any]) -> None:
        request = message["request"]
        response: dict[str, Any] = {}
        if request.get("subtype") == "initialize":
            self.initialized = True
            response = {"commands": [], "models": [{"value": self.model}], "account": {}}
        _send({"type": "control_response",
               "response": {"subtype": "success", "request_id": message["request_id"], "response": response}})

    def turn(self, prompt: str) -> int | None:
        """Run one turn; a number is the exit status to stop with."""
        index = 0
        if self.scenario.get("record_to"):
            call = {"argv": self.argv, "cwd": os.getcwd(), "pid": os.getpid(), "time": time.time(),
                    "prompt": prompt, "env": dict(os.environ), "probed": _probe(self.scenario.get("probe", [])),
                    "pids": sorted(int(name) for name in os.listdir("/proc") if name.isdigit())}
            with socket.create_connection(tuple(self.scenario["record_to"]), timeout=30) as recorder:
                recorder.sendall(json.dumps(call).encode() + b"\n")
                index = int(recorder.makefile().readline())
        sequence = self.scenario.get("sequence") or [self.scenario.get("variant", "resolve")]
        variant = sequence[min(index, len(sequence) - 1)]
        self.system_init()
        return getattr(self, f"variant_{variant}")()

    # -- variants -------------------------------------------------------------------------------

    def variant_resolve(self) -> None:
        self.assistant_text("I read both sides' intents and the conflicted files.")
        self.edit_files(self.scenario.get("files", {}))
        self.finish(self.scenario.get("text", "Kept both changes."))

    def variant_markers(self) -> None:
        self.assistant_text("Looking at the conflict.")
        self.finish(self.scenario.get("text", "Done."))

    def variant_outside(self) -> None:
        self.edit_files({**self.scenario.get("files", {}), **self.scenario.get("outside", {"OUTSIDE.txt": "x\n"})})
        self.finish(self.scenario.get("text", "Resolved, and tidied another file."))

    def variant_write(self) -> None:
        self.assistant_text("Starting on the task.")
        self.edit_files(self.scenario.get("files", {}), tool="Write")
        self.finish(self.scenario.get("text", "Wrote the files."))

    def variant_error(self) -> int | None:
        self.assistant_text("Calling the model...")
        if not self.scenario.get("emit_result", True):
            print("fake claude: connection reset", file=sys.stderr, flush=True)
            return int(self.scenario.get("exit_code", 1))
        self.result("API Error: 529 overloaded_error", is_error=True)
        exit_code = int(self.scenario.get("exit_code", 1))
        return exit_code or None

    def variant_hang(self) -> None:
        self.assistant_text("Thinking...")
        while True:
            time.sleep(3600)

    # -- messages -------------------------------------------------------------------------------

    def system_init(self) -> None:
        _send({"type": "system", "subtype": "init", "session_id": self.session_id, "uuid": str(uuid.uuid4()),
               "cwd": os.getcwd(), "model": self.model, "claude_code_version": VERSION,
               "permissionMode": _option(self.argv, "--permission-mode") or "default",
               "tools": [t for t in (_option(self.argv, "--tools") or "").split(",") if t], "mcp_servers": []})

    def assistant(self, content: list[dict[str, Any]]) -> None:
        self.turns += 1
        _send({"type": "assistant", "session_id": self.session_id, "uuid": str(uuid.uuid4()),
               "parent_tool_use_id": None,
               "message": {"id": f"msg_{uuid.uuid4().hex[:12]}", "type": "message", "role": "assistant",
                           "model": self.model, "content": content, "stop_reason": "end_turn",
                           "usage": {"input_tokens": 10, "output_tokens": 5}}})

    def assistant_text(self, text: str) -> None:
        self.assistant([{"type": "text", "text": text}])

    def edit_files(self, files: dict[str, str], tool: str = "Edit") -> None:
        for name, text in files.items():
            path = Path(name)
            before = path.read_text() if path.exists() else ""
            tool_id = f"toolu_{uuid.uuid4().hex[:12]}"
            arguments = ({"file_path": str(path.resolve()), "old_string": before, "new_string": text}
                         if tool == "Edit" else {"file_path": str(path.resolve()), "content": text})
            self.assistant([{"type": "tool_use", "id": tool_id, "name": tool, "input": arguments}])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            _send({"type": "user", "session_id": self.session_id, "uuid": str(uuid.uuid4()),
                   "parent_tool_use_id": None,
                   "message": {"role": "user", "content": [
                       {"type": "tool_result", "tool_use_id": tool_id, "content": f"Updated {name}"}]}})

    def finish(self, text: str) -> None:
        self.assistant_text(text)
        self.result(text, is_error=False)

    def result(self, text: str, is_error: bool) -> None:
        elapsed = int((time.monotonic() - self.started) * 1000)
        _send({"type": "result", "subtype": "success", "is_error": is_error, "duration_ms": elapsed,
               "duration_api_ms": elapsed, "num_turns": self.turns, "result": text,
               "session_id": self.session_id, "uuid": str(uuid.uuid4()),
               "total_cost_usd": float(self.scenario.get("cost_usd", 0.01)),
               "usage": {"input_tokens": 10 * self.turns, "output_tokens": 5 * self.turns}})
        if os.environ.get("CLAUDE_CODE_SDK_READS_SESSION_STATE") == "1":
            _send({"type": "system", "subtype": "session_state_changed", "state": "idle",
                   "sdk_host_only": True, "session_id": self.session_id, "uuid": str(uuid.uuid4())})


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _option(argv: list[str], name: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _prompt_text(message: dict[str, Any]) -> str:
    content = message["message"]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(block.get("text", "") for block in content if block.get("type") == "text")


def _probe(paths: list[str]) -> dict[str, str]:
    """What reading each path gave: its text, or the error."""
    seen = {}
    for path in paths:
        try:
            seen[path] = Path(path).read_bytes().decode(errors="replace")
        except OSError as exc:
            seen[path] = f"error: {exc.strerror}"
    return seen


def _protocol_error(problem: str) -> int:
    print(f"fake claude: protocol error: {problem}", file=sys.stderr, flush=True)
    return 3


def main() -> int:
    with open(os.environ[SCENARIO_ENV]) as source:
        scenario = json.load(source)
    return FakeCLI(scenario, sys.argv[1:]).serve()


if __name__ == "__main__":
    sys.exit(main())
