/* test_embed_hash.c - the hash embedder's fast paths against a plain
 * reference: a byte-by-byte tokeniser and one float addition per feature, in
 * text order, exactly as docs/embed.md states the algorithm. The library
 * (SIMD word masks, word cache, per-text word counts, integer sums) must give
 * the same vectors bit for bit on hostile mixed texts; so must the portable
 * (table) word-mask path, compiled here from the same source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#include "kernels/embed.h"

/* The same source with the portable word mask, under other names. */
#define LODE_HASH_NO_SIMD 1
#define lode__hash_new scalar_hash_new
#define lode__hash_text scalar_hash_text
#define lode__hash_free scalar_hash_free
#include "kernels/embed_hash.c"

/* ---- the reference ---------------------------------------------------- */

static uint64_t ref_mix(uint64_t x) {
  x *= 0x9e3779b97f4a7c15ULL;
  return x ^ (x >> 32);
}

static void ref_add(float *v, int64_t dims, uint64_t h, float w) {
  uint64_t d = ((h & 0xffffffffu) * (uint64_t)dims) >> 32;
  v[d] += (h >> 63) ? -w : w;
}

/* n bytes of p (n <= 5) packed little-endian */
static uint64_t ref_pack(const uint8_t *p, size_t n) {
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) x |= (uint64_t)p[i] << (8 * i);
  return x;
}

static void ref_word(float *v, int64_t dims, const uint8_t *w, size_t wl, uint64_t *prev,
                     int *have_prev) {
  static const uint64_t seed[6] = {0, 0, 0, 0x6c6f64652d636833ULL, 0x6c6f64652d636834ULL,
                                   0x6c6f64652d636835ULL};
  uint64_t h = XXH3_64bits_withSeed(w, wl, 0x6c6f64652d773175ULL);
  ref_add(v, dims, h, 1.0f);
  if (*have_prev)
    ref_add(v, dims, ref_mix(*prev * 0xc2b2ae3d27d4eb4fULL ^ h ^ 0x6c6f64652d773262ULL), 0.5f);
  uint8_t b[HASH_MAXW + 2];
  b[0] = '<';
  memcpy(b + 1, w, wl);
  b[wl + 1] = '>';
  size_t m = wl + 2;
  for (size_t i = 0; i < m; i++) /* n-grams by start position, 3 then 4 then 5 */
    for (size_t n = 3; n <= 5; n++)
      if (i + n <= m) ref_add(v, dims, ref_mix(ref_pack(b + i, n) ^ seed[n]), 0.25f);
  *prev = h;
  *have_prev = 1;
}

static int ref_wordchar(utf8proc_int32_t cp) {
  utf8proc_category_t c = utf8proc_category(cp);
  return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NO;
}

static void ref_text(const uint8_t *p, size_t n, float *v, int64_t dims) {
  uint8_t w[HASH_MAXW + 8];
  size_t wl = 0, i = 0;
  int inword = 0, have_prev = 0;
  uint64_t prev = 0;
  while (i <= n) {
    utf8proc_int32_t cp = -1;
    size_t k = 1;
    if (i < n) {
      if (p[i] < 0x80) {
        cp = p[i];
      } else {
        utf8proc_ssize_t r = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (r > 0) k = (size_t)r;
        else cp = -1; /* invalid byte: a separator */
      }
    }
    if (cp >= 0 && ref_wordchar(cp)) {
      uint8_t enc[4];
      size_t el = (size_t)utf8proc_encode_char(utf8proc_tolower(cp), enc);
      if (cp < 0x80) { /* ASCII: kept up to HASH_MAXW bytes */
        if (wl < HASH_MAXW) w[wl++] = enc[0];
      } else if (wl + 4 <= HASH_MAXW) { /* a multi-byte character only whole */
        memcpy(w + wl, enc, el);
        wl += el;
      }
      inword = 1;
    } else if (inword) {
      ref_word(v, dims, w, wl, &prev, &have_prev);
      inword = 0;
      wl = 0;
    }
    i += k;
  }
}

/* ---- generated hostile texts ------------------------------------------ */

static uint64_t rng = 99;
static uint64_t rnd(void) {
  uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static const char *pieces[] = {"é", "ß", "Σ", "東京", "İ", "ǅ", "\xcc\x81" /* combining acute */,
                               "\xe2\x80\x94" /* em dash */, "\xc2\xa0" /* nbsp */, "\xff",
                               "\x80", "\xe2\x82" /* truncated */, "½", "٣"};

/* Appends one random token (word, separator, odd bytes) to b. */
static size_t token(char *b, int vocab) {
  size_t n = 0;
  uint64_t r = rnd() % 100;
  if (r < 60) { /* an ASCII word from a vocabulary of `vocab` words */
    uint64_t id = rnd() % (uint64_t)vocab, len = 1 + id % 20;
    if (id % 97 == 0) len = 140; /* longer than HASH_MAXW */
    for (uint64_t i = 0; i < len; i++) {
      uint64_t c = ref_mix((id << 8 | i) + 0x632be59bd9b4e019ULL) % 36;
      b[n++] = (char)(c < 26 ? ((rnd() & 3) == 0 ? 'A' : 'a') + (int)c : '0' + (int)(c - 26));
    }
  } else if (r < 75) {
    const char *p = pieces[rnd() % (sizeof pieces / sizeof *pieces)];
    size_t l = strlen(p);
    memcpy(b + n, p, l);
    n += l;
  } else if (r < 78) {
    b[n++] = '\0';
  } else {
    static const char seps[] = " \n\t.,;:!?()[]-'\"/_";
    b[n++] = seps[rnd() % (sizeof seps - 1)];
  }
  if (rnd() % 3) b[n++] = ' ';
  return n;
}

static char *gen_text(size_t target, int vocab, size_t *len) {
  char *b = malloc(target + 256);
  size_t n = 0;
  while (n < target) n += token(b + n, vocab);
  *len = n;
  return b;
}

/* The library's normalised output equals the normalised reference, bit for
 * bit; so do the uncached and the portable paths. */
static void check_same(const char *t, size_t len, int64_t dims, lode_embedder *e) {
  float *ref = calloc((size_t)dims, sizeof *ref), *plain = calloc((size_t)dims, sizeof *plain),
        *port = calloc((size_t)dims, sizeof *port);
  ref_text((const uint8_t *)t, len, ref, dims);
  lode_l2_normalize(ref, dims);
  char err[256];
  lode_matrix m;
  const char *texts[] = {t};
  assert_int_equal(lode_embed(e, texts, &len, 1, &m, err, sizeof err), 0);
  if (memcmp(m.data, ref, (size_t)dims * sizeof *ref) != 0) {
    for (int64_t k = 0; k < dims; k++)
      if (m.data[k] != ref[k]) fail_msg("len %zu dims %lld: dim %lld is %.9g, reference %.9g", len,
                                        (long long)dims, (long long)k, m.data[k], ref[k]);
  }
  assert_int_equal(lode_embed_hash_text(t, len, plain, dims), 0);
  lode_l2_normalize(plain, dims);
  assert_memory_equal(plain, ref, (size_t)dims * sizeof *ref);
  lode__hash *sh;
  assert_int_equal(scalar_hash_new(dims, 1, &sh), 0);
  scalar_hash_text(sh, t, len, port, 1);
  scalar_hash_free(sh);
  assert_memory_equal(port, ref, (size_t)dims * sizeof *ref);
  free(m.data);
  free(ref);
  free(plain);
  free(port);
}

static lode_embedder *open_hash(int64_t dims) {
  lode_embed_opts o = {.provider = "hash", .dims = dims};
  lode_embedder *e = NULL;
  char err[256];
  if (lode_embedder_new(&o, &e, err, sizeof err) != 0) fail_msg("%s", err);
  return e;
}

/* Short mixed texts (one embedder, so its cache carries over from text to
 * text), several dims. */
static void mixed_texts(void **s) {
  (void)s;
  static const int64_t dims[] = {384, 7, 1, 1000, 65536};
  for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
    lode_embedder *e = open_hash(dims[d]);
    int n = dims[d] == 65536 ? 20 : 300;
    for (int i = 0; i < n; i++) {
      size_t len;
      char *t = gen_text(rnd() % 400, 300, &len);
      check_same(t, len, dims[d], e);
      free(t);
    }
    lode_embedder_free(e);
  }
}

/* Every prefix of a text: words ending at the text's end, at and around
 * the 64-byte block edges, with fewer than 16 bytes left to read. */
static void prefixes(void **s) {
  (void)s;
  lode_embedder *e = open_hash(384);
  size_t len;
  char *t = gen_text(300, 50, &len);
  for (size_t n = 0; n <= len; n++) {
    char *c = malloc(n ? n : 1); /* exactly n bytes, so ASan sees any overread */
    memcpy(c, t, n);
    check_same(c, n, 384, e);
    free(c);
  }
  free(t);
  lode_embedder_free(e);
}

/* Runs around and across the tokeniser's 1024-byte segments: words ending
 * just before, at and after a segment's end, runs longer than a segment
 * (ASCII and not), and every length of a text around the segment edges. */
static void segments(void **s) {
  (void)s;
  lode_embedder *e = open_hash(384);
  static const size_t runs[] = {1, 15, 16, 17, 63, 64, 65, 1023, 1024, 1025, 2047, 2048, 3000};
  static const size_t lead[] = {0, 1, 5, 960, 1007, 1008, 1009, 1022, 1023, 1024};
  char *t = malloc(8192);
  for (size_t a = 0; a < sizeof lead / sizeof *lead; a++) {
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
      for (int kind = 0; kind < 3; kind++) {
        size_t n = 0;
        for (; n < lead[a]; n++) t[n] = (n % 7 == 6) ? ' ' : (char)('a' + n % 26);
        for (size_t i = 0; i < runs[r]; i++) {
          if (kind == 1 && i % 9 == 4 && i + 1 < runs[r]) { /* "é", a letter */
            t[n++] = (char)0xc3;
            t[n++] = (char)0xa9;
            i++;
          } else if (kind == 2 && i % 11 == 10) {
            t[n++] = (char)0xff; /* invalid: splits the run */
          } else {
            t[n++] = (char)('A' + i % 26);
          }
        }
        size_t k = n;
        t[n++] = ' ';
        for (; n < k + 40; n++) t[n] = (char)('a' + n % 5);
        size_t ends[] = {k - 1, k, k + 1, k + 2, n}; /* in the run, at its end, after it */
        for (size_t m = 0; m < sizeof ends / sizeof *ends; m++) check_same(t, ends[m], 384, e);
      }
    }
  }
  free(t);
  size_t len;
  char *g = gen_text(2200, 50, &len);
  for (size_t n = 1000; n <= len && n < 2200; n++)
    if (n < 1100 || n > 2000) check_same(g, n, 384, e);
  free(g);
  lode_embedder_free(e);
}

/* More distinct words than the cache has slots: slots are reused while
 * their word still has a count pending, and the list of counted slots
 * fills up (TOUCH_MAX) within one text. */
static void cache_pressure(void **s) {
  (void)s;
  lode_embedder *e = open_hash(384);
  for (int i = 0; i < 4; i++) {
    size_t len;
    char *t = gen_text(200000, 20000, &len);
    check_same(t, len, 384, e);
    free(t);
  }
  lode_embedder_free(e);
}

/* A text of more than FLUSH_WORDS words: the integer sums are moved into
 * the float vector on the way, and the result is still exact. */
static void many_words(void **s) {
  (void)s;
  lode_embedder *e = open_hash(384);
  size_t cap = (size_t)(FLUSH_WORDS + 50000) * 8, n = 0, words = 0;
  char *t = malloc(cap);
  while (words < FLUSH_WORDS + 40000) {
    uint64_t id = rnd() % 5000;
    n += (size_t)snprintf(t + n, cap - n, "w%llu ", (unsigned long long)id);
    words++;
  }
  check_same(t, n, 384, e);
  free(t);
  lode_embedder_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(mixed_texts),
      cmocka_unit_test(prefixes),
      cmocka_unit_test(segments),
      cmocka_unit_test(cache_pressure),
      cmocka_unit_test(many_words),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
