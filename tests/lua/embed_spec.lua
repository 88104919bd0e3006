local lode = require("lode")

local FIX = (os.getenv("LODE_SOURCE_DIR") or ".") .. "/tests/fixtures/model2vec/"

local function norm(row)
  local s = 0
  for _, x in ipairs(row) do s = s + x * x end
  return math.sqrt(s)
end

local function dot(a, b)
  local s = 0
  for i = 1, #a do s = s + a[i] * b[i] end
  return s
end

describe("lode.embed hash", function()
  it("returns one unit row per text, 384 dims by default", function()
    local e = lode.embed.new()
    assert.are.equal(384, e:dims())
    local m = e:embed({ "durable pipelines", "traced data", "Lua and C" })
    assert.are.equal(3, #m)
    assert.are.equal(384, m:dims())
    for i = 1, 3 do assert.is_true(math.abs(norm(m:row(i)) - 1) < 1e-5) end
    assert.are.same({ provider = "hash", model = "hash-v1", dims = 384 }, e:info())
  end)

  it("is deterministic and honours dims", function()
    local a = lode.embed.new{ provider = "hash", dims = 64 }:embed({ "the same text" })
    local b = lode.embed.new{ provider = "hash", dims = 64 }:embed({ "the same text" })
    assert.are.equal(64, a:dims())
    assert.are.same(a:row(1), b:row(1))
  end)

  it("puts related texts closer than unrelated ones", function()
    local m = lode.embed.new():embed({
      "checkpointing workflows in sqlite",
      "workflows are checkpointed in a sqlite database",
      "bananas grow in tropical climates",
    })
    assert.is_true(dot(m:row(1), m:row(2)) > dot(m:row(1), m:row(3)) + 0.2)
  end)

  it("gives an empty text the zero vector and accepts an empty list", function()
    local e = lode.embed.new{ dims = 8 }
    assert.are.same({ 0, 0, 0, 0, 0, 0, 0, 0 }, e:embed({ "" }):row(1))
    assert.are.equal(0, #e:embed({}))
  end)

  it("rejects bad input with clear errors", function()
    local e = lode.embed.new()
    assert.has_error(function() e:embed({ "ok", 42 }) end,
      "embed: texts[2] is a number, expected a string")
    assert.has_error(function() e:embed("not a table") end)
    assert.has_error(function() lode.embed.new{ provider = "nope" } end)
    assert.has_error(function() lode.embed.new{ dims = 0.5 } end)
    local ok, err = pcall(lode.embed.new, { provider = "hash", dims = -1 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("dims", 1, true))
  end)

  it("closes, and refuses use after close", function()
    local e = lode.embed.new()
    e:close()
    assert.has_error(function() e:embed({ "x" }) end, "embedder is closed")
    do
      local e2 <close> = lode.embed.new()
      assert.are.equal(1, #e2:embed({ "y" }))
    end
  end)
end)

describe("lode.embed model2vec", function()
  it("matches the reference output of model2vec", function()
    local e = lode.embed.new{ provider = "model2vec", path = FIX .. "test-model-float32" }
    assert.are.equal(2, e:dims())
    assert.are.equal("model2vec", e:info().provider)
    local r = e:embed({ "hello world" }):row(1)
    local want = { -0.3934547007083893, -0.9193440079689026 } -- embeddings_short.json
    for i = 1, 2 do assert.is_true(math.abs(r[i] - want[i]) <= 1e-5 * math.abs(want[i])) end
  end)

  it("reads the vocabulary-quantised Unigram model", function()
    local e = lode.embed.new{ provider = "model2vec", path = FIX .. "test-model-vocab-quantized" }
    local m = e:embed({ "hello world", "Ceci n'est pas une pipe!" })
    assert.are.equal(64, m:dims())
    assert.is_true(math.abs(norm(m:row(1)) - 1) < 1e-5)
    assert.is_true(math.abs(norm(m:row(2)) - 1) < 1e-5)
  end)

  it("names the missing file", function()
    local ok, err = pcall(lode.embed.new, { provider = "model2vec", path = "/no/such/model" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("/no/such/model/config.json", 1, true))
  end)
end)
