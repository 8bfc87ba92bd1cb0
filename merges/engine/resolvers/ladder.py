"""The deterministic tier: each conflict hunk offered to named resolvers, cheapest first.

A resolver returns the lines that settle a hunk or None to decline. Precision comes first -- a wrong
automatic resolution is worse than a conflict shown to a person -- so the rule sets differ by what is
known of the sides' intent:

- ``history-safe`` (any two branches): only what is right whatever the sides meant.
- ``complementary`` (sibling tasks of one ticket, both changes meant to land): also keeps both sides'
  changes when they touch without overlapping, or insert at one point in a known order; then, for the
  hunks still open, the structured tier (``syntax``): the file merged by its syntax tree, each hunk it
  settles recorded with the commutative parent's kind and the order rule ("kept both: class members,
  sorted by name").

Recorded resolutions (a reviewer's earlier answer to the same conflict) are in both sets.

Public API::

    resolve_file(detail, rule_set="history-safe" | "complementary", store=None) -> FileResolution
    resolve_merged(merged_text, path, Sides(base, ours, theirs), rule_set, store) -> FileResolution
    FileResolution.outcomes  # per hunk: HunkOutcome(hunk, resolver name or None, resolved lines or None,
                             #                    kind and order: the structured tier's provenance)
    FileResolution.text      # the whole resolved file when every hunk is settled, else None
    FileResolution.render()  # settled hunks replaced, the others left with conflict markers
    RecordedResolutions / ResolutionStore / conflict_key  # reviewer-approved resolutions reused
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from merges.engine.conflicts import MARKER_SIZE, TEXT_KINDS, ConflictDetail, Hunk, marker_collision, parse_hunks
from merges.engine.resolvers import linemerge, unions, whitespace  # submodules, not the package's names
from merges.engine.resolvers.context import HunkContext, Sides, layout_key
from merges.engine.resolvers.recorded import ResolutionStore, recorded
from merges.engine.resolvers.structured import ORDER_RULES
from merges.engine.resolvers.syntax import STRUCTURED, cut_by_syntax

HISTORY_SAFE, COMPLEMENTARY = "history-safe", "complementary"
RULE_SETS = (HISTORY_SAFE, COMPLEMENTARY)
RECORDED = "recorded"


@dataclass(frozen=True)
class Resolver:
    name: str
    resolve: Callable[[HunkContext], list[str] | None]


HISTORY_SAFE_RESOLVERS = (
    Resolver("same_change", whitespace.same_change),
    Resolver("whitespace_only", whitespace.whitespace_only),
)
COMPLEMENTARY_RESOLVERS = (
    Resolver("line_merge", linemerge.line_merge),
    Resolver("sorted_union", unions.sorted_union),
    Resolver("changelog_union", unions.changelog_union),
)


def resolvers_for(rule_set: str, store: ResolutionStore | None = None) -> list[Resolver]:
    """The resolvers of ``rule_set`` in the order they are tried."""
    if rule_set not in RULE_SETS:
        raise ValueError(f"unknown rule set {rule_set!r}; expected one of {', '.join(RULE_SETS)}")
    chain = list(HISTORY_SAFE_RESOLVERS)
    if store is not None:
        chain.append(Resolver(RECORDED, recorded(store)))
    if rule_set == COMPLEMENTARY:
        chain += COMPLEMENTARY_RESOLVERS
    return chain


@dataclass(frozen=True)
class HunkOutcome:
    hunk: Hunk
    resolver: str | None  # the resolver that settled the hunk; None: it is left to the next tier
    lines: list[str] | None
    kind: str = ""  # structured tier: the commutative parent ("class members") ...
    order: str = ""  # ... and the rule that ordered what both sides put in it ("sorted by name")

    @property
    def provenance(self) -> str:
        """Why the structured tier could keep both sides here, for people: "" for the other resolvers."""
        return f"kept both: {self.kind}, {self.order}" if self.kind else ""


@dataclass
class FileResolution:
    path: str
    rule_set: str
    outcomes: list[HunkOutcome] = field(default_factory=list)
    reason: str = ""  # why no text resolver could try this file (binary, modify/delete, ...)
    merged_lines: list[str] = field(default_factory=list, repr=False)  # git's text, markers included
    marker_size: int = MARKER_SIZE

    @property
    def settled(self) -> bool:
        return not self.reason and all(o.resolver for o in self.outcomes)

    @property
    def resolved_hunks(self) -> int:
        return sum(1 for o in self.outcomes if o.resolver)

    @property
    def text(self) -> str | None:
        """The whole resolved file when every hunk is settled, else None."""
        return self.render() if self.settled else None

    def render(self, marker_size: int | None = None) -> str:
        """git's text with the settled hunks replaced; the others keep their markers (of ``marker_size``)."""
        size = marker_size or self.marker_size
        lines: list[str] = []
        position = 0
        for outcome in self.outcomes:
            hunk = outcome.hunk
            lines += self.merged_lines[position : hunk.start - 1]
            region = self.merged_lines[hunk.start - 1 : hunk.end]
            lines += outcome.lines if outcome.lines is not None else _resize_markers(region, hunk, self.marker_size,
                                                                                      size)
            position = hunk.end
        return "\n".join(lines + self.merged_lines[position:])


def _resize_markers(region: list[str], hunk: Hunk, old: int, new: int) -> list[str]:
    if old == new:
        return region
    marker_rows = [0, len(hunk.ours) + 1 + (len(hunk.base) + 1 if hunk.has_base else 0), len(region) - 1]
    if hunk.has_base:
        marker_rows.append(len(hunk.ours) + 1)
    resized = list(region)
    for row in marker_rows:
        resized[row] = region[row][0] * new + region[row][old:]
    return resized


def resolve_file(conflict: ConflictDetail, rule_set: str = HISTORY_SAFE, store: ResolutionStore | None = None,
                 order_rules: Collection[str] = ORDER_RULES) -> FileResolution:
    """Offer every hunk of a conflicted path (from ``describe_conflicts``) to the ``rule_set`` ladder."""
    base = "" if conflict.kind == "add/add" else conflict.base_text  # both sides created the file
    texts = (base, conflict.ours_text, conflict.theirs_text)
    if conflict.kind not in TEXT_KINDS:
        return FileResolution(conflict.path, rule_set, reason=f"{conflict.kind} conflict: a person decides")
    if conflict.merged_text is None or None in texts:
        return FileResolution(conflict.path, rule_set, reason="no UTF-8 text to resolve: a person decides")
    if marker_collision(texts):
        return FileResolution(conflict.path, rule_set, reason="a side has lines that read as conflict markers")
    return resolve_merged(conflict.merged_text, conflict.path, Sides(*texts), rule_set, store,
                          order_rules=order_rules)


def resolve_merged(merged_text: str, path: str, sides: Sides, rule_set: str = HISTORY_SAFE,
                   store: ResolutionStore | None = None, marker_size: int = MARKER_SIZE,
                   order_rules: Collection[str] = ORDER_RULES) -> FileResolution:
    """Offer every hunk of git's diff3-style merged text to the ``rule_set`` ladder.

    Precondition: no line of the sides reads as a marker of ``marker_size`` (see ``safe_marker_size``).
    ``order_rules``: the order rules the structured tier may use (replay measures each by leaving it out).
    """
    chain = resolvers_for(rule_set, store)
    lines = merged_text.split("\n")
    hunks = parse_hunks(merged_text, marker_size)
    result = FileResolution(path, rule_set, merged_lines=lines, marker_size=marker_size)
    if not hunks:
        result.reason = "git reported a conflict but left no hunks"
        return result
    for index, hunk in enumerate(hunks):
        previous_end = hunks[index - 1].end if index else 0
        next_start = hunks[index + 1].start - 1 if index + 1 < len(hunks) else len(lines)
        ctx = HunkContext(hunk, path, sides, before=lines[previous_end : hunk.start - 1],
                          after=lines[hunk.end : next_start])
        at_end = index + 1 == len(hunks) and not any(ctx.after)
        result.outcomes.append(_settle(ctx, chain, at_end))
    if rule_set == COMPLEMENTARY and not result.settled:
        _settle_by_syntax(result, merged_text, hunks, sides, order_rules)
    return result


def _settle_by_syntax(result: FileResolution, merged_text: str, hunks: list[Hunk], sides: Sides,
                      order_rules: Collection[str]) -> None:
    """The structured tier takes the hunks the line rules left, when its whole-file answer agrees with theirs
    on the hunks they settled (layout aside): the file then reads as the checked structured merge."""
    cuts = cut_by_syntax(merged_text, hunks, result.path, sides, order_rules)
    if cuts is None:
        return
    if any(o.resolver and layout_key(o.lines or []) != layout_key(cut.lines)
           for o, cut in zip(result.outcomes, cuts, strict=True)):
        return
    result.outcomes = [o if o.resolver or not cut.kind else HunkOutcome(o.hunk, STRUCTURED, cut.lines, cut.kind,
                                                                        cut.order)
                       for o, cut in zip(result.outcomes, cuts, strict=True)]


def _settle(ctx: HunkContext, chain: list[Resolver], at_end: bool) -> HunkOutcome:
    hunk = ctx.hunk
    if not hunk.has_base or (at_end and _lacks_final_newline(ctx.sides)):
        return HunkOutcome(hunk, None, None)
    for resolver in chain:
        lines = resolver.resolve(ctx)
        if lines is not None:
            return HunkOutcome(hunk, resolver.name, lines)
    return HunkOutcome(hunk, None, None)


def _lacks_final_newline(sides: Sides) -> bool:
    """git ends a side's last line for its markers: a hunk at the end cannot tell whether it had a newline."""
    return any(text and not text.endswith("\n") for text in (sides.base, sides.ours, sides.theirs))
