/* test_embed.c - the embedders' C API: hash determinism (golden checksum),
 * hash retrieval quality, model2vec against the reference outputs and the
 * quantised variants, clear errors, hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <cjson/cJSON.h>

#include "kernels/embed.h"
#include "kernels/embed_tok.h"
#include "english_like.h"

static char err[1024];

static const char *src_dir(void) {
  const char *d = getenv("LODE_SOURCE_DIR");
  return d ? d : ".";
}

static lode_embedder *open_hash(int64_t dims) {
  lode_embed_opts o = {.provider = "hash", .dims = dims};
  lode_embedder *e = NULL;
  assert_int_equal(lode_embedder_new(&o, &e, err, sizeof err), 0);
  return e;
}

static lode_embedder *open_m2v(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/fixtures/model2vec/%s", src_dir(), name);
  lode_embed_opts o = {.provider = "model2vec", .path = path};
  lode_embedder *e = NULL;
  if (lode_embedder_new(&o, &e, err, sizeof err) != 0) fail_msg("%s", err);
  return e;
}

/* Quantised to 1e-6 before hashing, so the checksum pins the algorithm, not
 * the last ulp of a platform's sqrt. */
static uint64_t checksum(const lode_matrix *m) {
  XXH3_state_t *st = XXH3_createState();
  XXH3_64bits_reset(st);
  for (int64_t i = 0; i < m->rows * m->dims; i++) {
    int32_t q = (int32_t)lrintf(m->data[i] * 1e6f);
    uint8_t b[4] = {(uint8_t)q, (uint8_t)(q >> 8), (uint8_t)(q >> 16), (uint8_t)(q >> 24)};
    XXH3_64bits_update(st, b, 4);
  }
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

static const char *golden_texts[] = {
    "The quick brown fox jumps over the lazy dog.",
    "Durable, traced data pipelines written in Lua 5.4",
    "Ünïcödé ÀÉÎ straße İstanbul ΣΊΣΥΦΟΣ 東京タワー 123 émigré",
    "",
    "   \t\n punctuation only?! ... ",
    "a",
};
#define NGOLDEN (sizeof golden_texts / sizeof *golden_texts)
/* Changing the hash algorithm changes this value: bump lode_kernels_version
 * and docs/embed.md along with it. */
#define GOLDEN_CHECKSUM 0xc3b394d1d66d59cdULL

static void hash_deterministic(void **s) {
  (void)s;
  lode_embedder *e = open_hash(0);
  assert_int_equal(lode_embedder_dims(e), 384);
  lode_matrix a, b;
  assert_int_equal(lode_embed(e, golden_texts, NULL, NGOLDEN, &a, err, sizeof err), 0);
  assert_int_equal(lode_embed(e, golden_texts, NULL, NGOLDEN, &b, err, sizeof err), 0);
  assert_int_equal(a.rows, NGOLDEN);
  assert_memory_equal(a.data, b.data, (size_t)(a.rows * a.dims) * sizeof(float));
  for (int64_t i = 0; i < a.rows; i++) { /* unit rows, except texts with no word */
    double n = 0;
    for (int64_t k = 0; k < a.dims; k++) n += (double)a.data[i * a.dims + k] * a.data[i * a.dims + k];
    if (i == 3) assert_true(n == 0);
    else assert_true(fabs(n - 1) < 1e-5);
  }
  uint64_t c = checksum(&a);
  if (c != GOLDEN_CHECKSUM) fail_msg("hash embedder checksum 0x%016llxULL != golden", (unsigned long long)c);
  /* a new embedder, the same output; case folding makes these equal */
  lode_embedder *e2 = open_hash(384);
  const char *t1[] = {"HELLO World"}, *t2[] = {"hello world"};
  lode_matrix c1, c2;
  assert_int_equal(lode_embed(e2, t1, NULL, 1, &c1, err, sizeof err), 0);
  assert_int_equal(lode_embed(e2, t2, NULL, 1, &c2, err, sizeof err), 0);
  assert_memory_equal(c1.data, c2.data, 384 * sizeof(float));
  free(a.data);
  free(b.data);
  free(c1.data);
  free(c2.data);
  lode_embedder_free(e);
  lode_embedder_free(e2);
}

/* The exact bits of the hash embedder's output: XXH3 of the raw float32
 * words (little-endian) of the golden texts and of 300 texts of 1000 bytes
 * of the bench's English-like words (one embedder, so its word cache carries
 * over from text to text), at 384 and at 7 dims. Unlike GOLDEN_CHECKSUM
 * nothing is rounded away: a speed-up must keep every bit (IEEE 754 float
 * and a correctly rounded sqrt give the same bits everywhere). */
static uint64_t raw_bits(const lode_matrix *m) {
  XXH3_state_t *st = XXH3_createState();
  XXH3_64bits_reset(st);
  for (int64_t i = 0; i < m->rows * m->dims; i++) {
    uint32_t u;
    memcpy(&u, &m->data[i], 4);
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    XXH3_64bits_update(st, b, 4);
  }
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

static uint64_t exact_embed(int64_t dims, const char *const *texts, const size_t *lens, size_t n,
                            lode_matrix *m) {
  lode_embedder *e = open_hash(dims);
  assert_int_equal(lode_embed(e, texts, lens, n, m, err, sizeof err), 0);
  lode_embedder_free(e);
  return raw_bits(m);
}

static void hash_exact_bits(void **s) {
  (void)s;
  enum { NT = 300, CHUNK = 1000 };
  char *text = malloc(NT * CHUNK + ENGLISH_LIKE_SLACK);
  english_like_fill(text, NT * CHUNK, 7);
  const char *texts[NGOLDEN + NT];
  size_t lens[NGOLDEN + NT];
  for (size_t i = 0; i < NGOLDEN; i++) {
    texts[i] = golden_texts[i];
    lens[i] = strlen(golden_texts[i]);
  }
  for (size_t i = 0; i < NT; i++) {
    texts[NGOLDEN + i] = text + i * CHUNK;
    lens[NGOLDEN + i] = CHUNK;
  }
  lode_matrix m;
  uint64_t h384 = exact_embed(384, texts, lens, NGOLDEN + NT, &m);
  /* a few values spelled out: the first nonzero dims of row 0 ("The quick
   * brown fox ...") as float32 bits */
  static const struct {
    int dim;
    uint32_t bits;
  } row0[] = {{3, 0xbd6442dbu}, {9, 0x3d6442dbu}, {14, 0xbd6442dbu}, {15, 0x3d6442dbu}};
  for (int d = 0, k = 0; d < 384 && k < 4; d++) {
    uint32_t u;
    memcpy(&u, &m.data[d], 4);
    if (!u) continue;
    if (d != row0[k].dim || u != row0[k].bits)
      fail_msg("row 0: nonzero #%d is dim %d = 0x%08x, expected dim %d = 0x%08x", k, d, u,
               row0[k].dim, row0[k].bits);
    k++;
  }
  free(m.data);
  uint64_t h7 = exact_embed(7, texts, lens, NGOLDEN + NT, &m);
  free(m.data);
  if (h384 != 0xf0debbd61dca3a1aULL || h7 != 0xcc7fe6256cbce381ULL)
    fail_msg("hash embedder raw bits: 384 dims 0x%016llxULL, 7 dims 0x%016llxULL (changed)",
             (unsigned long long)h384, (unsigned long long)h7);
  free(text);
}

/* Deterministic PRNG (splitmix64) for the generated corpus. */
static uint64_t rng = 42;
static uint64_t next(void) {
  uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

#define NFUNC 60     /* short, frequent function words */
#define NWORDS 4000   /* content words */
#define NPARA 300
#define PARA_WORDS 70 /* a small chunk, as a splitter makes them */
#define QUERY_WORDS 5

/* Paragraphs mix function words (about 40% of tokens, as in English) with
 * content words; a query is QUERY_WORDS of the paragraph's content words in
 * random order, as a person types keywords. */
static void hash_retrieval(void **s) {
  (void)s;
  static const char *syl[] = {"ka", "lo", "mi", "ter", "an", "sul", "ve", "ri", "do", "pen",
                              "gra", "tho", "ex", "qui", "nor", "bel", "sta", "fu", "mon", "ze"};
  static char words[NFUNC + NWORDS][24];
  for (int i = 0; i < NFUNC + NWORDS; i++) {
    int ns = i < NFUNC ? 1 : 2 + (int)(next() % 3);
    words[i][0] = 0;
    for (int k = 0; k < ns; k++) strcat(words[i], syl[next() % 20]);
  }
  char **paras = calloc(NPARA, sizeof *paras), **queries = calloc(NPARA, sizeof *queries);
  for (int p = 0; p < NPARA; p++) {
    paras[p] = calloc(PARA_WORDS * 26, 1);
    queries[p] = calloc(QUERY_WORDS * 26, 1);
    int content[PARA_WORDS], nc = 0;
    for (int w = 0; w < PARA_WORDS; w++) {
      int id;
      if (next() % 10 < 4) {
        id = (int)(next() % NFUNC);
      } else {
        id = NFUNC + (int)(next() % NWORDS);
        content[nc++] = id;
      }
      strcat(paras[p], words[id]);
      strcat(paras[p], w % 12 == 11 ? ". " : " ");
    }
    for (int q = 0; q < QUERY_WORDS && nc > 0; q++) {
      strcat(queries[p], words[content[next() % (uint64_t)nc]]);
      strcat(queries[p], " ");
    }
  }
  lode_embedder *e = open_hash(384);
  lode_matrix P, Q;
  assert_int_equal(lode_embed(e, (const char *const *)paras, NULL, NPARA, &P, err, sizeof err), 0);
  assert_int_equal(lode_embed(e, (const char *const *)queries, NULL, NPARA, &Q, err, sizeof err), 0);
  /* the embedder's word cache replays features bit-identically */
  for (int p = 0; p < NPARA; p++) {
    float v[384] = {0};
    lode_embed_hash_text(paras[p], strlen(paras[p]), v, 384);
    lode_l2_normalize(v, 384);
    assert_memory_equal(v, lode_matrix_row(&P, p), sizeof v);
  }
  int hits = 0;
  for (int q = 0; q < NPARA; q++) {
    float own = lode_dot_f32(lode_matrix_row(&Q, q), lode_matrix_row(&P, q), P.dims);
    int better = 0;
    for (int p = 0; p < NPARA; p++)
      if (p != q && lode_dot_f32(lode_matrix_row(&Q, q), lode_matrix_row(&P, p), P.dims) > own) better++;
    hits += better < 5;
  }
  double recall = (double)hits / NPARA;
  print_message("hash recall@5 = %.3f over %d queries\n", recall, NPARA);
  assert_true(recall >= 0.9);
  for (int p = 0; p < NPARA; p++) {
    free(paras[p]);
    free(queries[p]);
  }
  free(paras);
  free(queries);
  free(P.data);
  free(Q.data);
  lode_embedder_free(e);
}

static void hash_hostile(void **s) {
  (void)s;
  lode_embedder *e = open_hash(7);
  size_t n = 1 << 16;
  char *junk = malloc(n);
  for (size_t i = 0; i < n; i++) junk[i] = (char)(next() & 0xff);
  char *longword = malloc(n);
  memset(longword, 'x', n);
  const char *texts[] = {junk, longword};
  size_t lens[] = {n, n};
  lode_matrix m;
  assert_int_equal(lode_embed(e, texts, lens, 2, &m, err, sizeof err), 0);
  assert_int_equal(m.dims, 7);
  free(m.data);
  free(junk);
  free(longword);
  lode_embedder_free(e);
  lode_embed_opts bad = {.provider = "hash", .dims = -3};
  lode_embedder *x = NULL;
  assert_int_equal(lode_embedder_new(&bad, &x, err, sizeof err), -1);
  assert_non_null(strstr(err, "dims"));
  lode_embed_opts unk = {.provider = "word2vec"};
  assert_int_equal(lode_embedder_new(&unk, &x, err, sizeof err), -1);
  assert_non_null(strstr(err, "word2vec"));
}

/* Reads a reference file: [[x, y, ...]] */
static int read_ref(const char *name, double *v, int max) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/fixtures/model2vec/%s", src_dir(), name);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  int n = 0, c;
  while ((c = fgetc(f)) == '[' || c == ' ') {}
  ungetc(c, f);
  while (n < max && fscanf(f, " %lf ,", &v[n]) == 1) n++;
  fclose(f);
  return n;
}

static void long_hello(char *buf) {
  buf[0] = 0;
  for (int i = 0; i < 1000; i++) strcat(buf, i ? " hello" : "hello");
}

static void check_ref(lode_embedder *e, const char *text, const char *ref) {
  double want[128];
  int n = read_ref(ref, want, 128);
  assert_int_equal(n, lode_embedder_dims(e));
  lode_matrix m;
  const char *t[] = {text};
  assert_int_equal(lode_embed(e, t, NULL, 1, &m, err, sizeof err), 0);
  for (int i = 0; i < n; i++) {
    double rel = fabs(m.data[i] - want[i]) / fmax(fabs(want[i]), 1e-30);
    if (rel > 1e-5) fail_msg("%s element %d: %.9g vs reference %.9g", ref, i, m.data[i], want[i]);
  }
  free(m.data);
}

static void m2v_reference(void **s) {
  (void)s;
  static char longtext[6001];
  long_hello(longtext);
  lode_embedder *e = open_m2v("test-model-float32");
  assert_int_equal(lode_embedder_dims(e), 2);
  check_ref(e, "hello world", "embeddings_short.json");
  /* tokens past max_length 512 are dropped; the reference differs from the
   * exact hello row by ~4e-6 relative (numpy's float32 running sum) */
  check_ref(e, longtext, "embeddings_long.json");
  lode_embedder_free(e);
  e = open_m2v("test-model-vocab-quantized");
  assert_int_equal(lode_embedder_dims(e), 64);
  check_ref(e, longtext, "embeddings_vocab_quantized.json");
  lode_embedder_free(e);
}

static const char *sample_texts[] = {
    "hello world", "The quick brown fox jumps over the lazy dog.",
    "Durable pipelines are checkpointed in SQLite.", "embedding vectors for retrieval",
    "Café naïve résumé", "numbers 12345 and symbols #$%", "a much longer sentence about "
    "tokenizers, vocabularies and static embeddings distilled from transformers"};
#define NSAMPLE (sizeof sample_texts / sizeof *sample_texts)

static double min_cos_vs_f32(const char *variant) {
  lode_embedder *f = open_m2v("test-model-float32"), *q = open_m2v(variant);
  lode_matrix a, b;
  assert_int_equal(lode_embed(f, sample_texts, NULL, NSAMPLE, &a, err, sizeof err), 0);
  assert_int_equal(lode_embed(q, sample_texts, NULL, NSAMPLE, &b, err, sizeof err), 0);
  double worst = 1;
  for (int64_t i = 0; i < a.rows; i++) {
    double c = lode_dot_f32(lode_matrix_row(&a, i), lode_matrix_row(&b, i), a.dims);
    if (c < worst) worst = c;
  }
  free(a.data);
  free(b.data);
  lode_embedder_free(f);
  lode_embedder_free(q);
  return worst;
}

static void m2v_quantised(void **s) {
  (void)s;
  /* F16 keeps 11 significant bits: per-component relative error <= 2^-11,
   * so 1 - cos <= ~(2^-11)^2 = 2.4e-7; 1e-5 leaves margin for the mean. */
  double c16 = min_cos_vs_f32("test-model-float16");
  print_message("float16 min cosine vs float32 = %.9f\n", c16);
  assert_true(c16 >= 1 - 1e-5);
  /* I8 is the float rows rounded to integers without scale: components of
   * magnitude ~3..10 lose up to 0.5, i.e. up to ~10%% on the small
   * component of a 2-D row: angles within ~6 degrees, cos >= 0.99. */
  double c8 = min_cos_vs_f32("test-model-int8");
  print_message("int8 min cosine vs float32 = %.9f\n", c8);
  assert_true(c8 >= 0.99);
}

static void m2v_errors(void **s) {
  (void)s;
  lode_embedder *e = NULL;
  lode_embed_opts o = {.provider = "model2vec", .path = "/nonexistent/model"};
  assert_int_equal(lode_embedder_new(&o, &e, err, sizeof err), -1);
  assert_non_null(strstr(err, "/nonexistent/model/config.json"));
  lode_embed_opts np = {.provider = "model2vec"};
  assert_int_equal(lode_embedder_new(&np, &e, err, sizeof err), -1);
  assert_non_null(strstr(err, "path"));
  /* a BPE tokenizer is refused with the file and the type named */
  char dir[] = "/tmp/lode-embed-test-XXXXXX", path[512];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/config.json", dir);
  FILE *f = fopen(path, "w");
  fputs("{\"normalize\": true}", f);
  fclose(f);
  char src[1024];
  snprintf(src, sizeof src, "cp %s/tests/fixtures/model2vec/test-model-float32/model.safetensors %s/",
           src_dir(), dir);
  assert_int_equal(system(src), 0);
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  f = fopen(path, "w");
  fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", f);
  fclose(f);
  lode_embed_opts b = {.provider = "model2vec", .path = dir};
  assert_int_equal(lode_embedder_new(&b, &e, err, sizeof err), -1);
  assert_non_null(strstr(err, "tokenizer.json"));
  assert_non_null(strstr(err, "BPE"));
  /* a truncated safetensors file */
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  f = fopen(path, "w");
  fputs("\x40\x00\x00\x00\x00\x00\x00\x00{\"embeddings\":", f);
  fclose(f);
  assert_int_equal(lode_embedder_new(&b, &e, err, sizeof err), -1);
  assert_non_null(strstr(err, "model.safetensors"));
  /* hostile headers: each refused with the file named, none crashes */
  static const char *bad_headers[] = {
      "{\"embeddings\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,1600]}}",
      "{\"embeddings\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,16]}}",
      "{\"embeddings\":{\"dtype\":\"F32\",\"shape\":[-2,2],\"data_offsets\":[0,16]}}",
      "{\"embeddings\":{\"dtype\":\"Q4\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
      "{\"embeddings\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
      "{\"embeddings\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,0]}}",
      "{\"weights\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
      "[1,2,3]",
      "{\"embeddings\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
      "\"mapping\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
  };
  for (size_t k = 0; k < sizeof bad_headers / sizeof *bad_headers; k++) {
    f = fopen(path, "wb");
    size_t hl = strlen(bad_headers[k]);
    uint8_t len8[8] = {(uint8_t)hl, (uint8_t)(hl >> 8), 0, 0, 0, 0, 0, 0};
    fwrite(len8, 1, 8, f);
    fwrite(bad_headers[k], 1, hl, f);
    float data[4] = {1e30f, 2, 3, 4}; /* mapping case: 1e30 as int rows */
    fwrite(data, sizeof data, 1, f);
    fclose(f);
    if (lode_embedder_new(&b, &e, err, sizeof err) != -1) fail_msg("header %zu accepted", k);
    if (!strstr(err, "model.safetensors")) fail_msg("header %zu: %s", k, err);
  }
  snprintf(src, sizeof src, "rm -rf %s", dir);
  assert_int_equal(system(src), 0);
}

static void m2v_hostile(void **s) {
  (void)s;
  lode_embedder *e = open_m2v("test-model-vocab-quantized"), *w = open_m2v("test-model-float32");
  size_t n = 1 << 15;
  char *junk = malloc(n);
  for (size_t i = 0; i < n; i++) junk[i] = (char)(next() & 0xff);
  const char *texts[] = {junk, "", "   ", "\xff\xfe"};
  size_t lens[] = {n, 0, 3, 2};
  lode_matrix m;
  assert_int_equal(lode_embed(e, texts, lens, 4, &m, err, sizeof err), 0);
  free(m.data);
  assert_int_equal(lode_embed(w, texts, lens, 4, &m, err, sizeof err), 0);
  for (int k = 0; k < 2; k++) assert_true(m.data[1 * 2 + k] == 0); /* empty -> zero vector */
  free(m.data);
  free(junk);
  lode_embedder_free(e);
  lode_embedder_free(w);
}

/* lode's tokenizers give exactly the ids of the reference implementation;
 * for WordPiece the unknown token is dropped from the reference first, as
 * model2vec drops it (for Unigram it keeps it: see embed_tok.c). */
static void m2v_tokenizer_reference(void **s) {
  (void)s;
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/fixtures/model2vec/tokens_reference.json", src_dir());
  char *text = NULL;
  size_t len = 0;
  assert_int_equal(lode__read_file(path, 1 << 24, &text, &len, err, sizeof err), 0);
  cJSON *ref = cJSON_ParseWithLength(text, len);
  assert_non_null(ref);
  const cJSON *sents = cJSON_GetObjectItem(ref, "sentences");
  const char *models[] = {"test-model-float32", "test-model-vocab-quantized"};
  for (int k = 0; k < 2; k++) {
    snprintf(path, sizeof path, "%s/tests/fixtures/model2vec/%s/tokenizer.json", src_dir(), models[k]);
    lode__tok *t = NULL;
    if (lode__tok_load(path, &t, err, sizeof err)) fail_msg("%s", err);
    const cJSON *want = cJSON_GetObjectItem(ref, models[k]);
    assert_int_equal(cJSON_GetArraySize(want), cJSON_GetArraySize(sents));
    for (int i = 0; i < cJSON_GetArraySize(sents); i++) {
      const char *sent = cJSON_GetArrayItem(sents, i)->valuestring;
      lode__ids ids = {0};
      assert_int_equal(lode__tok_encode(t, sent, strlen(sent), &ids, 100000), 0);
      const cJSON *w = cJSON_GetArrayItem(want, i), *x;
      size_t j = 0;
      int ok = 1;
      cJSON_ArrayForEach(x, w) {
        if (k == 0 && (int)x->valuedouble == 1) continue; /* WordPiece [UNK] */
        if (j >= ids.n || ids.v[j] != (int32_t)x->valuedouble) ok = 0;
        j++;
      }
      if (!ok || j != ids.n) fail_msg("%s: tokens differ for \"%s\"", models[k], sent);
      free(ids.v);
    }
    lode__tok_free(t);
  }
  cJSON_Delete(ref);
  free(text);
}

/* Mutated tokenizer.json files (bytes replaced by JSON-significant ones):
 * each either loads and then tokenises hostile text, or fails with the file
 * named; nothing crashes (run under ASan/UBSan too). */
static void tok_fuzz(void **s) {
  (void)s;
  static const char *seeds[] = {
      "{\"normalizer\":{\"type\":\"BertNormalizer\",\"lowercase\":true},"
      "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},\"added_tokens\":[{\"id\":0,"
      "\"content\":\"[UNK]\"}],\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
      "\"max_input_chars_per_word\":5,\"vocab\":{\"[UNK]\":0,\"a\":1,\"##b\":2,\"ab\":3,\"\u00e9\":4}}}",
      "{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKC\"},"
      "{\"type\":\"Replace\",\"pattern\":{\"String\":\"x\"},\"content\":\" x \"},"
      "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"},{\"type\":\"Strip\"}]},"
      "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"always\","
      "\"split\":true},\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"byte_fallback\":true,"
      "\"vocab\":[[\"<unk>\",0],[\"\u2581a\",-1.5],[\"b\",-2],[\"<0x41>\",-3],[\"\u2581\",-1]]}}",
  };
  static const char subst[] = "{}[]\":,0-9x\\ ";
  char dir[] = "/tmp/lode-tokfuzz-XXXXXX", path[512];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  const char *texts[] = {"ab abab a\xc3\xa9 xx A", "\xff\xfe[UNK]", "", "aaaaaaaaaaaaaa b"};
  int loaded = 0;
  for (int seed = 0; seed < 2; seed++) {
    for (int it = 0; it < 300; it++) {
      size_t n = strlen(seeds[seed]);
      char *j = malloc(n + 1);
      memcpy(j, seeds[seed], n + 1);
      int muts = it == 0 ? 0 : 1 + (int)(next() % 3);
      for (int m = 0; m < muts; m++) j[next() % n] = subst[next() % (sizeof subst - 1)];
      FILE *f = fopen(path, "w");
      fputs(j, f);
      fclose(f);
      free(j);
      lode__tok *t = NULL;
      if (lode__tok_load(path, &t, err, sizeof err) != 0) {
        if (!strstr(err, "tokenizer.json")) fail_msg("error without the file: %s", err);
        continue;
      }
      loaded++;
      for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        lode__ids ids = {0};
        assert_int_equal(lode__tok_encode(t, texts[k], strlen(texts[k]), &ids, 512), 0);
        for (size_t q = 0; q < ids.n; q++) assert_true(ids.v[q] >= 0 && ids.v[q] <= lode__tok_max_id(t));
        free(ids.v);
      }
      lode__tok_free(t);
    }
  }
  assert_true(loaded >= 2); /* the unmutated seeds load */
  unlink(path);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(hash_deterministic), cmocka_unit_test(hash_exact_bits),
      cmocka_unit_test(hash_retrieval),
      cmocka_unit_test(hash_hostile),       cmocka_unit_test(m2v_reference),
      cmocka_unit_test(m2v_quantised),      cmocka_unit_test(m2v_errors),
      cmocka_unit_test(m2v_hostile),        cmocka_unit_test(m2v_tokenizer_reference),
      cmocka_unit_test(tok_fuzz),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
