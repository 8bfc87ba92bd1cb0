"""Benchmark the resolvers on real history: replay each repository, then the tables of docs/benchmarks.md.

For each repository and mode it prints coverage (hunks resolved / hunks conflicted) and precision three ways
(exact, layout, equivalent) per resolver, per language and per order rule of the structured tier, and time
per hunk. The repositories are only read: merges write into a temporary object directory.

    .venv/bin/python bench/replay.py PATH[@COMMIT] [...] [--mode history|parallel] [--limit N] [--json]
    .venv/bin/python bench/replay.py --suite fourteen|added|all --mirror DIR [--mode ...] [--markdown]
    .venv/bin/python bench/replay.py PATH --mode parallel --tier agent --limit 20 [--max-usd 5]

``--suite`` replays the repositories of docs/benchmarks.md at the commits measured there, found in DIR as
``owner+name/repo``, ``owner+name`` or ``name`` (bare clones are fine); ``--markdown`` ends with the rows of
the tables there (per repository, totals, per resolver, per language, per order rule). ``history`` replays
two-parent merges with the history-safe rules (goal: precision ≥ 98 %); ``parallel`` builds sibling-task
conflicts from consecutive commits and uses the complementary rules (goals: ≥ 70 % of hunks settled overall,
≥ 50 % on each added repository, exact precision ≥ 98 %, equivalent ≥ 99.5 %).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project is not installed

from merges.engine.replay import MODES, replay  # noqa: E402
from merges.engine.replay.report import ReplayReport, Score  # noqa: E402

FOURTEEN = {
    "pallets/flask": "2ac89889f4cc", "pytest-dev/pytest": "df87db7b0462", "pypa/pip": "6d309205789d",
    "pallets/werkzeug": "1b00618e787f", "sphinx-doc/sphinx": "e44a40eb2f81", "psf/requests": "1f6589ec3a1e",
    "pallets/click": "2c8cd3ac958a", "pallets/jinja": "5ef70112a1ff", "psf/black": "8947c48ef207",
    "encode/httpx": "ae1b9f66238f", "scrapy/scrapy": "11079cb1c85b", "python-poetry/poetry": "f46702336862",
    "pypa/setuptools": "7d531288b7c8", "pallets/itsdangerous": "672971d66a2e",
}
ADDED = {  # chosen before any was run (docs/benchmarks.md)
    "koajs/koa": "e0ba8ef39d27", "colinhacks/zod": "e516c3baf226", "gin-gonic/gin": "dcaa4296d111",
    "sharkdp/fd": "ee20f426ddf3",
}
SUITES = {"fourteen": FOURTEEN, "added": ADDED, "all": {**FOURTEEN, **ADDED}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repos", nargs="*", help="git repositories (bare or not), each optionally @COMMIT")
    parser.add_argument("--suite", choices=SUITES, help="the repositories of docs/benchmarks.md at their commits")
    parser.add_argument("--mirror", type=Path, help="where the suite's repositories are")
    parser.add_argument("--mode", choices=MODES, action="append", help="default: both")
    parser.add_argument("--limit", type=int, help="merges / commit pairs per mode (agent tier: files to the agent)")
    parser.add_argument("--since", help="only commits after this date (git's --since)")
    parser.add_argument("--tier", choices=("deterministic", "agent"), default="deterministic")
    parser.add_argument("--max-usd", type=float, help="agent tier: stop once it cost this much")
    parser.add_argument("--json", action="store_true", help="one JSON report per line instead of text")
    parser.add_argument("--markdown", action="store_true", help="end with the rows of the benchmark tables")
    args = parser.parse_args(argv)
    targets = [_split(repo) for repo in args.repos]
    if args.suite:
        if args.mirror is None:
            parser.error("--suite needs --mirror")
        targets += [(_find(args.mirror, name), commit) for name, commit in SUITES[args.suite].items()]
    if not targets:
        parser.error("name repositories or a --suite")
    reports: list[ReplayReport] = []
    for repo, commit in targets:
        for mode in args.mode or MODES:
            report = replay(repo, mode, limit=args.limit, since=args.since, at=commit, agent=_agent(args))
            reports.append(report)
            print(json.dumps(report.as_dict()) if args.json else report.format() + "\n", flush=True)
    if args.markdown:
        print(markdown(reports))
    return 0


def _agent(args):
    if args.tier != "agent":
        return None
    from merges.commands import llm_settings_from_environment
    from merges.engine.replay.agent import AgentReplay

    return AgentReplay(llm_settings_from_environment(), limit=args.limit, max_usd=args.max_usd)


def _split(target: str) -> tuple[str, str]:
    path, _, commit = target.partition("@")
    return path, commit or "HEAD"


def _find(mirror: Path, name: str) -> str:
    owner, repo = name.split("/")
    for candidate in (mirror / f"{owner}+{repo}" / "repo", mirror / f"{owner}+{repo}", mirror / repo):
        if candidate.exists():
            return str(candidate)
    raise SystemExit(f"{name}: not found in {mirror} (clone it there as {owner}+{repo})")


def markdown(reports: list[ReplayReport]) -> str:
    """The rows of docs/benchmarks.md: one per repository and mode, totals, then per resolver, language, rule."""
    lines = ["| repository | commit | mode | examined | conflicted | hunks | resolved | coverage | exact | layout "
             "| equivalent |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in reports:
        lines.append(f"| {_name(r.repository)} | `{r.head[:12]}` | {r.mode} | {r.cases} | {r.conflicted_cases} | "
                     f"{r.hunks} | {r.total.resolved} | {_pct(r.total.resolved, r.hunks)} | " + _ways(r.total) + " |")
    for mode in MODES:
        mine = [r for r in reports if r.mode == mode]
        if len(mine) > 1:
            total, hunks = _sum(s.total for s in mine), sum(r.hunks for r in mine)
            lines.append(f"| **all {len(mine)}** | | {mode} | | | {hunks} | {total.resolved} | "
                         f"{_pct(total.resolved, hunks)} | " + _ways(total) + " |")
    for title, field in (("resolver", "resolvers"), ("language", "languages"), ("order rule", "rules"),
                         ("order rule left out", "rules_left_out")):
        lines += ["", f"| mode | {title} | hunks | resolved | exact | layout | equivalent |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for mode in MODES:
            mine = [r for r in reports if r.mode == mode]
            names = sorted({name for r in mine for name in getattr(r, field)} |
                           ({name for r in mine for name in r.hunks_by_language} if field == "languages" else set()))
            for name in names:
                score = _sum(getattr(r, field).get(name, Score()) for r in mine)
                hunks = sum(r.hunks_by_language[name] for r in mine) if field == "languages" else ""
                lines.append(f"| {mode} | {name} | {hunks} | {score.resolved} | " + _ways(score) + " |")
    return "\n".join(lines)


def _sum(scores) -> Score:
    total = Score()
    for score in scores:
        total += score
    return total


def _ways(score: Score) -> str:
    judged = score.resolved - score.unjudged
    return " | ".join(f"{_pct(getattr(score, way), judged)} ({getattr(score, way)}/{judged})"
                      for way in ("exact", "layout", "equivalent"))


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "–"


def _name(path: str) -> str:
    parts = Path(path).parts
    name = parts[-2] if parts[-1] == "repo" else parts[-1]
    return name.replace("+", "/")


if __name__ == "__main__":
    sys.exit(main())
