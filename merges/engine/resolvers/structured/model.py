"""The shapes the structured tier works with: syntax nodes, commutative containers, language profiles.

A node is anything shaped like a tree-sitter node (``type``, ``start_byte``, ``end_byte``, ``children``,
``is_named``, ``has_error``, ``parent``), so the changelog reader can build its own trees from lines and go
through the same merge as the grammars.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# The order rules a settled region can name, strongest first. "as placed": the two sides inserted at
# different places, so each side's own placement decided and no rule was needed.
SORTED = "sorted by name"
GROUPED = "grouped by prefix"
NEWEST_FIRST = "newest first"
FINISH_ORDER = "finish order"
AS_PLACED = "as placed"
ORDER_RULES = (SORTED, GROUPED, NEWEST_FIRST, FINISH_ORDER)  # the rules a caller may choose among

_SPACES = re.compile(rb"\s+")


class Node(Protocol):
    """The part of ``tree_sitter.Node`` the merge reads."""

    @property
    def type(self) -> str: ...
    @property
    def start_byte(self) -> int: ...
    @property
    def end_byte(self) -> int: ...
    @property
    def children(self) -> Sequence[Node]: ...
    @property
    def is_named(self) -> bool: ...
    @property
    def has_error(self) -> bool: ...
    @property
    def parent(self) -> Node | None: ...
    def child_by_field_name(self, name: str, /) -> Node | None: ...


@dataclass(eq=False)
class TextNode:
    """A node built by hand (the changelog reader): it never has errors."""

    type: str
    start_byte: int
    end_byte: int
    children: list[TextNode] = field(default_factory=list)
    parent: TextNode | None = None
    is_named: bool = True
    has_error: bool = False

    def child_by_field_name(self, name: str, /) -> None:
        return None  # hand-built trees have no fields

    def add(self, child: TextNode) -> TextNode:
        child.parent = self
        self.children.append(child)
        return child


@dataclass(frozen=True)
class Container:
    """A parent whose children may be reordered without changing the meaning of the file.

    ``members`` are the child types that count as children to merge (None: every named child that is not a
    comment); ``separator`` is the token between members (``,``) that the last member may lack;
    ``terminators`` are tokens that close a member (``;``) and travel with it.
    """

    label: str
    members: frozenset[str] | None = None
    separator: bytes | None = None
    terminators: frozenset[bytes] = frozenset({b";"})
    member_field: str | None = None  # members are the children in this field (``name`` of a from-import)


@dataclass(frozen=True)
class Profile:
    """How one language (or file kind) is read: parser, commutative parents, children's names.

    ``signature`` names a member (``def parse``, a JSON key); None means the member is known by its text.
    ``family`` tells kinds of members apart for the order rules ("import" vs definitions); ``category`` is
    the group prefix of a member ("fix" in "Fix: ..."), None when it has none; ``sort_keys`` are the keys a
    sorted container may follow, tried in turn.
    """

    name: str
    parse: Callable[[bytes], Node | None]
    container: Callable[[Node, bytes], Container | None]
    signature: Callable[[Node, bytes], str | None]
    comments: frozenset[str] = frozenset({"comment"})
    family: Callable[[Node, bytes], str] = lambda node, src: "member"
    category: Callable[[Node, bytes], str | None] = lambda node, src: None
    sort_keys: Callable[[Node, bytes, str], Sequence[object]] | None = None
    newest_first: bool = False  # changelogs: entries both sides put at the top of a list go newest first


def text(node: Node, src: bytes) -> bytes:
    return src[node.start_byte : node.end_byte]


def end_of(node: Node, src: bytes) -> int:
    """Where the node's text ends, trailing whitespace aside (some grammars keep the newline in a node)."""
    end = node.end_byte
    while end > node.start_byte and src[end - 1 : end].isspace():
        end -= 1
    return end


def squash(data: bytes) -> str:
    """Text with runs of whitespace as one space: a member's identity ignores layout."""
    return _SPACES.sub(b" ", data).strip().decode("utf-8", "replace")


def field_text(node: Node, name: str, src: bytes) -> str | None:
    """The squashed text of a named field of a tree-sitter node, None when the node has no such field."""
    child = node.child_by_field_name(name)
    return squash(text(child, src)) if child is not None else None


def named_children(node: Node) -> list[Node]:
    return [child for child in node.children if child.is_named]


def grammar(module: str, function: str = "language") -> Callable[[bytes], Node | None]:
    """A parser for one tree-sitter grammar package, loaded on first use (one parser per thread: tree-sitter
    parsers are not shared safely). It returns None for a text with syntax errors -- or when tree-sitter or
    the grammar is not installed -- so that the merge declines."""
    local = threading.local()

    def parse(src: bytes) -> Node | None:
        parser = getattr(local, "parser", None)
        if parser is None:
            try:
                from tree_sitter import Language, Parser

                language = Language(getattr(importlib.import_module(module), function)())
            except (ImportError, AttributeError, ValueError):
                return None
            parser = local.parser = Parser(language)
        root = parser.parse(src).root_node
        return None if root.has_error else root

    return parse


def key_category(key: str) -> str:
    """The group of a key named like ``lint:js`` or ``tools/x``: what comes before the mark, else the key (so
    ``test`` and ``test:e2e`` are one group)."""
    for mark in (":", "/"):
        if mark in key.strip(mark):
            return key.split(mark, 1)[0]
    return key


def unquote(data: str) -> str:
    return data[1:-1] if len(data) >= 2 and data[0] == data[-1] and data[0] in "\"'`" else data
