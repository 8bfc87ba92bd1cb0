"""The campaign's figures, from the JSON lines each fault appends to DAGMERGE_FAULT_REPORT.

    python -m tests.faults.report faults-embedded.jsonl faults-servers.jsonl

prints one Markdown table row per backend and kind (docs/reliability.md holds the recorded campaign's).
Plain Python: it reads the file, nothing else.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict

PROBLEM_KINDS = ("failed", "lost", "duplicated", "stuck", "left_behind")


def rows(records: list[dict]) -> list[dict]:
    """Per backend and kind: faults, how many hit the state they aimed at, recovery p50 / max, problems."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for entry in records:
        groups[(entry["backend"], entry["kind"])].append(entry)
    out = []
    for (backend, kind), entries in sorted(groups.items()):
        times = sorted(e["recovery_s"] for e in entries if e.get("recovery_s") is not None)
        out.append({
            "backend": backend, "kind": kind, "faults": len(entries),
            "in_flight": sum(1 for e in entries if e.get("in_flight", True)),
            "p50": statistics.median(times) if times else None, "max": max(times) if times else None,
            **{k: sum(len(e["problems"].get(k, [])) for e in entries) for k in PROBLEM_KINDS},
        })
    return out


def summary(records: list[dict]) -> list[str]:
    """One plain line per backend and kind, for the end of a pytest run."""
    return [f"{r['backend']:15} {r['kind']:22} {r['faults']:3} faults ({r['in_flight']} in flight)  "
            + (f"recovered p50 {r['p50']:.1f} s, max {r['max']:.1f} s  " if r["p50"] is not None else "")
            + " ".join(f"{k}={r[k]}" for k in PROBLEM_KINDS) for r in rows(records)]


def markdown(records: list[dict]) -> str:
    head = "| backend | fault | injected | in flight | recovery p50 | recovery max | " + " | ".join(
        PROBLEM_KINDS) + " |"
    lines = [head, "|" + "---|" * (6 + len(PROBLEM_KINDS))]
    for r in rows(records):
        lines.append(f"| {r['backend']} | {r['kind']} | {r['faults']} | {r['in_flight']} | {r['p50']:.1f} s | "
                     f"{r['max']:.1f} s | " + " | ".join(str(r[k]) for k in PROBLEM_KINDS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    records = [json.loads(line) for path in sys.argv[1:] for line in open(path) if line.strip()]
    print(markdown(records))
