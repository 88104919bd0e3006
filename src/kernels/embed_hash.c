/* embed_hash.c - the built-in "hash" embedder: signed feature hashing of
 * words, word pairs and character n-grams.
 *
 * Ownership: a lode__hash (word cache + accumulator) belongs to one embedder
 * and is used by one thread at a time; lode__hash_free releases it.
 *
 * Algorithm (documented for users in docs/embed.md; any change to the output
 * must bump lode_kernels_version, the model name and the golden checksum in
 * tests/c/test_embed.c):
 *   - words are maximal runs of letters, marks and digits (Unicode categories
 *     L*, M*, N*), lower-cased (ASCII directly, others with utf8proc's simple
 *     lower case); other bytes, including invalid UTF-8, separate words;
 *   - features per word w: the unigram w, the bigram (previous word, w), and
 *     the byte 3-, 4- and 5-grams of "<" w ">";
 *   - a word is hashed with XXH3-64 under a fixed seed; a bigram is
 *     mix64(prev * C ^ cur ^ seed) of its two word hashes; an n-gram is
 *     mix64 of its bytes packed little-endian xor a per-length seed; the low
 *     32 bits of a hash pick the dimension (multiply-shift), bit 63 the sign;
 *   - weights: unigram 1, bigram 1/2, each n-gram 1/4, summed EXACTLY: the
 *     accumulator counts quarters in int32, so the sum does not depend on the
 *     order of the additions (the word cache may replay features in any
 *     order, a SIMD tokeniser finds the same words as the scalar one) and is
 *     the same on every platform; it becomes float once per text.
 * Words longer than HASH_MAXW bytes contribute only their first HASH_MAXW
 * bytes (so a hostile single "word" costs O(n), not unbounded buffers); a
 * multi-byte character is kept only while the word has room for 4 bytes.
 *
 * Why it is fast: word boundaries are found 64 bytes at a time (a bit mask
 * of word bytes, SSE2 where available, a table otherwise: the same mask
 * either way) and listed a segment at a time, then the words are looked up;
 * a word of up to 16 bytes is its own cache key (its raw bytes, ASCII
 * lower-cased), read straight from the text, so a cached word, ASCII or
 * not, costs a key compare, a count and its bigram, in registers; its
 * unigram and n-gram features are added once per text, times the count,
 * and all additions go through one flat pending list (the bigrams as they
 * come, the counted words' features scaled by SIMD when the text ends).
 * tests/c/test_embed_hash.c holds all of it to a plain reference, bit for
 * bit, and tests/c/test_embed.c pins the exact output bits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kernels/embed_internal.h"

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#define HOT_INLINE inline __attribute__((always_inline))
#else
#define NOINLINE
#define HOT_INLINE inline
#endif

#define HASH_MAXW 128
#define SEED_WORD 0x6c6f64652d773175ULL   /* "lode-w1u" */
#define SEED_BIGRAM 0x6c6f64652d773262ULL /* "lode-w2b" */
#define SEED_NGRAM3 0x6c6f64652d636833ULL /* "lode-ch3" */
#define SEED_NGRAM4 0x6c6f64652d636834ULL /* "lode-ch4" */
#define SEED_NGRAM5 0x6c6f64652d636835ULL /* "lode-ch5" */
/* weights in quarters */
#define W_WORD 4
#define W_BIGRAM 2
#define W_NGRAM 1
/* A word adds at most 4 + 2 + 3 * (HASH_MAXW + 2) < 512 quarters to one
 * dimension, so after 2^21 words an int32 could near overflow: the
 * accumulator is then flushed into the float vector (at points that depend
 * on the word count only, hence deterministic). */
#define FLUSH_WORDS (1u << 21)

/* Per byte: the lower-cased byte for ASCII letters and digits, 0 for
 * separators and for bytes >= 0x80 (decoded as UTF-8 by the caller). A
 * constant, so threads share it without any initialisation race. */
static const uint8_t ascii_word[256] = {
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
     48,  49,  50,  51,  52,  53,  54,  55,  56,  57,   0,   0,   0,   0,   0,   0,
      0,  97,  98,  99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122,   0,   0,   0,   0,   0,
      0,  97,  98,  99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122,   0,   0,   0,   0,   0,
    /* 0x80..0xff: 0 */
};

/* A feature as the cache and the pending list hold it: its dimension
 * (dims <= 65536) and its signed weight in quarters, 16 bits each, in this
 * order in memory (so a 16-bit SIMD multiply by (1, c) scales the weight by
 * a count, see drain, and adding it is two loads and an add). */
typedef struct feat_t {
  uint16_t d;
  int16_t w;
} feat_t;

_Static_assert(sizeof(feat_t) == 4, "feat_t is two 16-bit halves");

static inline feat_t feature(uint64_t dims, uint64_t h, int w) {
  feat_t f;
  f.d = (uint16_t)(((h & 0xffffffffu) * dims) >> 32);
  f.w = (int16_t)((h >> 63) ? -w : w);
  return f;
}

static inline void add_feature(int32_t *acc, feat_t f) { acc[f.d] += f.w; }

/* n-gram and bigram mixer: times the 64-bit golden-ratio constant, high half
 * folded into the low half (the dimension comes from the low 32 bits, so it
 * depends on every input bit; the sign is bit 63). A bijection, so distinct
 * n-grams never share a full hash. */
static inline uint64_t mix64(uint64_t x) {
  x *= 0x9e3779b97f4a7c15ULL;
  return x ^ (x >> 32);
}

static inline uint64_t load_le64(const uint8_t *p) {
  uint64_t x;
  memcpy(&x, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  x = __builtin_bswap64(x);
#endif
  return x;
}

/* The word cache: a word's unigram and n-gram features depend on the word
 * alone, so they are computed once per embedder and replayed. Direct-mapped;
 * the key is the word's raw bytes, ASCII lower-cased, zero-padded to 16 (see
 * key16). */
#define CACHE_BITS 12
#define CACHE_MAXW 16
/* Repeated words are added once per text: a hit only counts the word (and
 * notes its slot the first time), and the counted words' features are added
 * times their count when the text ends (or the note list is full, or a slot
 * is reused). Integer sums do not care about the order. Function words make
 * up about half of English tokens, so this saves a good part of the adds. */
#define TOUCH_MAX 1024
#define SLOT_MAXF (3 * CACHE_MAXW)
/* Features waiting to be added: the bigrams of the words seen, and at the
 * end of a text the counted words' features times their counts. Added in
 * one plain loop (acc[dim] += weight, nothing else), which runs at about one
 * feature per cycle; added where they arise, each addition would wait on
 * the lookups around it. PEND_MAX entries, plus room for one more slot. */
#define PEND_MAX 2048
/* A count up to this scales a word's weights (at most 4) in 16 bits. */
#define CNT_SIMD 8191
/* What a lookup touches (32 bytes, half a cache line); the features sit in
 * a parallel array, read only when a text's counts are added. */
typedef struct hslot {
  uint64_t k0, k1; /* k0 == 0: empty (a word is never empty) */
  uint64_t h;      /* XXH3 of the word */
  uint32_t cnt;    /* occurrences not yet added; zero between texts */
  uint32_t nf;     /* unigram + n-grams: 3L - 2 (2 for a 1-byte word) */
} hslot;

struct lode__hash {
  int64_t dims;
  int32_t *acc;      /* dims quarters; all zero between texts */
  hslot *slot;       /* 1 << CACHE_BITS */
  feat_t *feat;      /* SLOT_MAXF per slot */
  uint16_t *touched; /* TOUCH_MAX slots with a count (some maybe zero again) */
  size_t nt;
  feat_t *pend; /* PEND_MAX + SLOT_MAXF features to add */
  size_t np;
};

int lode__hash_new(int64_t dims, int with_cache, lode__hash **out) {
  lode__hash *h = calloc(1, sizeof *h);
  *out = NULL;
  if (!h) return -1;
  h->dims = dims;
  h->acc = calloc((size_t)dims, sizeof *h->acc);
  if (with_cache) {
    h->slot = calloc((size_t)1 << CACHE_BITS, sizeof *h->slot);
    /* zeroed: drain copies whole vectors past a slot's last feature */
    h->feat = calloc((size_t)SLOT_MAXF << CACHE_BITS, sizeof *h->feat);
    h->touched = malloc(TOUCH_MAX * sizeof *h->touched);
  }
  h->pend = malloc((PEND_MAX + SLOT_MAXF) * sizeof *h->pend);
  if (!h->acc || !h->pend || (with_cache && (!h->slot || !h->feat || !h->touched))) {
    lode__hash_free(h);
    return -1;
  }
  *out = h;
  return 0;
}

void lode__hash_free(lode__hash *h) {
  if (!h) return;
  free(h->acc);
  free(h->slot);
  free(h->feat);
  free(h->touched);
  free(h->pend);
  free(h);
}

/* Where a key lives: any function of it would do (it only decides which
 * words share a slot); one multiply keeps the lookup's chain short. */
static inline size_t slot_index(uint64_t k0, uint64_t k1) {
  return (size_t)(((k0 ^ (k1 << 29 | k1 >> 35)) * 0x9e3779b97f4a7c15ULL) >> (64 - CACHE_BITS));
}

/* The unigram and n-gram features of word wb[1..wl] (wb[0] == '<'; wb has
 * 8 spare bytes past wl + 1) into f; returns their count (3 * wl - 2, or 2
 * for a 1-byte word). */
static size_t word_feats(uint64_t dims, uint8_t *wb, size_t wl, uint64_t h, feat_t *f) {
  size_t nf = 0, m = wl + 2, i = 0;
  f[nf++] = feature(dims, h, W_WORD);
  wb[wl + 1] = '>';
  memset(wb + m, 0, 8);
  for (; i + 5 <= m; i++) {
    uint64_t x = load_le64(wb + i);
    f[nf++] = feature(dims, mix64((x & 0xffffffULL) ^ SEED_NGRAM3), W_NGRAM);
    f[nf++] = feature(dims, mix64((x & 0xffffffffULL) ^ SEED_NGRAM4), W_NGRAM);
    f[nf++] = feature(dims, mix64((x & 0xffffffffffULL) ^ SEED_NGRAM5), W_NGRAM);
  }
  for (; i + 3 <= m; i++) { /* the word's last 4- and 3-grams */
    uint64_t x = load_le64(wb + i);
    f[nf++] = feature(dims, mix64((x & 0xffffffULL) ^ SEED_NGRAM3), W_NGRAM);
    if (i + 4 <= m) f[nf++] = feature(dims, mix64((x & 0xffffffffULL) ^ SEED_NGRAM4), W_NGRAM);
  }
  return nf;
}

/* Per-text state. */
typedef struct hstate {
  lode__hash *hs;
  float *v;
  uint64_t dims, prev; /* prev: the previous word's hash * C (bigrams) */
  int have_prev;
  size_t words; /* since the last flush (size_t: no alias of the uint32_t stores) */
  int flushed;    /* v holds part of the sum */
  uint8_t wb[HASH_MAXW + 32];
} hstate;

/* v += acc / 4; acc = 0 (restrict: the compiler may vectorise it). */
static void flush_into(float *restrict v, int32_t *restrict acc, uint64_t dims) {
  for (uint64_t k = 0; k < dims; k++) {
    v[k] += (float)acc[k] * 0.25f;
    acc[k] = 0;
  }
}

static void drain(lode__hash *hs);

/* Adds the pending features. */
static void apply(lode__hash *hs) {
  int32_t *restrict acc = hs->acc;
  const feat_t *restrict pf = hs->pend;
  size_t np = hs->np, k = 0;
  for (; k + 4 <= np; k += 4) { /* unrolled: a quarter faster */
    add_feature(acc, pf[k]);
    add_feature(acc, pf[k + 1]);
    add_feature(acc, pf[k + 2]);
    add_feature(acc, pf[k + 3]);
  }
  for (; k < np; k++) add_feature(acc, pf[k]);
  hs->np = 0;
}

static void flush(hstate *st) {
  drain(st->hs);
  flush_into(st->v, st->hs->acc, st->dims);
  st->words = 0;
  st->flushed = 1;
}

/* The unit vector straight from the quarters: v = acc / |acc|, acc = 0.
 * The sum of squares is exact in 64-bit integers (each |acc| < 2^31 and at
 * most 2^21 words were added, see FLUSH_WORDS, so it stays below 2^53), and
 * a double holds it exactly: the result is bit for bit what
 * lode_l2_normalize computes on acc / 4 (whose double sum is exact too),
 * without its chain of dependent double additions. */
static void finish_unit(float *restrict v, int32_t *restrict acc, uint64_t dims) {
  uint64_t sq = 0, k = 0;
#if defined(__SSE2__) && !defined(LODE_HASH_NO_SIMD)
  /* the same sum, modulo 2^64 like the scalar one, 4 dims at a time: |a|
   * fits 32 unsigned bits and _mm_mul_epu32 squares it exactly into 64 */
  __m128i s0 = _mm_setzero_si128(), s1 = _mm_setzero_si128();
  for (; k + 4 <= dims; k += 4) {
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(acc + k));
    __m128i sg = _mm_srai_epi32(a, 31);
    a = _mm_sub_epi32(_mm_xor_si128(a, sg), sg);
    s0 = _mm_add_epi64(s0, _mm_mul_epu32(a, a));
    a = _mm_srli_epi64(a, 32);
    s1 = _mm_add_epi64(s1, _mm_mul_epu32(a, a));
  }
  uint64_t part[4];
  _mm_storeu_si128((__m128i *)(void *)part, s0);
  _mm_storeu_si128((__m128i *)(void *)(part + 2), s1);
  sq = part[0] + part[1] + part[2] + part[3];
#endif
  for (; k < dims; k++) sq += (uint64_t)((int64_t)acc[k] * acc[k]);
  if (sq == 0) return; /* no word: the zero vector (acc is all zero) */
  float inv = (float)(1.0 / sqrt((double)sq / 16.0));
  k = 0;
#if defined(__SSE2__) && !defined(LODE_HASH_NO_SIMD)
  /* the same float operations in the same order, 4 lanes at a time */
  __m128 q = _mm_set1_ps(0.25f), vi = _mm_set1_ps(inv);
  for (; k + 4 <= dims; k += 4) {
    __m128 x = _mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)(const void *)(acc + k)));
    _mm_storeu_ps(v + k, _mm_mul_ps(_mm_mul_ps(x, q), vi));
    _mm_storeu_si128((__m128i *)(void *)(acc + k), _mm_setzero_si128());
  }
#endif
  for (; k < dims; k++) {
    v[k] = ((float)acc[k] * 0.25f) * inv;
    acc[k] = 0;
  }
}

/* Notes the bigram with the previous word, then moves on. */
static HOT_INLINE void next_word(hstate *st, uint64_t h) {
  /* order-sensitive: "new york" and "york new" differ; prev holds the
   * previous word's hash already multiplied */
  if (st->have_prev) {
    lode__hash *hs = st->hs;
    hs->pend[hs->np++] = feature(st->dims, mix64(st->prev ^ h ^ SEED_BIGRAM), W_BIGRAM);
    if (hs->np >= PEND_MAX) apply(hs);
  }
  st->prev = h * 0xc2b2ae3d27d4eb4fULL;
  st->have_prev = 1;
  if (++st->words == FLUSH_WORDS) flush(st);
}

/* Adds slot i's features times its pending count, and clears the count. */
static void add_slot(lode__hash *hs, size_t i) {
  hslot *sl = &hs->slot[i];
  /* locals and restrict: otherwise every store to acc would make the
   * compiler reload nf and the count (same integer type, may alias) */
  int32_t c = (int32_t)sl->cnt, *restrict acc = hs->acc;
  const feat_t *restrict fs = hs->feat + i * SLOT_MAXF;
  uint32_t nf = sl->nf;
  sl->cnt = 0;
  for (uint32_t k = 0; k < nf; k++) acc[fs[k].d] += fs[k].w * c;
}

/* The features of the words counted since the last drain, times their
 * counts, and the pending bigrams, into acc. A slot's features are copied
 * into the pending list scaled by its count, whole vectors at a time (past
 * its last feature too: the next slot's copy or the list's end overwrites
 * them), so that the branchy per-word part is a few straight copies and the
 * additions are one long loop. */
static void drain(lode__hash *hs) {
  size_t nt = hs->nt, np = hs->np;
  feat_t *restrict pf = hs->pend;
  for (size_t t = 0; t < nt; t++) {
    size_t i = hs->touched[t];
    hslot *sl = &hs->slot[i];
    uint32_t c = sl->cnt, nf = sl->nf;
    const feat_t *restrict fs = hs->feat + i * SLOT_MAXF;
    if (c > CNT_SIMD) { /* weights times c may not fit 16 bits */
      add_slot(hs, i);
      continue;
    }
    sl->cnt = 0; /* a count may be 0 again (its slot was reused): adds 0 */
#if defined(__SSE2__) && !defined(LODE_HASH_NO_SIMD)
    /* 16-bit multiplies: dimensions times 1, weights times c (x86 is
     * little-endian: d is the low half of each 32-bit lane) */
    __m128i m = _mm_set1_epi32((int)(c << 16 | 1));
    for (int k = 0; k < 32; k += 4)
      _mm_storeu_si128((__m128i *)(void *)(pf + np + k),
                       _mm_mullo_epi16(_mm_loadu_si128((const __m128i *)(const void *)(fs + k)), m));
    if (nf > 32)
      for (int k = 32; k < SLOT_MAXF; k += 4)
        _mm_storeu_si128((__m128i *)(void *)(pf + np + k),
                         _mm_mullo_epi16(_mm_loadu_si128((const __m128i *)(const void *)(fs + k)), m));
#else
    for (uint32_t k = 0; k < nf; k++) { /* |w * c| <= 4 * CNT_SIMD fits */
      pf[np + k].d = fs[k].d;
      pf[np + k].w = (int16_t)(fs[k].w * (int32_t)c);
    }
#endif
    np += nf;
    if (np >= PEND_MAX) {
      hs->np = np;
      apply(hs);
      np = 0;
    }
  }
  hs->np = np;
  hs->nt = 0;
  apply(hs);
}

/* An occurrence of the word cached in slot i: counted, added later. */
static HOT_INLINE void hit(hstate *st, size_t i) {
  lode__hash *hs = st->hs;
  hslot *sl = &hs->slot[i];
  uint32_t c = sl->cnt;
  sl->cnt = c + 1;
  hs->touched[hs->nt] = (uint16_t)i;
  hs->nt += c == 0;
  if (hs->nt == TOUCH_MAX) drain(hs);
  next_word(st, sl->h);
}

/* Word wb[1..wl]; key: its cache key (see key16), or NULL when it is not
 * cacheable (longer than CACHE_MAXW bytes raw or lower-cased). */
static NOINLINE void word_slow(hstate *st, size_t wl, const uint64_t *key) {
  uint8_t *wb = st->wb;
  if (st->hs->slot && key && wl <= CACHE_MAXW) {
    size_t i = slot_index(key[0], key[1]);
    hslot *sl = &st->hs->slot[i];
    if (sl->k0 != key[0] || sl->k1 != key[1]) {
      if (sl->cnt) add_slot(st->hs, i); /* the old word's pending count */
      sl->k0 = key[0];
      sl->k1 = key[1];
      sl->h = XXH3_64bits_withSeed(wb + 1, wl, SEED_WORD);
      sl->nf = (uint32_t)word_feats(st->dims, wb, wl, sl->h, st->hs->feat + i * SLOT_MAXF);
    }
    hit(st, i);
    return;
  }
  uint64_t h = XXH3_64bits_withSeed(wb + 1, wl, SEED_WORD);
  feat_t f[3 * HASH_MAXW + 4];
  size_t nf = word_feats(st->dims, wb, wl, h, f);
  for (size_t k = 0; k < nf; k++) add_feature(st->hs->acc, f[k]);
  next_word(st, h);
}

/* The cache key of a word of len <= 16 bytes at p (16 bytes readable from
 * p): its raw bytes with ASCII letters lower-cased, zero-padded to 16, as the
 * machine loads them (the cache never leaves the process, so byte order does
 * not matter; a word has no NUL byte, so the padding is unambiguous). A key
 * stands for one word: the bytes of a word (no separator inside) decode to
 * the same characters whatever the case of its ASCII letters, and ASCII
 * bytes never belong to a multi-byte sequence. So a word with non-ASCII
 * characters is cached by its raw bytes (after one decoding), and its
 * lower-cased form, from which its features come, is never needed again. */
static HOT_INLINE void key16_of(uint64_t k0, uint64_t k1, size_t len, uint64_t k[2]) {
  /* a word's ASCII bytes are letters and digits: setting bit 5 lower-cases
   * letters and keeps digits (0x30..0x39 have it already); bytes >= 0x80
   * are kept (their bit 7, shifted to bit 5, clears the 0x20) */
  k0 |= 0x2020202020202020ULL & ~((k0 & 0x8080808080808080ULL) >> 2);
  k1 |= 0x2020202020202020ULL & ~((k1 & 0x8080808080808080ULL) >> 2);
  /* the mask drops the bytes past the word whichever the byte order */
  uint8_t m[16];
  static const uint8_t ones[32] = {
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  memcpy(m, ones + 16 - len, 16); /* len bytes of 0xff (ones[0..15] are 0xff), then zeros */
  uint64_t m0, m1;
  memcpy(&m0, m, 8);
  memcpy(&m1, m + 8, 8);
  k[0] = k0 & m0;
  k[1] = k1 & m1;
}

static HOT_INLINE void key16(const uint8_t *p, size_t len, uint64_t k[2]) {
  uint64_t k0, k1;
  memcpy(&k0, p, 8);
  memcpy(&k1, p + 8, 8);
  key16_of(k0, k1, len, k);
}

/* The key of a word of len <= 16 bytes at p + s with fewer than 16 bytes
 * readable (s + 16 > n). */
static void key16_tail(const uint8_t *p, size_t n, size_t s, size_t len, uint64_t k[2]) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (n >= 16) { /* the 16 bytes ending at n, shifted down to start at s */
    uint64_t a0, a1;
    unsigned off = (unsigned)(s + 16 - n); /* 1..15 */
    memcpy(&a0, p + n - 16, 8);
    memcpy(&a1, p + n - 8, 8);
    if (off < 8)
      key16_of(a0 >> 8 * off | a1 << (64 - 8 * off), a1 >> 8 * off, len, k);
    else
      key16_of(a1 >> 8 * (off - 8), 0, len, k);
    return;
  }
#endif
  uint8_t tmp[16] = {0};
  memcpy(tmp, p + s, len);
  key16(tmp, len, k);
}

/* The word with key k looked up in the cache: counted if there (returns 1),
 * else 0. */
static HOT_INLINE int lookup(hstate *st, const uint64_t k[2]) {
  size_t i = slot_index(k[0], k[1]);
  const hslot *sl = &st->hs->slot[i];
  if (sl->k0 == k[0] && sl->k1 == k[1]) {
    hit(st, i);
    return 1;
  }
  return 0;
}

/* The word wb[1..wl] whose raw bytes are raw[0..rl): cached by them when
 * both fit the cache, else not cached. */
static void word_raw(hstate *st, size_t wl, const uint8_t *raw, size_t rl) {
  if (rl > CACHE_MAXW || wl > CACHE_MAXW || !st->hs->slot) {
    word_slow(st, wl, NULL);
    return;
  }
  uint8_t tmp[16] = {0};
  uint64_t k[2];
  memcpy(tmp, raw, rl);
  key16(tmp, rl, k);
  word_slow(st, wl, k);
}

/* A run of bytes [p, p+n) holding no ASCII separator but some byte >= 0x80:
 * decoded as UTF-8 (non-word code points and invalid bytes split it). */
static NOINLINE void run_unicode(hstate *st, const uint8_t *p, size_t n) {
  uint8_t *wb = st->wb;
  size_t wl = 0, i = 0, ws = 0; /* ws: where the current word's bytes start */
  while (i < n) {
    uint8_t c = p[i];
    if (c < 0x80) { /* an ASCII letter or digit: the run has no other */
      wb[1 + wl] = ascii_word[c];
      wl += wl < HASH_MAXW;
      i++;
      continue;
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
    if (k > 0) {
      utf8proc_category_t cat = utf8proc_category(cp);
      if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO) {
        i += (size_t)k;
        if (wl + 4 <= HASH_MAXW) /* else dropped: a long word keeps its start */
          wl += (size_t)utf8proc_encode_char(utf8proc_tolower(cp), wb + 1 + wl);
        continue;
      }
      if (wl) word_raw(st, wl, p + ws, i - ws);
      i += (size_t)k;
    } else { /* an invalid byte: a separator */
      if (wl) word_raw(st, wl, p + ws, i - ws);
      i++;
    }
    wl = 0;
    ws = i;
  }
  if (wl) word_raw(st, wl, p + ws, i - ws);
}

/* The word mask of 64 bytes: bit i set if p[i] is an ASCII letter or digit
 * or >= 0x80. SSE2 and the table agree byte for byte (a test runs long
 * mixed texts through both paths). */
static inline uint64_t mask64(const uint8_t *p) {
#if defined(__SSE2__) && !defined(LODE_HASH_NO_SIMD)
  uint64_t w = 0;
  for (int k = 0; k < 4; k++) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
    __m128i lower = _mm_or_si128(x, _mm_set1_epi8(0x20));
    /* unsigned range checks as signed compares after shifting the range to
     * start at -128 */
    __m128i letter = _mm_cmplt_epi8(_mm_add_epi8(lower, _mm_set1_epi8((char)(0x80 - 'a'))),
                                    _mm_set1_epi8((char)(-128 + 26)));
    __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(x, _mm_set1_epi8((char)(0x80 - '0'))),
                                   _mm_set1_epi8((char)(-128 + 10)));
    /* movemask takes each byte's top bit: set for letters, digits and bytes
     * >= 0x80 */
    w |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letter, digit), x)) << (16 * k);
  }
  return w;
#else
  uint64_t w = 0;
  for (int k = 0; k < 64; k++) w |= (uint64_t)(ascii_word[p[k]] != 0 || p[k] >= 0x80) << k;
  return w;
#endif
}

static NOINLINE uint64_t block_tail(const uint8_t *p, size_t n, size_t base) {
  uint8_t tmp[64] = {0};
  memcpy(tmp, p + base, n - base);
  return mask64(tmp);
}

/* Mask of the 64-byte block at base (bytes past n count as separators). */
static inline uint64_t block(const uint8_t *p, size_t n, size_t base) {
  if (base + 64 <= n) return mask64(p + base);
  return block_tail(p, n, base);
}

static inline unsigned ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }

/* Bits set in x (SWAR: __builtin_popcountll is a library call without
 * -mpopcnt). */
static inline size_t popcount64(uint64_t x) {
  x -= (x >> 1) & 0x5555555555555555ULL;
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return (size_t)((x * 0x0101010101010101ULL) >> 56);
}

/* The runs off the fast path (out of line, so the hot loop stays small):
 * words not in the cache, words near the text's end (fewer than 16 bytes
 * readable), words longer than 16 bytes and runs holding non-ASCII bytes. */
static NOINLINE void run_other(hstate *st, const uint8_t *p, size_t n, size_t s, size_t e) {
  size_t len = e - s;
  uint64_t k[2];
  int cached = len <= CACHE_MAXW && st->hs->slot;
  if (cached) {
    /* a short word near the text's end (each text's last, usually) or not
     * in the cache */
    if (s + 16 <= n) key16(p + s, len, k);
    else key16_tail(p, n, s, len, k);
    if (lookup(st, k)) return;
  }
  uint8_t hi = 0;
  for (size_t i = 0; i < len; i++) hi |= p[s + i];
  if (hi & 0x80) {
    run_unicode(st, p + s, len);
    return;
  }
  size_t wl = len < HASH_MAXW ? len : HASH_MAXW;
  for (size_t i = 0; i < wl; i++) st->wb[1 + i] = ascii_word[p[s + i]];
  word_slow(st, wl, cached ? k : NULL);
}

/* When a list is full or the flush point is reached (after a word). */
static NOINLINE void full(hstate *st) {
  lode__hash *hs = st->hs;
  if (hs->nt == TOUCH_MAX) drain(hs);
  if (hs->np >= PEND_MAX) apply(hs);
  if (st->words == FLUSH_WORDS) flush(st);
}

/* The runs [seg + bnd[i], seg + bnd[i + 1]) for i = i0, i0 + 2, ... while
 * i + 1 < nb; returns the first i not done. The cached short words, most of
 * them, stay here: the state they change lives in registers (what `hit` and
 * `next_word` do, also for the first word, whose bigram entry is written
 * but not kept), and goes back into *st and st->hs around anything else. */
static size_t words_fast(hstate *st, const uint8_t *p, size_t n, size_t seg, const uint16_t *bnd,
                         size_t i, size_t nb) {
  lode__hash *hs = st->hs;
  hslot *slot = hs->slot;
  uint16_t *touched = hs->touched;
  feat_t *pend = hs->pend;
  uint64_t dims = st->dims, prev = st->prev;
  size_t nt, np, words, hp, budget;
  /* a word adds at most one to nt and np and exactly one to words: after
   * `budget` words one of them may be at its limit */
#define SYNC_OUT (hs->nt = nt, hs->np = np, st->prev = prev, st->have_prev = (int)hp, st->words = words)
#define SYNC_IN                                                                                \
  (nt = hs->nt, np = hs->np, prev = st->prev, hp = (size_t)st->have_prev, words = st->words, \
   budget = TOUCH_MAX - nt, budget = PEND_MAX - np < budget ? PEND_MAX - np : budget,           \
   budget = FLUSH_WORDS - words < budget ? FLUSH_WORDS - words : budget)
  SYNC_IN;
  /* the short words with 16 bytes readable (s < lim) take the fast path */
  size_t lim = slot && n >= 16 ? n - 15 : 0;
  for (; i + 1 < nb; i += 2) {
    size_t s = seg + bnd[i], e = seg + bnd[i + 1];
    if (e - s <= CACHE_MAXW && s < lim) {
      uint64_t k[2];
      key16(p + s, e - s, k);
      size_t x = slot_index(k[0], k[1]);
      hslot *sl = &slot[x];
      if (sl->k0 == k[0] && sl->k1 == k[1]) {
        uint32_t c = sl->cnt;
        uint64_t h = sl->h;
        sl->cnt = c + 1;
        touched[nt] = (uint16_t)x;
        nt += c == 0;
        pend[np] = feature(dims, mix64(prev ^ h ^ SEED_BIGRAM), W_BIGRAM);
        np += hp;
        hp = 1;
        prev = h * 0xc2b2ae3d27d4eb4fULL;
        words++;
        if (--budget == 0) {
          SYNC_OUT;
          full(st);
          SYNC_IN;
        }
        continue;
      }
    }
    SYNC_OUT;
    run_other(st, p, n, s, e);
    SYNC_IN;
  }
  SYNC_OUT;
#undef SYNC_OUT
#undef SYNC_IN
  return i;
}

/* The text is read in segments of SEG bytes: first the word boundaries of
 * a segment are listed (64 bytes at a time, one count-trailing-zeros per
 * boundary), then its words are looked up; two simple loops, whose branches
 * the processor predicts better than one loop doing both. */
#define SEG 1024
#define BND_UNROLL 24

void lode__hash_text(lode__hash *hs, const char *s, size_t n, float *v, int unit) {
  const uint8_t *p = (const uint8_t *)s;
  hstate st;
  st.hs = hs;
  st.v = v;
  st.dims = (uint64_t)hs->dims;
  st.prev = 0;
  st.have_prev = 0;
  st.words = 0;
  st.flushed = 0;
  st.wb[0] = '<';
  size_t open = 0; /* a run that goes on past the segment starts at open - 1 */
  uint16_t bnd[SEG + BND_UNROLL];
  for (size_t seg = 0; seg < n; seg += SEG) {
    size_t segn = n - seg < SEG ? n - seg : SEG, nb = 0;
    uint64_t carry = open != 0; /* the byte before the segment is a word byte */
    for (size_t base = 0; base < segn; base += 64) {
      uint64_t wm = block(p, n, seg + base);
      /* a boundary where a byte differs from the one before: runs start and
       * end at alternate boundaries (bytes past n are separators) */
      uint64_t t = wm ^ (wm << 1 | carry);
      size_t c = popcount64(t);
      carry = wm >> 63;
      /* BND_UNROLL positions unconditionally (English has about 18
       * boundaries per 64 bytes), the rest, if any, in a loop: no branch to
       * mispredict in the usual case. Entries past c are overwritten next. */
      uint16_t *o = bnd + nb;
#if defined(__GNUC__)
#pragma GCC unroll 24
#endif
      for (int k = 0; k < BND_UNROLL; k++) {
        o[k] = (uint16_t)(base + ctz64(t | 1ULL << 63)); /* 63 once t is 0 */
        t &= t - 1;
      }
      for (int k = BND_UNROLL; t; k++) {
        o[k] = (uint16_t)(base + ctz64(t));
        t &= t - 1;
      }
      nb += c;
    }
    size_t i = 0;
    if (open) { /* the first boundary ends the run carried over */
      if (nb == 0) continue;
      run_other(&st, p, n, open - 1, seg + bnd[0]);
      i = 1;
      open = 0;
    }
    i = words_fast(&st, p, n, seg, bnd, i, nb);
    if (i < nb) open = seg + bnd[i] + 1;
  }
  if (open) run_other(&st, p, n, open - 1, n);
  drain(hs); /* the counted words and the bigrams */
  if (unit && !st.flushed) {
    finish_unit(v, hs->acc, st.dims);
  } else {
    flush(&st);
    if (unit) lode_l2_normalize(v, hs->dims);
  }
}
