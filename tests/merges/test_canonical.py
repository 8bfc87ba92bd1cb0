"""canonical_form: what "equivalent" means in replay -- the same tree up to the order of commutative children."""

from __future__ import annotations

from merges.engine.resolvers.structured import canonical_form, owners


def same(path: str, a: str, b: str) -> bool:
    form = canonical_form(path, a)
    assert form is not None, "does not parse"
    return form == canonical_form(path, b)


def test_class_members_and_module_definitions_may_come_in_any_order():
    one = "import os\n\n\nclass A:\n    def f(self):\n        return 1\n\n    def g(self):\n        return 2\n"
    other = "import os\n\n\nclass A:\n    def g(self):\n        return 2\n    def f(self):\n        return 1\n"
    assert same("a.py", one, other)


def test_statements_in_a_body_keep_their_order_and_code_counts():
    one = "def f():\n    x = 1\n    return x\n"
    assert not same("a.py", one, "def f():\n    return x\n    x = 1\n")
    assert not same("a.py", one, "def f():\n    x = 2\n    return x\n")
    assert same("a.py", one, "def f():\n\n    x  =  1\n    return x\n")  # layout aside


def test_comments_travel_with_their_member_and_count():
    f, g, h = (f"    def {name}(self):\n        pass\n" for name in "fgh")
    one = "class A:\n" + f + "\n    # second\n" + g + "\n" + h
    moved = "class A:\n" + f + "\n" + h + "\n    # second\n" + g
    changed = one.replace("# second", "# the second")
    assert same("a.py", one, moved) and not same("a.py", one, changed)


def test_json_keys_commute_but_array_items_of_numbers_do_not():
    assert same("a.json", '{"a": 1, "b": [1, 2]}', '{\n  "b": [1, 2],\n  "a": 1\n}')
    assert not same("a.json", '{"a": 1, "b": [1, 2]}', '{"a": 1, "b": [2, 1]}')


def test_changelog_entries_commute_within_their_list_not_across_versions():
    one = "# 2.0\n\n- a\n- b\n\n# 1.0\n\n- c\n"
    assert same("CHANGES.md", one, "# 2.0\n\n- b\n- a\n\n# 1.0\n\n- c\n")
    assert not same("CHANGES.md", one, "# 2.0\n\n- a\n\n# 1.0\n\n- b\n- c\n")


def test_files_no_profile_reads_or_that_do_not_parse_have_no_form():
    assert canonical_form("notes.txt", "a\n") is None
    assert canonical_form("a.py", "def f(:\n") is None


def test_markdown_list_items_commute_and_their_words_count():
    items = ["  * [a](http://a) one\n", "  * [b](http://b) two\n", "  * [c](http://c) three\n"]
    one = "# X\n\nSome text\n\n" + "".join(items) + "\n## More\n"
    swapped = "# X\n\nSome text\n\n" + "".join([items[0], items[2], items[1]]) + "\n## More\n"
    assert same("README.md", one, swapped)
    assert not same("README.md", one, swapped.replace("three", "four"))


def test_owners_name_the_nodes_around_lines_and_give_comments_to_the_member_below():
    js = "function a() {}\n\n/** doc */\nfunction b() {}\n"
    assert owners("x.js", js, 2, 3) == owners("x.js", js, 3, 4) == ("function b",)
    py = "class A:\n    def f(self):\n        pass\n\n    # doc\n    def g(self):\n        pass\n"
    assert owners("x.py", py, 2, 3) == ("class A", "def f")
    assert owners("x.py", py, 4, 5) == ("class A", "def g")
    assert owners("x.txt", "a\n", 0, 1) is None and owners("x.py", py, 3, 4) is None  # no profile; a blank line
