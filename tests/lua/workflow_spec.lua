local lode = require("lode")

describe("workflows and steps", function()
  it("runs a step outside any workflow as a plain function", function()
    local calls = 0
    local double = lode.step("double_outside", function(x) calls = calls + 1; return x * 2 end)
    assert.are.equal(8, double(4))
    assert.are.equal(1, calls)
  end)

  it("runs a workflow, its steps and a child workflow", function()
    local add = lode.step("spec_add", function(a, b) return a + b end)
    local child = lode.workflow("spec_child", function(x) return add(x, 1) end)
    local main = lode.workflow("spec_main", function(x)
      local y = add(x, x)
      return { y = y, z = child(y), t = lode.now() }
    end)
    local r = main(5)
    assert.are.equal(10, r.y)
    assert.are.equal(11, r.z)
    assert.is_number(r.t)
  end)

  it("retries a failing step and raises every attempt's error", function()
    local n = 0
    local bad = lode.step("spec_bad", function() n = n + 1; error("nope " .. n) end,
      { retries = { max_attempts = 2, interval = 0, backoff = 1 } })
    local wf = lode.workflow("spec_bad_wf", function() return bad() end)
    local ok, err = pcall(wf)
    assert.is_false(ok)
    assert.are.equal(2, n)
    assert.matches("nope 1", err, 1, true)
    assert.matches("nope 2", err, 1, true)
  end)

  it("names the step whose output cannot be checkpointed", function()
    local s = lode.step("chunk_step", function() return { meta = { cb = print } } end)
    local wf = lode.workflow("spec_unencodable", function() return s() end)
    local ok, err = pcall(wf)
    assert.is_false(ok)
    assert.matches("step 'chunk_step' output: .meta.cb is a function", err, 1, true)
  end)

  it("refuses two workflows with one name", function()
    lode.workflow("spec_twice", function() end)
    assert.has_error(function() lode.workflow("spec_twice", function() end) end)
  end)

  it("checks retry options when the step is declared", function()
    assert.has_error(function()
      lode.step("bad_opts", function() end, { retries = { max_attempts = 0 } })
    end)
  end)
end)
