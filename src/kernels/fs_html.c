/* fs_html.c - HTML to text with gumbo, a real HTML5 parser, so malformed
 * markup is recovered the way browsers do.
 *
 * What comes out is what a reader sees: script, style, noscript and template
 * contents are dropped, and so are elements marked `hidden`; block elements
 * become paragraph breaks, <br> and table rows line breaks, and whitespace
 * runs inside flowing text collapse to one space as rendering would (inside
 * <pre> and <textarea> it is kept). The title is the <title> text, else the
 * first <h1>. The tree is walked with an explicit stack, never recursion, so
 * deeply nested hostile markup cannot exhaust the C stack.
 *
 * gumbo's tree building costs O(tags x depth): many start tags scan the
 * whole stack of open elements. A hostile page of 100,000 nested <div>s takes
 * minutes, so a linear pre-scan estimates the nesting first and refuses pages
 * deeper than MAX_DEPTH (browsers cap the depth they build at 512 too). */
#include <glib.h>
#include <gumbo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "kernels/fs_int.h"

#define MAX_DEPTH 512

/* Elements that never nest (void) or whose end tag is usually omitted:
 * neither counts towards the depth estimate. */
static int depth_neutral(const char *name, size_t n) {
  static const char *const names[] = {
      "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
      "source", "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup",
      "tbody", "thead", "tfoot", "colgroup", "rp", "rt", "html", "head", "body", "basefont",
      "bgsound", "frame", "keygen", "image", NULL};
  for (int i = 0; names[i]; i++)
    if (strlen(names[i]) == n && !strncasecmp(names[i], name, n)) return 1;
  return 0;
}

static int is_raw_text(const char *name, size_t n) {
  static const char *const names[] = {"script", "style", "textarea", "title", "xmp",
                                      "plaintext", NULL};
  for (int i = 0; names[i]; i++)
    if (strlen(names[i]) == n && !strncasecmp(names[i], name, n)) return 1;
  return 0;
}

static const char *find_ci(const char *p, const char *end, const char *needle) {
  size_t k = strlen(needle);
  for (; p + k <= end; p++)
    if (!strncasecmp(p, needle, k)) return p;
  return NULL;
}

/* A linear estimate of the deepest element nesting; an over-estimate only
 * for markup that leaves non-optional end tags open. */
static size_t nesting_estimate(const char *p, size_t n) {
  const char *end = p + n;
  size_t depth = 0, max = 0;
  while ((p = memchr(p, '<', (size_t)(end - p)))) {
    p++;
    if (p < end && (*p == '!' || *p == '?')) {
      const char *close = (end - p >= 3 && !strncmp(p, "!--", 3)) ? find_ci(p, end, "-->")
                                                                   : memchr(p, '>', (size_t)(end - p));
      if (!close) break;
      p = close;
      continue;
    }
    int closing = p < end && *p == '/';
    if (closing) p++;
    const char *name = p;
    while (p < end && (g_ascii_isalnum(*p) || *p == '-' || *p == ':')) p++;
    size_t len = (size_t)(p - name);
    if (!len || !g_ascii_isalpha(*name)) continue;
    const char *gt = memchr(p, '>', (size_t)(end - p));
    if (!gt) break;
    int self_closing = gt > p && gt[-1] == '/';
    p = gt;
    if (depth_neutral(name, len)) continue;
    if (closing) {
      if (depth) depth--;
      continue;
    }
    if (self_closing) continue;
    if (is_raw_text(name, len)) {
      char close[16];
      snprintf(close, sizeof close, "</%.*s", (int)(len < 10 ? len : 10), name);
      const char *c = find_ci(p, end, close);
      if (!c) break;
      p = c;
      continue;
    }
    if (++depth > max) max = depth;
  }
  return max;
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
  if (o->b.len) {
    static const char *seps[] = {"", " ", "\n", "\n\n"};
    if (lode_buf_puts(&o->b, seps[o->pending]) != 0) o->failed = 1;
  }
  o->pending = SEP_NONE;
  if (lode_buf_append(&o->b, s, n) != 0) o->failed = 1;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Flowing text: each whitespace run becomes one pending space. */
static void put_flow(out_text *o, const char *s) {
  while (*s) {
    if (is_space(*s)) {
      while (is_space(*s)) s++;
      emit_sep(o, SEP_SPACE);
      continue;
    }
    const char *start = s;
    while (*s && !is_space(*s)) s++;
    put(o, start, (size_t)(s - start));
  }
}

static int is_block(GumboTag t) {
  switch (t) {
    case GUMBO_TAG_ADDRESS: case GUMBO_TAG_ARTICLE: case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_BLOCKQUOTE: case GUMBO_TAG_BODY: case GUMBO_TAG_CAPTION:
    case GUMBO_TAG_CENTER: case GUMBO_TAG_DD: case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_DIR: case GUMBO_TAG_DIV: case GUMBO_TAG_DL:
    case GUMBO_TAG_DT: case GUMBO_TAG_FIELDSET: case GUMBO_TAG_FIGCAPTION:
    case GUMBO_TAG_FIGURE: case GUMBO_TAG_FOOTER: case GUMBO_TAG_FORM: case GUMBO_TAG_H1:
    case GUMBO_TAG_H2: case GUMBO_TAG_H3: case GUMBO_TAG_H4: case GUMBO_TAG_H5:
    case GUMBO_TAG_H6: case GUMBO_TAG_HEADER: case GUMBO_TAG_HGROUP: case GUMBO_TAG_HR:
    case GUMBO_TAG_HTML: case GUMBO_TAG_LEGEND: case GUMBO_TAG_LI: case GUMBO_TAG_MAIN:
    case GUMBO_TAG_MENU: case GUMBO_TAG_NAV: case GUMBO_TAG_OL: case GUMBO_TAG_P:
    case GUMBO_TAG_PRE: case GUMBO_TAG_SECTION: case GUMBO_TAG_SUMMARY:
    case GUMBO_TAG_TABLE: case GUMBO_TAG_UL: case GUMBO_TAG_TEXTAREA:
      return 1;
    default:
      return 0;
  }
}

static int is_dropped(const GumboNode *n) {
  if (n->type == GUMBO_NODE_TEMPLATE) return 1;
  if (n->type != GUMBO_NODE_ELEMENT) return 0;
  switch (n->v.element.tag) {
    case GUMBO_TAG_SCRIPT: case GUMBO_TAG_STYLE: case GUMBO_TAG_NOSCRIPT:
    case GUMBO_TAG_TEMPLATE: case GUMBO_TAG_TITLE: case GUMBO_TAG_HEAD:
      return 1;
    default:
      return gumbo_get_attribute(&n->v.element.attributes, "hidden") != NULL;
  }
}

static const GumboVector *children(const GumboNode *n) {
  if (n->type == GUMBO_NODE_DOCUMENT) return &n->v.document.children;
  if (n->type == GUMBO_NODE_ELEMENT || n->type == GUMBO_NODE_TEMPLATE)
    return &n->v.element.children;
  return NULL;
}

typedef struct frame {
  const GumboNode *node;
  unsigned int next; /* next child to visit */
} frame;

/* Depth-first over the tree with an explicit stack. enter/leave get each
 * element; text gets each text node with the current <pre> depth. A NULL
 * callback is skipped; enter returning 0 skips the element's children. */
typedef struct walker {
  int (*enter)(void *ud, const GumboNode *n);
  void (*leave)(void *ud, const GumboNode *n);
  void (*text)(void *ud, const GumboNode *n);
  int stop;
} walker;

static int walk(const GumboNode *root, walker *w, void *ud) {
  size_t cap = 64, depth = 0;
  frame *st = malloc(cap * sizeof *st);
  if (!st) return -1;
  st[depth++] = (frame){root, 0};
  while (depth && !w->stop) {
    frame *f = &st[depth - 1];
    const GumboVector *kids = children(f->node);
    if (!kids || f->next >= kids->length) {
      if (w->leave && f->node->type == GUMBO_NODE_ELEMENT) w->leave(ud, f->node);
      depth--;
      continue;
    }
    const GumboNode *c = kids->data[f->next++];
    if (c->type == GUMBO_NODE_TEXT || c->type == GUMBO_NODE_CDATA ||
        c->type == GUMBO_NODE_WHITESPACE) {
      if (w->text) w->text(ud, c);
      continue;
    }
    if (!children(c)) continue; /* comments */
    if (w->enter && !w->enter(ud, c)) continue;
    if (depth == cap) {
      frame *ns = realloc(st, cap * 2 * sizeof *ns);
      if (!ns) {
        free(st);
        return -1;
      }
      st = ns;
      cap *= 2;
    }
    st[depth++] = (frame){c, 0};
  }
  free(st);
  return 0;
}

/* ---- body text ---- */
typedef struct body_ctx {
  out_text o;
  int pre;
} body_ctx;

static int body_enter(void *ud, const GumboNode *n) {
  body_ctx *c = ud;
  if (is_dropped(n)) return 0;
  if (n->type != GUMBO_NODE_ELEMENT) return 1;
  GumboTag t = n->v.element.tag;
  if (is_block(t)) emit_sep(&c->o, SEP_PARA);
  if (t == GUMBO_TAG_TR) emit_sep(&c->o, SEP_LINE);
  if (t == GUMBO_TAG_TD || t == GUMBO_TAG_TH) emit_sep(&c->o, SEP_SPACE);
  if (t == GUMBO_TAG_PRE || t == GUMBO_TAG_TEXTAREA || t == GUMBO_TAG_LISTING) c->pre++;
  return 1;
}

static void body_leave(void *ud, const GumboNode *n) {
  body_ctx *c = ud;
  GumboTag t = n->v.element.tag;
  if (is_block(t)) emit_sep(&c->o, SEP_PARA);
  if (t == GUMBO_TAG_TR) emit_sep(&c->o, SEP_LINE);
  if (t == GUMBO_TAG_BR) {
    /* two <br> in a row read as a paragraph break */
    if (c->o.pending == SEP_LINE)
      c->o.pending = SEP_PARA;
    else
      emit_sep(&c->o, SEP_LINE);
  }
  if ((t == GUMBO_TAG_PRE || t == GUMBO_TAG_TEXTAREA || t == GUMBO_TAG_LISTING) && c->pre)
    c->pre--;
}

static void body_text(void *ud, const GumboNode *n) {
  body_ctx *c = ud;
  const char *s = n->v.text.text;
  if (c->pre)
    put(&c->o, s, strlen(s));
  else
    put_flow(&c->o, s);
}

/* ---- title: the first <title>, else the first <h1> ---- */
typedef struct title_ctx {
  GumboTag want;
  const GumboNode *found;
} title_ctx;

static int title_enter(void *ud, const GumboNode *n) {
  title_ctx *c = ud;
  if (n->type == GUMBO_NODE_ELEMENT && n->v.element.tag == c->want && !c->found) {
    c->found = n;
    return 0;
  }
  return !is_dropped(n) || (n->type == GUMBO_NODE_ELEMENT && n->v.element.tag == GUMBO_TAG_HEAD);
}

static void title_text(void *ud, const GumboNode *n) {
  put_flow(&((body_ctx *)ud)->o, n->v.text.text);
}

static const GumboNode *find_first(const GumboNode *root, GumboTag tag, int *failed) {
  title_ctx c = {tag, NULL};
  walker w = {title_enter, NULL, NULL, 0};
  if (walk(root, &w, &c) != 0) *failed = 1;
  return c.found;
}

static char *element_text(const GumboNode *el, int *failed) {
  body_ctx c = {0};
  lode_buf_init(&c.o.b, 4096);
  walker w = {body_enter, body_leave, title_text, 0};
  /* the title element itself counts as "dropped" for the body walk: walk
   * its children directly */
  const GumboVector *kids = children(el);
  for (unsigned i = 0; kids && i < kids->length; i++) {
    const GumboNode *k = kids->data[i];
    if (k->type == GUMBO_NODE_TEXT || k->type == GUMBO_NODE_CDATA ||
        k->type == GUMBO_NODE_WHITESPACE)
      title_text(&c, k);
    else if (children(k) && !is_dropped(k) && walk(k, &w, &c) != 0)
      *failed = 1;
  }
  if (!c.o.b.len) {
    lode_buf_free(&c.o.b);
    return NULL;
  }
  lode_buf_cstr(&c.o.b);
  size_t n;
  return (char *)lode_buf_steal(&c.o.b, &n);
}

/* The input as UTF-8: gumbo reads UTF-8 only. Bytes that are not valid
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
  if (!u) return NULL; /* gumbo will replace what it cannot decode */
  char *copy = malloc(written + 1);
  if (copy) {
    memcpy(copy, u, written);
    copy[written] = 0;
    *out_len = written;
  }
  g_free(u);
  return copy;
}

int lode__fs_load_html(const char *name, const char *p, size_t n, lode_fs_doc *out, char *err,
                       size_t errlen) {
  size_t un = n;
  char *utf8 = to_utf8(p, n, &un);
  GumboOptions opts = kGumboDefaultOptions;
  body_ctx c = {0};
  int failed = 0, rc = -1;
  out->mime = "text/html";
  size_t depth = nesting_estimate(utf8 ? utf8 : p, utf8 ? un : n);
  if (depth > MAX_DEPTH) {
    lode__fs_seterr(err, errlen,
                    "%s: HTML elements nested about %zu deep (over %d), not loaded", name,
                    depth, MAX_DEPTH);
    free(utf8);
    return -1;
  }
  opts.max_errors = 0; /* we never read parse errors: do not keep them */
  GumboOutput *g = gumbo_parse_with_options(&opts, utf8 ? utf8 : p, utf8 ? un : n);
  if (!g) {
    lode__fs_seterr(err, errlen, "%s: cannot parse as HTML (out of memory)", name);
    goto done;
  }
  lode_buf_init(&c.o.b, n * 2 + 4096); /* text is never longer than its source */
  walker w = {body_enter, body_leave, body_text, 0};
  if (walk(g->root, &w, &c) != 0) failed = 1;
  lode_buf_cstr(&c.o.b);
  const GumboNode *t = find_first(g->root, GUMBO_TAG_TITLE, &failed);
  out->title = t ? element_text(t, &failed) : NULL;
  if (!out->title && (t = find_first(g->root, GUMBO_TAG_H1, &failed)))
    out->title = element_text(t, &failed);
  if (failed || c.o.failed || !c.o.b.p) {
    lode__fs_seterr(err, errlen, "%s: out of memory extracting HTML text", name);
    goto done;
  }
  out->text = (char *)lode_buf_steal(&c.o.b, &out->text_len);
  size_t tl = out->title ? strlen(out->title) : 0;
  if (lode__fs_make_utf8(&out->text, &out->text_len) != 0 ||
      (out->title && lode__fs_make_utf8(&out->title, &tl) != 0)) {
    lode__fs_seterr(err, errlen, "%s: out of memory extracting HTML text", name);
    goto done;
  }
  rc = 0;
done:
  if (g) gumbo_destroy_output(&opts, g);
  lode_buf_free(&c.o.b);
  free(utf8);
  if (rc != 0) {
    lode_fs_doc_free(out);
    out->mime = "text/html";
  }
  return rc;
}
