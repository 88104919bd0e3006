/* fs_html.c - HTML to text with libxml2's HTML parser, read as a stream of
 * SAX events: no tree is built, so a page costs the parser's small state
 * whatever its size, and the text comes out in one pass. libxml2 recovers
 * malformed markup (unclosed, misnested and stray tags) the way lxml and
 * BeautifulSoup do for most RAG loaders.
 *
 * What comes out is what a reader sees: script, style, noscript and template
 * contents are dropped, and so are elements marked `hidden`; block elements
 * become paragraph breaks, <br> and table rows line breaks, and whitespace
 * runs inside flowing text collapse to one space as rendering would (inside
 * <pre> and <textarea> it is kept). The title is the <title> text, else the
 * first <h1>. Open elements are kept on an explicit stack, never recursion.
 *
 * libxml2 closes elements by scanning its stack of open elements, so a page
 * of 100,000 nested <div>s and stray end tags would cost O(tags x depth):
 * the parse stops, and the page is refused, once elements nest deeper than
 * MAX_DEPTH (browsers cap the depth they build at 512 too). */
#include <glib.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "kernels/fs_int.h"

#define MAX_DEPTH 512
#define MAX_TITLE 4096 /* bytes of title kept; a longer one is cut short */

/* The input as UTF-8: the parser is given UTF-8 only. Bytes that are not valid
 * UTF-8 are decoded as the charset the page declares, or as windows-1252,
 * the web's default for legacy pages. Returns NULL to use the input as is. */
static char *to_utf8(const char *p, size_t n, size_t *out_len) {
  if (g_utf8_validate(p, (gssize)n, NULL)) return NULL;
  char charset[64] = "WINDOWS-1252";
  size_t scan = n < 4096 ? n : 4096;
  for (size_t i = 0; i + 8 < scan; i++) {
    if (strncasecmp(p + i, "charset=", 8)) continue;
    size_t j = i + 8, k = 0;
    while (j < scan && (p[j] == '"' || p[j] == '\'')) j++;
    while (j < scan && k + 1 < sizeof charset &&
           (g_ascii_isalnum(p[j]) || p[j] == '-' || p[j] == '_' || p[j] == ':'))
      charset[k++] = p[j++];
    if (k) charset[k] = 0;
    break;
  }
  gsize written = 0;
  gchar *u = g_convert(p, (gssize)n, "UTF-8", charset, NULL, &written, NULL);
  if (!u) u = g_convert(p, (gssize)n, "UTF-8", "WINDOWS-1252", NULL, &written, NULL);
  if (!u) return NULL; /* lode__fs_html_text repairs what cannot be decoded */
  char *copy = malloc(written + 1);
  if (copy) {
    memcpy(copy, u, written);
    copy[written] = 0;
    *out_len = written;
  }
  g_free(u);
  return copy;
}


enum sep { SEP_NONE, SEP_SPACE, SEP_LINE, SEP_PARA };

typedef struct out_text {
  lode_buf b;
  enum sep pending;
  int failed;
} out_text;

static void emit_sep(out_text *o, enum sep s) {
  if (s > o->pending) o->pending = s;
}

static void put(out_text *o, const char *s, size_t n) {
  if (!n) return;
  if (o->b.len && o->pending) {
    static const char *const seps[] = {"", " ", "\n", "\n\n"};
    if (lode_buf_puts(&o->b, seps[o->pending]) != 0) o->failed = 1;
  }
  o->pending = SEP_NONE;
  if (lode_buf_append(&o->b, s, n) != 0) o->failed = 1;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Flowing text: each whitespace run becomes one pending space. */
static void put_flow(out_text *o, const char *s, size_t n) {
  const char *end = s + n;
  while (s < end) {
    if (is_space(*s)) {
      while (s < end && is_space(*s)) s++;
      emit_sep(o, SEP_SPACE);
      continue;
    }
    const char *start = s;
    while (s < end && !is_space(*s)) s++;
    put(o, start, (size_t)(s - start));
  }
}

/* Text inside <pre>: kept as it is, but for line ends, which HTML reads as
 * "\n" whether written "\r\n", "\r" or "\n" (libxml2 passes them as written). */
static void put_pre(out_text *o, const char *s, size_t n) {
  const char *end = s + n;
  while (s < end) {
    const char *cr = memchr(s, '\r', (size_t)(end - s));
    if (!cr) {
      put(o, s, (size_t)(end - s));
      return;
    }
    put(o, s, (size_t)(cr - s));
    put(o, "\n", 1);
    s = cr + 1;
    if (s < end && *s == '\n') s++;
  }
}

/* What an element does to the text, by its (lower-case) name. */
enum {
  T_BLOCK = 1,    /* a paragraph break before and after */
  T_DROP = 2,     /* its content is not text (TITLE is read for the title) */
  T_PRE = 4,      /* whitespace kept inside */
  T_ROW = 8,      /* a line break before and after */
  T_CELL = 16,    /* a space before */
  T_BR = 32,      /* a line break; two in a row a paragraph break */
  T_TITLE = 64,
  T_H1 = 128,
  T_HEAD = 256    /* dropped, but the <title> inside is read */
};

typedef struct tag_kind {
  const char *name;
  unsigned flags;
} tag_kind;

/* sorted by name for bsearch */
static const tag_kind tag_kinds[] = {
    {"address", T_BLOCK}, {"article", T_BLOCK}, {"aside", T_BLOCK},
    {"blockquote", T_BLOCK}, {"body", T_BLOCK}, {"br", T_BR},
    {"caption", T_BLOCK}, {"center", T_BLOCK}, {"dd", T_BLOCK},
    {"details", T_BLOCK}, {"dir", T_BLOCK}, {"div", T_BLOCK},
    {"dl", T_BLOCK}, {"dt", T_BLOCK}, {"fieldset", T_BLOCK},
    {"figcaption", T_BLOCK}, {"figure", T_BLOCK}, {"footer", T_BLOCK},
    {"form", T_BLOCK}, {"h1", T_BLOCK | T_H1}, {"h2", T_BLOCK},
    {"h3", T_BLOCK}, {"h4", T_BLOCK}, {"h5", T_BLOCK},
    {"h6", T_BLOCK}, {"head", T_DROP | T_HEAD}, {"header", T_BLOCK},
    {"hgroup", T_BLOCK}, {"hr", T_BLOCK}, {"html", T_BLOCK},
    {"legend", T_BLOCK}, {"li", T_BLOCK}, {"listing", T_PRE},
    {"main", T_BLOCK}, {"menu", T_BLOCK}, {"nav", T_BLOCK},
    {"noscript", T_DROP}, {"ol", T_BLOCK}, {"p", T_BLOCK},
    {"pre", T_BLOCK | T_PRE}, {"script", T_DROP}, {"section", T_BLOCK},
    {"style", T_DROP}, {"summary", T_BLOCK}, {"table", T_BLOCK},
    {"td", T_CELL}, {"template", T_DROP}, {"textarea", T_BLOCK | T_PRE},
    {"th", T_CELL}, {"title", T_DROP | T_TITLE}, {"tr", T_ROW},
    {"ul", T_BLOCK}};

static int kind_cmp(const void *key, const void *el) {
  return strcmp(key, ((const tag_kind *)el)->name);
}

static unsigned tag_flags(const char *name) {
  const tag_kind *k = bsearch(name, tag_kinds, sizeof tag_kinds / sizeof *tag_kinds,
                              sizeof *tag_kinds, kind_cmp);
  return k ? k->flags : 0;
}

/* One open element as the text sees it. */
typedef struct open_el {
  const char *name; /* interned in the parser's dictionary: valid while it parses */
  unsigned flags;
  unsigned dropped : 1; /* counted in drop (T_DROP or hidden) */
} open_el;

typedef struct sax_ctx {
  out_text body;
  out_text title, h1; /* the first <title>'s text, the first <h1>'s */
  open_el *st;
  size_t depth, cap;
  int drop;          /* open dropped elements */
  int drop_nonhead;  /* of which not <head> */
  int pre;           /* open <pre>-like elements, outside dropped ones */
  int pre_lf;        /* a <pre> just began: a newline right after it is not text */
  size_t title_at;   /* stack depth of the <title> being read, 0 if none */
  size_t h1_at;      /* stack depth of the <h1> being read, 0 if none */
  int title_seen, h1_seen;
  int failed;
  int too_deep;           /* nested over MAX_DEPTH: the parse was stopped */
  htmlParserCtxtPtr parser;
} sax_ctx;

static void sep_before(out_text *o, unsigned f) {
  if (f & T_BLOCK) emit_sep(o, SEP_PARA);
  if (f & T_ROW) emit_sep(o, SEP_LINE);
  if (f & T_CELL) emit_sep(o, SEP_SPACE);
}

static void sep_after(out_text *o, unsigned f) {
  if (f & T_BLOCK) emit_sep(o, SEP_PARA);
  if (f & T_ROW) emit_sep(o, SEP_LINE);
  if (f & T_BR) {
    if (o->pending == SEP_LINE)
      o->pending = SEP_PARA;
    else
      emit_sep(o, SEP_LINE);
  }
}

static int is_hidden(const xmlChar **atts) {
  /* libxml2 lower-cases attribute names in HTML */
  for (size_t i = 0; atts && atts[i]; i += 2)
    if (atts[i][0] == 'h' && !strcmp((const char *)atts[i], "hidden")) return 1;
  return 0;
}

static void on_start(void *ud, const xmlChar *xname, const xmlChar **atts) {
  sax_ctx *c = ud;
  const char *name = (const char *)xname;
  if (c->failed || c->too_deep) return;
  c->pre_lf = 0;
  if (c->depth >= MAX_DEPTH) {
    c->too_deep = 1;
    xmlStopParser(c->parser);
    return;
  }
  if (c->depth == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 64;
    open_el *ns = realloc(c->st, cap * sizeof *ns);
    if (!ns) {
      c->failed = 1;
      return;
    }
    c->st = ns;
    c->cap = cap;
  }
  unsigned f = tag_flags(name);
  open_el *e = &c->st[c->depth++];
  e->name = name;
  e->flags = f;
  e->dropped = 0;
  /* the first <title> outside script, noscript, template and hidden
   * elements (inside <head> it is): read for the title */
  if ((f & T_TITLE) && !c->title_seen && !c->drop_nonhead) {
    c->title_seen = 1;
    c->title_at = c->depth;
  }
  if ((f & T_DROP) || is_hidden(atts)) {
    e->dropped = 1;
    c->drop++;
    if (!(f & T_HEAD)) c->drop_nonhead++;
    return;
  }
  if (c->drop) return;
  sep_before(&c->body, f);
  if (c->h1_at) sep_before(&c->h1, f);
  if ((f & T_H1) && !c->h1_seen) {
    c->h1_seen = 1;
    c->h1_at = c->depth;
  }
  if (f & T_PRE) {
    c->pre++;
    c->pre_lf = 1;
  }
}

/* Leaves the top element. */
static void leave(sax_ctx *c) {
  open_el *e = &c->st[c->depth - 1];
  c->pre_lf = 0; /* an empty <pre>: the newline rule ends with it */
  if (e->dropped) {
    c->drop--;
    if (!(e->flags & T_HEAD)) c->drop_nonhead--;
  } else if (!c->drop) {
    sep_after(&c->body, e->flags);
    if (c->h1_at && c->h1_at < c->depth) sep_after(&c->h1, e->flags);
    if ((e->flags & T_PRE) && c->pre) c->pre--;
  }
  if (c->title_at == c->depth) c->title_at = 0;
  if (c->h1_at == c->depth) c->h1_at = 0;
  c->depth--;
}

static void on_end(void *ud, const xmlChar *xname) {
  sax_ctx *c = ud;
  const char *name = (const char *)xname;
  if (c->failed || c->too_deep) return;
  /* libxml2 reports every element it closes, implied ends included, so
   * the name is normally on top; if not, close down to it, and ignore an
   * end that matches nothing */
  size_t i = c->depth;
  while (i && c->st[i - 1].name != name && strcmp(c->st[i - 1].name, name)) i--;
  if (!i) return;
  while (c->depth >= i) leave(c);
}

static void on_text(void *ud, const xmlChar *xs, int len) {
  sax_ctx *c = ud;
  const char *s = (const char *)xs;
  if (c->failed || c->too_deep || len <= 0) return;
  if (c->pre_lf) { /* as HTML5 parsers do (and libxml2 does not) */
    c->pre_lf = 0;
    if (*s == '\r' && len > 1 && s[1] == '\n') s++, len--;
    if (*s == '\n' || *s == '\r') s++, len--;
    if (!len) return;
  }
  if (c->title_at && c->title.b.len < MAX_TITLE) put_flow(&c->title, s, (size_t)len);
  if (c->drop) return;
  if (c->pre)
    put_pre(&c->body, s, (size_t)len);
  else
    put_flow(&c->body, s, (size_t)len);
  if (c->h1_at && c->h1.b.len < MAX_TITLE) put_flow(&c->h1, s, (size_t)len);
}

static void quiet(void *ud, xmlErrorPtr e) {
  (void)ud;
  (void)e;
}

static void quiet_generic(void *ud, const char *msg, ...) {
  (void)ud;
  (void)msg;
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void) { xmlInitParser(); }

/* A title's text, cut to MAX_TITLE bytes at a character boundary. */
static char *steal_title(out_text *o) {
  if (o->b.len > MAX_TITLE) {
    const char *p = (const char *)o->b.p;
    size_t n = MAX_TITLE;
    while (n && ((unsigned char)p[n] & 0xC0) == 0x80) n--;
    o->b.len = n;
  }
  if (!o->b.len || !lode_buf_cstr(&o->b)) {
    lode_buf_free(&o->b);
    return NULL;
  }
  size_t n;
  return (char *)lode_buf_steal(&o->b, &n);
}

int lode__fs_html_text(const char *src, size_t n, lode_buf *text, char **title) {
  sax_ctx c;
  memset(&c, 0, sizeof c);
  c.body.b = *text;
  lode_buf_init(&c.title.b, 0);
  lode_buf_init(&c.h1.b, 0);
  *title = NULL;
  pthread_once(&xml_once, xml_init);
  htmlParserCtxtPtr ctxt =
      n && n <= INT_MAX ? htmlCreateMemoryParserCtxt(src, (int)n) : NULL;
  if (n && !ctxt) {
    c.failed = 1;
  } else if (ctxt) {
    /* some reports (the decoder's) bypass the parser's handler: this
     * thread's global handlers stay quiet too */
    xmlSetGenericErrorFunc(NULL, quiet_generic);
    xmlSetStructuredErrorFunc(NULL, quiet);
    c.parser = ctxt;
    htmlSAXHandler h;
    memset(&h, 0, sizeof h);
    h.startElement = on_start;
    h.endElement = on_end;
    h.characters = on_text;
    h.ignorableWhitespace = on_text;
    h.cdataBlock = on_text; /* script and style bodies: dropped by on_text */
    h.serror = quiet;
    h.initialized = XML_SAX2_MAGIC; /* so serror is used; HTML events stay SAX1 */
    *ctxt->sax = h;
    ctxt->userData = &c;
    /* the bytes are UTF-8 (to_utf8 made them so): a <meta charset> must not
     * switch the decoder. RECOVER ends <script> and <style> only at their
     * own end tag (else any "</x" inside ends them, and the code leaks into
     * the text), as lxml does. */
    htmlCtxtUseOptions(ctxt, HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                 HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC);
    xmlSwitchEncoding(ctxt, XML_CHAR_ENCODING_UTF8);
    htmlParseDocument(ctxt);
    while (c.depth) leave(&c);
    htmlFreeParserCtxt(ctxt);
  }
  free(c.st);
  if (!c.failed && !c.body.failed && !c.title.failed && !c.h1.failed) {
    /* the first <title>'s text, else (no <title>, or an empty one) the first <h1>'s */
    *title = steal_title(&c.title);
    if (!*title) *title = steal_title(&c.h1);
  }
  lode_buf_free(&c.title.b);
  lode_buf_free(&c.h1.b);
  *text = c.body.b;
  if (c.failed || c.body.failed || c.title.failed || c.h1.failed) return -1;
  return c.too_deep ? -2 : 0;
}

int lode__fs_load_html(const char *name, const char *p, size_t n, lode_fs_doc *out, char *err,
                       size_t errlen) {
  size_t un = n;
  char *utf8 = to_utf8(p, n, &un);
  lode_buf text;
  int rc = -1;
  out->mime = "text/html";
  if (utf8) {
    p = utf8;
    n = un;
  }
  /* libxml2 stops at a NUL byte (and reads a page starting with some as
   * UCS-4): they are dropped, as an HTML5 parser drops them in text */
  if (memchr(p, 0, n)) {
    char *copy = utf8 ? utf8 : malloc(n ? n : 1);
    if (!copy) {
      lode__fs_seterr(err, errlen, "%s: out of memory extracting HTML text", name);
      return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      if (p[i]) copy[k++] = p[i];
    utf8 = copy;
    p = copy;
    n = k;
  }
  /* at most the (UTF-8) source with each byte a 3-byte U+FFFD, plus separators */
  lode_buf_init(&text, n * 4 + 4096);
  int r = lode__fs_html_text(p, n, &text, &out->title);
  if (r == -2) {
    lode__fs_seterr(err, errlen, "%s: HTML elements nested over %d deep, not loaded", name,
                    MAX_DEPTH);
    goto done;
  }
  if (r != 0 || !lode_buf_cstr(&text)) {
    lode__fs_seterr(err, errlen, "%s: out of memory extracting HTML text", name);
    goto done;
  }
  out->text = (char *)lode_buf_steal(&text, &out->text_len);
  size_t tl = out->title ? strlen(out->title) : 0;
  if (lode__fs_make_utf8(&out->text, &out->text_len) != 0 ||
      (out->title && lode__fs_make_utf8(&out->title, &tl) != 0)) {
    lode__fs_seterr(err, errlen, "%s: out of memory extracting HTML text", name);
    goto done;
  }
  rc = 0;
done:
  lode_buf_free(&text);
  free(utf8);
  if (rc != 0) {
    lode_fs_doc_free(out);
    out->mime = "text/html";
  }
  return rc;
}
