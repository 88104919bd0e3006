/* fs_load.c - the loader dispatch (extension, then content), plain text and
 * Markdown. HTML and PDF live in fs_html.c and fs_pdf.c.
 *
 * Texts come back raw: normalising whitespace and Unicode is the text
 * kernel's job. Plain text and Markdown are returned byte for byte (the
 * normaliser repairs invalid UTF-8); HTML and PDF texts are built by us and
 * are always valid UTF-8. */
#include <ctype.h>
#include <glib.h>
#include <md4c.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "base/buf.h"
#include "kernels/fs_int.h"

#define SNIFF_BYTES 8192
#define MAX_TITLE 1024

void lode_fs_doc_free(lode_fs_doc *d) {
  if (!d) return;
  free(d->text);
  free(d->title);
  memset(d, 0, sizeof *d);
}

int lode__fs_make_utf8(char **text, size_t *len) {
  if (g_utf8_validate(*text, (gssize)*len, NULL)) return 0;
  gchar *v = g_utf8_make_valid(*text, (gssize)*len);
  if (!v) return -1;
  size_t n = strlen(v); /* make_valid turns NULs into U+FFFD, so strlen is exact */
  char *copy = malloc(n + 1);
  if (!copy) {
    g_free(v);
    return -1;
  }
  memcpy(copy, v, n + 1);
  g_free(v);
  free(*text);
  *text = copy;
  *len = n;
  return 0;
}

/* NUL bytes mean binary; so does a sample where more than 1 byte in 10 is a
 * control character other than the usual whitespace, form feed and ESC
 * (terminal colours in logs). Invalid UTF-8 alone does not: Latin-1 text is
 * still text, and the normaliser repairs it. */
int lode_fs_is_binary(const void *p, size_t n) {
  if (memchr(p, 0, n)) return 1;
  const unsigned char *s = p;
  size_t m = n < SNIFF_BYTES ? n : SNIFF_BYTES, ctl = 0;
  for (size_t i = 0; i < m; i++)
    if ((s[i] < 0x20 && !strchr("\t\n\r\f\v\x1b", s[i])) || s[i] == 0x7f) ctl++;
  return ctl * 10 > m;
}

static const char *extension(const char *name) {
  const char *slash = strrchr(name, '/');
  const char *base = slash ? slash + 1 : name;
  const char *dot = strrchr(base, '.');
  return dot && dot != base ? dot + 1 : "";
}

/* Skips a UTF-8 BOM and leading whitespace for sniffing. */
static const char *sniff_start(const char *p, size_t n, size_t *left) {
  size_t i = 0;
  if (n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) i = 3;
  while (i < n && i < SNIFF_BYTES && isspace((unsigned char)p[i])) i++;
  *left = n - i;
  return p + i;
}

static int starts_ci(const char *p, size_t n, const char *prefix) {
  size_t k = strlen(prefix);
  return n >= k && strncasecmp(p, prefix, k) == 0;
}

lode_fs_kind lode_fs_sniff(const char *name, const void *p, size_t n) {
  const char *ext = extension(name ? name : "");
  static const struct {
    const char *ext;
    lode_fs_kind kind;
  } by_ext[] = {{"md", LODE_FS_MARKDOWN},  {"markdown", LODE_FS_MARKDOWN},
                {"mdown", LODE_FS_MARKDOWN}, {"mkd", LODE_FS_MARKDOWN},
                {"html", LODE_FS_HTML},    {"htm", LODE_FS_HTML},
                {"xhtml", LODE_FS_HTML},   {"pdf", LODE_FS_PDF}};
  for (size_t i = 0; i < sizeof by_ext / sizeof by_ext[0]; i++)
    if (!strcasecmp(ext, by_ext[i].ext)) return by_ext[i].kind;
  if (n >= 5 && !memcmp(p, "%PDF-", 5)) return LODE_FS_PDF;
  size_t left;
  const char *s = sniff_start(p, n, &left);
  if (starts_ci(s, left, "<!doctype html") || starts_ci(s, left, "<html") ||
      starts_ci(s, left, "<head") || starts_ci(s, left, "<body"))
    return LODE_FS_HTML;
  return LODE_FS_TEXT;
}

static int copy_text(const char *name, const char *p, size_t n, lode_fs_doc *out, char *err,
                     size_t errlen) {
  if (!(out->text = malloc(n + 1))) {
    lode__fs_seterr(err, errlen, "%s: out of memory", name);
    return -1;
  }
  if (n) memcpy(out->text, p, n);
  out->text[n] = 0;
  out->text_len = n;
  return 0;
}

/* ---- Markdown: the text is the source; the title is the first heading ---- */
typedef struct md_title {
  lode_buf b;
  int in_h, done;
} md_title;

static int md_enter(MD_BLOCKTYPE t, void *detail, void *ud) {
  (void)detail;
  md_title *m = ud;
  if (m->done) return 1; /* md4c may go on after leave_block asked to stop */
  if (t == MD_BLOCK_H) m->in_h = 1;
  return 0;
}

static int md_leave(MD_BLOCKTYPE t, void *detail, void *ud) {
  (void)detail;
  md_title *m = ud;
  if (t != MD_BLOCK_H) return 0;
  m->in_h = 0;
  m->done = 1;
  return 1; /* stop the parse: we only wanted this heading */
}

static int md_span(MD_SPANTYPE t, void *detail, void *ud) {
  (void)t;
  (void)detail;
  (void)ud;
  return 0;
}

static int md_text(MD_TEXTTYPE t, const MD_CHAR *s, MD_SIZE n, void *ud) {
  md_title *m = ud;
  if (!m->in_h || m->done) return 0;
  if (t == MD_TEXT_NULLCHAR)
    lode_buf_puts(&m->b, "\xEF\xBF\xBD");
  else if (t == MD_TEXT_BR || t == MD_TEXT_SOFTBR)
    lode_buf_putc(&m->b, ' ');
  else
    lode_buf_append(&m->b, s, n); /* at the cap the title is just cut short */
  return 0;
}

/* YAML front matter ("---" line ... "---" or "..." line) is not Markdown: a
 * parser would read its closing line as a heading underline. Returns the
 * length of the block (0 if none) and its `title:` value, if any. */
static size_t front_matter(const char *p, size_t n, char **title) {
  *title = NULL;
  if (n < 4 || memcmp(p, "---", 3) || (p[3] != '\n' && p[3] != '\r')) return 0;
  size_t i = p[3] == '\r' && n > 4 && p[4] == '\n' ? 5 : 4;
  while (i < n) {
    const char *nl = memchr(p + i, '\n', n - i);
    size_t end = nl ? (size_t)(nl - p) : n, len = end - i;
    if (len && p[i + len - 1] == '\r') len--;
    const char *line = p + i;
    if ((len == 3 && (!memcmp(line, "---", 3) || !memcmp(line, "...", 3)))) {
      return nl ? end + 1 : n;
    }
    if (!*title && len > 6 && !strncmp(line, "title:", 6)) {
      size_t a = 6, b = len;
      while (a < b && isspace((unsigned char)line[a])) a++;
      while (b > a && isspace((unsigned char)line[b - 1])) b--;
      if (b - a >= 2 && (line[a] == '"' || line[a] == '\'') && line[b - 1] == line[a]) a++, b--;
      if (b > a && b - a <= MAX_TITLE) *title = g_strndup(line + a, b - a);
    }
    i = end + 1;
  }
  g_free(*title); /* unterminated: not front matter after all */
  *title = NULL;
  return 0;
}

static char *trimmed_dup(const char *s, size_t n) {
  while (n && isspace((unsigned char)*s)) s++, n--;
  while (n && isspace((unsigned char)s[n - 1])) n--;
  if (!n) return NULL;
  char *t = malloc(n + 1);
  if (!t) return NULL;
  memcpy(t, s, n);
  t[n] = 0;
  return t;
}

int lode__fs_load_markdown(const char *name, const char *p, size_t n, lode_fs_doc *out,
                           char *err, size_t errlen) {
  char *fm_title = NULL;
  md_title m = {0};
  int rc = -1;
  out->mime = "text/markdown";
  if (lode_fs_is_binary(p, n)) {
    lode__fs_seterr(err, errlen, "%s: binary file, not loaded", name);
    return -1;
  }
  if (copy_text(name, p, n, out, err, errlen) != 0) return -1;
  size_t skip = front_matter(p, n, &fm_title);
  if (fm_title) {
    out->title = trimmed_dup(fm_title, strlen(fm_title));
  } else if (n - skip <= (size_t)0x7fffffff) {
    lode_buf_init(&m.b, MAX_TITLE);
    MD_PARSER parser = {0};
    parser.flags = MD_DIALECT_GITHUB;
    parser.enter_block = md_enter;
    parser.leave_block = md_leave;
    parser.enter_span = md_span;
    parser.leave_span = md_span;
    parser.text = md_text;
    md_parse(p + skip, (MD_SIZE)(n - skip), &parser, &m);
    if (m.done && m.b.len) out->title = trimmed_dup((const char *)m.b.p, m.b.len);
  }
  /* a title is shown to people: make it valid UTF-8 even though the text
   * itself is returned raw */
  if (out->title) {
    size_t tl = strlen(out->title);
    if (lode__fs_make_utf8(&out->title, &tl) != 0) goto nomem;
  }
  rc = 0;
  goto done;
nomem:
  lode__fs_seterr(err, errlen, "%s: out of memory", name);
  lode_fs_doc_free(out);
done:
  g_free(fm_title);
  lode_buf_free(&m.b);
  return rc;
}

/* ---- gzip: x.md.gz is x.md (docs/fs.md, "Compressed files") ---- */
static int ends_ci(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcasecmp(s + n - k, suffix);
}

static int is_gzip(const char *name, const void *p, size_t n) {
  const unsigned char *b = p;
  return (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) || (name && ends_ci(name, ".gz"));
}

/* Inflates every member of a gzip stream (gzip files may be concatenations)
 * into at most max bytes; a larger result fails, so a small file cannot
 * expand into gigabytes. */
static int gunzip(const char *name, const void *p, size_t n, size_t max, char **out,
                  size_t *outn, char *err, size_t errlen) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 15 + 16) != Z_OK) {
    lode__fs_seterr(err, errlen, "%s: out of memory", name);
    return -1;
  }
  size_t cap = n * 4 + 4096 < max + 1 ? n * 4 + 4096 : max + 1, len = 0;
  char *buf = malloc(cap + 1);
  int zr = Z_OK;
  const char *why = NULL;
  if (!buf) why = "out of memory";
  z.next_in = (Bytef *)p;
  while (!why) {
    size_t in_left = n - (size_t)((const char *)z.next_in - (const char *)p);
    if (!in_left && zr == Z_STREAM_END) break;
    if (len == cap) {
      if (cap > max) {
        why = "too large when decompressed";
        break;
      }
      size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
      char *nb = realloc(buf, ncap + 1);
      if (!nb) {
        why = "out of memory";
        break;
      }
      buf = nb, cap = ncap;
    }
    if (zr == Z_STREAM_END) {
      /* another member follows; trailing zero padding (tar's habit) ends it */
      const unsigned char *q = z.next_in;
      size_t k = 0;
      while (k < in_left && q[k] == 0) k++;
      if (k == in_left) break;
      if (inflateReset(&z) != Z_OK) {
        why = "corrupt gzip data";
        break;
      }
    }
    uInt chunk_in = in_left > (1u << 30) ? 1u << 30 : (uInt)in_left;
    size_t room = cap - len;
    uInt chunk_out = room > (1u << 30) ? 1u << 30 : (uInt)room;
    z.avail_in = chunk_in;
    z.next_out = (Bytef *)buf + len;
    z.avail_out = chunk_out;
    zr = inflate(&z, Z_NO_FLUSH);
    len += chunk_out - z.avail_out;
    if (zr == Z_STREAM_END) continue;
    if (zr == Z_BUF_ERROR && z.avail_out && !z.avail_in) {
      why = "truncated gzip data";
    } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
      why = zr == Z_MEM_ERROR ? "out of memory" : "corrupt gzip data";
    }
  }
  inflateEnd(&z);
  if (!why && len > max) why = "too large when decompressed";
  if (why) {
    free(buf);
    if (!strcmp(why, "too large when decompressed"))
      lode__fs_seterr(err, errlen, "%s: %s (more than max_bytes, %zu bytes)", name, why, max);
    else
      lode__fs_seterr(err, errlen, "%s: %s", name, why);
    return -1;
  }
  buf[len] = 0;
  *out = buf;
  *outn = len;
  return 0;
}

static int load_plain(const char *name, const void *p, size_t n, lode_fs_kind kind,
                      lode_fs_doc *out, char *err, size_t errlen);

static int load_gzip(const char *name, const void *p, size_t n, lode_fs_kind kind, size_t max,
                     lode_fs_doc *out, char *err, size_t errlen) {
  char *data = NULL;
  size_t len = 0;
  if (gunzip(name, p, n, max ? max : LODE_FS_DEFAULT_MAX_BYTES, &data, &len, err, errlen))
    return -1;
  /* the kind comes from the inner name (x.md.gz is Markdown) and content */
  if (kind == LODE_FS_AUTO) {
    size_t k = strlen(name);
    char *inner = malloc(k + 1);
    if (!inner) {
      free(data);
      lode__fs_seterr(err, errlen, "%s: out of memory", name);
      return -1;
    }
    memcpy(inner, name, k + 1);
    if (ends_ci(inner, ".gz")) inner[k - 3] = 0;
    kind = lode_fs_sniff(inner, data, len);
    free(inner);
  }
  int rc = load_plain(name, data, len, kind, out, err, errlen);
  free(data);
  return rc;
}

int lode_fs_load_bytes(const char *name, const void *p, size_t n, lode_fs_kind kind,
                       lode_fs_doc *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!name) name = "(bytes)";
  if (is_gzip(name, p, n)) return load_gzip(name, p, n, kind, 0, out, err, errlen);
  return load_plain(name, p, n, kind, out, err, errlen);
}

static int load_plain(const char *name, const void *p, size_t n, lode_fs_kind kind,
                      lode_fs_doc *out, char *err, size_t errlen) {
  if (kind == LODE_FS_AUTO) kind = lode_fs_sniff(name, p, n);
  switch (kind) {
    case LODE_FS_MARKDOWN:
      return lode__fs_load_markdown(name, p, n, out, err, errlen);
    case LODE_FS_HTML:
      return lode__fs_load_html(name, p, n, out, err, errlen);
    case LODE_FS_PDF:
      return lode__fs_load_pdf(name, p, n, out, err, errlen);
    default:
      out->mime = "text/plain";
      if (lode_fs_is_binary(p, n)) {
        lode__fs_seterr(err, errlen, "%s: binary file, not loaded", name);
        return -1;
      }
      return copy_text(name, p, n, out, err, errlen);
  }
}

int lode_fs_load(const char *path, lode_fs_kind kind, size_t max_bytes, lode_fs_doc *out,
                 char *err, size_t errlen) {
  char *data = NULL;
  size_t n = 0;
  memset(out, 0, sizeof *out);
  if (lode_fs_read(path, max_bytes, &data, &n, err, errlen) != 0) return -1;
  int rc = is_gzip(path, data, n)
               ? load_gzip(path, data, n, kind, max_bytes, out, err, errlen)
               : load_plain(path, data, n, kind, out, err, errlen);
  free(data);
  return rc;
}
