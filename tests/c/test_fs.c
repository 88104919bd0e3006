/* test_fs.c - globs, the walk, bounded reads, hashes and the loaders,
 * including hostile inputs: malformed HTML, truncated PDF, binary, empty and
 * 50 MB files (all generated here, nothing committed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/buf.h"
#include "base/util.h"
#include "kernels/fs.h"
#include "kernels/fs_int.h"

static char tmpdir[256];

static void path_of(char *out, size_t n, const char *rel) {
  snprintf(out, n, "%s/%s", tmpdir, rel);
}

static void write_file(const char *rel, const void *p, size_t n) {
  char path[512];
  path_of(path, sizeof path, rel);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

static void mkdir_rel(const char *rel) {
  char path[512];
  path_of(path, sizeof path, rel);
  assert_int_equal(mkdir(path, 0755), 0);
}

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/lode-test-fs-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* ---- globs ---- */
static void test_glob(void **state) {
  (void)state;
  static const struct {
    const char *pat, *path;
    int want;
  } cases[] = {
      {"*.md", "a.md", 1},          {"*.md", "dir/a.md", 0},
      {"**/*.md", "a.md", 1},       {"**/*.md", "x/y/a.md", 1},
      {"**/*.md", "x/y/a.txt", 0},  {"docs/**", "docs/a/b.c", 1},
      {"docs/**", "docs", 0},       {"docs/**", "other/a", 0},
      {"a/**/b", "a/b", 1},         {"a/**/b", "a/x/y/b", 1},
      {"a/**/b", "a/xb", 0},        {"?.c", "a.c", 1},
      {"?.c", "ab.c", 0},           {"a?c", "a/c", 0},
      {"[abc].txt", "b.txt", 1},    {"[abc].txt", "d.txt", 0},
      {"[a-c]x", "bx", 1},          {"[!a-c]x", "bx", 0},
      {"[^a-c]x", "dx", 1},         {"[]]x", "]x", 1},
      {"\\*.md", "*.md", 1},        {"\\*.md", "a.md", 0},
      {"a*", "a/b", 0},             {"a**", "a/b", 1},
      {"*", "", 1},                 {"", "", 1},
      {"", "a", 0},                 {"[abc", "[abc", 1},
      {"*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0},
      {"**a**a**a**a**a**a**b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int got = lode_fs_glob_match(cases[i].pat, cases[i].path);
    if (got != cases[i].want)
      fail_msg("glob '%s' vs '%s': got %d, want %d", cases[i].pat, cases[i].path, got,
               cases[i].want);
  }
}

/* ---- walk ---- */
static int collect(void *ud, const char *rel) {
  lode_buf *b = ud;
  if (b->len) lode_buf_putc(b, ',');
  lode_buf_puts(b, rel);
  return 0;
}

static void walk_expect(const char *dir, const char *const *inc, size_t ni,
                        const char *const *exc, size_t ne, const char *want) {
  lode_fs_walk_opts o = {inc, ni, exc, ne, 0, LODE_FS_LINKS_INSIDE, NULL};
  lode_buf b;
  char err[LODE_FS_ERRLEN];
  lode_buf_init(&b, 0);
  int rc = lode_fs_walk(dir, &o, collect, &b, err, sizeof err);
  if (rc != 0) fail_msg("walk %s: %s", dir, err);
  assert_string_equal(lode_buf_cstr(&b), want);
  lode_buf_free(&b);
}

static void test_walk(void **state) {
  (void)state;
  char root[512], link[512], target[512];
  mkdir_rel("w");
  mkdir_rel("w/b");
  mkdir_rel("w/b/deep");
  mkdir_rel("w/node_modules");
  write_file("w/z.md", "z", 1);
  write_file("w/a.txt", "a", 1);
  write_file("w/B.md", "B", 1);
  write_file("w/b/c.md", "c", 1);
  write_file("w/b/deep/d.html", "d", 1);
  write_file("w/node_modules/x.md", "x", 1);
  /* a loop back to the root, a link to a file, a broken link */
  path_of(link, sizeof link, "w/b/loop");
  path_of(target, sizeof target, "w");
  assert_int_equal(symlink(target, link), 0);
  path_of(link, sizeof link, "w/b/alias.md");
  assert_int_equal(symlink("c.md", link), 0);
  path_of(link, sizeof link, "w/broken");
  assert_int_equal(symlink("nowhere", link), 0);
  path_of(root, sizeof root, "w");

  walk_expect(root, NULL, 0, NULL, 0,
              "B.md,a.txt,b/alias.md,b/c.md,b/deep/d.html,node_modules/x.md,z.md");
  const char *md[] = {"*.md"};
  const char *nm[] = {"node_modules"};
  walk_expect(root, md, 1, nm, 1, "B.md,b/alias.md,b/c.md,z.md");
  const char *deep[] = {"b/**/*.html"};
  walk_expect(root, deep, 1, NULL, 0, "b/deep/d.html");
  const char *top[] = {"*"};
  const char *sub[] = {"b/**"};
  walk_expect(root, top, 1, sub, 1, "B.md,a.txt,node_modules/x.md,z.md");
  /* a trailing slash walks the same */
  char slash[520];
  snprintf(slash, sizeof slash, "%s/", root);
  walk_expect(slash, md, 1, nm, 1, "B.md,b/alias.md,b/c.md,z.md");

  /* errors name the path */
  char err[LODE_FS_ERRLEN], missing[512];
  path_of(missing, sizeof missing, "nope");
  assert_int_equal(lode_fs_walk(missing, NULL, collect, NULL, err, sizeof err), -1);
  assert_non_null(strstr(err, missing));
  path_of(missing, sizeof missing, "w/a.txt");
  assert_int_equal(lode_fs_walk(missing, NULL, collect, NULL, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a folder"));
  lode_fs_walk_opts few = {0};
  few.max_files = 2;
  lode_buf b;
  lode_buf_init(&b, 0);
  assert_int_equal(lode_fs_walk(root, &few, collect, &b, err, sizeof err), -1);
  assert_non_null(strstr(err, "max_files"));
  lode_buf_free(&b);
}

/* Links out of the folder are skipped and reported by default; "all"
 * follows them, "none" follows no link (docs/fs.md, "Symbolic links").
 * Skipped links reach opts.skipped with fn's ud: they go in the same list,
 * marked '!'. */
static int collect_skipped(void *ud, const char *rel, const char *why) {
  lode_buf *b = ud;
  assert_non_null(why);
  if (b->len) lode_buf_putc(b, ',');
  lode_buf_putc(b, '!');
  lode_buf_puts(b, rel);
  return 0;
}

static void walk_links(int mode, const char *want) {
  char root[512], err[LODE_FS_ERRLEN];
  path_of(root, sizeof root, "wl");
  lode_buf b;
  lode_buf_init(&b, 0);
  lode_fs_walk_opts o = {0};
  o.follow_links = mode;
  o.skipped = collect_skipped;
  assert_int_equal(lode_fs_walk(root, &o, collect, &b, err, sizeof err), 0);
  assert_string_equal(lode_buf_cstr(&b), want);
  lode_buf_free(&b);
}

static void test_walk_links(void **state) {
  (void)state;
  char link[512], target[512];
  mkdir_rel("outside");
  write_file("outside/secret.txt", "s", 1);
  mkdir_rel("wl");
  mkdir_rel("wl/sub");
  write_file("wl/sub/in.md", "i", 1);
  path_of(link, sizeof link, "wl/passwd.txt");
  path_of(target, sizeof target, "outside/secret.txt");
  assert_int_equal(symlink(target, link), 0);
  path_of(link, sizeof link, "wl/etc");
  path_of(target, sizeof target, "outside");
  assert_int_equal(symlink(target, link), 0);
  path_of(link, sizeof link, "wl/alias.md");
  assert_int_equal(symlink("sub/in.md", link), 0);

  walk_links(LODE_FS_LINKS_INSIDE, "alias.md,!etc,!passwd.txt,sub/in.md");
  walk_links(LODE_FS_LINKS_ALL, "alias.md,etc/secret.txt,passwd.txt,sub/in.md");
  walk_links(LODE_FS_LINKS_NONE, "!alias.md,!etc,!passwd.txt,sub/in.md");
}

/* ---- read and hash ---- */
static void test_read_hash(void **state) {
  (void)state;
  char path[512], err[LODE_FS_ERRLEN], *data = NULL;
  size_t n = 0;
  write_file("r.txt", "hello world", 11);
  path_of(path, sizeof path, "r.txt");
  assert_int_equal(lode_fs_read(path, 0, &data, &n, err, sizeof err), 0);
  assert_int_equal(n, 11);
  assert_string_equal(data, "hello world");
  free(data);
  assert_int_equal(lode_fs_read(path, 5, &data, &n, err, sizeof err), -1);
  assert_null(data);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "max_bytes"));
  assert_int_equal(lode_fs_read(tmpdir, 0, &data, &n, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a regular file"));

  char hex[33], hex2[33];
  lode_fs_hash("", 0, hex);
  assert_string_equal(hex, "99aa06d3014798d86001c324468d497f"); /* XXH3-128 of "" */
  lode_fs_hash("hello world", 11, hex);
  assert_int_equal(strlen(hex), 32);
  assert_int_equal(lode_fs_hash_file(path, hex2, err, sizeof err), 0);
  assert_string_equal(hex, hex2);
  lode_fs_hash("hello worle", 11, hex2);
  assert_string_not_equal(hex, hex2);
}

/* ---- loaders ---- */
static void expect_load(const char *rel, lode_fs_kind kind, const char *mime, const char *text,
                        const char *title) {
  char path[512], err[LODE_FS_ERRLEN];
  lode_fs_doc d;
  path_of(path, sizeof path, rel);
  if (lode_fs_load(path, kind, 0, &d, err, sizeof err) != 0) fail_msg("load %s: %s", rel, err);
  assert_string_equal(d.mime, mime);
  assert_string_equal(d.text, text);
  if (title)
    assert_string_equal(d.title, title);
  else
    assert_null(d.title);
  lode_fs_doc_free(&d);
}

static void expect_error(const char *rel, lode_fs_kind kind, const char *msg) {
  char path[512], err[LODE_FS_ERRLEN];
  lode_fs_doc d;
  path_of(path, sizeof path, rel);
  assert_int_equal(lode_fs_load(path, kind, 0, &d, err, sizeof err), -1);
  assert_null(d.text);
  assert_non_null(strstr(err, path));
  if (!strstr(err, msg)) fail_msg("load %s: error '%s' lacks '%s'", rel, err, msg);
}

static void test_text_markdown(void **state) {
  (void)state;
  const char *md = "Intro line\n\n```sh\n# not a title\n```\n\nMy *Title*\n====\n\nbody\n";
  write_file("doc.md", md, strlen(md));
  expect_load("doc.md", LODE_FS_AUTO, "text/markdown", md, "My Title");
  const char *fm = "---\ntitle: \"From Front Matter\"\nauthor: x\n---\n# Heading\n";
  write_file("fm.md", fm, strlen(fm));
  expect_load("fm.md", LODE_FS_AUTO, "text/markdown", fm, "From Front Matter");
  const char *atx = "## Second level first\n# Top\n";
  write_file("atx.markdown", atx, strlen(atx));
  expect_load("atx.markdown", LODE_FS_AUTO, "text/markdown", atx, "Second level first");
  write_file("notitle.md", "just text\n", 10);
  expect_load("notitle.md", LODE_FS_AUTO, "text/markdown", "just text\n", NULL);

  /* raw: invalid UTF-8 in plain text is returned as is (normalising is the
   * text kernel's job) */
  write_file("latin1.txt", "caf\xe9\n", 5);
  expect_load("latin1.txt", LODE_FS_AUTO, "text/plain", "caf\xe9\n", NULL);
  write_file("empty.txt", "", 0);
  expect_load("empty.txt", LODE_FS_AUTO, "text/plain", "", NULL);
  write_file("empty.md", "", 0);
  expect_load("empty.md", LODE_FS_AUTO, "text/markdown", "", NULL);
  write_file("empty.html", "", 0);
  expect_load("empty.html", LODE_FS_AUTO, "text/html", "", NULL);
  write_file("empty.pdf", "", 0);
  expect_error("empty.pdf", LODE_FS_AUTO, "not a PDF");

  /* binary: NUL bytes, or mostly control bytes */
  unsigned char bin[4096];
  for (size_t i = 0; i < sizeof bin; i++) bin[i] = (unsigned char)(i * 7 + 3);
  write_file("blob.dat", bin, sizeof bin);
  expect_error("blob.dat", LODE_FS_AUTO, "binary file, not loaded");
  expect_error("blob.dat", LODE_FS_MARKDOWN, "binary file, not loaded");
  char ctl[512];
  memset(ctl, 1, sizeof ctl);
  write_file("ctl.txt", ctl, sizeof ctl);
  expect_error("ctl.txt", LODE_FS_TEXT, "binary file, not loaded");
  expect_error("missing.txt", LODE_FS_AUTO, "No such file");
}

static void expect_utf8_doc(const lode_fs_doc *d) {
  assert_non_null(d->text);
  assert_int_equal(strlen(d->text), d->text_len);
  assert_true(g_utf8_validate(d->text, (gssize)d->text_len, NULL));
  if (d->title) assert_true(g_utf8_validate(d->title, -1, NULL));
}

static void test_html(void **state) {
  (void)state;
  const char *html =
      "<!DOCTYPE html><html><head><title>  The   Page </title>"
      "<style>p { color: red }</style><script>var x = '<p>no</p>';</script></head>"
      "<body><h1>Head</h1><p>First   para\n  with <b>bold</b>\n text"
      "<p>Second<br>line<div>unclosed <span>span"
      "<noscript>enable js</noscript><template><p>tpl</p></template>"
      "<p hidden>secret</p><pre>  keep\n   spaces</pre>"
      "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>&amp; done";
  write_file("page.html", html, strlen(html));
  expect_load("page.html", LODE_FS_AUTO, "text/html",
              "Head\n\nFirst para with bold text\n\nSecond\nline\n\nunclosed span\n\n"
              "  keep\n   spaces\n\na b\nc\n\n& done",
              "The Page");
  /* sniffed by content, title falls back to <h1> */
  const char *h = "  <html><body><h1>Only <i>h1</i></h1>x</body></html>";
  write_file("noext", h, strlen(h));
  expect_load("noext", LODE_FS_AUTO, "text/html", "Only h1\n\nx", "Only h1");

  /* malformed: unbalanced, stray bytes, invalid UTF-8 declared as Latin-1 */
  const char *bad = "<html><meta charset=iso-8859-1><title>caf\xe9</title><p>na\xefve</b></i>"
                    "<<<>>><p><td>x</tr></table></div></div><a href='";
  write_file("bad.html", bad, strlen(bad));
  char path[512], err[LODE_FS_ERRLEN];
  lode_fs_doc d;
  path_of(path, sizeof path, "bad.html");
  assert_int_equal(lode_fs_load(path, LODE_FS_AUTO, 0, &d, err, sizeof err), 0);
  expect_utf8_doc(&d);
  assert_string_equal(d.title, "caf\xc3\xa9");
  assert_non_null(strstr(d.text, "na\xc3\xafve"));
  lode_fs_doc_free(&d);

  /* NUL bytes and nesting within the limit: still text */
  lode_buf b;
  lode_buf_init(&b, 0);
  for (int i = 0; i < 150; i++) lode_buf_puts(&b, "<div><span><p><li><br>"); /* ~450 deep */
  lode_buf_append(&b, "deep\0nul", 8);
  assert_int_equal(lode_fs_load_bytes("deep.html", b.p, b.len, LODE_FS_HTML, &d, err,
                                      sizeof err),
                   0);
  expect_utf8_doc(&d);
  assert_non_null(strstr(d.text, "deep")); /* the NUL itself is dropped or replaced */
  lode_fs_doc_free(&d);
  /* a huge title is cut short, not an error; NULs become U+FFFD or vanish */
  lode_buf_reset(&b);
  lode_buf_puts(&b, "<title>");
  for (int i = 0; i < 3000; i++) lode_buf_puts(&b, "word ");
  lode_buf_puts(&b, "</title><p>");
  for (int i = 0; i < 5000; i++) lode_buf_putc(&b, 0);
  assert_int_equal(lode_fs_load_bytes("t.html", b.p, b.len, LODE_FS_HTML, &d, err, sizeof err),
                   0);
  expect_utf8_doc(&d);
  assert_true(strlen(d.title) > 1000 && strlen(d.title) <= 4096);
  lode_fs_doc_free(&d);
  /* script and style end only at their own end tag: nothing of them leaks,
   * nor does a hidden element they seem to close, and what follows stays */
  static const struct {
    const char *html, *want, *never;
  } raw[] = {
      {"<div>intro<script>document.write(\"<div>hi</div>\"); var token = 42;</script> after</div>",
       "intro after", "token"},
      {"<div hidden>hidden text<script>var s=\"</div>\";</script>still hidden</div>visible",
       "visible", "hidden"},
      {"<script>if (a</b) {}</script><style>p:after{content:\"</p>\"}</style><p>z</p>", "z",
       "if"},
  };
  for (size_t i = 0; i < sizeof raw / sizeof *raw; i++) {
    assert_int_equal(lode_fs_load_bytes("raw.html", raw[i].html, strlen(raw[i].html),
                                        LODE_FS_HTML, &d, err, sizeof err),
                     0);
    assert_string_equal(d.text, raw[i].want);
    assert_null(strstr(d.text, raw[i].never));
    lode_fs_doc_free(&d);
  }
  /* NUL bytes between elements or first in the page lose nothing */
  static const char nul1[] = "<p>aaaa</p>\0<p>after nul</p>", nul2[] = "\0\0\0<p>x</p>";
  assert_int_equal(
      lode_fs_load_bytes("n.html", nul1, sizeof nul1 - 1, LODE_FS_HTML, &d, err, sizeof err), 0);
  assert_string_equal(d.text, "aaaa\n\nafter nul");
  lode_fs_doc_free(&d);
  assert_int_equal(
      lode_fs_load_bytes("n.html", nul2, sizeof nul2 - 1, LODE_FS_HTML, &d, err, sizeof err), 0);
  assert_string_equal(d.text, "x");
  lode_fs_doc_free(&d);
  /* nesting hidden in elements whose content looks like text to a naive
   * scan (textarea, title, xmp) is still refused, and at once */
  static const char *const wraps[] = {"textarea", "title", "xmp"};
  for (size_t w = 0; w < sizeof wraps / sizeof *wraps; w++) {
    lode_buf_reset(&b);
    lode_buf_printf(&b, "<body><%s>", wraps[w]);
    for (int i = 0; i < 100000; i++) lode_buf_puts(&b, "<div>");
    lode_buf_puts(&b, "x");
    for (int i = 0; i < 100000; i++) lode_buf_puts(&b, "</span>");
    lode_buf_printf(&b, "</%s>", wraps[w]);
    int64_t t0 = lode_mono_ns();
    assert_int_equal(lode_fs_load_bytes("deep.html", b.p, b.len, LODE_FS_HTML, &d, err,
                                        sizeof err),
                     -1);
    assert_non_null(strstr(err, "deep.html: HTML elements nested"));
    assert_true(lode_mono_ns() - t0 < 2000000000LL); /* was ~16 s */
  }
  /* 100,000 nested elements (O(tags x depth) to parse): a clear error */
  lode_buf_reset(&b);
  for (int i = 0; i < 100000; i++) lode_buf_puts(&b, "<div><span>");
  assert_int_equal(lode_fs_load_bytes("deep.html", b.p, b.len, LODE_FS_HTML, &d, err,
                                      sizeof err),
                   -1);
  assert_non_null(strstr(err, "deep.html: HTML elements nested"));
  lode_buf_free(&b);
}

/* Hostile markup (fs_html.c reads libxml2's SAX events, closing what the
 * parser closes): random pages of tricky snippets give valid UTF-8 text with
 * no dropped content and no markup leaking through, and a big page of plain
 * sections comes out whole and in order. */
static const char *const html_snippets[] = {
    "<div class=\"s\"><p>para <b>bold</b> and <a href='#x'>link</a></p></div>\n",
    "<section><h2>Head</h2><ul><li>one<li>two</ul></section>",
    "<p>unclosed <i>italic",
    "<table><tr><td>a<td>b</table>",
    "<table><div>foster</div><tr><td>x</td></tr></table>",
    "<b>1<p>2</b>3</p>",
    "<form><input type=hidden></form><form>second</form>",
    "<template><p>tpl</p></template>",
    "<pre>\nkeep  spaces\n</pre>",
    "<div hidden>secret <div>deeper</div></div>",
    "<title>late title</title>",
    "<h1>heading one</h1>",
    "<svg><title>svg</title><p>out</svg>",
    "<math><mi>x</mi></math>",
    "<!-- comment <div> -->",
    "<script>var s = '</div><p>';</script>",
    "<style>p { color: red }</style>",
    "<noscript>enable js</noscript>",
    "<select><option>o1<option>o2</select>",
    "</div></section>",
    "<div><section><article>",
    "text &amp; more &lt;tag&gt;\r\n",
    "<li>item</li><dd>dd<dt>dt",
    "<a>one<a>two</a>",
    "<nobr>n<nobr>m</nobr>",
    "<textarea>\nraw <b></textarea>",
    "<font color=red>f</font>",
    "<br><br>",
    "<marquee>m</marquee><object>o</object>",
    "<p><table>t</table>",
    "<div><p>x</div>",
    "<ul><li><div>in li</div></li></ul>",
    "caf\xc3\xa9 \xe2\x80\x94 na\xc3\xafve",
};

static void test_html_hostile(void **state) {
  (void)state;
  lode_buf b;
  lode_buf_init(&b, 0);
  uint32_t r = 12345;
  size_t ns = sizeof html_snippets / sizeof *html_snippets;
  for (int page = 0; page < 24; page++) {
    lode_buf_reset(&b);
    if (page % 4 != 3) lode_buf_puts(&b, "<!DOCTYPE html><title>T</title><body><div>");
    for (int i = 0; i < 300; i++) {
      r = r * 1103515245u + 12345u;
      lode_buf_puts(&b, html_snippets[(r >> 8) % ns]);
    }
    if (page == 6) lode_buf_puts(&b, "<body hidden>");
    if (page == 7) lode_buf_puts(&b, "</body></html><p>after");
    lode_fs_doc d;
    char err[LODE_FS_ERRLEN];
    assert_int_equal(
        lode_fs_load_bytes("p.html", b.p, b.len, LODE_FS_HTML, &d, err, sizeof err), 0);
    expect_utf8_doc(&d);
    if (page % 4 != 3) assert_string_equal(d.title, "T");
    static const char *const never[] = {"secret", "deeper", "tpl", "var s", "color: red",
                                        "enable js", "comment", "<b>", "</div>", "<p>"};
    for (size_t i = 0; i < sizeof never / sizeof *never; i++)
      if (strstr(d.text, never[i])) fail_msg("page %d: '%s' in the text", page, never[i]);
    assert_non_null(strstr(d.text, "para bold and link"));
    assert_non_null(strstr(d.text, "& more <tag>"));
    lode_fs_doc_free(&d);
  }
  /* 6 MB of plain sections: every one, in order, with its breaks */
  lode_buf_reset(&b);
  lode_buf_puts(&b, "<!DOCTYPE html><html><head><title>Plain</title></head><body><main>");
  int nsec = 60000;
  for (int i = 0; i < nsec; i++)
    lode_buf_printf(&b, "<section><h2>S%d</h2><p>text <code>%d</code></p></section>\n", i, i);
  lode_buf_puts(&b, "</main></body></html>");
  lode_fs_doc d;
  char err[LODE_FS_ERRLEN];
  assert_int_equal(lode_fs_load_bytes("big.html", b.p, b.len, LODE_FS_HTML, &d, err, sizeof err),
                   0);
  assert_string_equal(d.title, "Plain");
  const char *at = d.text;
  for (int i = 0; i < nsec; i++) {
    char want[64];
    snprintf(want, sizeof want, "%sS%d\n\ntext %d", i ? "\n\n" : "", i, i);
    at = strstr(at, want);
    if (!at) fail_msg("section %d missing or out of order", i);
    at += strlen(want);
  }
  assert_string_equal(at, "");
  lode_fs_doc_free(&d);
  lode_buf_free(&b);
}

/* A small valid two-page PDF with an Info title, written by hand with a
 * correct xref table. */
static void make_pdf(lode_buf *b) {
  const char *page_text[2] = {"Hello lode PDF", "Second page"};
  size_t off[10];
  int obj = 0;
  lode_buf_puts(b, "%PDF-1.4\n");
  off[++obj] = b->len;
  lode_buf_puts(b, "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n");
  off[++obj] = b->len;
  lode_buf_puts(b, "2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >> endobj\n");
  for (int p = 0; p < 2; p++) {
    off[++obj] = b->len;
    lode_buf_printf(b,
                    "%d 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
                    " /Contents %d 0 R /Resources << /Font << /F1 7 0 R >> >> >> endobj\n",
                    3 + p, 5 + p);
  }
  for (int p = 0; p < 2; p++) {
    char stream[128];
    int sl = snprintf(stream, sizeof stream, "BT /F1 24 Tf 72 700 Td (%s) Tj ET", page_text[p]);
    off[++obj] = b->len;
    lode_buf_printf(b, "%d 0 obj << /Length %d >> stream\n%s\nendstream endobj\n", 5 + p, sl,
                    stream);
  }
  off[++obj] = b->len;
  lode_buf_puts(b, "7 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n");
  off[++obj] = b->len;
  lode_buf_puts(b, "8 0 obj << /Title (A Tiny PDF) >> endobj\n");
  size_t xref = b->len;
  lode_buf_printf(b, "xref\n0 %d\n0000000000 65535 f \n", obj + 1);
  for (int i = 1; i <= obj; i++) lode_buf_printf(b, "%010zu 00000 n \n", off[i]);
  lode_buf_printf(b, "trailer << /Size %d /Root 1 0 R /Info 8 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
                  obj + 1, xref);
}

static void test_pdf(void **state) {
  (void)state;
  lode_buf b;
  lode_buf_init(&b, 0);
  make_pdf(&b);
  write_file("tiny.pdf", b.p, b.len);
  expect_load("tiny.pdf", LODE_FS_AUTO, "application/pdf", "Hello lode PDF\n\nSecond page",
              "A Tiny PDF");
  /* sniffed by content under another name */
  write_file("tiny.bin", b.p, b.len);
  expect_load("tiny.bin", LODE_FS_AUTO, "application/pdf", "Hello lode PDF\n\nSecond page",
              "A Tiny PDF");

  /* truncated at several points: an error naming the file, or whatever
   * poppler could recover, as valid UTF-8; never a crash */
  char path[512], err[LODE_FS_ERRLEN];
  path_of(path, sizeof path, "cut.pdf");
  size_t cuts[] = {5, 9, 40, b.len / 3, b.len / 2, b.len - 30};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    lode_fs_doc d;
    write_file("cut.pdf", b.p, cuts[i]);
    err[0] = 0;
    if (lode_fs_load(path, LODE_FS_AUTO, 0, &d, err, sizeof err) == 0) {
      expect_utf8_doc(&d);
      lode_fs_doc_free(&d);
    } else {
      assert_non_null(strstr(err, path));
    }
  }
  write_file("cut.pdf", b.p, 9);
  expect_error("cut.pdf", LODE_FS_PDF, "cannot load PDF");
  write_file("fake.pdf", "%PDF-1.4 garbage garbage", 24);
  expect_error("fake.pdf", LODE_FS_PDF, "cannot load PDF");
  write_file("html.pdf", "<html>not a pdf", 15);
  expect_error("html.pdf", LODE_FS_AUTO, "not a PDF");
  lode_buf_free(&b);
}

static void test_big_file(void **state) {
  (void)state;
  const size_t size = (size_t)50 << 20;
  char *big = malloc(size);
  assert_non_null(big);
  for (size_t i = 0; i < size; i++) big[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
  write_file("big.txt", big, size);
  char path[512], err[LODE_FS_ERRLEN];
  path_of(path, sizeof path, "big.txt");
  lode_fs_doc d;
  /* within the default limit (64 MiB): loaded whole */
  assert_int_equal(lode_fs_load(path, LODE_FS_AUTO, 0, &d, err, sizeof err), 0);
  assert_int_equal(d.text_len, size);
  assert_memory_equal(d.text, big, size);
  lode_fs_doc_free(&d);
  /* over an explicit limit: a clear error naming the file */
  assert_int_equal(lode_fs_load(path, LODE_FS_AUTO, 1 << 20, &d, err, sizeof err), -1);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "larger than max_bytes"));
  /* 5 MB of it as HTML: parsed into text, not crashed */
  assert_int_equal(lode_fs_load_bytes("big.html", big, (size_t)5 << 20, LODE_FS_HTML, &d, err,
                                      sizeof err),
                   0);
  expect_utf8_doc(&d);
  assert_true(d.text_len > ((size_t)4 << 20));
  lode_fs_doc_free(&d);
  free(big);
  unlink(path);
}

/* the scope test agrees with the walk: what it would report, and only that */
static void test_walk_matches(void **state) {
  (void)state;
  const char *inc[] = {"*.md", "docs/*.txt"}, *exc[] = {"build", "secret*"};
  lode_fs_walk_opts o = {0};
  o.include = inc, o.n_include = 2, o.exclude = exc, o.n_exclude = 2;
  assert_int_equal(lode_fs_walk_matches(&o, "a.md"), 1);
  assert_int_equal(lode_fs_walk_matches(&o, "x/y/a.md"), 1);
  assert_int_equal(lode_fs_walk_matches(&o, "docs/n.txt"), 1);
  assert_int_equal(lode_fs_walk_matches(&o, "n.txt"), 0);          /* not included */
  assert_int_equal(lode_fs_walk_matches(&o, "build/a.md"), 0);     /* folder excluded */
  assert_int_equal(lode_fs_walk_matches(&o, "x/build/z/a.md"), 0); /* at any depth */
  assert_int_equal(lode_fs_walk_matches(&o, "secret.md"), 0);      /* file excluded */
  assert_int_equal(lode_fs_walk_matches(&o, "buildings/a.md"), 1);
  lode_fs_walk_opts all = {0};
  assert_int_equal(lode_fs_walk_matches(&all, "any/thing.bin"), 1);
}

/* ---- gzip (docs/fs.md, "Compressed files") ---- */
/* gzip of p[0..n) appended to out */
static void gzip_into(lode_buf *out, const void *p, size_t n) {
  z_stream z;
  memset(&z, 0, sizeof z);
  assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  size_t cap = deflateBound(&z, (uLong)n);
  unsigned char *tmp = malloc(cap);
  assert_non_null(tmp);
  z.next_in = (Bytef *)p;
  z.avail_in = (uInt)n;
  z.next_out = tmp;
  z.avail_out = (uInt)cap;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  assert_int_equal(lode_buf_append(out, tmp, cap - z.avail_out), 0);
  deflateEnd(&z);
  free(tmp);
}

static void write_gz(const char *rel, const char *text) {
  lode_buf b;
  lode_buf_init(&b, LODE_BUF_DEFAULT_MAX);
  gzip_into(&b, text, strlen(text));
  write_file(rel, b.p, b.len);
  lode_buf_free(&b);
}

static void test_gzip(void **state) {
  (void)state;
  /* the kind comes from the name inside: x.md.gz is Markdown */
  const char *md = "# Zstd notes\n\nFast compression.\n";
  write_gz("readme.md.gz", md);
  expect_load("readme.md.gz", LODE_FS_AUTO, "text/markdown", md, "Zstd notes");
  write_gz("page.html.gz", "<html><head><title>T</title></head><body><p>Hi</p></body></html>");
  expect_load("page.html.gz", LODE_FS_AUTO, "text/html", "Hi", "T");
  write_gz("changelog.gz", "plain text\n");
  expect_load("changelog.gz", LODE_FS_AUTO, "text/plain", "plain text\n", NULL);
  /* by content when the name does not say it: gzip data in a .txt */
  write_gz("packed.txt", "inside\n");
  expect_load("packed.txt", LODE_FS_AUTO, "text/plain", "inside\n", NULL);

  /* several members (gzip a >> b), then tar-style zero padding */
  lode_buf b;
  lode_buf_init(&b, LODE_BUF_DEFAULT_MAX);
  gzip_into(&b, "one\n", 4);
  gzip_into(&b, "two\n", 4);
  lode_buf_append(&b, "\0\0\0\0", 4);
  write_file("multi.txt.gz", b.p, b.len);
  expect_load("multi.txt.gz", LODE_FS_AUTO, "text/plain", "one\ntwo\n", NULL);

  /* cut short, corrupt, or a binary inside: errors naming the file */
  write_file("cut.md.gz", b.p, 12);
  expect_error("cut.md.gz", LODE_FS_AUTO, "truncated gzip data");
  write_file("fake.md.gz", "not gzip at all", 15);
  expect_error("fake.md.gz", LODE_FS_AUTO, "corrupt gzip data");
  lode_buf_reset(&b);
  unsigned char bin[2048];
  for (size_t i = 0; i < sizeof bin; i++) bin[i] = (unsigned char)(i * 7 + 3);
  gzip_into(&b, bin, sizeof bin);
  write_file("blob.bin.gz", b.p, b.len);
  expect_error("blob.bin.gz", LODE_FS_AUTO, "binary file, not loaded");

  /* a bomb: 32 MiB of zeros packed into a few KB stops at max_bytes */
  size_t big = (size_t)32 << 20;
  char *zeros = calloc(1, big);
  assert_non_null(zeros);
  memset(zeros, 'a', big);
  lode_buf_reset(&b);
  gzip_into(&b, zeros, big);
  assert_true(b.len < 100000);
  write_file("bomb.txt.gz", b.p, b.len);
  char path[512], err[LODE_FS_ERRLEN];
  lode_fs_doc d;
  path_of(path, sizeof path, "bomb.txt.gz");
  assert_int_equal(lode_fs_load(path, LODE_FS_AUTO, 1 << 20, &d, err, sizeof err), -1);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "too large when decompressed"));
  /* within the limit it loads whole */
  assert_int_equal(lode_fs_load(path, LODE_FS_AUTO, 0, &d, err, sizeof err), 0);
  assert_int_equal(d.text_len, big);
  lode_fs_doc_free(&d);
  /* from memory too (lode.fs.load_bytes) */
  assert_int_equal(lode_fs_load_bytes("x.md.gz", b.p, b.len, LODE_FS_AUTO, &d, err, sizeof err),
                   0);
  assert_string_equal(d.mime, "text/markdown");
  lode_fs_doc_free(&d);
  free(zeros);
  lode_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_glob),          cmocka_unit_test(test_walk),
      cmocka_unit_test(test_walk_links),
      cmocka_unit_test(test_read_hash),     cmocka_unit_test(test_text_markdown),
      cmocka_unit_test(test_html),          cmocka_unit_test(test_html_hostile),          cmocka_unit_test(test_pdf),
      cmocka_unit_test(test_big_file),      cmocka_unit_test(test_gzip),
      cmocka_unit_test(test_walk_matches),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
