local lode = require("lode")
local text = lode.text

local function utf8_ok(s) return utf8.len(s) ~= nil end

describe("lode.text.normalize", function()
  it("composes to NFC, drops controls, collapses blanks, keeps paragraphs", function()
    local s = "  Cafe\u{301}\r\n\r\n\r\nfoo \t bar\0\u{a0}baz  \n   x  "
    assert.are.equal("Caf\u{e9}\n\nfoo bar baz\nx", text.normalize(s))
  end)

  it("replaces invalid UTF-8 with U+FFFD even with every option off", function()
    local out = text.normalize("a\xffb\xc3", { nfc = false, controls = false, whitespace = false })
    assert.are.equal("a\u{fffd}b\u{fffd}", out)
  end)

  it("switches each part off", function()
    assert.are.equal("e\u{301}", text.normalize("e\u{301}", { nfc = false }))
    assert.are.equal("a\1b", text.normalize("a\1b", { controls = false }))
    assert.are.equal("a  b\n\n\n\nc", text.normalize("a  b\n\n\n\nc", { whitespace = false }))
    assert.are.equal("ab2", text.normalize("\u{fb01}".."\u{2082}", { nfkc = true }):gsub("fi", "ab"))
  end)

  it("rejects unknown options and wrong types", function()
    assert.has_error(function() text.normalize("x", { nfd = true }) end,
      "lode.text.normalize: unknown option 'nfd'")
    assert.has_error(function() text.normalize("x", { nfc = 1 }) end,
      "lode.text.normalize: option 'nfc' must be a boolean, got number")
  end)
end)

describe("lode.text.split", function()
  local prose = ("The quick brown fox jumps over the lazy dog. "):rep(40)
    .. "\n\n" .. ("Élève naïve über straße. "):rep(30)

  it("uses LangChain's defaults (1000 / 200)", function()
    local long = ("word "):rep(600) -- 3000 code points
    local chunks = text.split(long)
    assert.are.equal(4, #chunks)
    for _, c in ipairs(chunks) do assert.is_true(utf8.len(c.text) <= 1000) end
  end)

  it("returns 0-based start, exclusive end byte offsets into the source", function()
    local chunks = text.split(prose, { size = 100, overlap = 20 })
    assert.is_true(#chunks > 10)
    for _, c in ipairs(chunks) do
      assert.are.equal(c.text, prose:sub(c.start + 1, c["end"]))
      assert.is_nil(c.exact)
      assert.is_true(utf8.len(c.text) <= 100)
    end
  end)

  it("overlaps consecutive chunks by at most `overlap` code points", function()
    local chunks = text.split(prose, { size = 100, overlap = 30 })
    for i = 2, #chunks do
      local prev, cur = chunks[i - 1], chunks[i]
      if cur.start < prev["end"] then
        assert.is_true(utf8.len(prose:sub(cur.start + 1, prev["end"])) <= 30)
      end
    end
  end)

  it("takes separators and keep_separator", function()
    local s = "a-b-c-d"
    local kept = text.split(s, { size = 3, overlap = 0, separators = { "-" } })
    assert.are.same({ "a-b", "-c", "-d" }, { kept[1].text, kept[2].text, kept[3].text })
    local dropped = text.split(s, { size = 3, overlap = 0, separators = { "-" }, keep_separator = false })
    assert.are.same({ "a-b", "c-d" }, { dropped[1].text, dropped[2].text })
  end)

  it("marks chunks that are not a slice of the source", function()
    local s = "aa--bb"
    local chunks = text.split(s, { size = 10, overlap = 0, separators = { "-" }, keep_separator = false })
    assert.are.equal("aa-bb", chunks[1].text)
    assert.is_false(chunks[1].exact)
    assert.are.equal(0, chunks[1].start)
    assert.are.equal(6, chunks[1]["end"])
  end)

  it("never cuts inside a UTF-8 sequence and accepts broken input", function()
    for _, c in ipairs(text.split(("😀é中"):rep(50), { size = 7, overlap = 2 })) do
      assert.is_true(utf8_ok(c.text))
    end
    for _, c in ipairs(text.split("ab\xff\xfecd ef", { size = 3, overlap = 0 })) do
      assert.is_true(utf8_ok(c.text))
    end
  end)

  it("gives empty results for empty or blank input", function()
    assert.are.same({}, text.split(""))
    assert.are.same({}, text.split("\n\n  \n"))
  end)

  it("raises clear errors like LangChain's", function()
    assert.has_error(function() text.split("x", { size = 10, overlap = 10 }) end,
      "lode.text.split: cannot have overlap (10) >= size (10); make the overlap smaller")
    assert.has_error(function() text.split("x", { size = 0, overlap = 0 }) end,
      "lode.text.split: size must be > 0, got 0")
    assert.has_error(function() text.split("x", { chunk_size = 10 }) end,
      "lode.text.split: unknown option 'chunk_size'")
    assert.has_error(function() text.split("x", { separators = {} }) end)
    assert.has_error(function() text.split("x", { separators = { 1 } }) end)
    assert.has_error(function() text.split("x", { size = "big" }) end)
    assert.has_error(function() text.split(nil) end)
  end)
end)

describe("lode.text.split_markdown", function()
  local doc = table.concat({
    "Intro.", "",
    "# Install", "", "Install text.", "",
    "## From source", "", "```", "# not a header", "```", "",
    "Title", "=====", "", "Setext body.", "",
  }, "\n")

  it("carries header paths, ignores '#' in fences, strips header lines", function()
    local chunks = text.split_markdown(doc, { size = 200, overlap = 0 })
    assert.are.equal(4, #chunks)
    assert.are.same({}, chunks[1].headers)
    assert.are.same({ "Install" }, chunks[2].headers)
    assert.are.same({ "Install", "From source" }, chunks[3].headers)
    assert.is_truthy(chunks[3].text:find("# not a header", 1, true))
    assert.are.same({ "Title" }, chunks[4].headers)
    assert.are.equal("Setext body.", chunks[4].text)
    for _, c in ipairs(chunks) do
      assert.are.equal(c.text, doc:sub(c.start + 1, c["end"]))
    end
  end)

  it("splits on the chosen levels only and can keep header lines", function()
    local chunks = text.split_markdown(doc, { levels = { 1 }, strip_headers = false })
    assert.are.equal(3, #chunks)
    assert.are.same({ "Install" }, chunks[2].headers)
    assert.is_truthy(chunks[2].text:find("## From source", 1, true))
    assert.is_truthy(chunks[2].text:find("^# Install"))
  end)

  it("splits long sections by size", function()
    local long = "# H\n\n" .. ("word "):rep(100)
    local chunks = text.split_markdown(long, { size = 50, overlap = 10 })
    assert.is_true(#chunks > 5)
    for _, c in ipairs(chunks) do
      assert.are.same({ "H" }, c.headers)
      assert.is_true(utf8.len(c.text) <= 50)
    end
  end)

  it("rejects bad levels", function()
    assert.has_error(function() text.split_markdown(doc, { levels = { 7 } }) end,
      "lode.text.split_markdown: levels[1] must be an integer 1..6")
    assert.has_error(function() text.split_markdown(doc, { levels = {} }) end)
  end)
end)
