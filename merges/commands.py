"""``dagmerge merge-file``, ``merge-driver`` and ``replay``: doors onto the merge engine that need git only.

No settings, no database: they run in any repository, e.g. as git's merge driver.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from merges.engine.conflicts import MARKER_SIZE
from merges.engine.mergefile import MergedFile, merge_bytes
from merges.engine.replay import MODES, replay
from merges.engine.resolvers.ladder import COMPLEMENTARY, HISTORY_SAFE, RULE_SETS
from merges.engine.resolvers.recorded import RecordedResolutions

CLEAN, CONFLICTS_LEFT, USAGE = 0, 1, 2


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
    parser.add_argument("--limit", type=int, help="merges (history) or commit pairs (parallel) to examine")
    parser.add_argument("--since", help="only commits after this date (git's --since)")
    parser.add_argument("--rules", choices=RULE_SETS,
                        help="resolver rules (default: history-safe for history, complementary for parallel)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=_replay, needs_database=False)


COMMANDS = (add_merge_file, add_merge_driver, add_replay)


def _add_merge_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--complementary", action="store_true",
                        help="both sides' changes are meant to land (sibling tasks): keep-both rules too")
    parser.add_argument("--recorded", metavar="FILE", help="JSON file of approved resolutions to reuse")
    parser.add_argument("--marker-size", type=int, default=MARKER_SIZE, help="conflict marker length (%%L)")


def _merge(args, base: Path, ours: Path, theirs: Path, path: str) -> MergedFile:
    store = RecordedResolutions.load(args.recorded) if args.recorded else None
    rule_set = COMPLEMENTARY if args.complementary else HISTORY_SAFE
    return merge_bytes(base.read_bytes(), ours.read_bytes(), theirs.read_bytes(), path, rule_set, store,
                       args.marker_size)


def _merge_file(args) -> int:
    try:
        merged = _merge(args, Path(args.base), Path(args.ours), Path(args.theirs), args.path or args.ours)
    except OSError as exc:
        print(f"dagmerge: {exc}", file=sys.stderr)
        return USAGE
    if args.output:
        Path(args.output).write_bytes(merged.data)
    else:
        sys.stdout.buffer.write(merged.data)
    print(f"{args.path or args.ours}: {merged.summary}", file=sys.stderr)
    return CLEAN if merged.clean else CONFLICTS_LEFT


def _merge_driver(args) -> int:
    current = Path(args.current)
    try:
        merged = _merge(args, Path(args.base), current, Path(args.other), args.path)
    except OSError as exc:
        print(f"dagmerge: {exc}", file=sys.stderr)
        return USAGE
    current.write_bytes(merged.data)
    if not merged.clean:
        print(f"dagmerge: {args.path}: {merged.summary}", file=sys.stderr)
    return CLEAN if merged.clean else CONFLICTS_LEFT


def _replay(args) -> int:
    report = replay(args.repo, args.mode, limit=args.limit, since=args.since, rule_set=args.rules)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.format())
    return CLEAN
