/* bench_store.c - lode_store_search against a plain memory read of the same
 * bytes and against sqlite-vec (vec0) on the same vectors, in one run.
 *
 *   bench_store N DIMS QUERIES WORKDIR [VEC0_SO]
 *
 * Builds a fresh store of N random unit vectors (1000 chunks per document),
 * times the first search (it loads the vector cache) and then QUERIES
 * searches for the top 10; times a sum over the very array the search scans
 * (the store's vector cache: the memory-bandwidth floor for any exact scan);
 * and, when VEC0_SO is given,
 * loads the same vectors into a vec0 table and times its KNN query, checking
 * that both return the same ids. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "kernels/store_int.h" /* the bench reads the search cache itself */

#define K 10
#define PER_DOC 1000

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void unit(float *v, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; i++) s += (double)v[i] * v[i];
  float inv = (float)(1.0 / sqrt(s));
  for (int64_t i = 0; i < d; i++) v[i] *= inv;
}

/* The same 16-accumulator shape as the search's dot product, so the two
 * differ only by the multiply and the top-k bookkeeping. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default"))) /* as the search's scan */
#endif
static float sum_all(const float *restrict a, size_t n) {
  float acc[16] = {0};
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) acc[j] += a[i + j];
  for (; i < n; i++) acc[0] += a[i];
  float s = 0;
  for (int j = 0; j < 16; j++) s += acc[j];
  return s;
}

static double now_s(void) { return (double)lode_mono_ns() / 1e9; }

/* Medians, not means: the machine is shared and a stray stall in one query
 * should not decide the figure. */
static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_d);
  return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static int die(const char *what, const char *err) {
  fprintf(stderr, "bench_store: %s: %s\n", what, err);
  return 1;
}

static int bench_vec0(const char *so, const char *dbpath, const float *vecs, int64_t n,
                      int64_t dims, const float *queries, int nq, const int64_t *our_ids) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  char *msg = NULL, sql[256];
  int rc = 1;
  remove(dbpath);
  if (sqlite3_open(dbpath, &db) != SQLITE_OK) goto dberr;
  sqlite3_enable_load_extension(db, 1);
  if (sqlite3_load_extension(db, so, NULL, &msg) != SQLITE_OK) {
    fprintf(stderr, "bench_store: cannot load %s: %s\n", so, msg ? msg : "?");
    goto done;
  }
  snprintf(sql, sizeof sql, "CREATE VIRTUAL TABLE v USING vec0(embedding float[%lld])",
           (long long)dims);
  if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "INSERT INTO v(rowid, embedding) VALUES (?, ?)", -1, &st, NULL) !=
          SQLITE_OK)
    goto dberr;
  double t0 = now_s();
  for (int64_t i = 0; i < n; i++) {
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, i + 1);
    sqlite3_bind_blob(st, 2, vecs + i * dims, (int)(dims * 4), SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) goto dberr;
  }
  sqlite3_finalize(st);
  st = NULL;
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) goto dberr;
  printf("  sqlite-vec ingest: %.1f s\n", now_s() - t0);
  if (sqlite3_prepare_v2(db,
                         "SELECT rowid FROM v WHERE embedding MATCH ? AND k = 10 ORDER BY distance",
                         -1, &st, NULL) != SQLITE_OK)
    goto dberr;
  int agree = 1;
  double *times = calloc((size_t)nq, sizeof *times);
  for (int q = 0; q < nq; q++) {
    double t = now_s();
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, queries + q * dims, (int)(dims * 4), SQLITE_STATIC);
    int got = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
      if (got < K && sqlite3_column_int64(st, 0) != our_ids[q * K + got]) agree = 0;
      got++;
    }
    times[q] = now_s() - t;
    if (got != K) agree = 0;
  }
  double med = median(times, nq);
  free(times);
  printf("  sqlite-vec query:  %.2f ms/query median (top %d ids agree with lode: %s)\n",
         med * 1e3, K, agree ? "yes" : "NO");
  printf("VEC0_MS=%.3f\n", med * 1e3);
  rc = 0;
  goto done;
dberr:
  fprintf(stderr, "bench_store: sqlite-vec: %s\n", sqlite3_errmsg(db));
done:
  sqlite3_free(msg);
  sqlite3_finalize(st);
  sqlite3_close(db);
  remove(dbpath);
  return rc;
}

/* ---- backends: the same puts and searches on SQLite and PostgreSQL ---------- */
#define B_PER_DOC 20
static const char *WORDS[] = {"store", "chunk", "vector", "search", "lode", "queue",
                              "workflow", "step", "trace", "replay", "durable", "host",
                              "keyword", "hybrid", "ranking", "filter", "embed", "split"};

static int bench_backend(const char *label, const char *loc, int64_t docs, int64_t dims,
                         int nq) {
  char err[LODE_STORE_ERRLEN];
  lode_store *s = NULL;
  if (lode_store_open(loc, "bench/random", &s, err, sizeof err) != 0) return die("open", err);
  float *v = malloc((size_t)(B_PER_DOC * dims) * sizeof *v);
  char (*texts)[900] = malloc(B_PER_DOC * sizeof *texts);
  lode_store_chunk ch[B_PER_DOC];
  double t0 = now_s();
  for (int64_t d = 0; d < docs; d++) {
    for (int i = 0; i < B_PER_DOC; i++) {
      for (int64_t j = 0; j < dims; j++) v[i * dims + j] = frand();
      unit(v + i * dims, dims);
      size_t len = 0;
      while (len < 800) {
        const char *w = WORDS[(rng >> 7) % (sizeof WORDS / sizeof *WORDS)];
        (void)frand();
        len += (size_t)snprintf(texts[i] + len, sizeof texts[i] - len, "%s%lld ", w,
                                (long long)(rng % 1000));
      }
      ch[i] = (lode_store_chunk){texts[i], len, 0, (int64_t)len, "[\"Bench\"]"};
    }
    char path[64], hash[32];
    snprintf(path, sizeof path, "bench/doc%06lld.md", (long long)d);
    snprintf(hash, sizeof hash, "h%lld", (long long)d);
    lode_store_doc doc = {path, hash, NULL, "Bench", "text/markdown", 16000};
    if (lode_store_put(s, &doc, ch, B_PER_DOC, v, dims, err, sizeof err)) return die("put", err);
  }
  double put_s = now_s() - t0;
  lode_store_hit *hits = NULL;
  size_t nh = 0;
  t0 = now_s();
  if (lode_store_search(s, v, dims, K, NULL, &hits, &nh, err, sizeof err))
    return die("search", err);
  double load_s = now_s() - t0;
  lode_store_hits_free(hits, nh);
  double *vt = calloc((size_t)nq, sizeof *vt), *kt = calloc((size_t)nq, sizeof *kt);
  for (int q = 0; q < nq; q++) {
    for (int64_t j = 0; j < dims; j++) v[j] = frand();
    unit(v, dims);
    double t = now_s();
    if (lode_store_search(s, v, dims, K, NULL, &hits, &nh, err, sizeof err))
      return die("search", err);
    vt[q] = now_s() - t;
    lode_store_hits_free(hits, nh);
    char text[64];
    snprintf(text, sizeof text, "%s%d %s", WORDS[q % 18], q * 37 % 1000, WORDS[(q + 5) % 18]);
    t = now_s();
    if (lode_store_search_text(s, text, K, NULL, &hits, &nh, err, sizeof err))
      return die("keyword search", err);
    kt[q] = now_s() - t;
    lode_store_hits_free(hits, nh);
  }
  printf("  %-10s put %6.0f docs/s (%6.0f chunks/s), cache load %.2f s, vector search %6.2f "
         "ms, keyword search %6.2f ms (medians)\n",
         label, (double)docs / put_s, (double)(docs * B_PER_DOC) / put_s, load_s,
         median(vt, nq) * 1e3, median(kt, nq) * 1e3);
  free(vt);
  free(kt);
  free(v);
  free(texts);
  lode_store_free(s);
  return 0;
}

/* bench_store backends DOCS DIMS QUERIES WORKDIR PG_URL */
static int compare_backends(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: bench_store backends DOCS DIMS QUERIES WORKDIR PG_URL\n");
    return 2;
  }
  int64_t docs = atoll(argv[2]), dims = atoll(argv[3]);
  int nq = atoi(argv[4]);
  char path[4096];
  snprintf(path, sizeof path, "%s/bench_backends.db", argv[5]);
  printf("%lld documents x %d chunks (800 bytes of text, %lld dims), one process, one "
         "connection\n",
         (long long)docs, B_PER_DOC, (long long)dims);
  if (bench_backend("SQLite", path, docs, dims, nq) != 0) return 1;
  return bench_backend("PostgreSQL", argv[6], docs, dims, nq);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "backends")) return compare_backends(argc, argv);
  if (argc < 5) {
    fprintf(stderr, "usage: bench_store N DIMS QUERIES WORKDIR [VEC0_SO]\n"
                    "       bench_store backends DOCS DIMS QUERIES WORKDIR PG_URL\n");
    return 2;
  }
  int64_t n = atoll(argv[1]), dims = atoll(argv[2]);
  int nq = atoi(argv[3]);
  char path[4096], vpath[4096], err[LODE_STORE_ERRLEN];
  snprintf(path, sizeof path, "%s/bench_store_%lld.db", argv[4], (long long)n);
  snprintf(vpath, sizeof vpath, "%s/bench_vec0_%lld.db", argv[4], (long long)n);
  float *vecs = malloc((size_t)(n * dims) * sizeof(float));
  float *queries = malloc((size_t)(nq * dims) * sizeof(float));
  int64_t *ids = calloc((size_t)nq * K, sizeof *ids);
  if (!vecs || !queries || !ids) return die("alloc", "out of memory");
  for (int64_t i = 0; i < n; i++) {
    for (int64_t j = 0; j < dims; j++) vecs[i * dims + j] = frand();
    unit(vecs + i * dims, dims);
  }
  for (int q = 0; q < nq; q++) {
    for (int64_t j = 0; j < dims; j++) queries[q * dims + j] = frand();
    unit(queries + q * dims, dims);
  }
  printf("%lld vectors x %lld dims (%.0f MB), top %d, %d queries\n", (long long)n,
         (long long)dims, (double)n * dims * 4 / 1e6, K, nq);

  char tmp[4200];
  const char *suffixes[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(tmp, sizeof tmp, "%s%s", path, suffixes[i]);
    remove(tmp);
  }

  lode_store *s = NULL;
  if (lode_store_open(path, "bench/random", &s, err, sizeof err) != 0) return die("open", err);
  double t0 = now_s();
  lode_store_chunk *chunks = calloc(PER_DOC, sizeof *chunks);
  char docpath[64], texts[PER_DOC][32];
  for (int64_t base = 0; base < n; base += PER_DOC) {
    int64_t m = n - base < PER_DOC ? n - base : PER_DOC;
    for (int64_t i = 0; i < m; i++) {
      snprintf(texts[i], sizeof texts[i], "chunk %lld", (long long)(base + i));
      chunks[i] = (lode_store_chunk){texts[i], strlen(texts[i]), 0, 0, NULL};
    }
    snprintf(docpath, sizeof docpath, "doc%08lld", (long long)(base / PER_DOC));
    lode_store_doc doc = {docpath, NULL, NULL, NULL, "text/plain", -1};
    if (lode_store_put(s, &doc, chunks, (size_t)m, vecs + base * dims, dims, err, sizeof err))
      return die("put", err);
  }
  printf("  lode ingest:       %.1f s\n", now_s() - t0);

  lode_store_hit *hits = NULL;
  size_t nh = 0;
  t0 = now_s();
  if (lode_store_search(s, queries, dims, K, NULL, &hits, &nh, err, sizeof err))
    return die("search", err);
  printf("  lode cache load:   %.2f s (first search)\n", now_s() - t0);
  lode_store_hits_free(hits, nh);

  double *times = calloc((size_t)nq, sizeof *times), *mtimes = calloc((size_t)nq, sizeof *mtimes);
  for (int q = 0; q < nq; q++) {
    double t = now_s();
    if (lode_store_search(s, queries + q * dims, dims, K, NULL, &hits, &nh, err, sizeof err))
      return die("search", err);
    times[q] = now_s() - t;
    for (size_t i = 0; i < nh && i < K; i++) ids[q * K + i] = hits[i].chunk_id;
    lode_store_hits_free(hits, nh);
  }
  double lode_ms = median(times, nq) * 1e3;

  /* the floor: read the bytes the search scans, once per query */
  volatile float sink = 0;
  const float *cache = s->cache.vecs;
  size_t cache_n = (size_t)(s->cache.n * s->cache.dims);
  for (int q = 0; q < nq; q++) {
    double t = now_s();
    sink += sum_all(cache, cache_n);
    mtimes[q] = now_s() - t;
  }
  (void)sink;
  double mem_ms = median(mtimes, nq) * 1e3;
  free(times);
  free(mtimes);
  printf("  lode search:       %.2f ms/query median\n", lode_ms);
  printf("  memory read:       %.2f ms/pass median over the same %.0f MB (%.1f GB/s)\n", mem_ms,
         (double)cache_n * 4 / 1e6, (double)cache_n * 4 / (mem_ms / 1e3) / 1e9);
  printf("  ratio search/memory read: %.2fx (target <= 1.5x)\n", lode_ms / mem_ms);
  printf("LODE_MS=%.3f\nMEM_MS=%.3f\n", lode_ms, mem_ms);
  lode_store_free(s);
  for (int i = 0; i < 3; i++) {
    snprintf(tmp, sizeof tmp, "%s%s", path, suffixes[i]);
    remove(tmp);
  }
  if (argc > 5) {
    free(chunks);
    int rc = bench_vec0(argv[5], vpath, vecs, n, dims, queries, nq, ids);
    free(vecs);
    free(queries);
    free(ids);
    return rc;
  }
  free(chunks);
  free(vecs);
  free(queries);
  free(ids);
  return 0;
}
