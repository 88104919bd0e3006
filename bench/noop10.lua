-- The lode side of the DBOS comparison (bench/bench_dbos.sh): a workflow of
-- ten no-op steps, and a driver that runs it N times in sequence as child
-- workflows, so one process measures the executor rather than start-up.
--   lode run bench/noop10.lua [N] [STEPS]      (defaults: 100 workflows, 10 steps)
-- Each child is a real workflow record (id DRIVER-K) with its own step
-- checkpoints, as each DBOS workflow is a row in its system database.
local lode = require("lode")

local noop = lode.step("noop", function() end)

local noop10 = lode.workflow("noop10", function(steps)
  for _ = 1, steps do noop() end
  return steps
end)

return lode.workflow("noop10_driver", function(n, steps)
  n = math.tointeger(tonumber(n or 100))
  steps = math.tointeger(tonumber(steps or 10))
  assert(n and n >= 0, "N must be a non-negative integer")
  assert(steps and steps >= 0, "STEPS must be a non-negative integer")
  local done = 0
  for _ = 1, n do done = done + noop10(steps) end
  return { workflows = n, steps = done }
end)
