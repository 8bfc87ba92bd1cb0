"""``dagmerge merge-file``, ``merge-driver`` and ``replay``: doors onto the merge engine that need git only.

No settings, no database: they run in any repository, e.g. as git's merge driver.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path

from merges.engine.conflicts import MARKER_SIZE
from merges.engine.llm import LLMSettings, agent_unavailable
from merges.engine.mergefile import MergedFile, merge_bytes
from merges.engine.replay import MODES, replay
from merges.engine.replay.agent import AgentReplay
from merges.engine.resolvers.ladder import COMPLEMENTARY, HISTORY_SAFE, RULE_SETS
from merges.engine.resolvers.recorded import RecordedResolutions

CLEAN, CONFLICTS_LEFT, USAGE = 0, 1, 2
MAX_MARKER_SIZE = 1024


def add_merge_file(sub) -> None:
    parser = sub.add_parser("merge-file", help="merge three versions of a file; resolvers settle what they can")
    parser.add_argument("base")
    parser.add_argument("ours")
    parser.add_argument("theirs")
    parser.add_argument("--path", help="the file's path in its repository (resolvers use its name)")
    parser.add_argument("-o", "--output", help="where the result goes (default: standard output)")
    _add_merge_options(parser)
    parser.set_defaults(handler=_merge_file, needs_database=False)


def add_merge_driver(sub) -> None:
    parser = sub.add_parser("merge-driver", help="git merge driver: dagmerge merge-driver %%O %%A %%B %%P",
                            description="Writes the result to CURRENT (%%A); exits 0 when clean, 1 when "
                                        "conflict markers are left.")
    parser.add_argument("base", help="%%O")
    parser.add_argument("current", help="%%A: ours, replaced by the result")
    parser.add_argument("other", help="%%B")
    parser.add_argument("path", help="%%P")
    _add_merge_options(parser)
    parser.set_defaults(handler=_merge_driver, needs_database=False)


def add_replay(sub) -> None:
    parser = sub.add_parser("replay", help="measure the resolvers on a repository's history (read-only)")
    parser.add_argument("--repo", required=True, help="a git repository (bare or not)")
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--limit", type=int, help="merges (history) or commit pairs (parallel) to examine; "
                                                    "with --tier agent: conflicted files given to the agent")
    parser.add_argument("--since", help="only commits after this date (git's --since)")
    parser.add_argument("--at", default="HEAD", help="replay the history behind this commit (default: HEAD)")
    parser.add_argument("--rules", choices=RULE_SETS,
                        help="resolver rules (default: history-safe for history, complementary for parallel)")
    parser.add_argument("--tier", choices=TIERS, default="deterministic",
                        help="agent: also give what the resolvers leave to the agent resolver (needs "
                             "ANTHROPIC_API_KEY; DAGMERGE_LLM_MODEL, DAGMERGE_LLM_TIMEOUT and DAGMERGE_CLAUDE_CLI "
                             "apply as in a ticket)")
    parser.add_argument("--max-usd", type=float, help="with --tier agent: stop once the agent cost this much")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=_replay, needs_database=False)


TIERS = ("deterministic", "agent")


COMMANDS = (add_merge_file, add_merge_driver, add_replay)


def _add_merge_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--complementary", action="store_true",
                        help="both sides' changes are meant to land (sibling tasks): keep-both rules too")
    parser.add_argument("--recorded", metavar="FILE", help="JSON file of approved resolutions to reuse")
    parser.add_argument("--marker-size", type=_marker_size, default=MARKER_SIZE,
                        help=f"conflict marker length (%%L), {MARKER_SIZE} to {MAX_MARKER_SIZE}")


def _marker_size(text: str) -> int:
    """git's markers are 7 long unless an attribute says longer; shorter ones would be read as text."""
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not MARKER_SIZE <= size <= MAX_MARKER_SIZE:
        raise argparse.ArgumentTypeError(f"{text!r} is not a marker size from {MARKER_SIZE} to {MAX_MARKER_SIZE}")
    return size


class BadInput(Exception):
    """A file the command cannot use; the message is one line naming it."""


def _read(path: str) -> bytes:
    """An input file, read only if it is a regular file: a FIFO would block and /dev/zero never end."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise BadInput(f"{path} is not a regular file")
        return Path(path).read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise BadInput(f"cannot write {path}: {exc.strerror}") from None


def _recorded(path: str | None) -> RecordedResolutions | None:
    if path is None:
        return None
    try:
        entries = json.loads(_read(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path} is not a JSON file of recorded resolutions: {exc}") from None
    if not isinstance(entries, dict) or not all(isinstance(e, dict) and isinstance(e.get("resolution"), list)
                                                for e in entries.values()):
        raise BadInput(f"{path} is not a JSON file of recorded resolutions: not a mapping of resolutions")
    return RecordedResolutions(entries)


def _merge(args, base: str, ours: str, theirs: str, path: str) -> MergedFile:
    store = _recorded(args.recorded)
    rule_set = COMPLEMENTARY if args.complementary else HISTORY_SAFE
    return merge_bytes(_read(base), _read(ours), _read(theirs), path, rule_set, store, args.marker_size)


def _merge_file(args) -> int:
    try:
        merged = _merge(args, args.base, args.ours, args.theirs, args.path or args.ours)
        if args.output:
            _write(args.output, merged.data)
        else:
            sys.stdout.buffer.write(merged.data)
    except BadInput as exc:
        print(f"dagmerge: {exc}", file=sys.stderr)
        return USAGE
    print(f"{args.path or args.ours}: {merged.summary}", file=sys.stderr)
    return CLEAN if merged.clean else CONFLICTS_LEFT


def _merge_driver(args) -> int:
    try:
        merged = _merge(args, args.base, args.current, args.other, args.path)
        _write(args.current, merged.data)
    except BadInput as exc:
        print(f"dagmerge: {exc}", file=sys.stderr)
        return USAGE
    if not merged.clean:
        print(f"dagmerge: {args.path}: {merged.summary}", file=sys.stderr)
    return CLEAN if merged.clean else CONFLICTS_LEFT


def _replay(args) -> int:
    agent = None
    if args.tier == "agent":
        settings = llm_settings_from_environment()
        unavailable = agent_unavailable(settings)
        if unavailable:
            print(f"dagmerge: --tier agent: {unavailable}", file=sys.stderr)
            return USAGE
        agent = AgentReplay(settings, limit=args.limit, max_usd=args.max_usd)
    try:
        report = replay(args.repo, args.mode, limit=args.limit, since=args.since, rule_set=args.rules, at=args.at,
                        agent=agent)
    except ValueError as exc:
        print(f"dagmerge: {exc}", file=sys.stderr)
        return USAGE
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.format())
    return CLEAN


def llm_settings_from_environment() -> LLMSettings:
    """The agent's settings from the environment variables a ticket's worker reads (no Django here)."""
    return LLMSettings(model=os.environ.get("DAGMERGE_LLM_MODEL") or None,
                       max_turns=int(os.environ.get("DAGMERGE_LLM_MAX_TURNS") or 30),
                       timeout_s=float(os.environ.get("DAGMERGE_LLM_TIMEOUT") or 600),
                       max_retries=int(os.environ.get("DAGMERGE_LLM_MAX_RETRIES") or 2),
                       cli_path=os.environ.get("DAGMERGE_CLAUDE_CLI") or None)
