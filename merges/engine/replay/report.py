"""What a replay counts and how it prints: per resolver, per language, per order rule, three ways right.

A settled hunk is judged three ways against the author's text (see ``judging``): **exact** (the same lines),
**layout** (the same once whitespace and blank lines are set aside) and **equivalent** (the same syntax tree
up to the order of the children of commutative parents). Precision is right / judged for each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

WAYS = ("exact", "layout", "equivalent")


@dataclass(frozen=True)
class Verdict:
    exact: bool
    layout: bool
    equivalent: bool


@dataclass
class Score:
    resolved: int = 0
    exact: int = 0
    layout: int = 0
    equivalent: int = 0
    unjudged: int = 0  # the right answer could not be told apart from a neighbouring unsettled hunk

    def add(self, verdict: Verdict | None) -> None:
        self.resolved += 1
        if verdict is None:
            self.unjudged += 1
            return
        self.exact += verdict.exact
        self.layout += verdict.layout
        self.equivalent += verdict.equivalent

    def precision(self, way: str) -> float | None:
        judged = self.resolved - self.unjudged
        return getattr(self, way) / judged if judged else None

    def __iadd__(self, other: Score) -> Score:
        for name in ("resolved", *WAYS, "unjudged"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"resolved": self.resolved, **{way: getattr(self, way) for way in WAYS}, "unjudged": self.unjudged,
                **{f"{way}_precision": self.precision(way) for way in WAYS}}


@dataclass
class AgentTally:
    """The agent tier on what the deterministic tiers left: per hunk, three ways right, cost and time."""

    files: int = 0  # files given to the agent
    hunks: int = 0  # open hunks in them
    score: Score = field(default_factory=Score)  # hunks the agent settled
    invocations: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        per_hunk = self.hunks or None
        return {"files": self.files, "hunks": self.hunks, **self.score.as_dict(), "invocations": self.invocations,
                "cost_usd": self.cost_usd, "seconds": self.seconds,
                "usd_per_hunk": self.cost_usd / per_hunk if per_hunk else None,
                "seconds_per_hunk": self.seconds / per_hunk if per_hunk else None, "errors": dict(self.errors)}


@dataclass
class ReplayReport:
    mode: str
    rule_set: str
    repository: str
    head: str
    cases: int = 0  # merges (history) or commit pairs (parallel) examined
    conflicted_cases: int = 0
    files: Counter[str] = field(default_factory=Counter)  # conflicted files by kind
    hunks: int = 0  # conflicted hunks; a conflict with no text hunks counts as one
    hunks_by_language: Counter[str] = field(default_factory=Counter)
    resolvers: dict[str, Score] = field(default_factory=dict)
    languages: dict[str, Score] = field(default_factory=dict)  # settled hunks by the language of their file
    rules: dict[str, Score] = field(default_factory=dict)  # the structured tier's hunks by order rule
    rules_left_out: dict[str, Score] = field(default_factory=dict)  # the same hunks, that rule left out
    notes: Counter[str] = field(default_factory=Counter)  # cases or files left out, and why
    agent: AgentTally | None = None
    git_seconds: float = 0.0
    resolve_seconds: float = 0.0
    judge_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def total(self) -> Score:
        total = Score()
        for score in self.resolvers.values():
            total += score
        return total

    @property
    def coverage(self) -> float | None:
        return self.total.resolved / self.hunks if self.hunks else None

    @property
    def ms_per_hunk(self) -> float | None:
        return 1000 * self.resolve_seconds / self.hunks if self.hunks else None

    def as_dict(self) -> dict[str, Any]:
        def table(scores: dict[str, Score]) -> dict[str, Any]:
            return {name: score.as_dict() for name, score in sorted(scores.items())}

        languages = {name: {"hunks": self.hunks_by_language[name], **self.languages.get(name, Score()).as_dict()}
                     for name in sorted(self.hunks_by_language)}
        return {
            "mode": self.mode, "rule_set": self.rule_set, "repository": self.repository, "head": self.head,
            "cases": self.cases, "conflicted_cases": self.conflicted_cases, "files": dict(self.files),
            "hunks": self.hunks, **self.total.as_dict(), "coverage": self.coverage,
            "resolvers": table(self.resolvers), "languages": languages, "rules": table(self.rules),
            "rules_left_out": table(self.rules_left_out), "notes": dict(self.notes),
            "agent": self.agent.as_dict() if self.agent else None,
            "seconds": {"total": self.seconds, "git": self.git_seconds, "resolvers": self.resolve_seconds,
                        "judging": self.judge_seconds},
            "ms_per_hunk": self.ms_per_hunk,
        }

    def format(self) -> str:
        total = self.total
        unit = "merges" if self.mode == "history" else "commit pairs"
        kinds = ", ".join(f"{kind} {count}" for kind, count in self.files.most_common())
        lines = [
            f"replay {self.mode} of {self.repository} at {self.head[:12]} (rules: {self.rule_set})",
            f"  {unit} examined {self.cases}, with conflicts {self.conflicted_cases}; "
            f"conflicted files {sum(self.files.values())}" + (f" ({kinds})" if kinds else ""),
            f"  hunks conflicted {self.hunks}, resolved {total.resolved} (coverage {_percent(self.coverage)}); "
            f"precision exact {_percent(total.precision('exact'))}, layout {_percent(total.precision('layout'))}, "
            f"equivalent {_percent(total.precision('equivalent'))} of {total.resolved - total.unjudged} judged",
            *_table("resolver", self.resolvers),
            *_table("language", self.languages, self.hunks_by_language),
        ]
        if self.rules:
            lines += _table("order rule", self.rules)
        if self.rules_left_out:
            lines += _table("rule left out", self.rules_left_out)
        if self.notes:
            lines.append("  notes: " + ", ".join(f"{why} {count}" for why, count in sorted(self.notes.items())))
        if self.agent is not None:
            lines += _agent_lines(self.agent)
        per_hunk = f"{self.ms_per_hunk:.2f} ms/hunk" if self.ms_per_hunk is not None else "no hunks"
        lines.append(f"  time {self.seconds:.1f} s: git {self.git_seconds:.1f} s, resolvers "
                     f"{self.resolve_seconds:.2f} s ({per_hunk}), judging {self.judge_seconds:.1f} s")
        return "\n".join(lines)


def _table(title: str, scores: dict[str, Score], hunks: Counter[str] | None = None) -> list[str]:
    names = sorted(set(scores) | set(hunks or ()))
    head = f"  {title:<26}" + (f"{'hunks':>7}" if hunks is not None else "")
    lines = [head + f"{'resolved':>9}{'exact':>7}{'layout':>7}{'equiv':>7}{'unjudged':>9}"
                    f"{'exact%':>8}{'layout%':>9}{'equiv%':>8}"]
    for name in names:
        s = scores.get(name, Score())
        row = f"  {name:<26}" + (f"{hunks[name]:>7}" if hunks is not None else "")
        lines.append(row + f"{s.resolved:>9}{s.exact:>7}{s.layout:>7}{s.equivalent:>7}{s.unjudged:>9}"
                           f"{_percent(s.precision('exact')):>8}{_percent(s.precision('layout')):>9}"
                           f"{_percent(s.precision('equivalent')):>8}")
    return lines


def _agent_lines(agent: AgentTally) -> list[str]:
    s = agent.score
    per_hunk = agent.hunks or 1
    lines = [f"  agent tier: {agent.files} files, {agent.hunks} open hunks, settled {s.resolved}; precision exact "
             f"{_percent(s.precision('exact'))}, layout {_percent(s.precision('layout'))}, equivalent "
             f"{_percent(s.precision('equivalent'))}; {agent.invocations} calls, ${agent.cost_usd:.4f} "
             f"(${agent.cost_usd / per_hunk:.4f}/hunk), {agent.seconds:.1f} s ({agent.seconds / per_hunk:.1f} s/hunk)"]
    if agent.errors:
        lines.append("  agent errors: " + ", ".join(f"{why} {n}" for why, n in agent.errors.most_common()))
    return lines


def _percent(value: float | None) -> str:
    return f"{100 * value:.1f}%" if value is not None else "-"
