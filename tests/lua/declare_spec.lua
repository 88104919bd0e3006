-- Declaring workflows, steps, tracked functions and queues: options are
-- checked at the declaration with messages naming it and the option, and
-- declarations belong at top level (docs/lua-api.md). Also the error paths
-- that must free what they allocated (the ASan build's leak check runs over
-- these at exit).
local lode = require("lode")

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok)
  return tostring(e)
end

describe("declaring", function()
  it("names the workflow and the option whose value is wrong", function()
    local e = err_of(lode.workflow, "tour", function() end, { timeout = "soon" })
    assert.matches("lode.workflow 'tour': option 'timeout' must be a positive number "
      .. "of seconds, at most 1e9 (got string \"soon\")", e, 1, true)
    e = err_of(lode.workflow, "tour2", function() end, { max_recovery_attempts = 1.5 })
    assert.matches("option 'max_recovery_attempts' must be an integer >= 1 (got number 1.5)",
      e, 1, true)
    e = err_of(lode.workflow, "tour3", function() end, { tags = { "a", 3 } })
    assert.matches("option 'tags' must be a list of strings", e, 1, true)
  end)

  it("refuses a timeout that is infinite, NaN or past 1e9 s (it would fire at once)", function()
    for i, v in ipairs({ math.huge, 0 / 0, 1e10, -math.huge }) do
      local e = err_of(lode.step, "huge" .. i, function() end, { timeout = v })
      assert.matches("option 'timeout' must be a positive number of seconds, at most 1e9",
        e, 1, true)
      e = err_of(lode.workflow, "hugewf" .. i, function() end, { timeout = v })
      assert.matches("option 'timeout' must be a positive number of seconds, at most 1e9",
        e, 1, true)
    end
    lode.step("bigok", function() return 1 end, { timeout = 1e9 })
  end)

  it("refuses unknown option names, naming them", function()
    local e = err_of(lode.workflow, "tour4", function() end, { timout = 3 })
    assert.matches("lode.workflow 'tour4': unknown option 'timout'", e, 1, true)
    e = err_of(lode.step, "st", function() end, { retries = { max_atempts = 2 } })
    assert.matches("lode.step 'st': unknown option 'retries.max_atempts'", e, 1, true)
    e = err_of(lode.step, "st", function() end, { retry = 2 })
    assert.matches("lode.step 'st': unknown option 'retry'", e, 1, true)
    e = err_of(lode.queue, "qq", { concurency = 2 })
    assert.matches("lode.queue 'qq': unknown option 'concurency'", e, 1, true)
    e = err_of(lode.track, "tr", function() end, { kind = "tool" })
    assert.matches("lode.track 'tr': unknown option 'kind'", e, 1, true)
  end)

  it("checks step, queue and argument shapes", function()
    local e = err_of(lode.step, "st2", function() end, { retries = { backoff = 0.5 } })
    assert.matches("option 'retries.backoff' must be a number >= 1 (got number 0.5)", e, 1, true)
    e = err_of(lode.step, "st3", function() end, "fast")
    assert.matches("lode.step 'st3': options must be a table (got string \"fast\")", e, 1, true)
    e = err_of(lode.step, "st4", "not a function")
    assert.matches("lode.step 'st4': the second argument must be a function (got string)", e,
      1, true)
    e = err_of(lode.queue, "q1", { concurrency = 0 })
    assert.matches("lode.queue 'q1': option 'concurrency' must be an integer >= 1 "
      .. "(got number 0)", e, 1, true)
    e = err_of(lode.queue, "q2", { limiter = { limit = 2 } })
    assert.matches("lode.queue 'q2': option 'limiter.period' is required", e, 1, true)
    e = err_of(lode.queue, "q3", { priority = "yes" })
    assert.matches("option 'priority' must be a boolean", e, 1, true)
    -- a declaration that failed leaves no name behind
    lode.workflow("tour", function() return "ok" end, { timeout = 5 })
  end)

  it("refuses declarations inside a running workflow or step, saying where they go", function()
    local inner = lode.workflow("declares_inside", function()
      lode.step("too_late", function() end)
    end)
    local e = err_of(inner)
    assert.matches("lode.step 'too_late' is declared inside a running workflow; declare "
      .. "workflows, steps, tracked functions and queues at the top level", e, 1, true)
    local s = lode.step("declaring_step", function() return lode.queue("late_q") end)
    e = err_of(s)
    assert.matches("lode.queue 'late_q' is declared inside a step", e, 1, true)
    local w = lode.workflow("declares_in_step", function() return s() end)
    e = err_of(w)
    assert.matches("lode.queue 'late_q' is declared inside a step", e, 1, true)
    -- spec files declare at their top level (here: inside it()) as before
    assert.is_truthy(lode.workflow("declared_in_spec", function() end))
  end)
end)

describe("error paths free what they allocated", function()
  local child = lode.workflow("leak_child", function(x) return x end)
  local q = lode.queue("leak_q")

  it("a function as a workflow argument", function()
    local e = err_of(child, { 1, 2, cb = print })
    assert.matches("workflow 'leak_child' input: ", e, 1, true)
    local parent = lode.workflow("leak_parent", function() return child(function() end) end)
    e = err_of(parent)
    assert.matches("workflow 'leak_child' input: ", e, 1, true)
  end)

  it("a function as an enqueued workflow's argument, and bad enqueue options", function()
    local e = err_of(q.enqueue, q, child, { "a", function() end })
    assert.matches("workflow 'leak_child' input: ", e, 1, true)
    e = err_of(lode.start, child, coroutine.create(print))
    assert.matches("workflow 'leak_child' input: ", e, 1, true)
    e = err_of(q.enqueue, q, { workflow = child, prio = 1 }, "x")
    assert.matches("enqueue on queue 'leak_q': unknown option 'prio'", e, 1, true)
    e = err_of(q.enqueue, q, { workflow = child, id = 7 }, "x")
    assert.matches("option 'id' must be a string (got number 7)", e, 1, true)
    local parent = lode.workflow("leak_enqueuer", function()
      return q:enqueue(child, { f = print })
    end)
    e = err_of(parent)
    assert.matches("workflow 'leak_child' input: ", e, 1, true)
  end)

  it("a step whose output cannot be checkpointed, with retries and traced arguments", function()
    local s = lode.step("leak_step", function(t) return t.f end,
      { retries = { max_attempts = 2, interval = 0 } })
    local w = lode.workflow("leak_step_wf", function() return s({ f = print, n = 1 }) end)
    local e = err_of(w)
    assert.matches("step 'leak_step' output", e, 1, true)
  end)
end)
