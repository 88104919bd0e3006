-- bench/text_shapes.lua: the Lua side of bench_text.sh (run with
-- OPIK_TRACK_DISABLE=true on a scratch database).
--
--   lode run bench/text_shapes.lua make OUT LIST   loads each file named in
--     LIST (one path a line) with lode.fs.load (HTML, Markdown, PDF, text),
--     normalises it and appends it to OUT, documents separated by a blank
--     line: a shape's text. (A list file, not arguments: `lode run` with
--     ~100 arguments or more crashes, see the closing note of issue 16.)
--   lode run bench/text_shapes.lua split FILE SIZE OVERLAP REPS CHUNKS
--     times lode.text.split from Lua (chunks returned as Lua tables and
--     strings, as a pipeline gets them), best of REPS, and writes the chunk
--     texts to CHUNKS, each followed by "\0", for a chunk-for-chunk cmp
--     against LangChain's.
--   lode run bench/text_shapes.lua kernels FILE REPS
--     times lode.text.normalize and the hash embedder (384 dims, on the
--     1000/200 chunks of the text), best of REPS.
-- Prints one line of "key=value" figures (seconds are CPU seconds: os.clock).
local lode = require("lode")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function best(reps, fn)
  local b = math.huge
  for _ = 1, reps do
    local t0 = os.clock()
    fn()
    local dt = os.clock() - t0
    if dt < b then b = dt end
  end
  return b
end

return lode.workflow("text_shapes", function(cmd, ...)
  local a = { ... }
  if cmd == "make" then
    local out = assert(io.open(a[1], "wb"))
    local n = 0
    for path in io.lines(a[2]) do
      local doc = lode.fs.load(path)
      if doc and #doc.text > 0 then
        if n > 0 then out:write("\n\n") end
        out:write(lode.text.normalize(doc.text))
        n = n + 1
      end
    end
    out:close()
    print(string.format("docs=%d", n))
  elseif cmd == "split" then
    local text = read(a[1])
    local o = { size = math.tointeger(tonumber(a[2])), overlap = math.tointeger(tonumber(a[3])) }
    local chunks
    local sec = best(math.tointeger(tonumber(a[4])), function() chunks = lode.text.split(text, o) end)
    local f = assert(io.open(a[5], "wb"))
    for _, c in ipairs(chunks) do f:write(c.text, "\0") end
    f:close()
    print(string.format("bytes=%d chunks=%d sec=%.6f mbs=%.1f", #text, #chunks, sec, #text / sec / 1e6))
  elseif cmd == "kernels" then
    local text = read(a[1])
    local reps = math.tointeger(tonumber(a[2]))
    local nsec = best(reps, function() lode.text.normalize(text) end)
    local texts = {}
    for i, c in ipairs(lode.text.split(text, { size = 1000, overlap = 200 })) do texts[i] = c.text end
    local e = lode.embed.new{ provider = "hash" }
    local ebytes = 0
    for _, t in ipairs(texts) do ebytes = ebytes + #t end
    local esec = best(reps, function() e:embed(texts) end)
    print(string.format("bytes=%d normalize_mbs=%.1f embed_bytes=%d embed_mbs=%.1f",
                        #text, #text / nsec / 1e6, ebytes, ebytes / esec / 1e6))
  else
    error("text_shapes: unknown command " .. tostring(cmd), 0)
  end
  return true
end)
