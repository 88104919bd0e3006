-- The same spec runs on SQLite and, with LODE_TEST_STORE=pg and
-- LODE_TEST_PG=URL (ctest's lua.store_spec.pg), on PostgreSQL: there each
-- test starts from an empty schema lode_store.
local lode = require("lode")

local dir = os.getenv("LODE_TEST_TMPDIR") or "/tmp"
local pg = os.getenv("LODE_TEST_STORE") == "pg" and os.getenv("LODE_TEST_PG")
local seq = 0
local function fresh(opts)
  seq = seq + 1
  local path
  if pg then
    path = pg
    assert(os.execute("psql -X -q -d '" .. pg .. "' -c 'DROP SCHEMA IF EXISTS lode_store CASCADE'"
                      .. " >/dev/null 2>&1"))
  else
    path = string.format("%s/store-spec-%d-%d.db", dir, os.time(), seq)
    os.remove(path)
  end
  return lode.store.open(path, opts), path
end

-- deterministic pseudo-random unit vectors
local state = 12345
local function rand()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648 * 2 - 1
end
local function unit(d)
  local v, s = {}, 0
  for i = 1, d do v[i] = rand(); s = s + v[i] * v[i] end
  s = math.sqrt(s)
  for i = 1, d do v[i] = v[i] / s end
  return v
end

describe("lode.store", function()
  it("puts idempotently: a second put replaces, never duplicates", function()
    local s = fresh({ embedder = { provider = "hash", model = "v1", dims = 3 } })
    local m = lode.matrix.from({ { 1, 0, 0 }, { 0, 1, 0 } })
    local doc = { path = "a.md", hash = "h1", mime = "text/markdown", title = "A",
                  metadata = { tags = { "x" }, n = 1 } }
    local chunks = { { text = "alpha", start = 0, ["end"] = 5, headers = { "Top", "Sub" } },
                     { text = "beta", start = 6, ["end"] = 10 } }
    assert.are.equal(2, s:put(doc, chunks, m))
    s:put(doc, chunks, m)
    local docs, nchunks = s:count()
    assert.are.equal(1, docs)
    assert.are.equal(2, nchunks)
    assert.is_true(s:has("a.md", "h1"))
    assert.is_false(s:has("a.md", "h2"))
    assert.are.same({ "a.md" }, s:paths())
    local rec = s:get("a.md")
    assert.are.equal("h1", rec.hash)
    assert.are.equal("A", rec.title)
    assert.are.equal("text/markdown", rec.mime)
    assert.are.equal(2, rec.chunks)
    assert.are.same({ tags = { "x" }, n = 1 }, rec.metadata)
    assert.is_true(math.abs(rec.updated_at / 1000 - os.time()) < 120)
    assert.is_nil(s:get("missing.md"))
    local e, dims = s:embedder()
    assert.are.equal("hash/v1/3", e)
    assert.are.equal(3, dims)
    s:close()
  end)

  it("returns the planted nearest neighbour with its chunk fields", function()
    local s = fresh()
    local rows, chunks = {}, {}
    for i = 1, 200 do
      rows[i] = unit(16)
      chunks[i] = { text = "chunk " .. i, start = i * 10, ["end"] = i * 10 + 5, headers = { "H", tostring(i) } }
    end
    s:put({ path = "docs/big.txt", mime = "text/plain" }, chunks, lode.matrix.from(rows))
    local q = {}
    for j = 1, 16 do q[j] = rows[137][j] + 0.001 * rand() end
    local hits = s:search(q, 3)
    assert.are.equal(3, #hits)
    local h = hits[1]
    assert.are.equal("docs/big.txt", h.path)
    assert.are.equal("chunk 137", h.text)
    assert.are.equal(137, h.ordinal)
    assert.are.equal(1370, h.start)
    assert.are.equal(1375, h["end"])
    assert.are.same({ "H", "137" }, h.headers)
    assert.is_true(h.score > 0.99)
    assert.is_true(hits[2].score <= h.score and hits[3].score <= hits[2].score)
    -- a 1-row matrix works as the query too
    assert.are.equal("chunk 137", s:search(lode.matrix.from({ q }), 1)[1].text)
    s:close()
  end)

  it("matches a brute-force reference with filters", function()
    local s = fresh()
    local all = {}
    for d = 1, 6 do
      local rows, chunks = {}, {}
      for i = 1, 30 do
        rows[i] = unit(12)
        chunks[i] = "d" .. d .. "c" .. i
        all[#all + 1] = { v = rows[i], text = chunks[i], path = (d % 2 == 0 and "even/" or "odd/") .. d,
                          mime = d <= 3 and "text/plain" or "text/html" }
      end
      s:put({ path = all[#all].path, mime = all[#all].mime }, chunks, lode.matrix.from(rows))
    end
    local q = unit(12)
    local filters = { {}, { path_prefix = "even/" }, { mime = "text/html" },
                      { path_prefix = "odd/", mime = "text/plain" }, { path_prefix = "none/" } }
    for _, f in ipairs(filters) do
      local ref = {}
      for _, c in ipairs(all) do
        if (not f.path_prefix or c.path:sub(1, #f.path_prefix) == f.path_prefix)
            and (not f.mime or c.mime == f.mime) then
          local sc = 0
          for j = 1, 12 do sc = sc + c.v[j] * q[j] end
          ref[#ref + 1] = { score = sc, text = c.text }
        end
      end
      table.sort(ref, function(a, b) return a.score > b.score end)
      for _, k in ipairs({ 1, 7, 500 }) do
        local hits = s:search(q, k, { filter = f })
        assert.are.equal(math.min(k, #ref), #hits)
        for i, h in ipairs(hits) do
          assert.are.equal(ref[i].text, h.text)
          assert.is_true(math.abs(ref[i].score - h.score) < 1e-5)
        end
      end
    end
    s:close()
  end)

  it("deletes documents and sees it in search", function()
    local s = fresh()
    local v = unit(4)
    s:put({ path = "x" }, { "one" }, lode.matrix.from({ v }))
    s:put({ path = "y" }, { "two" }, lode.matrix.from({ v }))
    assert.are.equal(2, #s:search(v, 10))
    assert.is_true(s:delete("x"))
    assert.is_false(s:delete("x"))
    local hits = s:search(v, 10)
    assert.are.equal(1, #hits)
    assert.are.equal("y", hits[1].path)
    s:close()
  end)

  it("reports bad input clearly", function()
    local s, path = fresh({ embedder = "m/1" })
    s:put({ path = "x" }, { "one" }, lode.matrix.from({ { 1, 0 } }))
    assert.has_error(function() s:put({}, { "a" }) end, "put: the document needs a path")
    assert.has_error(function() s:put({ path = "y" }, { "a", "b" }, lode.matrix.from({ { 1, 0 } })) end)
    assert.has_error(function() s:search({ 1, 0, 0 }, 1) end)
    assert.has_error(function() s:put({ path = "z", metadata = { f = print } }, { "a" }) end)
    local ok, err = pcall(lode.store.open, path, { embedder = "m/2" })
    assert.is_false(ok)
    assert.truthy(err:find("m/1", 1, true))
    s:close()
    assert.has_error(function() s:count() end, "store is closed")
  end)

  it("closes with <close> and reopens with the data kept", function()
    local path
    do
      local s <close>, p = fresh()
      path = p
      s:put({ path = "kept" }, { "text" }, lode.matrix.from({ { 0.6, 0.8 } }))
    end
    local s = lode.store.open(path)
    assert.are.same({ "kept" }, s:paths())
    assert.are.equal("text", s:search({ 0.6, 0.8 }, 1)[1].text)
    s:close()
  end)

  it("finds words: keyword search, hybrid ranking, path globs", function()
    local s = fresh()
    local m = lode.matrix.from({ { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } })
    s:put({ path = "docs/zstd.md", hash = "z" }, { "zstd compresses fast", "levels 1 to 22",
                                                   "dictionary training" }, m)
    s:put({ path = "docs/garden.md", hash = "g" }, { "tomatoes in the garden", "watering",
                                                     "pruning zstd plants" }, m)
    local hits = s:search_text("zstd", 10)
    assert.are.equal(2, #hits)
    for _, h in ipairs(hits) do assert.truthy(h.text:find("zstd")) end
    hits = s:search_text("zstd", 10, { filter = { path = "garden.md" } })
    assert.are.equal(1, #hits)
    assert.are.equal("docs/garden.md", hits[1].path)
    -- hybrid: the vector points at "levels", the words at zstd; fused by rank
    local h = s:search({ 0, 1, 0 }, 3, { text = "zstd compresses" })
    assert.are.equal(3, #h)
    assert.are.equal("zstd compresses fast", h[1].text)
    assert.are.equal(1, h[1].keyword_rank)
    assert.is_true(h[1].score > h[2].score)
    -- keyword mode needs no vector; vector mode ignores the text
    assert.are.equal("zstd compresses fast",
                     s:search(nil, 1, { mode = "keyword", text = "compresses" })[1].text)
    assert.are.equal("levels 1 to 22", s:search({ 0, 1, 0 }, 1, { mode = "vector", text = "x" })[1].text)
    assert.has_error(function() s:search({ 0, 1, 0 }, 1, { mode = "fuzzy", text = "x" }) end,
                     "search: mode must be vector, keyword or hybrid, not 'fuzzy'")
    s:close()
  end)

  it("collapses identical files into one hit that lists every path", function()
    local s = fresh()
    local m = lode.matrix.from({ { 1, 0 } })
    s:put({ path = "a/readme.md", hash = "same" }, { "identical text" }, m)
    s:put({ path = "b/readme.md", hash = "same" }, { "identical text" }, m)
    s:put({ path = "c/other.md", hash = "other" }, { "other text" }, m)
    local hits = s:search({ 1, 0 }, 10)
    assert.are.equal(2, #hits)
    assert.are.equal("a/readme.md", hits[1].path)
    assert.are.same({ "a/readme.md", "b/readme.md" }, hits[1].paths)
    assert.is_nil(hits[2].paths)
    hits = s:search({ 1, 0 }, 10, { filter = { path = "b/*" } })
    assert.are.equal(1, #hits)
    assert.are.equal("b/readme.md", hits[1].path)
    s:close()
  end)
end)
