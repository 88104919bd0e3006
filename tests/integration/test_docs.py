"""Every code example in README.md and docs/*.md runs (issue 14, "Docs that
are true"), so the documentation cannot rot unnoticed.

Each fenced block carries a language, which says what the test does with it:

- `lua`: a file whose first line is `-- PATH.lua` is written at PATH in the
  page's work folder (a pipeline, or a busted spec `..._spec.lua`, which is
  then run with `lode test`); a pipeline no `console` block of the page runs
  is run once with `lode run`. Any other block is a snippet, run with `lode
  test` inside a spec (`<!-- setup: LUA -->` just before the block gives it
  what it assumes, e.g. a workflow it enqueues).
- `console`: the lines starting with `$ ` are commands, run in order with
  bash in the page's work folder (`build/lode` and `lode` are the binary
  under test; an id written `01a2...` or `0193f1c2-wf` is the newest
  top-level workflow); each must exit 0. The other lines are sample output;
  one that is whole JSON (no "...") must be what the command printed.
- `sh`: run with bash as it is. `json` and `ini`: parsed.
- `text`: not code (diagrams, grammar, sample output); counted.
- `<!-- not-run: REASON -->` just before a block: it cannot run here (a
  server, a key, another language); counted and reported, never silently.

A block without a language fails the test: say what it is.

Every page's work folder holds a copy of pipelines/, docs/ and bench/ and a
state database with one ingestion that failed on one of its seven files, so
commands like `lode workflow list --status ERROR` and `lode workflow steps
ID-7` have something to show.
"""
import glob
import json
import configparser
import os
import re
import shutil
import subprocess

import pytest

from lodeutil import LODE, SOURCE

PAGES = ["README.md"] + sorted(os.path.relpath(p, SOURCE)
                               for p in glob.glob(os.path.join(SOURCE, "docs", "*.md")))
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
NOTE = re.compile(r"^\s*<!--\s*(not-run|setup):\s*(.*?)\s*-->\s*$")
RUNS = ("lua", "console", "sh", "json", "ini")
NOT_CODE = ("text",)


def blocks(page):
    """(line, lang, body, notes) of each fenced block of a page."""
    lines = open(os.path.join(SOURCE, page)).read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = len(m.group(1)), m.group(2)
        j = i + 1
        while not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        body = "\n".join(l[indent:] if l[:indent].strip() == "" else l for l in lines[i + 1:j])
        notes, k = {}, i - 1
        while k >= 0 and (not lines[k].strip() or NOTE.match(lines[k])):
            n = NOTE.match(lines[k])
            if n:
                notes[n.group(1)] = n.group(2)
            k -= 1
        out.append((i + 1, lang, body, notes))
        i = j + 1
    return out


def env_for(work):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OPENAI_"))}
    e.pop("LODE_DB", None)
    e.pop("LODE_TEST_CRASH_AT", None)
    e["HOME"] = work
    e["OPIK_CONFIG_PATH"] = os.path.join(work, "no-opik.config")
    bindir = os.path.join(work, ".bin")
    os.makedirs(bindir, exist_ok=True)
    link = os.path.join(bindir, "lode")
    if not os.path.exists(link):
        os.symlink(os.path.abspath(LODE), link)
    e["PATH"] = bindir + ":" + e["PATH"]
    return e


SEED_FILES = {"a.md": "# A\n\nalpha words\n", "b.md": "# B\n\nbeta words\n",
              "c.md": "# C\n\ngamma\n", "d.txt": "delta\n", "e.txt": "epsilon\n",
              "f.md": "# F\n\nzeta\n"}


def prepare(work):
    os.makedirs(work, exist_ok=True)
    for d in ("pipelines", "docs", "bench"):
        shutil.copytree(os.path.join(SOURCE, d), os.path.join(work, d))
    seed = os.path.join(work, "seedcorpus")
    os.makedirs(seed)
    for name, text in SEED_FILES.items():
        with open(os.path.join(seed, name), "w") as f:
            f.write(text)
    with open(os.path.join(seed, "g.txt"), "wb") as f:
        f.write(b"\x00\x01\x02binary\x00" * 10)  # fails: binary file
    p = subprocess.run([LODE, "run", "pipelines/ingest_folder.lua", "seedcorpus", "--store",
                        ".lode/seed-store.db"], cwd=work, env=env_for(work),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "1 of 7 files failed" in p.stderr, p.stderr


def newest_id(work, env):
    p = subprocess.run([LODE, "workflow", "list", "--limit", "1", "--json"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=60)
    return json.loads(p.stdout)[0]["id"]


def run_lua_snippet(work, env, where, code, setup):
    spec = os.path.join(work, ".doc_snippet_spec.lua")
    with open(spec, "w") as f:
        f.write('local lode = require("lode")\n'
                'describe(%s, function() it("runs", function()\n'
                '(function(...)\n%s\n%s\nend)("a", "b")\n'
                'end) end)\n' % (json.dumps(where), setup or "", code))
    p = subprocess.run([LODE, "test", spec], cwd=work, env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, f"{where}: the Lua example fails:\n{code}\n{p.stdout}\n{p.stderr}"


def _same_json(line, value):
    try:
        return json.loads(line) == value
    except ValueError:
        return False


def run_console(work, env, where, body):
    lines = body.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("$ "):
            continue
        cmd = line[2:]
        cmd = re.sub(r"(^|[\s;&|(])build/lode\b", r"\1lode", cmd)
        if re.search(r"01a2\.\.\.|0193f1c2-wf", cmd):
            cmd = re.sub(r"01a2\.\.\.|0193f1c2-wf", newest_id(work, env), cmd)
        p = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, \
            f"{where}: `{cmd}` exited {p.returncode}\nstdout:{p.stdout[-3000:]}\nstderr:{p.stderr[-3000:]}"
        # a sample output line that is whole JSON (no "..." in it) is what
        # the command prints, exactly
        for out in lines[i + 1:]:
            if out.startswith("$ "):
                break
            try:
                value = json.loads(out)
            except ValueError:
                continue
            printed = [l for l in p.stdout.splitlines() if l.strip()]
            assert any(_same_json(l, value) for l in printed), \
                f"{where}: `{cmd}` printed {printed[-3:]}, the page says {out}"


@pytest.mark.parametrize("page", PAGES)
def test_every_example_of_the_page_runs(page, tmp_path):
    work = str(tmp_path / "work")
    prepare(work)
    env = env_for(work)
    found = blocks(page)
    counts = {"ran": 0, "text": 0, "not-run": 0}
    not_run = []
    files = []
    # the page's files first: console blocks use them
    for line, lang, body, notes in found:
        first = body.split("\n", 1)[0]
        m = re.match(r"^--\s+(\S+\.lua)\s*$", first)
        if lang == "lua" and m and "not-run" not in notes:
            path = os.path.join(work, m.group(1))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(body + "\n")
            files.append((line, m.group(1)))
    consoles = " ".join(b for _, lang, b, n in found if lang == "console" and "not-run" not in n)
    for line, lang, body, notes in found:
        where = f"{page}:{line}"
        if "not-run" in notes:
            assert notes["not-run"], f"{where}: say why the block cannot run"
            counts["not-run"] += 1
            not_run.append(f"{where}: {notes['not-run']}")
            continue
        assert lang, f"{where}: a code block needs a language (lua, console, sh, text, ...)"
        assert lang in RUNS + NOT_CODE, \
            f"{where}: a ```{lang} block cannot run here: mark it <!-- not-run: why -->"
        if lang in NOT_CODE:
            assert not re.search(r"^\$ ", body, re.M), f"{where}: commands belong in ```console"
            counts["text"] += 1
            continue
        counts["ran"] += 1
        if lang == "console":
            assert re.search(r"^\$ ", body, re.M), f"{where}: a console block without a $ command"
            run_console(work, env, where, body)
        elif lang == "sh":
            p = subprocess.run(["bash", "-ec", body], cwd=work, env=env, capture_output=True,
                               text=True, timeout=120)
            assert p.returncode == 0, f"{where}: {p.stderr}"
        elif lang == "json":
            json.loads(body)
        elif lang == "ini":
            configparser.ConfigParser().read_string(body)
        elif lang == "lua":
            m = re.match(r"^--\s+(\S+\.lua)\s*$", body.split("\n", 1)[0])
            if m and m.group(1).endswith("_spec.lua"):
                p = subprocess.run([LODE, "test", m.group(1)], cwd=work, env=env,
                                   capture_output=True, text=True, timeout=120)
                assert p.returncode == 0, f"{where}: {p.stdout}\n{p.stderr}"
            elif m:
                name = m.group(1)
                used = re.search(r"(^|[\s/])" + re.escape(os.path.basename(name)) + r"\b", consoles)
                if not used:
                    p = subprocess.run([LODE, "run", name], cwd=work, env=env,
                                       capture_output=True, text=True, timeout=120)
                    assert p.returncode == 0, f"{where}: lode run {name}:\n{p.stderr}"
            else:
                run_lua_snippet(work, env, where, body, notes.get("setup"))
    print(f"{page}: {counts['ran']} examples ran, {counts['text']} text blocks, "
          f"{counts['not-run']} not run" + "".join("\n  not run: " + n for n in not_run))


def test_not_run_blocks_are_few_and_reported():
    """The count of blocks that cannot run, with their reasons, for the
    report (pytest -s shows it); a new one must be a deliberate choice."""
    not_run = [(page, line, notes["not-run"]) for page in PAGES
               for line, _, _, notes in blocks(page) if "not-run" in notes]
    total = sum(1 for page in PAGES for b in blocks(page) if b[1] not in NOT_CODE)
    for page, line, why in not_run:
        print(f"not run: {page}:{line}: {why}")
    print(f"{len(not_run)} of {total} code blocks not run")
    # 13, and docs/postgres.md's set-up and many-machines commands (a server)
    assert len(not_run) <= 15, not_run
