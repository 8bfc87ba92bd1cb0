"""Three-way merge of syntax trees: whole nodes from one side where only one side changed them, and the
children of commutative containers merged as sets where both did.

Walking down from the root, a node that only one side changed is taken from that side. A node both
changed is merged child by child when its children line up (same number, same kinds, the same names where the
profile gives names) and only if somewhere below a container settles the difference -- otherwise two
edits of one statement would be spliced together. A container's members are matched by signature; each
side's insertions, deletions and edits of distinct members are combined, and the members both inserted at one
place are ordered by the rules in ``order``. Anything else declines (returns None).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from merges.engine.resolvers.structured.gaps import gap_before
from merges.engine.resolvers.structured.layout import Layout, Member, crosses_boundaries, name_uniquely, read_layout
from merges.engine.resolvers.structured.model import AS_PLACED, ORDER_RULES, Container, Node, Profile, text
from merges.engine.resolvers.structured.order import order_insertions

RULE_RANK = ("sorted by name", "grouped by prefix", "newest first", "finish order", AS_PLACED)


@dataclass
class Region:
    """Where a container both sides changed got new or changed members (one region per run of them), as
    bytes of the merged text, with the container's kind and the rule that ordered the new members."""

    start: int
    end: int
    kind: str
    order: str


@dataclass
class Piece:
    """Merged text with what must be verified in it: (start, end, node type) of every member placed, and the
    regions settled. Offsets are relative to the piece."""

    data: bytes = b""
    checks: list[tuple[int, int, str]] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    structural: bool = False  # a container below settled something


Placed = tuple[Member, Piece, str | None]  # a member, its merged text, the rule that placed it if it is new


@dataclass
class _Run:
    """Consecutive merged members that are new or changed: one settled region."""

    start: int
    end: int
    last: int  # index of its last member
    rules: set[str] = field(default_factory=set)
    families: set[str] = field(default_factory=set)


class Out:
    """Builds a piece from bytes and other pieces, moving their offsets along."""

    def __init__(self) -> None:
        self.piece = Piece()
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> int:
        offset = self.size
        self.chunks.append(data)
        self.size += len(data)
        return offset

    def add_piece(self, piece: Piece) -> int:
        offset = self.add(piece.data)
        self.piece.checks += [(offset + s, offset + e, kind) for s, e, kind in piece.checks]
        self.piece.regions += [Region(offset + r.start, offset + r.end, r.kind, r.order) for r in piece.regions]
        self.piece.structural |= piece.structural
        return offset

    def done(self) -> Piece:
        self.piece.data = b"".join(self.chunks)
        return self.piece


def trivial(base: bytes, ours: bytes, theirs: bytes) -> bytes | None:
    """The three-way merge of a piece of text as a whole: None when both sides changed it differently."""
    if ours == base or ours == theirs:
        return theirs
    if theirs == base:
        return ours
    return None


class TreeMerge:
    """Merges three parsed versions of one file; ``srcs`` are base, ours and theirs as bytes; ``rules``: the
    order rules insertions at one place may follow."""

    def __init__(
        self, profile: Profile, srcs: tuple[bytes, bytes, bytes], rules: Collection[str] = ORDER_RULES
    ) -> None:
        self.profile = profile
        self.srcs = srcs
        self.rules = rules

    def node(self, b: Node, o: Node, t: Node) -> Piece | None:
        sb, so, st = self.srcs
        tb, to, tt = text(b, sb), text(o, so), text(t, st)
        merged = trivial(tb, to, tt)
        if merged is not None:
            return Piece(merged)
        if not b.type == o.type == t.type:
            return None
        specs = [self.profile.container(n, s) for n, s in ((b, sb), (o, so), (t, st))]
        if specs[0] is not None and specs[0] == specs[1] == specs[2]:
            return self.container(specs[0], b, o, t)
        return self.children(b, o, t)

    def children(self, b: Node, o: Node, t: Node) -> Piece | None:
        """A node both sides changed that is not a container: child by child, when the children line up."""
        sb, so, st = self.srcs
        kids = [list(b.children), list(o.children), list(t.children)]
        if not kids[0] or len({len(k) for k in kids}) != 1:
            return None
        out, changed = Out(), set()
        cursors = [b.start_byte, o.start_byte, t.start_byte]
        for kb, ko, kt in [*zip(*kids, strict=True), (None, None, None)]:
            ends = [n.start_byte if n else p.end_byte for n, p in zip((kb, ko, kt), (b, o, t), strict=True)]
            gaps = [src[c:e] for src, c, e in zip(self.srcs, cursors, ends, strict=True)]
            if trivial(*gaps) is None:
                return None
            changed |= _sides_changed(*gaps)
            out.add(trivial(*gaps) or b"")
            if kb is None or ko is None or kt is None:
                break
            if not kb.type == ko.type == kt.type:
                return None
            pieces = text(kb, sb), text(ko, so), text(kt, st)
            one_sided = trivial(*pieces)
            if one_sided is not None:
                changed |= _sides_changed(*pieces)
                out.add(one_sided)
            else:
                names = {self.profile.signature(n, s) for n, s in ((kb, sb), (ko, so), (kt, st))}
                merged = self.node(kb, ko, kt) if len(names) == 1 else None
                if merged is None:
                    return None
                out.add_piece(merged)
            cursors = [kb.end_byte, ko.end_byte, kt.end_byte]
        piece = out.done()
        if changed == {"ours", "theirs"} and not piece.structural:
            return None  # two edits of one node side by side: a conflict this tier cannot judge
        return piece

    def container(self, spec: Container, b: Node, o: Node, t: Node) -> Piece | None:
        sb, so, st = self.srcs
        lb, lo, lt = (read_layout(n, spec, self.profile, s) for n, s in ((b, sb), (o, so), (t, st)))
        if lb is None or lo is None or lt is None:
            return None
        layouts = [lb, lo, lt]
        prefix, suffix = trivial(lb.prefix, lo.prefix, lt.prefix), trivial(lb.suffix, lo.suffix, lt.suffix)
        if prefix is None or suffix is None:
            return self.children(b, o, t)  # e.g. a list in a section's text: the change is below, not here
        repeated = lb.repeated | lo.repeated | lt.repeated | _imported_twice(lb, lo, lt)
        if repeated:
            for layout in layouts:
                name_uniquely(layout, repeated)
            if not _same_repeats(lb, lo, lt):
                return None
        if crosses_boundaries(lb, lo) or crosses_boundaries(lb, lt):
            return None
        plan = self._plan(lb, lo, lt)
        if plan is None:
            return None
        sequence, sides = plan
        trailing = trivial(*(bytes([lay.trailing_separator]) for lay in layouts)) == b"\x01"
        base = {m.sig: m.content for m in lb.members}
        out, runs = Out(), list[_Run]()
        out.add(prefix)
        for i, (chosen, core, rule) in enumerate(sequence):
            if i:
                out.add(
                    gap_before(chosen, sequence[i - 1][0], layouts, rule is not None and sequence[i - 1][2] is not None)
                )
            start = out.add(chosen.lead)
            offset = out.add_piece(core)
            out.piece.checks.append((offset, offset + len(core.data), chosen.node.type))
            out.add(chosen.term)
            if spec.separator and (i < len(sequence) - 1 or trailing):
                out.add(spec.separator)
            out.add(chosen.post)
            if rule is None and (base[chosen.sig] == chosen.content or core.structural):
                continue  # unchanged here (or merged below, with a region of its own)
            if not runs or runs[-1].last != i - 1:
                runs.append(_Run(start, out.size, i))
            run = runs[-1]
            run.end, run.last = out.size, i
            run.rules |= {rule} if rule else set()
            run.families.add(chosen.family if rule else "edited")
        out.add(suffix)
        piece = out.done()
        if sides != {"ours", "theirs"}:
            return piece  # one side's changes here, the other's inside a member merged below
        for run in runs or [_Run(0, len(piece.data), 0)]:  # only deletions: the container as a whole
            kind = "imports" if run.families == {"import"} else spec.label
            order = ", ".join(rule for rule in RULE_RANK if rule in run.rules) or AS_PLACED
            piece.regions.append(Region(run.start, run.end, kind, order))
        piece.structural = True
        return piece

    def _plan(self, lb: Layout, lo: Layout, lt: Layout) -> tuple[list[Placed], set[str]] | None:
        """The merged members in order -- each with its merged text and, when new, the rule that placed it --
        and which sides changed the members here (a member both changed and merged below does not count);
        None on any conflict between the sides."""
        base = lb.index
        slots_o, slots_t = _slots(lb, lo), _slots(lb, lt)
        if slots_o is None or slots_t is None:
            return None
        index_o, index_t = lo.index, lt.index
        theirs_new = {m.sig: m for ms in slots_t.values() for m in ms}
        for members in slots_o.values():
            for member in members:
                twin = theirs_new.get(member.sig)
                if twin is not None and twin.content != member.content:
                    return None  # both sides added a child of the same name, differently
        for slot in slots_t:
            slots_t[slot] = [m for m in slots_t[slot] if m.sig not in index_o]  # the same child added twice
        kept: dict[int, tuple[Member, Piece]] = {}
        sides = {name for name, slots in (("ours", slots_o), ("theirs", slots_t)) if any(slots.values())}
        for i, mb in enumerate(lb.members):
            mo = lo.members[index_o[mb.sig]] if mb.sig in index_o else None
            mt = lt.members[index_t[mb.sig]] if mb.sig in index_t else None
            changed = {name for name, m in (("ours", mo), ("theirs", mt)) if m is None or m.content != mb.content}
            if mo is None or mt is None:
                sides |= changed
                survivor = mo or mt
                if survivor is not None and survivor.content != mb.content:
                    return None  # one side deleted what the other edited
                if survivor is None and _replaced_by_both(i, lb, index_o, index_t, slots_o, slots_t):
                    return None
                continue
            resolved = self._member(mb, mo, mt)
            if resolved is None:
                return None
            if not resolved[1].structural:  # a member both changed is counted where it was merged
                sides |= changed
            kept[i] = resolved
        sequence: list[Placed] = []
        survivors = [lb.members[i] for i in sorted(kept)]
        for slot in range(-1, len(lb.members)):
            if slot in kept:
                sequence.append((*kept[slot], None))
            ours, theirs = slots_o.get(slot, []), slots_t.get(slot, [])
            if ours and theirs:
                left = [m for m in survivors if base[m.sig] <= slot]
                right = [m for m in survivors if base[m.sig] > slot]
                found = order_insertions(self.profile, ours, theirs, left, right, self.rules)
                if found is None:
                    return None  # no rule allowed here orders them
                ordered, rule = found
            else:
                ordered, rule = ours or theirs, AS_PLACED
            sequence += [(m, Piece(m.core), rule) for m in ordered]
        return sequence, sides

    def _member(self, mb: Member, mo: Member, mt: Member) -> tuple[Member, Piece] | None:
        """A base member both sides kept: the changed version, or both changes merged inside it."""
        if mo.content == mb.content or mo.content == mt.content:
            return mt, Piece(mt.core)
        if mt.content == mb.content:
            return mo, Piece(mo.core)
        lead, term, post = (
            trivial(mb.lead, mo.lead, mt.lead),
            trivial(mb.term, mo.term, mt.term),
            trivial(mb.post, mo.post, mt.post),
        )
        if lead is None or term is None or post is None:
            return None
        core = self.node(mb.node, mo.node, mt.node)
        if core is None:
            return None
        core.data = core.data.rstrip()  # some grammars end a node after its newline; here that is layout
        core.regions = [Region(r.start, min(r.end, len(core.data)), r.kind, r.order) for r in core.regions]
        merged = Member(**{**mo.__dict__, "lead": lead, "term": term, "post": post, "core": core.data})
        return merged, core


def _sides_changed(base: bytes, ours: bytes, theirs: bytes) -> set[str]:
    return {name for name, data in (("ours", ours), ("theirs", theirs)) if data != base}


def _imported_twice(lb: Layout, lo: Layout, lt: Layout) -> set[str]:
    """Import lines of one module that both sides added, differently: two lines may import from one module,
    so these are known by their text (two definitions of one name, on the contrary, collide)."""
    new = {m.sig: m for m in lo.members if m.sig not in lb.index and m.family == "import"}
    return {m.sig for m in lt.members if m.sig in new and new[m.sig].content != m.content}


def _same_repeats(*layouts: Layout) -> bool:
    """Members that share even their text (two identical lines) are matched by position, which is only safe
    when no side touched any of them."""
    names = set().union(*(layout.repeated for layout in layouts))
    copies = [[m.content for m in layout.members if m.repeat in names] for layout in layouts]
    return copies[0] == copies[1] == copies[2]


def _slots(base: Layout, side: Layout) -> dict[int, list[Member]] | None:
    """A side's new members by the base member they follow (-1: the top); None when the side reordered the
    members it kept (a move is not an insertion)."""
    index = base.index
    slots: dict[int, list[Member]] = {}
    last = -1
    for member in side.members:
        position = index.get(member.sig)
        if position is None:
            slots.setdefault(last, []).append(member)
        elif position < last:
            return None
        else:
            last = position
    return slots


def _replaced_by_both(i: int, base: Layout, index_o: dict[str, int], index_t: dict[str, int],
                     slots_o: dict[int, list[Member]], slots_t: dict[int, list[Member]]) -> bool:
    """Both sides removed member ``i`` and both inserted where it stood: each may have rewritten it (a changed
    import line, a renamed function), and keeping both rewrites would duplicate it."""
    low = i - 1
    while low >= 0 and not (base.members[low].sig in index_o and base.members[low].sig in index_t):
        low -= 1
    places = range(low, i)
    return any(slot in places for slot in slots_o) and any(slot in places for slot in slots_t)
