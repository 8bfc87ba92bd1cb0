"""The structured tier: sibling tasks' insertions merged by syntax, in the order the file already follows.

Each test is a real-looking snippet: base, ours (the side already merged) and theirs (the side merged in).
"""

from __future__ import annotations

from textwrap import dedent

import pytest

from merges.engine.resolvers.structured import (
    AS_PLACED,
    FINISH_ORDER,
    GROUPED,
    NEWEST_FIRST,
    SORTED,
    StructuredMerge,
    merge_structured,
    profile_for,
)


def merge(path: str, base: str, ours: str, theirs: str) -> StructuredMerge | None:
    return merge_structured(path, dedent(base), dedent(ours), dedent(theirs))


def merged(path: str, base: str, ours: str, theirs: str) -> StructuredMerge:
    result = merge(path, base, ours, theirs)
    assert result is not None, "declined"
    profile = profile_for(path)
    assert profile is not None and profile.parse(result.text.encode()) is not None, "does not parse"
    return result


def kinds(result: StructuredMerge) -> list[tuple[str, str]]:
    return [(region.kind, region.order) for region in result.regions]


# -- Python --------------------------------------------------------------------------------------------------

PY_CLASS = dedent("""\
    import os


    class Parser:
        \"\"\"Reads things.\"\"\"

        def __init__(self, text):
            self.text = text

        def tokens(self):
            return self.text.split()
    """)
LINES = "\n    def lines(self):\n        return self.text.splitlines()\n"
COUNT = "\n    # Counting is cheap.\n    def count(self):\n        return len(self.tokens())\n"


def test_python_both_sides_add_a_method_to_a_class():
    result = merged("parser.py", PY_CLASS, PY_CLASS + LINES, PY_CLASS + COUNT)
    assert result.text == PY_CLASS + LINES + COUNT
    assert kinds(result) == [("class members", FINISH_ORDER)]
    assert result.regions[0].describe() == "kept both: class members, finish order"
    assert (result.regions[0].start_line, result.regions[0].end_line) == (13, 18)
    assert result.language == "python"


def test_python_spaces_ending_a_members_line_stay_with_it_not_with_the_gap():
    base = "class A:\n    def f(self):\n        return 1  \n"  # two spaces end f's last line
    g, h = "\n    def g(self):\n        return 2\n", "\n    def h(self):\n        return 3\n"
    assert merged("a.py", base, base + g, base + h).text == base + g + h


def test_python_both_sides_add_imports_in_sorted_place():
    base = "import json\nimport os\nimport sys\n\n\ndef main():\n    pass\n"
    ours = base.replace("import os\n", "import os\nimport re\n")
    theirs = base.replace("import json\n", "import json\nimport logging\n")
    theirs = theirs.replace("import sys\n", "import sys\nimport time\n")
    result = merged("cli.py", base, ours, theirs)
    assert result.text.startswith("import json\nimport logging\nimport os\nimport re\nimport sys\nimport time\n\n\n")
    assert kinds(result) == [("imports", AS_PLACED)] * 3  # one region per place something was inserted
    assert [(r.start_line, r.end_line) for r in result.regions] == [(2, 2), (4, 4), (6, 6)]


def test_python_imports_are_sorted_within_their_section():
    base = "import atexit\nimport contextlib\nimport os\n\nimport attr\nimport pluggy\n"
    ours = base.replace("import atexit\n", "import atexit\nimport codecs\n")
    theirs = base.replace("import atexit\n", "import atexit\nimport bisect\n")
    result = merged("main.py", base, ours, theirs)
    assert result.text == base.replace("import atexit\n", "import atexit\nimport bisect\nimport codecs\n")
    assert kinds(result) == [("imports", SORTED)]  # the third-party section below starts again from "a"


def test_python_imports_sorted_by_module_then_without_regard_to_case_as_reorder_python_imports_does():
    base = (
        "import argparse\nfrom gettext import gettext\nimport os\nfrom typing import cast\nfrom typing import Literal\n"
    )
    ours = base.replace("import argparse\n", "import argparse\nfrom collections.abc import Mapping\n")
    theirs = base.replace("import argparse\n", "import argparse\nfrom collections.abc import Callable\n")
    result = merged("main.py", base, ours, theirs)
    both = "from collections.abc import Callable\nfrom collections.abc import Mapping\n"
    assert result.text == base.replace("import argparse\n", "import argparse\n" + both)
    assert kinds(result) == [("imports", SORTED)]


def test_python_imports_both_put_at_the_head_of_a_section_open_it_together():
    base = "from __future__ import annotations\n\nimport threading\nimport traceback\n"
    ours = base.replace("\n\nimport threading", "\n\nfrom collections.abc import Generator\nimport threading")
    theirs = base.replace("\n\nimport threading", "\n\nfrom collections.abc import Callable\nimport threading")
    result = merged("main.py", base, ours, theirs)
    both = "from collections.abc import Callable\nfrom collections.abc import Generator\n"
    assert result.text == base.replace("import threading", both + "import threading")
    assert kinds(result) == [("imports", SORTED)]


def test_python_imports_both_added_at_one_place_go_where_sorting_puts_them():
    base = "import json\nimport os\nimport sys\n"
    ours = base + "import typing\n"
    theirs = base + "import time\n"
    result = merged("a.py", base, ours, theirs)
    assert result.text == base + "import time\nimport typing\n"
    assert kinds(result) == [("imports", SORTED)]


def test_python_imports_a_side_left_unsorted_go_in_finish_order():
    base = "import json\nimport os\nimport sys\n"
    ours = base + "import typing\n"
    theirs = base + "import shutil\n"  # not in its sorted place: the block does not follow sorting for them
    result = merged("a.py", base, ours, theirs)
    assert result.text == base + "import typing\nimport shutil\n"
    assert kinds(result) == [("imports", FINISH_ORDER)]


def test_python_imports_equal_without_case_are_sorted_by_case_as_tools_do():
    # pytest f617bab0a2 (src/_pytest/capture.py): "Final" and "final" from typing, in a block sorted without
    # regard to case; the author put the capitalised one first
    base = "from typing import AnyStr\nfrom typing import BinaryIO\nfrom typing import Generator\n"
    ours = base.replace("Generator", "final\nfrom typing import Generator")
    theirs = base.replace("Generator", "Final\nfrom typing import Generator")
    result = merged("capture.py", base, ours, theirs)
    assert result.text == base.replace("Generator", "Final\nfrom typing import final\nfrom typing import Generator")
    assert kinds(result) == [("imports", SORTED)]


def test_python_future_import_stays_first_in_its_own_section():
    # click ec258fef (src/click/formatting.py): ours opened the file with ``from __future__ import annotations``
    # and a blank line, theirs replaced ``import typing as t`` at the top. Sorted as plain imports before
    # from-imports, the future import went second, which Python refuses; the author kept it first, set off
    base = dedent("""\
        import typing as t
        from contextlib import contextmanager
        from gettext import gettext as _

        from ._compat import term_len
        """)
    ours = "from __future__ import annotations\n\n" + base
    theirs = base.replace("import typing as t", "import collections.abc as cabc")
    result = merged("formatting.py", base, ours, theirs)
    assert result.text == "from __future__ import annotations\n\n" + theirs
    assert kinds(result) == [("imports", SORTED)]


def test_python_imports_both_inserted_between_two_imports_out_of_sorted_order_are_declined():
    # pip 063b899c3b (vcs/mercurial.py) and sphinx b9a3f7e3df: where sorting cannot place them, the author's
    # order of two imports put between two others was ours-first only half the time
    base = "import os\n\nfrom pip._internal.utils.misc import display_path\nfrom pip._internal.vcs import vcs\n"
    at = "from pip._internal.vcs"
    ours = base.replace(at, "from pip._internal.utils.compat import samefile\n" + at)
    theirs = base.replace(at, "from pip._internal.exceptions import BadCommand\n" + at)
    assert merge("mercurial.py", base, ours, theirs) is None


def test_python_imports_both_appended_to_their_section_still_go_in_finish_order():
    base = "from flask import Flask\n\napp = Flask(__name__)\n"
    ours = base.replace("Flask\n\n", "Flask\nfrom flask import jsonify\n\n")
    theirs = base.replace("Flask\n\n", "Flask\nfrom flask import session\n\n")
    result = merged("app.py", base, ours, theirs)
    assert result.text.startswith("from flask import Flask\nfrom flask import jsonify\nfrom flask import session\n\n")


def test_python_same_function_added_by_both_sides_is_declined():
    base = "def load():\n    pass\n"
    ours = base + "\n\ndef parse(text):\n    return text.split()\n"
    theirs = base + "\n\ndef parse(text):\n    return text.splitlines()\n"
    assert merge("load.py", base, ours, theirs) is None


def test_python_same_function_added_identically_is_kept_once():
    base = "def load():\n    pass\n"
    ours = base + "\n\ndef parse(text):\n    return text.split()\n"
    theirs = ours
    assert merged("load.py", base, ours, theirs).text == ours
    theirs = base + "\n\ndef parse(text):\n    return text.split()\n\n\ndef dump():\n    pass\n"
    assert merged("load.py", base, ours, theirs).text == theirs


def test_python_edit_that_crosses_a_method_boundary_is_declined():
    base = dedent("""\
        class A:
            def a(self):
                return 1

            def b(self):
                return 2
        """)
    ours = "class A:\n    def a(self):\n        x = 1\n        return 2\n"  # a and b fused into one method
    theirs = base.replace("        return 1\n", "        return 1\n\n    def c(self):\n        return 3\n")
    assert merge("a.py", base, ours, theirs) is None


def test_python_deleting_a_method_the_other_side_edited_is_declined():
    base = "def a():\n    return 1\n\n\ndef b():\n    return 2\n"
    ours = "def b():\n    return 2\n\n\ndef c():\n    return 3\n"
    theirs = "def a():\n    return 10\n\n\ndef b():\n    return 2\n"
    assert merge("m.py", base, ours, theirs) is None


def test_python_both_sides_editing_one_statement_is_declined():
    base = "def f():\n    total = compute(a, b)\n    return total\n"
    ours = "def f():\n    total = compute(a, c)\n    return total\n"
    theirs = "def f():\n    result = compute(a, b)\n    return total\n"
    assert merge("f.py", base, ours, theirs) is None


def test_python_one_side_edits_a_method_the_other_adds_one():
    base = "class A:\n    def a(self):\n        return 1\n\n    def b(self):\n        return 2\n"
    ours = base.replace("return 1", "return 11")
    theirs = base.replace("        return 1\n", "        return 1\n\n    def c(self):\n        return 3\n")
    result = merged("a.py", base, ours, theirs)
    assert result.text == theirs.replace("return 1\n", "return 11\n")


def test_python_both_sides_add_routes_to_urlpatterns():
    base = 'urlpatterns = [\n    path("", views.index),\n    path("login/", views.login),\n]\n'
    ours = base.replace("]\n", '    path("logout/", views.logout),\n]\n')
    theirs = base.replace("]\n", '    path("profile/", views.profile),  # the user\'s page\n]\n')
    result = merged("urls.py", base, ours, theirs)
    assert result.text == base.replace(
        "]\n", '    path("logout/", views.logout),\n    path("profile/", views.profile),  # the user\'s page\n]\n'
    )
    assert kinds(result) == [("list items", FINISH_ORDER)]


def test_python_two_routes_for_one_path_are_declined():
    base = 'urlpatterns = [\n    path("", views.index),\n]\n'
    ours = base.replace("]\n", '    path("login/", views.login),\n]\n')
    theirs = base.replace("]\n", '    path("login/", auth.login_view),\n]\n')
    assert merge("urls.py", base, ours, theirs) is None


def test_python_dict_entries_added_at_the_end_of_an_inline_dict_get_a_comma():
    base = 'SETTINGS = {"debug": False, "port": 80}\n'
    ours = 'SETTINGS = {"debug": False, "port": 80, "host": "a"}\n'
    theirs = 'SETTINGS = {"debug": False, "port": 80, "tls": True}\n'
    assert (
        merged("s.py", base, ours, theirs).text == 'SETTINGS = {"debug": False, "port": 80, "host": "a", "tls": True}\n'
    )


# -- JavaScript, TypeScript ------------------------------------------------------------------------------------

JS_CLASS = dedent("""\
    import { api } from "./api.js";
    import { format } from "./format.js";

    export class Cart {
      constructor() {
        this.items = [];
      }

      add(item) {
        this.items.push(item);
      }
    }
    """)
JS_ADD = "    this.items.push(item);\n  }\n"


def test_javascript_both_sides_add_a_method_and_an_import():
    ours = JS_CLASS.replace(JS_ADD, JS_ADD + "\n  clear() {\n    this.items = [];\n  }\n").replace(
        'import { format } from "./format.js";\n',
        'import { format } from "./format.js";\nimport { log } from "./log.js";\n',
    )
    theirs = JS_CLASS.replace(
        JS_ADD,
        JS_ADD + "\n  // Sum of prices.\n  total() {\n    return this.items.reduce((a, i) => a + i.price, 0);\n  }\n",
    ).replace(
        'import { api } from "./api.js";\n',
        'import { api } from "./api.js";\nimport { currency } from "./currency.js";\n',
    )
    result = merged("cart.js", JS_CLASS, ours, theirs)
    assert result.text.startswith(
        dedent("""\
        import { api } from "./api.js";
        import { currency } from "./currency.js";
        import { format } from "./format.js";
        import { log } from "./log.js";

        """)
    )
    assert result.text.endswith(
        JS_ADD + "\n  clear() {\n    this.items = [];\n  }\n\n  // Sum of prices.\n  total() {\n"
        "    return this.items.reduce((a, i) => a + i.price, 0);\n  }\n}\n"
    )
    assert kinds(result) == [("imports", AS_PLACED), ("imports", AS_PLACED), ("class members", FINISH_ORDER)]


def test_javascript_two_routes_for_one_path_are_declined():
    base = 'const app = express();\n\napp.get("/", home);\n'
    ours = base + 'app.get("/users", listUsers);\n'
    theirs = base + 'app.get("/users", users.index);\n'
    assert merge("server.js", base, ours, theirs) is None
    theirs = base + 'app.post("/users", createUser);\n'
    assert (
        merged("server.js", base, ours, theirs).text
        == base + 'app.get("/users", listUsers);\napp.post("/users", createUser);\n'
    )


def test_javascript_object_keys_from_both_sides_keep_their_commas():
    base = 'module.exports = {\n  mode: "production",\n  entry: "./src/index.js"\n};\n'
    ours = 'module.exports = {\n  mode: "production",\n  entry: "./src/index.js",\n  devtool: "source-map"\n};\n'
    theirs = 'module.exports = {\n  mode: "production",\n  entry: "./src/index.js",\n  target: "web" // browsers\n};\n'
    result = merged("webpack.config.js", base, ours, theirs)
    assert result.text == (
        'module.exports = {\n  mode: "production",\n  entry: "./src/index.js",\n  devtool: "source-map",\n'
        '  target: "web" // browsers\n};\n'
    )
    assert kinds(result) == [("object keys", FINISH_ORDER)]


def test_typescript_both_sides_add_a_method_and_an_interface_member():
    base = dedent("""\
        export interface User {
          id: number;
          name: string;
        }

        export class UserService {
          private users: User[] = [];

          find(id: number): User | undefined {
            return this.users.find((u) => u.id === id);
          }
        }
        """)
    ours = base.replace("  name: string;\n", "  name: string;\n  email?: string;\n").replace(
        "  }\n}\n", "  }\n\n  all(): User[] {\n    return [...this.users];\n  }\n}\n"
    )
    theirs = base.replace("  name: string;\n", "  name: string;\n  admin: boolean;\n").replace(
        "  }\n}\n",
        "  }\n\n  remove(id: number): void {\n    this.users = this.users.filter((u) => u.id !== id);\n  }\n}\n",
    )
    result = merged("users.ts", base, ours, theirs)
    assert "  name: string;\n  email?: string;\n  admin: boolean;\n}" in result.text
    assert result.text.index("all(): User[]") < result.text.index("remove(id: number)")
    assert kinds(result) == [("class members", FINISH_ORDER), ("class members", FINISH_ORDER)]


def test_tsx_both_sides_add_a_component():
    base = 'import React from "react";\n\nexport function A() {\n  return <div className="a" />;\n}\n'
    ours = base + "\nexport function B() {\n  return <span>b</span>;\n}\n"
    theirs = base + "\nexport function C() {\n  return <p>c</p>;\n}\n"
    result = merged("parts.tsx", base, ours, theirs)
    assert result.text == ours + "\nexport function C() {\n  return <p>c</p>;\n}\n"
    assert kinds(result) == [("module definitions", FINISH_ORDER)]


# -- Go, Rust ------------------------------------------------------------------------------------------------

GO = """\
    package store

    import (
    \t"errors"
    \t"sync"
    )

    // Store keeps values.
    type Store struct {
    \tmu   sync.Mutex
    \tdata map[string]string
    }

    // Get returns a value.
    func (s *Store) Get(key string) (string, error) {
    \tv, ok := s.data[key]
    \tif !ok {
    \t\treturn "", errors.New("missing")
    \t}
    \treturn v, nil
    }
    """


def test_go_both_sides_add_a_method_and_an_import():
    base = dedent(GO)
    ours = base.replace('\t"errors"\n', '\t"errors"\n\t"fmt"\n') + (
        "\n// Set stores a value.\nfunc (s *Store) Set(key, value string) {\n\ts.data[key] = value\n}\n"
    )
    theirs = base.replace('\t"sync"\n', '\t"sync"\n\t"time"\n') + (
        "\n// Len counts the values.\nfunc (s *Store) Len() int {\n\treturn len(s.data)\n}\n"
    )
    result = merged("store.go", base, ours, theirs)
    assert '\t"errors"\n\t"fmt"\n\t"sync"\n\t"time"\n' in result.text
    assert result.text.endswith(
        "}\n\n// Set stores a value.\nfunc (s *Store) Set(key, value string) {\n\ts.data[key] = value\n}\n"
        "\n// Len counts the values.\nfunc (s *Store) Len() int {\n\treturn len(s.data)\n}\n"
    )
    assert ("module definitions", FINISH_ORDER) in kinds(result)


def test_rust_both_sides_add_names_to_one_use_list():
    base = (
        "pub use crate::{\n    searcher::{\n        BinaryDetection, ConfigError, Encoding, MmapChoice,\n    },\n};\n"
    )
    ours = base.replace("MmapChoice,", "MmapChoice, Searcher,")
    theirs = base.replace("MmapChoice,\n", "MmapChoice,\n        SearcherBuilder,\n")
    result = merged("lib.rs", base, ours, theirs)
    assert result.text == base.replace("MmapChoice,\n", "MmapChoice, Searcher,\n        SearcherBuilder,\n")
    assert kinds(result) == [("imports", SORTED)]


def test_go_same_method_added_by_both_sides_is_declined():
    base = dedent(GO)
    ours = base + "\nfunc (s *Store) Len() int {\n\treturn len(s.data)\n}\n"
    theirs = base + "\nfunc (s *Store) Len() int {\n\treturn 0\n}\n"
    assert merge("store.go", base, ours, theirs) is None


def test_go_both_sides_add_fields_to_a_struct_literal():
    base = 'package a\n\nvar config = Config{\n\tName: "a",\n\tPort: 80,\n}\n'
    ours = base.replace("\tPort: 80,\n", "\tPort: 80,\n\tTLS:  true,\n")
    theirs = base.replace("\tPort: 80,\n", '\tPort: 80,\n\tHost: "example.org", // public name\n')
    result = merged("config.go", base, ours, theirs)
    assert result.text == base.replace(
        "\tPort: 80,\n", '\tPort: 80,\n\tTLS:  true,\n\tHost: "example.org", // public name\n'
    )
    assert kinds(result) == [("object keys", FINISH_ORDER)]


RUST = """\
    use std::collections::HashMap;
    use std::fmt;

    pub struct Registry {
        items: HashMap<String, u32>,
    }

    impl Registry {
        /// An empty registry.
        pub fn new() -> Self {
            Registry { items: HashMap::new() }
        }
    }
    """


def test_rust_both_sides_add_a_method_to_an_impl_and_a_use():
    base = dedent(RUST)
    ours = base.replace("use std::fmt;\n", "use std::fmt;\nuse std::sync::Arc;\n").replace(
        "    }\n}\n",
        "    }\n\n    /// How many.\n    pub fn len(&self) -> usize {\n        self.items.len()\n    }\n}\n",
    )
    theirs = base.replace(
        "use std::collections::HashMap;\n", "use std::collections::HashMap;\nuse std::error::Error;\n"
    )
    theirs = theirs.replace(
        "    }\n}\n",
        "    }\n\n    #[inline]\n    pub fn get(&self, key: &str) -> Option<u32> {\n"
        "        self.items.get(key).copied()\n    }\n}\n",
    )
    result = merged("registry.rs", base, ours, theirs)
    assert result.text.startswith(
        "use std::collections::HashMap;\nuse std::error::Error;\nuse std::fmt;\nuse std::sync::Arc;\n"
    )
    assert result.text.index("/// How many.") < result.text.index("#[inline]") < result.text.index("pub fn get")
    assert ("impl items", FINISH_ORDER) in kinds(result)


def test_rust_both_sides_add_fields_to_a_struct_expression_before_its_base():
    base = "fn f() -> S {\n    S {\n        a: 1,\n        ..Default::default()\n    }\n}\n"
    ours = base.replace("a: 1,\n", "a: 1,\n        b: 2,\n")
    theirs = base.replace("a: 1,\n", "a: 1,\n        c,\n")
    assert merged("s.rs", base, ours, theirs).text == base.replace("a: 1,\n", "a: 1,\n        b: 2,\n        c,\n")


# -- JSON, YAML, TOML -------------------------------------------------------------------------------------------

PACKAGE = """\
    {
      "name": "shop",
      "scripts": {
        "build": "vite build",
        "lint:css": "stylelint src",
        "lint:js": "eslint src",
        "test": "vitest",
        "test:e2e": "playwright test"
      },
      "dependencies": {
        "axios": "^1.6.0",
        "react": "^18.2.0",
        "zod": "^3.22.0"
      }
    }
    """


def test_json_both_sides_add_keys():
    base = dedent(PACKAGE)
    ours = base.replace('  "name": "shop",\n', '  "name": "shop",\n  "private": true,\n')
    theirs = base.replace('    "zod": "^3.22.0"\n  }\n}', '    "zod": "^3.22.0"\n  },\n  "license": "MIT"\n}')
    result = merged("package.json", base, ours, theirs)
    assert result.text == ours.replace(
        '    "zod": "^3.22.0"\n  }\n}', '    "zod": "^3.22.0"\n  },\n  "license": "MIT"\n}'
    )


def test_json_sorted_dependencies_stay_sorted_whichever_side_finished_first():
    base = dedent(PACKAGE)
    ours = base.replace('    "react": "^18.2.0",\n', '    "react": "^18.2.0",\n    "uuid": "^9.0.0",\n')
    theirs = base.replace('    "react": "^18.2.0",\n', '    "react": "^18.2.0",\n    "vite": "^5.0.0",\n')
    expected = base.replace(
        '    "react": "^18.2.0",\n', '    "react": "^18.2.0",\n    "uuid": "^9.0.0",\n    "vite": "^5.0.0",\n'
    )
    result = merged("package.json", base, ours, theirs)
    assert result.text == expected
    assert kinds(result) == [("object keys", SORTED)]
    assert merged("package.json", base, theirs, ours).text == expected


def test_json_keys_a_side_put_out_of_order_go_in_finish_order():
    base = dedent(PACKAGE)
    ours = base.replace('    "zod": "^3.22.0"\n', '    "zod": "^3.22.0",\n    "zustand": "^4.4.0"\n')
    theirs = base.replace('    "zod": "^3.22.0"\n', '    "zod": "^3.22.0",\n    "yup": "^1.3.0"\n')
    result = merged("package.json", base, ours, theirs)
    assert '    "zod": "^3.22.0",\n    "zustand": "^4.4.0",\n    "yup": "^1.3.0"\n  }\n' in result.text
    assert kinds(result) == [("object keys", FINISH_ORDER)]


def test_json_scripts_grouped_by_prefix_stay_grouped():
    base = dedent(PACKAGE)
    ours = base.replace(
        '    "lint:js": "eslint src",\n', '    "lint:js": "eslint src",\n    "test:unit": "vitest run",\n'
    )
    theirs = base.replace(
        '    "lint:js": "eslint src",\n', '    "lint:js": "eslint src",\n    "lint:md": "markdownlint .",\n'
    )
    result = merged("package.json", base, ours, theirs)
    assert (
        '"lint:js": "eslint src",\n    "lint:md": "markdownlint .",\n    "test:unit": "vitest run",\n    "test"'
        in result.text
    )
    assert kinds(result) == [("object keys", GROUPED)]


def test_json_keys_added_to_an_empty_object_by_both_sides():
    assert merged("a.json", "{}\n", '{\n  "a": 1\n}\n', '{\n  "b": 2\n}\n').text == '{\n  "a": 1,\n  "b": 2\n}\n'
    assert merged("a.json", "{}\n", '{"a": 1}\n', '{"b": 2}\n').text == '{"a": 1, "b": 2}\n'


def test_json_one_side_edits_a_value_the_other_adds_a_key_next_to_it():
    base = '{\n  "name": "shop",\n  "version": "1.0.0"\n}\n'
    ours = '{\n  "name": "shop",\n  "version": "1.1.0"\n}\n'
    theirs = '{\n  "name": "shop",\n  "version": "1.0.0",\n  "private": true\n}\n'
    assert (
        merged("package.json", base, ours, theirs).text
        == '{\n  "name": "shop",\n  "version": "1.1.0",\n  "private": true\n}\n'
    )


def test_json_same_key_added_by_both_sides_is_declined():
    base = '{\n  "name": "shop"\n}\n'
    ours = '{\n  "name": "shop",\n  "version": "1.0.0"\n}\n'
    theirs = '{\n  "name": "shop",\n  "version": "2.0.0"\n}\n'
    assert merge("package.json", base, ours, theirs) is None


def test_yaml_both_sides_add_mapping_keys_and_list_items():
    base = dedent("""\
        name: ci
        on:
          push:
            branches: [main]
        env:
          PYTHON: "3.11"  # the oldest we support
        services:
          - postgres
          - redis
        """)
    ours = base.replace(
        '  PYTHON: "3.11"  # the oldest we support\n', '  PYTHON: "3.11"  # the oldest we support\n  NODE: "20"\n'
    )
    ours = ours.replace("  - redis\n", "  - redis\n  - minio\n")
    theirs = base.replace(
        '  PYTHON: "3.11"  # the oldest we support\n',
        '  PYTHON: "3.11"  # the oldest we support\n  # Keep in step with Dockerfile.\n  GO: "1.22"\n',
    )
    theirs = theirs.replace("  - redis\n", "  - redis\n  - mailhog\n")
    result = merged("ci.yml", base, ours, theirs)
    assert result.text == base.replace(
        '  PYTHON: "3.11"  # the oldest we support\n',
        '  PYTHON: "3.11"  # the oldest we support\n  NODE: "20"\n  # Keep in step with Dockerfile.\n  GO: "1.22"\n',
    ).replace("  - redis\n", "  - redis\n  - minio\n  - mailhog\n")
    assert kinds(result) == [("mapping keys", FINISH_ORDER), ("list items", FINISH_ORDER)]


def test_toml_both_sides_add_table_keys_and_sorted_dependencies():
    base = dedent("""\
        [project]
        name = "shop"
        dependencies = [
            "django>=5.2",
            "httpx>=0.27",
            "pyyaml>=6",
        ]

        [tool.ruff]
        line-length = 120
        """)
    ours = base.replace('    "httpx>=0.27",\n', '    "httpx>=0.27",\n    "jinja2>=3",\n').replace(
        "line-length = 120\n", 'line-length = 120\ntarget-version = "py311"\n'
    )
    theirs = base.replace('    "django>=5.2",\n', '    "django>=5.2",\n    "gunicorn>=22",\n').replace(
        "line-length = 120\n", "line-length = 120\nfix = true\n"
    )
    result = merged("pyproject.toml", base, ours, theirs)
    assert (
        '    "django>=5.2",\n    "gunicorn>=22",\n    "httpx>=0.27",\n    "jinja2>=3",\n    "pyyaml>=6",\n'
        in result.text
    )
    assert result.text.endswith('line-length = 120\ntarget-version = "py311"\nfix = true\n')
    same_place = base.replace('    "pyyaml>=6",\n', '    "pyyaml>=6",\n    "whitenoise>=6",\n')
    other = base.replace('    "pyyaml>=6",\n', '    "pyyaml>=6",\n    "redis>=5",\n')
    result = merged("pyproject.toml", base, same_place, other)
    assert '    "pyyaml>=6",\n    "redis>=5",\n    "whitenoise>=6",\n]' in result.text
    assert kinds(result) == [("list items", SORTED)]


# -- CSS, HTML, Markdown --------------------------------------------------------------------------------------


def test_css_both_sides_add_rules_and_declarations():
    base = "/* Buttons */\n.button {\n  color: white;\n  padding: 4px;\n}\n\n.link {\n  color: blue;\n}\n"
    ours = base.replace("  padding: 4px;\n", "  padding: 4px;\n  border-radius: 2px;\n") + ".card {\n  margin: 0;\n}\n"
    theirs = (
        base.replace("  padding: 4px;\n", "  padding: 4px;\n  cursor: pointer;\n")
        + "\n.badge {\n  font-size: 10px;\n}\n"
    )
    result = merged("site.css", base, ours, theirs)
    assert "  padding: 4px;\n  border-radius: 2px;\n  cursor: pointer;\n}" in result.text
    assert result.text.index(".card") < result.text.index(".badge")
    assert ("declarations", FINISH_ORDER) in kinds(result)


def test_css_same_property_added_by_both_sides_is_declined():
    base = ".button {\n  color: white;\n}\n"
    ours = ".button {\n  color: white;\n  margin: 0;\n}\n"
    theirs = ".button {\n  color: white;\n  margin: 4px;\n}\n"
    assert merge("site.css", base, ours, theirs) is None


def test_html_both_sides_add_sibling_elements():
    base = dedent("""\
        <nav>
          <ul>
            <li><a href="/">Home</a></li>
            <li><a href="/about">About</a></li>
          </ul>
        </nav>
        """)
    ours = base.replace(
        '    <li><a href="/about">About</a></li>\n',
        '    <li><a href="/about">About</a></li>\n    <li><a href="/blog">Blog</a></li>\n',
    )
    theirs = base.replace(
        '    <li><a href="/about">About</a></li>\n',
        '    <li><a href="/about">About</a></li>\n    <!-- new -->\n    <li><a href="/shop">Shop</a></li>\n',
    )
    result = merged("nav.html", base, ours, theirs)
    assert result.text == ours.replace(
        '<a href="/blog">Blog</a></li>\n',
        '<a href="/blog">Blog</a></li>\n    <!-- new -->\n    <li><a href="/shop">Shop</a></li>\n',
    )
    assert kinds(result) == [("sibling elements", FINISH_ORDER)]


def test_markdown_both_sides_add_list_items():
    base = "# Shop\n\n## Features\n\n- Cart\n- Checkout\n\n## License\n\nMIT\n"
    ours = base.replace("- Checkout\n", "- Checkout\n- Wishlist\n")
    theirs = base.replace("- Checkout\n", "- Checkout\n- Coupons\n  (percent or fixed)\n")
    result = merged("README.md", base, ours, theirs)
    assert result.text == base.replace("- Checkout\n", "- Checkout\n- Wishlist\n- Coupons\n  (percent or fixed)\n")
    assert kinds(result) == [("list items", FINISH_ORDER)]


def test_markdown_both_sides_add_items_to_a_nested_list():
    base = "- Arguments:\n  - `NoArgs` - none.\n  - `ExactArgs(int)` - exactly N.\n- Content:\n  - `OnlyValidArgs`.\n"
    ours = base.replace("exactly N.\n", "exactly N.\n  - `RangeArgs(min, max)` - between min and max.\n")
    theirs = base.replace("exactly N.\n", "exactly N.\n  - `MaximumNArgs(int)` - at most N.\n")
    result = merged("guide.md", base, ours, theirs)
    assert result.text == ours.replace("min and max.\n", "min and max.\n  - `MaximumNArgs(int)` - at most N.\n")
    assert kinds(result) == [("list items", FINISH_ORDER)]


# -- Changelogs ----------------------------------------------------------------------------------------------

CHANGES_RST = """\
    Changes
    =======

    Version 2.1.0
    -------------

    Unreleased

    -   Add ``--json`` to ``status``. :pr:`41`
    -   Fix: a rename is no longer counted twice. :issue:`38`
    -   Fix: the lock is released on timeout.
    -   Docs: explain the merge driver.

    Version 2.0.0
    -------------

    Released 2024-05-01

    -   Drop Python 3.8.
    """


def test_changelog_entries_grouped_by_prefix_stay_grouped():
    base = dedent(CHANGES_RST)
    ours = base.replace("    -   Fix: the lock is released on timeout.\n", "").replace(
        "-   Fix: the lock is released on timeout.\n",
        "-   Fix: the lock is released on timeout.\n-   Docs: add a FAQ.\n",
    )
    theirs = base.replace(
        "-   Fix: the lock is released on timeout.\n",
        "-   Fix: the lock is released on timeout.\n-   Fix: paths with spaces are quoted.\n    :issue:`44`\n",
    )
    result = merged("CHANGES.rst", base, ours, theirs)
    assert (
        "-   Fix: the lock is released on timeout.\n-   Fix: paths with spaces are quoted.\n    :issue:`44`\n"
        "-   Docs: add a FAQ.\n-   Docs: explain the merge driver.\n"
    ) in result.text
    assert kinds(result) == [("changelog entries", GROUPED)]


def test_changelog_entries_both_added_at_the_top_go_newest_first():
    base = "# Changelog\n\n## 1.2.0\n\n- Faster start.\n- Smaller wheel.\n\n## 1.1.0\n\n- First release.\n"
    ours = base.replace("## 1.2.0\n\n", "## 1.2.0\n\n- Retry on 503.\n")
    theirs = base.replace("## 1.2.0\n\n", "## 1.2.0\n\n- Colour output.\n")
    result = merged("CHANGELOG.md", base, ours, theirs)
    assert "## 1.2.0\n\n- Colour output.\n- Retry on 503.\n- Faster start.\n" in result.text
    assert kinds(result) == [("changelog entries", NEWEST_FIRST)]


def test_changelog_entries_both_appended_go_in_finish_order():
    base = "1.0 (unreleased)\n----------------\n\n* Add the thing.\n* Remove the other thing.\n"
    ours = base + "* Ours: a new flag.\n"
    theirs = base + "* Theirs: a new option.\n"
    result = merged("NEWS", base, ours, theirs)
    assert result.text == base + "* Ours: a new flag.\n* Theirs: a new option.\n"
    assert kinds(result) == [("changelog entries", FINISH_ORDER)]


def test_changelog_entries_both_inserted_between_two_entries_are_declined():
    # pytest dde0a81677 (CHANGELOG): both sides put an entry after the first one; the author put the later
    # side's first. Between two entries the order was ours-first in about half of the replayed hunks.
    base = "2.4.0\n-----\n\n- fix issue370: trial compat.\n\n- fix pexpect-3.0 compatibility.\n"
    ours = base.replace("\n\n- fix pexpect", "\n\n- fix issue380: resultlog uses longrepr.\n\n- fix pexpect")
    theirs = base.replace("\n\n- fix pexpect", "\n\n- don't hide an ImportError of a plugin.\n\n- fix pexpect")
    assert merge("CHANGELOG", base, ours, theirs) is None


def test_changelog_entries_newest_first_keep_the_later_sides_own_gap_below_it():
    # pytest b0b6695538 (CHANGELOG): entries without blank lines between them; the merged entries are too
    base = "2.3.0\n-----\n\n- fix issue198 - conftest fixtures on windows.\n- fix issue165 - broken links.\n"
    ours = base.replace("\n\n- fix issue198", "\n\n- fix issue139 - introduce @pytest.fixture.\n- fix issue198")
    theirs = base.replace("\n\n- fix issue198", "\n\n- fix issue202 - better names.\n- fix issue198")
    result = merged("CHANGELOG", base, ours, theirs)
    both = "\n\n- fix issue202 - better names.\n- fix issue139 - introduce @pytest.fixture.\n- fix issue198"
    assert result.text == base.replace("\n\n- fix issue198", both)
    assert kinds(result) == [("changelog entries", NEWEST_FIRST)]


def test_changelog_new_release_section_above_an_edited_one_keeps_the_blank_lines_its_side_wrote():
    # sphinx f666208d78 (CHANGES.rst): a release is named while the next one is opened above it, two blank
    # lines below the new section as its side wrote them (the file's usual gap between releases is one)
    base = "Release 9.0.3 (in development)\n==============================\n\nBugs fixed\n----------\n\n* Fix a.\n\n" \
        "Release 9.0.2 (released Dec 03, 2025)\n=====================================\n\n* Fix b.\n"
    ours = base.replace("9.0.3 (in development)\n==============================",
                        "9.0.3 (released Dec 04, 2025)\n=====================================")
    theirs = "Release 9.0.4 (in development)\n==============================\n\nBugs fixed\n----------\n\n\n" + base
    result = merged("CHANGES.rst", base, ours, theirs)
    assert result.text == "Release 9.0.4 (in development)\n==============================\n\nBugs fixed\n" \
        "----------\n\n\n" + ours
    assert kinds(result) == [("changelog sections", NEWEST_FIRST)]


def test_changelog_new_version_and_entry_in_the_current_one():
    base = dedent(CHANGES_RST)
    ours = base.replace("Changes\n=======\n\n", "Changes\n=======\n\nVersion 2.2.0\n-------------\n\n-   Start.\n\n")
    theirs = base.replace("-   Drop Python 3.8.\n", "-   Drop Python 3.8.\n-   Require git 2.38.\n")
    result = merged("CHANGES.rst", base, ours, theirs)
    assert result.text == ours.replace("-   Drop Python 3.8.\n", "-   Drop Python 3.8.\n-   Require git 2.38.\n")


def test_changelog_categories_in_bold_or_brackets_are_groups_too():
    base = (
        "# Changes\n\n## Unreleased\n\n- **Feature**: dark mode.\n- **Feature**: export.\n- **Fix**: crash on start.\n"
    )
    ours = base.replace("- **Fix**: crash on start.\n", "- **Feature**: import.\n- **Fix**: crash on start.\n")
    theirs = base.replace("- **Fix**: crash on start.\n", "- **Fix**: typo in menu.\n- **Fix**: crash on start.\n")
    result = merged("CHANGELOG.md", base, theirs, ours)  # theirs' fix was merged first: the groups still decide
    assert result.text == base.replace(
        "- **Fix**: crash on start.\n", "- **Feature**: import.\n- **Fix**: typo in menu.\n- **Fix**: crash on start.\n"
    )
    assert kinds(result) == [("changelog entries", GROUPED)]
    base = "Changes\n-------\n\n* [core] faster.\n* [core] smaller.\n* [cli] colours.\n"
    ours = base.replace("* [cli] colours.\n", "* [cli] --quiet.\n* [cli] colours.\n")
    theirs = base.replace("* [cli] colours.\n", "* [core] leaner.\n* [cli] colours.\n")
    result = merged("CHANGES.txt", base, ours, theirs)
    assert result.text == base.replace("* [cli] colours.\n", "* [core] leaner.\n* [cli] --quiet.\n* [cli] colours.\n")
    assert kinds(result) == [("changelog entries", GROUPED)]


def test_changelog_with_windows_line_endings():
    base = "# Changes\r\n\r\n- One.\r\n"
    result = merged("CHANGES.md", base, base + "- Two.\r\n", base + "- Three.\r\n")
    assert result.text == base + "- Two.\r\n- Three.\r\n"


def test_changelog_same_entry_added_by_both_sides_is_kept_once():
    base = "# Changes\n\n- One.\n"
    ours = theirs = "# Changes\n\n- One.\n- Two.\n"
    assert merged("CHANGES.md", base, ours, theirs).text == ours


# -- What every language shares --------------------------------------------------------------------------------


def test_unknown_language_is_declined():
    assert merge("data.bin", "a\n", "b\n", "c\n") is None
    assert merge("notes.txt", "- a\n", "- a\n- b\n", "- a\n- c\n") is None  # a list, but not a changelog


@pytest.mark.parametrize(
    ("path", "base", "broken"),
    [
        ("a.py", "def a():\n    pass\n", "def a(:\n    pass\n"),
        ("a.json", '{"a": 1}\n', '{"a": 1,,}\n'),
        ("a.go", "package a\n", "package a\nfunc (\n"),
        ("a.rs", "fn a() {}\n", "fn a( {}\n"),
        ("a.ts", "let a = 1;\n", "let a = ;\n"),
    ],
)
def test_a_side_that_does_not_parse_is_declined(path, base, broken):
    assert merge(path, base, broken, base) is None


def test_a_side_that_moves_members_is_declined():
    base = "def a():\n    pass\n\n\ndef b():\n    pass\n"
    ours = "def b():\n    pass\n\n\ndef a():\n    pass\n"
    theirs = base + "\n\ndef c():\n    pass\n"
    assert merge("m.py", base, ours, theirs) is None


def test_python_both_sides_add_names_to_one_from_import():
    base = "from app import models\nimport os\n"
    ours = "from app import forms, models\nimport os\n"
    theirs = "from app import models, views\nimport os\n"
    result = merged("m.py", base, ours, theirs)
    assert result.text == "from app import forms, models, views\nimport os\n"
    assert kinds(result) == [("imports", AS_PLACED), ("imports", AS_PLACED)]
    ours = "from app import (\n    admin,\n    forms,\n    models,\n)\n"
    theirs = "from app import (\n    forms,\n    models,\n    views,\n)\n"
    result = merged("m.py", "from app import (\n    forms,\n    models,\n)\n", ours, theirs)
    assert result.text == "from app import (\n    admin,\n    forms,\n    models,\n    views,\n)\n"


def test_python_import_lines_of_one_module_from_both_sides_are_both_kept():
    base = "from flask import Flask\nfrom flask import request\n\napp = Flask(__name__)\n"
    ours = "from flask import Flask\nfrom flask import jsonify\nfrom flask import request\n\napp = Flask(__name__)\n"
    theirs = "from flask import Flask\nfrom flask import request\nfrom flask import session\n\napp = Flask(__name__)\n"
    result = merged("app.py", base, ours, theirs)
    assert result.text.startswith(
        "from flask import Flask\nfrom flask import jsonify\nfrom flask import request\nfrom flask import session\n\n"
    )
    one = "from flask import Flask\n\napp = Flask(__name__)\n"
    ours = "from flask import Flask\nfrom flask import jsonify\n\napp = Flask(__name__)\n"
    theirs = "from flask import Flask\nfrom flask import session\n\napp = Flask(__name__)\n"
    result = merged("app.py", one, ours, theirs)
    assert (
        result.text
        == "from flask import Flask\nfrom flask import jsonify\nfrom flask import session\n\napp = Flask(__name__)\n"
    )


def test_both_sides_rewriting_one_import_line_are_declined():
    base = "import os\n\nprint(os.sep)\n"
    ours = "import os.path\n\nprint(os.sep)\n"
    theirs = "import os, sys\n\nprint(os.sep)\n"
    assert merge("m.py", base, ours, theirs) is None


def test_merge_that_would_not_reparse_is_declined():
    # CSS: ours's last declaration lacks its ";" -- appending theirs after it would swallow it into a value
    base = ".a {\n  color: red;\n}\n"
    ours = ".a {\n  color: red;\n  margin: 0\n}\n"
    theirs = ".a {\n  color: red;\n  padding: 0;\n}\n"
    assert merge("a.css", base, ours, theirs) is None


@pytest.mark.parametrize(
    "path",
    [
        "a.py",
        "a.pyi",
        "a.js",
        "a.mjs",
        "a.jsx",
        "a.ts",
        "a.tsx",
        "a.json",
        "a.yaml",
        "a.yml",
        "a.toml",
        "a.md",
        "a.html",
        "a.css",
        "a.go",
        "a.rs",
        "CHANGES.rst",
        "CHANGELOG.md",
        "HISTORY.txt",
        "NEWS",
    ],
)
def test_every_profile_loads_its_grammar(path):
    profile = profile_for(path)
    assert profile is not None
    assert profile.parse(b"") is not None


def test_markdown_list_sorted_near_the_place_is_kept_sorted_despite_a_stray_entry_far_away():
    names = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India", "Juliett"]
    items = [f"- [{name}](https://example.org/{name.lower()})\n" for name in names]
    base = "# Projects\n\n" + "".join(items) + "- [Able](https://example.org/able), added late\n"
    bravo = items[1]
    ours = base.replace(bravo, bravo + "- [Cat](https://example.org/cat)\n")
    theirs = base.replace(bravo, bravo + "- [Carol](https://example.org/carol)\n")
    result = merged("README.md", base, ours, theirs)
    both = "- [Carol](https://example.org/carol)\n- [Cat](https://example.org/cat)\n"
    assert result.text == base.replace(bravo, bravo + both)
    assert kinds(result) == [("list items", SORTED)]
