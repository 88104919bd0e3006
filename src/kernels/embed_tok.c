/* embed_tok.c - the tokenizer.json subset model2vec models use (see
 * embed_tok.h). Text is handled as arrays of code points between the steps;
 * vocabulary look-ups hash UTF-8 bytes. Written from the behaviour of Hugging
 * Face tokenizers (normalizers/bert.rs, pre_tokenizers, models/wordpiece and
 * models/unigram Viterbi), not from its code.
 *
 * Ownership: a lode__tok owns its vocabulary arena, hash table and steps. */
#include "kernels/embed_tok.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#include "kernels/embed_tok_int.h"

/* ---- small helpers ------------------------------------------------------- */

static int cpv_push(cpv *a, int32_t c) {
  if (a->n == a->cap) {
    size_t nc = a->cap ? a->cap * 2 : 64;
    int32_t *p = realloc(a->v, nc * sizeof *p);
    if (!p) return -1;
    a->v = p;
    a->cap = nc;
  }
  a->v[a->n++] = c;
  return 0;
}

/* Decodes UTF-8 (invalid bytes become U+FFFD), at most max_cps code points. */
static int cpv_from_utf8(cpv *a, const char *s, size_t n, size_t max_cps) {
  const uint8_t *p = (const uint8_t *)s;
  size_t i = 0;
  a->n = 0;
  while (i < n && a->n < max_cps) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &c);
    if (k <= 0) {
      c = 0xFFFD;
      k = 1;
    }
    i += (size_t)k;
    if (cpv_push(a, c) != 0) return -1;
  }
  return 0;
}

static int is_ws(int32_t c) {
  if (c == ' ' || (c >= 9 && c <= 13) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
      (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
      c == 0x205F || c == 0x3000)
    return 1;
  return 0;
}

static int is_other(int32_t c) { /* Rust char::is_other: Cc Cf Cs Co Cn */
  if (c < 128) return c < 32 || c == 127;
  utf8proc_category_t k = utf8proc_category(c);
  return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CS ||
         k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CN;
}

static int is_punct(int32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126))
    return 1;
  if (c < 128) return 0;
  utf8proc_category_t k = utf8proc_category(c);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

static int is_cjk(int32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int is_wordch(int32_t c) { /* regex \w */
  if (c < 128)
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  utf8proc_category_t k = utf8proc_category(c);
  return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_NO) || k == UTF8PROC_CATEGORY_PC;
}

/* Unicode normalisation of a whole code-point array through utf8proc. */
static inline int32_t lower(int32_t c) {
  if (c < 128) return c >= 'A' && c <= 'Z' ? c + 32 : c;
  return utf8proc_tolower(c);
}

/* Combining marks (Mn) all lie at U+0300 and above. */
static inline int is_mn(int32_t c) {
  return c >= 0x300 && utf8proc_category(c) == UTF8PROC_CATEGORY_MN;
}

static int cpv_unicode(cpv *a, int opts) {
  size_t k = 0; /* ASCII is invariant under every normal form */
  while (k < a->n && a->v[k] < 128) k++;
  if (k == a->n) return 0;
  utf8proc_int32_t *buf = NULL;
  size_t cap = a->n * 4 + 16;
  for (;;) {
    buf = malloc(cap * sizeof *buf);
    if (!buf) return -1;
    utf8proc_ssize_t m = 0;
    for (size_t i = 0; i < a->n; i++) {
      utf8proc_ssize_t k = utf8proc_decompose_char(a->v[i], buf + m, (utf8proc_ssize_t)cap - m,
                                                   (utf8proc_option_t)opts, NULL);
      if (k < 0) {
        free(buf);
        return -1;
      }
      m += k;
      if ((size_t)m > cap) break;
    }
    if ((size_t)m <= cap) {
      utf8proc_ssize_t r = utf8proc_normalize_utf32(buf, m, (utf8proc_option_t)opts);
      if (r < 0) {
        free(buf);
        return -1;
      }
      a->n = 0;
      int rc = 0;
      for (utf8proc_ssize_t i = 0; i < r && rc == 0; i++) rc = cpv_push(a, buf[i]);
      free(buf);
      return rc;
    }
    free(buf);
    cap *= 2;
  }
}

/* ---- normalizers --------------------------------------------------------- */

static int norm_bert(const nstep *s, cpv *a, cpv *tmp) {
  tmp->n = 0;
  for (size_t i = 0; i < a->n; i++) {
    int32_t c = a->v[i];
    if (s->clean) {
      if (c == 0 || c == 0xFFFD) continue;
      if (c != '\t' && c != '\n' && c != '\r' && is_other(c)) continue;
      if (is_ws(c)) c = ' ';
    }
    if (s->chinese && is_cjk(c)) {
      if (cpv_push(tmp, ' ') || cpv_push(tmp, c) || cpv_push(tmp, ' ')) return -1;
      continue;
    }
    if (cpv_push(tmp, c)) return -1;
  }
  cpv t = *a;
  *a = *tmp;
  *tmp = t;
  if (s->strip_acc) {
    if (cpv_unicode(a, UTF8PROC_DECOMPOSE | UTF8PROC_STABLE) != 0) return -1;
    size_t w = 0;
    for (size_t i = 0; i < a->n; i++)
      if (!is_mn(a->v[i])) a->v[w++] = a->v[i];
    a->n = w;
  }
  if (s->lower)
    for (size_t i = 0; i < a->n; i++) a->v[i] = lower(a->v[i]);
  return 0;
}

static int norm_replace(const nstep *s, cpv *a, cpv *tmp) {
  if (s->kind == N_REPLACE) { /* most texts lack most patterns: skip the copy */
    if (s->pat.n == 0) return 0;
    size_t k = 0;
    while (k < a->n && a->v[k] != s->pat.v[0]) k++;
    if (k == a->n) return 0;
  }
  tmp->n = 0;
  size_t i = 0;
  while (i < a->n) {
    size_t m = 0;
    if (s->kind == N_REPLACE_WS) {
      while (i + m < a->n && is_ws(a->v[i + m])) m++;
    } else if (a->v[i] == s->pat.v[0] && i + s->pat.n <= a->n &&
               (s->pat.n == 1 || memcmp(a->v + i, s->pat.v, s->pat.n * sizeof(int32_t)) == 0)) {
      m = s->pat.n;
    }
    if (m) {
      for (size_t k = 0; k < s->content.n; k++)
        if (cpv_push(tmp, s->content.v[k])) return -1;
      i += m;
    } else if (cpv_push(tmp, a->v[i++])) {
      return -1;
    }
  }
  cpv t = *a;
  *a = *tmp;
  *tmp = t;
  return 0;
}

static int normalize(const lode__tok *t, cpv *a, cpv *tmp) {
  for (size_t k = 0; k < t->nn; k++) {
    const nstep *s = &t->ns[k];
    int rc = 0;
    switch (s->kind) {
    case N_BERT: rc = norm_bert(s, a, tmp); break;
    case N_LOWER:
      for (size_t i = 0; i < a->n; i++) a->v[i] = lower(a->v[i]);
      break;
    case N_STRIP: {
      size_t b = 0, e = a->n;
      if (s->left) while (b < e && is_ws(a->v[b])) b++;
      if (s->right) while (e > b && is_ws(a->v[e - 1])) e--;
      if (b > 0 && e > b) memmove(a->v, a->v + b, (e - b) * sizeof(int32_t));
      a->n = e - b;
      break;
    }
    case N_REPLACE:
    case N_REPLACE_WS: rc = norm_replace(s, a, tmp); break;
    case N_NFC: rc = cpv_unicode(a, UTF8PROC_STABLE | UTF8PROC_COMPOSE); break;
    case N_NFD: rc = cpv_unicode(a, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE); break;
    case N_NFKC: rc = cpv_unicode(a, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT); break;
    case N_NFKD:
      rc = cpv_unicode(a, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
      break;
    case N_STRIP_ACCENTS: {
      size_t w = 0;
      for (size_t i = 0; i < a->n; i++)
        if (!is_mn(a->v[i])) a->v[w++] = a->v[i];
      a->n = w;
      break;
    }
    }
    if (rc) return -1;
  }
  return 0;
}

/* ---- pre-tokenizers: segments are [start, end) pairs over the array ------ */

typedef struct segs {
  size_t *v; /* pairs */
  size_t n, cap;
} segs;

static int seg_push(segs *s, size_t b, size_t e) {
  if (b >= e) return 0;
  if (s->n + 2 > s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 64;
    size_t *p = realloc(s->v, nc * sizeof *p);
    if (!p) return -1;
    s->v = p;
    s->cap = nc;
  }
  s->v[s->n++] = b;
  s->v[s->n++] = e;
  return 0;
}

static int split_seg(const pstep *p, const int32_t *v, size_t b, size_t e, segs *out) {
  size_t start = b;
  for (size_t i = b; i < e; i++) {
    int32_t c = v[i];
    switch (p->kind) {
    case P_BERT:
      if (is_ws(c)) {
        if (seg_push(out, start, i)) return -1;
        start = i + 1;
      } else if (is_punct(c)) {
        if (seg_push(out, start, i) || seg_push(out, i, i + 1)) return -1;
        start = i + 1;
      }
      break;
    case P_WHITESPACE_SPLIT:
      if (is_ws(c)) {
        if (seg_push(out, start, i)) return -1;
        start = i + 1;
      }
      break;
    case P_WHITESPACE: /* \w+|[^\w\s]+ */
      if (is_ws(c)) {
        if (seg_push(out, start, i)) return -1;
        start = i + 1;
      } else if (i > start && is_wordch(c) != is_wordch(v[i - 1])) {
        if (seg_push(out, start, i)) return -1;
        start = i;
      }
      break;
    case P_METASPACE:
      if (p->split && c == p->repl && i > start) {
        if (seg_push(out, start, i)) return -1;
        start = i;
      }
      break;
    }
  }
  return seg_push(out, start, e);
}

static int pretokenize(const lode__tok *t, cpv *a, int first, segs *cur, segs *next) {
  cur->n = 0;
  if (seg_push(cur, 0, a->n)) return -1;
  for (size_t k = 0; k < t->np; k++) {
    const pstep *p = &t->ps[k];
    if (p->kind == P_METASPACE) { /* loader allows it first only: whole array */
      for (size_t i = 0; i < a->n; i++)
        if (a->v[i] == ' ') a->v[i] = p->repl;
      if ((p->prepend == 1 || (p->prepend == 2 && first)) && (a->n == 0 || a->v[0] != p->repl)) {
        if (cpv_push(a, 0)) return -1;
        memmove(a->v + 1, a->v, (a->n - 1) * sizeof(int32_t));
        a->v[0] = p->repl;
      }
      cur->n = 0;
      if (seg_push(cur, 0, a->n)) return -1;
    }
    next->n = 0;
    for (size_t i = 0; i < cur->n; i += 2)
      if (split_seg(p, a->v, cur->v[i], cur->v[i + 1], next)) return -1;
    segs s = *cur;
    *cur = *next;
    *next = s;
  }
  return 0;
}

/* ---- vocabulary ------------------------------------------------------------ */

static int32_t vocab_get_h(const lode__tok *t, const char *s, size_t n, uint64_t h) {
  for (size_t i = h & t->tabmask;; i = (i + 1) & t->tabmask) {
    const entry *e = &t->tab[i];
    if (e->id < 0) return -1;
    if (e->h == h && e->len == n && memcmp(t->arena + e->off, s, n) == 0) return e->id;
  }
}

static int32_t vocab_get(const lode__tok *t, const char *s, size_t n) {
  return vocab_get_h(t, s, n, XXH3_64bits(s, n));
}

/* Whether some piece is longer than s and starts with it: when none is, the
 * Viterbi scan from this position can stop (what a trie gives HF). */
static int is_prefix(const lode__tok *t, const char *s, size_t n, uint64_t h) {
  if (!t->ptab) return 1;
  for (size_t i = h & t->ptabmask;; i = (i + 1) & t->ptabmask) {
    const entry *e = &t->ptab[i];
    if (e->id < 0) return 0;
    if (e->h == h && e->len == n && memcmp(t->arena + e->off, s, n) == 0) return 1;
  }
}

/* ---- models ---------------------------------------------------------------- */

typedef struct wbuf { /* one pre-token as UTF-8 with code-point offsets */
  char *u8;
  size_t *off;
  char *key;
  size_t cap;
  double *best;
  int32_t *bid;
  size_t *from;
  lode__ids word;
} wbuf;

static int wbuf_fit(wbuf *w, size_t cps) {
  if (cps + 1 <= w->cap) return 0;
  size_t nc = (cps + 1) * 2;
  char *u8 = realloc(w->u8, nc * 4 + 8);
  if (u8) w->u8 = u8;
  char *key = realloc(w->key, nc * 4 + 40);
  if (key) w->key = key;
  size_t *off = realloc(w->off, nc * sizeof *off);
  if (off) w->off = off;
  double *best = realloc(w->best, nc * sizeof *best);
  if (best) w->best = best;
  int32_t *bid = realloc(w->bid, nc * sizeof *bid);
  if (bid) w->bid = bid;
  size_t *from = realloc(w->from, nc * sizeof *from);
  if (from) w->from = from;
  if (!u8 || !key || !off || !best || !bid || !from) return -1;
  w->cap = nc;
  return 0;
}

static int ids_push(lode__ids *ids, int32_t id) {
  if (ids->n == ids->cap) {
    size_t nc = ids->cap ? ids->cap * 2 : 64;
    int32_t *p = realloc(ids->v, nc * sizeof *p);
    if (!p) return -1;
    ids->v = p;
    ids->cap = nc;
  }
  ids->v[ids->n++] = id;
  return 0;
}

static void word_utf8(wbuf *w, const int32_t *v, size_t L) {
  size_t m = 0;
  for (size_t i = 0; i < L; i++) {
    w->off[i] = m;
    utf8proc_ssize_t k = utf8proc_encode_char(v[i], (utf8proc_uint8_t *)w->u8 + m);
    m += (size_t)(k > 0 ? k : 0);
  }
  w->off[L] = m;
}

/* Greedy longest-match-first; a word with an unmatched piece is one unknown
 * token (dropped). */
static int wordpiece(const lode__tok *t, wbuf *w, size_t L, lode__ids *ids) {
  if (L > t->max_word) return 0;
  size_t plen = strlen(t->prefix);
  w->word.n = 0;
  size_t start = 0;
  while (start < L) {
    size_t end = L;
    int32_t found = -1;
    while (end > start) {
      size_t nb = w->off[end] - w->off[start], kl = 0;
      if (start > 0) {
        memcpy(w->key, t->prefix, plen);
        kl = plen;
      }
      memcpy(w->key + kl, w->u8 + w->off[start], nb);
      found = vocab_get(t, w->key, kl + nb);
      if (found >= 0) break;
      end--;
    }
    if (found < 0) return 0;
    if (ids_push(&w->word, found)) return -1;
    start = end;
  }
  for (size_t i = 0; i < w->word.n; i++)
    if (ids_push(ids, w->word.v[i])) return -1;
  return 0;
}

/* Viterbi over the piece scores; positions no piece covers become one unknown
 * node of one code point scored min_score - 10, as HF tokenizers does. */
static int unigram(const lode__tok *t, wbuf *w, size_t L, lode__ids *ids) {
  double unk_score = t->min_score - UNK_PENALTY;
  for (size_t i = 0; i <= L; i++) w->bid[i] = -3; /* -3: unreached */
  w->best[0] = 0;
  for (size_t s = 0; s < L; s++) {
    if (s > 0 && w->bid[s] == -3) continue;
    int single = 0;
    for (size_t len = 1; len <= t->max_piece && s + len <= L; len++) {
      size_t nb = w->off[s + len] - w->off[s];
      uint64_t h = XXH3_64bits(w->u8 + w->off[s], nb);
      int32_t id = vocab_get_h(t, w->u8 + w->off[s], nb, h);
      int more = is_prefix(t, w->u8 + w->off[s], nb, h);
      if (id < 0) {
        if (!more) break;
        continue;
      }
      if (len == 1) single = 1;
      double sc = w->best[s] + t->scores[id];
      if (w->bid[s + len] == -3 || sc > w->best[s + len]) {
        w->best[s + len] = sc;
        w->bid[s + len] = id;
        w->from[s + len] = s;
      }
      if (!more) break;
    }
    if (!single) {
      double sc = w->best[s] + unk_score;
      if (w->bid[s + 1] == -3 || sc > w->best[s + 1]) {
        w->best[s + 1] = sc;
        w->bid[s + 1] = -2; /* unknown */
        w->from[s + 1] = s;
      }
    }
  }
  w->word.n = 0;
  for (size_t e = L; e > 0; e = w->from[e]) { /* backwards; reversed below */
    int32_t id = w->bid[e];
    if (id == -2 && t->byte_fallback) {
      size_t b = w->off[w->from[e]], nb = w->off[e] - b;
      int32_t bytes[4];
      int all = 1;
      for (size_t k = 0; k < nb && k < 4; k++) {
        char key[8];
        snprintf(key, sizeof key, "<0x%02X>", (unsigned)(uint8_t)w->u8[b + k]);
        bytes[k] = vocab_get(t, key, 6);
        if (bytes[k] < 0) all = 0;
      }
      if (all) {
        for (size_t k = nb; k > 0; k--)
          if (ids_push(&w->word, bytes[k - 1])) return -1;
        continue;
      }
    }
    if (id == -2) {
      /* consecutive unknown characters make one unknown token (HF's
       * fuse_unk); we walk backwards, so the last one pushed is the next */
      if (w->word.n > 0 && w->word.v[w->word.n - 1] == -2) continue;
    }
    if (ids_push(&w->word, id)) return -1;
  }
  for (size_t i = w->word.n; i > 0; i--) {
    int32_t id = w->word.v[i - 1];
    if (id == -2) id = t->unk_id; /* -1 when the model has none: dropped below */
    if (ids_push(ids, id)) return -1;
  }
  return 0;
}

typedef struct scratch {
  cpv a, tmp;
  segs cur, next;
  wbuf w;
} scratch;

/* Normalises, pre-tokenises and tokenises one piece of text (the text
 * between added tokens), appending known ids. */
static int encode_piece(const lode__tok *t, const int32_t *v, size_t len, int first, scratch *x,
                        lode__ids *ids, size_t start_n, size_t max) {
  x->a.n = 0;
  for (size_t i = 0; i < len; i++)
    if (cpv_push(&x->a, v[i])) return -1;
  if (normalize(t, &x->a, &x->tmp) || pretokenize(t, &x->a, first, &x->cur, &x->next)) return -1;
  for (size_t i = 0; i < x->cur.n && ids->n - start_n < max; i += 2) {
    size_t b = x->cur.v[i], L = x->cur.v[i + 1] - b;
    if (wbuf_fit(&x->w, L)) return -1;
    word_utf8(&x->w, x->a.v + b, L);
    size_t before = ids->n;
    if ((t->model == M_WORDPIECE ? wordpiece(t, &x->w, L, ids) : unigram(t, &x->w, L, ids)) != 0)
      return -1;
    /* model2vec drops the unknown token when the tokenizer model has an
     * `unk_token` (WordPiece); a Unigram model has only `unk_id`, so its
     * unknown tokens stay and are embedded like any other */
    size_t k = before;
    for (size_t j = before; j < ids->n; j++)
      if (ids->v[j] >= 0 && !(t->model == M_WORDPIECE && ids->v[j] == t->unk_id))
        ids->v[k++] = ids->v[j];
    ids->n = k;
  }
  return 0;
}

/* The longest added token starting at v (HF matches them leftmost-longest
 * on the raw text before normalising). */
static size_t match_added(const lode__tok *t, const int32_t *v, size_t n, int32_t *id) {
  size_t best = 0;
  for (size_t k = 0; k < t->nadded; k++) {
    const cpv *c = &t->added[k];
    if (c->n > best && c->n <= n && c->v[0] == v[0] &&
        memcmp(c->v, v, c->n * sizeof(int32_t)) == 0) {
      best = c->n;
      *id = t->added_id[k];
    }
  }
  return best;
}

int lode__tok_encode(const lode__tok *t, const char *s, size_t n, lode__ids *ids, size_t max) {
  cpv raw = {0};
  scratch x = {0};
  int rc = -1;
  size_t start_n = ids->n;
  /* model2vec cuts the text to max_length * median token length characters
   * before tokenising; doing the same keeps long inputs identical */
  size_t max_cps = (size_t)-1;
  if (t->median_len > 0 && max < (size_t)-1 / (size_t)t->median_len)
    max_cps = max * (size_t)t->median_len;
  if (cpv_from_utf8(&raw, s, n, max_cps)) goto done;
  size_t pos = 0, seg = 0;
  while (ids->n - start_n < max) {
    int32_t id = -1;
    size_t m = pos < raw.n && t->nadded ? match_added(t, raw.v + pos, raw.n - pos, &id) : 0;
    if (pos < raw.n && m == 0) {
      pos++;
      continue;
    }
    if (pos > seg && encode_piece(t, raw.v + seg, pos - seg, seg == 0, &x, ids, start_n, max))
      goto done;
    if (pos >= raw.n) break;
    if (!(t->model == M_WORDPIECE && id == t->unk_id) && ids_push(ids, id)) goto done;
    pos += m;
    seg = pos;
  }
  if (ids->n - start_n > max) ids->n = start_n + max;
  rc = 0;
done:
  free(raw.v);
  free(x.a.v);
  free(x.tmp.v);
  free(x.cur.v);
  free(x.next.v);
  free(x.w.u8);
  free(x.w.off);
  free(x.w.key);
  free(x.w.best);
  free(x.w.bid);
  free(x.w.from);
  free(x.w.word.v);
  return rc;
}

int32_t lode__tok_max_id(const lode__tok *t) { return t->max_id; }

void lode__tok_free(lode__tok *t) {
  if (!t) return;
  for (size_t i = 0; i < t->nn; i++) {
    free(t->ns[i].pat.v);
    free(t->ns[i].content.v);
  }
  for (size_t i = 0; i < t->nadded; i++) free(t->added[i].v);
  free(t->added);
  free(t->added_id);
  free(t->ns);
  free(t->ps);
  free(t->arena);
  free(t->tab);
  free(t->ptab);
  free(t->scores);
  free(t);
}

int lode__cpv_from_utf8(cpv *a, const char *s, size_t n, size_t max_cps) {
  return cpv_from_utf8(a, s, n, max_cps);
}

int32_t lode__vocab_get(const lode__tok *t, const char *s, size_t n) { return vocab_get(t, s, n); }
