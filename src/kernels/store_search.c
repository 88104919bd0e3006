/* store_search.c - exact top-k search over the store's vectors, and the
 * part of keyword search that every backend shares.
 *
 * The vectors live in the database, one row per chunk; scanning them through
 * SQL would cost far more than the arithmetic, so the first search loads
 * them all into one contiguous float32 array (rows in chunk-id order) and
 * later searches reuse it until the stored generation moves (any write, from
 * any process or host). A search is one read transaction (a snapshot): the
 * generation check, the scan and the fetch of the hits' text see the same
 * data, so a concurrent writer never makes a hit vanish half-way.
 *
 * Filters and duplicates are decided per document, in C, over the cached
 * document list: documents with the same content hash are one content
 * (stored once, store_share.c), and a search returns its chunks once, under
 * the first such document's path that passes the filter, with every passing
 * path in hit->paths.
 *
 * The scan is memory-bound: it streams n*dims floats once per query, with a
 * dot product written so the compiler vectorises it (independent
 * accumulators, no -ffast-math needed) and a k-entry min-heap that is touched
 * only when a row beats the current k-th best. This file is built with -O3
 * (cmake/store_fs.cmake). */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/fs.h"
#include "kernels/store_int.h"

#define MAX_K 100000

void lode__store_cache_clear(lode__store_cache *c) {
  for (int64_t i = 0; i < c->n_docs; i++) {
    free(c->doc_paths[i]);
    free(c->doc_mimes[i]);
    free(c->doc_hashes[i]);
  }
  free(c->doc_paths);
  free(c->doc_mimes);
  free(c->doc_hashes);
  free(c->doc_holds);
  free(c->doc_ids);
  free(c->doc_group);
  free(c->group_size);
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

int lode__store_cache_add_doc(lode__store_cache *c, int64_t id, const char *path,
                              const char *mime, const char *hash, int holds) {
  if (c->n_docs == c->cap_docs) {
    int64_t cap = c->cap_docs ? c->cap_docs * 2 : 256;
    int64_t *ids = realloc(c->doc_ids, (size_t)cap * sizeof *ids);
    if (ids) c->doc_ids = ids;
    char **p = realloc(c->doc_paths, (size_t)cap * sizeof *p);
    if (p) c->doc_paths = p;
    char **m = realloc(c->doc_mimes, (size_t)cap * sizeof *m);
    if (m) c->doc_mimes = m;
    char **h = realloc(c->doc_hashes, (size_t)cap * sizeof *h);
    if (h) c->doc_hashes = h;
    char *o = realloc(c->doc_holds, (size_t)cap);
    if (o) c->doc_holds = o;
    if (!ids || !p || !m || !h || !o) return -1;
    c->cap_docs = cap;
  }
  int64_t i = c->n_docs;
  c->doc_ids[i] = id;
  c->doc_paths[i] = strdup(path ? path : "");
  c->doc_mimes[i] = strdup(mime ? mime : "");
  c->doc_hashes[i] = hash && *hash ? strdup(hash) : NULL;
  c->doc_holds[i] = (char)(holds != 0);
  c->n_docs++;
  return c->doc_paths[i] && c->doc_mimes[i] && (!hash || !*hash || c->doc_hashes[i]) ? 0 : -1;
}

int lode__store_cache_reserve(lode__store_cache *c, int64_t count) {
  if (count <= 0) return 0;
  if ((uint64_t)count > SIZE_MAX / sizeof(float) / (uint64_t)c->dims) return -1;
  c->vecs = malloc((size_t)count * (size_t)c->dims * sizeof(float));
  c->chunk_ids = malloc((size_t)count * sizeof *c->chunk_ids);
  c->doc_idx = malloc((size_t)count * sizeof *c->doc_idx);
  if (!c->vecs || !c->chunk_ids || !c->doc_idx) return -1;
  c->cap_vecs = count;
  return 0;
}

float *lode__store_cache_add_vec(lode__store_cache *c, int64_t chunk_id, int64_t doc_id) {
  int64_t di = doc_index(c, doc_id);
  if (di < 0 || c->n >= c->cap_vecs) return NULL;
  c->chunk_ids[c->n] = chunk_id;
  c->doc_idx[c->n] = (int32_t)di;
  return c->vecs + (c->n++) * c->dims;
}

/* ---- identical content -------------------------------------------------------- */
static const lode__store_cache *sort_cache; /* qsort has no context argument */
static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

static int cmp_by_hash(const void *pa, const void *pb) {
  int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
  int r = strcmp(sort_cache->doc_hashes[a], sort_cache->doc_hashes[b]);
  return r ? r : (a > b) - (a < b);
}

/* doc_group, group_size and n_dups from the hashes: documents sorted by
 * hash, each run's lowest index is its head. */
static int group_docs(lode__store_cache *c) {
  size_t n = (size_t)c->n_docs;
  c->doc_group = malloc((n ? n : 1) * sizeof *c->doc_group);
  c->group_size = calloc(n ? n : 1, sizeof *c->group_size);
  int32_t *order = malloc((n ? n : 1) * sizeof *order);
  if (!c->doc_group || !c->group_size || !order) {
    free(order);
    return -1;
  }
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    c->doc_group[i] = (int32_t)i;
    if (c->doc_hashes[i]) order[m++] = (int32_t)i;
  }
  pthread_mutex_lock(&sort_mu);
  sort_cache = c;
  qsort(order, m, sizeof *order, cmp_by_hash);
  pthread_mutex_unlock(&sort_mu);
  for (size_t i = 1; i < m; i++) {
    int32_t prev = c->doc_group[order[i - 1]];
    if (!strcmp(c->doc_hashes[order[i]], c->doc_hashes[prev])) {
      c->doc_group[order[i]] = prev;
      c->n_dups++;
    }
  }
  for (size_t i = 0; i < n; i++) c->group_size[c->doc_group[i]]++;
  free(order);
  return 0;
}

/* Makes the cache match generation `gen`; runs inside the read snapshot. */
static int ensure_cache(lode_store *s, int64_t gen, char *err, size_t errlen) {
  lode__store_cache *c = &s->cache;
  if (c->valid && c->generation == gen && c->dims == s->dims) return 0;
  lode__store_cache_clear(c);
  c->dims = s->dims;
  if (s->ops->load(s, c, err, errlen) != 0) {
    lode__store_cache_clear(c);
    return -1;
  }
  if (group_docs(c) != 0) {
    lode__store_cache_clear(c);
    return oom(s, err, errlen);
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
/* Not under sanitizers: the ifunc resolver runs before their runtimes start
 * (TSan crashes in it). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
__attribute__((target_clones("avx2", "default")))
#endif
static size_t scan(const lode__store_cache *c, const float *q, size_t k, const int32_t *show,
                   heap_entry *h) {
  size_t n = 0;
  const int64_t dims = c->dims;
  const float *v = c->vecs;
  if (!show) {
    for (int64_t r = 0; r < c->n; r++, v += dims) offer(h, &n, k, dot16(v, q, dims), r);
  } else {
    for (int64_t r = 0; r < c->n; r++, v += dims)
      if (show[c->doc_idx[r]] >= 0) offer(h, &n, k, dot16(v, q, dims), r);
  }
  return n;
}

static int passes(const lode__store_cache *c, const lode_store_filter *f, int64_t i) {
  if (!f) return 1;
  if (f->path_prefix && strncmp(c->doc_paths[i], f->path_prefix, strlen(f->path_prefix)))
    return 0;
  if (f->mime && strcmp(c->doc_mimes[i], f->mime)) return 0;
  if (f->path_glob) {
    const char *p = c->doc_paths[i], *base = strrchr(p, '/');
    if (!lode_fs_glob_match(f->path_glob, strchr(f->path_glob, '/') || !base ? p : base + 1))
      return 0;
  }
  return 1;
}

static int has_filter(const lode_store_filter *f) {
  return f && (f->path_prefix || f->mime || f->path_glob);
}

/* Which documents' chunks a search scans, and under which path it shows
 * them, as one entry per cached document: the index of the document whose
 * path a hit shows, or -1 when the document's chunks are not searched. Per
 * content (documents of one hash): the chunks of its first holder (lowest
 * id; the one that stores them), shown under the first document (lowest
 * id) that passes the filter; none when no document passes. *out is NULL
 * when every document shows itself (no filter, no shared content). -1 if
 * out of memory. */
static int filter_docs(const lode__store_cache *c, const lode_store_filter *f, int32_t **out) {
  *out = NULL;
  if (!has_filter(f) && c->n_dups == 0) return 0;
  size_t n = (size_t)(c->n_docs ? c->n_docs : 1);
  int32_t *show = malloc(n * sizeof *show), *holder = malloc(n * sizeof *holder),
          *first = malloc(n * sizeof *first);
  if (!show || !holder || !first) {
    free(show);
    free(holder);
    free(first);
    return -1;
  }
  for (int64_t i = 0; i < c->n_docs; i++) holder[i] = first[i] = show[i] = -1;
  for (int64_t i = 0; i < c->n_docs; i++) {
    int32_t g = c->doc_group[i];
    if (c->doc_holds[i] && holder[g] < 0) holder[g] = (int32_t)i;
    if (first[g] < 0 && passes(c, f, i)) first[g] = (int32_t)i;
  }
  for (int64_t g = 0; g < c->n_docs; g++)
    if (holder[g] >= 0) show[holder[g]] = first[g];
  free(holder);
  free(first);
  *out = show;
  return 0;
}

/* The hit's path becomes the shown document's, and hit->paths lists every
 * path of its content that passes the filter (shown first), when there is
 * more than one. */
static int fill_paths(const lode__store_cache *c, const lode_store_filter *f,
                      lode_store_hit *hit, int64_t di, const int32_t *show) {
  int64_t sd = show ? show[di] : di;
  if (sd != di) {
    free(hit->path);
    if (!(hit->path = strdup(c->doc_paths[sd]))) return -1;
  }
  int32_t g = c->doc_group[di];
  if (c->group_size[g] < 2) return 0;
  if (!(hit->paths = calloc((size_t)c->group_size[g], sizeof *hit->paths))) return -1;
  hit->paths[hit->n_paths++] = strdup(c->doc_paths[sd]);
  for (int64_t i = 0; i < c->n_docs && hit->n_paths < (size_t)c->group_size[g]; i++)
    if (i != sd && c->doc_group[i] == g && passes(c, f, i))
      hit->paths[hit->n_paths++] = strdup(c->doc_paths[i]);
  for (size_t i = 0; i < hit->n_paths; i++)
    if (!hit->paths[i]) return -1;
  if (hit->n_paths == 1) { /* the others did not pass the filter */
    free(hit->paths[0]);
    free(hit->paths);
    hit->paths = NULL;
    hit->n_paths = 0;
  }
  return 0;
}

void lode_store_hits_free(lode_store_hit *hits, size_t n) {
  if (!hits) return;
  for (size_t i = 0; i < n; i++) {
    free(hits[i].path);
    free(hits[i].text);
    free(hits[i].headers);
    for (size_t j = 0; j < hits[i].n_paths; j++) free(hits[i].paths[j]);
    free(hits[i].paths);
  }
  free(hits);
}

static int check_k(lode_store *s, int64_t k, char *err, size_t errlen) {
  if (k >= 0 && k <= MAX_K) return 0;
  lode__store_seterr(err, errlen, "store %s: search: k must be in 0..%d, got %lld", s->path,
                     MAX_K, (long long)k);
  return -1;
}

/* The part every search shares: the snapshot, the cache, the document
 * flags; then `rank` fills the hits' chunk ids and scores (and *di, each
 * hit's document index); then their text and paths. */
typedef int (*rank_fn)(lode_store *s, void *ud, const int32_t *show, lode_store_hit *out,
                       int64_t *di, size_t k, size_t *n, char *err, size_t errlen);

static int run_search(lode_store *s, int64_t k, const lode_store_filter *filter, rank_fn rank,
                      void *ud, lode_store_hit **hits, size_t *n_hits, char *err,
                      size_t errlen) {
  int rc = -1;
  int64_t gen = 0, *di = NULL;
  int32_t *show = NULL;
  lode_store_hit *out = NULL;
  size_t n = 0;
  *hits = NULL;
  *n_hits = 0;
  if (s->ops->read_begin(s, &gen, err, errlen) != 0) return -1;
  if (ensure_cache(s, gen, err, errlen) != 0) goto done;
  const lode__store_cache *c = &s->cache;
  if (k == 0) {
    rc = 0;
    goto done;
  }
  if (filter_docs(c, filter, &show) != 0 || !(out = calloc((size_t)k, sizeof *out)) ||
      !(di = malloc((size_t)k * sizeof *di))) {
    oom(s, err, errlen);
    goto done;
  }
  if (rank(s, ud, show, out, di, (size_t)k, &n, err, errlen) != 0) goto done;
  if (n && s->ops->fetch(s, out, n, err, errlen) != 0) goto done;
  for (size_t i = 0; i < n; i++) {
    if (fill_paths(c, filter, &out[i], di[i], show) != 0) {
      oom(s, err, errlen);
      goto done;
    }
  }
  rc = 0;
done:
  s->ops->read_end(s);
  free(show);
  free(di);
  if (rc == 0 && n) {
    *hits = out;
    *n_hits = n;
  } else {
    lode_store_hits_free(out, rc == 0 ? 0 : n);
  }
  return rc;
}

typedef struct vec_query {
  const float *q;
  int64_t dims;
} vec_query;

static int rank_vector(lode_store *s, void *ud, const int32_t *show, lode_store_hit *out,
                       int64_t *di, size_t k, size_t *n, char *err, size_t errlen) {
  const vec_query *vq = ud;
  const lode__store_cache *c = &s->cache;
  *n = 0;
  if (c->n > 0 && vq->dims != c->dims) {
    lode__store_seterr(err, errlen,
                       "store %s: search: the query has %lld dims, the store holds %lld; "
                       "embed it with the store's embedder (%s)",
                       s->path, (long long)vq->dims, (long long)c->dims,
                       s->embedder ? s->embedder : "not recorded");
    return -1;
  }
  if (c->n == 0) return 0;
  if (k > (size_t)c->n) k = (size_t)c->n;
  heap_entry *h = malloc(k * sizeof *h);
  if (!h) return oom(s, err, errlen);
  size_t found = scan(c, vq->q, k, show, h);
  qsort(h, found, sizeof *h, cmp_best_first);
  for (size_t i = 0; i < found; i++) {
    out[i].score = h[i].score;
    out[i].chunk_id = c->chunk_ids[h[i].row];
    di[i] = c->doc_idx[h[i].row];
  }
  *n = found;
  free(h);
  return 0;
}

int lode_store_search(lode_store *s, const float *query, int64_t dims, int64_t k,
                      const lode_store_filter *filter, lode_store_hit **hits, size_t *n_hits,
                      char *err, size_t errlen) {
  *hits = NULL;
  *n_hits = 0;
  if (check_k(s, k, err, errlen) != 0) return -1;
  for (int64_t i = 0; i < dims; i++) {
    if (!isfinite(query[i])) {
      lode__store_seterr(err, errlen,
                         "store %s: search: query element %lld is not a finite number",
                         s->path, (long long)i + 1);
      return -1;
    }
  }
  vec_query vq = {query, dims};
  return run_search(s, k, filter, rank_vector, &vq, hits, n_hits, err, errlen);
}

/* ---- keyword search ------------------------------------------------------------ */
size_t lode__store_terms(const char *text, char **buf, const char **terms, size_t max) {
  size_t len = strlen(text), n = 0;
  char *b = malloc(len + 1), *w = b;
  *buf = b;
  if (!b) return 0;
  const unsigned char *p = (const unsigned char *)text;
  while (*p && n < max) {
    while (*p && !(isalnum(*p) || *p >= 0x80)) p++;
    const unsigned char *start = p;
    while (*p && (isalnum(*p) || *p >= 0x80)) p++;
    size_t l = (size_t)(p - start);
    if (!l) break;
    if (l > 64) {
      l = 64; /* a cut inside a UTF-8 sequence would be invalid text */
      while (l > 0 && (start[l] & 0xC0) == 0x80) l--;
      if (!l) continue;
    }
    terms[n++] = w;
    memcpy(w, start, l);
    w += l;
    *w++ = 0;
  }
  return n;
}

typedef struct kw_query {
  const char *const *terms;
  size_t n_terms;
} kw_query;

/* Asks the backend for ranked matches, keeps those of allowed documents,
 * and asks again for more (four times as many) while fewer than k were kept
 * and the backend had more: exact top k whatever the filter. */
static int rank_keyword(lode_store *s, void *ud, const int32_t *show, lode_store_hit *out,
                        int64_t *di, size_t k, size_t *n, char *err, size_t errlen) {
  const kw_query *kq = ud;
  const lode__store_cache *c = &s->cache;
  *n = 0;
  if (!kq->n_terms) return 0;
  int64_t limit = (int64_t)k * 2 + 20;
  for (;;) {
    lode__store_kw *m = NULL;
    size_t nm = 0;
    if (s->ops->keyword(s, kq->terms, kq->n_terms, limit, &m, &nm, err, errlen) != 0)
      return -1;
    *n = 0;
    for (size_t i = 0; i < nm && *n < k; i++) {
      int64_t d = doc_index(c, m[i].doc_id);
      if (d < 0 || (show && show[d] < 0)) continue;
      out[*n].chunk_id = m[i].chunk_id;
      out[*n].score = m[i].score;
      di[(*n)++] = d;
    }
    free(m);
    if (*n >= k || (int64_t)nm < limit || limit > INT64_MAX / 8) return 0;
    limit *= 4;
  }
}

int lode_store_search_text(lode_store *s, const char *text, int64_t k,
                           const lode_store_filter *filter, lode_store_hit **hits,
                           size_t *n_hits, char *err, size_t errlen) {
  *hits = NULL;
  *n_hits = 0;
  if (check_k(s, k, err, errlen) != 0) return -1;
  char *buf = NULL;
  const char *terms[LODE_STORE_MAX_TERMS];
  size_t nt = lode__store_terms(text ? text : "", &buf, terms, LODE_STORE_MAX_TERMS);
  if (!buf) return oom(s, err, errlen);
  kw_query kq = {terms, nt};
  int rc = run_search(s, k, filter, rank_keyword, &kq, hits, n_hits, err, errlen);
  free(buf);
  return rc;
}
