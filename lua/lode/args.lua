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
-- Option types: "string", "integer", "number", "flag" (no value), "list"
-- (repeatable; values collected in order), "choice" (with `choices`).
-- `--name=value` and `--name value` are both accepted; `--` ends options.
-- The parser never raises on user input: errors come back as messages that
-- name the option and end with a pointer to --help.

local M = {}

local Spec = {}
Spec.__index = Spec

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
      if not o then return nil, string.format("unknown option '%s'%s", a, hint) end
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
  return out
end

--- The --help text: usage, summary, positionals and every option.
function Spec:help()
  local lines = { "usage: " .. self.usage }
  if self.summary then lines[#lines + 1] = "\n" .. self.summary end
  if #self.positional > 0 then
    lines[#lines + 1] = "\narguments:"
    for _, p in ipairs(self.positional) do
      local d = p.default ~= nil and string.format(" (default %s)", tostring(p.default)) or ""
      lines[#lines + 1] = string.format("  %-26s %s%s", p.name:upper(), p.help or "", d)
    end
  end
  lines[#lines + 1] = "\noptions:"
  for _, o in ipairs(self.options) do
    local left = "--" .. o.name
    if o.type ~= "flag" then left = left .. " " .. (o.metavar or (o.type == "choice"
      and table.concat(o.choices, "|") or (o.type or "string"):upper())) end
    local d = o.default ~= nil and string.format(" (default %s)", tostring(o.default)) or ""
    if o.type == "list" then d = " (repeatable)" end
    lines[#lines + 1] = string.format("  %-26s %s%s", left, o.help or "", d)
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
