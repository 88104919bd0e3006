"""`cmake --install` to any prefix (issue 14): the installed lode finds its Lua
library next to its own bin/, wherever the prefix is or is moved to, never in
the source tree it was built from, and says where it looked when it cannot.
docs/getting-started.md, "Installing"."""
import json
import os
import shutil
import subprocess

from lodeutil import LODE


def install(prefix):
    build = os.path.dirname(os.path.realpath(LODE))
    subprocess.run(["cmake", "--install", build, "--prefix", prefix], check=True,
                   capture_output=True, timeout=120)


def run(lode, *args, cwd, check=0):
    p = subprocess.run([lode, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, OPIK_TRACK_DISABLE="true", LODE_LUA_PATH=""))
    if check is not None:
        assert p.returncode == check, p.stderr
    return p


def test_install_to_another_prefix_runs_the_reference_pipelines(tmp_path):
    install(str(tmp_path / "first"))
    # moved after installing: nothing may point at the configured prefix
    prefix = tmp_path / "moved"
    os.rename(tmp_path / "first", prefix)
    lode = str(prefix / "bin" / "lode")
    share = prefix / "share" / "lode"
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    (work / "docs" / "a.md").write_text("# Kites\n\nA red kite flies over the quarry at dawn.\n")
    (work / "where.lua").write_text(
        'local lode = require("lode")\n'
        'return lode.workflow("where", function()\n'
        '  return package.searchpath("lode.args", package.path) end)\n')
    where = json.loads(run(lode, "run", "where.lua", cwd=work).stdout)
    assert where == str(share / "lua" / "lode" / "args.lua")
    r = json.loads(run(lode, "run", str(share / "pipelines" / "ingest_folder.lua"), "docs",
                       cwd=work).stdout)
    assert r["ingested"] == 1
    q = json.loads(run(lode, "run", str(share / "pipelines" / "query.lua"),
                       "what flies over the quarry?", "1", cwd=work).stdout)
    assert q["hits"][0]["path"] == "docs/a.md"


def test_a_binary_without_its_library_names_the_folders_it_tried(tmp_path):
    install(str(tmp_path / "p"))
    alone = tmp_path / "alone" / "bin"
    alone.mkdir(parents=True)
    shutil.copy(tmp_path / "p" / "bin" / "lode", alone / "lode")
    p = run(str(alone / "lode"), "run", str(tmp_path / "p" / "share" / "lode" / "pipelines" /
                                             "query.lua"), "x", cwd=tmp_path, check=None)
    assert p.returncode != 0
    assert "module 'lode.args' not found" in p.stderr
    assert ("lode's library folders tried for 'lode.args': %s/../share/lode/lua (missing)"
            % alone) in p.stderr, p.stderr
