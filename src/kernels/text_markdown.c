/* text_markdown.c - split a markdown document by its headers, then by size.
 *
 * md4c finds the headers (ATX "# x" and setext "x\n===" alike), so a "#"
 * line inside a fenced or indented code block, an HTML block or a paragraph
 * continuation is never one. Only top-level headers count (not those inside
 * block quotes or list items), like LangChain's MarkdownHeaderTextSplitter,
 * which looks at line starts. md4c reports text, not positions: a header's
 * place is found from the source pointers its text callbacks receive. Each
 * section [header line, next kept header line) is then split with the
 * recursive splitter; its chunks carry the header path (the enclosing
 * headers, outermost first). */
#include <md4c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "kernels/text_internal.h"

#define MAX_HEADER_TEXT 1024

struct hdr {
  int level;
  size_t line_start, body_start;
  size_t name_off, name_len; /* header text in the list's arena */
};

struct mdctx {
  const char *t;
  size_t len;
  int depth;        /* block nesting: the document itself is depth 1 */
  int in_header;    /* level of the top-level header being read, or 0 */
  size_t first, last; /* source span covered by the header's text */
  size_t cursor;    /* end of the furthest text seen so far */
  char name[MAX_HEADER_TEXT];
  size_t name_len;
  struct hdr *h;
  size_t n, cap;
  struct lode_text_chunks *out;
  int oom;
};

static size_t line_start(const char *t, size_t i) {
  while (i > 0 && t[i - 1] != '\n') i--;
  return i;
}

static size_t next_line(const char *t, size_t len, size_t i) {
  const char *nl = memchr(t + i, '\n', len - i);
  return nl ? (size_t)(nl - t) + 1 : len;
}

/* Does the line at i open an ATX header: up to 3 spaces, 1-6 '#', then a
 * blank or the line end? */
static int is_atx(const char *t, size_t len, size_t i) {
  size_t sp = 0, n = 0;
  while (i < len && t[i] == ' ' && sp < 3) i++, sp++;
  while (i < len && t[i] == '#' && n < 7) i++, n++;
  return n >= 1 && n <= 6 &&
         (i >= len || t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r');
}

static int enter_block(MD_BLOCKTYPE type, void *detail, void *ud) {
  struct mdctx *c = ud;
  c->depth++;
  if (type == MD_BLOCK_H && c->depth == 2) {
    c->in_header = (int)((MD_BLOCK_H_DETAIL *)detail)->level;
    c->first = (size_t)-1;
    c->last = 0;
    c->name_len = 0;
  }
  return 0;
}

static void name_add(struct mdctx *c, const char *p, size_t n) {
  if (n > MAX_HEADER_TEXT - c->name_len) n = MAX_HEADER_TEXT - c->name_len;
  memcpy(c->name + c->name_len, p, n);
  c->name_len += n;
}

static int leave_block(MD_BLOCKTYPE type, void *detail, void *ud) {
  struct mdctx *c = ud;
  (void)detail;
  c->depth--;
  if (type != MD_BLOCK_H || c->depth != 1 || !c->in_header) return 0;
  struct hdr h = {0};
  h.level = c->in_header;
  c->in_header = 0;
  if (c->first == (size_t)-1) {
    /* an empty ATX header ("##"): no text, so find its line, the first
     * line from the cursor that starts with '#' */
    size_t i = line_start(c->t, c->cursor);
    for (;;) {
      size_t j = i, sp = 0;
      while (j < c->len && c->t[j] == ' ' && sp < 3) j++, sp++;
      if (j >= c->len || c->t[j] == '#') break;
      i = next_line(c->t, c->len, i);
      if (i >= c->len) break;
    }
    h.line_start = i;
    h.body_start = next_line(c->t, c->len, i);
  } else {
    h.line_start = line_start(c->t, c->first);
    h.body_start = next_line(c->t, c->len, c->last);
    if (!is_atx(c->t, c->len, h.line_start)) /* setext: the underline follows */
      h.body_start = next_line(c->t, c->len, h.body_start);
  }
  c->cursor = h.body_start;
  /* the name, trimmed */
  size_t lead = lode__text_ws_prefix(c->name, c->name_len);
  size_t trail = lode__text_ws_suffix(c->name + lead, c->name_len - lead);
  /* the name was cut at MAX_HEADER_TEXT bytes: keep it valid UTF-8 */
  size_t nl = c->name_len - lead - trail;
  while (nl > 0 && lode_text_utf8_invalid_at(c->name + lead, nl) != nl) nl--;
  h.name_len = nl;
  h.name_off = lode__text_arena_put(c->out, c->name + lead, nl);
  if (h.name_off == (size_t)-1) {
    c->oom = 1;
    return 1;
  }
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 32;
    struct hdr *v = realloc(c->h, cap * sizeof *v);
    if (!v) {
      c->oom = 1;
      return 1;
    }
    c->h = v;
    c->cap = cap;
  }
  c->h[c->n++] = h;
  return 0;
}

static int enter_span(MD_SPANTYPE type, void *detail, void *ud) {
  (void)type, (void)detail, (void)ud;
  return 0;
}

static int text_cb(MD_TEXTTYPE type, const MD_CHAR *p, MD_SIZE size, void *ud) {
  struct mdctx *c = ud;
  /* md4c hands out pointers into the document, except for synthesised text
   * (e.g. the "\n" of code lines) */
  int inside = p >= c->t && p + size <= c->t + c->len;
  if (inside) {
    size_t a = (size_t)(p - c->t), b = a + size;
    if (b > c->cursor) c->cursor = b;
    if (c->in_header) {
      if (a < c->first) c->first = a;
      if (b > c->last) c->last = b;
    }
  }
  if (!c->in_header) return 0;
  if (type == MD_TEXT_SOFTBR || type == MD_TEXT_BR)
    name_add(c, " ", 1);
  else if (type != MD_TEXT_NULLCHAR)
    name_add(c, p, size);
  return 0;
}

void lode_text_markdown_opts_default(struct lode_text_markdown_opts *o) {
  lode_text_split_opts_default(&o->split);
  o->levels = 0x7E; /* 1..6 */
  o->strip_headers = 1;
}

/* Pushes the header path `stack[0..n)` into the list; returns its index. */
static size_t put_path(struct lode_text_chunks *out, const struct hdr *const *stack,
                       size_t n) {
  size_t first = out->nheaders;
  if (out->headers_cap - out->nheaders < n) {
    size_t cap = out->headers_cap ? out->headers_cap : 32;
    while (cap - out->nheaders < n) cap *= 2;
    struct lode_text_header *v = realloc(out->headers, cap * sizeof *v);
    if (!v) return (size_t)-1;
    out->headers = v;
    out->headers_cap = cap;
  }
  for (size_t i = 0; i < n; i++) {
    struct lode_text_header *h = &out->headers[out->nheaders++];
    h->text = NULL;
    h->priv_off = stack[i]->name_off;
    h->len = stack[i]->name_len;
    h->level = stack[i]->level;
  }
  return first;
}

int lode_text_split_markdown(const char *s, size_t len,
                             const struct lode_text_markdown_opts *o,
                             struct lode_text_chunks **out, char *err) {
  struct lode__text_work w;
  struct mdctx c;
  struct lode_text_chunks *res = NULL;
  const struct hdr *stack[6];
  size_t depth = 0;
  int rc = -1, oom = 0;
  *out = NULL;
  memset(&c, 0, sizeof c);
  memset(&w, 0, sizeof w);
  if (lode_text_split_opts_check(&o->split, err) < 0) return -1;
  if ((o->levels & 0x7E) == 0) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "split_markdown: levels must name some of 1..6");
    return -1;
  }
  if (len > (MD_SIZE)-1) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "split_markdown: document over 4 GiB");
    return -1;
  }
  res = lode__text_chunks_new();
  if (!res) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "split_markdown: out of memory");
    return -1;
  }
  if (lode__text_work_init(&w, s, len, res, err) < 0) goto done;

  MD_PARSER parser = {0};
  parser.flags = MD_DIALECT_COMMONMARK;
  parser.enter_block = enter_block;
  parser.leave_block = leave_block;
  parser.enter_span = enter_span;
  parser.leave_span = enter_span;
  parser.text = text_cb;
  c.t = w.t;
  c.len = w.len;
  c.out = res;
  if (md_parse(w.t, (MD_SIZE)w.len, &parser, &c) != 0 && !c.oom) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "split_markdown: md4c failed to parse the document");
    goto done;
  }
  if (c.oom) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "split_markdown: out of memory");
    goto done;
  }

  /* sections: the text before the first kept header, then one per header */
  size_t pos = 0, body = 0, pfirst = 0, pn = 0;
  for (size_t i = 0; i <= c.n; i++) {
    const struct hdr *h = NULL;
    if (i < c.n) {
      h = &c.h[i];
      if (!(o->levels & (1u << h->level)) || h->line_start < pos) continue;
    }
    size_t end = h ? h->line_start : w.len;
    size_t a = body > end ? end : body;
    if (lode__text_split_range(&w, &o->split, res, a, end - a, pfirst, pn) < 0) {
      oom = 1;
      goto done;
    }
    if (!h) break;
    while (depth > 0 && stack[depth - 1]->level >= h->level) depth--;
    stack[depth++] = h;
    pfirst = put_path(res, stack, depth);
    if (pfirst == (size_t)-1) {
      oom = 1;
      goto done;
    }
    pn = depth;
    pos = h->line_start;
    body = o->strip_headers ? h->body_start : h->line_start;
  }
  lode__text_chunks_finish(res, &w);
  *out = res;
  res = NULL;
  rc = 0;
done:
  if (rc < 0 && oom && err) snprintf(err, LODE_TEXT_ERRLEN, "split_markdown: out of memory");
  free(c.h);
  lode__text_work_free(&w);
  lode_text_chunks_free(res);
  return rc;
}
