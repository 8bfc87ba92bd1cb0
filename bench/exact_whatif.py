"""What would raise the parallel replay's exact precision to 98 %? Measured on the replay's own conflicts (issue 11).

    .venv/bin/python bench/exact_whatif.py --suite all --mirror DIR --cache DIR [--unsettled] [--markdown]

The parallel replay's conflicted files (P, C1, C2's change transplanted onto P, git's merged text, the author's
C2) are enumerated once exactly as ``bench/replay.py --mode parallel`` does and stored in ``--cache`` (one JSON
line per conflicted file, outside the repository); later runs only re-judge them (minutes, not the replay's
hour). It prints, for the ladder as it stands:

1. hunks, settled, exact: the replay table's figures (a check that the cache is the replay's);
2. the hunks ordered by "finish order" resolved both ways: which order the author kept, by family and place;
3. signals for that order that a rule could read, each as the hunks it would flip (right / wrong / neither);
4. changelog appends (``changelog_union``) whose entries both carry issue numbers: ours first kept how often;
5. the best exact precision reachable at >= 70 % settled by declining whole categories, and by an oracle that
   declines only the misses;
6. with ``--unsettled``: the hunks no rule settles, how often each plain answer is the author's;
7. with ``--markdown``: the replay's tables (``bench/replay.py --markdown``), scored by the replay's own
   ``score`` -- the same figures as a full replay, but for the columns "examined" and "conflicted" (0 here) and
   the table of order rules left out (not measured here).

Signals and categories are read from the conflicts, never from the author's file; only the judging reads it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project is not installed

import merges.engine.resolvers.structured.merge as tree_merge  # noqa: E402
from merges.engine.conflicts import marker_collision, safe_marker_size  # noqa: E402
from merges.engine.mergefile import git_merge_file  # noqa: E402
from merges.engine.replay.judging import judge, score  # noqa: E402
from merges.engine.replay.modes import BATCH, _rev_list, scratch_objects, utf8  # noqa: E402
from merges.engine.replay.report import ReplayReport  # noqa: E402
from merges.engine.replay.transplant import transplant  # noqa: E402
from merges.engine.resolvers.context import Sides  # noqa: E402
from merges.engine.resolvers.ladder import COMPLEMENTARY, HunkOutcome, resolve_merged  # noqa: E402
from merges.engine.resolvers.structured import FINISH_ORDER  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replay import SUITES, _find, markdown  # noqa: E402

FLOOR = 0.70  # the coverage goal
_ordered = tree_merge.order_insertions
_theirs_first = [False]
_calls: list[dict[str, object]] = []


def _order_hook(profile, ours, theirs, left, right, rules):
    """The tier's own order, noted where it is finish order -- and reversed there when asked to."""
    found = _ordered(profile, ours, theirs, left, right, rules)
    if found is None or found[1] != FINISH_ORDER:
        return found
    _calls.append({"ours": [m.name for m in ours], "theirs": [m.name for m in theirs],
                   "left": [m.name for m in left[-1:]], "right": [m.name for m in right[:1]],
                   "family": "/".join(sorted({m.family for m in ours + theirs})),
                   "place": "top" if not left else "end" if not right else "between"})
    return (theirs + ours if _theirs_first[0] else found[0]), found[1]



def conflicts(repo: Path, stored: Path, commit: str) -> Iterator[dict[str, str]]:
    """The repository's conflicted files as ``replay_parallel`` builds them, from ``stored`` once it is there."""
    if not stored.exists():
        with scratch_objects(repo) as git, stored.open("w") as out:
            head = git.rev_parse(commit)
            parent = {e[0]: e[1] for e in _rev_list(git, "--no-merges", at=head, since=None) if len(e) == 2}
            triples = [(parent[c1], c1, c2) for c2, c1 in parent.items() if c1 in parent]
            for chunk in (triples[i: i + BATCH] for i in range(0, len(triples), BATCH)):
                edges = sorted({edge for p, c1, c2 in chunk for edge in ((p, c1), (c1, c2))})
                changed = dict(zip(edges, git.changed_paths_many(edges), strict=True))
                cases = [(p, c1, c2, f) for p, c1, c2 in chunk for f in sorted(changed[p, c1] & changed[c1, c2])]
                blobs = git.read_blobs([f"{rev}:{f}" for p, c1, c2, f in cases for rev in (p, c1, c2)])
                for i, (_p, c1, c2, path) in enumerate(cases):
                    texts = [utf8(b) for b in blobs[3 * i: 3 * i + 3]]
                    if texts[0] is None or texts[1] is None or texts[2] is None:
                        continue
                    moved = transplant(texts[0], texts[1], texts[2])
                    if moved is None or moved.moved_away(path, texts[2]):
                        continue
                    size = safe_marker_size([texts[0], texts[1], moved.text])
                    merged, hunks = git_merge_file(texts[0].encode(), texts[1].encode(), moved.text.encode(), size)
                    if hunks:
                        out.write(json.dumps({"c1": c1, "c2": c2, "path": path, "p": texts[0], "c1t": texts[1],
                                              "t": moved.text, "merged": merged.decode(), "c2t": texts[2],
                                              "size": size}) + "\n")
    for line in stored.open():
        yield json.loads(line)


@dataclasses.dataclass
class Tally:
    hunks: int = 0
    categories: dict[tuple[str, ...], list[int]] = dataclasses.field(
        default_factory=lambda: defaultdict(lambda: [0, 0]))  # hunks settled and judged, misses
    both_ways: list[dict[str, object]] = dataclasses.field(default_factory=list)
    numbered: Counter[tuple[str, bool]] = dataclasses.field(default_factory=Counter)
    unsettled: dict[str, Counter[str]] = dataclasses.field(default_factory=lambda: defaultdict(Counter))


def measure(case: dict[str, str], tally: Tally, unsettled: bool, table: ReplayReport) -> None:
    """One conflicted file: scored as the replay scores it, its finish-order hunks also resolved theirs first
    (the tier's order function is wrapped while this runs, and only then)."""
    tree_merge.order_insertions = _order_hook
    try:
        _measure(case, tally, unsettled, table)
    finally:
        tree_merge.order_insertions = _ordered


def _measure(case: dict[str, str], tally: Tally, unsettled: bool, table: ReplayReport) -> None:
    sides = Sides(case["p"], case["c1t"], case["t"])

    def resolve():
        return resolve_merged(case["merged"], case["path"], sides, COMPLEMENTARY, marker_size=int(case["size"]))

    _theirs_first[0] = False
    _calls.clear()
    res = resolve()
    score(table, res, case["c2t"], (case["p"], case["c1t"], case["t"]))
    tally.hunks += len(res.outcomes) or 1
    truth = case["c2t"]
    if not res.outcomes or marker_collision([truth]) and not marker_collision([case["p"], case["c1t"], case["t"]]):
        return  # committed with conflict markers: the replay does not judge it either
    calls = list(_calls)
    verdicts = judge(res, truth) if res.resolved_hunks else [None] * len(res.outcomes)
    for outcome, verdict in zip(res.outcomes, verdicts, strict=True):
        if outcome.resolver and verdict is not None:
            category = tally.categories[(outcome.resolver, outcome.order, outcome.kind)]
            category[0] += 1
            category[1] += not verdict.exact
        if outcome.resolver == "changelog_union" and verdict is not None:
            ours, theirs = _numbers(outcome.hunk.ours), _numbers(outcome.hunk.theirs)
            if ours and theirs:
                relation = ("ours lower" if max(ours) < min(theirs) else "ours higher" if min(ours) > max(theirs)
                            else "mixed")
                tally.numbered[relation, verdict.exact] += 1
    finish = [i for i, o in enumerate(res.outcomes) if FINISH_ORDER in o.order and verdicts[i] is not None]
    if finish:
        _theirs_first[0] = True
        other = judge(resolve(), truth)
        _theirs_first[0] = False
        if len(finish) == 1 and len(calls) == 1:
            a, b = verdicts[finish[0]], other[finish[0]]
            kept = "neither" if not (a and a.exact) and not (b and b.exact) else "ours" if a and a.exact else "theirs"
            tally.both_ways.append({**calls[0], "kept": kept, "case": case})
    if unsettled:
        _unsettled(res, truth, tally)


def _unsettled(res, truth: str, tally: Tally) -> None:
    """Each hunk no rule settled, answered four plain ways: which of them is the author's?"""
    open_ = [i for i, o in enumerate(res.outcomes) if not o.resolver]
    answers = {"ours": lambda h: h.ours, "theirs": lambda h: h.theirs, "ours+theirs": lambda h: h.ours + h.theirs,
               "theirs+ours": lambda h: h.theirs + h.ours}
    right: dict[int, list[str]] = defaultdict(list)
    for answer, lines in answers.items():
        alt = dataclasses.replace(res, outcomes=[o if o.resolver else HunkOutcome(o.hunk, "x", list(lines(o.hunk)))
                                                 for o in res.outcomes])
        for i, verdict in enumerate(judge(alt, truth)):
            if i in open_ and verdict is not None and verdict.exact:
                right[i].append(answer)
    for i in open_:
        hunk = res.outcomes[i].hunk
        base_blank = not any(line.strip() for line in hunk.base)
        shape = "both insert" if base_blank else "both edit" if hunk.ours and hunk.theirs else "one deletes"
        tally.unsettled[shape]["hunks"] += 1
        for answer in right[i]:
            tally.unsettled[shape][answer] += 1


_ISSUE = re.compile(r"#(\d+)")


def _numbers(lines: list[str]) -> list[int]:
    return [int(n) for line in lines for n in _ISSUE.findall(line)]


# -- signals for the order of two insertions, read from names and the sides' texts ---------------------------

def _tokens(name: str) -> list[str]:
    name = name.split(" ", 1)[-1].split("(")[0]
    return [t.lower() for t in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]


def _affinity(a: str | None, b: str | None) -> int:
    """Words two names begin with alike (``test_keyring_cli_get`` and ``test_keyring_cli_set``: three)."""
    if a is None or b is None or a.split(" ", 1)[0] != b.split(" ", 1)[0]:
        return 0
    same = 0
    for x, y in zip(_tokens(a), _tokens(b), strict=False):
        if x != y:
            break
        same += 1
    return same


def name_affinity(call: dict) -> str:
    """Theirs first when that joins each name to a more alike neighbour than finish order does."""
    left, right = (call["left"] or [None])[0], (call["right"] or [None])[0]
    ours, theirs = call["ours"], call["theirs"]

    def joined(first: list[str], second: list[str]) -> int:
        return _affinity(left, first[0]) + _affinity(first[-1], second[0]) + _affinity(second[-1], right)

    return "theirs" if joined(theirs, ours) > joined(ours, theirs) else "ours"


def reference_order(call: dict) -> str:
    """Theirs first when its name is used earlier in its side's file than ours is in ours (outside themselves)."""
    case = call["case"]

    def first_use(text: str, names: list[str]) -> int | None:
        found = [m.start() for n in names if len(word := re.sub(r"\W.*", "", n.split(" ", 1)[-1])) > 2
                 for m in [re.search(rf"\b{re.escape(word)}\b", text)] if m]
        return text.count("\n", 0, min(found)) if found else None

    ours, theirs = first_use(case["c1t"], call["ours"]), first_use(case["t"], call["theirs"])
    return "theirs" if ours is not None and theirs is not None and theirs < ours else "ours"


def alphabetical(call: dict) -> str:
    """Theirs first when its name sorts first and the neighbours on both sides are in sorted order."""
    names = [n.split(" ", 1)[-1].lower() for n in call["left"] + call["right"]]
    if len(names) < 2 or names != sorted(names):
        return "ours"
    return "theirs" if call["theirs"][0].lower() < call["ours"][0].lower() else "ours"


def report(tally: Tally) -> None:
    settled = sum(n for n, _ in tally.categories.values())
    misses = sum(m for _, m in tally.categories.values())
    floor = int(FLOOR * tally.hunks + 0.999)
    print(f"1. hunks {tally.hunks}, settled and judged {settled}, exact {settled - misses} "
          f"({(settled - misses) / settled:.1%}); 70 % settled = {floor} hunks\n")
    print("2. finish order resolved both ways: the order the author kept (ours first / theirs first / neither)")
    kept = Counter((c["family"], c["place"], c["kept"]) for c in tally.both_ways)
    for family, place in sorted({(f, p) for f, p, _ in kept}):
        print(f"   {family:12} {place:8} " + " / ".join(str(kept[family, place, k]) for k in ("ours", "theirs",
                                                                                              "neither")))
    print("\n3. signals for that order: hunks flipped to theirs first -- right / wrong / author kept neither")
    for signal in (name_affinity, reference_order, alphabetical):
        flips = Counter(c["kept"] for c in tally.both_ways if signal(c) == "theirs")
        print(f"   {signal.__name__:16} {sum(flips.values())} flipped: {flips['theirs']} / {flips['ours']} / "
              f"{flips['neither']}")
    print("\n4. changelog appends, both sides' entries with issue numbers: author kept ours first / not")
    for relation in ("ours lower", "ours higher", "mixed"):
        print(f"   {relation:12} {tally.numbered[relation, True]} / {tally.numbered[relation, False]}")
    print("\n5. declining whole categories (resolver, order rule, container) at >= 70 % settled")
    room = settled - floor
    best: dict[int, tuple[int, list[tuple[str, ...]]]] = {0: (0, [])}
    for key, (n, miss) in tally.categories.items():
        for weight, (removed, keys) in list(best.items()):
            if weight + n <= room and best.get(weight + n, (-1, []))[0] < removed + miss:
                best[weight + n] = (removed + miss, [*keys, key])
    weight, (removed, keys) = max(best.items(),
                                  key=lambda kv: (settled - kv[0] - misses + kv[1][0]) / (settled - kv[0]))
    kept_hunks = settled - weight
    print(f"   best: decline {weight} hunks holding {removed} misses: {kept_hunks - misses + removed}/{kept_hunks} "
          f"exact = {(kept_hunks - misses + removed) / kept_hunks:.2%} ({kept_hunks / tally.hunks:.1%} settled)")
    for key in keys:
        hunks, missed = tally.categories[key]
        print(f"     {' / '.join(k for k in key if k)}: {hunks} hunks, {missed} misses")
    oracle = settled - min(room, misses)
    print(f"   oracle (declines only misses, {min(room, misses)} of them): {settled - misses}/{oracle} exact = "
          f"{(settled - misses) / oracle:.2%}; to reach 98 % at {floor} settled, misses must fall to "
          f"{int(0.02 * floor)}: {misses - room - int(0.02 * floor)} more must be answered right")
    if tally.unsettled:
        print("\n6. hunks no rule settles: the author's text is ...")
        for shape, counts in sorted(tally.unsettled.items()):
            print(f"   {shape:12} {counts['hunks']} hunks: " + ", ".join(
                f"{answer} {counts[answer]}" for answer in ("ours", "theirs", "ours+theirs", "theirs+ours")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=SUITES, default="all")
    parser.add_argument("--mirror", type=Path, required=True, help="where the suite's repositories are")
    parser.add_argument("--cache", type=Path, required=True, help="where the enumerated conflicts are kept")
    parser.add_argument("--unsettled", action="store_true", help="also answer the unsettled hunks plain ways (slow)")
    parser.add_argument("--markdown", action="store_true", help="end with the replay's tables for these conflicts")
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    tally, tables = Tally(), []
    for name, commit in SUITES[args.suite].items():
        tables.append(ReplayReport("parallel", COMPLEMENTARY, name.replace("/", "+"), commit))
        stored = args.cache / (name.replace("/", "+") + ".jsonl")
        for case in conflicts(Path(_find(args.mirror, name)), stored, commit):
            measure(case, tally, args.unsettled, tables[-1])
        print(f"   {name}: {tally.hunks} hunks so far", file=sys.stderr, flush=True)
    report(tally)
    if args.markdown:
        print("\n" + markdown(tables))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
