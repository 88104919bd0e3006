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
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "kernels/fs_int.h"

#define MAX_DEPTH 512

/* The tag name at name[0, n) in lower case into out (n <= 10), else 0. */
static int lower_name(const char *name, size_t n, char out[11]) {
  if (n > 10) return 0;
  for (size_t i = 0; i < n; i++) out[i] = g_ascii_tolower(name[i]);
  out[n] = 0;
  return 1;
}

static int in_list(const char *lower, const char *const *names) {
  for (int i = 0; names[i]; i++)
    if (!strcmp(names[i], lower)) return 1;
  return 0;
}

/* Elements that never nest (void) or whose end tag is usually omitted:
 * neither counts towards the depth estimate. By length, for speed. */
static int depth_neutral(const char *name, size_t n) {
  static const char *const by_len[9][16] = {
      {NULL},
      {"p", NULL},
      {"br", "hr", "li", "dt", "dd", "tr", "td", "th", "rp", "rt", NULL},
      {"col", "img", "wbr", NULL},
      {"area", "base", "link", "meta", "html", "head", "body", NULL},
      {"embed", "input", "param", "track", "tbody", "thead", "tfoot", "frame", "image", NULL},
      {"source", "option", "keygen", NULL},
      {"bgsound", NULL},
      {"colgroup", "optgroup", "basefont", NULL}};
  char low[11];
  if (n < 1 || n > 8 || !lower_name(name, n, low)) return 0;
  return in_list(low, by_len[n]);
}

static int is_raw_text(const char *name, size_t n) {
  static const char *const names[] = {"script", "style", "textarea", "title", "xmp",
                                      "plaintext", NULL};
  char low[11];
  return n >= 3 && lower_name(name, n, low) && in_list(low, names);
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
    default: {
      /* gumbo_get_attribute, without its strcasecmp for every attribute */
      const GumboVector *attrs = &n->v.element.attributes;
      for (unsigned i = 0; i < attrs->length; i++) {
        const GumboAttribute *a = attrs->data[i];
        /* the tokenizer lower-cases attribute names */
        if (a->name[0] == 'h' && a->name[1] == 'i' && !strcmp(a->name, "hidden")) return 1;
      }
      return 0;
    }
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
  const GumboNode *stop_after; /* the walk ends once this element is left */
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
      if (f->node == w->stop_after) w->stop = 1;
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
    if (w->enter && !w->enter(ud, c)) {
      if (c == w->stop_after) w->stop = 1; /* skipped: as good as left */
      continue;
    }
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
  /* elements starting before this offset are the open elements a piece
   * re-creates (see pieces below): entered in an earlier piece already */
  size_t synth_end;
} body_ctx;

static int body_enter(void *ud, const GumboNode *n) {
  body_ctx *c = ud;
  if (is_dropped(n)) return 0;
  if (n->type != GUMBO_NODE_ELEMENT) return 1;
  if (n->v.element.start_pos.offset < c->synth_end) return 1;
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
  walker w = {title_enter, NULL, NULL, 0, NULL};
  if (walk(root, &w, &c) != 0) *failed = 1;
  return c.found;
}

static char *element_text(const GumboNode *el, int *failed) {
  body_ctx c = {0};
  lode_buf_init(&c.o.b, 4096);
  walker w = {body_enter, body_leave, title_text, 0, NULL};
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


/* ---- pieces ----
 * gumbo's tree takes about ten times the bytes of its source (a node is 128
 * bytes, and every tag, attribute and text run is a node or a string), so an
 * 8 MB page would need some 100 MB at once. A page over PIECE_BYTES * 3/2 is
 * therefore parsed in pieces of about PIECE_BYTES, each tree freed before the
 * next is built, with exactly the text and title a parse of the whole page
 * gives. That holds because a piece only ends where the parser's whole state
 * is known and can be re-created:
 *
 * - right after the end tag of an element C that closed C itself (C was
 *   inserted normally: no foster parenting, no adoption agency);
 * - C's ancestors below <body> are plain containers (is_chain_tag) that are
 *   neither hidden nor <pre>: the stack of open elements is then
 *   html, body, those containers, and the insertion mode "in body";
 * - every formatting element (<a>, <b>, <code>, ...) begun before that point
 *   was closed by its own end tag before it: the list of active formatting
 *   elements is empty (save for markers, which act the same as none);
 * - no <form> (the form element pointer is null), <template>, foster-parented
 *   or adoption-agency node came before it in the piece;
 * - the page is in no-quirks mode, and no <html, <body or <frameset comes
 *   after it (they could change html, body or the frameset-ok flag).
 *
 * The next piece is parsed as "<!DOCTYPE html><html><head></head><body>"
 * followed by bare start tags of the open containers and the rest of the
 * page, which puts gumbo in that same state; the re-created elements are not
 * entered again by the text walk, and a piece's walk stops after leaving C,
 * so the open elements are left only once, by the piece that closes them.
 * A piece with no such point is parsed again twice as long, up to 8 times
 * PIECE_BYTES; past that (and on quirks-mode pages) the rest of the page is
 * parsed whole, as before. lode__fs_html_text takes the piece size, so tests can force
 * pieces on small pages and compare them with whole parses. */
#define PIECE_BYTES ((size_t)128 << 10)

static const char SYNTH_HEAD[] = "<!DOCTYPE html><html><head></head><body>";

/* Containers whose bare start tag, in "in body" with them as the only open
 * elements below body, just inserts them (closing a <p> in button scope or
 * an earlier <li>/<dd>/<dt>, neither of which can be open then). */
static int is_chain_tag(GumboTag t) {
  switch (t) {
    case GUMBO_TAG_ADDRESS: case GUMBO_TAG_ARTICLE: case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_BLOCKQUOTE: case GUMBO_TAG_CENTER: case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_DIV: case GUMBO_TAG_DL: case GUMBO_TAG_FIELDSET:
    case GUMBO_TAG_FIGCAPTION: case GUMBO_TAG_FIGURE: case GUMBO_TAG_FOOTER:
    case GUMBO_TAG_HEADER: case GUMBO_TAG_HGROUP: case GUMBO_TAG_MAIN: case GUMBO_TAG_NAV:
    case GUMBO_TAG_OL: case GUMBO_TAG_SECTION: case GUMBO_TAG_SUMMARY: case GUMBO_TAG_UL:
    case GUMBO_TAG_LI: case GUMBO_TAG_DD: case GUMBO_TAG_DT:
      return 1;
    default:
      return 0;
  }
}

static int is_formatting(GumboTag t) {
  switch (t) {
    case GUMBO_TAG_A: case GUMBO_TAG_B: case GUMBO_TAG_BIG: case GUMBO_TAG_CODE:
    case GUMBO_TAG_EM: case GUMBO_TAG_FONT: case GUMBO_TAG_I: case GUMBO_TAG_NOBR:
    case GUMBO_TAG_S: case GUMBO_TAG_SMALL: case GUMBO_TAG_STRIKE: case GUMBO_TAG_STRONG:
    case GUMBO_TAG_TT: case GUMBO_TAG_U:
      return 1;
    default:
      return 0;
  }
}

static int is_html(const GumboNode *n) {
  return n->type == GUMBO_NODE_ELEMENT && n->v.element.tag_namespace == GUMBO_NAMESPACE_HTML;
}

/* Where the end tag that closed HTML element n ends (an offset into buf), if
 * that end tag is n's own and n was not closed implicitly; else 0. */
static size_t own_end(const GumboNode *n, const char *buf, size_t len) {
  if (!is_html(n) || n->v.element.tag == GUMBO_TAG_UNKNOWN ||
      (n->parse_flags & GUMBO_INSERTION_IMPLICIT_END_TAG))
    return 0;
  const GumboStringPiece *t = &n->v.element.original_end_tag;
  const char *name = gumbo_normalized_tagname(n->v.element.tag);
  size_t k = strlen(name);
  if (!t->data || t->data < buf || t->length > len || t->data + t->length > buf + len ||
      t->length < k + 3 || t->data[0] != '<' || t->data[1] != '/' ||
      strncasecmp(t->data + 2, name, k))
    return 0;
  char after = t->data[2 + k];
  if (after != '>' && after != '/' && !is_space(after)) return 0;
  return (size_t)(t->data + t->length - buf);
}

/* What of a piece's tree rules split points out. */
typedef struct scan_ctx {
  const char *buf;
  size_t len;
  size_t bad_from; /* a split point must not lie after this offset */
  size_t *iv;      /* [start, end) of properly closed formatting elements */
  size_t niv, ivcap;
  size_t *el;      /* start and end (where the token closing it begins) of each element */
  size_t nel, elcap;
  int oom;
} scan_ctx;

static int push_pair(size_t **v, size_t *n, size_t *cap, size_t a, size_t b) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 1024;
    size_t *nv = realloc(*v, c * 2 * sizeof *nv);
    if (!nv) return -1;
    *v = nv;
    *cap = c;
  }
  (*v)[2 * *n] = a;
  (*v)[2 * *n + 1] = b;
  (*n)++;
  return 0;
}

static int scan_enter(void *ud, const GumboNode *n) {
  scan_ctx *s = ud;
  const GumboElement *e = &n->v.element;
  size_t at = e->start_pos.offset;
  if (push_pair(&s->el, &s->nel, &s->elcap, at, e->end_pos.offset) != 0) s->oom = 1;
  /* gumbo does not flag every foster-parented or moved node: the check of
   * the open elements in split_ok is what rules those cases out */
  int bad = n->type == GUMBO_NODE_TEMPLATE ||
            (n->parse_flags & (GUMBO_INSERTION_ADOPTION_AGENCY_CLONED |
                               GUMBO_INSERTION_ADOPTION_AGENCY_MOVED |
                               GUMBO_INSERTION_FOSTER_PARENTED | GUMBO_INSERTION_FROM_ISINDEX)) ||
            (is_html(n) && (e->tag == GUMBO_TAG_FORM || e->tag == GUMBO_TAG_TEMPLATE));
  if (!bad && is_html(n) && is_formatting(e->tag)) {
    size_t end = own_end(n, s->buf, s->len);
    if (!end)
      bad = 1;
    else if (push_pair(&s->iv, &s->niv, &s->ivcap, at, end) != 0)
      s->oom = 1;
  }
  if (bad && at < s->bad_from) s->bad_from = at;
  return 1;
}

static int open_at(const GumboNode *n, size_t p) {
  return n->v.element.start_pos.offset < p && n->v.element.end_pos.offset >= p;
}

/* May the piece end at p, with `open` (html, body, the containers) the
 * elements open there? */
static int split_ok(const scan_ctx *s, size_t p, const GumboNode *const *open, size_t nopen) {
  if (p > s->bad_from) return 0;
  for (size_t i = 0; i < s->niv; i++)
    if (s->iv[2 * i] < p && p < s->iv[2 * i + 1]) return 0;
  /* they are open at p, and nothing else is */
  for (size_t i = 0; i < nopen; i++)
    if (!open_at(open[i], p)) return 0;
  size_t count = 0;
  for (size_t i = 0; i < s->nel; i++)
    if (s->el[2 * i] < p && s->el[2 * i + 1] >= p && ++count > nopen) return 0;
  return count == nopen;
}

static const GumboNode *last_element_child(const GumboNode *n) {
  const GumboVector *kids = children(n);
  for (unsigned i = kids ? kids->length : 0; i > 0; i--) {
    const GumboNode *k = kids->data[i - 1];
    if (k->type == GUMBO_NODE_ELEMENT || k->type == GUMBO_NODE_TEMPLATE) return k;
  }
  return NULL;
}

/* The element whose own end tag ends the piece at the latest point after
 * min_p where it may end (see above), or NULL; *chain gets the open
 * containers below body (outermost first) and *nchain their number. */
static const GumboNode *find_split(const GumboOutput *g, const scan_ctx *s, size_t min_p,
                                   const GumboNode **chain, size_t *nchain, size_t *p_out) {
  const GumboNode *html = g->root, *body = last_element_child(html);
  if (!html || !is_html(html) || is_dropped(html) || !body || !is_html(body) ||
      body->v.element.tag != GUMBO_TAG_BODY || is_dropped(body))
    return NULL;
  const GumboNode *spine[MAX_DEPTH + 3];
  size_t depth = 0, tries = 0;
  spine[depth++] = html;
  spine[depth++] = body;
  for (;;) {
    const GumboNode *k = last_element_child(spine[depth - 1]);
    if (!k || depth == MAX_DEPTH + 3 || !is_html(k) || !is_chain_tag(k->v.element.tag) ||
        is_dropped(k) || (k->parse_flags & ~GUMBO_INSERTION_IMPLICIT_END_TAG) ||
        own_end(k, s->buf, s->len))
      break;
    spine[depth++] = k;
  }
  while (depth > 1) {
    const GumboVector *kids = children(spine[depth - 1]);
    for (unsigned i = kids->length; i > 0; i--) {
      const GumboNode *c = kids->data[i - 1];
      if (c->type != GUMBO_NODE_ELEMENT || c->parse_flags != GUMBO_INSERTION_NORMAL) continue;
      size_t p = own_end(c, s->buf, s->len);
      if (!p) continue;
      if (p <= min_p) return NULL; /* the earlier ones end earlier still */
      if (split_ok(s, p, spine, depth)) {
        for (size_t j = 2; j < depth; j++) chain[j - 2] = spine[j];
        *nchain = depth - 2;
        *p_out = p;
        return c;
      }
      if (++tries == 64) return NULL; /* a page hostile to splitting: parse it whole */
    }
    depth--;
  }
  return NULL;
}

/* Where splitting may start: after the last "<html", "<body" or "<frameset"
 * of the page (any case; inside comments and scripts too, to be safe). */
static size_t split_floor(const char *p, size_t n) {
  static const char *const names[] = {"html", "body", "frameset"};
  size_t floor = 0;
  for (const char *q = p, *end = p + n; (q = memchr(q, '<', (size_t)(end - q))); q++) {
    char c = (char)(q + 1 < end ? q[1] | 0x20 : 0);
    if (c != 'h' && c != 'b' && c != 'f') continue;
    for (int i = 0; i < 3; i++) {
      size_t k = strlen(names[i]);
      if ((size_t)(end - q) > k && !strncasecmp(q + 1, names[i], k)) floor = (size_t)(q - p) + 1;
    }
  }
  return floor;
}

/* gumbo's memory: one bump arena per page, emptied between pieces. gumbo
 * makes a malloc call for every node, attribute, tag name and text run and
 * frees them one by one afterwards; from an arena both cost next to nothing,
 * and a piece's tree reuses the memory of the previous one. Blocks gumbo
 * frees while parsing (grown string buffers, about 15% of the bytes) are
 * only reclaimed when the arena is emptied. */
typedef struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  max_align_t data[];
} arena_block;

typedef struct arena {
  arena_block *head;  /* the block being filled first; the ones after it are full */
  arena_block *spare; /* emptied blocks, reused before new ones are made */
} arena;

#define ARENA_BLOCK (((size_t)1 << 20) - sizeof(arena_block))

/* Emptied standard blocks kept by each thread for its next page (up to
 * ARENA_KEEP of them), so small pages do not map and fault in fresh memory
 * every time. */
#define ARENA_KEEP 4
static _Thread_local arena_block *kept;
static _Thread_local int nkept;
static pthread_key_t kept_key; /* its destructor frees a finishing thread's blocks */
static pthread_once_t kept_once = PTHREAD_ONCE_INIT;
static int kept_ok;

static void kept_release(void *unused) {
  (void)unused;
  while (kept) {
    arena_block *b = kept;
    kept = b->next;
    free(b);
  }
  nkept = 0;
}

static void kept_init(void) { kept_ok = pthread_key_create(&kept_key, kept_release) == 0; }

/* Keeps an emptied block for this thread's next page, or frees it. */
static void keep_block(arena_block *b) {
  pthread_once(&kept_once, kept_init);
  if (!kept_ok || nkept >= ARENA_KEEP || pthread_setspecific(kept_key, &kept) != 0) {
    free(b);
    return;
  }
  b->next = kept;
  kept = b;
  nkept++;
}

static arena_block *arena_block_new(size_t cap) {
  if (cap == ARENA_BLOCK && kept) {
    arena_block *b = kept;
    kept = b->next;
    nkept--;
    b->used = 0;
    return b;
  }
  arena_block *b = malloc(sizeof *b + cap);
  /* gumbo does not check for NULL (nor does its default allocator): fail
   * here rather than write through it */
  if (!b) abort();
  b->cap = cap;
  b->used = 0;
  return b;
}

static void *arena_alloc(void *ud, size_t n) {
  arena *a = ud;
  n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  if (!n) n = sizeof(max_align_t);
  if (n > ARENA_BLOCK / 4) { /* a block of its own, behind the one being filled */
    arena_block *big = arena_block_new(n);
    big->used = n;
    if (a->head) {
      big->next = a->head->next;
      a->head->next = big;
    } else {
      big->next = NULL;
      a->head = big;
    }
    return big->data;
  }
  arena_block *b = a->head;
  if (!b || b->cap - b->used < n) {
    if (a->spare) {
      b = a->spare;
      a->spare = b->next;
      b->used = 0;
    } else {
      b = arena_block_new(ARENA_BLOCK);
    }
    b->next = a->head;
    a->head = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += n;
  return p;
}

static void arena_free(void *ud, void *p) {
  (void)ud;
  (void)p;
}

/* Keeps the blocks for the next piece. */
static void arena_reset(arena *a) {
  while (a->head) {
    arena_block *b = a->head;
    a->head = b->next;
    if (b->cap == ARENA_BLOCK) {
      b->next = a->spare;
      a->spare = b;
    } else {
      free(b); /* a single big block */
    }
  }
}

static void arena_destroy(arena *a) {
  arena_reset(a);
  while (a->spare) {
    arena_block *b = a->spare;
    a->spare = b->next;
    keep_block(b);
  }
}

/* The text of the first `tag` element (see find_first) if it starts before
 * `limit` (an offset into the piece); *seen tells whether there was one. */
static char *text_before(const GumboNode *root, GumboTag tag, size_t limit, int *seen,
                         int *failed) {
  const GumboNode *t = find_first(root, tag, failed);
  if (!t || t->v.element.start_pos.offset >= limit) return NULL;
  *seen = 1;
  return element_text(t, failed);
}

int lode__fs_html_text(const char *src, size_t n, size_t piece, lode_buf *text, char **title,
                       size_t *npieces) {
  body_ctx c = {0};
  c.o.b = *text;
  char *t_title = NULL, *t_h1 = NULL, *buf = NULL;
  const GumboNode **chain = NULL, **next_chain = NULL;
  size_t nchain = 0, start = 0, floor = 0;
  size_t want = piece;
  int failed = 0, quirks_ok = 0, seen_title = 0, seen_h1 = 0, whole = n <= piece + piece / 2;
  arena mem = {NULL, NULL};
  GumboOptions opts = kGumboDefaultOptions;
  opts.max_errors = 0; /* we never read parse errors: do not keep them */
  opts.allocator = arena_alloc;
  opts.deallocator = arena_free;
  opts.userdata = &mem;
  GumboTag *tags = NULL; /* the open containers, as tags (chain points into a freed tree) */
  if (!whole) floor = split_floor(src, n);
  if (!whole &&
      (!(chain = malloc((MAX_DEPTH + 2) * sizeof *chain)) ||
       !(next_chain = malloc((MAX_DEPTH + 2) * sizeof *next_chain)) ||
       !(tags = malloc((MAX_DEPTH + 2) * sizeof *tags))))
    failed = 1;
  while (!failed && start < n) {
    /* this piece: [start, end) of the page, after the re-created prefix */
    size_t end = whole || n - start <= want + want / 2 ? n : start + want;
    const char *p = src;
    size_t len = end, prefix = 0;
    if (start > 0) {
      lode_buf pb;
      lode_buf_init(&pb, 0);
      lode_buf_puts(&pb, SYNTH_HEAD);
      for (size_t i = 0; i < nchain; i++) lode_buf_printf(&pb, "<%s>", gumbo_normalized_tagname(tags[i]));
      prefix = pb.len;
      if (lode_buf_append(&pb, src + start, end - start) != 0) {
        lode_buf_free(&pb);
        failed = 1;
        break;
      }
      free(buf);
      buf = (char *)pb.p;
      p = buf;
      len = pb.len;
    }
    GumboOutput *g = gumbo_parse_with_options(&opts, p, len);
    if (npieces) ++*npieces;
    if (!g) {
      failed = 1;
      break;
    }
    if (start == 0)
      quirks_ok = g->document->v.document.doc_type_quirks_mode == GUMBO_DOCTYPE_NO_QUIRKS;
    const GumboNode *stop = NULL;
    size_t split = 0, nnext = 0;
    if (end < n && quirks_ok) {
      scan_ctx s = {p, len, (size_t)-1, NULL, 0, 0, NULL, 0, 0, 0};
      walker sw = {scan_enter, NULL, NULL, 0, NULL};
      if (walk(g->document, &sw, &s) != 0 || s.oom) failed = 1;
      size_t min_p = floor > start ? prefix + (floor - start) : prefix;
      if (!failed) stop = find_split(g, &s, min_p, next_chain, &nnext, &split);
      free(s.iv);
      free(s.el);
    }
    if (end < n && !stop) {
      /* no point to split at (a big table, say): again with a piece twice
       * as long, up to 8 times; then the rest of the page at once */
      arena_reset(&mem); /* the tree goes with it */
      want *= 2;
      if (!quirks_ok || want > 8 * piece) whole = 1;
      continue;
    }
    want = piece;
    c.synth_end = prefix;
    walker w = {body_enter, body_leave, body_text, 0, stop};
    if (walk(g->root, &w, &c) != 0) failed = 1;
    size_t limit = stop ? split : (size_t)-1;
    /* the first <title>'s text, else (no <title>, or an empty one) the first <h1>'s */
    if (!seen_title && !failed)
      t_title = text_before(g->root, GUMBO_TAG_TITLE, limit, &seen_title, &failed);
    if (!t_title && !seen_h1 && !failed)
      t_h1 = text_before(g->root, GUMBO_TAG_H1, limit, &seen_h1, &failed);
    for (size_t i = 0; i < nnext; i++) tags[i] = next_chain[i]->v.element.tag;
    nchain = nnext;
    arena_reset(&mem);
    start = stop ? start + (split - prefix) : n;
  }
  arena_destroy(&mem);
  free(buf);
  free(chain);
  free(next_chain);
  free(tags);
  if (t_title) {
    free(t_h1);
    *title = t_title;
  } else {
    *title = t_h1;
  }
  *text = c.o.b;
  return failed || c.o.failed ? -1 : 0;
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
  size_t depth = nesting_estimate(p, n);
  if (depth > MAX_DEPTH) {
    lode__fs_seterr(err, errlen,
                    "%s: HTML elements nested about %zu deep (over %d), not loaded", name,
                    depth, MAX_DEPTH);
    free(utf8);
    return -1;
  }
  /* the text is at most the (UTF-8) source with each byte turned into a
   * 3-byte U+FFFD, plus separators */
  lode_buf_init(&text, n * 4 + 4096);
  if (lode__fs_html_text(p, n, PIECE_BYTES, &text, &out->title, NULL) != 0 || !lode_buf_cstr(&text)) {
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
