-- The Lua helpers of the reference pipelines: lode.args, lode.progress, lode.rag.
local args = require("lode.args")
local progress = require("lode.progress")
local rag = require("lode.rag")

local function spec()
  return args.spec{
    usage = "lode run x.lua FOLDER [K]",
    positional = { { name = "folder", required = true, help = "where" },
                   { name = "k", type = "integer", min = 1, default = 5, help = "how many" } },
    options = {
      { name = "size", type = "integer", default = 1000, min = 1, help = "chunk size" },
      { name = "ratio", type = "number", help = "a ratio" },
      { name = "provider", type = "choice", choices = { "hash", "openai" }, default = "hash",
        help = "embedder" },
      { name = "include", type = "list", metavar = "GLOB", help = "globs" },
      { name = "json", type = "flag", help = "json out" },
      { name = "max-bytes", type = "integer", help = "limit" },
    },
  }
end

describe("lode.args", function()
  it("parses positionals, defaults, both option forms, lists and flags", function()
    local o = assert(spec():parse({ "docs", "--size", "500", "--include=*.md", "--include", "*.txt",
                                    "--json", "--provider=openai", "--max-bytes", "9", "3" }))
    assert.are.equal("docs", o.folder)
    assert.are.equal(3, o.k)
    assert.are.equal(500, o.size)
    assert.are.same({ "*.md", "*.txt" }, o.include)
    assert.is_true(o.json)
    assert.are.equal("openai", o.provider)
    assert.are.equal(9, o["max-bytes"])
    local d = assert(spec():parse({ "x" }))
    assert.are.same({ 5, 1000, "hash", false, {} }, { d.k, d.size, d.provider, d.json, d.include })
  end)

  it("takes everything after -- as positional, and negative numbers as values", function()
    local o = assert(spec():parse({ "--", "--json" }))
    assert.are.equal("--json", o.folder)
    assert.is_false(o.json)
    local r = assert(spec():parse({ "x", "--ratio", "-0.5" }))
    assert.are.equal(-0.5, r.ratio)
  end)

  it("answers bad usage with a message naming the option, never an error", function()
    local cases = {
      { {}, "missing FOLDER" },
      { { "x", "--size" }, "--size needs a value" },
      { { "x", "--size", "ten" }, "--size takes a whole number, not 'ten'" },
      { { "x", "--size", "0" }, "--size must be at least 1, not 0" },
      { { "x", "--provider", "bert" }, "--provider takes one of hash, openai, not 'bert'" },
      { { "x", "--nope" }, "unknown option '--nope'" },
      { { "x", "--json=1" }, "--json takes no value" },
      { { "x", "2", "3" }, "unexpected argument '3'" },
      { { "x", "0" }, "k must be at least 1, not 0" },
      { { "x", {} }, "argument 2 is a table" },
    }
    for _, c in ipairs(cases) do
      local o, err = spec():parse(c[1])
      assert.is_nil(o)
      assert.truthy(err:find(c[2], 1, true), err)
      assert.truthy(err:find("(see --help)", 1, true), err)
    end
  end)

  it("--help needs no positional and its text lists every option", function()
    local s = spec()
    assert.is_true(assert(s:parse({ "--help" })).help)
    local h = s:help()
    for _, name in ipairs({ "--size%s+INTEGER", "--ratio%s+NUMBER", "--provider%s+hash|openai",
                            "--include%s+GLOB", "--json", "--max%-bytes", "--help", "FOLDER", "K",
                            "%(default 1000%)", "%(repeatable%)" }) do
      assert.truthy(h:find(name), name)
    end
  end)

  it("--help aligns its columns: name, value, description (issue 14)", function()
    local h = spec():help()
    -- every description starts in the same column, even after a long value
    local desc = h:match("\n(  %-%-provider[^\n]*)")
    assert.truthy(desc:find("hash|openai  +embedder"), desc)
    local at = h:match("\n  %-%-size%s+INTEGER%s+()chunk size")
    local at2 = h:match("\n  %-%-provider%s+hash|openai%s+()embedder")
    assert.are.equal(at2 - h:find("\n  %-%-provider"), at - h:find("\n  %-%-size"))
  end)

  it("suggests the closest option for a typo", function()
    local _, err = spec():parse({ "x", "--sizee", "3" })
    assert.truthy(err:find("did you mean --size?", 1, true), err)
    local _, err2 = spec():parse({ "x", "--zzzzzz" })
    assert.falsy(err2:find("did you mean", 1, true), err2)
  end)

  it("declare: the host checks arguments (usage, help, a check between options)", function()
    local s = args.declare{
      usage = "lode run y.lua N",
      positional = { { name = "n", type = "integer", required = true } },
      options = { { name = "max", type = "integer", default = 10 } },
      check = function(o)
        if o.n > o.max then return nil, "N must be at most --max" end
        return true
      end,
    }
    assert.are.equal("ok", args._host_check({ "3" }))
    local kind, msg, usage = args._host_check({ "30" })
    assert.are.same({ "usage", "N must be at most --max", "lode run y.lua N" }, { kind, msg, usage })
    kind, msg = args._host_check({ "--help" })
    assert.are.equal("help", kind)
    assert.truthy(msg:find("usage: lode run y.lua N", 1, true))
    assert.are.equal(3, s:values({ "3" }).n)
    local ok, e = pcall(function() return s:values({ "x" }) end)
    assert.is_false(ok)
    assert.truthy(tostring(e):find("takes a whole number", 1, true), tostring(e))
    args._declared = nil
  end)

  it("the ingest pipeline's --help lists every option it reads", function()
    local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
    local f = assert(io.open(here .. "/../../pipelines/ingest_folder.lua"))
    local text = f:read("a")
    f:close()
    local used = {}
    for opt in text:gmatch("opts%.([%w_]+)") do used[opt] = true end
    for opt in text:gmatch('opts%["([%w_-]+)"%]') do used[opt] = true end
    used.help, used.folder = nil, nil
    assert.truthy(next(used))
    for opt in pairs(used) do
      assert.truthy(text:find('name = "' .. opt .. '"', 1, true), opt)
    end
  end)
end)

local function sink()
  local s = { parts = {} }
  function s:write(...) for _, p in ipairs({ ... }) do self.parts[#self.parts + 1] = p end end
  function s:flush() end
  function s:text() return table.concat(self.parts) end
  return s
end

describe("lode.progress", function()
  it("plain mode writes whole lines with files, chunks, MB/s and ETA", function()
    local out = sink()
    local saved = os.getenv("LODE_PROGRESS")
    local p = progress.new{ total_files = 4, total_bytes = 4 * 1048576, out = out, interval = 0 }
    p.mode = "plain"
    for _ = 1, 4 do p:add{ files = 1, bytes = 1048576, chunks = 3 } end
    p:finish()
    local text = out:text()
    assert.truthy(text:find("ingest: 4/4 files, 12 chunks, 4.0 MB, [%d.]+ MB/s, ETA 0s\n"), text)
    assert.falsy(text:find("\r", 1, true))
    assert.are.equal(saved, os.getenv("LODE_PROGRESS"))
  end)

  it("plain mode is quiet within the interval; tty mode redraws one line", function()
    local out = sink()
    local p = progress.new{ total_files = 100, out = out, interval = 3600 }
    p.mode = "plain"
    for _ = 1, 100 do p:add{ files = 1 } end
    assert.are.equal("", out:text())
    local tty = sink()
    local q = progress.new{ total_files = 2, out = tty, interval = 0 }
    q.mode = "tty"
    q:add{ files = 1 }
    q:add{ files = 1 }
    q:finish()
    local t = tty:text()
    assert.truthy(t:find("^\ringest: 1/2 files"), t)
    assert.truthy(t:find("\27%[K\n$"), t)
    assert.truthy(t:find("2/2 files", 1, true), t)
  end)
end)

describe("lode.rag", function()
  it("round-trips embedder identities, model paths with slashes included", function()
    assert.are.same({ provider = "hash", model = "hash-v1", dims = 384 },
                    rag.parse_identity("hash/hash-v1/384"))
    assert.are.same({ provider = "model2vec", model = "/m/potion/8M", dims = 256 },
                    rag.parse_identity("model2vec//m/potion/8M/256"))
    assert.is_nil(rag.parse_identity("nonsense"))
    assert.are.same({ provider = "hash", dims = 64 },
                    rag.embed_options_for_identity({ provider = "hash", model = "hash-v1", dims = 64 }))
    local e = rag.embedder(rag.embed_options({ provider = "hash", dims = 32 }))
    assert.are.same({ provider = "hash", model = "hash-v1", dims = 32 }, rag.identity(e))
    assert.are.equal(e, rag.embedder({ dims = 32, provider = "hash" }))
    assert.has_error(function() rag.embed_options({ provider = "model2vec" }) end,
                     "--provider model2vec needs --model DIR (a model2vec model directory)")
  end)

  it("cuts strings at a byte limit without splitting a UTF-8 sequence", function()
    local s = "ab\u{e9}\u{20ac}z"           -- a b é(2) €(3) z
    assert.are.equal("ab", rag.cut(s, 3))
    assert.are.equal("ab\u{e9}", rag.cut(s, 4))
    assert.are.equal("ab\u{e9}", rag.cut(s, 6))
    assert.are.equal("ab\u{e9}\u{20ac}", rag.cut(s, 7))
    assert.are.equal(s, rag.cut(s, 100))
    for n = 0, #s do assert.truthy(utf8.len(rag.cut(s, n)), n) end
  end)

  it("reduces step errors to one line for summaries", function()
    local msg = "step 'load_and_normalize_step' failed after 1 attempt:\n" ..
                "x.bin: binary file, not loaded\nstack traceback:\n\t[C]: in ?\n\nstack traceback:\n\tmore"
    assert.are.equal("load_and_normalize_step: x.bin: binary file, not loaded", rag.reason(msg))
  end)
end)
