/* text_split.c - LangChain's RecursiveCharacterTextSplitter, in C.
 *
 * The reference is @langchain/textsplitters (JS) 1.x, chunk for chunk, with
 * lengths in code points:
 *  - separators are tried in order; the first one found in the text is used
 *    (or "" which splits into code points); oversized pieces recurse with the
 *    separators after it. When that list is empty JS splits by character, so
 *    do we. When no separator applies, oversized pieces are kept as they are
 *    (and, as in JS, not trimmed).
 *  - keep_separator (default, "start" placement) splits before every
 *    occurrence of the separator, overlapping ones included, like JS's
 *    text.split(/(?=sep)/); otherwise the text is split on non-overlapping
 *    occurrences and empty pieces are dropped.
 *  - pieces shorter than the size are merged by mergeSplits' rules, joined
 *    chunks are trimmed with JS String.prototype.trim's whitespace set.
 * Where JS diverges from the Python package by accident (it splits "" by
 * UTF-16 code units and can cut surrogate pairs) we follow Python: code
 * points. Pieces are (offset, length) spans into the working text; nothing is
 * copied unless a chunk is not a slice of the source. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "kernels/text_internal.h"

#define NONE ((size_t)-1)

/* ---- UTF-8 ---------------------------------------------------------------- */

size_t lode__text_utf8_seq(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) return (n >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
  if (c < 0xF0) {
    if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
    if (c == 0xED && p[1] >= 0xA0) return 0; /* surrogate */
    return 3;
  }
  if (c < 0xF5) {
    if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
        (p[3] & 0xC0) != 0x80)
      return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
    if (c == 0xF4 && p[1] >= 0x90) return 0; /* above U+10FFFF */
    return 4;
  }
  return 0;
}

size_t lode_text_utf8_invalid_at(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    /* ASCII fast path, 8 bytes at a time */
    while (i + 32 <= len) {
      uint64_t w[4];
      memcpy(w, p + i, 32);
      if ((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ull) break;
      i += 32;
    }
    while (i + 8 <= len) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= len) break;
    size_t k = lode__text_utf8_seq(p + i, len - i);
    if (k == 0) return i;
    i += k;
  }
  return len;
}

size_t lode_text_cp_count(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, cont = 0;
  /* A continuation byte is 10xxxxxx: bit 7 set, bit 6 clear. Mark those bits
   * in 8 bytes at once and add them up with a multiply (no popcount needed
   * on baseline x86-64). */
  const uint64_t hi = 0x8080808080808080ull, ones = 0x0101010101010101ull;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    uint64_t c = (w & ~(w << 1) & hi) >> 7;
    cont += (size_t)((c * ones) >> 56);
  }
  for (; i < len; i++) cont += (p[i] & 0xC0) == 0x80;
  return len - cont;
}

/* ---- JS trim() whitespace -------------------------------------------------- */

/* ECMAScript WhiteSpace + LineTerminator: TAB VT FF SP NBSP ZWNBSP, Zs, LF CR
 * LS PS. Sizes of such a character at the start of p, 0 if none. */
static size_t ws_at(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return 1;
  if (c < 0x80) return 0;
  if (n >= 2 && c == 0xC2 && p[1] == 0xA0) return 2;
  if (n < 3) return 0;
  if (c == 0xE1 && p[1] == 0x9A && p[2] == 0x80) return 3;
  if (c == 0xE2 && p[1] == 0x80 &&
      (p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF))
    return (p[2] >= 0x80) ? 3 : 0;
  if (c == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) return 3;
  if (c == 0xE3 && p[1] == 0x80 && p[2] == 0x80) return 3;
  if (c == 0xEF && p[1] == 0xBB && p[2] == 0xBF) return 3;
  return 0;
}

size_t lode__text_ws_prefix(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, k;
  while (i < n && (k = ws_at(p + i, n - i)) > 0) i += k;
  return i;
}

size_t lode__text_ws_suffix(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t e = n;
  while (e > 0) {
    if (ws_at(p + e - 1, 1) == 1) { e -= 1; continue; }
    if (e >= 2 && ws_at(p + e - 2, 2) == 2) { e -= 2; continue; }
    /* a 3-byte tail starting with a lead byte is one whole character */
    if (e >= 3 && p[e - 3] >= 0xE0 && ws_at(p + e - 3, 3) == 3) { e -= 3; continue; }
    break;
  }
  return n - e;
}

/* ---- chunk lists ---------------------------------------------------------- */

struct lode_text_chunks *lode__text_chunks_new(void) {
  return calloc(1, sizeof(struct lode_text_chunks));
}

void lode_text_chunks_free(struct lode_text_chunks *c) {
  if (!c) return;
  free(c->v);
  free(c->headers);
  free(c->arena);
  free(c->repaired);
  free(c);
}

size_t lode__text_arena_put(struct lode_text_chunks *c, const char *p, size_t n) {
  if (c->arena_cap - c->arena_len < n) {
    size_t cap = c->arena_cap ? c->arena_cap : 4096;
    while (cap - c->arena_len < n) {
      if (cap > SIZE_MAX / 2) return NONE;
      cap *= 2;
    }
    char *a = realloc(c->arena, cap);
    if (!a) return NONE;
    c->arena = a;
    c->arena_cap = cap;
  }
  size_t off = c->arena_len;
  if (n) memcpy(c->arena + off, p, n);
  c->arena_len += n;
  return off;
}

static struct lode_text_chunk *chunk_push(struct lode_text_chunks *c) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 64;
    struct lode_text_chunk *v = realloc(c->v, cap * sizeof *v);
    if (!v) return NULL;
    c->v = v;
    c->cap = cap;
  }
  struct lode_text_chunk *k = &c->v[c->n++];
  memset(k, 0, sizeof *k);
  k->priv_off = NONE;
  return k;
}

void lode__text_chunks_finish(struct lode_text_chunks *c,
                              const struct lode__text_work *w) {
  (void)w;
  /* an arena that never got a byte is NULL: empty names point at "" */
  for (size_t i = 0; i < c->n; i++)
    if (c->v[i].priv_off != NONE) c->v[i].text = c->arena + c->v[i].priv_off;
  for (size_t i = 0; i < c->nheaders; i++)
    c->headers[i].text = c->arena ? c->arena + c->headers[i].priv_off : "";
}

/* ---- working text ------------------------------------------------------- */

int lode__text_work_init(struct lode__text_work *w, const char *s, size_t len,
                         struct lode_text_chunks *out, char *err) {
  memset(w, 0, sizeof *w);
  size_t bad = lode_text_utf8_invalid_at(s, len);
  if (bad == len) {
    w->t = s;
    w->src = s;
    w->len = len;
    return 0;
  }
  /* each invalid byte becomes U+FFFD (3 bytes) */
  if (len > (SIZE_MAX / 8) / 3) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "text: input too large to repair");
    return -1;
  }
  char *r = malloc(len * 3 + 1);
  size_t *map = malloc((len * 3 + 1) * sizeof *map);
  if (!r || !map) {
    free(r);
    free(map);
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "text: out of memory");
    return -1;
  }
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, o = 0;
  while (i < len) {
    size_t k = lode__text_utf8_seq(p + i, len - i);
    if (k == 0) {
      memcpy(r + o, "\xEF\xBF\xBD", 3);
      map[o] = map[o + 1] = map[o + 2] = i;
      o += 3;
      i += 1;
    } else {
      for (size_t j = 0; j < k; j++) map[o + j] = i;
      memcpy(r + o, s + i, k);
      o += k;
      i += k;
    }
  }
  map[o] = len;
  r[o] = 0;
  w->t = r;
  w->src = s;
  w->len = o;
  w->map = map;
  w->repaired = 1;
  out->repaired = r; /* the list owns it: chunk texts point into it */
  return 0;
}

void lode__text_work_free(struct lode__text_work *w) {
  free(w->map);
  w->map = NULL;
}

/* ---- the splitter ------------------------------------------------------- */

struct piece {
  size_t off, len, cp;
};

struct ctx {
  const struct lode__text_work *w;
  const char *src; /* the original input (for exactness checks) */
  const char *const *seps;
  const size_t *seplens;
  size_t nsep;
  size_t size, overlap;
  int keep;
  struct lode_text_chunks *out;
  size_t hfirst, hn;
  struct level *levels; /* one merge window per separator (recursion depth) */
};

static const char *const default_seps[] = {"\n\n", "\n", " ", ""};
static const size_t default_seplens[] = {2, 1, 1, 0};

static size_t src_off(const struct ctx *c, size_t woff) {
  return c->w->map ? c->w->map[woff] : woff;
}

/* Appends the working-text span [a, b) as a chunk. */
static int emit_span(struct ctx *c, size_t a, size_t b) {
  struct lode_text_chunk *k = chunk_push(c->out);
  if (!k) return -1;
  k->start = src_off(c, a);
  k->end = src_off(c, b);
  k->text = c->w->t + a;
  k->len = b - a;
  k->exact = !c->w->map ||
             (k->end - k->start == k->len && memcmp(c->src + k->start, k->text, k->len) == 0);
  k->header_first = c->hfirst;
  k->nheaders = c->hn;
  return 0;
}

/* The working-text span [a, b), trimmed; nothing when it is all blank. */
static int emit_trimmed(struct ctx *c, size_t a, size_t b) {
  const char *t = c->w->t;
  size_t lead = lode__text_ws_prefix(t + a, b - a);
  if (lead == b - a) return 0;
  return emit_span(c, a + lead, b - lode__text_ws_suffix(t + a + lead, b - a - lead));
}

/* joinDocs: pieces [first, first+n) joined by msep, trimmed, dropped when
 * empty. In keep/char mode pieces are adjacent, so the chunk is a slice. */
static int emit_join(struct ctx *c, const struct piece *p, size_t first, size_t n,
                     const char *msep, size_t mseplen) {
  size_t a = p[first].off, b = p[first + n - 1].off + p[first + n - 1].len;
  int contiguous = 1;
  for (size_t k = first; k + 1 < first + n && contiguous; k++)
    contiguous = p[k].off + p[k].len + mseplen == p[k + 1].off;
  const char *t = c->w->t;
  if (contiguous) return emit_trimmed(c, a, b);
  size_t lead = lode__text_ws_prefix(t + a, b - a);
  size_t trail = lead == b - a ? 0 : lode__text_ws_suffix(t + a + lead, b - a - lead);
  /* repeated separators were collapsed: the text is built, the span covers
   * the source range it came from */
  struct lode_text_chunks *o = c->out;
  size_t mark = o->arena_len;
  for (size_t k = first; k < first + n; k++) {
    if (k > first && lode__text_arena_put(o, msep, mseplen) == NONE) return -1;
    if (lode__text_arena_put(o, t + p[k].off, p[k].len) == NONE) return -1;
  }
  size_t jl = o->arena_len - mark;
  size_t jlead = lode__text_ws_prefix(o->arena + mark, jl);
  if (jlead == jl) {
    o->arena_len = mark;
    return 0;
  }
  size_t jtrail = lode__text_ws_suffix(o->arena + mark + jlead, jl - jlead);
  struct lode_text_chunk *k = chunk_push(o);
  if (!k) return -1;
  k->start = src_off(c, a + lead);
  k->end = src_off(c, lead == b - a ? b : b - trail);
  k->priv_off = mark + jlead;
  k->len = jl - jlead - jtrail;
  k->exact = 0;
  k->header_first = c->hfirst;
  k->nheaders = c->hn;
  return 0;
}

/* mergeSplits, streamed: pieces are fed one at a time to the window of
 * their recursion level ([first, n) of `v`), which grows until adding the
 * next piece would pass the size, is then emitted and shrunk from the front
 * to at most `overlap` (and until the next piece fits). Only the window is
 * kept, so a level holds at most size + 1 pieces whatever the text, and its
 * buffer is reused by every range split at that level: no allocation per
 * piece or per range. */
struct level {
  struct piece *v;
  size_t first, n, cap, total;
};

static int win_push(struct level *lv, size_t off, size_t len, size_t cp) {
  if (lv->n == lv->cap) {
    if (lv->first > 0) { /* slide the window down instead of growing */
      memmove(lv->v, lv->v + lv->first, (lv->n - lv->first) * sizeof *lv->v);
      lv->n -= lv->first;
      lv->first = 0;
    } else {
      size_t nc = lv->cap ? lv->cap * 2 : 64;
      struct piece *nv = realloc(lv->v, nc * sizeof *nv);
      if (!nv) return -1;
      lv->v = nv;
      lv->cap = nc;
    }
  }
  lv->v[lv->n].off = off;
  lv->v[lv->n].len = len;
  lv->v[lv->n].cp = cp;
  lv->n++;
  return 0;
}

/* One piece of fewer than `size` code points into the level's window. */
static int merge_add(struct ctx *c, struct level *lv, size_t off, size_t len, size_t cp,
                     const char *msep, size_t mseplen, size_t msepcp) {
  size_t cur = lv->n - lv->first;
  if (lv->total + cp + cur * msepcp > c->size && cur > 0) {
    if (emit_join(c, lv->v, lv->first, cur, msep, mseplen) < 0) return -1;
    while (lv->total > c->overlap ||
           (lv->total + cp + (lv->n - lv->first) * msepcp > c->size && lv->total > 0)) {
      lv->total -= lv->v[lv->first].cp;
      lv->first++;
    }
  }
  lv->total += cp;
  return win_push(lv, off, len, cp);
}

/* The end of a run of small pieces: what the window holds becomes a chunk. */
static int merge_flush(struct ctx *c, struct level *lv, const char *msep, size_t mseplen) {
  int rc = 0;
  if (lv->n > lv->first) rc = emit_join(c, lv->v, lv->first, lv->n - lv->first, msep, mseplen);
  lv->first = lv->n = lv->total = 0;
  return rc;
}

/* Bits set in a 16-bit mask (SWAR: baseline x86-64 has no popcnt and
 * __builtin_popcount would call libgcc). */
static inline unsigned pop16(unsigned x) {
  x = x - ((x >> 1) & 0x5555u);
  x = (x & 0x3333u) + ((x >> 2) & 0x3333u);
  x = (x + (x >> 4)) & 0x0F0Fu;
  return (x + (x >> 8)) & 0x1Fu;
}

/* The next byte `ch` in t[i, end) (or end), adding to *cont the UTF-8
 * continuation bytes passed on the way: separators are found and code points
 * counted in one pass, 16 bytes at a time with SSE2. */
static size_t scan_byte(const unsigned char *t, size_t i, size_t end, unsigned char ch,
                        size_t *cont) {
#ifdef __SSE2__
  const __m128i vc = _mm_set1_epi8((char)ch), m = _mm_set1_epi8((char)0xC0),
                k = _mm_set1_epi8((char)0x80);
  for (; i + 16 <= end; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(t + i));
    unsigned eq = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vc));
    unsigned ct = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(v, m), k));
    if (eq) {
      unsigned z = (unsigned)__builtin_ctz(eq);
      *cont += pop16(ct & ((1u << z) - 1));
      return i + z;
    }
    if (ct) *cont += pop16(ct);
  }
#endif
  for (; i < end; i++) {
    if (t[i] == ch) return i;
    *cont += (t[i] & 0xC0) == 0x80;
  }
  return end;
}

/* Whether s (sn >= 1 bytes) occurs in h: the first occurrence or NULL. */
static const char *find(const char *h, size_t hn, const char *s, size_t sn) {
  if (sn == 1) return memchr(h, (unsigned char)s[0], hn);
  return memmem(h, hn, s, sn);
}

/* Cursor over the occurrences of one separator (sl >= 1 bytes) in a range,
 * keeping the count of continuation bytes before its position. */
struct sepscan {
  const unsigned char *t;
  size_t pos, end, cont; /* cont: continuation bytes in [range start, pos) */
  const char *s;
  size_t sl;
};

/* The next occurrence at or after sc->pos (sc->pos moves there), or end.
 * The first byte is found by scan_byte; after many false starts memmem
 * takes over (its skipped bytes counted separately), which keeps
 * adversarial input linear. */
static size_t sep_next(struct sepscan *sc) {
  const unsigned char *t = sc->t;
  int tries = 0;
  for (;;) {
    if (sc->end - sc->pos < sc->sl) {
      size_t rest = sc->end - sc->pos;
      sc->cont += rest - lode_text_cp_count((const char *)t + sc->pos, rest);
      sc->pos = sc->end;
      return sc->end;
    }
    if (++tries > 64) {
      const char *f = memmem(t + sc->pos, sc->end - sc->pos, sc->s, sc->sl);
      size_t to = f ? (size_t)((const unsigned char *)f - t) : sc->end;
      sc->cont += (to - sc->pos) - lode_text_cp_count((const char *)t + sc->pos, to - sc->pos);
      sc->pos = to;
      return to;
    }
    size_t p = scan_byte(t, sc->pos, sc->end, (unsigned char)sc->s[0], &sc->cont);
    sc->pos = p;
    if (p == sc->end) return p;
    if (p + sc->sl <= sc->end && memcmp(t + p + 1, sc->s + 1, sc->sl - 1) == 0) return p;
    sc->cont += (t[p] & 0xC0) == 0x80;
    sc->pos = p + 1;
  }
}

/* Moves the cursor over the bytes [pos, to), counting them. */
static void sep_skip(struct sepscan *sc, size_t to) {
  const unsigned char *t = sc->t;
  for (; sc->pos < to; sc->pos++) sc->cont += (t[sc->pos] & 0xC0) == 0x80;
}

/* _splitText with "" as the separator: every piece is one code point, so
 * mergeSplits runs over the text directly instead of over a piece per
 * character (a long unbroken run would otherwise cost 24 bytes a byte).
 * Pieces of `size` or more (only when size is 1) are pushed untrimmed, as in
 * JS. */
static int split_chars(struct ctx *c, size_t off, size_t end) {
  const unsigned char *t = (const unsigned char *)c->w->t;
  if (c->size <= 1) {
    for (size_t i = off; i < end;) {
      size_t k = lode__text_utf8_seq(t + i, end - i);
      if (k == 0) k = 1; /* cannot happen: the working text is valid */
      if (emit_span(c, i, i + k) < 0) return -1;
      i += k;
    }
    return 0;
  }
  size_t first = off, total = 0;
  for (size_t d = off; d < end;) {
    size_t k = lode__text_utf8_seq(t + d, end - d);
    if (k == 0) k = 1;
    if (total + 1 > c->size && total > 0) {
      if (emit_trimmed(c, first, d) < 0) return -1;
      while (total > c->overlap || (total + 1 > c->size && total > 0)) {
        size_t f = lode__text_utf8_seq(t + first, end - first);
        first += f ? f : 1;
        total--;
      }
    }
    total++;
    d += k;
  }
  if (end > first) return emit_trimmed(c, first, end);
  return 0;
}

/* _splitText(text[off, off+len), separators[from..]) */
static int split_rec(struct ctx *c, size_t off, size_t len, size_t from) {
  const char *t = c->w->t;
  size_t sep = NONE, next = NONE;
  if (from < c->nsep) {
    for (size_t i = from; i < c->nsep; i++) {
      if (c->seplens[i] == 0) { sep = i; break; }
      if (find(t + off, len, c->seps[i], c->seplens[i])) { sep = i; next = i + 1; break; }
    }
    if (sep == NONE) sep = c->nsep - 1; /* none found: the last one */
  }
  /* JS: an empty list (from == nsep) splits by character, like "" */
  if (sep == NONE || c->seplens[sep] == 0) return split_chars(c, off, off + len);
  const char *s = c->seps[sep];
  size_t sl = c->seplens[sep];
  struct level *lv = &c->levels[sep];
  lv->first = lv->n = lv->total = 0;

  /* merged with "" when the separator stays in the pieces */
  const char *msep = c->keep ? "" : s;
  size_t mseplen = c->keep ? 0 : sl;
  size_t msepcp = lode_text_cp_count(msep, mseplen);
  size_t end = off + len;
  struct sepscan sc = {(const unsigned char *)t, off, end, 0, s, sl};
  /* keep: text.split(/(?=sep)/), a piece starts at every occurrence after
   * the first byte, overlapping occurrences included; else text.split(sep)
   * with empty pieces dropped */
  size_t a = off, cont_a = 0;
  if (c->keep && end > off) sep_skip(&sc, off + 1);
  while (a < end) {
    size_t b = sep_next(&sc);
    size_t plen = b - a, pcp = plen - (sc.cont - cont_a);
    if (plen > 0) {
      if (pcp < c->size) {
        if (merge_add(c, lv, a, plen, pcp, msep, mseplen, msepcp) < 0) return -1;
      } else {
        /* a run of small pieces ends; the big one is split further (its
         * level is a deeper one, so this window survives the recursion) */
        if (merge_flush(c, lv, msep, mseplen) < 0) return -1;
        if (next == NONE) {
          if (emit_span(c, a, b) < 0) return -1;
        } else if (split_rec(c, a, plen, next) < 0) {
          return -1;
        }
      }
    }
    if (b == end) break;
    if (c->keep) {
      a = b;
      cont_a = sc.cont;
      sep_skip(&sc, b + 1);
    } else {
      sep_skip(&sc, b + sl);
      a = b + sl;
      cont_a = sc.cont;
    }
  }
  return merge_flush(c, lv, msep, mseplen);
}

void lode_text_split_opts_default(struct lode_text_split_opts *o) {
  memset(o, 0, sizeof *o);
  o->size = 1000;
  o->overlap = 200;
  o->keep_separator = 1;
}

int lode_text_split_opts_check(const struct lode_text_split_opts *o, char *err) {
  if (o->size <= 0) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "split: size must be > 0, got %ld", o->size);
    return -1;
  }
  if (o->overlap < 0) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "split: overlap must be >= 0, got %ld", o->overlap);
    return -1;
  }
  if (o->overlap >= o->size) {
    if (err)
      snprintf(err, LODE_TEXT_ERRLEN,
               "split: cannot have overlap (%ld) >= size (%ld); make the overlap smaller",
               o->overlap, o->size);
    return -1;
  }
  if (o->nseparators > LODE_TEXT_MAX_SEPARATORS) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "split: at most %d separators", LODE_TEXT_MAX_SEPARATORS);
    return -1;
  }
  for (size_t i = 0; i < o->nseparators; i++) {
    if (o->separator_lens[i] && !o->separators[i]) {
      if (err) snprintf(err, LODE_TEXT_ERRLEN, "split: separator %zu is NULL", i + 1);
      return -1;
    }
    if (lode_text_utf8_invalid_at(o->separators[i] ? o->separators[i] : "", o->separator_lens[i]) !=
        o->separator_lens[i]) {
      if (err) snprintf(err, LODE_TEXT_ERRLEN, "split: separator %zu is not valid UTF-8", i + 1);
      return -1;
    }
  }
  return 0;
}

int lode__text_split_range(const struct lode__text_work *w,
                           const struct lode_text_split_opts *o,
                           struct lode_text_chunks *out, size_t off,
                           size_t len, size_t header_first, size_t nheaders) {
  struct ctx c = {0};
  c.w = w;
  c.src = w->src;
  if (o->nseparators) {
    c.seps = o->separators;
    c.seplens = o->separator_lens;
    c.nsep = o->nseparators;
  } else {
    c.seps = default_seps;
    c.seplens = default_seplens;
    c.nsep = 4;
  }
  c.size = (size_t)o->size;
  c.overlap = (size_t)o->overlap;
  c.keep = o->keep_separator != 0;
  c.out = out;
  c.hfirst = header_first;
  c.hn = nheaders;
  if (len == 0) return 0;
  struct level lv[LODE_TEXT_MAX_SEPARATORS];
  memset(lv, 0, sizeof lv);
  c.levels = lv;
  int rc = split_rec(&c, off, len, 0);
  for (size_t i = 0; i < c.nsep; i++) free(lv[i].v);
  return rc;
}

int lode_text_split(const char *s, size_t len, const struct lode_text_split_opts *o,
                    struct lode_text_chunks **out, char *err) {
  struct lode__text_work w;
  struct lode_text_chunks *res = NULL;
  int rc = -1;
  *out = NULL;
  if (lode_text_split_opts_check(o, err) < 0) return -1;
  res = lode__text_chunks_new();
  if (!res) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "split: out of memory");
    return -1;
  }
  if (lode__text_work_init(&w, s, len, res, err) < 0) goto done;
  if (lode__text_split_range(&w, o, res, 0, w.len, 0, 0) < 0) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "split: out of memory");
    goto done;
  }
  lode__text_chunks_finish(res, &w);
  *out = res;
  res = NULL;
  rc = 0;
done:
  lode__text_work_free(&w);
  lode_text_chunks_free(res);
  return rc;
}
