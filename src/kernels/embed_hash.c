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
 * Why it is fast: words are found 64 bytes at a time (a bit mask of word
 * bytes, SSE2 where available, a table otherwise: the same mask either way);
 * an ASCII word of up to 16 bytes is its own cache key, read straight from
 * the text, so a cached word costs a key compare, a count and its bigram;
 * its unigram and n-gram features are added once per text, times the count.
 * tests/c/test_embed_hash.c holds all of it to a plain reference, bit for
 * bit. */
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

/* A feature as packed in the cache: the dimension in the low 16 bits (dims
 * <= 65536) and the signed weight + 8 above (unsigned, so decoding needs no implementation-defined
 * conversion). */
#define WBIAS 8
#define DIM_BITS 16
static inline uint32_t feature(uint64_t dims, uint64_t h, int w) {
  uint32_t d = (uint32_t)(((h & 0xffffffffu) * dims) >> 32);
  int sw = (h >> 63) ? -w : w;
  return d | (uint32_t)(sw + WBIAS) << DIM_BITS;
}

static inline void add_feature(int32_t *acc, uint32_t f) {
  acc[f & ((1u << DIM_BITS) - 1)] += (int32_t)(f >> DIM_BITS) - WBIAS;
}

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
 * the key is the word's (lower-cased) bytes zero-padded to 16, as the machine
 * loads them (the cache never leaves the process, so byte order does not
 * matter; words have no NUL byte, so the padding is unambiguous). */
#define CACHE_BITS 12
#define CACHE_MAXW 16
/* Repeated words are added once per text: a hit only counts the word (and
 * notes its slot the first time), and the counted words' features are added
 * times their count when the text ends (or the note list is full, or a slot
 * is reused). Integer sums do not care about the order. Function words make
 * up about half of English tokens, so this saves a good part of the adds. */
#define TOUCH_MAX 1024
#define SLOT_MAXF (3 * CACHE_MAXW)
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
  uint32_t *feat;    /* SLOT_MAXF per slot */
  uint16_t *touched; /* TOUCH_MAX slots with a count (some maybe zero again) */
  uint32_t nt;
};

int lode__hash_new(int64_t dims, int with_cache, lode__hash **out) {
  lode__hash *h = calloc(1, sizeof *h);
  *out = NULL;
  if (!h) return -1;
  h->dims = dims;
  h->acc = calloc((size_t)dims, sizeof *h->acc);
  if (with_cache) {
    h->slot = calloc((size_t)1 << CACHE_BITS, sizeof *h->slot);
    h->feat = malloc(((size_t)SLOT_MAXF << CACHE_BITS) * sizeof *h->feat);
    h->touched = malloc(TOUCH_MAX * sizeof *h->touched);
  }
  if (!h->acc || (with_cache && (!h->slot || !h->feat || !h->touched))) {
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
  free(h);
}

static inline size_t slot_index(uint64_t k0, uint64_t k1) {
  return (size_t)(((k0 ^ (k1 * 0xc2b2ae3d27d4eb4fULL)) * 0x9e3779b97f4a7c15ULL) >> (64 - CACHE_BITS));
}

/* The unigram and n-gram features of word wb[1..wl] (wb[0] == '<'; wb has
 * 8 spare bytes past wl + 1) into f; returns their count (2 * wl). */
static size_t word_feats(uint64_t dims, uint8_t *wb, size_t wl, uint64_t h, uint32_t *f) {
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
  uint32_t words; /* since the last flush */
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
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, k = 0;
  for (; k + 4 <= dims; k += 4) {
    s0 += (uint64_t)((int64_t)acc[k] * acc[k]);
    s1 += (uint64_t)((int64_t)acc[k + 1] * acc[k + 1]);
    s2 += (uint64_t)((int64_t)acc[k + 2] * acc[k + 2]);
    s3 += (uint64_t)((int64_t)acc[k + 3] * acc[k + 3]);
  }
  for (; k < dims; k++) s0 += (uint64_t)((int64_t)acc[k] * acc[k]);
  uint64_t sq = s0 + s1 + s2 + s3;
  if (sq == 0) return; /* no word: the zero vector (acc is all zero) */
  float inv = (float)(1.0 / sqrt((double)sq / 16.0));
  for (k = 0; k < dims; k++) {
    v[k] = ((float)acc[k] * 0.25f) * inv;
    acc[k] = 0;
  }
}

/* Adds the bigram with the previous word, then moves on. */
static HOT_INLINE void next_word(hstate *st, uint64_t h) {
  /* order-sensitive: "new york" and "york new" differ; prev holds the
   * previous word's hash already multiplied */
  if (st->have_prev) {
    uint64_t x = mix64(st->prev ^ h ^ SEED_BIGRAM);
    int32_t w = W_BIGRAM - (int32_t)(x >> 63) * (2 * W_BIGRAM);
    st->hs->acc[((x & 0xffffffffu) * st->dims) >> 32] += w;
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
  const uint32_t *restrict fs = hs->feat + i * SLOT_MAXF;
  uint32_t nf = sl->nf;
  sl->cnt = 0;
  for (uint32_t k = 0; k < nf; k++) {
    uint32_t f = fs[k];
    acc[f & ((1u << DIM_BITS) - 1)] += ((int32_t)(f >> DIM_BITS) - WBIAS) * c;
  }
}

static void drain(lode__hash *hs) {
  for (uint32_t i = 0; i < hs->nt; i++) /* a count may be 0 again: adds 0 */
    add_slot(hs, hs->touched[i]);
  hs->nt = 0;
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

static NOINLINE void word_slow(hstate *st, size_t wl) {
  uint8_t *wb = st->wb;
  if (st->hs->slot && wl <= CACHE_MAXW) {
    uint64_t k[2] = {0, 0};
    memcpy(k, wb + 1, wl);
    size_t i = slot_index(k[0], k[1]);
    hslot *sl = &st->hs->slot[i];
    if (sl->k0 != k[0] || sl->k1 != k[1]) {
      if (sl->cnt) add_slot(st->hs, i); /* the old word's pending count */
      sl->k0 = k[0];
      sl->k1 = k[1];
      sl->h = XXH3_64bits_withSeed(wb + 1, wl, SEED_WORD);
      sl->nf = (uint32_t)word_feats(st->dims, wb, wl, sl->h, st->hs->feat + i * SLOT_MAXF);
    }
    hit(st, i);
    return;
  }
  uint64_t h = XXH3_64bits_withSeed(wb + 1, wl, SEED_WORD);
  uint32_t f[3 * HASH_MAXW + 4];
  size_t nf = word_feats(st->dims, wb, wl, h, f);
  for (size_t k = 0; k < nf; k++) add_feature(st->hs->acc, f[k]);
  next_word(st, h);
}

/* An ASCII word of 1..16 bytes at p (16 bytes readable from p), straight
 * from the text: the lower-cased, zero-padded bytes are the cache key. */
static HOT_INLINE void word_ascii16(hstate *st, const uint8_t *p, size_t len) {
  uint64_t k0, k1;
  memcpy(&k0, p, 8);
  memcpy(&k1, p + 8, 8);
  /* letters and digits only: setting bit 5 lower-cases letters and keeps
   * digits (0x30..0x39 have it already); the mask drops the bytes past the
   * word whichever the byte order */
  uint8_t m[16];
  static const uint8_t ones[32] = {
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  memcpy(m, ones + 16 - len, 16); /* len bytes of 0xff (ones[0..15] are 0xff), then zeros */
  uint64_t m0, m1;
  memcpy(&m0, m, 8);
  memcpy(&m1, m + 8, 8);
  k0 = (k0 | 0x2020202020202020ULL) & m0;
  k1 = (k1 | 0x2020202020202020ULL) & m1;
  size_t i = slot_index(k0, k1);
  const hslot *sl = &st->hs->slot[i];
  if (sl->k0 == k0 && sl->k1 == k1) {
    hit(st, i);
    return;
  }
  for (size_t i = 0; i < len; i++) st->wb[1 + i] = ascii_word[p[i]];
  word_slow(st, len);
}

/* A run of bytes [p, p+n) holding no ASCII separator but some byte >= 0x80:
 * decoded as UTF-8 (non-word code points and invalid bytes split it). */
static void run_unicode(hstate *st, const uint8_t *p, size_t n) {
  uint8_t *wb = st->wb;
  size_t wl = 0, i = 0;
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
      i += (size_t)k;
      utf8proc_category_t cat = utf8proc_category(cp);
      if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO) {
        if (wl + 4 <= HASH_MAXW) /* else dropped: a long word keeps its start */
          wl += (size_t)utf8proc_encode_char(utf8proc_tolower(cp), wb + 1 + wl);
        continue;
      }
    } else { /* an invalid byte: a separator */
      i++;
    }
    if (wl) word_slow(st, wl);
    wl = 0;
  }
  if (wl) word_slow(st, wl);
}

/* The word mask of 64 bytes: bit i set if p[i] is an ASCII letter or digit
 * or >= 0x80; *hi gets the bits of bytes >= 0x80. SSE2 and the table agree
 * byte for byte (a test runs long mixed texts through both paths). */
static inline uint64_t mask64(const uint8_t *p, uint64_t *hi) {
#if defined(__SSE2__) && !defined(LODE_HASH_NO_SIMD)
  uint64_t w = 0, h = 0;
  for (int k = 0; k < 4; k++) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
    __m128i lower = _mm_or_si128(x, _mm_set1_epi8(0x20));
    /* unsigned range checks as signed compares after shifting the range to
     * start at -128 */
    __m128i letter = _mm_cmplt_epi8(_mm_add_epi8(lower, _mm_set1_epi8((char)(0x80 - 'a'))),
                                    _mm_set1_epi8((char)(-128 + 26)));
    __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(x, _mm_set1_epi8((char)(0x80 - '0'))),
                                   _mm_set1_epi8((char)(-128 + 10)));
    uint32_t hb = (uint32_t)_mm_movemask_epi8(x);
    uint32_t wbits = (uint32_t)_mm_movemask_epi8(_mm_or_si128(letter, digit)) | hb;
    w |= (uint64_t)wbits << (16 * k);
    h |= (uint64_t)hb << (16 * k);
  }
  *hi = h;
  return w;
#else
  uint64_t w = 0, h = 0;
  for (int k = 0; k < 64; k++) {
    uint64_t b = p[k] >= 0x80;
    w |= (uint64_t)(ascii_word[p[k]] != 0 || b) << k;
    h |= b << k;
  }
  *hi = h;
  return w;
#endif
}

static NOINLINE uint64_t block_tail(const uint8_t *p, size_t n, size_t base, uint64_t *hi) {
  uint8_t tmp[64] = {0};
  memcpy(tmp, p + base, n - base);
  return mask64(tmp, hi);
}

/* Mask of the 64-byte block at base (bytes past n count as separators). */
static inline uint64_t block(const uint8_t *p, size_t n, size_t base, uint64_t *hi) {
  if (base + 64 <= n) return mask64(p + base, hi);
  return block_tail(p, n, base, hi);
}

static inline unsigned ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }

/* The runs off the fast path (out of line, so the hot loop stays small). */
static NOINLINE void run_other(hstate *st, const uint8_t *p, size_t s, size_t e, int hi) {
  size_t len = e - s;
  if (hi) {
    run_unicode(st, p + s, len);
  } else if (len <= CACHE_MAXW && st->hs->slot) { /* near the text's end */
    uint8_t tmp[16] = {0};
    memcpy(tmp, p + s, len);
    word_ascii16(st, tmp, len);
  } else {
    size_t wl = len < HASH_MAXW ? len : HASH_MAXW;
    for (size_t i = 0; i < wl; i++) st->wb[1 + i] = ascii_word[p[s + i]];
    word_slow(st, wl);
  }
}

/* One run of word bytes [s, e) (maximal: the bytes around it are ASCII
 * separators or the text's ends). */
static HOT_INLINE void run(hstate *st, const uint8_t *p, size_t n, size_t s, size_t e, int hi) {
  if (!hi && e - s <= CACHE_MAXW && s + 16 <= n && st->hs->slot)
    word_ascii16(st, p + s, e - s);
  else
    run_other(st, p, s, e, hi);
}

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
  size_t base = 0;
  uint64_t hm, wm;
  if (n == 0) return;
  wm = block(p, n, 0, &hm);
  uint64_t from = ~0ULL; /* bits of the block at or after the scan position */
  for (;;) {
    uint64_t m = wm & from;
    while (!m) {
      base += 64;
      if (base >= n) goto done;
      wm = block(p, n, base, &hm);
      m = wm;
    }
    unsigned off = ctz64(m);
    size_t start = base + off;
    uint64_t lo = ~0ULL << off, ends = ~wm & lo;
    int hi = 0;
    while (!ends) { /* the run goes on into the next block */
      hi |= (hm & lo) != 0;
      base += 64;
      if (base >= n) {
        run(&st, p, n, start, n, hi);
        goto done;
      }
      wm = block(p, n, base, &hm);
      lo = ~0ULL;
      ends = ~wm;
    }
    unsigned eo = ctz64(ends);
    uint64_t inrun = lo & ((1ULL << eo) - 1);
    hi |= (hm & inrun) != 0;
    run(&st, p, n, start, base + eo, hi);
    from = ~0ULL << eo; /* eo <= 63; bit eo is a separator */
  }
done:
  if (hs->slot) drain(hs);
  if (unit && !st.flushed) {
    finish_unit(v, hs->acc, st.dims);
  } else {
    flush(&st);
    if (unit) lode_l2_normalize(v, hs->dims);
  }
}
