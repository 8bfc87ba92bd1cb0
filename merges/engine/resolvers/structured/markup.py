"""Profiles for data and markup: JSON, YAML, TOML, Markdown, HTML, CSS.

Keys of a mapping (JSON objects, YAML mappings, TOML tables) are commutative by definition; lists are only
where every item is a plain string (a list of dependencies, of files, of keywords) -- a list of anything else
may mean its order. Markdown list items and sections, sibling HTML elements (but not text running between
them) and CSS rules and declarations are lists people insert into side by side.
"""

from __future__ import annotations

from collections.abc import Callable

from merges.engine.resolvers.structured.model import (
    Container,
    Node,
    Profile,
    field_text,
    grammar,
    key_category,
    named_children,
    squash,
    text,
    unquote,
)

KEYS = Container("object keys", separator=b",", terminators=frozenset())
STRINGS = Container("list items", separator=b",", terminators=frozenset())


def _strings(node: Node) -> bool:
    """An array of plain strings (comments aside): a list whose order nobody relies on."""
    kids = [kid for kid in named_children(node) if kid.type != "comment"]
    return bool(kids) and all(kid.type == "string" for kid in kids)


def _key_sort(node: Node, src: bytes, name: str) -> tuple[object, ...]:
    key = name.split(" ", 1)[-1]
    return ((key,), (key.casefold(),))


def _key_group(signature: Callable[[Node, bytes], str | None]) -> Callable[[Node, bytes], str | None]:
    """Keys are grouped by their prefix (``lint:js``, ``lint:css``)."""

    def category(node: Node, src: bytes) -> str | None:
        name = signature(node, src)
        return key_category(name.split(" ", 1)[-1]) if name and name.startswith("key ") else None

    return category


# -- JSON ----------------------------------------------------------------------------------------------------


def json_signature(node: Node, src: bytes) -> str | None:
    if node.type == "pair":
        return f"key {unquote(field_text(node, 'key', src) or '')}"
    if node.type == "string":
        return f"str {squash(text(node, src))}"
    return None


def json_container(node: Node, src: bytes) -> Container | None:
    if node.type == "object":
        return KEYS
    if node.type == "array" and _strings(node):
        return STRINGS
    return None


JSON = Profile(
    "json",
    grammar("tree_sitter_json"),
    json_container,
    json_signature,
    category=_key_group(json_signature),
    sort_keys=_key_sort,
)


# -- YAML ----------------------------------------------------------------------------------------------------

YAML_SCALARS = {"plain_scalar", "double_quote_scalar", "single_quote_scalar"}


def _yaml_scalar_item(node: Node) -> Node | None:
    """The value of a list item that is a plain scalar (``- pytest``), None for anything else."""
    kids = named_children(node)
    if len(kids) == 1 and kids[0].type == "flow_node":
        inner = named_children(kids[0])
        if len(inner) == 1 and inner[0].type in YAML_SCALARS:
            return kids[0]
    return None


def yaml_signature(node: Node, src: bytes) -> str | None:
    if node.type == "block_mapping_pair":
        return f"key {unquote(field_text(node, 'key', src) or '')}"
    if node.type == "block_sequence_item":
        scalar = _yaml_scalar_item(node)
        return f"str {unquote(squash(text(scalar, src)))}" if scalar is not None else None
    return None


def yaml_container(node: Node, src: bytes) -> Container | None:
    if node.type == "block_mapping":
        return Container("mapping keys")
    if node.type == "block_sequence" and all(
        _yaml_scalar_item(kid) is not None for kid in named_children(node) if kid.type != "comment"
    ):
        return Container("list items")
    return None


YAML = Profile(
    "yaml",
    grammar("tree_sitter_yaml"),
    yaml_container,
    yaml_signature,
    category=_key_group(yaml_signature),
    sort_keys=_key_sort,
)


# -- TOML ----------------------------------------------------------------------------------------------------

TOML_KEYS = ("bare_key", "quoted_key", "dotted_key")


def toml_signature(node: Node, src: bytes) -> str | None:
    keys = [kid for kid in named_children(node) if kid.type in TOML_KEYS]
    if node.type == "pair" and keys:
        return f"key {unquote(squash(text(keys[0], src)))}"
    if node.type == "table" and keys:
        return f"table {squash(text(keys[0], src))}"
    if node.type == "string":
        return f"str {squash(text(node, src))}"
    return None  # [[array of tables]]: repeated on purpose, known by their text


def toml_container(node: Node, src: bytes) -> Container | None:
    if node.type == "document":
        return Container("tables")
    if node.type == "table":
        return Container("table keys", members=frozenset({"pair"}))
    if node.type == "array" and _strings(node):
        return STRINGS
    return None


TOML = Profile(
    "toml",
    grammar("tree_sitter_toml"),
    toml_container,
    toml_signature,
    category=_key_group(toml_signature),
    sort_keys=_key_sort,
)


# -- Markdown ------------------------------------------------------------------------------------------------


def md_signature(node: Node, src: bytes) -> str | None:
    if node.type == "list_item":  # known by its own text, not by the items nested in it
        marker = node.children[0] if node.children else None
        start = marker.end_byte if marker is not None and marker.type.startswith("list_marker") else node.start_byte
        end = next((kid.start_byte for kid in node.children if kid.type == "list"), node.end_byte)
        return f"item {squash(src[start:end])}"
    if node.type == "section":
        heading = node.children[0] if node.children else None
        if heading is None or not heading.type.endswith("_heading"):
            return "section"  # the text before the first heading
        return f"section {squash(text(heading, src))}"
    return None


def md_container(node: Node, src: bytes) -> Container | None:
    if node.type == "list":
        return Container("list items", members=frozenset({"list_item"}))
    if node.type in ("document", "section"):
        return Container("sections", members=frozenset({"section"}))
    return None


MARKDOWN = Profile(
    "markdown", grammar("tree_sitter_markdown"), md_container, md_signature, comments=frozenset(), sort_keys=_key_sort
)


# -- HTML ----------------------------------------------------------------------------------------------------

HTML_ELEMENTS = frozenset({"element", "script_element", "style_element", "doctype"})
HTML_NAMING = ("id", "name", "key", "href", "src", "for", "rel", "property")
HTML_LANDMARKS = frozenset(
    {
        "html",
        "head",
        "body",
        "header",
        "nav",
        "main",
        "footer",
        "aside",
        "section",
        "article",
        "form",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "ul",
        "ol",
        "dl",
        "div",
        "template",
        "title",
        "select",
        "fieldset",
    }
)


def html_signature(node: Node, src: bytes) -> str | None:
    if node.type == "doctype":
        return "doctype"
    if node.type not in HTML_ELEMENTS:
        return None
    tag = next((kid for kid in node.children if kid.type in ("start_tag", "self_closing_tag")), None)
    if tag is None:
        return None
    name = next((squash(text(kid, src)) for kid in tag.children if kid.type == "tag_name"), "")
    attributes = {}
    for attribute in (kid for kid in tag.children if kid.type == "attribute"):
        parts = named_children(attribute)
        if parts:
            attributes[squash(text(parts[0], src))] = unquote(squash(text(parts[-1], src))) if len(parts) > 1 else ""
    naming = next((f"{a}={attributes[a]}" for a in HTML_NAMING if a in attributes), None)
    if naming:
        return f"<{name} {naming}>"
    if name in HTML_LANDMARKS:  # one of a kind among its siblings, edited in place
        return f"<{name} class={attributes.get('class', '')}>"
    return f"<{name}> {squash(text(node, src))}"  # an item among like items: known by what it says


def html_container(node: Node, src: bytes) -> Container | None:
    if node.type in ("element", "document") and not any(kid.type in ("text", "entity") for kid in node.children):
        return Container("sibling elements", members=HTML_ELEMENTS)
    return None


HTML = Profile("html", grammar("tree_sitter_html"), html_container, html_signature)


# -- CSS -----------------------------------------------------------------------------------------------------


def css_signature(node: Node, src: bytes) -> str | None:
    kind = node.type
    if kind == "rule_set":
        return f"rule {field_text(node, 'selectors', src) or squash(text(named_children(node)[0], src))}"
    if kind == "declaration":
        names = [kid for kid in node.children if kid.type == "property_name"]
        return f"property {squash(text(names[0], src))}" if names else None
    if kind in ("media_statement", "supports_statement", "keyframes_statement", "at_rule"):
        block = next((kid for kid in node.children if kid.type in ("block", "keyframe_block_list")), None)
        return squash(src[node.start_byte : block.start_byte if block is not None else node.end_byte])
    return None


def css_container(node: Node, src: bytes) -> Container | None:
    if node.type == "stylesheet":
        return Container("style rules")
    if node.type == "block":
        owner = node.parent.type if node.parent is not None else ""
        return Container("declarations" if owner == "rule_set" else "style rules")
    return None


CSS = Profile(
    "css",
    grammar("tree_sitter_css"),
    css_container,
    css_signature,
    family=lambda node, src: "import" if node.type == "import_statement" else node.type,
)
