/* store_search.c - exact top-k search over the store's vectors.
 *
 * The vectors live in SQLite, one blob per chunk; scanning blobs through
 * SQLite would cost far more than the arithmetic, so the first search loads
 * them all into one contiguous float32 array (rows in chunk-id order) and
 * later searches reuse it until meta.generation moves (any write, from any
 * process). A search is one read transaction: the generation check, the scan
 * and the fetch of the hits' text see the same snapshot, so a concurrent
 * writer never makes a hit vanish half-way.
 *
 * The scan is memory-bound: it streams n*dims floats once per query, with a
 * dot product written so the compiler vectorises it (independent
 * accumulators, no -ffast-math needed) and a k-entry min-heap that is touched
 * only when a row beats the current k-th best. This file is built with -O3
 * (cmake/store_fs.cmake). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/store_int.h"

#define MAX_K 100000

void lode__store_cache_clear(lode__store_cache *c) {
  for (int64_t i = 0; i < c->n_docs; i++) {
    free(c->doc_paths[i]);
    free(c->doc_mimes[i]);
  }
  free(c->doc_paths);
  free(c->doc_mimes);
  free(c->doc_ids);
  free(c->vecs);
  free(c->chunk_ids);
  free(c->doc_idx);
  memset(c, 0, sizeof *c);
}

/* 16 independent sums: two AVX or four SSE registers' worth, enough to hide
 * the add latency; the tail handles dims that are not a multiple of 16. */
static inline float dot16(const float *restrict a, const float *restrict b, int64_t n) {
  float acc[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) acc[j] += a[i + j] * b[i + j];
  float tail = 0;
  for (; i < n; i++) tail += a[i] * b[i];
  for (int w = 8; w >= 1; w /= 2)
    for (int j = 0; j < w; j++) acc[j] += acc[j + w];
  return acc[0] + tail;
}

static int64_t doc_index(const lode__store_cache *c, int64_t doc_id) {
  int64_t lo = 0, hi = c->n_docs - 1;
  while (lo <= hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (c->doc_ids[mid] == doc_id) return mid;
    if (c->doc_ids[mid] < doc_id)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

static int oom(lode_store *s, char *err, size_t errlen) {
  lode__store_seterr(err, errlen, "store %s: out of memory loading vectors", s->path);
  return -1;
}

static char *dup_col(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return strdup(t ? (const char *)t : "");
}

static int load_docs(lode_store *s, lode__store_cache *c, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1, step;
  int64_t cap = 0;
  if (sqlite3_prepare_v2(s->db, "SELECT id, path, mime FROM documents ORDER BY id", -1, &st,
                         NULL) != SQLITE_OK)
    goto dberr;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (c->n_docs == cap) {
      cap = cap ? cap * 2 : 256;
      int64_t *ids = realloc(c->doc_ids, (size_t)cap * sizeof *ids);
      if (ids) c->doc_ids = ids;
      char **p = realloc(c->doc_paths, (size_t)cap * sizeof *p);
      if (p) c->doc_paths = p;
      char **m = realloc(c->doc_mimes, (size_t)cap * sizeof *m);
      if (m) c->doc_mimes = m;
      if (!ids || !p || !m) goto nomem;
    }
    int64_t i = c->n_docs;
    c->doc_ids[i] = sqlite3_column_int64(st, 0);
    c->doc_paths[i] = dup_col(st, 1);
    c->doc_mimes[i] = dup_col(st, 2);
    c->n_docs++;
    if (!c->doc_paths[i] || !c->doc_mimes[i]) goto nomem;
  }
  if (step != SQLITE_DONE) goto dberr;
  rc = 0;
  goto done;
nomem:
  oom(s, err, errlen);
  goto done;
dberr:
  lode__store_seterr(err, errlen, "store %s: loading documents: %s", s->path,
                     sqlite3_errmsg(s->db));
done:
  sqlite3_finalize(st);
  return rc;
}

/* Fills c with every vector of the store's dims. Runs inside the caller's
 * read transaction. */
static int load_vectors(lode_store *s, lode__store_cache *c, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1, step;
  int64_t count = 0;
  if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM vectors WHERE dims = ?", -1, &st,
                         NULL) != SQLITE_OK)
    goto dberr;
  sqlite3_bind_int64(st, 1, c->dims);
  if (sqlite3_step(st) != SQLITE_ROW) goto dberr;
  count = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  st = NULL;
  if (count > 0) {
    if ((uint64_t)count > SIZE_MAX / sizeof(float) / (uint64_t)c->dims) goto nomem;
    c->vecs = malloc((size_t)count * (size_t)c->dims * sizeof(float));
    c->chunk_ids = malloc((size_t)count * sizeof *c->chunk_ids);
    c->doc_idx = malloc((size_t)count * sizeof *c->doc_idx);
    if (!c->vecs || !c->chunk_ids || !c->doc_idx) goto nomem;
  }
  if (sqlite3_prepare_v2(s->db,
                         "SELECT v.chunk_id, c.doc_id, v.data FROM vectors v"
                         " JOIN chunks c ON c.id = v.chunk_id WHERE v.dims = ?"
                         " ORDER BY v.chunk_id",
                         -1, &st, NULL) != SQLITE_OK)
    goto dberr;
  sqlite3_bind_int64(st, 1, c->dims);
  size_t row_bytes = (size_t)c->dims * sizeof(float);
  while ((step = sqlite3_step(st)) == SQLITE_ROW && c->n < count) {
    const void *blob = sqlite3_column_blob(st, 2);
    int64_t di = doc_index(c, sqlite3_column_int64(st, 1));
    /* a blob of the wrong size can only come from outside lode: skip it
     * rather than read past its end */
    if ((size_t)sqlite3_column_bytes(st, 2) != row_bytes || !blob || di < 0) continue;
    memcpy(c->vecs + c->n * c->dims, blob, row_bytes);
    c->chunk_ids[c->n] = sqlite3_column_int64(st, 0);
    c->doc_idx[c->n] = (int32_t)di;
    c->n++;
  }
  if (step != SQLITE_DONE && step != SQLITE_ROW) goto dberr;
  rc = 0;
  goto done;
nomem:
  oom(s, err, errlen);
  goto done;
dberr:
  lode__store_seterr(err, errlen, "store %s: loading vectors: %s", s->path,
                     sqlite3_errmsg(s->db));
done:
  sqlite3_finalize(st);
  return rc;
}

/* Makes the cache match generation `gen` of the file. */
static int ensure_cache(lode_store *s, int64_t gen, char *err, size_t errlen) {
  lode__store_cache *c = &s->cache;
  if (c->valid && c->generation == gen && c->dims == s->dims) return 0;
  lode__store_cache_clear(c);
  c->dims = s->dims;
  if (c->dims > 0 && (load_docs(s, c, err, errlen) != 0 ||
                      load_vectors(s, c, err, errlen) != 0)) {
    lode__store_cache_clear(c);
    return -1;
  }
  c->generation = gen;
  c->valid = 1;
  return 0;
}

typedef struct heap_entry {
  float score;
  int64_t row;
} heap_entry;

/* a is worse than b: lower score, or equal score and a later row (rows are in
 * chunk-id order, so earlier chunk ids win ties) */
static inline int worse(heap_entry a, heap_entry b) {
  return a.score < b.score || (a.score == b.score && a.row > b.row);
}

static void sift_down(heap_entry *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && worse(h[l], h[m])) m = l;
    if (r < n && worse(h[r], h[m])) m = r;
    if (m == i) return;
    heap_entry t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

static void sift_up(heap_entry *h, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!worse(h[i], h[p])) return;
    heap_entry t = h[i];
    h[i] = h[p];
    h[p] = t;
    i = p;
  }
}

static inline void offer(heap_entry *h, size_t *n, size_t k, float score, int64_t row) {
  if (*n < k) {
    h[*n] = (heap_entry){score, row};
    sift_up(h, (*n)++);
  } else if (score > h[0].score) {
    h[0] = (heap_entry){score, row};
    sift_down(h, k, 0);
  }
}

static int cmp_best_first(const void *pa, const void *pb) {
  heap_entry a = *(const heap_entry *)pa, b = *(const heap_entry *)pb;
  return worse(b, a) ? -1 : worse(a, b) ? 1 : 0;
}

/* Scans the cache; fills h (capacity k) and returns the number of entries.
 * On x86-64 GCC also builds an AVX2 clone (8-wide lanes instead of SSE2's
 * 4) and picks it at load time on CPUs that have it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx2", "default")))
#endif
static size_t scan(const lode__store_cache *c, const float *q, size_t k, const char *allowed,
                   heap_entry *h) {
  size_t n = 0;
  const int64_t dims = c->dims;
  const float *v = c->vecs;
  if (!allowed) {
    for (int64_t r = 0; r < c->n; r++, v += dims) offer(h, &n, k, dot16(v, q, dims), r);
  } else {
    for (int64_t r = 0; r < c->n; r++, v += dims)
      if (allowed[c->doc_idx[r]]) offer(h, &n, k, dot16(v, q, dims), r);
  }
  return n;
}

/* Which documents pass the filter, as a flag per cached document; *out is
 * NULL when there is no filter. -1 if out of memory. */
static int filter_docs(const lode__store_cache *c, const lode_store_filter *f, char **out) {
  *out = NULL;
  if (!f || (!f->path_prefix && !f->mime)) return 0;
  char *allowed = calloc((size_t)(c->n_docs ? c->n_docs : 1), 1);
  if (!allowed) return -1;
  size_t plen = f->path_prefix ? strlen(f->path_prefix) : 0;
  for (int64_t i = 0; i < c->n_docs; i++)
    allowed[i] = (!f->path_prefix || strncmp(c->doc_paths[i], f->path_prefix, plen) == 0) &&
                 (!f->mime || strcmp(c->doc_mimes[i], f->mime) == 0);
  *out = allowed;
  return 0;
}

static int fetch_hit(lode_store *s, sqlite3_stmt *st, lode_store_hit *hit, char *err,
                     size_t errlen) {
  sqlite3_reset(st);
  sqlite3_bind_int64(st, 1, hit->chunk_id);
  if (sqlite3_step(st) != SQLITE_ROW) {
    lode__store_seterr(err, errlen, "store %s: reading chunk %lld: %s", s->path,
                       (long long)hit->chunk_id, sqlite3_errmsg(s->db));
    return -1;
  }
  hit->ordinal = sqlite3_column_int64(st, 0);
  hit->start = sqlite3_column_int64(st, 2);
  hit->end = sqlite3_column_int64(st, 3);
  int tl = sqlite3_column_bytes(st, 1);
  const void *t = sqlite3_column_blob(st, 1);
  hit->text = malloc((size_t)tl + 1);
  hit->path = dup_col(st, 5);
  if (sqlite3_column_type(st, 4) != SQLITE_NULL) hit->headers = dup_col(st, 4);
  if (!hit->text || !hit->path || (sqlite3_column_type(st, 4) != SQLITE_NULL && !hit->headers))
    return oom(s, err, errlen);
  if (tl) memcpy(hit->text, t, (size_t)tl);
  hit->text[tl] = 0;
  hit->text_len = (size_t)tl;
  return 0;
}

void lode_store_hits_free(lode_store_hit *hits, size_t n) {
  if (!hits) return;
  for (size_t i = 0; i < n; i++) {
    free(hits[i].path);
    free(hits[i].text);
    free(hits[i].headers);
  }
  free(hits);
}

int lode_store_search(lode_store *s, const float *query, int64_t dims, int64_t k,
                      const lode_store_filter *filter, lode_store_hit **hits, size_t *n_hits,
                      char *err, size_t errlen) {
  int rc = -1;
  int64_t gen = 0;
  char *allowed = NULL;
  heap_entry *h = NULL;
  sqlite3_stmt *st = NULL;
  lode_store_hit *out = NULL;
  size_t n = 0;
  *hits = NULL;
  *n_hits = 0;
  if (k < 0 || k > MAX_K) {
    lode__store_seterr(err, errlen, "store %s: search: k must be in 0..%d, got %lld", s->path,
                       MAX_K, (long long)k);
    return -1;
  }
  for (int64_t i = 0; i < dims; i++) {
    if (!isfinite(query[i])) {
      lode__store_seterr(err, errlen,
                         "store %s: search: query element %lld is not a finite number",
                         s->path, (long long)i + 1);
      return -1;
    }
  }
  if (lode__store_exec(s, "BEGIN", err, errlen) != 0) return -1;
  if (lode__store_generation(s, &gen, err, errlen) != 0) goto done;
  if (!s->cache.valid || s->cache.generation != gen) {
    /* dims may have been recorded by another process since we opened */
    sqlite3_stmt *m = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'dims'", -1, &m, NULL) ==
            SQLITE_OK &&
        sqlite3_step(m) == SQLITE_ROW)
      s->dims = sqlite3_column_int64(m, 0);
    sqlite3_finalize(m);
  }
  if (ensure_cache(s, gen, err, errlen) != 0) goto done;
  const lode__store_cache *c = &s->cache;
  if (c->n > 0 && dims != c->dims) {
    lode__store_seterr(err, errlen,
                       "store %s: search: the query has %lld dims, the store holds %lld; "
                       "embed it with the store's embedder (%s)",
                       s->path, (long long)dims, (long long)c->dims,
                       s->embedder ? s->embedder : "not recorded");
    goto done;
  }
  if ((size_t)k > (size_t)c->n) k = c->n;
  if (k == 0 || c->n == 0) {
    rc = 0;
    goto done;
  }
  if (filter_docs(c, filter, &allowed) != 0 || !(h = malloc((size_t)k * sizeof *h))) {
    oom(s, err, errlen);
    goto done;
  }
  size_t found = scan(c, query, (size_t)k, allowed, h);
  qsort(h, found, sizeof *h, cmp_best_first);
  if (found == 0) {
    rc = 0;
    goto done;
  }
  if (!(out = calloc(found, sizeof *out))) {
    oom(s, err, errlen);
    goto done;
  }
  if (sqlite3_prepare_v2(s->db,
                         "SELECT c.ordinal, c.text, c.start_byte, c.end_byte, c.headers, d.path"
                         " FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id = ?",
                         -1, &st, NULL) != SQLITE_OK) {
    lode__store_seterr(err, errlen, "store %s: search: %s", s->path, sqlite3_errmsg(s->db));
    goto done;
  }
  for (n = 0; n < found; n++) {
    out[n].score = h[n].score;
    out[n].chunk_id = c->chunk_ids[h[n].row];
    if (fetch_hit(s, st, &out[n], err, errlen) != 0) {
      n++;
      goto done;
    }
  }
  rc = 0;
done:
  sqlite3_finalize(st);
  sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
  free(allowed);
  free(h);
  if (rc == 0) {
    *hits = out;
    *n_hits = n;
  } else {
    lode_store_hits_free(out, n);
  }
  return rc;
}
