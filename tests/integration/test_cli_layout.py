"""The CLI speaks to the Lua face through src/lua/lode_host.h only, passes
results through out-parameters, and its files call each other one way
(docs/architecture.md)."""
import os
import re

from lodeutil import SOURCE

CLI = os.path.join(SOURCE, "src", "cli")


def sources():
    for name in sorted(os.listdir(CLI)):
        if name.endswith((".c", ".h")):
            with open(os.path.join(CLI, name)) as f:
                yield name, f.read()


def test_cli_includes_only_public_headers():
    allowed = re.compile(r'^(cli/|base/|core/|trace/|state/|lua/lode_host\.h$|lode_config\.h$|'
                         r'kernels/store\.h$)')
    for name, text in sources():
        for inc in re.findall(r'#include\s+"([^"]+)"', text):
            assert "_internal" not in inc and "_int.h" not in inc, (name, inc)
            assert allowed.match(inc), f"{name} includes {inc}"
        for inc in re.findall(r'#include\s+<([^>]+)>', text):
            assert inc not in ("lauxlib.h", "lualib.h"), f"{name} includes <{inc}>"


def test_no_globals_for_results():
    for name, text in sources():
        assert "lode_cli_adopted" not in text, name
        assert not re.search(r'^extern\s', text, re.M), name


def test_cli_files_call_each_other_one_way():
    defined, text_of = {}, {}
    for name, text in sources():
        if not name.endswith(".c"):
            continue
        text_of[name] = text
        for fn in re.findall(r'^[a-z][\w \*]*?\b(lode_\w+)\(', text, re.M):
            defined.setdefault(fn, name)
    calls = {n: set() for n in text_of}
    for name, text in text_of.items():
        for fn, where in defined.items():
            if where != name and re.search(r'\b' + fn + r'\(', text):
                calls[name].add(where)

    def reach(a, b, seen=()):
        return b in calls[a] or any(reach(c, b, seen + (a,)) for c in calls[a] if c not in seen)

    for a in calls:
        for b in calls[a]:
            assert not reach(b, a), f"{a} and {b} call each other"
