"""Reading what a task left in its scratch folder: checked on the open file before a byte is read.

The task writes its scratch folder (``$DAGMERGE_RESULT`` lies there); dagmerge reads it in the worker
afterwards. A file of a terabyte, a link to a host file or a FIFO must cost nothing and say so in one line.
"""

from __future__ import annotations

import contextlib
import os
import socket

import pytest

from coordination.running.sandboxes.base import UnreadableFile
from coordination.running.sandboxes.local import LocalSandbox
from merges.engine.git import Git
from merges.engine.isolation import Isolation

LIMIT = 1 << 20


@pytest.fixture
def sandbox(tmp_path):
    box = LocalSandbox(Git(tmp_path), tmp_path / "box", contextlib.nullcontext, isolation=Isolation("trusted"),
                       trusted=True)
    box.scratch.mkdir(parents=True)
    return box


def test_a_missing_file_is_none_and_a_small_one_is_read(sandbox):
    assert sandbox.read_file("result.json", LIMIT) is None
    (sandbox.scratch / "result.json").write_bytes(b'{"ok": true}')
    assert sandbox.read_file("result.json", LIMIT) == b'{"ok": true}'
    (sandbox.scratch / "exact.json").write_bytes(b"x" * LIMIT)
    assert len(sandbox.read_file("exact.json", LIMIT) or b"") == LIMIT


def test_a_terabyte_result_is_refused_from_its_size_without_reading_it(sandbox):
    """A sparse file costs the task nothing; read whole (as before) it is a MemoryError, or the worker's
    memory gone."""
    with open(sandbox.scratch / "result.json", "wb") as file:
        file.truncate(1 << 40)
    with pytest.raises(UnreadableFile) as refused:
        sandbox.read_file("result.json", LIMIT)
    assert str(refused.value) == f"holds {1 << 40} bytes; at most {LIMIT} are kept"


def test_links_fifos_sockets_and_folders_are_refused_without_reading_them(sandbox, tmp_path):
    host_file = tmp_path / "worker-secret"
    host_file.write_text("CANARY-SECRET")
    (sandbox.scratch / "link.json").symlink_to(host_file)
    os.mkfifo(sandbox.scratch / "fifo.json")  # reading it blocks until a writer comes: none will
    (sandbox.scratch / "folder.json").mkdir()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(sandbox.scratch / "socket.json"))
    try:
        refusals = {}
        for name in ("link.json", "fifo.json", "folder.json", "socket.json"):
            with pytest.raises(UnreadableFile) as refused:
                sandbox.read_file(name, LIMIT)
            refusals[name] = str(refused.value)
    finally:
        listener.close()
    assert refusals == {"link.json": "is a symbolic link, not a regular file",
                        "fifo.json": "is not a regular file", "folder.json": "is not a regular file",
                        "socket.json": "is not a regular file"}

