#!/usr/bin/env python3
"""check_layers.py - lode's layers, checked (docs/architecture.md#layers).

    scripts/check_layers.py [SRC_DIR]      (default: the repository's src/)

Reads every .c and .h file under SRC_DIR and checks the rules below; prints
one line per violation (file:line: rule) and exits 1 if there is any, 0 if
none. The build runs it (CMake target `layers`) and so does `make test`
(ctest `layers.check`; tests/integration/test_layers.py plants a violation
of each rule in a copy of the tree and expects it to be found).

A file belongs to the layer of its folder: src/base, src/state (the
interface) and src/state/sqlite (its SQLite backend), src/core (the engine),
src/trace, src/kernels, src/lua, src/cli. Every subfolder of src/state is a
backend, whose headers only its own files include.
"""
import os
import re
import sys

# Which layers a layer may include from (its own is always allowed).
ALLOWED = {
    "base": set(),
    "state": {"base"},
    "state/backend": {"base", "state"},
    "trace": {"base", "state"},
    "core": {"base", "state", "trace"},
    "kernels": {"base"},
    "lua": {"base", "state", "trace", "core", "kernels", "config"},
    "cli": {"base", "state", "trace", "core", "kernels", "lua", "config"},
}

# The CLI sees only these headers of the Lua face.
LUA_PUBLIC = {"lua/lode_host.h"}

# System headers a layer must not include.
SQLITE_OK_FILES = re.compile(r"^(state/sqlite/.*|base/busy\.[ch]|kernels/store[^/]*\.[ch])$")
# libpq: the PostgreSQL state backend and the store's PostgreSQL backend only.
LIBPQ_OK_FILES = re.compile(r"^(state/postgres/.*|kernels/store_pg\.c)$")
LIBPQ_HEADERS = {"libpq-fe.h", "libpq-events.h"}
LUA_HEADERS = {"lua.h", "lauxlib.h", "lualib.h", "lua.hpp"}
NO_LUA = {"base", "state", "state/backend", "core", "trace", "kernels"}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
SQLITE_CALL = re.compile(r"\bsqlite3_[a-z0-9_]+\s*\(")
LIBPQ_CALL = re.compile(r"\b(PQ[a-zA-Z0-9_]+|lo_[a-z_]+|pg_encoding_to_char)\s*\(")
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\\n])*"')


def layer_of(rel):
    """The layer of a path relative to src/ ('state/sqlite/x.c' -> 'state/sqlite')."""
    parts = rel.split("/")
    if len(parts) == 1:
        return "config" if parts[0].startswith("lode_config") else None
    if parts[0] == "state" and len(parts) > 2:
        return "state/backend"  # src/state/<backend>/: sqlite today
    return parts[0] if parts[0] in ALLOWED else None


def strip_comments(text):
    """Comments and string literals blanked, line numbers kept."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    return COMMENT.sub(blank, STRING.sub(blank, text))


def calls_of(pattern, rel, text, library, who):
    """One problem naming the first call of `library` in the file, if any."""
    code = strip_comments(text)
    calls = [(no, m.group(0).rstrip("( "))
             for no, line in enumerate(code.splitlines(), 1)
             for m in [pattern.search(line)] if m]
    if not calls:
        return []
    return ["%s:%d: calls %s (%d %s call(s) in this file); only %s"
            % (rel, calls[0][0], calls[0][1], len(calls), library, who)]


def check(src):
    problems = []
    edges = {}  # layer -> {layer: first "file:line"}
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            layer = layer_of(rel)
            if layer is None:
                problems.append("%s: not in a known layer (docs/architecture.md#layers)" % rel)
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for no, line in enumerate(text.splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                where = "%s:%d" % (rel, no)
                kind, inc = m.group(1), m.group(2)
                base = os.path.basename(inc)
                if kind == "<":
                    if base == "sqlite3.h" and not SQLITE_OK_FILES.match(rel):
                        problems.append("%s: includes <sqlite3.h>; only the state backend"
                                        " (src/state/sqlite), base/busy and the vector store"
                                        " use SQLite" % where)
                    if base in LIBPQ_HEADERS and not LIBPQ_OK_FILES.match(rel):
                        problems.append("%s: includes <%s>; only the PostgreSQL state backend"
                                        " (src/state/postgres) and the store's PostgreSQL"
                                        " backend (src/kernels/store_pg.c) use libpq"
                                        % (where, inc))
                    if base in LUA_HEADERS and layer in NO_LUA:
                        problems.append("%s: includes <%s>; only src/lua and src/cli know Lua"
                                        % (where, inc))
                    continue
                target = layer_of(inc)
                if target is None:
                    continue  # a file of the same folder ("x.h") or a test helper
                if target != layer:
                    edges.setdefault(layer, {}).setdefault(target, where)
                    if target not in ALLOWED[layer]:
                        problems.append("%s: %s may not include %s (\"%s\")"
                                        % (where, layer, target, inc))
                if layer == "cli" and target == "lua" and inc not in LUA_PUBLIC:
                    problems.append("%s: the CLI includes only the Lua face's public header"
                                    " (%s), not \"%s\"" % (where, ", ".join(sorted(LUA_PUBLIC)), inc))
                if target == "state/backend" and \
                        inc.split("/")[:2] != rel.split("/")[:2]:
                    problems.append("%s: \"%s\" is a state backend's own; use"
                                    " src/state's interface" % (where, inc))
                if (base.endswith("_internal.h") or base.endswith("_int.h")) and \
                        target != layer:
                    problems.append("%s: \"%s\" is internal to %s" % (where, inc, target))
            if not SQLITE_OK_FILES.match(rel):
                problems += calls_of(SQLITE_CALL, rel, text, "SQLite",
                                     "the state backend (src/state/sqlite), base/busy and the"
                                     " vector store call SQLite")
            if not LIBPQ_OK_FILES.match(rel):
                problems += calls_of(LIBPQ_CALL, rel, text, "libpq",
                                     "src/state/postgres and src/kernels/store_pg.c call libpq")
    problems += cycles(edges)
    return problems


def cycles(edges):
    """Include cycles between folders, each reported once with one witness per edge."""
    out, seen = [], set()

    def visit(node, path):
        for nxt in sorted(edges.get(node, {})):
            if nxt in path:
                cyc = path[path.index(nxt):] + [nxt]
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key)
                    hops = ", ".join("%s -> %s (%s)" % (a, b, edges[a][b])
                                     for a, b in zip(cyc, cyc[1:]))
                    out.append("include cycle between folders: %s" % hops)
            elif len(path) < 16:
                visit(nxt, path + [nxt])

    for n in sorted(edges):
        visit(n, [n])
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "src")
    problems = check(src)
    for p in problems:
        print("layers: " + p)
    if problems:
        print("layers: %d violation(s); the rules are in docs/architecture.md#layers"
              % len(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
