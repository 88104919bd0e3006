-- lode.args: command-line options for pipeline files.
--
-- `lode run PIPELINE.lua ARG...` hands the pipeline its arguments as strings.
-- This module turns them into a table from a small declaration, and writes
-- the `--help` text from the same declaration so the two never disagree.
--
--   local args = require("lode.args")
--   local spec = args.spec{
--     usage = "lode run pipelines/ingest_folder.lua FOLDER [options]",
--     positional = { { name = "folder", required = true, help = "the folder to ingest" } },
--     options = {
--       { name = "size", type = "integer", default = 1000, help = "chunk size in code points" },
--       { name = "include", type = "list", help = "glob of files to take (repeatable)" },
--       { name = "json", type = "flag", help = "print JSON" },
--     },
--   }
--   local opts, err = spec:parse({ ... })   -- nil, message on bad usage
--   if opts and opts.help then io.stderr:write(spec:help()) end
--
-- A pipeline declares its arguments with `args.declare{ ... }` (the same
-- table, plus an optional `check = function(opts) return nil, msg end` for
-- rules between options) at its top level. `lode run` then checks the
-- command line against the declaration after loading the file and before it
-- records anything: a usage error prints the message and the usage line and
-- exits 2, `--help` prints the help text and exits 0; no workflow is
-- recorded either way. The workflow body reads its arguments with
-- `SPEC:values({ ... })`, which returns the options table (or raises a
-- lode.fail error, without a traceback, if they were never checked).
--
-- Option types: "string", "integer", "number", "flag" (no value), "list"
-- (repeatable; values collected in order), "choice" (with `choices`).
-- `--name=value` and `--name value` are both accepted; `--` ends options.
-- The parser never raises on user input: errors come back as messages that
-- name the option and end with a pointer to --help.

local M = {}

local Spec = {}
Spec.__index = Spec

-- Levenshtein distance between two short strings.
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- The declared option closest to a mistyped one ("--sotre" -> "--store"), or nil.
local function suggest(spec, name)
  local best, best_d
  for _, o in ipairs(spec.options) do
    local d = distance(name, o.name)
    if not best_d or d < best_d then best, best_d = o.name, d end
  end
  local limit = math.max(1, math.min(2, #name // 2))
  if best_d and best_d <= limit then return "--" .. best end
  return nil
end

local function find(spec, name)
  for _, o in ipairs(spec.options) do
    if o.name == name then return o end
  end
  return nil
end

--- Declares the options of a pipeline; see the module comment.
function M.spec(decl)
  assert(type(decl) == "table", "lode.args.spec: expected a table")
  local s = setmetatable({
    usage = decl.usage or "lode run PIPELINE.lua [options]",
    summary = decl.summary,
    check = decl.check,
    positional = decl.positional or {},
    options = {},
  }, Spec)
  for _, o in ipairs(decl.options or {}) do
    assert(type(o.name) == "string", "lode.args.spec: an option needs a name")
    s.options[#s.options + 1] = o
  end
  if not find(s, "help") then
    s.options[#s.options + 1] = { name = "help", type = "flag", help = "show this help and exit" }
  end
  return s
end

local function convert(o, v)
  local t = o.type or "string"
  if t == "integer" then
    local n = math.tointeger(tonumber(v))
    if not n then return nil, string.format("--%s takes a whole number, not '%s'", o.name, v) end
    if o.min and n < o.min then
      return nil, string.format("--%s must be at least %d, not %d", o.name, o.min, n)
    end
    return n
  elseif t == "number" then
    local n = tonumber(v)
    if not n then return nil, string.format("--%s takes a number, not '%s'", o.name, v) end
    return n
  elseif t == "choice" then
    for _, c in ipairs(o.choices) do
      if c == v then return v end
    end
    return nil, string.format("--%s takes one of %s, not '%s'", o.name,
                              table.concat(o.choices, ", "), v)
  end
  return v
end

--- Parses a list of argument strings. Returns the options table (defaults
--- filled, lists as tables, positionals under their names) or nil and a
--- message for the user.
function Spec:parse(argv)
  local out, pos = {}, {}
  for _, o in ipairs(self.options) do
    if o.type == "list" then
      out[o.name] = {}
    elseif o.type == "flag" then
      out[o.name] = false
    else
      out[o.name] = o.default
    end
  end
  local hint = " (see --help)"
  local i, rest = 1, false
  while i <= #argv do
    local a = argv[i]
    if type(a) ~= "string" then
      return nil, string.format("argument %d is a %s, expected a string%s", i, type(a), hint)
    end
    if rest or a == "-" or a:sub(1, 1) ~= "-" or tonumber(a) then
      pos[#pos + 1] = a
    elseif a == "--" then
      rest = true
    else
      local name, value = a:match("^%-%-([%w_-]+)=(.*)$")
      name = name or a:match("^%-%-([%w_-]+)$")
      local o = name and find(self, name)
      if not o then
        local s = name and suggest(self, name)
        return nil, string.format("unknown option '%s'%s%s", a:match("^[^=]*"),
                                  s and ("; did you mean " .. s .. "?") or "", hint)
      end
      if o.type == "flag" then
        if value then return nil, string.format("--%s takes no value%s", name, hint) end
        out[name] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then return nil, string.format("--%s needs a value%s", name, hint) end
        end
        local v, err = convert(o, value)
        if v == nil then return nil, err .. hint end
        if o.type == "list" then
          out[name][#out[name] + 1] = v
        else
          out[name] = v
        end
      end
    end
    i = i + 1
  end
  if out.help then return out end
  for j, p in ipairs(self.positional) do
    local v = pos[j]
    if v == nil and p.required then
      return nil, string.format("missing %s%s", p.name:upper(), hint)
    end
    if v ~= nil and p.type then
      local c, err = convert({ name = p.name, type = p.type, min = p.min }, v)
      if c == nil then return nil, (err:gsub("^%-%-", "")) .. hint end
      v = c
    end
    if v == nil then v = p.default end
    out[p.name] = v
  end
  if #pos > #self.positional then
    return nil, string.format("unexpected argument '%s'%s", pos[#self.positional + 1], hint)
  end
  if self.check then
    local ok, err = self.check(out)
    if not ok then return nil, tostring(err) .. hint end
  end
  return out
end

--- The options table of a workflow's arguments; bad usage raises a
--- lode.fail error (a plain message, no traceback). `lode run` has checked
--- them already when the pipeline declared them with args.declare.
function Spec:values(argv)
  local o, err = self:parse(argv)
  if not o then
    local lode = require("lode")
    lode.fail(err)
  end
  if o.help then
    require("lode").fail("--help is answered by `lode run PIPELINE --help`, before any workflow")
  end
  return o
end

--- The --help text: usage, summary, positionals and every option, in
--- aligned columns (name, value, description).
function Spec:help()
  local rows = {}
  local function metavar(o)
    if o.type == "flag" then return "" end
    return o.metavar or (o.type == "choice" and table.concat(o.choices, "|")
                         or (o.type or "string"):upper())
  end
  for _, p in ipairs(self.positional) do
    local d = p.default ~= nil and string.format(" (default %s)", tostring(p.default)) or ""
    rows[#rows + 1] = { section = "arguments", p.name:upper(), "", (p.help or "") .. d }
  end
  for _, o in ipairs(self.options) do
    local d = o.default ~= nil and string.format(" (default %s)", tostring(o.default)) or ""
    if o.type == "list" then d = " (repeatable)" end
    rows[#rows + 1] = { section = "options", "--" .. o.name, metavar(o), (o.help or "") .. d }
  end
  local w1, w2 = 0, 0
  for _, r in ipairs(rows) do
    w1 = math.max(w1, #r[1])
    w2 = math.max(w2, #r[2])
  end
  local lines = { "usage: " .. self.usage }
  if self.summary then lines[#lines + 1] = "\n" .. self.summary end
  local section
  for _, r in ipairs(rows) do
    if r.section ~= section then
      section = r.section
      lines[#lines + 1] = "\n" .. section .. ":"
    end
    local line = string.format("  %-" .. w1 .. "s  %-" .. w2 .. "s  %s", r[1], r[2], r[3])
    lines[#lines + 1] = (line:gsub("%s+$", ""))
  end
  return table.concat(lines, "\n") .. "\n"
end

--- Declares the pipeline's arguments (see the module comment): a spec that
--- `lode run` checks before any workflow is recorded.
function M.declare(decl)
  local s = M.spec(decl)
  M._declared = s
  return s
end

-- Called by the host (lode run) after loading a pipeline, with its arguments:
-- "ok"; "help", the help text; or "usage", the message, the usage line.
function M._host_check(argv)
  local s = M._declared
  if not s then return "ok" end
  local o, err = s:parse(argv)
  if not o then return "usage", (err:gsub(" %(see %-%-help%)$", "")), s.usage end
  if o.help then return "help", s:help() end
  return "ok"
end

return M
