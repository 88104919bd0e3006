local lode = require("lode")

-- A deterministic generator of random nested values.
local seed = 12345
local function rand(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n
end

local function random_string()
  local t = {}
  for i = 1, rand(20) do t[i] = string.char(rand(256)) end
  return table.concat(t)
end

local function random_value(depth)
  local k = rand(depth > 3 and 6 or 8)
  if k == 0 then return rand(2) == 0
  elseif k == 1 then return rand(2000000) - 1000000
  elseif k == 2 then return (rand(2000000) - 1000000) / 7
  elseif k == 3 then return math.mininteger + rand(3)
  elseif k == 4 then return random_string()
  elseif k == 5 then return rand(3) == 0 and 1.0 or 2^53
  elseif k == 6 then
    local t = {}
    for i = 1, rand(6) do t[i] = random_value(depth + 1) end
    return t
  else
    local t = {}
    for _ = 1, rand(5) do
      local key = rand(3) == 0 and rand(100) or random_string()
      t[key] = random_value(depth + 1)
    end
    return t
  end
end

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    return math.type(a) == math.type(b) and (a == b or (a ~= a and b ~= b))
  end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

describe("the checkpoint codec", function()
  it("round-trips thousands of random nested values exactly", function()
    for _ = 1, 5000 do
      local v = random_value(0)
      local back = lode._decode(lode._encode(v))
      assert.is_true(same(v, back))
    end
  end)

  it("keeps integers and floats distinct", function()
    assert.are.equal("integer", math.type(lode._decode(lode._encode(1))))
    assert.are.equal("float", math.type(lode._decode(lode._encode(1.0))))
    assert.are.equal("1.0", lode._to_json(lode._encode(1.0)))
  end)

  it("round-trips matrices as one value", function()
    local m = lode.matrix.from({ { 1, 2 }, { 3, 4.5 } })
    local back = lode._decode(lode._encode({ m = m }))
    assert.is_true(back.m == m)
    assert.are.equal('{"m":{"$matrix":{"rows":2,"dims":2}}}', lode._to_json(lode._encode({ m = m })))
  end)

  it("names the path of what it cannot encode", function()
    local function msg(v)
      local ok, err = pcall(lode._encode, v)
      assert.is_false(ok)
      return err
    end
    assert.matches(".meta.cb is a function", msg({ meta = { cb = print } }), 1, true)
    assert.matches("[2] is a coroutine", msg({ 1, coroutine.create(print) }), 1, true)
    local cyc = { a = {} }
    cyc.a.back = cyc
    assert.matches(".a.back is part of a cycle", msg(cyc), 1, true)
    assert.matches("is a userdata lode cannot encode", msg({ f = io.stdout }), 1, true)
    assert.matches('["a key"] is a function', msg({ ["a key"] = print }), 1, true)
    assert.matches("has a table as a key", msg({ [{}] = 1 }), 1, true)
    assert.matches("value is a function", msg(print), 1, true)
  end)

  it("rejects corrupt bytes with an error, never a crash", function()
    local good = lode._encode({ a = { 1, 2, "three" }, b = 2.5 })
    for cut = 0, #good - 1 do
      assert.has_error(function() lode._decode(good:sub(1, cut)) end)
    end
    for i = 1, 2000 do
      pcall(lode._decode, "\1" .. random_string())
    end
  end)
end)

-- Span previews (what traces show of big step arguments and results): the
-- cost and size are bounded by the budget, with markers saying what was left.
describe("span previews", function()
  local lode = require("lode")

  it("cut long strings like the JSON renderer does", function()
    local s = string.rep("é", 10) -- 20 bytes
    local full = lode._to_json(lode._encode(s), 5)
    local pre = lode._to_json(lode._encode(s, 5, 1000))
    assert.are.equal(full, pre)
    assert.truthy(pre:find("...[truncated 16 bytes]", 1, true))
  end)

  it("stop a big table at the budget and count the rest", function()
    local t = {}
    for i = 1, 10000 do t[i] = string.rep("x", 100) end
    local pre = lode._encode(t, 4096, 2000)
    assert.is_true(#pre < 3000)
    local back = lode._decode(pre)
    assert.are.equal(21, #back) -- 20 items of 100 bytes, then the count
    assert.are.equal("...[9980 more items]", back[21])
    local obj = {}
    for i = 1, 500 do obj["k" .. i] = i end
    local o = lode._decode(lode._encode({ list = t, map = obj }, 4096, 500))
    assert.truthy(o["..."] or o.list[#o.list]:find("more items", 1, true))
  end)

  it("show a matrix by its shape without copying it", function()
    local m = lode.matrix.new(1000, 64)
    local j = lode._to_json(lode._encode({ m = m }, 4096, 1000))
    assert.are.equal('{"m":{"$matrix":{"rows":1000,"dims":64}}}', j)
  end)

  it("leave small values exactly as they are", function()
    local v = { a = 1, b = { "x", "y" }, c = 2.5 }
    assert.are.equal(lode._to_json(lode._encode(v)), lode._to_json(lode._encode(v, 4096, 1000)))
  end)

  it("render a huge encoded value within the budget", function()
    local t = {}
    for i = 1, 5000 do t[i] = { text = string.rep("y", 200), n = i } end
    local j = lode._to_json(lode._encode(t), 4096, 10000)
    assert.is_true(#j < 12000)
    assert.truthy(j:find('"...%[%d+ more items%]"%]$'))
  end)
end)
