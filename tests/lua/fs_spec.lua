local lode = require("lode")

local base = (os.getenv("LODE_TEST_TMPDIR") or "/tmp") .. "/fs-spec-" .. os.time() .. "-" .. math.random(1e6)

local function write(rel, data)
  local f = assert(io.open(base .. "/" .. rel, "wb"))
  f:write(data)
  f:close()
end

describe("lode.fs", function()
  setup(function()
    assert(os.execute("mkdir -p '" .. base .. "/tree/sub/deep' '" .. base .. "/tree/.git'"))
    write("tree/b.md", "# B\n")
    write("tree/a.txt", "a")
    write("tree/sub/c.md", "c")
    write("tree/sub/deep/d.html", "<title>D</title><p>d</p>")
    write("tree/.git/config", "x")
    assert(os.execute("ln -s .. '" .. base .. "/tree/sub/up'"))
  end)
  teardown(function() os.execute("rm -rf '" .. base .. "'") end)

  it("walks in sorted order with include/exclude globs and skips loops", function()
    local t = base .. "/tree"
    assert.are.same({ ".git/config", "a.txt", "b.md", "sub/c.md", "sub/deep/d.html" }, lode.fs.walk(t))
    assert.are.same({ "b.md", "sub/c.md" }, lode.fs.walk(t, { include = "*.md" }))
    assert.are.same({ "a.txt", "b.md", "sub/c.md", "sub/deep/d.html" },
      lode.fs.walk(t, { exclude = { ".git" } }))
    assert.are.same({ "sub/deep/d.html" }, lode.fs.walk(t, { include = { "sub/**/*.html" } }))
    local none, err = lode.fs.walk(base .. "/missing")
    assert.is_nil(none)
    assert.truthy(err:find(base .. "/missing", 1, true))
    assert.is_true(lode.fs.glob_match("**/*.md", "x/y.md"))
    assert.is_false(lode.fs.glob_match("*.md", "x/y.md"))
  end)

  it("reads with a size limit and hashes with XXH3-128", function()
    write("r.txt", "hello")
    assert.are.equal("hello", lode.fs.read(base .. "/r.txt"))
    local none, err = lode.fs.read(base .. "/r.txt", { max_bytes = 3 })
    assert.is_nil(none)
    assert.truthy(err:find("r.txt: file is larger than max_bytes", 1, true))
    assert.are.equal("99aa06d3014798d86001c324468d497f", lode.fs.hash(""))
    assert.are.equal(32, #lode.fs.hash("hello"))
    assert.are_not.equal(lode.fs.hash("hello"), lode.fs.hash("hellp"))
    assert.are.equal(lode.fs.hash("hello"), lode.fs.hash_file(base .. "/r.txt"))
    assert.are.equal(lode.fs.hash("a\0b"), lode.fs.hash("a\0b"))
    assert.are_not.equal(lode.fs.hash("a\0b"), lode.fs.hash("a\0c"))
  end)

  it("loads text, markdown and html with titles and mime types", function()
    local d = assert(lode.fs.load(base .. "/tree/b.md"))
    assert.are.same({ text = "# B\n", title = "B", mime = "text/markdown" }, d)
    d = assert(lode.fs.load(base .. "/tree/a.txt"))
    assert.are.same({ text = "a", mime = "text/plain" }, d)
    d = assert(lode.fs.load(base .. "/tree/sub/deep/d.html"))
    assert.are.same({ text = "d", title = "D", mime = "text/html" }, d)
    d = assert(lode.fs.load_text(base .. "/tree/sub/deep/d.html"))
    assert.are.equal("text/plain", d.mime)
    d = assert(lode.fs.load(base .. "/tree/sub/deep/d.html", { kind = "markdown" }))
    assert.are.equal("text/markdown", d.mime)
    write("broken.html", "<div><p>one<p>two</b></i><script>x()</script><style>p{}</style>three")
    d = assert(lode.fs.load_html(base .. "/broken.html"))
    assert.are.equal("one\n\ntwothree", d.text) -- a script does not end the paragraph
    assert.is_nil(d.title)
  end)

  it("loads a PDF made here, and refuses damaged, binary and missing files clearly", function()
    -- a one-page PDF with a correct xref table
    local objs = {
      "<< /Type /Catalog /Pages 2 0 R >>",
      "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
      "<< /Length 44 >> stream\nBT /F1 18 Tf 72 700 Td (Spec PDF text) Tj ET\nendstream",
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
      "<< /Title (Spec Title) >>",
    }
    local out, offs = { "%PDF-1.4\n" }, {}
    local len = #out[1]
    for i, o in ipairs(objs) do
      offs[i] = len
      local s = string.format("%d 0 obj %s endobj\n", i, o)
      out[#out + 1] = s
      len = len + #s
    end
    local xref = { string.format("xref\n0 %d\n0000000000 65535 f \n", #objs + 1) }
    for i = 1, #objs do xref[#xref + 1] = string.format("%010d 00000 n \n", offs[i]) end
    out[#out + 1] = table.concat(xref)
    out[#out + 1] = string.format("trailer << /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n", #objs + 1, len)
    local pdf = table.concat(out)
    write("ok.pdf", pdf)
    local d = assert(lode.fs.load(base .. "/ok.pdf"))
    assert.are.same({ text = "Spec PDF text", title = "Spec Title", mime = "application/pdf" }, d)
    write("cut.pdf", pdf:sub(1, 12))
    local none, err = lode.fs.load_pdf(base .. "/cut.pdf")
    assert.is_nil(none)
    assert.truthy(err:find(base .. "/cut.pdf: cannot load PDF", 1, true))
    write("bin.dat", "\0\1\2\3binary")
    none, err = lode.fs.load(base .. "/bin.dat")
    assert.is_nil(none)
    assert.are.equal(base .. "/bin.dat: binary file, not loaded", err)
    none, err = lode.fs.load(base .. "/nope.txt")
    assert.is_nil(none)
    assert.truthy(err:find("nope.txt: cannot open", 1, true))
    write("empty.txt", "")
    assert.are.same({ text = "", mime = "text/plain" }, lode.fs.load(base .. "/empty.txt"))
    assert.has_error(function() lode.fs.load(base .. "/empty.txt", { kind = "docx" }) end)
  end)
end)
