/* test_store.c - the store: idempotent atomic puts, deletes, identity checks,
 * cache reloads across connections and processes, search results equal to a
 * brute-force reference over random vectors, several k and filters, keyword
 * and hybrid search, identical files collapsed.
 *
 * The same tests run on both backends: on SQLite by default, on PostgreSQL
 * with LODE_TEST_STORE=pg and LODE_TEST_PG=URL (ctest's c.test_store.pg runs
 * them under tests/pg/pgserver.py); each test then starts from an empty
 * schema lode_store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "kernels/store.h"

static char tmpdir[256], dbpath[300];
static char err[LODE_STORE_ERRLEN];

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/lode-test-store-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static int on_pg(void) {
  const char *b = getenv("LODE_TEST_STORE");
  return b && !strcmp(b, "pg");
}

/* The location of a new, empty store: a file, or the test server's database
 * with the store's schema dropped. */
static void fresh_location(const char *name) {
  if (!on_pg()) {
    snprintf(dbpath, sizeof dbpath, "%s/%s", tmpdir, name);
    return;
  }
  const char *url = getenv("LODE_TEST_PG");
  if (!url) fail_msg("LODE_TEST_STORE=pg needs LODE_TEST_PG (tests/pg/pgserver.py run --)");
  snprintf(dbpath, sizeof dbpath, "%s", url);
  char cmd[600];
  snprintf(cmd, sizeof cmd,
           "psql -X -q -d '%s' -c 'DROP SCHEMA IF EXISTS lode_store CASCADE' >/dev/null 2>&1",
           url);
  if (system(cmd) != 0) fail_msg("cannot reset the store schema in %s", url);
}

static lode_store *fresh(const char *name, const char *embedder) {
  fresh_location(name);
  lode_store *s = NULL;
  if (lode_store_open(dbpath, embedder, &s, err, sizeof err) != 0) fail_msg("open: %s", err);
  return s;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (float)((double)(rng >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}

static void random_unit(float *v, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; i++) {
    v[i] = frand();
    s += (double)v[i] * v[i];
  }
  for (int64_t i = 0; i < d; i++) v[i] = (float)(v[i] / sqrt(s));
}

static void put_doc(lode_store *s, const char *path, const char *hash, const char *mime,
                    size_t n, const float *vecs, int64_t dims) {
  lode_store_chunk *c = calloc(n ? n : 1, sizeof *c);
  char (*texts)[64] = calloc(n ? n : 1, 64);
  for (size_t i = 0; i < n; i++) {
    snprintf(texts[i], 64, "%s#%zu", path, i + 1);
    c[i] = (lode_store_chunk){texts[i], strlen(texts[i]), (int64_t)i * 10, (int64_t)i * 10 + 9,
                              "[\"H1\",\"H2\"]"};
  }
  lode_store_doc d = {path, hash, "{\"k\":1}", "Title", mime, 123};
  if (lode_store_put(s, &d, c, n, vecs, vecs ? dims : 0, err, sizeof err) != 0)
    fail_msg("put %s: %s", path, err);
  free(c);
  free(texts);
}

static void counts(lode_store *s, int64_t want_docs, int64_t want_chunks) {
  int64_t docs = -1, chunks = -1;
  assert_int_equal(lode_store_count(s, &docs, &chunks, err, sizeof err), 0);
  assert_int_equal(docs, want_docs);
  assert_int_equal(chunks, want_chunks);
}

/* 7a: put twice -> no duplicate chunk; a re-put replaces */
static void test_put_idempotent(void **state) {
  (void)state;
  lode_store *s = fresh("idem.db", "test/v1/4");
  float v[3 * 4];
  for (int i = 0; i < 12; i++) v[i] = (float)i;
  put_doc(s, "a.md", "h1", "text/markdown", 3, v, 4);
  put_doc(s, "a.md", "h1", "text/markdown", 3, v, 4);
  counts(s, 1, 3);
  int found = 0;
  assert_int_equal(lode_store_has(s, "a.md", "h1", &found, err, sizeof err), 0);
  assert_true(found);
  assert_int_equal(lode_store_has(s, "a.md", "h2", &found, err, sizeof err), 0);
  assert_false(found);
  assert_int_equal(lode_store_has(s, "b.md", "h1", &found, err, sizeof err), 0);
  assert_false(found);
  /* a new version with fewer chunks replaces the old one */
  put_doc(s, "a.md", "h2", "text/markdown", 2, v, 4);
  counts(s, 1, 2);
  assert_int_equal(lode_store_has(s, "a.md", "h2", &found, err, sizeof err), 0);
  assert_true(found);
  put_doc(s, "b.md", NULL, "text/markdown", 1, v, 4);
  counts(s, 2, 3);
  lode_store_record rec;
  assert_int_equal(lode_store_get(s, "a.md", &rec, &found, err, sizeof err), 0);
  assert_true(found);
  assert_string_equal(rec.hash, "h2");
  assert_string_equal(rec.metadata, "{\"k\":1}");
  assert_string_equal(rec.title, "Title");
  assert_int_equal(rec.bytes, 123);
  assert_int_equal(rec.chunks, 2);
  lode_store_record_free(&rec);
  assert_int_equal(lode_store_get(s, "zzz", &rec, &found, err, sizeof err), 0);
  assert_false(found);
  /* search sees exactly the current chunks */
  lode_store_hit *hits;
  size_t n;
  assert_int_equal(lode_store_search(s, v, 4, 100, NULL, &hits, &n, err, sizeof err), 0);
  assert_int_equal(n, 3);
  lode_store_hits_free(hits, n);

  int removed = 0;
  assert_int_equal(lode_store_delete(s, "a.md", &removed, err, sizeof err), 0);
  assert_true(removed);
  assert_int_equal(lode_store_delete(s, "a.md", &removed, err, sizeof err), 0);
  assert_false(removed);
  counts(s, 1, 1);
  assert_int_equal(lode_store_search(s, v, 4, 100, NULL, &hits, &n, err, sizeof err), 0);
  assert_int_equal(n, 1);
  assert_string_equal(hits[0].path, "b.md");
  lode_store_hits_free(hits, n);
  lode_store_free(s);
}

/* A failed put changes nothing: the old version stays whole. */
static void test_put_atomic_and_checked(void **state) {
  (void)state;
  lode_store *s = fresh("atomic.db", "test/v1/4");
  float v[8] = {1, 0, 0, 0, 0, 1, 0, 0};
  put_doc(s, "a.md", "h1", "text/plain", 2, v, 4);
  float bad[8] = {1, 0, 0, 0, NAN, 1, 0, 0};
  lode_store_chunk c[2] = {{"x", 1, 0, 1, NULL}, {"y", 1, 1, 2, NULL}};
  lode_store_doc d = {"a.md", "h2", NULL, NULL, "text/plain", -1};
  assert_int_equal(lode_store_put(s, &d, c, 2, bad, 4, err, sizeof err), -1);
  assert_non_null(strstr(err, "non-finite"));
  assert_non_null(strstr(err, dbpath));
  counts(s, 1, 2);
  int found = 0;
  lode_store_has(s, "a.md", "h1", &found, err, sizeof err);
  assert_true(found);
  /* other dims than the store's */
  assert_int_equal(lode_store_put(s, &d, c, 1, v, 3, err, sizeof err), -1);
  assert_non_null(strstr(err, "dims"));
  assert_int_equal(lode_store_dims(s), 4);
  /* a query of other dims */
  lode_store_hit *hits;
  size_t n;
  assert_int_equal(lode_store_search(s, v, 3, 5, NULL, &hits, &n, err, sizeof err), -1);
  assert_non_null(strstr(err, "3 dims"));
  float nanq[4] = {NAN, 0, 0, 0};
  assert_int_equal(lode_store_search(s, nanq, 4, 5, NULL, &hits, &n, err, sizeof err), -1);
  assert_int_equal(lode_store_search(s, v, 4, -1, NULL, &hits, &n, err, sizeof err), -1);
  assert_int_equal(lode_store_search(s, v, 4, 0, NULL, &hits, &n, err, sizeof err), 0);
  assert_int_equal(n, 0);
  lode_store_free(s);

  /* the embedder identity is recorded and enforced */
  lode_store *t = NULL;
  assert_int_equal(lode_store_open(dbpath, "other/model/4", &t, err, sizeof err), -1);
  assert_null(t);
  assert_non_null(strstr(err, "test/v1/4"));
  assert_int_equal(lode_store_open(dbpath, NULL, &t, err, sizeof err), 0);
  assert_string_equal(lode_store_embedder(t), "test/v1/4");
  lode_store_free(t);
  /* an unwritable location names the file */
  assert_int_equal(lode_store_open("/nonexistent-dir/x.db", NULL, &t, err, sizeof err), -1);
  assert_non_null(strstr(err, "/nonexistent-dir/x.db"));
}

/* 7b: the planted nearest neighbour comes first */
static void test_planted(void **state) {
  (void)state;
  const int64_t dims = 64, n = 3000;
  lode_store *s = fresh("planted.db", NULL);
  float *v = malloc((size_t)(n * dims) * sizeof *v);
  for (int64_t i = 0; i < n; i++) random_unit(v + i * dims, dims);
  for (int d = 0; d < 3; d++) {
    char path[32];
    snprintf(path, sizeof path, "doc%d.txt", d);
    put_doc(s, path, NULL, "text/plain", 1000, v + d * 1000 * dims, dims);
  }
  float q[64];
  const int64_t target = 1777; /* doc1.txt, chunk 778 */
  for (int64_t j = 0; j < dims; j++) q[j] = v[target * dims + j] + 0.01f * frand();
  lode_store_hit *hits;
  size_t nh;
  assert_int_equal(lode_store_search(s, q, dims, 5, NULL, &hits, &nh, err, sizeof err), 0);
  assert_int_equal(nh, 5);
  assert_string_equal(hits[0].path, "doc1.txt");
  assert_int_equal(hits[0].ordinal, 778);
  assert_string_equal(hits[0].text, "doc1.txt#778");
  assert_int_equal(hits[0].start, 7770);
  assert_int_equal(hits[0].end, 7779);
  assert_string_equal(hits[0].headers, "[\"H1\",\"H2\"]");
  assert_true(hits[0].score > 0.9f);
  for (size_t i = 1; i < nh; i++) assert_true(hits[i].score <= hits[i - 1].score);
  lode_store_hits_free(hits, nh);
  free(v);
  lode_store_free(s);
}

/* 7c: results equal a brute-force reference */
typedef struct ref {
  double score;
  int64_t row;
} ref;

static int cmp_ref(const void *a, const void *b) {
  const ref *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return x->row < y->row ? -1 : x->row > y->row;
}

static void test_brute_force(void **state) {
  (void)state;
  const int64_t dims = 37; /* not a multiple of 16: the scan's tail is used */
  const int docs = 20, per = 150, n = docs * per;
  lode_store *s = fresh("brute.db", NULL);
  float *v = malloc((size_t)(n * dims) * sizeof *v);
  char paths[20][32];
  const char *mimes[20];
  for (int64_t i = 0; i < n; i++) random_unit(v + i * dims, dims);
  for (int d = 0; d < docs; d++) {
    snprintf(paths[d], sizeof paths[d], "%s/d%d.txt", d % 3 ? "docs" : "notes", d);
    mimes[d] = d % 2 ? "text/html" : "text/plain";
    put_doc(s, paths[d], NULL, mimes[d], per, v + (int64_t)d * per * dims, dims);
  }
  ref *r = malloc((size_t)n * sizeof *r);
  const lode_store_filter filters[] = {
      {NULL, NULL, NULL},     {"docs/", NULL, NULL},   {NULL, "text/html", NULL},
      {"notes/", "text/plain", NULL}, {"nothing/", NULL, NULL}, {"docs/d1", NULL, NULL},
      {NULL, NULL, "docs/*"}, {NULL, NULL, "d1*.txt"}};
  const int64_t ks[] = {1, 3, 10, 64, 5000};
  for (int qi = 0; qi < 5; qi++) {
    float q[37];
    random_unit(q, dims);
    for (size_t fi = 0; fi < sizeof filters / sizeof filters[0]; fi++) {
      const lode_store_filter *f = &filters[fi];
      int m = 0;
      for (int64_t i = 0; i < n; i++) {
        int d = (int)(i / per);
        if (f->path_prefix && strncmp(paths[d], f->path_prefix, strlen(f->path_prefix))) continue;
        if (f->mime && strcmp(mimes[d], f->mime)) continue;
        /* the two globs: docs/ and its files, d1*.txt (matched against the file name) */
        if (f->path_glob && !(!strcmp(f->path_glob, "d1*.txt") ? !strncmp(strrchr(paths[d], '/') + 1, "d1", 2)
                                                     : !strncmp(paths[d], "docs/", 5)))
          continue;
        double sc = 0;
        for (int64_t j = 0; j < dims; j++) sc += (double)v[i * dims + j] * q[j];
        r[m++] = (ref){sc, i};
      }
      qsort(r, (size_t)m, sizeof *r, cmp_ref);
      for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        lode_store_hit *hits;
        size_t nh;
        assert_int_equal(lode_store_search(s, q, dims, ks[ki], f, &hits, &nh, err, sizeof err), 0);
        size_t want = (size_t)(ks[ki] < m ? ks[ki] : m);
        assert_int_equal(nh, want);
        for (size_t i = 0; i < nh; i++) {
          int d = (int)(r[i].row / per);
          char text[64];
          snprintf(text, sizeof text, "%s#%d", paths[d], (int)(r[i].row % per) + 1);
          /* float vs double sums differ in the last bits: a rank may swap
           * only with a reference neighbour of (nearly) the same score */
          if (strcmp(hits[i].text, text) != 0) {
            int tie = (i > 0 && fabs(r[i - 1].score - r[i].score) < 1e-5) ||
                      (i + 1 < (size_t)m && fabs(r[i + 1].score - r[i].score) < 1e-5);
            if (!tie)
              fail_msg("q%d filter %zu k=%lld rank %zu: got %s, want %s", qi, fi,
                       (long long)ks[ki], i, hits[i].text, text);
          }
          assert_true(fabs(hits[i].score - r[i].score) < 1e-5);
          if (f->mime) assert_string_equal(mimes[atoi(strrchr(hits[i].path, '/') + 2)], f->mime);
          if (f->path_prefix)
            assert_true(!strncmp(hits[i].path, f->path_prefix, strlen(f->path_prefix)));
        }
        lode_store_hits_free(hits, nh);
      }
    }
  }
  free(r);
  free(v);
  lode_store_free(s);
}

/* The cache notices writes from another connection (generation counter). */
static void test_reload_across_connections(void **state) {
  (void)state;
  const int64_t dims = 8;
  lode_store *a = fresh("gen.db", NULL);
  lode_store *b = NULL;
  assert_int_equal(lode_store_open(dbpath, NULL, &b, err, sizeof err), 0);
  float v[8 * 4];
  for (int i = 0; i < 4; i++) random_unit(v + i * dims, dims);
  put_doc(a, "one.txt", NULL, "text/plain", 3, v, dims);
  lode_store_hit *hits;
  size_t nh;
  assert_int_equal(lode_store_search(b, v + 3 * dims, dims, 1, NULL, &hits, &nh, err, sizeof err), 0);
  assert_int_equal(nh, 1);
  assert_string_equal(hits[0].path, "one.txt");
  lode_store_hits_free(hits, nh);
  /* a writes the exact query vector: b's next search must see it */
  put_doc(a, "two.txt", NULL, "text/plain", 1, v + 3 * dims, dims);
  assert_int_equal(lode_store_search(b, v + 3 * dims, dims, 1, NULL, &hits, &nh, err, sizeof err), 0);
  assert_string_equal(hits[0].path, "two.txt");
  lode_store_hits_free(hits, nh);
  int removed;
  assert_int_equal(lode_store_delete(a, "two.txt", &removed, err, sizeof err), 0);
  assert_int_equal(lode_store_search(b, v + 3 * dims, dims, 10, NULL, &hits, &nh, err, sizeof err), 0);
  assert_int_equal(nh, 3);
  for (size_t i = 0; i < nh; i++) assert_string_equal(hits[i].path, "one.txt");
  lode_store_hits_free(hits, nh);
  lode_store_free(a);
  lode_store_free(b);
}

/* Waits for the forked writers; each must have exited 0. */
static void wait_children(const pid_t *pids, int n) {
  for (int p = 0; p < n; p++) {
    int st = 0;
    assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
  }
}

static int add_path(void *ud, const char *path) {
  char *out = ud;
  strcat(out, path);
  strcat(out, ",");
  return 0;
}

/* Several processes write the same file at once: none fails, none is lost. */
static void test_multi_process(void **state) {
  (void)state;
  lode_store *s = fresh("multi.db", "test/v1/4");
  lode_store_free(s);
  fflush(NULL); /* the children must not write the parent's buffered output again */
  const int procs = 3, each = 20;
  pid_t pids[3];
  for (int p = 0; p < procs; p++) {
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0) {
      lode_store *c = NULL;
      char e[LODE_STORE_ERRLEN];
      if (lode_store_open(dbpath, "test/v1/4", &c, e, sizeof e) != 0) _exit(2);
      float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
      for (int i = 0; i < each; i++) {
        char path[32];
        snprintf(path, sizeof path, "p%d/%02d", p, i);
        lode_store_chunk ch[2] = {{"a", 1, 0, 1, NULL}, {"b", 1, 1, 2, NULL}};
        lode_store_doc d = {path, path, NULL, NULL, "text/plain", 2}; /* distinct content */
        /* each document twice: idempotent under contention too */
        if (lode_store_put(c, &d, ch, 2, v, 4, e, sizeof e) != 0) _exit(3);
        if (lode_store_put(c, &d, ch, 2, v, 4, e, sizeof e) != 0) _exit(3);
      }
      lode_store_free(c);
      _exit(0);
    }
  }
  wait_children(pids, procs);
  assert_int_equal(lode_store_open(dbpath, NULL, &s, err, sizeof err), 0);
  counts(s, procs * each, procs * each * 2);
  char *all = calloc(1, 4096);
  assert_int_equal(lode_store_paths(s, add_path, all, err, sizeof err), 0);
  assert_true(!strncmp(all, "p0/00,p0/01,", 12));
  assert_non_null(strstr(all, "p2/19,"));
  free(all);
  lode_store_free(s);
}


/* Several processes put the same documents at once, each several times: every
 * path ends with exactly one copy of one version (no chunk twice). */
static void test_same_doc_concurrently(void **state) {
  (void)state;
  lode_store *s = fresh("same.db", "test/v1/4");
  lode_store_free(s);
  fflush(NULL);
  const int procs = 4, docs = 8, rounds = 6;
  pid_t pids[4];
  for (int p = 0; p < procs; p++) {
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0) {
      lode_store *c = NULL;
      char e[LODE_STORE_ERRLEN];
      if (lode_store_open(dbpath, "test/v1/4", &c, e, sizeof e) != 0) _exit(2);
      float v[4 * 5];
      for (int i = 0; i < 20; i++) v[i] = (float)(i % 4 == p % 4);
      for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < docs; i++) {
          char path[32];
          snprintf(path, sizeof path, "shared/%02d", (i + p) % docs);
          /* each process writes its own number of chunks: a mix would show */
          lode_store_chunk ch[5];
          for (int j = 0; j < 5; j++) ch[j] = (lode_store_chunk){"same words", 10, j, j + 1, NULL};
          lode_store_doc d = {path, path, NULL, NULL, "text/plain", 2}; /* distinct content */
          if (lode_store_put(c, &d, ch, (size_t)(p + 2), v, 4, e, sizeof e) != 0) {
            fprintf(stderr, "child %d: %s\n", p, e);
            _exit(3);
          }
        }
      }
      lode_store_free(c);
      _exit(0);
    }
  }
  wait_children(pids, procs);
  assert_int_equal(lode_store_open(dbpath, NULL, &s, err, sizeof err), 0);
  int64_t total = 0;
  for (int i = 0; i < docs; i++) {
    char path[32];
    snprintf(path, sizeof path, "shared/%02d", i);
    lode_store_record rec;
    int found = 0;
    assert_int_equal(lode_store_get(s, path, &rec, &found, err, sizeof err), 0);
    assert_true(found);
    assert_true(rec.chunks >= 2 && rec.chunks <= 5);
    total += rec.chunks;
    lode_store_record_free(&rec);
  }
  counts(s, docs, total);
  /* every chunk once: a search over all of them returns each stored chunk once */
  float q[4] = {1, 0, 0, 0};
  lode_store_hit *hits;
  size_t nh;
  assert_int_equal(lode_store_search(s, q, 4, 1000, NULL, &hits, &nh, err, sizeof err), 0);
  assert_int_equal(nh, total);
  lode_store_hits_free(hits, nh);
  lode_store_free(s);
}

/* Several processes put and delete copies of one content at once: it stays
 * stored once, held by exactly one document, and every remaining copy sees
 * its chunks. */
static void test_shared_content_concurrently(void **state) {
  (void)state;
  lode_store *s = fresh("shared.db", "test/v1/4");
  lode_store_free(s);
  fflush(NULL);
  const int procs = 4, copies = 6, rounds = 4;
  pid_t pids[4];
  for (int p = 0; p < procs; p++) {
    pids[p] = fork();
    assert_true(pids[p] >= 0);
    if (pids[p] == 0) {
      lode_store *c = NULL;
      char e[LODE_STORE_ERRLEN];
      if (lode_store_open(dbpath, "test/v1/4", &c, e, sizeof e) != 0) _exit(2);
      float v[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
      lode_store_chunk ch[3] = {{"one", 3, 0, 3, NULL}, {"two", 3, 4, 7, NULL},
                                {"three", 5, 8, 13, NULL}};
      for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < copies; i++) {
          char path[32];
          snprintf(path, sizeof path, "p%d/%d", p, i);
          lode_store_doc d = {path, "same", NULL, NULL, "text/plain", 13};
          if (lode_store_put(c, &d, ch, 3, v, 4, e, sizeof e) != 0) {
            fprintf(stderr, "child %d: %s\n", p, e);
            _exit(3);
          }
          int removed = 0;
          /* the odd copies go again, the last round keeps them gone */
          if (i % 2 && lode_store_delete(c, path, &removed, e, sizeof e) != 0) {
            fprintf(stderr, "child %d: %s\n", p, e);
            _exit(4);
          }
        }
      }
      lode_store_free(c);
      _exit(0);
    }
  }
  wait_children(pids, procs);
  assert_int_equal(lode_store_open(dbpath, NULL, &s, err, sizeof err), 0);
  const int64_t left = procs * copies / 2;
  counts(s, left, 3);
  for (int p = 0; p < procs; p++) {
    for (int i = 0; i < copies; i += 2) {
      char path[32];
      snprintf(path, sizeof path, "p%d/%d", p, i);
      lode_store_record rec;
      int found = 0;
      assert_int_equal(lode_store_get(s, path, &rec, &found, err, sizeof err), 0);
      assert_true(found);
      assert_int_equal(rec.chunks, 3);
      lode_store_record_free(&rec);
    }
  }
  float q[4] = {1, 0, 0, 0};
  lode_store_hit *hits;
  size_t nh;
  assert_int_equal(lode_store_search(s, q, 4, 100, NULL, &hits, &nh, err, sizeof err), 0);
  assert_int_equal(nh, 3);
  assert_int_equal(hits[0].n_paths, left);
  assert_string_equal(hits[0].text, "one");
  lode_store_hits_free(hits, nh);
  lode_store_free(s);
}

static void put_text(lode_store *s, const char *path, const char *hash,
                     const char *const *texts, size_t n, const float *vecs, int64_t dims) {
  lode_store_chunk c[8];
  for (size_t i = 0; i < n; i++)
    c[i] = (lode_store_chunk){texts[i], strlen(texts[i]), (int64_t)i * 100,
                              (int64_t)i * 100 + (int64_t)strlen(texts[i]), NULL};
  lode_store_doc d = {path, hash, NULL, NULL, "text/markdown", -1};
  if (lode_store_put(s, &d, c, n, vecs, dims, err, sizeof err) != 0) fail_msg("put: %s", err);
}

/* Keyword search finds words (stemmed), ranks by BM25 / ts_rank_cd, obeys
 * filters; hybrid fuses both lists; identical files collapse. */
static void test_keyword_hybrid_dedup(void **state) {
  (void)state;
  lode_store *s = fresh("kw.db", "test/v1/4");
  const char *a[] = {"Zstandard compresses logs quickly.", "Nothing to see here."};
  const char *b[] = {"The gardener waters tomatoes at dawn.", "Tomatoes need sun."};
  const char *c[] = {"Compression with zstd is fast; zstd levels go to 22."};
  float va[8] = {1, 0, 0, 0, 0, 1, 0, 0}, vb[8] = {0, 0, 1, 0, 0, 0, 0, 1}, vc[4] = {0, 1, 0, 0};
  put_text(s, "docs/a.md", "ha", a, 2, va, 4);
  put_text(s, "docs/b.md", "hb", b, 2, vb, 4);
  put_text(s, "notes/c.md", "hc", c, 1, vc, 4);
  put_text(s, "copy/a.md", "ha", a, 2, va, 4); /* the same content as docs/a.md */
  lode_store_hit *hits;
  size_t n;
  assert_int_equal(lode_store_search_text(s, "how fast is zstd?", 10, NULL, &hits, &n, err,
                                          sizeof err), 0);
  assert_int_equal(n, 1);
  assert_string_equal(hits[0].path, "notes/c.md");
  assert_true(hits[0].score > 0);
  assert_int_equal(hits[0].ordinal, 1);
  lode_store_hits_free(hits, n);
  /* the porter / english stemmer: "tomato" finds "tomatoes"; b's two chunks */
  assert_int_equal(lode_store_search_text(s, "tomato", 10, NULL, &hits, &n, err, sizeof err), 0);
  assert_int_equal(n, 2);
  assert_string_equal(hits[0].path, "docs/b.md");
  lode_store_hits_free(hits, n);
  /* a filter; punctuation and empty queries are no errors */
  lode_store_filter only_notes = {NULL, NULL, "notes/*"};
  assert_int_equal(lode_store_search_text(s, "tomatoes zstd", 10, &only_notes, &hits, &n, err,
                                          sizeof err), 0);
  assert_int_equal(n, 1);
  assert_string_equal(hits[0].path, "notes/c.md");
  lode_store_hits_free(hits, n);
  assert_int_equal(lode_store_search_text(s, " ?!\"' ", 10, NULL, &hits, &n, err, sizeof err), 0);
  assert_int_equal(n, 0);
  lode_store_hits_free(hits, n);
  /* identical files: one hit, both paths; a filter picks the copy it allows */
  assert_int_equal(lode_store_search_text(s, "zstandard", 10, NULL, &hits, &n, err, sizeof err), 0);
  assert_int_equal(n, 1);
  assert_string_equal(hits[0].path, "docs/a.md");
  assert_int_equal(hits[0].n_paths, 2);
  assert_string_equal(hits[0].paths[0], "docs/a.md");
  assert_string_equal(hits[0].paths[1], "copy/a.md");
  lode_store_hits_free(hits, n);
  lode_store_filter only_copy = {"copy/", NULL, NULL};
  assert_int_equal(lode_store_search(s, va, 4, 10, &only_copy, &hits, &n, err, sizeof err), 0);
  assert_int_equal(n, 2);
  assert_string_equal(hits[0].path, "copy/a.md");
  assert_int_equal(hits[0].n_paths, 0);
  lode_store_hits_free(hits, n);
  assert_int_equal(lode_store_search(s, va, 4, 100, NULL, &hits, &n, err, sizeof err), 0);
  assert_int_equal(n, 5); /* copy/a.md shares docs/a.md's two chunks */
  lode_store_hits_free(hits, n);
  counts(s, 4, 5); /* stored once */
  lode_store_record rec;
  int found = 0;
  assert_int_equal(lode_store_get(s, "copy/a.md", &rec, &found, err, sizeof err), 0);
  assert_true(found);
  assert_int_equal(rec.chunks, 2);
  lode_store_record_free(&rec);
  /* hybrid: the vector ranks b first, the words rank c first; c is in both lists */
  float q[4] = {0, 0.6f, 0.8f, 0};
  assert_int_equal(lode_store_search_hybrid(s, q, 4, "zstd", 3, NULL, &hits, &n, err,
                                            sizeof err), 0);
  assert_int_equal(n, 3);
  assert_string_equal(hits[0].path, "notes/c.md");
  assert_int_equal(hits[0].keyword_rank, 1);
  assert_true(hits[0].vector_rank >= 1);
  assert_true(fabs(hits[0].score - (1.0 / (LODE_STORE_RRF_K + 1) +
                                    1.0 / (LODE_STORE_RRF_K + hits[0].vector_rank))) < 1e-6);
  for (size_t i = 1; i < n; i++) assert_true(hits[i].score <= hits[i - 1].score);
  lode_store_hits_free(hits, n);
  /* deleting the copy that holds the chunks hands them to the other, which
   * is then found under its own path */
  int removed = 0;
  assert_int_equal(lode_store_delete(s, "docs/a.md", &removed, err, sizeof err), 0);
  counts(s, 3, 5);
  assert_int_equal(lode_store_search_text(s, "zstandard", 10, NULL, &hits, &n, err, sizeof err), 0);
  assert_int_equal(n, 1);
  assert_string_equal(hits[0].path, "copy/a.md");
  assert_int_equal(hits[0].n_paths, 0);
  lode_store_hits_free(hits, n);
  /* three copies; the holder is put again with other content: the next copy
   * holds the old content, the holder its new chunks */
  put_text(s, "x/a.md", "ha", a, 2, va, 4);
  put_text(s, "y/a.md", "ha", a, 2, va, 4);
  counts(s, 5, 5);
  put_text(s, "copy/a.md", "hz", c, 1, vc, 4);
  counts(s, 5, 6);
  assert_int_equal(lode_store_search_text(s, "zstandard", 10, NULL, &hits, &n, err, sizeof err), 0);
  assert_int_equal(n, 1);
  assert_string_equal(hits[0].path, "x/a.md");
  assert_int_equal(hits[0].n_paths, 2);
  assert_string_equal(hits[0].paths[1], "y/a.md");
  lode_store_hits_free(hits, n);
  /* a copy put again with the same content changes nothing */
  put_text(s, "y/a.md", "ha", a, 2, va, 4);
  counts(s, 5, 6);
  /* the last holder of a content deleted with its copies: its chunks go */
  assert_int_equal(lode_store_delete(s, "x/a.md", &removed, err, sizeof err), 0);
  assert_int_equal(lode_store_delete(s, "y/a.md", &removed, err, sizeof err), 0);
  counts(s, 3, 4);
  assert_int_equal(lode_store_search_text(s, "zstandard", 10, NULL, &hits, &n, err, sizeof err), 0);
  assert_int_equal(n, 0);
  lode_store_hits_free(hits, n);
  lode_store_free(s);
}

/* A store made before the keyword index (schema 1 without chunks_fts) gets
 * it at its next open, filled from the chunks it holds. SQLite only. */
static void test_fts_added_to_old_store(void **state) {
  (void)state;
  if (on_pg()) skip();
  fresh_location("old.db");
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_exec(db,
                   "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
                   "CREATE TABLE documents(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,"
                   " hash TEXT, metadata TEXT, title TEXT, mime TEXT, bytes INTEGER,"
                   " updated_at INTEGER NOT NULL);"
                   "CREATE TABLE chunks(id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL"
                   " REFERENCES documents(id), ordinal INTEGER NOT NULL, text TEXT NOT NULL,"
                   " start_byte INTEGER, end_byte INTEGER, headers TEXT,"
                   " UNIQUE(doc_id, ordinal));"
                   "CREATE TABLE vectors(chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id),"
                   " dims INTEGER NOT NULL, data BLOB NOT NULL);"
                   "INSERT INTO meta VALUES ('schema', 1), ('generation', 3);"
                   "INSERT INTO documents VALUES (1, 'old.md', 'h', NULL, NULL, NULL, 5, 0);"
                   "INSERT INTO chunks VALUES (7, 1, 1, 'an ancient parchment', 0, 20, NULL);",
                   NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(db);
  lode_store *s = NULL;
  assert_int_equal(lode_store_open(dbpath, NULL, &s, err, sizeof err), 0);
  lode_store_hit *hits;
  size_t n;
  assert_int_equal(lode_store_search_text(s, "parchments", 5, NULL, &hits, &n, err, sizeof err), 0);
  assert_int_equal(n, 1);
  assert_int_equal(hits[0].chunk_id, 7);
  assert_string_equal(hits[0].text, "an ancient parchment");
  lode_store_hits_free(hits, n);
  /* and content sharing: a copy of old.md stores no chunks */
  const char *t[] = {"an ancient parchment"};
  put_text(s, "copy.md", "h", t, 1, NULL, 0);
  counts(s, 2, 1);
  lode_store_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_idempotent),
      cmocka_unit_test(test_put_atomic_and_checked),
      cmocka_unit_test(test_planted),
      cmocka_unit_test(test_brute_force),
      cmocka_unit_test(test_reload_across_connections),
      cmocka_unit_test(test_multi_process),
      cmocka_unit_test(test_same_doc_concurrently),
      cmocka_unit_test(test_shared_content_concurrently),
      cmocka_unit_test(test_keyword_hybrid_dedup),
      cmocka_unit_test(test_fts_added_to_old_store),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
