"""The structured tier as a rung of the complementary ladder, and in the doors that take three files.

The tier itself (what it merges, what it declines, in which order) is tested in test_structured.py; here: that
the ladder offers it what the line rules leave, records per hunk the parent kind and the order rule, keeps it
out of the history-safe rules, and that ``merge-file`` and git's merge driver use it.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from textwrap import dedent

from merges.engine.conflicts import safe_marker_size
from merges.engine.mergefile import git_merge_file
from merges.engine.resolvers.context import Sides
from merges.engine.resolvers.ladder import COMPLEMENTARY, HISTORY_SAFE, FileResolution, resolve_merged
from merges.engine.resolvers.structured import FINISH_ORDER, GROUPED, ORDER_RULES, SORTED
from tests.gitrepo import Repo
from tests.merges.test_mergefile import DAGMERGE, _users_git, dagmerge

PARSER = dedent("""\
    import os


    class Parser:
        def __init__(self, text):
            self.text = text

        def tokens(self):
            return self.text.split()
    """)
LINES = "\n    def lines(self):\n        return self.text.splitlines()\n"
COUNT = "\n    def count(self):\n        return len(self.tokens())\n"


def resolve(path: str, base: str, ours: str, theirs: str, rules: str = COMPLEMENTARY,
            order_rules: Collection[str] = ORDER_RULES) -> FileResolution:
    """git's merge of the three texts, its hunks offered to the ladder."""
    size = safe_marker_size([base, ours, theirs])
    merged, conflicts = git_merge_file(base.encode(), ours.encode(), theirs.encode(), size)
    assert conflicts, "git merged these cleanly: no hunk to resolve"
    return resolve_merged(merged.decode(), path, Sides(base, ours, theirs), rules, marker_size=size,
                          order_rules=order_rules)


def test_both_methods_added_to_a_class_are_kept_with_the_parent_and_the_rule_recorded():
    result = resolve("parser.py", PARSER, PARSER + LINES, PARSER + COUNT)

    [outcome] = result.outcomes
    assert (outcome.resolver, outcome.kind, outcome.order) == ("structured", "class members", FINISH_ORDER)
    assert outcome.provenance == "kept both: class members, finish order"
    assert result.text == PARSER + LINES + COUNT


def test_history_safe_rules_never_reach_the_structured_tier():
    result = resolve("parser.py", PARSER, PARSER + LINES, PARSER + COUNT, rules=HISTORY_SAFE)
    assert [o.resolver for o in result.outcomes] == [None] and result.text is None


def test_the_line_rules_go_first_and_the_structured_tier_takes_what_they_leave():
    base = PARSER.replace("import os\n", "import os\nTIMEOUT = 10\nRETRIES = 3\n")
    ours = base.replace("TIMEOUT = 10", "TIMEOUT = 5") + LINES
    theirs = base.replace("RETRIES = 3", "RETRIES = 4") + COUNT

    result = resolve("parser.py", base, ours, theirs)

    assert [o.resolver for o in result.outcomes] == ["line_merge", "structured"]
    assert [o.provenance for o in result.outcomes] == ["", "kept both: class members, finish order"]
    assert result.text == base.replace("TIMEOUT = 10", "TIMEOUT = 5").replace("RETRIES = 3", "RETRIES = 4") + (
        LINES + COUNT)


BASE_IMPORT = "from os.path import basename, join, splitext\n\n\ndef main():\n    pass\n"
OURS_IMPORT = BASE_IMPORT.replace("basename, ", "basename, exists, ")
THEIRS_IMPORT = BASE_IMPORT.replace("basename, ", "basename, dirname, ")


def test_names_both_imported_on_one_line_go_where_sorting_puts_them():
    result = resolve("cli.py", BASE_IMPORT, OURS_IMPORT, THEIRS_IMPORT)

    assert [o.provenance for o in result.outcomes] == ["kept both: imports, sorted by name"]
    assert result.text == BASE_IMPORT.replace("basename, ", "basename, dirname, exists, ")


def test_json_keys_both_added_are_kept_and_the_object_stays_valid():
    base = '{\n  "name": "app",\n  "scripts": {\n    "build": "tsc",\n    "test": "jest"\n  }\n}\n'
    ours = base.replace('"test": "jest"', '"test": "jest",\n    "lint": "eslint ."')
    theirs = base.replace('"test": "jest"', '"test": "jest",\n    "serve": "node dist/server.js"')

    result = resolve("package.json", base, ours, theirs)

    assert [o.resolver for o in result.outcomes] == ["structured"]
    assert result.outcomes[0].kind == "object keys"
    scripts = json.loads(result.text)["scripts"]
    assert scripts == {"build": "tsc", "test": "jest", "lint": "eslint .", "serve": "node dist/server.js"}


def test_two_methods_of_one_name_are_left_to_the_next_tier():
    parse_a = "\n    def parse(self):\n        return self.text\n"
    parse_b = "\n    def parse(self):\n        return self.tokens()\n"
    result = resolve("parser.py", PARSER, PARSER + parse_a, PARSER + parse_b)
    assert [o.resolver for o in result.outcomes] == [None]


def test_a_grouped_changelog_stays_grouped():
    base = "# Changes\n\n## 2.0\n\n- Add a parser.\n- Add a lexer.\n- Fix: crash on empty input.\n- Fix: typo.\n"
    ours = base.replace("- Fix: crash", "- Add tokens.\n- Fix: crash")
    theirs = base.replace("- Fix: crash", "- Fix: wrong line numbers.\n- Fix: crash")

    result = resolve("CHANGES.md", base, ours, theirs)

    assert [(o.resolver, o.order) for o in result.outcomes] == [("structured", GROUPED)]
    assert result.text == base.replace("- Fix: crash", "- Add tokens.\n- Fix: wrong line numbers.\n- Fix: crash")


def test_an_order_rule_left_out_gives_the_hunk_to_the_next_rule_and_without_any_it_stays_open():
    sides = (BASE_IMPORT, BASE_IMPORT.replace("splitext", "splitext, walk"),
             BASE_IMPORT.replace("splitext", "splitext, stat"))  # both appended to the names
    assert [o.order for o in resolve("cli.py", *sides).outcomes] == [SORTED]
    without_sorting = resolve("cli.py", *sides, order_rules=[r for r in ORDER_RULES if r != SORTED])
    assert [o.order for o in without_sorting.outcomes] == [FINISH_ORDER]
    assert without_sorting.text == BASE_IMPORT.replace("splitext", "splitext, walk, stat")
    assert [o.resolver for o in resolve("cli.py", *sides, order_rules=()).outcomes] == [None]


def test_names_both_imported_between_two_names_stay_open_when_sorting_cannot_order_them():
    sides = (BASE_IMPORT, OURS_IMPORT, THEIRS_IMPORT)
    without_sorting = resolve("cli.py", *sides, order_rules=[r for r in ORDER_RULES if r != SORTED])
    assert [o.resolver for o in without_sorting.outcomes] == [None]


def test_merge_file_complementary_says_what_the_structured_tier_kept(tmp_path):
    paths = []
    for name, text in (("base", PARSER), ("ours", PARSER + LINES), ("theirs", PARSER + COUNT)):
        paths.append(tmp_path / name)
        paths[-1].write_text(text)
    out = tmp_path / "out.py"

    proc = dagmerge("merge-file", *map(str, paths), "--path", "parser.py", "-o", str(out), "--complementary")

    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == PARSER + LINES + COUNT
    assert "parser.py: 1 conflict hunks, 1 resolved (structured; kept both: class members, finish order)" in (
        proc.stderr)
    history_safe = dagmerge("merge-file", *map(str, paths), "--path", "parser.py", "-o", str(out))
    assert history_safe.returncode == 1 and "<<<<<<< ours" in out.read_text()


def test_the_merge_driver_merges_sibling_branches_that_both_added_a_method(tmp_path):
    repo = Repo(tmp_path / "repo")
    repo.commit({"parser.py": PARSER, ".gitattributes": "*.py merge=dagmerge\n"}, "base")
    repo.git.run("config", "merge.dagmerge.driver",
                 f"{DAGMERGE} merge-driver --complementary --marker-size %L %O %A %B %P")
    repo.branch("sibling")
    repo.commit({"parser.py": PARSER + COUNT}, "count")
    repo.checkout("main")
    repo.commit({"parser.py": PARSER + LINES}, "lines")

    proc = _users_git(repo, "merge", "--no-edit", "sibling")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert repo.show("HEAD", "parser.py") == PARSER + LINES + COUNT
