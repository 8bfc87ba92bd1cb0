"""Each deterministic resolver: what it must settle, what it must leave to a person."""

from __future__ import annotations

import pytest

from merges.engine.conflicts import ConflictDetail, describe_conflicts, parse_hunks
from merges.engine.mergefile import merge_bytes
from merges.engine.resolvers.ladder import COMPLEMENTARY, HISTORY_SAFE, FileResolution, resolve_file
from merges.engine.resolvers.recorded import RecordedResolutions, conflict_key
from tests.gitrepo import Repo


def resolve(base: str, ours: str, theirs: str, path: str = "module.py", rules: str = COMPLEMENTARY,
            store=None) -> FileResolution:
    merged = merge_bytes(base.encode(), ours.encode(), theirs.encode(), path, rules, store)
    assert merged.resolution is not None, "git merged these cleanly: no hunk to resolve"
    return merged.resolution


def settled_by(resolution: FileResolution) -> list[str | None]:
    return [o.resolver for o in resolution.outcomes]


def lines(*items: str) -> str:
    return "".join(f"{item}\n" for item in items)


NUMBERED = [f"value_{i} = {i}" for i in range(1, 11)]


def numbered(**changes: str) -> str:
    """The ten numbered lines, with ``n<k>=text`` replacing line k (an empty text deletes it)."""
    result = []
    for number, line in enumerate(NUMBERED, start=1):
        new = changes.get(f"n{number}", line)
        result += [new] if new else []
    return lines(*result)


# -- same_change / whitespace_only (history-safe) -----------------------------------------------

def test_same_change_laid_out_differently_keeps_ours():
    result = resolve(numbered(), numbered(n5="total = compute(a, b)"), numbered(n5="total  =  compute(a, b)   "),
                     rules=HISTORY_SAFE)
    assert settled_by(result) == ["same_change"]
    assert result.text == numbered(n5="total = compute(a, b)")


def test_same_words_at_another_indentation_are_not_the_same_change():
    base = lines("if ready:", "    start()", "stop()")
    result = resolve(base, lines("if ready:", "    start()", "    go()"), lines("if ready:", "    start()", "go()"),
                     rules=HISTORY_SAFE)
    assert settled_by(result) == [None] and result.text is None


def test_whitespace_only_side_yields_to_the_side_that_changed_the_words():
    base = numbered()
    ours = numbered(n5="value_5 = 5    ", n6="value_6  =  6")  # trailing spaces, inner spaces
    theirs = numbered(n5="value_5 = 50", n6="value_6 = 60")
    result = resolve(base, ours, theirs, rules=HISTORY_SAFE)
    assert settled_by(result) == ["whitespace_only"]
    assert result.text == theirs


def test_whitespace_only_keeps_the_respacing_of_lines_the_change_left_alone():
    # sharkdp/fd 718f723d31 (src/walk.rs): ours trimmed a trailing space from a comment, theirs changed the
    # line below it; the author kept both (so did every such hunk of the eighteen replayed repositories)
    comment = "    // Spawn a job thread that will listen for and execute inputs."
    spawn, changed = "    let handle = thread::spawn(move || exec::job(rx, cmd));", "exec::job(rx, base, cmd)"
    base = lines("fn spawn() {", comment + " ", spawn, "}")
    ours = lines("fn spawn() {", comment, spawn, "}")
    theirs = lines("fn spawn() {", comment + " ", spawn.replace("exec::job(rx, cmd)", changed), "}")
    result = resolve(base, ours, theirs, path="walk.rs", rules=HISTORY_SAFE)
    assert settled_by(result) == ["whitespace_only"]
    assert result.text == lines("fn spawn() {", comment, spawn.replace("exec::job(rx, cmd)", changed), "}")


def test_a_side_that_only_added_or_removed_blank_lines_does_not_yield():
    base = lines("x = 1", "   ", "y = 2")
    ours = lines("x = 1", "", "y = 2")
    theirs = lines("x = 10", "   ", "y = 2")
    assert settled_by(resolve(base, ours, theirs, rules=HISTORY_SAFE)) == [None]


def test_reindenting_is_not_whitespace_only():
    base = lines("def f():", "  return 1", "", "x = 2")
    ours = lines("def f():", "    return 1", "", "x = 2")  # indentation is syntax
    theirs = lines("def f():", "  return 2", "", "x = 2")
    assert settled_by(resolve(base, ours, theirs, rules=HISTORY_SAFE)) == [None]


def test_changing_line_endings_is_not_whitespace_only():
    base = "a = 1\r\nb = 2\r\nc = 3\r\n"
    ours = "a = 1\nb = 2\nc = 3\n"
    theirs = "a = 1\r\nb = 20\r\nc = 3\r\n"
    assert settled_by(resolve(base, ours, theirs, rules=HISTORY_SAFE)) == [None]


def test_whitespace_only_declines_when_the_kept_side_repeats_what_the_other_added_elsewhere():
    base = lines("class A:", "    pass", "   ", "class C:", "    pass")
    ours = lines("class B:", "    '''New.'''", "", "class A:", "    pass", "", "class C:", "    pass")
    theirs = lines("class A:", "    pass", "", "class B:", "    '''New.'''", "", "class C:", "    pass")
    assert settled_by(resolve(base, ours, theirs, rules=HISTORY_SAFE)) == [None]


# -- line_merge (complementary) -------------------------------------------------------------------

def test_line_merge_combines_edits_that_touch_without_overlapping():
    ours, theirs = numbered(n5="value_5 = 'ours'"), numbered(n6="value_6 = 'theirs'")
    result = resolve(numbered(), ours, theirs)
    assert settled_by(result) == ["line_merge"]
    assert result.text == numbered(n5="value_5 = 'ours'", n6="value_6 = 'theirs'")


def test_history_safe_rules_refuse_what_only_sibling_tasks_may_combine():
    ours, theirs = numbered(n5="value_5 = 'ours'"), numbered(n6="value_6 = 'theirs'")
    result = resolve(numbered(), ours, theirs, rules=HISTORY_SAFE)
    assert settled_by(result) == [None] and result.text is None
    assert "<<<<<<< ours" in result.render()


def test_line_merge_declines_overlapping_edits():
    assert settled_by(resolve(numbered(), numbered(n5="value_5 = 'ours'"), numbered(n5="value_5 = 'theirs'"))) == [
        None]


def test_line_merge_declines_a_line_moved_on_one_side_and_deleted_on_the_other():
    base = lines("alpha = 1", "beta = 2", "gamma = 3")
    ours = lines("beta = 2", "gamma = 3", "alpha = 1")  # alpha moved down
    theirs = lines("beta = 2", "gamma = 30")  # alpha deleted, gamma changed next to where ours put it
    assert settled_by(resolve(base, ours, theirs)) == [None]


def test_line_merge_declines_a_line_moved_on_one_side_and_changed_on_the_other():
    base = lines("import os", "import re", "import sys", "", "run()")
    ours = lines("import re", "import sys", "import os", "", "run()")  # os moved
    theirs = lines("import os.path", "import re", "import sys", "", "run()")  # os changed
    assert settled_by(resolve(base, ours, theirs)) == [None]


def test_line_merge_declines_an_insertion_next_to_a_line_the_other_side_rewrote():
    base = lines("setup()", "connect(host)", "teardown()")
    ours = lines("setup()", "log('connecting')", "connect(host)", "teardown()")
    theirs = lines("setup()", "pool = Pool(size=4).acquire()", "teardown()")
    assert settled_by(resolve(base, ours, theirs, path="steps.txt")) == [None]  # .txt: no structured tier after


def test_line_merge_declines_an_insertion_next_to_a_line_the_other_side_reindented():
    base = lines("Intro.", "", ".. code-block:: ini", "", "   [pytest]")
    ours = lines("Intro.", "", "    .. code-block:: ini", "", "   [pytest]")
    theirs = lines("Intro.", "", ".. tab:: toml", "", ".. code-block:: ini", "", "   [pytest]")
    assert settled_by(resolve(base, ours, theirs, path="doc.rst")) == [None]


def test_line_merge_keeps_an_insertion_next_to_a_line_the_other_side_edited():
    base = numbered()
    ours = numbered(n5="value_5 = 5  # five")
    theirs = numbered(n5=f"{NUMBERED[4]}\nvalue_5b = 5.5")  # inserted after line 5
    result = resolve(base, ours, theirs)
    assert settled_by(result) == ["line_merge"]
    assert result.text == numbered(n5="value_5 = 5  # five\nvalue_5b = 5.5")


# -- sorted_union / changelog_union (complementary) ---------------------------------------------------

def test_sorted_union_puts_both_new_imports_in_their_sorted_places():
    base = lines("import json", "import os", "import sys", "", "main()")
    ours = lines("import json", "import os", "import re", "import sys", "", "main()")
    theirs = lines("import json", "import os", "import pathlib", "import sys", "", "main()")
    result = resolve(base, ours, theirs)
    assert settled_by(result) == ["sorted_union"]
    assert result.text == lines("import json", "import os", "import pathlib", "import re", "import sys", "", "main()")


def test_sorted_union_orders_requirements_by_project_name():
    base = lines("Django>=5.2", "requests>=2")
    ours = lines("Django>=5.2", "PyYAML>=6", "requests>=2")
    theirs = lines("Django>=5.2", "django-htmx>=1", "requests>=2")
    result = resolve(base, ours, theirs, path="requirements.txt")
    assert result.text == lines("Django>=5.2", "django-htmx>=1", "PyYAML>=6", "requests>=2")


def test_sorted_union_declines_where_the_block_is_not_kept_sorted():
    base = lines("b = 1", "a = 2", "", "run()")
    ours, theirs = lines("b = 1", "c = 3", "a = 2", "", "run()"), lines("b = 1", "d = 4", "a = 2", "", "run()")
    assert settled_by(resolve(base, ours, theirs, path="settings.txt")) == [None]


def test_sorted_union_needs_more_than_a_few_sorted_lines_outside_imports_and_requirements():
    base = lines("alpha()", "delta()", "", "run()")  # sorted by chance
    ours = lines("alpha()", "beta()", "delta()", "", "run()")
    theirs = lines("alpha()", "gamma()", "delta()", "", "run()")
    assert settled_by(resolve(base, ours, theirs, path="steps.txt")) == [None]


CHANGES = lines("Version 2.1", "-----------", "", "-   Fix one.", "-   Fix two.", "", "Version 2.0", "-----------", "",
                "-   Old.")


def test_changelog_union_appends_both_entries_ours_first():
    ours = CHANGES.replace("-   Fix two.\n", "-   Fix two.\n-   Ours.\n")
    theirs = CHANGES.replace("-   Fix two.\n", "-   Fix two.\n-   Theirs, with\n    a second line.\n")
    result = resolve(CHANGES, ours, theirs, path="CHANGES.rst")
    assert settled_by(result) == ["changelog_union"]
    both = "-   Fix two.\n-   Ours.\n-   Theirs, with\n    a second line.\n"
    assert result.text == CHANGES.replace("-   Fix two.\n", both)


def test_changelog_union_declines_entries_put_at_the_top_of_a_list_and_the_structured_tier_puts_newest_first():
    ours = CHANGES.replace("\n-   Fix one.", "\n-   Ours.\n-   Fix one.")
    theirs = CHANGES.replace("\n-   Fix one.", "\n-   Theirs.\n-   Fix one.")
    result = resolve(CHANGES, ours, theirs, path="CHANGES.rst")
    assert settled_by(result) == ["structured"]  # the line rules declined it
    assert result.outcomes[0].order == "newest first"
    assert result.text == CHANGES.replace("\n-   Fix one.", "\n-   Theirs.\n-   Ours.\n-   Fix one.")


def test_changelog_union_is_only_for_changelogs():
    ours = CHANGES.replace("-   Fix two.\n", "-   Fix two.\n-   Ours.\n")
    theirs = CHANGES.replace("-   Fix two.\n", "-   Fix two.\n-   Theirs.\n")
    assert settled_by(resolve(CHANGES, ours, theirs, path="notes.rst")) == [None]
    assert settled_by(resolve(CHANGES, ours, theirs, path="CHANGES.rst", rules=HISTORY_SAFE)) == [None]


# -- recorded resolutions (both rule sets) -----------------------------------------------------------

@pytest.mark.parametrize("rules", [HISTORY_SAFE, COMPLEMENTARY])
def test_a_recorded_resolution_settles_the_same_conflict_again_from_either_side(tmp_path, rules):
    base, ours, theirs = numbered(), numbered(n5="value_5 = 'ours'"), numbered(n5="value_5 = 'theirs'")
    first = resolve(base, ours, theirs, rules=rules)
    store = RecordedResolutions()
    store.record(first.outcomes[0].hunk, ["value_5 = 'both'"], approved_by="alice")
    store.save(tmp_path / "recorded.json")

    loaded = RecordedResolutions.load(tmp_path / "recorded.json")
    again = resolve(base, theirs + "", ours, rules=rules, store=loaded)  # sides swapped
    assert settled_by(again) == ["recorded"]
    assert again.text == numbered(n5="value_5 = 'both'")


def test_an_unknown_conflict_is_not_in_the_record():
    base, ours, theirs = numbered(), numbered(n5="value_5 = 'ours'"), numbered(n5="value_5 = 'theirs'")
    store = RecordedResolutions()
    other = resolve(base, numbered(n5="value_5 = 'x'"), numbered(n5="value_5 = 'y'"))
    store.record(other.outcomes[0].hunk, ["value_5 = 'xy'"], approved_by="alice")
    assert settled_by(resolve(base, ours, theirs, rules=HISTORY_SAFE, store=store)) == [None]


def test_the_conflict_key_ignores_trailing_whitespace_and_marker_labels():
    one = parse_hunks("<<<<<<< a\nx = 1  \n||||||| b\nx = 0\n=======\nx = 2\n>>>>>>> c\n")[0]
    two = parse_hunks("<<<<<<< HEAD\nx = 2\n||||||| base\nx = 5\n=======\nx = 1\n>>>>>>> topic\n")[0]
    assert conflict_key(one) == conflict_key(two)


def test_conflicts_described_from_a_merge_tree_are_resolved_in_place(tmp_path):
    repo = Repo(tmp_path / "repo")
    base = repo.commit({"module.py": numbered()}, "base")
    repo.branch("theirs", base)
    theirs = repo.commit({"module.py": numbered(n6="value_6 = 't'"), "new.py": "x = 1  \n"}, "theirs")
    repo.checkout("main")
    ours = repo.commit({"module.py": numbered(n5="value_5 = 'o'"), "new.py": "x = 1\n"}, "ours")
    details = {d.path: d for d in describe_conflicts(repo.git, repo.git.merge_tree(ours, theirs))}

    assert resolve_file(details["new.py"], HISTORY_SAFE).text == "x = 1\n"  # add/add, the same line
    assert resolve_file(details["module.py"], HISTORY_SAFE).text is None
    assert resolve_file(details["module.py"], COMPLEMENTARY).text == numbered(n5="value_5 = 'o'", n6="value_6 = 't'")


# -- what no text tool resolves ----------------------------------------------------------------------

def test_binary_and_non_text_conflicts_go_to_a_person():
    binary = ConflictDetail(path="logo.png", kind="binary")
    deleted = ConflictDetail(path="gone.py", kind="modify/delete", base_text="a\n", ours_text="b\n")
    for detail in (binary, deleted):
        result = resolve_file(detail, COMPLEMENTARY)
        assert result.reason and not result.settled and result.text is None


def test_binary_files_keep_ours_and_stay_conflicted():
    merged = merge_bytes(b"\0base", b"\0ours", b"\0theirs", "logo.png", COMPLEMENTARY)
    assert (merged.clean, merged.data, merged.resolution) == (False, b"\0ours", None)


def test_non_utf8_text_keeps_gits_markers_and_no_resolver_runs():
    base, ours, theirs = (numbered(n5=f"value_5 = '{s}'").encode("latin-1") for s in ("b\xe9", "o\xe9", "t\xe9"))
    merged = merge_bytes(base, ours, theirs, "latin.py", COMPLEMENTARY)
    assert not merged.clean and merged.resolution is None and b"<<<<<<< ours" in merged.data


def test_a_detail_whose_sides_hold_marker_like_lines_is_left_alone():
    text = lines("Title", "=======", "body")
    detail = ConflictDetail(path="doc.rst", kind="content", base_text=text, ours_text=text + "o\n",
                            theirs_text=text + "t\n", merged_text=text)
    assert "conflict markers" in resolve_file(detail, COMPLEMENTARY).reason


def test_marker_like_lines_in_a_file_do_not_confuse_the_merge():
    base = lines("Title", "=======", "", "value_5 = 5", "value_6 = 6")
    ours, theirs = base.replace("value_5 = 5", "value_5 = 'o'"), base.replace("value_6 = 6", "value_6 = 't'")
    merged = merge_bytes(base.encode(), ours.encode(), theirs.encode(), "doc.rst", COMPLEMENTARY)
    assert merged.clean and merged.data.decode() == lines("Title", "=======", "", "value_5 = 'o'", "value_6 = 't'")


def test_a_hunk_at_the_end_of_a_file_without_final_newline_is_declined():
    base, ours, theirs = "a = 1\nb = 2", "a = 1\nb = 2  ", "a = 1\nb = 3"
    assert settled_by(resolve(base, ours, theirs)) == [None]


def test_crlf_files_are_resolved_in_crlf():
    base = numbered().replace("\n", "\r\n")
    ours = numbered(n5="value_5 = 'o'").replace("\n", "\r\n")
    theirs = numbered(n6="value_6 = 't'").replace("\n", "\r\n")
    result = resolve(base, ours, theirs)
    assert result.text == numbered(n5="value_5 = 'o'", n6="value_6 = 't'").replace("\n", "\r\n")


def test_unsettled_hunks_keep_standard_markers_of_the_size_asked_for():
    merged = merge_bytes(numbered().encode(), numbered(n5="o = 1").encode(), numbered(n5="t = 1").encode(), "m.py",
                         HISTORY_SAFE, marker_size=9)
    text = merged.data.decode()
    assert not merged.clean
    assert [line[:10] for line in text.splitlines() if line[:1] in "<|=>"] == [
        "<<<<<<<<< ", "||||||||| ", "=========", ">>>>>>>>> "]
