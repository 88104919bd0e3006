-- pipelines/ingest_folder.lua: a folder of documents becomes chunks and
-- embeddings in a searchable store, as one trace tree (docs/pipelines.md):
--
--   ingest_folder_workflow  [phase INGESTION]
--    ├── discover_files_step                  (lists unchanged files as skipped)
--    └── process_file_workflow                (one per new or changed file)
--         ├── check_exists_step
--         ├── load_and_normalize_step → load_document
--         ├── chunk_step → chunk_documents
--         ├── embed_step → embed_documents
--         └── save_step → save_documents
--
--   lode run pipelines/ingest_folder.lua FOLDER [--store PATH] [--size N] ...
--   lode run pipelines/ingest_folder.lua --help
--
-- Durability: every step's output is checkpointed, so outputs are kept
-- compact: the chunk step returns byte offsets into the normalised text (the
-- text itself only for a chunk that is not a slice of it), the embed step one
-- lode.matrix (a single float32 blob). Saving replaces the document in the
-- store in one transaction, so a save that runs again after a crash leaves no
-- duplicate.
local lode = require("lode")
local args = require("lode.args")
local rag = require("lode.rag")
local progress = require("lode.progress")

-- Declared, so `lode run` checks the arguments before recording anything.
local SPEC = args.declare{
  usage = "lode run pipelines/ingest_folder.lua FOLDER [options]",
  summary = "Ingests FOLDER's documents (Markdown, HTML, PDF, text) into a vector store:\n" ..
            "unchanged files are skipped, changed ones replaced; vanished ones are listed,\n" ..
            "and removed with --cleanup full.",
  positional = { { name = "folder", required = true, help = "the folder to ingest" } },
  options = {
    { name = "store", default = ".lode/store.db", metavar = "PATH|URL",
      help = "the store file, or a postgresql:// URL" },
    { name = "size", type = "integer", default = 1000, min = 1,
      help = "chunk size in code points" },
    { name = "overlap", type = "integer", default = 200, min = 0,
      help = "overlap between chunks in code points" },
    { name = "provider", type = "choice", choices = { "hash", "model2vec", "openai" },
      default = "hash", help = "embedder" },
    { name = "model", metavar = "NAME|DIR",
      help = "model2vec: model directory; openai: model name (default text-embedding-3-small)" },
    { name = "dims", type = "integer", min = 1,
      help = "vector size (hash: default 384; openai: requested dimensions)" },
    { name = "include", type = "list", metavar = "GLOB",
      help = "only files matching GLOB (default *.md *.markdown *.html *.htm *.txt *.pdf *.rst, each also .gz)" },
    { name = "exclude", type = "list", metavar = "GLOB", help = "skip files or folders matching GLOB" },
    { name = "max-bytes", type = "integer", default = 64 * 1024 * 1024, min = 1,
      help = "files larger than this fail" },
    { name = "cleanup", type = "choice", choices = { "none", "incremental", "full" },
      default = "incremental",
      help = "vanished files in scope: kept and listed (incremental), removed (full), not looked for (none)" },
    { name = "follow-links", type = "choice", choices = { "inside", "all", "none" },
      default = "inside",
      help = "symbolic links followed: only those staying inside FOLDER (default), all, none" },
  },
  check = function(o)
    if o.overlap >= o.size then
      return nil, string.format("--overlap (%d) must be smaller than --size (%d)", o.overlap, o.size)
    end
    return true
  end,
}

-- Each kind also gzip-compressed (x.md.gz), as Debian ships most of its docs;
-- the loader inflates them (docs/fs.md, "Compressed files").
local DEFAULT_INCLUDE = {}
for _, g in ipairs{ "*.md", "*.markdown", "*.html", "*.htm", "*.txt", "*.pdf", "*.rst" } do
  DEFAULT_INCLUDE[#DEFAULT_INCLUDE + 1] = g
  DEFAULT_INCLUDE[#DEFAULT_INCLUDE + 1] = g .. ".gz"
end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end") or 0
  f:close()
  return n
end

-- Walks the folder and hashes each file. Cleanup is scoped, as LangChain's
-- indexing API scopes it to a source (docs/pipelines.md, "Cleanup"): the
-- scope is FOLDER with this run's include and exclude globs, and only a
-- stored document in that scope whose file the walk no longer finds has
-- vanished. What another scope ingested (another folder, files these globs
-- leave out) is never touched. `--cleanup full` deletes the vanished ones;
-- the default, incremental, only replaces changed files and lists the
-- vanished ones; none does not look for them. The deletion lives here, not
-- in a step of its own, so the trace keeps the shape drawn above; deleting
-- is idempotent, so a re-run of this step after a crash is harmless.
-- A file whose path and content hash the store already holds is not given a
-- child workflow (a child costs a queue claim and several commits, which was
-- most of a second pass): the step's output lists it under `skipped`, so the
-- trace records it as skipped in this step's span. Only the other files are
-- returned in `files`.
local discover_files_step = lode.step("discover_files_step", function(folder, o)
  local rels, err = lode.fs.walk(folder, { include = o.include, exclude = o.exclude,
                                          follow_links = o.follow_links })
  if not rels then error(err, 0) end
  -- docs/fs.md, "Symbolic links": a link out of the folder is not ingested
  for _, rel in ipairs(rels.skipped or {}) do
    io.stderr:write("ingest_folder: skipped link ", folder, "/", rel,
                    o.follow_links == "none" and "" or " (it leads outside the folder;" ..
                    " --follow-links all ingests it)", "\n")
  end
  local store = rag.store(o.store, rag.identity(rag.embedder(o.embed)))
  local files, skipped, seen = {}, {}, {}
  local skipped_bytes = 0
  for _, rel in ipairs(rels) do
    local path = folder .. "/" .. rel
    seen[path] = true
    local hash = lode.fs.hash_file(path) or ""
    if hash ~= "" and store:has(path, hash) then
      skipped[#skipped + 1] = path
      skipped_bytes = skipped_bytes + file_size(path)
    else
      files[#files + 1] = { path = path, hash = hash, size = file_size(path) }
    end
  end
  -- a link the walk did not follow is still there: not vanished
  for _, rel in ipairs(rels.skipped or {}) do seen[folder .. "/" .. rel] = true end
  local removed, vanished = {}, {}
  if o.cleanup ~= "none" then
    local prefix = folder .. "/"
    local scope = { include = o.include, exclude = o.exclude }
    for _, p in ipairs(store:paths()) do
      if p:sub(1, #prefix) == prefix and not seen[p]
         and lode.fs.walk_matches(p:sub(#prefix + 1), scope) then
        if o.cleanup == "full" then
          store:delete(p)
          removed[#removed + 1] = p
        else
          vanished[#vanished + 1] = p
        end
      end
    end
  end
  return { files = files, skipped = skipped, skipped_bytes = skipped_bytes, removed = removed,
           vanished = vanished }
end)

local check_exists_step = lode.step("check_exists_step", function(store_path, path, hash)
  return rag.store(store_path):has(path, hash)
end)

local load_document = lode.track("load_document", function(path, max_bytes)
  local doc, err = lode.fs.load(path, { max_bytes = max_bytes })
  if not doc then error(err, 0) end
  return doc
end, { type = "tool" })

local load_and_normalize_step = lode.step("load_and_normalize_step", function(path, max_bytes)
  local doc = load_document(path, max_bytes)
  return { text = lode.text.normalize(doc.text), title = doc.title, mime = doc.mime }
end)

-- Tracked functions handle whole documents; their spans record a compact
-- summary (counts, the first chunks) instead of every chunk and vector, which
-- would make each span up to the 256 KB cap and tracing several times dearer.
local function preview(list, n)
  local out = {}
  for i = 1, math.min(n, #list) do out[i] = list[i] end
  return out
end

local chunk_documents = lode.track("chunk_documents", function(text, mime, size, overlap)
  local o = { size = size, overlap = overlap }
  local chunks
  if mime == "text/markdown" then
    chunks = lode.text.split_markdown(text, o)
  else
    chunks = lode.text.split(text, o)
  end
  lode.trace.update{
    input = { bytes = #text, mime = mime, size = size, overlap = overlap, text = rag.cut(text, 1024) },
    output = { chunks = #chunks, first = preview(chunks, 3) } }
  return chunks
end)

-- Chunks as offsets into the text: { start, end, headers, text = only when
-- the chunk is not exactly text[start, end) }.
local chunk_step = lode.step("chunk_step", function(text, mime, size, overlap)
  local out = {}
  for i, c in ipairs(chunk_documents(text, mime, size, overlap)) do
    out[i] = { start = c.start, ["end"] = c["end"], headers = c.headers,
               text = c.exact == false and c.text or nil }
  end
  return out
end)

local function chunk_texts(text, chunks)
  local texts = {}
  for i, c in ipairs(chunks) do texts[i] = c.text or text:sub(c.start + 1, c["end"]) end
  return texts
end

local embed_documents = lode.track("embed_documents", function(texts, eopts)
  local e = rag.embedder(eopts)
  local m = e:embed(texts)
  lode.trace.update{ input = { texts = #texts, first = preview(texts, 3), embedder = eopts },
                     output = { rows = #m, dims = m:dims() } }
  if eopts.provider == "openai" then
    local u = e:usage()
    lode.trace.update{ model = u.model or eopts.model, provider = "openai",
                       usage = { prompt_tokens = u.prompt_tokens, total_tokens = u.total_tokens } }
  end
  return m
end)

-- A Markdown chunk is embedded with its header path in front: the headers
-- say what a section is about, and split_markdown strips them from the text.
local embed_step = lode.step("embed_step", function(text, chunks, eopts)
  local texts = chunk_texts(text, chunks)
  for i, c in ipairs(chunks) do
    if c.headers and #c.headers > 0 then
      texts[i] = table.concat(c.headers, " > ") .. "\n\n" .. texts[i]
    end
  end
  return embed_documents(texts, eopts)
end, { retries = { max_attempts = 3, interval = 1, backoff = 2 } })

local save_documents = lode.track("save_documents", function(store_path, ident, doc, chunks, m)
  lode.trace.update{ input = { store = store_path, doc = doc, chunks = #chunks,
                               first = preview(chunks, 3), vectors = m and #m or 0 } }
  return rag.store(store_path, ident):put(doc, chunks, m)
end)

local save_step = lode.step("save_step", function(store_path, doc, text, chunks, m, eopts)
  local list = {}
  for i, t in ipairs(chunk_texts(text, chunks)) do
    local c = chunks[i]
    list[i] = { text = t, start = c.start, ["end"] = c["end"], headers = c.headers }
  end
  local ident = rag.identity(rag.embedder(eopts))
  return save_documents(store_path, ident, doc, list, #list > 0 and m or nil)
end)

local process_file_workflow = lode.workflow("process_file_workflow", function(file, o)
  if check_exists_step(o.store, file.path, file.hash) then
    return { status = "skipped", chunks = 0 }
  end
  local doc = load_and_normalize_step(file.path, o.max_bytes)
  local chunks = chunk_step(doc.text, doc.mime, o.size, o.overlap)
  local m = embed_step(doc.text, chunks, o.embed)
  local n = save_step(o.store, { path = file.path, hash = file.hash, title = doc.title,
                                 mime = doc.mime, bytes = file.size }, doc.text, chunks, m, o.embed)
  return { status = "ingested", chunks = n }
end)

-- One file, one child workflow (id PARENT-N) through a queue: at most
-- LODE_INGEST_CONCURRENCY files (default 8) are processed at once, across
-- every worker thread and process serving this pipeline (--workers N,
-- `lode worker`). The parent waits on the handles without holding a worker.
local files_queue = lode.queue("ingest_files", {
  concurrency = math.tointeger(tonumber(os.getenv("LODE_INGEST_CONCURRENCY") or "8")) or 8,
})

local function start_file(file, o)
  return files_queue:enqueue(process_file_workflow, file, o)
end

local function finish_file(handle)
  return pcall(handle.result, handle)
end

-- A failure's reason without the step name and the file's own path, so that
-- files failing the same way group together.
local function failure_kind(f)
  local r = f.reason
  local at = r:find(f.path .. ": ", 1, true)
  if at then r = r:sub(1, at - 1) .. r:sub(at + #f.path + 2) end
  return (r:gsub("^[%w_]+_step: ", ""))
end

-- Many failures are summarised by reason (a folder of binaries would print
-- thousands of lines); a few are listed one per line. Each is printed once.
local LIST_FAILURES = 20

local function print_summary(s)
  local w = io.stderr
  w:write(string.format(
    "%d files: ingested %d, skipped %d unchanged, failed %d; removed %d; %d chunks, %.1f MB\n",
    s.files, s.ingested, s.skipped, #s.failed, #s.removed, s.chunks, s.bytes / 1048576))
  for _, p in ipairs(s.removed) do w:write("  removed: ", p, "\n") end
  if #s.vanished > 0 then
    w:write(string.format("%d stored files of this scope are gone from the folder; " ..
                          "kept (--cleanup full removes them):\n", #s.vanished))
    for i, p in ipairs(s.vanished) do
      if i > LIST_FAILURES then
        w:write(string.format("  ... and %d more\n", #s.vanished - LIST_FAILURES))
        break
      end
      w:write("  vanished: ", p, "\n")
    end
  end
  if #s.failed <= LIST_FAILURES then
    for _, f in ipairs(s.failed) do w:write("  failed: ", f.path, ": ", f.reason, "\n") end
  else
    local kinds, order = {}, {}
    for _, f in ipairs(s.failed) do
      local k = failure_kind(f)
      if not kinds[k] then kinds[k] = {}; order[#order + 1] = k end
      table.insert(kinds[k], f.path)
    end
    table.sort(order, function(a, b)
      if #kinds[a] ~= #kinds[b] then return #kinds[a] > #kinds[b] end
      return a < b
    end)
    for _, k in ipairs(order) do
      local paths = kinds[k]
      w:write(string.format("  failed: %d files: %s (%s%s)\n", #paths, k,
                            table.concat(paths, ", ", 1, math.min(3, #paths)),
                            #paths > 3 and ", ..." or ""))
    end
  end
  w:flush()
end

return lode.workflow("ingest_folder_workflow", function(...)
  local opts = SPEC:values({ ... })
  local folder = opts.folder:gsub("(.)/+$", "%1")
  local o = {
    store = opts.store, size = opts.size, overlap = opts.overlap,
    max_bytes = opts["max-bytes"],
    include = #opts.include > 0 and opts.include or DEFAULT_INCLUDE, exclude = opts.exclude,
    cleanup = opts.cleanup,
    follow_links = opts["follow-links"],
    embed = rag.embed_options(opts),
  }
  local found = discover_files_step(folder, o)
  local s = { folder = folder, store = o.store, files = #found.files + #found.skipped,
              ingested = 0, skipped = #found.skipped,
              failed = {}, removed = found.removed, vanished = found.vanished,
              cleanup = o.cleanup, chunks = 0, bytes = 0 }
  local total = found.skipped_bytes
  for _, f in ipairs(found.files) do total = total + f.size end
  local p = progress.new{ total_files = s.files, total_bytes = total }
  if #found.skipped > 0 then p:add{ files = #found.skipped, bytes = found.skipped_bytes, chunks = 0 } end
  p:report(true) -- a second terminal sees where it stands at once (lode workflow get)
  local handles = {}
  for i, f in ipairs(found.files) do handles[i] = start_file(f, o) end
  for i, f in ipairs(found.files) do
    local ok, r = finish_file(handles[i])
    if not ok then
      s.failed[#s.failed + 1] = { path = f.path, reason = rag.reason(r) }
    elseif r.status == "skipped" then
      s.skipped = s.skipped + 1
    else
      s.ingested = s.ingested + 1
      s.chunks = s.chunks + r.chunks
      s.bytes = s.bytes + f.size
    end
    p:add{ files = 1, bytes = f.size, chunks = ok and r.chunks or 0 }
  end
  p:finish()
  print_summary(s)
  if #s.failed > 0 then
    -- the files are listed in the summary above; the error only counts
    -- them. An outcome, not a bug: lode.fail prints it without a traceback.
    lode.fail(string.format("%d of %d files failed (listed above)", #s.failed, s.files))
  end
  return s
end, { phase = "INGESTION" })
