from __future__ import annotations

import itertools
import random
import time

import pytest

from coordination.domain.ownership import (
    BadPattern,
    Overlap,
    PredictedOverlap,
    matches,
    overlap_example,
    overlapping_claims,
    patterns_overlap,
    predicted_overlaps,
    validate_pattern,
    violations,
)

OVERLAP_TABLE = [
    # ** spans whole segments, including none
    ("src/**/*.py", "src/auth/models.py", True),
    ("**/test_*.py", "tests/unit/test_x.py", True),
    ("**/test_*.py", "test_x.py", True),
    ("docs/*", "docs/**/x", True),
    ("a/**", "a", True),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/*/*/b", True),
    ("**/x", "**/y", False),
    ("**/*.py", "**/*.js", False),
    ("**/a/**", "**/b/**", True),
    ("**", "*", True),
    ("**", "deep/down/file.txt", True),
    ("**/**/x", "x", True),
    # * and ? stay within one segment
    ("*.py", "src/a.py", False),
    ("*", "a/b", False),
    ("src/*", "src/auth/models.py", False),
    ("src/*.py", "src/*.js", False),
    ("?.md", "README.md", False),
    ("a?c", "a/c", False),
    ("??", "?", False),
    ("*?*?", "?", False),
    ("*?*?", "??", True),
    ("*.py", "*", True),
    ("*.tar.gz", "*.gz", True),
    ("a*b", "*c", False),
    ("*a*", "*b*", True),
    ("a*", "*a", True),
    ("ab*", "*ba", True),
    ("a*a", "a", False),
    ("a*a", "aa", True),
    # character classes
    ("[a-c]*.txt", "d*.txt", False),
    ("[a-c]*.txt", "b*.txt", True),
    ("[!a]bc", "abc", False),
    ("[^a]bc", "xbc", True),
    ("[a-m]x", "[k-z]x", True),
    ("[a-j]x", "[k-z]x", False),
    ("[!a-z]", "[a-z]", False),
    ("[!a-z]", "[!0-9]", True),
    ("[a-c][a-c]", "?d", False),
    ("x*", "[!x]*", False),
    ("[-a]", "-", True),
    ("[a-]", "b", False),
    ("é*", "[à-ÿ]*", True),
    # plain paths and trailing slashes claim the subtree
    ("src/auth", "src/auth/models.py", True),
    ("src/auth/", "src/auth/models.py", True),
    ("src/auth", "src/authz.py", False),
    ("src/auth", "src/**/*.py", True),
    ("src/*/", "src/a/b.py", True),
    ("*/", "a", True),
    ("auth.py", "auth.py", True),
    ("auth.py", "src/auth.py", False),
    # case and escapes are literal
    ("A.py", "a.py", False),
    ("\\*.py", "x.py", False),
    ("\\*.py", "*.py", True),
    ("\\[a].py", "a.py", False),
    ("\\[a].py", "\\[a\\].py", True),
    ("\\[a].py", "[a].py", False),
]


@pytest.mark.parametrize(("a", "b", "expected"), OVERLAP_TABLE, ids=[f"{a} | {b}" for a, b, _ in OVERLAP_TABLE])
def test_patterns_overlap_as_the_table_says_in_either_order(a, b, expected):
    assert patterns_overlap(a, b) is expected
    assert patterns_overlap(b, a) is expected


@pytest.mark.parametrize(("a", "b"), [(a, b) for a, b, expected in OVERLAP_TABLE if expected])
def test_the_example_of_an_overlap_matches_both_patterns(a, b):
    example = overlap_example(a, b)
    assert matches(a, example) and matches(b, example)


def random_patterns(rng: random.Random, count: int = 80) -> set[str]:
    atoms = ["a", "b", "*", "?", "[ab]", "[!a]"]

    def segment() -> str:
        if rng.random() < 0.2:
            return "**"
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(1, 3)))
        return segment() if "**" in text else text

    return {"/".join(segment() for _ in range(rng.randint(1, 3))) for _ in range(count)}


def test_overlap_agrees_with_brute_force_over_small_paths():
    """True answers carry an example both patterns match; False answers must have no common small path."""
    rng = random.Random(5)
    patterns = random_patterns(rng)
    names = ["".join(letters) for size in (1, 2, 3) for letters in itertools.product("ab", repeat=size)]
    paths = ["/".join(parts) for depth in (1, 2, 3) for parts in itertools.product(names, repeat=depth)]
    covered = {pattern: {path for path in paths if matches(pattern, path)} for pattern in patterns}
    for a, b in itertools.combinations(sorted(patterns), 2):
        example = overlap_example(a, b)
        if example is None:
            assert not covered[a] & covered[b], (a, b)
        else:
            assert matches(a, example) and matches(b, example), (a, b, example)


def test_the_example_is_the_first_existing_file_both_match_as_a_full_scan_finds_it():
    """The file list is read by bisection under each pattern's plain folders; that must find what reading
    every file finds, including a file named like the folder and neighbours such as ``a0`` or ``a.b``."""
    rng = random.Random(8)
    patterns = sorted(random_patterns(rng, 40) | {"a", "a/b", "ab/**", "a/*", "b/a/**"})
    names = ["a", "b", "ab", "a0", "a.b", "a-b", "ba"]
    files = ["/".join(parts) for depth in (1, 2, 3) for parts in itertools.product(names, repeat=depth)]
    rng.shuffle(files)
    for a, b in itertools.combinations(patterns, 2):
        both = [path for path in files if matches(a, path) and matches(b, path)]
        example = overlap_example(a, b, files)
        assert example == (min(both) if both else overlap_example(a, b)), (a, b)


def test_plain_path_claims_itself_and_everything_below_it():
    assert matches("src/auth", "src/auth")
    assert matches("src/auth", "src/auth/models.py")
    assert matches("src/auth/", "src/auth/tests/test_models.py")
    assert not matches("src/auth", "src/authz.py")
    assert not matches("src/auth", "src")


def test_glob_matches_exactly_what_it_spells_unless_it_ends_with_a_slash():
    assert matches("src/*", "src/models.py")
    assert not matches("src/*", "src/auth/models.py")
    assert matches("src/*/", "src/auth/models.py")


def test_globstar_matches_zero_segments_so_a_globstar_claims_the_directory_itself():
    assert matches("a/**", "a")
    assert matches("a/**", "a/b/c")
    assert matches("a/**/b", "a/b")
    assert matches("**/b", "b")
    assert not matches("a/**", "ab")


def test_star_and_question_mark_never_cross_a_slash():
    assert matches("*.py", "a.py")
    assert not matches("*.py", "src/a.py")
    assert matches("?.md", "a.md")
    assert not matches("?.md", "README.md")
    assert not matches("a?b", "a/b")


def test_character_classes_and_escapes_match_literally_and_case_sensitively():
    assert matches("[a-c]x", "bx") and not matches("[a-c]x", "dx")
    assert matches("[!a]x", "bx") and not matches("[!a]x", "ax")
    assert matches("[^a]x", "bx")
    assert matches("\\*.py", "*.py") and not matches("\\*.py", "a.py")
    assert matches("[\\]]", "]")
    assert matches("a]", "a]")
    assert not matches("A.py", "a.py")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("../outside", "'..'"),
        ("src/../x", "'..'"),
        ("./src", "'.'"),
        ("a//b", "''"),
        ("src/[ab", "unclosed '['"),
        ("[]", "empty character class"),
        ("[!]", "empty character class"),
        ("[z-a]", "reversed range"),
        ("a\\", "backslash at the end"),
        ("src\\auth.py", "escapes nothing"),
        ("a**", "'**' must be a whole path segment"),
        ("src/{a,b}.py", "brace expansion"),
        ("!src/x.py", "negation"),
        (" src/x.py", "whitespace"),
    ],
)
def test_bad_pattern_raises_a_one_line_error_naming_the_pattern(pattern, reason):
    with pytest.raises(BadPattern) as raised:
        validate_pattern(pattern)
    message = str(raised.value)
    assert repr(pattern) in message
    assert reason in message
    assert "\n" not in message
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    "pattern", ["a", "src/auth/", "**", "**/*.py", "src/**/test_?.py", "[a-z]*", "[!a]", "[^-]", "\\!x", "a/**"]
)
def test_good_pattern_validates(pattern):
    validate_pattern(pattern)


def test_overlapping_claims_name_the_holder_and_prefer_an_existing_file_as_example():
    held = {"A": ["src/auth/**", "README.md"], "B": ["docs/**"], "C": ["src/billing.py"]}
    found = overlapping_claims(["src/**/*.py"], held, existing_files=["src/auth/models.py", "src/billing.py"])
    assert found == [
        Overlap("A", "src/**/*.py", "src/auth/**", "src/auth/models.py"),
        Overlap("C", "src/**/*.py", "src/billing.py", "src/billing.py"),
    ]


def test_overlapping_claims_count_files_not_created_yet():
    found = overlapping_claims(["src/auth/new_*.py"], {"A": ["src/auth"]}, existing_files=[])
    assert [(overlap.holder, overlap.example) for overlap in found] == [("A", "src/auth/new_.py")]


def test_disjoint_claims_do_not_block():
    assert overlapping_claims(["src/*.py"], {"A": ["src/*.js", "docs/**"]}, existing_files=["src/a.py"]) == []


def test_predicted_overlaps_warn_only_for_tasks_that_may_run_in_parallel():
    tasks = {"A": ["auth.py"], "B": ["auth.py", "docs/**"], "C": ["*.py"], "D": []}
    depends = {("A", "B")}  # B depends on A: they never run together

    def may_run_in_parallel(a: str, b: str) -> bool:
        return (a, b) not in depends and (b, a) not in depends

    assert predicted_overlaps(tasks, may_run_in_parallel, existing_files=["auth.py"]) == [
        PredictedOverlap("A", "C", "auth.py", "*.py", "auth.py"),
        PredictedOverlap("B", "C", "auth.py", "*.py", "auth.py"),
    ]


def test_predicted_overlaps_compare_only_claims_that_can_meet_yet_miss_none():
    rng = random.Random(11)
    patterns = sorted(random_patterns(rng))
    tasks = {f"T{i}": rng.sample(patterns, 2) for i in range(40)}
    every_pair = [
        PredictedOverlap(t, o, p, q, overlap_example(p, q))
        for t, o in itertools.combinations(tasks, 2) for p in tasks[t] for q in tasks[o] if overlap_example(p, q)
    ]
    assert predicted_overlaps(tasks, lambda a, b: True) == every_pair


def test_five_thousand_tasks_claiming_a_folder_each_are_checked_in_seconds():
    """Every pair compared took hours for such a spec (12.5 million pairs)."""
    tasks = {f"T{i}": [f"pkg{i}/**", "docs/index.md" if i % 1000 == 0 else f"pkg{i}/README.md"] for i in range(5000)}
    started = time.perf_counter()
    found = predicted_overlaps(tasks, lambda a, b: True)
    assert time.perf_counter() - started < 5
    docs = [f"T{i}" for i in range(0, 5000, 1000)]
    assert [(o.task, o.other) for o in found] == list(itertools.combinations(docs, 2))


def test_violations_list_changed_files_outside_the_claim():
    changed = ["src/auth/models.py", "src/billing.py", "README.md", "src/billing.py"]
    assert violations(["src/auth", "*.md"], changed) == ["src/billing.py"]


def test_task_without_claims_declared_no_ownership_so_has_no_violations():
    assert violations([], ["anything.py", "src/x.py"]) == []


def test_claims_on_a_large_repository_name_every_holder_with_an_existing_file():
    """How fast this is, against scanning the files pair by pair, is measured by bench/claims.py."""
    files = [f"pkg{i % 100}/mod{i // 100}/file{i}.py" for i in range(100_000)]
    held = {f"T{n}": [f"pkg{n}/**", f"pkg{n + 50}/mod1/*.py"] for n in range(20)}
    found = overlapping_claims(["pkg3/**/*.py", "**/file7.py"], held, files)
    assert {overlap.holder for overlap in found} == {f"T{n}" for n in range(20)}
    assert Overlap("T7", "**/file7.py", "pkg7/**", "pkg7/mod0/file7.py") in found


@pytest.mark.parametrize(("a", "b"), [
    ("out/a.txt", "out/a.txt"), ("out/a.txt", "out/b.txt"), ("src", "src/auth.py"), ("src/auth/", "src/auth.py"),
    ("src/auth", "src/auth/views.py"), ("src/**", "src/a/b"), ("docs", "doc"), ("a\\*b", "a\\*b/c"), ("a", "b/a"),
])
def test_plain_paths_overlap_exactly_when_the_automata_say_so(a, b):
    """Plain paths are compared by name (submit compares every pair of a ticket's claims); the answer,
    example included, is the one the automaton search gives."""
    from coordination.domain.globs import _common_path_search, common_path

    assert common_path(a, b) == common_path(b, a) == _common_path_search(*sorted((a, b)))
