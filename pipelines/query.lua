-- pipelines/query.lua: answers a question from a store that
-- pipelines/ingest_folder.lua filled, with the embedder the store records.
--
--   lode run pipelines/query.lua "how do I resume a crashed workflow?" [K] [--store PATH]
--       [--mode vector|keyword|hybrid] [--path GLOB]
--
-- --mode hybrid (the default) fuses the vector ranking and the keyword
-- ranking (BM25 on SQLite, ts_rank_cd on PostgreSQL) by reciprocal rank
-- fusion; --path keeps documents whose path matches GLOB (docs/store.md).
--
-- The workflow returns { question, store, embedder, hits = { ... } }, which
-- `lode run` prints as JSON on stdout (`lode run --json` wraps it with the
-- workflow id and status). The readable listing goes to stderr, so stdout is
-- always pure JSON; pass --json (after the question: the pipeline's option) to
-- leave the listing out.
local lode = require("lode")
local args = require("lode.args")
local rag = require("lode.rag")

-- Declared, so `lode run` checks the arguments before recording anything.
local SPEC = args.declare{
  usage = "lode run pipelines/query.lua QUESTION [K] [--store PATH|URL] [--mode M] [--path GLOB] [--json]",
  summary = "Prints the K chunks of the store closest to QUESTION.",
  positional = {
    { name = "question", required = true, help = "the question" },
    { name = "k", type = "integer", min = 1, default = 5, help = "how many chunks" },
  },
  options = {
    { name = "store", default = ".lode/store.db", metavar = "PATH|URL",
      help = "the store file, or a postgresql:// URL" },
    { name = "mode", type = "choice", choices = { "hybrid", "vector", "keyword" },
      default = "hybrid", help = "ranking: vector and keywords fused, or one of them" },
    { name = "path", metavar = "GLOB",
      help = "only documents whose path matches GLOB (no '/': the file name)" },
    { name = "json", type = "flag", help = "no readable listing on stderr (stdout is JSON anyway)" },
  },
}

-- The store's recorded embedder identity, checked against what this lode can build.
local function store_embedder(store_path)
  local store = rag.store(store_path)
  local recorded, dims = store:embedder()
  if not recorded then
    error(string.format("query: store %s records no embedder; it holds no vectors yet", store_path), 0)
  end
  local id = rag.parse_identity(recorded)
  if not id then
    error(string.format("query: store %s records embedder '%s', not provider/model/dims",
                        store_path, tostring(recorded)), 0)
  end
  return store, id, recorded, dims
end

local embed_question_step = lode.step("embed_question_step", function(store_path, question)
  local _, id, recorded = store_embedder(store_path)
  local e = rag.embedder(rag.embed_options_for_identity(id))
  local m = e:embed({ question })
  if m:dims() ~= id.dims then
    error(string.format("query: the embedder gives %d dims but store %s records '%s'",
                        m:dims(), store_path, recorded), 0)
  end
  return { vector = m, embedder = recorded }
end, { retries = { max_attempts = 3, interval = 1, backoff = 2 } })

-- q = { vector =, text =, mode =, path = }; identical files come back as one
-- hit whose `paths` lists each of them.
local search_step = lode.step("search_step", function(store_path, q, k)
  local store = rag.store(store_path)
  local hits = {}
  local found = store:search(q.vector, k, { mode = q.mode, text = q.text,
                                            filter = q.path and { path = q.path } or nil })
  for i, h in ipairs(found) do
    hits[i] = { rank = i, score = h.score, path = h.path, ordinal = h.ordinal,
                start = h.start, ["end"] = h["end"], headers = h.headers or {}, text = h.text,
                paths = h.paths }
  end
  return hits
end)

local function print_hits(r)
  local w = io.stderr
  w:write(string.format("%s\n(%d hits from %s, %s search%s)\n\n", r.question, #r.hits, r.store,
                        r.mode, r.embedder and (", embedder " .. r.embedder) or ""))
  for _, h in ipairs(r.hits) do
    local hp = #h.headers > 0 and (" > " .. table.concat(h.headers, " > ")) or ""
    w:write(string.format("%d. %.4f  %s%s  [bytes %d-%d]\n", h.rank, h.score, h.path, hp,
                          h.start, h["end"]))
    if h.paths then w:write("   also: ", table.concat(h.paths, ", ", 2), "\n") end
    local text = h.text:gsub("%s+", " ")
    if #text > 300 then text = rag.cut(text, 300) .. " ..." end
    w:write("   ", text, "\n\n")
  end
  w:flush()
end

return lode.workflow("query_workflow", function(...)
  local opts = SPEC:values({ ... })
  -- Checked here, not in the (retried) step: a missing store is no passing fault.
  if not rag.is_url(opts.store) then
    local f = io.open(opts.store, "rb")
    if not f then
      lode.fail(string.format("query: store %s not found; run pipelines/ingest_folder.lua first",
                              opts.store))
    end
    f:close()
  end
  local q = opts.mode ~= "keyword" and embed_question_step(opts.store, opts.question) or {}
  local r = { question = opts.question, store = opts.store, embedder = q.embedder, mode = opts.mode,
              hits = search_step(opts.store, { vector = q.vector, text = opts.question,
                                               mode = opts.mode, path = opts.path }, opts.k) }
  if not opts.json then print_hits(r) end
  return r
end, { phase = "RETRIEVAL" })
