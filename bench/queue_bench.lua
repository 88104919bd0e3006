-- bench/queue_bench.lua MODE N: N tiny child workflows, through a queue
-- (MODE=queue) or called inline one after the other (MODE=inline).
local lode = require("lode")
local q = lode.queue("bench")
local tiny = lode.step("tiny", function(i) return i end)
local child = lode.workflow("tiny_child", function(i) return tiny(i) end)
return lode.workflow("fanout_bench", function(mode, n)
  n = tonumber(n)
  local t0 = lode.now()
  local sum = 0
  if mode == "inline" then
    for i = 1, n do sum = sum + child(i) end
  else
    local hs = {}
    for i = 1, n do hs[i] = q:enqueue(child, i) end
    for i = 1, n do sum = sum + hs[i]:result() end
  end
  return { n = n, sum = sum, seconds = lode.now() - t0 }
end)
