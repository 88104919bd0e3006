-- lode.rag: what the reference pipelines (pipelines/ingest_folder.lua,
-- pipelines/query.lua) share: embedders built from options or from a store's
-- recorded identity, and store handles kept open for the whole process.
--
-- Ownership: embedders and stores made here are cached per process (one Lua
-- state) and live until it ends; callers must not close them.

local lode = require("lode")

local M = {}

local embedders, stores = {}, {}

--- Embedder options of lode.embed.new from pipeline options
--- { provider=, model=, dims= }.
function M.embed_options(o)
  local p = o.provider or "hash"
  if p == "hash" then
    return { provider = "hash", dims = o.dims or 384 }
  elseif p == "model2vec" then
    if not o.model then
      error("--provider model2vec needs --model DIR (a model2vec model directory)", 0)
    end
    return { provider = "model2vec", path = o.model }
  elseif p == "openai" then
    return { provider = "openai", model = o.model, dimensions = o.dims }
  end
  error(string.format("unknown embed provider '%s' (hash, model2vec or openai)", tostring(p)), 0)
end

local function key_of(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(t[k]) end
  return table.concat(parts, ",")
end

--- The process's embedder for these lode.embed.new options.
function M.embedder(eopts)
  local k = key_of(eopts)
  local e = embedders[k]
  if not e then
    e = lode.embed.new(eopts)
    embedders[k] = e
  end
  return e
end

--- The store identity "provider/model/dims" of an embedder, or nil while its
--- size is unknown (openai without --dims before the first call).
function M.identity(e)
  local info = e:info()
  local dims = info.dims or e:dims()
  if not dims or dims == 0 then return nil end
  return { provider = info.provider, model = info.model, dims = dims }
end

--- Splits a recorded identity "provider/model/dims" (the model may hold '/').
function M.parse_identity(s)
  local provider, model, dims = tostring(s):match("^([^/]+)/(.*)/(%d+)$")
  if not provider then return nil end
  return { provider = provider, model = model, dims = math.tointeger(tonumber(dims)) }
end

--- lode.embed.new options that rebuild the embedder a store records.
function M.embed_options_for_identity(id)
  if id.provider == "hash" then
    return { provider = "hash", dims = id.dims }
  elseif id.provider == "model2vec" then
    return { provider = "model2vec", path = id.model }
  elseif id.provider == "openai" then
    return { provider = "openai", model = id.model }
  end
  error(string.format("the store records embedder provider '%s', which this lode cannot build",
                      id.provider), 0)
end

--- True if `location` names a PostgreSQL store (postgresql:// or postgres://).
function M.is_url(location)
  return tostring(location):match("^postgres[ql]*://") ~= nil
end

local function mkdir_for(path)
  if M.is_url(path) then return end
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then
    -- lode.store.open wants the folder to exist; there is no mkdir in Lua.
    os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  end
end

--- The process's handle on the store at `path`. With `ident`, the store is
--- checked (or marked) to hold that embedder's vectors.
function M.store(path, ident)
  local s = stores[path]
  if s and ident and not s.ident then
    -- re-open once with the identity so a mismatch is reported
    s.handle:close()
    stores[path] = nil
    s = nil
  end
  if not s then
    mkdir_for(path)
    local ok, h = pcall(lode.store.open, path, ident and { embedder = ident } or nil)
    if not ok then
      -- the message names the store and what to do; the Lua position adds nothing
      error((tostring(h):gsub("^[^\n]-%.lua:%d+: ", "")), 0)
    end
    s = { handle = h, ident = ident }
    stores[path] = s
  end
  return s.handle
end

--- At most n bytes of s, never ending inside a UTF-8 sequence (spans and
--- listings must stay valid UTF-8).
function M.cut(s, n)
  if #s <= n then return s end
  local i = n
  -- back up over continuation bytes to the lead byte, and drop it too
  while i > 0 and (s:byte(i + 1) or 0) & 0xC0 == 0x80 do i = i - 1 end
  return s:sub(1, i)
end

--- The first line of an error, without the tracebacks lode appends, for
--- summaries ("step 'x' failed after 1 attempt:\nmsg\nstack traceback...").
function M.reason(err)
  local s = tostring(err)
  s = s:gsub("\nstack traceback:.*$", "")
  s = s:gsub("^step '([^']+)' failed after %d+ attempts?:\n", "%1: ")
  s = s:gsub("\n", " ")
  return s
end

return M
