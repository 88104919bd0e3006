-- lode.test_helper: loaded by `lode test` as busted's --helper.
-- Gives every spec file a fresh, empty state database in a temporary folder,
-- so specs never see each other's workflows.
local busted = require("busted")
local dir = os.getenv("LODE_TEST_TMPDIR") or "/tmp"
local n = 0
-- with $LODE_TEST_PG (tests/pg/pgserver.py run), each spec file gets a fresh
-- database on that PostgreSQL server instead of a file
local pg = os.getenv("LODE_TEST_PG")
if pg == "" then pg = nil end

local function pg_database(k)
  local base = pg:match("^(.*)/[^/]*$")
  local name = string.format("spec_%d_%d", os.time() % 100000, k)
  local ok = os.execute(string.format("psql -X -q -d '%s/postgres' -c 'CREATE DATABASE %s' >/dev/null",
                                      base, name))
  assert(ok, "cannot create database " .. name .. " on " .. pg)
  return base .. "/" .. name
end

busted.subscribe({ "file", "start" }, function()
  n = n + 1
  local lode = require("lode")
  if lode._test_use_db then
    lode._test_use_db(pg and pg_database(n) or string.format("%s/spec-%d.db", dir, n))
  end
  return nil, true
end)
