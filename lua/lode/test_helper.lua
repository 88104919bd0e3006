-- lode.test_helper: loaded by `lode test` as busted's --helper.
-- Gives every spec file a fresh, empty state database in a temporary folder,
-- so specs never see each other's workflows.
local busted = require("busted")
local dir = os.getenv("LODE_TEST_TMPDIR") or "/tmp"
local n = 0

busted.subscribe({ "file", "start" }, function()
  n = n + 1
  local lode = require("lode")
  if lode._test_use_db then
    lode._test_use_db(string.format("%s/spec-%d.db", dir, n))
  end
  return nil, true
end)
