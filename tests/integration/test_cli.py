"""The command line of issue 14 ("Day-to-day use"), one test per line typed
there: lode's grammar (`lode [global options] COMMAND [options] PIPELINE
[pipeline arguments]`, docs/cli.md), pipelines' declared arguments checked
before anything is recorded, tracebacks only for bugs, --db checks, the
workflow list and steps, --id with other arguments, resume of an ERROR
workflow, deterministic JSON."""
import json
import os
import re

import pytest

from lodeutil import Lode, SOURCE

INGEST = os.path.join(SOURCE, "pipelines", "ingest_folder.lua")
QUERY = os.path.join(SOURCE, "pipelines", "query.lua")

ECHO = """
local lode = require("lode")
return lode.workflow("echo", function(...) return { ... } end)
"""

# fails until attempt K (the argument), six attempts
RAISE = """
local lode = require("lode")
local n = 0
local flaky = lode.step("flaky", function(k)
  n = n + 1
  if n < tonumber(k) then error("boom " .. n) end
  return n
end, { retries = { max_attempts = 6, interval = 0.001, backoff = 1 } })
return lode.workflow("raise", function(k) return flaky(k) end)
"""

HELLO = """
local lode = require("lode")
local greet = lode.step("greet", function(who) return "hello " .. who end)
return lode.workflow("hello", function(who) return greet(who) end)
"""

SLOW = """
local lode = require("lode")
local nap = lode.step("nap", function() os.execute("sleep 0.2") return 1 end)
return lode.workflow("slow", function() for _ = 1, 50 do nap() end return 1 end)
"""

FAILS = """
local lode = require("lode")
local s = lode.step("s", function() error("real bug") end)
return lode.workflow("fails", function() local a = s() return a end)
"""

PARENT = """
local lode = require("lode")
local kid = lode.workflow("kid", function(i) return i end)
local q = lode.queue("kids")
return lode.workflow("parent", function(n)
  local hs = {}
  for i = 1, tonumber(n) do hs[i] = q:enqueue(kid, i) end
  local s = 0
  for _, h in ipairs(hs) do s = s + h:result() end
  return s
end)
"""


@pytest.fixture
def lode(tmp_path):
    return Lode(tmp_path)


def workflows(lode):
    if not os.path.exists(lode.db):
        return []
    return lode.sql("SELECT id, name, status FROM workflows")


def no_traceback(text):
    return "stack traceback" not in text


# ---- Command line: the grammar ------------------------------------------------

def test_everything_after_the_pipeline_belongs_to_it(lode):
    # `lode run echo.lua a --db e.db b --id zz`
    lode.write("echo.lua", ECHO)
    p = lode.run("run", "echo.lua", "a", "--db", "e.db", "b", "--id", "zz", check=0)
    assert json.loads(p.stdout) == ["a", "--db", "e.db", "b", "--id", "zz"]
    assert not os.path.exists(os.path.join(lode.dir, "e.db"))
    assert [r[0] for r in workflows(lode)] != ["zz"]
    # `--` ends lode's options; a pipeline may be named after it
    p = lode.run("run", "--", "echo.lua", "--x", check=0)
    assert json.loads(p.stdout) == ["--x"]
    # lode's own options go before the pipeline
    p = lode.run("run", "--id", "zz", "--db", "e.db", "echo.lua", "a", check=0)
    assert json.loads(p.stdout) == ["a"]
    assert os.path.exists(os.path.join(lode.dir, "e.db"))


def test_unknown_option_suggests_the_closest(lode):
    # `lode run --wrokers 2 raise.lua 5`
    lode.write("raise.lua", RAISE)
    p = lode.run("run", "--wrokers", "2", "raise.lua", "5", check=2)
    assert "unknown option '--wrokers'; did you mean --workers?" in p.stderr
    assert "pipeline file not found" not in p.stderr
    assert workflows(lode) == []


def test_worker_options_go_before_the_pipeline(lode):
    lode.write("echo.lua", ECHO)
    p = lode.run("worker", "echo.lua", "--workers", "2", check=2)
    assert "lode's options go before it" in p.stderr


def test_run_help(lode):
    # `lode run --help`
    p = lode.run("run", "--help", check=0)
    assert p.stdout.startswith("usage: lode run ") and "--workers N" in p.stdout
    assert "pipeline file not found" not in p.stderr


def test_help_on_every_command_and_subcommand(lode):
    for cmd in (["run"], ["worker"], ["trace"], ["export"], ["test"], ["workflow"],
                ["workflow", "list"], ["workflow", "get"], ["workflow", "steps"],
                ["workflow", "cancel"], ["workflow", "resume"], ["workflow", "fork"],
                ["workflow", "queue"]):
        for h in ("--help", "-h"):
            p = lode.run(*cmd, h, check=0)
            assert p.stdout.startswith("usage: lode " + cmd[0]), (cmd, p.stdout, p.stderr)
    p = lode.run("--help", check=0)
    assert "COMMAND [options]" in p.stdout
    for sub in ("list", "get", "steps", "cancel", "resume", "fork", "queue"):
        p = lode.run("workflow", sub, "--help", check=0)
        assert p.stdout.startswith("usage: lode workflow " + sub), p.stdout


def test_every_option_a_usage_names_is_accepted(lode):
    """The help texts and the option tables agree: each --option in a
    command's usage line parses (it comes before --help, which then exits 0)."""
    cmds = [["run"], ["worker"], ["trace"], ["export"]] + \
        [["workflow", s] for s in ("list", "get", "steps", "cancel", "resume", "fork", "queue")]
    for cmd in cmds:
        usage = lode.run(*cmd, "--help", check=0).stdout.split("\n\n")[0]
        opts = re.findall(r"\[(--[a-z-]+)(?: ([A-Za-z][A-Z_|a-z]*))?", usage)
        opts += re.findall(r"\| (--[a-z-]+)()\]", usage)
        assert opts, usage
        for name, metavar in opts:
            value = [] if not metavar else ["normal" if name == "--sync" else "1"]
            p = lode.run(*cmd, name, *value, "--help", check=None)
            assert p.returncode == 0, (cmd, name, p.stderr)


def test_workflow_list_typo_fails_and_limit_is_an_option(lode):
    # `lode workflow list --limt 3`
    lode.write("echo.lua", ECHO)
    for i in range(5):
        lode.run("run", "echo.lua", str(i), check=0)
    p = lode.run("workflow", "list", "--limt", "3", check=2)
    assert "unknown option '--limt'; did you mean --limit?" in p.stderr
    p = lode.run("workflow", "list", "--limit", "3", check=0)
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1 + 3 + 1 and lines[-1] == "2 more rows not shown (use --limit N, 0 for all)"
    p = lode.run("workflow", "list", "--limit", "3", "--json", check=0)
    assert len(json.loads(p.stdout)) == 3 and "2 more rows" in p.stderr
    p = lode.run("workflow", "list", check=0)
    assert "more row" not in p.stdout and len(p.stdout.strip().splitlines()) == 6


def test_global_options_before_the_command(lode, tmp_path):
    # `lode --db adir workflow list`
    os.mkdir(tmp_path / "adir")
    p = lode.run("--db", "adir", "workflow", "list", check=2)
    assert "unknown command" not in p.stderr and "adir is a folder" in p.stderr
    lode.write("echo.lua", ECHO)
    lode.run("--db", "x.db", "run", "echo.lua", "a", check=0)
    p = lode.run("--db", "x.db", "--json", "workflow", "list", check=0)
    assert [r["name"] for r in json.loads(p.stdout)] == ["echo"]
    p = lode.run("--db=x.db", "workflow", "--json", "list", check=0)
    assert [r["name"] for r in json.loads(p.stdout)] == ["echo"]
    p = lode.run("wrkflow", "list", check=2)
    assert "did you mean 'workflow'?" in p.stderr


# ---- pipelines declare their arguments -------------------------------------------

def test_pipeline_usage_error_is_no_crash_and_records_nothing(lode):
    # `ingest_folder.lua docs --sotre x.db`
    os.mkdir(os.path.join(lode.dir, "docs"))
    p = lode.run("run", INGEST, "docs", "--sotre", "x.db", check=2)
    assert "unknown option '--sotre'; did you mean --store?" in p.stderr
    assert "usage: lode run pipelines/ingest_folder.lua FOLDER [options]" in p.stderr
    assert no_traceback(p.stderr) and "failed (ERROR)" not in p.stderr
    assert workflows(lode) == [] and not os.path.exists(lode.db)


def test_pipeline_missing_folder_and_overlap(lode):
    p = lode.run("run", INGEST, check=2)
    assert "missing FOLDER" in p.stderr and no_traceback(p.stderr)
    p = lode.run("run", INGEST, "docs", "--size", "100", "--overlap", "100", check=2)
    assert "--overlap (100) must be smaller than --size (100)" in p.stderr
    p = lode.run("run", QUERY, check=2)
    assert "missing QUESTION" in p.stderr
    p = lode.run("run", QUERY, "q", "--stor", "s.db", check=2)
    assert "did you mean --store?" in p.stderr
    # lode's own option after the pipeline: the message says where it goes
    p = lode.run("run", INGEST, "docs", "--workers", "2", check=2)
    assert "--workers is an option of lode run: put it before the pipeline file" in p.stderr
    assert workflows(lode) == []


def test_pipeline_help_prints_aligned_usage_and_records_nothing(lode):
    # `ingest_folder.lua --help`
    p = lode.run("run", INGEST, "--help", check=0)
    assert p.stdout.startswith("usage: lode run pipelines/ingest_folder.lua FOLDER")
    assert "null" not in p.stdout
    # columns: option, value, description, each starting in one column
    rows = [l for l in p.stdout.splitlines() if l.startswith("  --")]
    assert len(rows) >= 10
    provider = next(l for l in rows if l.startswith("  --provider"))
    assert re.match(r"  --provider +hash\|model2vec\|openai +embedder", provider)
    starts = {re.match(r"  (--\S+ +)", l).end() for l in rows if not l.startswith("  --help")}
    assert len(starts) == 1, rows
    descs = {re.match(r"  --\S+ +\S* +", l).end() for l in rows if not l.startswith("  --help")}
    assert len(descs) == 1, rows
    assert workflows(lode) == [] and not os.path.exists(lode.db)
    q = lode.run("run", QUERY, "--help", check=0)
    assert q.stdout.startswith("usage: lode run pipelines/query.lua QUESTION")


# ---- tracebacks only for bugs -------------------------------------------------------

def test_cancelled_workflow_prints_no_traceback(lode):
    lode.write("slow.lua", SLOW)
    proc = lode.start("run", "--id", "cx", "slow.lua")
    import time
    time.sleep(1.0)
    lode.run("workflow", "cancel", "cx", check=0)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "workflow cx stopped (CANCELLED): workflow cx was cancelled" in err
    assert no_traceback(err), err


def test_files_failed_summary_is_a_plain_failure(lode):
    os.mkdir(os.path.join(lode.dir, "docs"))
    lode.write("docs/a.md", "# A\n\n" + "long words " * 50)
    lode.write("docs/b.md", "# B\n\n" + "long words " * 50)
    p = lode.run("run", INGEST, "docs", "--store", "s.db", "--max-bytes", "10", check=1)
    assert "2 of 2 files failed" in p.stderr
    assert no_traceback(p.stderr), p.stderr


def test_retried_attempts_print_one_traceback(lode):
    lode.write("raise.lua", RAISE)
    p = lode.run("run", "raise.lua", "9", check=1)
    assert p.stderr.count("stack traceback:") == 1, p.stderr
    for i in range(1, 7):
        assert "attempt %d of 6: " % i in p.stderr
    assert len(p.stderr.splitlines()) < 15, p.stderr
    # a real bug in user code keeps its traceback
    lode.write("fails.lua", FAILS)
    p = lode.run("run", "fails.lua", check=1)
    assert p.stderr.count("stack traceback:") == 1 and "real bug" in p.stderr


# ---- --db ---------------------------------------------------------------------------

def test_db_on_a_directory_exits_2(lode, tmp_path):
    os.mkdir(tmp_path / "adir")
    lode.write("echo.lua", ECHO)
    for args in (["run", "--db", "adir", "echo.lua"], ["--db", "adir", "workflow", "list"],
                 ["trace", "--db", "adir", "x"], ["export", "--db", "adir"],
                 ["worker", "--db", "adir", "echo.lua"]):
        p = lode.run(*args, check=2)
        assert "adir is a folder" in p.stderr, (args, p.stderr)


def test_db_in_a_missing_folder_is_not_created(lode, tmp_path):
    lode.write("echo.lua", ECHO)
    target = tmp_path / "nonexistent" / "q" / "y.db"
    p = lode.run("run", "--db", str(target), "echo.lua", check=2)
    assert str(target.parent) in p.stderr and "does not exist" in p.stderr
    assert not (tmp_path / "nonexistent").exists()
    # lode's own default folder is still made
    env = {"LODE_DB": ""}
    lode.run("run", "echo.lua", env=env, check=0)
    assert os.path.exists(os.path.join(lode.dir, ".lode", "lode.db"))


def test_trace_leaves_no_wal_files(lode):
    lode.write("echo.lua", ECHO)
    lode.run("run", "--id", "t1", "echo.lua", "a", check=0)
    assert not os.path.exists(lode.db + "-wal")
    p = lode.run("trace", "t1", check=0)
    assert "echo" in p.stdout
    assert not os.path.exists(lode.db + "-wal") and not os.path.exists(lode.db + "-shm")


# ---- workflow list and steps -----------------------------------------------------------

def test_workflow_list_shows_top_level_runs_unless_asked(lode):
    lode.write("parent.lua", PARENT)
    lode.run("run", "--id", "par", "parent.lua", "5", check=0)
    rows = json.loads(lode.run("workflow", "list", "--json", check=0).stdout)
    assert [r["id"] for r in rows] == ["par"]
    for flag in ("--children", "--all"):
        rows = json.loads(lode.run("workflow", "list", flag, "--json", check=0).stdout)
        assert len(rows) == 6 and sum(r["parent_id"] == "par" for r in rows) == 5


def test_workflow_steps_shows_every_attempts_error(lode):
    lode.write("raise.lua", RAISE)
    lode.run("run", "--id", "r2", "raise.lua", "2", check=0)
    p = lode.run("workflow", "steps", "r2", check=0)
    assert "attempt 1 of 6: " in p.stdout and "boom 1" in p.stdout
    steps = json.loads(lode.run("workflow", "steps", "r2", "--json", check=0).stdout)
    assert steps[0]["status"] == "SUCCESS" and steps[0]["attempts"] == 2
    assert steps[0]["error"] is not None and "boom 1" in steps[0]["error"]


# ---- --id with other arguments; resume of ERROR ---------------------------------------------

def test_run_id_with_other_arguments_warns(lode):
    # `lode run --id myid hello.lua mars`
    lode.write("hello.lua", HELLO)
    lode.run("run", "--id", "myid", "hello.lua", "earth", check=0)
    p = lode.run("run", "--id", "myid", "hello.lua", "mars", check=0)
    assert json.loads(p.stdout) == "hello earth"
    assert "warning: workflow myid was recorded with other arguments" in p.stderr
    assert '["earth"]' in p.stderr and '["mars"]' in p.stderr
    p = lode.run("run", "--id", "myid", "hello.lua", "earth", check=0)
    assert "warning" not in p.stderr


def test_resume_of_an_error_workflow_says_it_is_final(lode):
    lode.write("fails.lua", FAILS)
    lode.run("run", "--id", "bad", "fails.lua", check=1)
    p = lode.run("workflow", "resume", "bad", check=2)
    assert "ERROR, which is final" in p.stderr
    assert "lode workflow fork bad --step 1" in p.stderr
    assert lode.sql("SELECT status FROM workflows WHERE id='bad'") == [("ERROR",)]


# ---- deterministic JSON -----------------------------------------------------------------------

def test_json_output_is_deterministic(lode):
    lode.write("js.lua", """
local lode = require("lode")
local s = lode.step("s", function(...)
  local t = {}
  for i, a in ipairs({ ... }) do t[a] = i end
  return { zeta = 1, alpha = { b = 2, a = 1 }, mid = "m", words = t }
end)
return lode.workflow("js", function(...) return s(...) end)
""")
    words = ["w%02d" % i for i in range(40)]
    outs = {lode.run("run", "js.lua", *words, check=0).stdout for _ in range(4)}
    assert len(outs) == 1
    out = outs.pop()
    assert out.index('"alpha"') < out.index('"mid"') < out.index('"words"') < out.index('"zeta"')
    assert json.loads(out)["words"] == {w: i + 1 for i, w in enumerate(words)}
    ids = [r[0] for r in lode.sql("SELECT id FROM workflows")]
    gets = {json.loads(lode.run("workflow", "get", i, "--json", check=0).stdout)["output"].__repr__()
            for i in ids}
    steps = {lode.run("workflow", "steps", i, "--json", check=0).stdout.split('"output":')[1]
             .split(',"error"')[0] for i in ids}
    assert len(gets) == 1 and len(steps) == 1
