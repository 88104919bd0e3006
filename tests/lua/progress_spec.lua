local lode = require("lode")
local progress = require("lode.progress")

-- What the spec file's state database holds in workflow_progress (read with
-- the sqlite3 shell, as another process would: `lode workflow get` is one).
-- Every spec file has its own database under $LODE_TEST_TMPDIR; the rows
-- carry a marker unique to this run, so the one read is ours.
local function recorded(marker)
  local dir = assert(os.getenv("LODE_TEST_TMPDIR"), "lode test sets LODE_TEST_TMPDIR")
  local pg = os.getenv("LODE_TEST_PG")
  local sh
  if pg and pg ~= "" then
    -- on PostgreSQL (lode.test_helper: a database spec_* per spec file), with psql
    local base = pg:match("^(.*)/[^/]*$")
    sh = string.format(
      "for d in $(psql -X -At -d '%s/postgres' -c \"SELECT datname FROM pg_database WHERE "
        .. "datname LIKE 'spec\\_%%'\"); do psql -X -At -d '%s/'$d -c \"SELECT progress FROM "
        .. "lode.workflow_progress WHERE progress LIKE '%%%s%%'\" 2>/dev/null; done",
      base, base, marker)
  else
    sh = string.format(
    "for f in '%s'/spec-*.db; do sqlite3 -readonly \"$f\" "
      .. "\"SELECT progress FROM workflow_progress WHERE progress LIKE '%%%s%%'\" 2>/dev/null; done",
    dir, marker)
  end
  local p = assert(io.popen(sh))
  local out = p:read("a")
  p:close()
  return out
end

local function sink()
  local s = { text = "" }
  function s:write(...) for _, v in ipairs({ ... }) do self.text = self.text .. v end end
  function s:flush() end
  return s
end

describe("lode.progress", function()
  it("reports nothing outside a workflow body", function()
    assert.is_false(lode.progress{ files = 1 })
  end)

  it("wants a table", function()
    assert.has_error(function() lode.progress("3 files") end)
  end)

  it("records a workflow's report for another process, the last one winning", function()
    local marker = "mk" .. tostring(math.random(1, 1e9))
    local wf = lode.workflow("spec_progress_wf", function()
      local a = lode.progress{ files = 1, total_files = 4, line = marker .. " first" }
      local b = lode.progress{ files = 3, total_files = 4, line = marker .. " second" }
      return { a = a, b = b }
    end)
    local r = wf()
    assert.is_true(r.a)
    assert.is_true(r.b)
    local row = recorded(marker)
    assert.matches(marker .. " second", row, 1, true)
    assert.not_matches(marker .. " first", row, 1, true)
    assert.matches('"files":3', row, 1, true)
    assert.matches('"total_files":4', row, 1, true)
  end)

  it("is not a step's to report: false inside a step", function()
    local s = lode.step("spec_progress_step", function() return lode.progress{ files = 1 } end)
    local wf = lode.workflow("spec_progress_in_step", function() return s() end)
    assert.is_false(wf())
  end)

  it("keeps a report short: a long string is cut", function()
    local marker = "mk" .. tostring(math.random(1, 1e9))
    local wf = lode.workflow("spec_progress_long", function()
      return lode.progress{ line = marker .. string.rep("x", 10000) }
    end)
    assert.is_true(wf())
    local row = recorded(marker)
    assert.is_true(#row > 0 and #row < 1000, "stored " .. #row .. " bytes")
  end)

  it("names what cannot be recorded", function()
    local wf = lode.workflow("spec_progress_bad", function()
      return lode.progress{ cb = print }
    end)
    local ok, err = pcall(wf)
    assert.is_false(ok)
    assert.matches("lode.progress: ", err, 1, true)
    assert.matches(".cb is a function", err, 1, true)
  end)
end)

describe("lode.progress (lua/lode/progress.lua)", function()
  it("formats a line with counts, size, rate and ETA", function()
    local p = progress.new{ total_files = 2, total_bytes = 2 * 1024 * 1024, out = sink() }
    p.files, p.bytes, p.chunks = 1, 1024 * 1024, 7
    assert.matches("^ingest: 1/2 files, 7 chunks, 1.0 MB, [%d.]+ MB/s, ETA %S+$", p:line())
    p.bytes = 2 * 1024 * 1024
    assert.matches("ETA 0s$", p:line())
    local q = progress.new{ label = "scan", out = sink() }
    assert.matches("^scan: 0/0 files, 0 chunks, 0.0 MB, 0.00 MB/s, ETA %?$", q:line())
  end)

  it("writes plain lines to a log, and redraws one line on a terminal", function()
    local out = sink()
    local p = progress.new{ total_files = 2, interval = 0, out = out }
    p.mode = "plain"
    p:add{ files = 1, bytes = 10, chunks = 2 }
    p:add{ files = 1, bytes = 10, chunks = 2 }
    assert.matches("ingest: 1/2 files, 2 chunks", out.text, 1, true)
    assert.matches("ingest: 2/2 files, 4 chunks", out.text, 1, true)
    assert.not_matches("\27", out.text, 1, true)
    p:finish() -- a log needs no closing line
    assert.are.equal(2, select(2, out.text:gsub("\n", "")))

    out = sink()
    p = progress.new{ total_files = 1, out = out }
    p.mode, p.interval = "tty", 0
    p:add{ files = 1 }
    p:finish()
    assert.matches("^\r", out.text)
    assert.matches("ingest: 1/1 files, 0 chunks, 0.0 MB, [%d.]+ MB/s, ETA %?\27%[K\n$", out.text)
  end)

  it("writes nothing when off, but still counts", function()
    local out = sink()
    local p = progress.new{ out = out }
    p.mode = "off"
    p:add{ files = 5, chunks = 1 }
    p:finish()
    assert.are.equal("", out.text)
    assert.are.equal(5, p.files)
  end)

  it("reports to the state database from a workflow body", function()
    local marker = "lbl" .. tostring(math.random(1, 1e9))
    local wf = lode.workflow("spec_progress_module", function()
      local p = progress.new{ label = marker, total_files = 3, out = sink() }
      p.mode = "off"
      p:add{ files = 1, chunks = 4 }
      p:add{ files = 1, chunks = 4 } -- within half a second of the first: not reported
      p:finish()                      -- always reported
      return p.files
    end)
    assert.are.equal(2, wf())
    local row = recorded(marker)
    assert.matches('"files":2', row, 1, true)
    assert.matches('"chunks":8', row, 1, true)
    assert.matches(marker .. ": 2/3 files, 8 chunks", row, 1, true)
  end)
end)
