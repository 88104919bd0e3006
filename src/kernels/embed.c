/* embed.c - the embedder front (provider dispatch) and the built-in hash
 * embedder.
 *
 * Ownership: see embed.h. The hash embedder keeps no state but its dims.
 *
 * Hash algorithm (documented for users in docs/embed.md; any change to the
 * output must bump lode_kernels_version and the golden checksum in
 * tests/c/test_embed.c):
 *   - words are maximal runs of letters, marks and digits (Unicode categories
 *     L*, M*, N*; ASCII fast path), lower-cased (utf8proc simple lower case);
 *     other bytes, including invalid UTF-8, separate words;
 *   - features per word w: the unigram w, the bigram (previous word, w), and
 *     the byte 3-, 4- and 5-grams of "<" w ">";
 *   - a word is hashed with XXH3-64 under a fixed seed; a bigram is
 *     mix64(prev * C ^ cur ^ seed) of its two word hashes; an n-gram is
 *     mix64 (one multiply, below) of its bytes packed little-endian xor a
 *     per-length seed; the low 32 bits of a hash pick the dimension
 *     (multiply-shift), bit 63 the sign (+/-), so collisions cancel on
 *     average;
 *   - weights: unigram 1.0, bigram 0.5, each n-gram 0.25; the sum is L2
 *     normalised by the caller.
 * Words longer than HASH_MAXW bytes contribute only their first HASH_MAXW
 * bytes (so a hostile single "word" costs O(n), not unbounded buffers). */
#include "kernels/embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "kernels/embed_internal.h"

#define HASH_MAXW 128
#define SEED_WORD 0x6c6f64652d773175ULL   /* "lode-w1u" */
#define SEED_BIGRAM 0x6c6f64652d773262ULL /* "lode-w2b" */
#define SEED_NGRAM3 0x6c6f64652d636833ULL /* "lode-ch3" */
#define SEED_NGRAM4 0x6c6f64652d636834ULL /* "lode-ch4" */
#define SEED_NGRAM5 0x6c6f64652d636835ULL /* "lode-ch5" */
#define W_WORD 1.0f
#define W_BIGRAM 0.5f
#define W_NGRAM 0.25f

/* Per byte: the lower-cased byte for ASCII word characters, 0 for
 * separators and for bytes >= 0x80 (decoded as UTF-8 by the caller). */
static const uint8_t *ascii_word_table(void) {
  static uint8_t t[256];
  static int ready;
  if (!ready) { /* benign race: every thread writes the same bytes */
    for (int c = 0; c < 256; c++) {
      if (c >= 'a' && c <= 'z') t[c] = (uint8_t)c;
      else if (c >= 'A' && c <= 'Z') t[c] = (uint8_t)(c + 32);
      else if (c >= '0' && c <= '9') t[c] = (uint8_t)c;
      else t[c] = 0;
    }
    ready = 1;
  }
  return t;
}

/* A feature as dimension | sign << 31: the low 32 bits of its hash pick the
 * dimension (multiply-shift), bit 63 the sign. */
static inline uint32_t feature(uint64_t dims, uint64_t h) {
  return (uint32_t)(((h & 0xffffffffu) * dims) >> 32) | ((uint32_t)(h >> 32) & 0x80000000u);
}

/* Adds +/-w (w as float bits) at the feature's dimension; branch-free, since
 * a sign branch would mispredict half the time. */
static inline void add_feature(float *v, uint32_t f, uint32_t wbits) {
  uint32_t b = wbits ^ (f & 0x80000000u);
  float x;
  memcpy(&x, &b, 4);
  v[f & 0x7fffffffu] += x;
}

static inline uint32_t fbits(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}

/* n-gram hash: the n-gram's bytes packed little-endian into a u64, xor a
 * per-length seed, times the 64-bit golden-ratio constant, high half folded
 * into the low half (so the dimension, taken from the low 32 bits, depends on
 * every byte; the sign is bit 63). Multiplication by an odd constant is a
 * bijection, so distinct n-grams never share a full hash. Integer-only, hence
 * identical on every platform, and one multiply instead of a hash call per
 * n-gram: the n-grams are most of the embedder's work. */
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

/* The word cache: most words of a text are frequent ones, and a word's
 * unigram and n-gram features depend on the word alone, so they are computed
 * once and replayed (in the same order, so the floats are bit-identical to
 * the uncached path). Direct-mapped on the word's bytes; owned by an
 * embedder, which is used by one thread at a time. */
#define CACHE_SLOTS 2048
#define CACHE_MAXW 16
typedef struct hslot {
  uint64_t h;
  uint64_t w[2]; /* the word, zero-padded (words have no NUL byte) */
  uint32_t nf;
  uint32_t f[3 * (CACHE_MAXW + 2)]; /* f[0] the unigram, then the n-grams */
} hslot;
struct lode__hcache {
  hslot slot[CACHE_SLOTS];
};

/* wb[0] = '<', word bytes at wb[1..wl]; wb has 8 spare bytes past the word. */
static inline uint64_t word_features(float *v, uint64_t dims, uint8_t *wb, size_t wl,
                                     uint64_t prev, int have_prev, lode__hcache *cache) {
  const uint32_t ww = fbits(W_WORD), wbg = fbits(W_BIGRAM), wng = fbits(W_NGRAM);
  hslot *sl = NULL;
  uint64_t h;
  if (cache && wl <= CACHE_MAXW) {
    /* the word zero-padded to 16 bytes is its own cache key: a hit needs
     * neither XXH3 (the slot keeps the word's hash) nor a memcmp call */
    uint64_t w0, w1;
    memset(wb + 1 + wl, 0, 16);
    memcpy(&w0, wb + 1, 8);
    memcpy(&w1, wb + 9, 8);
    sl = &cache->slot[mix64(w0 ^ mix64(w1 ^ wl)) & (CACHE_SLOTS - 1)];
    if (sl->w[0] == w0 && sl->w[1] == w1 && sl->nf) {
      h = sl->h;
      add_feature(v, sl->f[0], ww);
      if (have_prev) /* order matters: "new york" and "york new" differ */
        add_feature(v, feature(dims, mix64(prev * 0xc2b2ae3d27d4eb4fULL ^ h ^ SEED_BIGRAM)), wbg);
      for (size_t k = 1; k < sl->nf; k++) add_feature(v, sl->f[k], wng);
      return h;
    }
  }
  h = XXH3_64bits_withSeed(wb + 1, wl, SEED_WORD);
  uint32_t bigram = have_prev ? feature(dims, mix64(prev * 0xc2b2ae3d27d4eb4fULL ^ h ^ SEED_BIGRAM)) : 0;
  uint32_t f[3 * (HASH_MAXW + 2) + 1];
  size_t nf = 0;
  f[nf++] = feature(dims, h);
  wb[wl + 1] = '>';
  size_t m = wl + 2, i = 0;
  memset(wb + m, 0, 8);
  for (; i + 5 <= m; i++) {
    uint64_t x = load_le64(wb + i);
    f[nf++] = feature(dims, mix64((x & 0xffffffULL) ^ SEED_NGRAM3));
    f[nf++] = feature(dims, mix64((x & 0xffffffffULL) ^ SEED_NGRAM4));
    f[nf++] = feature(dims, mix64((x & 0xffffffffffULL) ^ SEED_NGRAM5));
  }
  for (; i + 3 <= m; i++) { /* the word's last 4- and 3-grams */
    uint64_t x = load_le64(wb + i);
    f[nf++] = feature(dims, mix64((x & 0xffffffULL) ^ SEED_NGRAM3));
    if (i + 4 <= m) f[nf++] = feature(dims, mix64((x & 0xffffffffULL) ^ SEED_NGRAM4));
  }
  add_feature(v, f[0], ww);
  if (have_prev) add_feature(v, bigram, wbg);
  for (size_t k = 1; k < nf; k++) add_feature(v, f[k], wng);
  if (sl) {
    sl->h = h;
    sl->nf = (uint32_t)nf;
    memset(sl->w, 0, sizeof sl->w);
    memcpy(sl->w, wb + 1, wl);
    memcpy(sl->f, f, nf * sizeof *f);
  }
  return h;
}

static void hash_text(const char *s, size_t n, float *v, int64_t dims, lode__hcache *cache);

void lode_embed_hash_text(const char *s, size_t n, float *v, int64_t dims) {
  hash_text(s, n, v, dims, NULL);
}

static void hash_text(const char *s, size_t n, float *v, int64_t dims, lode__hcache *cache) {
  const uint8_t *p = (const uint8_t *)s, *tab = ascii_word_table();
  uint8_t wb[HASH_MAXW + 32];
  size_t wl = 0, i = 0;
  uint64_t prev = 0;
  int have_prev = 0, inword = 0;
  wb[0] = '<';
  while (i < n) {
    /* tight loop over ASCII word bytes; the cap is branch-free (wb has slack
     * past HASH_MAXW, extra bytes overwrite its last slot) */
    uint8_t l;
    while (i < n && (l = tab[p[i]]) != 0) {
      wb[1 + wl] = l;
      wl += wl < HASH_MAXW;
      i++;
      inword = 1;
    }
    if (i >= n) break;
    uint8_t c = p[i];
    if (c >= 0x80) {
      utf8proc_int32_t cp;
      utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
      if (k <= 0) { /* invalid byte: a separator */
        i++;
      } else {
        i += (size_t)k;
        utf8proc_category_t cat = utf8proc_category(cp);
        if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO) {
          inword = 1;
          if (wl + 4 <= HASH_MAXW)
            wl += (size_t)utf8proc_encode_char(utf8proc_tolower(cp), wb + 1 + wl);
          continue;
        }
      }
    } else {
      i++;
    }
    if (inword) {
      prev = word_features(v, (uint64_t)dims, wb, wl, prev, have_prev, cache);
      have_prev = 1;
      inword = 0;
      wl = 0;
    }
  }
  if (inword) word_features(v, (uint64_t)dims, wb, wl, prev, have_prev, cache);
}

/* ---- front ------------------------------------------------------------- */

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

int lode_embedder_new(const lode_embed_opts *o, lode_embedder **out, char *err,
                      size_t errlen) {
  static const lode_embed_opts none;
  if (!o) o = &none;
  *out = NULL;
  int rc = -1;
  lode_embedder *e = calloc(1, sizeof *e);
  if (!e) {
    snprintf(err, errlen, "embedder: out of memory");
    goto done;
  }
  const char *prov = o->provider ? o->provider : "hash";
  if (strcmp(prov, "hash") == 0) {
    e->kind = LODE__EMB_HASH;
    e->dims = o->dims ? o->dims : LODE_EMBED_HASH_DEFAULT_DIMS;
    if (e->dims < 1 || e->dims > 65536) {
      snprintf(err, errlen, "embedder hash: dims must be between 1 and 65536 (got %lld)",
               (long long)o->dims);
      goto done;
    }
    e->model = dupstr("hash-v1");
  } else if (strcmp(prov, "model2vec") == 0) {
    e->kind = LODE__EMB_M2V;
    if (!o->path || !*o->path) {
      snprintf(err, errlen, "embedder model2vec: option 'path' (the model directory) is required");
      goto done;
    }
    if (o->max_length < 0) {
      snprintf(err, errlen, "embedder model2vec: max_length must be >= 1");
      goto done;
    }
    if (lode__m2v_open(o->path, o->max_length ? o->max_length : 512, &e->m2v, &e->dims, err,
                       errlen) != 0)
      goto done;
    e->model = dupstr(o->path);
  } else if (strcmp(prov, "openai") == 0) {
    e->kind = LODE__EMB_OAI;
    if (lode__oai_open(o, &e->oai, err, errlen) != 0) goto done;
    e->dims = o->dimensions;
    e->model = dupstr(lode__oai_model(e->oai));
  } else {
    snprintf(err, errlen, "embedder: unknown provider '%s' (use hash, model2vec or openai)", prov);
    goto done;
  }
  if (!e->model) {
    snprintf(err, errlen, "embedder: out of memory");
    goto done;
  }
  *out = e;
  e = NULL;
  rc = 0;
done:
  lode_embedder_free(e);
  return rc;
}

void lode_embedder_free(lode_embedder *e) {
  if (!e) return;
  if (e->m2v) lode__m2v_free(e->m2v);
  if (e->oai) lode__oai_free(e->oai);
  free(e->hcache);
  free(e->model);
  free(e);
}

int lode_embed(lode_embedder *e, const char *const *texts, const size_t *lens, size_t n,
               lode_matrix *out, char *err, size_t errlen) {
  out->rows = out->dims = 0;
  out->data = NULL;
  if (e->kind == LODE__EMB_OAI) {
    memset(&e->usage, 0, sizeof e->usage);
    if (lode__oai_embed(e->oai, texts, lens, n, out, &e->usage, err, errlen) != 0) return -1;
    e->dims = out->dims;
    return 0;
  }
  if (e->kind == LODE__EMB_HASH && !e->hcache) e->hcache = calloc(1, sizeof *e->hcache);
  float *d = lode_matrix_alloc((int64_t)n, e->dims);
  if (!d) {
    snprintf(err, errlen, "embed: %zu x %lld matrix is too large", n, (long long)e->dims);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    size_t len = lens ? lens[i] : strlen(texts[i]);
    float *v = d + (int64_t)i * e->dims;
    if (e->kind == LODE__EMB_HASH) {
      hash_text(texts[i], len, v, e->dims, e->hcache);
      lode_l2_normalize(v, e->dims);
    } else if (lode__m2v_embed(e->m2v, texts[i], len, v) != 0) {
      snprintf(err, errlen, "embed model2vec: out of memory on text %zu", i + 1);
      free(d);
      return -1;
    }
  }
  out->rows = (int64_t)n;
  out->dims = e->dims;
  out->data = d;
  return 0;
}

int64_t lode_embedder_dims(const lode_embedder *e) { return e->dims; }

const char *lode_embedder_provider(const lode_embedder *e) {
  return e->kind == LODE__EMB_HASH ? "hash" : e->kind == LODE__EMB_M2V ? "model2vec" : "openai";
}

const char *lode_embedder_model(const lode_embedder *e) { return e->model; }

const lode_embed_usage *lode_embedder_usage(const lode_embedder *e) { return &e->usage; }
