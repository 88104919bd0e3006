-- bench/pipes_plain.lua: the reference for bench_pipes.sh. The same work as
-- pipelines/ingest_folder.lua (walk, hash, load, normalize, chunk, embed,
-- save) with the same kernels, in one workflow with no steps: no per-step
-- checkpoints, no spans. Run with OPIK_TRACK_DISABLE=true.
local lode = require("lode")
return lode.workflow("plain_ingest", function(folder, store_path)
  local e = lode.embed.new{ provider = "hash" }
  local store = lode.store.open(store_path, { embedder = { provider = "hash", model = "hash-v1", dims = 384 } })
  local n, chunks = 0, 0
  for _, rel in ipairs(assert(lode.fs.walk(folder, { include = { "*.html" } }))) do
    local path = folder .. "/" .. rel
    local hash = lode.fs.hash_file(path)
    if not store:has(path, hash) then
      local doc = assert(lode.fs.load(path))
      local text = lode.text.normalize(doc.text)
      local cs = doc.mime == "text/markdown" and lode.text.split_markdown(text, { size = 1000, overlap = 200 })
        or lode.text.split(text, { size = 1000, overlap = 200 })
      local texts = {}
      for i, c in ipairs(cs) do texts[i] = c.text end
      store:put({ path = path, hash = hash, title = doc.title, mime = doc.mime }, cs,
                #cs > 0 and e:embed(texts) or nil)
      chunks = chunks + #cs
    end
    n = n + 1
  end
  store:close()
  return { files = n, chunks = chunks }
end)
