"""The review page's diffs: context stops at the neighbouring hunks, changed words are marked, code is
escaped (the panes' HTML is built by hand)."""

from __future__ import annotations

from coordination.review.diffs import CONTEXT, MAX_PAIRED_CHARS, around, line_diff, pane_html
from merges.engine.conflicts import parse_hunks


def merged_with(conflicts: dict[int, tuple[str, str]], lines: int = 12) -> tuple[list[str], list[dict]]:
    out = []
    for number in range(1, lines + 1):
        if number in conflicts:
            ours, theirs = conflicts[number]
            out += ["<<<<<<< ours", ours, "||||||| base", f"l{number}", "=======", theirs, ">>>>>>> theirs"]
        else:
            out.append(f"l{number}")
    text = "\n".join(out) + "\n"
    return text.split("\n"), [h.as_dict() for h in parse_hunks(text)]


def test_context_is_three_lines_cut_at_the_file_ends_and_at_neighbouring_hunks():
    merged, hunks = merged_with({2: ("a", "b"), 5: ("c", "d"), 11: ("e", "f")})
    texts = [([line.text for line in before], [line.text for line in after])
             for before, after in (around(merged, hunks, i) for i in range(3))]
    assert texts == [(["l1"], ["l3", "l4"]),  # the file starts; the next hunk's markers start after l4
                     (["l3", "l4"], ["l6", "l7", "l8"]),
                     (["l8", "l9", "l10"], ["l12"])]  # the file's final newline is no line
    assert CONTEXT == 3


def test_changed_words_are_marked_on_both_lines_of_a_replacement():
    diff = line_diff(["timeout = 10  # seconds"], ["timeout = 30  # seconds"])
    assert [(d.op, [(s.text, s.changed) for s in d.segments]) for d in diff] == [
        ("-", [("timeout = ", False), ("10", True), ("  # seconds", False)]),
        ("+", [("timeout = ", False), ("30", True), ("  # seconds", False)])]
    long = "x" * MAX_PAIRED_CHARS
    assert all(d.segments is None for d in line_diff([long], [long + "y"]))  # marked whole: too long to pair
    added = line_diff(["a"], ["a", "b"])
    assert [(d.op, d.text, d.segments) for d in added] == [(" ", "a", None), ("+", "b", None)]


def test_a_pane_escapes_the_code_it_shows():
    html = pane_html(line_diff(["<b>x</b>"], ["<script>alert('x')</script>"]))
    assert "<script" not in html and "<b>" not in html
    assert "&lt;<mark>script</mark>&gt;<mark>alert(&#x27;</mark>" in html
    assert html.startswith('<pre class="diff"><span class="d del">-') and "<mark>" in html
    assert pane_html([], "(nothing)") == '<pre class="diff">(nothing)</pre>'
