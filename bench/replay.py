"""Benchmark the deterministic resolvers on real history: both replay modes on each given repository.

For each repository it prints, per mode, coverage (hunks resolved / hunks conflicted), precision
(resolved hunks equal to the committed text, whitespace aside) per resolver, and time per hunk. The
repository is only read: merges write into a temporary object directory.

    .venv/bin/python bench/replay.py PATH [PATH ...] [--limit N] [--since DATE] [--json]

``history`` replays the repository's two-parent merges with the history-safe rules (target: precision
at least 98 %); ``parallel`` builds sibling-task conflicts from consecutive commits and uses the
complementary rules (target: precision at least 98 % with at least 50 % of hunks settled).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project is not installed

from merges.engine.replay import MODES, replay  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repos", nargs="+", help="git repositories (bare or not)")
    parser.add_argument("--limit", type=int, help="merges (history) / commit pairs (parallel) per mode")
    parser.add_argument("--since", help="only commits after this date (git's --since)")
    parser.add_argument("--json", action="store_true", help="one JSON report per line instead of text")
    args = parser.parse_args(argv)
    for repo in args.repos:
        for mode in MODES:
            report = replay(repo, mode, limit=args.limit, since=args.since)
            print(json.dumps(report.as_dict()) if args.json else report.format() + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
