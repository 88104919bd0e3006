---@meta lode
-- LuaLS annotations for the `lode` API, so editors complete and type-check
-- pipeline files. Never loaded at run time (`---@meta`). Point LuaLS at it
-- with a `.luarc.json` next to your pipelines:
--   { "workspace.library": ["/path/to/lode/lua"], "runtime.version": "Lua 5.4" }
-- It describes what exists today; see docs/lua-api.md for the contract.

---@class lode.RetryOptions
---@field max_attempts? integer  attempts in all (default 1)
---@field interval? number       seconds before the 2nd attempt (default 1)
---@field backoff? number        multiplier per attempt (default 2)

---@class lode.StepOptions
---@field retries? lode.RetryOptions
---@field timeout? number         seconds per attempt; past it the attempt is interrupted (fails, retried)

---@class lode.WorkflowOptions
---@field phase? string                 trace metadata `phase` and tag `phase:<NAME>` (trace roots only)
---@field tags? string[]
---@field metadata? table<string, any>
---@field max_recovery_attempts? integer default 100

---@class lode.TrackOptions
---@field type? "general"|"tool"|"llm"|"guardrail"  the Opik span type

---@class lode.TraceUpdate
---@field metadata? table<string, any>
---@field tags? string[]
---@field input? any
---@field output? any
---@field usage? { prompt_tokens?: integer, completion_tokens?: integer, total_tokens?: integer }
---@field model? string
---@field provider? string
---@field type? string

---@class lode.trace
local trace = {}
--- Enriches the current span.
---@param fields lode.TraceUpdate
function trace.update(fields) end
--- Scores the current trace.
---@param name string
---@param value number
---@param reason? string
function trace.feedback(name, value, reason) end
--- The current trace and span ids, or nil outside any span.
---@return { trace_id: string, span_id: string }?
function trace.current() end

---@class lode.Matrix: userdata
---@operator len: integer
local Matrix = {}
---@return integer
function Matrix:dims() end
---@param i integer 1-based row
---@return number[]
function Matrix:row(i) end
---@param i integer
---@param j integer
---@return number
function Matrix:get(i, j) end
---@param i integer
---@param j integer
---@param x number
function Matrix:set(i, j, x) end
--- One dot product per row.
---@param v number[]|lode.Matrix
---@return number[]
function Matrix:dot(v) end
--- Rows to unit length.
function Matrix:normalize() end

---@class lode.matrix
local matrix = {}
---@param rows integer
---@param dims integer
---@return lode.Matrix
function matrix.new(rows, dims) end
---@param rows number[][]
---@return lode.Matrix
function matrix.from(rows) end

---@class lode.Chunk
---@field text string
---@field start integer      0-based byte offset in the source
---@field end integer        exclusive end byte offset (use c["end"])
---@field exact? boolean     false when text is not exactly the source slice
---@field headers? string[]  split_markdown: the header path, outermost first

---@class lode.SplitOptions
---@field size? integer            code points (default 1000)
---@field overlap? integer         code points (default 200)
---@field separators? string[]     default { "\n\n", "\n", " ", "" }
---@field keep_separator? boolean  default true
---@field levels? integer[]        split_markdown: header levels that cut (default 1..6)
---@field strip_headers? boolean   split_markdown: leave header lines out (default true)

---@class lode.text
local text = {}
--- Valid UTF-8, NFC, controls dropped, whitespace collapsed.
---@param s string
---@param opts? { controls?: boolean, nfc?: boolean, nfkc?: boolean, whitespace?: boolean }
---@return string
function text.normalize(s, opts) end
--- LangChain's RecursiveCharacterTextSplitter, in code points.
---@param s string
---@param opts? lode.SplitOptions
---@return lode.Chunk[]
function text.split(s, opts) end
--- Header-aware: each chunk knows its header path.
---@param s string
---@param opts? lode.SplitOptions
---@return lode.Chunk[]
function text.split_markdown(s, opts) end

---@class lode.EmbedOptions
---@field provider? "hash"|"model2vec"|"openai"
---@field dims? integer         hash
---@field path? string          model2vec: model directory
---@field max_length? integer   model2vec
---@field base_url? string      openai
---@field api_key? string       openai
---@field model? string         openai
---@field dimensions? integer   openai
---@field batch_size? integer   openai
---@field concurrency? integer  openai
---@field max_retries? integer  openai
---@field retry_base? number    openai
---@field timeout? number       openai

---@class lode.Embedder: userdata
local Embedder = {}
--- One L2-normalised row per text.
---@param texts string[]
---@return lode.Matrix
function Embedder:embed(texts) end
---@return integer
function Embedder:dims() end
---@return { provider: string, model: string, dims: integer }
function Embedder:info() end
---@return { prompt_tokens: integer, total_tokens: integer, model?: string }
function Embedder:usage() end
function Embedder:close() end

---@class lode.embed
local embed = {}
---@param opts? lode.EmbedOptions
---@return lode.Embedder
function embed.new(opts) end

---@class lode.StoreDoc
---@field path string
---@field hash? string
---@field title? string
---@field mime? string
---@field bytes? integer
---@field metadata? table|string

---@class lode.Hit
---@field score number
---@field path string
---@field text string
---@field ordinal integer
---@field start integer
---@field end integer
---@field headers? any
---@field chunk_id integer
---@field paths? string[] every path holding the same content (filter passed), path first
---@field vector_rank? integer hybrid: rank in the vector list
---@field keyword_rank? integer hybrid: rank in the keyword list

---@class lode.StoreFilter
---@field path? string a glob over the stored path (no '/': the file name)
---@field path_prefix? string
---@field mime? string

---@class lode.Store: userdata
local Store = {}
--- Stores a document with its chunks and vectors, replacing the old version.
---@param doc lode.StoreDoc
---@param chunks (string|lode.Chunk)[]
---@param m? lode.Matrix
---@return integer chunks
function Store:put(doc, chunks, m) end
---@param path string
---@param hash? string
---@return boolean
function Store:has(path, hash) end
---@param path string
---@return boolean existed
function Store:delete(path) end
---@return string[]
function Store:paths() end
---@return integer documents, integer chunks
function Store:count() end
---@return string? identity, integer dims
function Store:embedder() end
--- Exact top-k by dot product (mode "vector"), by keywords ("keyword") or
--- both fused by reciprocal rank fusion ("hybrid", the default with text).
---@param vector? number[]|lode.Matrix nil only for mode "keyword"
---@param k? integer
---@param opts? { filter?: lode.StoreFilter, text?: string, mode?: "vector"|"keyword"|"hybrid" }
---@return lode.Hit[]
function Store:search(vector, k, opts) end
--- Keyword search (SQLite FTS5 BM25; PostgreSQL full-text search).
---@param text string
---@param k? integer
---@param opts? { filter?: lode.StoreFilter }
---@return lode.Hit[]
function Store:search_text(text, k, opts) end
function Store:close() end

---@class lode.store
local store = {}
---@param path string a SQLite file, or a postgresql:// URL
---@param opts? { embedder?: string|{ provider: string, model: string, dims: integer }|{ id: string } }
---@return lode.Store
function store.open(path, opts) end

---@class lode.Doc
---@field text string
---@field title? string
---@field mime string

---@class lode.LoadOptions
---@field max_bytes? integer
---@field kind? "text"|"markdown"|"html"|"pdf"

---@class lode.fs
---@field DEFAULT_MAX_BYTES integer
local fs = {}
---@param dir string
---@param opts? { include?: string|string[], exclude?: string|string[], max_files?: integer, follow_links?: "inside"|"all"|"none" }
---@return string[]? relpaths, string? err relpaths.skipped lists links not followed
function fs.walk(dir, opts) end
---@param pattern string
---@param path string
---@return boolean
function fs.glob_match(pattern, path) end
---@param path string
---@param opts? { max_bytes?: integer }
---@return string? bytes, string? err
function fs.read(path, opts) end
--- XXH3-128 as 32 hex digits.
---@param bytes string
---@return string
function fs.hash(bytes) end
---@param path string
---@return string? hex, string? err
function fs.hash_file(path) end
---@param path string
---@param opts? lode.LoadOptions
---@return lode.Doc? doc, string? err
function fs.load(path, opts) end
---@param path string
---@param opts? lode.LoadOptions
---@return lode.Doc? doc, string? err
function fs.load_text(path, opts) end
---@param path string
---@param opts? lode.LoadOptions
---@return lode.Doc? doc, string? err
function fs.load_markdown(path, opts) end
---@param path string
---@param opts? lode.LoadOptions
---@return lode.Doc? doc, string? err
function fs.load_html(path, opts) end
---@param path string
---@param opts? lode.LoadOptions
---@return lode.Doc? doc, string? err
function fs.load_pdf(path, opts) end

---@class lode.ProgressOptions
---@field label? string          the line's first word (default "ingest")
---@field total_files? integer
---@field total_bytes? integer
---@field interval? number       seconds between plain lines (default 2; 0.1 on a terminal)
---@field out? file*             where lines go (default io.stderr)

--- A progress line (lua/lode/progress.lua): `require("lode.progress")`.
---@class lode.Progress
---@field mode "tty"|"plain"|"off"
---@field files integer
---@field bytes integer
---@field chunks integer
local Progress = {}
--- Counts work done; redraws or writes the line when it is due, reports to
--- the state database at most twice a second.
---@param d { files?: integer, bytes?: integer, chunks?: integer }
function Progress:add(d) end
--- "ingest: 3/10 files, 12 chunks, 1.2 MB, 0.40 MB/s, ETA 5s"
---@return string
function Progress:line() end
--- Ends the line on a terminal; always reports the final counts.
function Progress:finish() end

---@class lode.progress_module
local progress_module = {}
---@param opts? lode.ProgressOptions
---@return lode.Progress
function progress_module.new(opts) end
---@return boolean
function progress_module.stderr_is_tty() end

---@class lode
---@field version string
---@field trace lode.trace
---@field matrix lode.matrix
---@field text lode.text
---@field embed lode.embed
---@field store lode.store
---@field fs lode.fs
local lode = {}

--- Declares a step: checkpointed once per workflow, retried as configured.
---@generic F: function
---@param name string
---@param fn F
---@param opts? lode.StepOptions
---@return F
function lode.step(name, fn, opts) end

--- Declares a workflow: top level outside any workflow, a child (id PARENT-N) inside one.
---@generic F: function
---@param name string
---@param fn F
---@param opts? lode.WorkflowOptions
---@return F
function lode.workflow(name, fn, opts) end

--- Declares a tracked function: a span, not a checkpoint.
---@generic F: function
---@param name string
---@param fn F
---@param opts? lode.TrackOptions
---@return F
function lode.track(name, fn, opts) end

--- Seconds since the epoch, recorded (replays see the same value).
---@return number
function lode.now() end

--- A UUIDv7 string, recorded.
---@return string
function lode.uuid() end

--- Records a running workflow's progress (any checkpointable table) for
--- `lode workflow list/get` in another process; the last report wins.
--- false outside a workflow body or inside a step.
---@param report table
---@return boolean recorded
function lode.progress(report) end

--- Raises a failure that is not a bug ("3 of 40 files failed", a usage
--- error): recorded and printed without a Lua traceback.
---@param message string
function lode.fail(message) end

return lode
