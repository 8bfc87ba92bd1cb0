"""Profiles for programming languages: Python, JavaScript, TypeScript (and TSX), Go, Rust.

Commutative parents are the places where order does not change what a program means, or where people
insert side by side without caring: module-level definitions, class and impl members, import lists, object
and dict literals, and lists of plain strings or of route calls (``path("users/", ...)``). A function body is
never one: its statements run in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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

MODULE = Container("module definitions")
CLASS = Container("class members", terminators=frozenset({b";", b","}))
OBJECT = Container("object keys", separator=b",", terminators=frozenset())
LIST = Container("list items", separator=b",", terminators=frozenset())
NAMES = Container("imported names", separator=b",", terminators=frozenset())
IMPORTS = Container("imports")


def _call(node: Node, src: bytes, callee_field: str, args_field: str) -> str | None:
    """``app.get("/x", h)`` is known as ``call app.get /x``: two routes for one path share a name."""
    callee = field_text(node, callee_field, src)
    args = node.child_by_field_name(args_field)
    first = named_children(args)[0] if args is not None and named_children(args) else None
    if callee is None or first is None or first.type not in ("string", "template_string"):
        return None
    return f"call {callee} {unquote(squash(text(first, src)))}"


def _only_named(node: Node, signature: Callable[[Node, bytes], str | None], src: bytes) -> bool:
    """Every child (comments aside) has a name: a literal of keys, strings or route calls, not of expressions."""
    kids = [kid for kid in named_children(node) if kid.type != "comment"]
    return bool(kids) and all(signature(kid, src) is not None for kid in kids)


# -- Python ------------------------------------------------------------------------------------------------

PY_IMPORTS = {"import_statement", "import_from_statement", "future_import_statement"}
PY_DEFINITIONS = {"function_definition": "def", "class_definition": "class"}
PY_NAMES = Container("imported names", separator=b",", terminators=frozenset(), member_field="name")


def py_signature(node: Node, src: bytes) -> str | None:
    kind = node.type
    if kind == "decorated_definition":
        inner = node.child_by_field_name("definition")
        accessors = [
            squash(text(d, src))
            for d in node.children
            if d.type == "decorator" and squash(text(d, src)).endswith((".setter", ".getter", ".deleter"))
        ]
        name = py_signature(inner, src) if inner is not None else None
        return " ".join([name, *accessors]) if name else None
    if kind in PY_DEFINITIONS:
        return f"{PY_DEFINITIONS[kind]} {field_text(node, 'name', src)}"
    if kind == "import_from_statement":
        return f"from {_py_module(node, src)} import"  # both sides adding names to it merge the names
    if kind == "expression_statement" and len(named_children(node)) == 1:
        inner = named_children(node)[0]
        if inner.type == "assignment":
            return f"= {field_text(inner, 'left', src)}"
        return py_signature(inner, src) if inner.type == "call" else None
    if kind == "call":
        return _call(node, src, "function", "arguments")
    if kind == "string":
        return f"str {squash(text(node, src))}"
    if kind == "pair":
        return f"key {unquote(field_text(node, 'key', src) or '')}"
    if kind in ("dotted_name", "aliased_import"):
        return f"name {squash(text(node, src))}"
    return None


def _py_module(node: Node, src: bytes) -> str:
    return (field_text(node, "module_name", src) or field_text(node, "name", src) or "").lower()


def py_keys(node: Node, src: bytes, name: str) -> Sequence[object]:
    if node.type in PY_IMPORTS:
        # isort's default (plain imports, then from-imports), its force-sort-within-sections, and
        # reorder-python-imports (by module, then the line without regard to case: "cast" before "Literal");
        # in each, ``from __future__`` imports come first: Python accepts them nowhere else
        is_from, later = node.type != "import_statement", node.type != "future_import_statement"
        module, line = _py_module(node, src), squash(text(node, src))
        return (
            (later, is_from, module, line),
            (later, module, is_from, line),
            (later, module, is_from, line.casefold(), line),
            (later, line.casefold(), line),
        )
    short = name.split(" ", 1)[-1]
    return ((short,), (short.casefold(),))


def py_container(node: Node, src: bytes) -> Container | None:
    if node.type == "module":
        return MODULE
    if node.type == "block" and node.parent is not None and node.parent.type == "class_definition":
        return CLASS
    if node.type in ("list", "dictionary") and _only_named(node, py_signature, src):
        return LIST if node.type == "list" else OBJECT
    if node.type == "import_from_statement" and not any(kid.type == "wildcard_import" for kid in node.children):
        return PY_NAMES
    return None


def py_family(node: Node, src: bytes) -> str:
    """Imports, definitions (and other statements), items of a literal: the order rules compare like with like."""
    if node.type in PY_IMPORTS or (node.parent is not None and node.parent.type == "import_from_statement"):
        return "import"
    return "item" if node.type in ("string", "call", "pair") else "definition"


def py_category(node: Node, src: bytes) -> str | None:
    """A key's group (``lint:js``), and ``from __future__`` imports: a section of their own, first in every
    import sorter's order and set off from the imports below by a blank line."""
    if node.type == "pair":
        return key_category((py_signature(node, src) or "")[4:])
    return "__future__" if node.type == "future_import_statement" else None


PYTHON = Profile(
    name="python",
    parse=grammar("tree_sitter_python"),
    container=py_container,
    signature=py_signature,
    family=py_family,
    category=py_category,
    sort_keys=py_keys,
)


# -- JavaScript, TypeScript ----------------------------------------------------------------------------------

JS_DECLARATIONS = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "class_declaration": "class",
    "abstract_class_declaration": "class",
    "interface_declaration": "interface",
    "type_alias_declaration": "type",
    "enum_declaration": "enum",
    "internal_module": "namespace",
    "module": "namespace",
    "function_signature": "function",
}
JS_MEMBERS = {"method_definition", "method_signature", "abstract_method_signature", "property_signature"}
JS_MODIFIERS = {"static", "get", "set", "*", "async", "readonly", "abstract"}
JS_ITEMS = {"pair", "shorthand_property_identifier", "string", "call_expression", "property_signature"}


def js_signature(node: Node, src: bytes) -> str | None:
    kind = node.type
    if kind in JS_DECLARATIONS:
        return f"{JS_DECLARATIONS[kind]} {field_text(node, 'name', src)}"
    if kind == "import_statement":
        kind_of = " type" if any(kid.type == "type" for kid in node.children) else ""
        return f"import{kind_of} from {unquote(field_text(node, 'source', src) or '')}"
    if kind == "export_statement":
        inner = node.child_by_field_name("declaration")
        name = js_signature(inner, src) if inner is not None else None
        if name:
            return f"export {name}"
        return "export default" if any(kid.type == "default" for kid in node.children) else None
    if kind in ("lexical_declaration", "variable_declaration"):
        names = [field_text(kid, "name", src) for kid in node.children if kid.type == "variable_declarator"]
        return "var " + ",".join(name or "" for name in names)
    if kind == "expression_statement" and len(named_children(node)) == 1:
        inner = named_children(node)[0]
        if inner.type == "assignment_expression":
            return f"= {field_text(inner, 'left', src)}"
        return _call(inner, src, "function", "arguments") if inner.type == "call_expression" else None
    if kind == "call_expression":
        return _call(node, src, "function", "arguments")
    if kind in JS_MEMBERS:
        modifiers = [squash(text(k, src)) for k in node.children if squash(text(k, src)) in JS_MODIFIERS]
        return " ".join(["member", *modifiers, unquote(field_text(node, "name", src) or "")])
    if kind in ("field_definition", "public_field_definition"):
        name = field_text(node, "property", src) or field_text(node, "name", src)
        static = any(kid.type == "static" for kid in node.children)
        return f"field {'static ' if static else ''}{name}"
    if kind == "pair":
        return f"key {unquote(field_text(node, 'key', src) or '')}"
    if kind in ("shorthand_property_identifier", "import_specifier", "export_specifier"):
        return f"key {squash(text(node, src))}"
    if kind == "string":
        return f"str {unquote(squash(text(node, src)))}"
    return None


def js_keys(node: Node, src: bytes, name: str) -> Sequence[object]:
    if node.type == "import_statement":
        source = unquote(field_text(node, "source", src) or "")
        line = squash(text(node, src))
        return ((source.casefold(), line), (line.casefold(),))
    short = name.split(" ")[-1]
    return ((short,), (short.casefold(),))


def js_container(node: Node, src: bytes) -> Container | None:
    kind = node.type
    if kind == "program":
        return MODULE
    if kind in ("class_body", "interface_body", "object_type"):
        return CLASS
    if kind == "object" and _only_named(node, _js_key, src):
        return OBJECT
    if kind == "named_imports":
        return NAMES
    if kind == "array" and _only_named(node, _js_item, src):
        return LIST
    return None


def _js_key(node: Node, src: bytes) -> str | None:
    """A key of an object literal; a spread (``...defaults``) has none, so such an object is no container:
    what it spreads may set the same keys, and then order decides."""
    keyed = ("pair", "shorthand_property_identifier", "method_definition")
    return js_signature(node, src) if node.type in keyed else None


def _js_item(node: Node, src: bytes) -> str | None:
    return js_signature(node, src) if node.type in ("string", "call_expression") else None


def js_family(node: Node, src: bytes) -> str:
    if node.type in ("import_statement", "import_specifier"):
        return "import"
    return "item" if node.type in JS_ITEMS else "definition"


def _js_profile(name: str, module: str, function: str) -> Profile:
    return Profile(
        name=name,
        parse=grammar(module, function),
        container=js_container,
        signature=js_signature,
        family=js_family,
        category=lambda node, src: key_category((js_signature(node, src) or "")[4:]) if node.type == "pair" else None,
        sort_keys=js_keys,
    )


JAVASCRIPT = _js_profile("javascript", "tree_sitter_javascript", "language")
TYPESCRIPT = _js_profile("typescript", "tree_sitter_typescript", "language_typescript")
TSX = _js_profile("tsx", "tree_sitter_typescript", "language_tsx")


# -- Go ------------------------------------------------------------------------------------------------------


def go_signature(node: Node, src: bytes) -> str | None:
    kind = node.type
    if kind == "function_declaration":
        return f"func {field_text(node, 'name', src)}"
    if kind == "method_declaration":
        receiver = node.child_by_field_name("receiver")
        params = named_children(receiver) if receiver is not None else []
        owner = field_text(params[0], "type", src) if params else None
        return f"func ({(owner or '').lstrip('*')}) {field_text(node, 'name', src)}"
    if kind in ("type_declaration", "var_declaration", "const_declaration"):
        specs = [kid for kid in node.children if kid.type.endswith("_spec")]
        names = [field_text(spec, "name", src) or "" for spec in specs]
        return f"{kind.split('_')[0]} {','.join(names)}" if names and all(names) else None
    if kind == "package_clause":
        return "package"
    if kind == "import_declaration":
        specs = [kid for kid in node.children if kid.type == "import_spec"]
        return f"import {field_text(specs[0], 'path', src)}" if specs else "import ()"
    if kind == "import_spec":
        return f"import {field_text(node, 'path', src)} {field_text(node, 'name', src) or ''}".rstrip()
    if kind == "keyed_element":
        return f"key {field_text(node, 'key', src)}"
    return None


def go_container(node: Node, src: bytes) -> Container | None:
    if node.type == "source_file":
        return MODULE
    if node.type == "import_spec_list":
        return IMPORTS
    if node.type == "literal_value" and _only_named(node, go_signature, src):
        return OBJECT  # the keys of a struct or map literal
    return None


GO = Profile(
    name="go",
    parse=grammar("tree_sitter_go"),
    container=go_container,
    signature=go_signature,
    family=lambda node, src: "import" if node.type in ("import_declaration", "import_spec") else "definition",
    sort_keys=lambda node, src, name: ((name,), (name.casefold(),)),
)


# -- Rust ----------------------------------------------------------------------------------------------------

RUST_ITEMS = {
    "function_item": "fn",
    "function_signature_item": "fn",
    "struct_item": "struct",
    "enum_item": "enum",
    "union_item": "union",
    "trait_item": "trait",
    "type_item": "type",
    "mod_item": "mod",
    "const_item": "const",
    "static_item": "static",
    "macro_definition": "macro",
    "associated_type": "type",
}


def rust_signature(node: Node, src: bytes) -> str | None:
    kind = node.type
    if kind in RUST_ITEMS:
        return f"{RUST_ITEMS[kind]} {field_text(node, 'name', src)}"
    if kind == "use_declaration":
        argument = node.child_by_field_name("argument")
        return rust_signature(argument, src) if argument is not None else None
    if kind == "scoped_use_list":
        return f"use {field_text(node, 'path', src)}::{{}}"  # both sides adding names to it merge the names
    if kind == "use_list" and node.parent is not None and node.parent.type == "use_declaration":
        return "use {}"
    if kind in ("field_initializer", "shorthand_field_initializer"):
        return f"key {field_text(node, 'field', src) or squash(text(node, src))}"
    if kind == "impl_item":
        body = node.child_by_field_name("body")
        end = body.start_byte if body is not None else node.end_byte
        return squash(src[node.start_byte : end])
    return None


def rust_container(node: Node, src: bytes) -> Container | None:
    if node.type == "source_file":
        return MODULE
    if node.type == "declaration_list":
        owner = node.parent.type if node.parent is not None else ""
        return Container({"impl_item": "impl items", "trait_item": "trait items"}.get(owner, "module definitions"))
    if node.type == "use_list":
        return NAMES
    if node.type == "field_initializer_list":
        return OBJECT  # the fields of a struct expression; ``..base`` is known by its text and stays last
    return None


RUST = Profile(
    name="rust",
    parse=grammar("tree_sitter_rust"),
    container=rust_container,
    signature=rust_signature,
    # attributes travel with the item below them like comments; a ";" after a macro call stays with the call
    comments=frozenset({"line_comment", "block_comment", "attribute_item", "empty_statement"}),
    family=lambda node, src: (
        "import"
        if node.type == "use_declaration" or (node.parent is not None and node.parent.type == "use_list")
        else "definition"
    ),
    sort_keys=lambda node, src, name: ((name,), (name.casefold(),)),
)
