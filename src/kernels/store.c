/* store.c - the store's public functions: argument checks, the choice of a
 * backend (a path is a SQLite file, a postgresql:// URL a PostgreSQL
 * database), dispatch, and hybrid ranking.
 *
 * Hybrid ranking is reciprocal rank fusion (Cormack, Clarke and Buettcher,
 * 2009): a chunk at rank r in a list scores 1 / (60 + r) from it, and its
 * scores from the vector and the keyword list add up. Ranks, not scores, are
 * fused, so BM25's unbounded scale and the cosine's [-1, 1] need no
 * calibration against each other. Each list is its ranking's top k. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/store_int.h"

void lode__store_seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

int lode_store_is_url(const char *location) {
  return location && (!strncmp(location, "postgresql://", 13) ||
                      !strncmp(location, "postgres://", 11));
}

/* The location as messages show it: a URL's password replaced by "***". */
static char *display_location(const char *loc) {
  char *d = strdup(loc);
  if (!d || !lode_store_is_url(loc)) return d;
  char *auth = strstr(d, "://") + 3;
  char *at = strchr(auth, '@'), *slash = strchr(auth, '/');
  if (!at || (slash && slash < at)) return d;
  char *colon = memchr(auth, ':', (size_t)(at - auth));
  if (!colon) return d;
  size_t need = (size_t)(colon + 1 - d) + 3 + strlen(at) + 1;
  char *out = malloc(need);
  if (out) snprintf(out, need, "%.*s***%s", (int)(colon + 1 - d), d, at);
  free(d);
  return out;
}

int lode_store_open(const char *path, const char *embedder, lode_store **out, char *err,
                    size_t errlen) {
  *out = NULL;
  lode_store *s = calloc(1, sizeof *s);
  if (!s || !(s->path = display_location(path))) {
    free(s);
    lode__store_seterr(err, errlen, "store %s: out of memory", path);
    return -1;
  }
  int rc = lode_store_is_url(path) ? lode__store_pg_open(s, path, embedder, err, errlen)
                                   : lode__store_sqlite_open(s, path, embedder, err, errlen);
  if (rc != 0) {
    lode_store_free(s);
    return -1;
  }
  *out = s;
  return 0;
}

void lode_store_free(lode_store *s) {
  if (!s) return;
  if (s->ops) s->ops->close(s);
  lode__store_cache_clear(&s->cache);
  free(s->embedder);
  free(s->path);
  free(s);
}

const char *lode_store_embedder(lode_store *s) { return s->embedder; }
int64_t lode_store_dims(lode_store *s) { return s->dims; }

int lode_store_has(lode_store *s, const char *path, const char *hash, int *found, char *err,
                   size_t errlen) {
  *found = 0;
  return s->ops->has(s, path, hash, found, err, errlen);
}

int lode_store_get(lode_store *s, const char *path, lode_store_record *rec, int *found,
                   char *err, size_t errlen) {
  memset(rec, 0, sizeof *rec);
  *found = 0;
  return s->ops->get(s, path, rec, found, err, errlen);
}

void lode_store_record_free(lode_store_record *rec) {
  if (!rec) return;
  free(rec->path);
  free(rec->hash);
  free(rec->metadata);
  free(rec->title);
  free(rec->mime);
  memset(rec, 0, sizeof *rec);
}

int lode_store_put(lode_store *s, const lode_store_doc *doc, const lode_store_chunk *chunks,
                   size_t n_chunks, const float *vectors, int64_t dims, char *err,
                   size_t errlen) {
  if (!doc || !doc->path || !*doc->path) {
    lode__store_seterr(err, errlen, "store %s: put: the document needs a path", s->path);
    return -1;
  }
  if (vectors && (dims <= 0 || dims > (1 << 20))) {
    lode__store_seterr(err, errlen, "store %s: put '%s': bad vector dims %lld", s->path,
                       doc->path, (long long)dims);
    return -1;
  }
  for (size_t i = 0; i < n_chunks; i++) {
    if (chunks[i].text_len > 0x7fffffff) {
      lode__store_seterr(err, errlen, "store %s: put '%s': chunk %zu is over 2 GiB", s->path,
                         doc->path, i + 1);
      return -1;
    }
  }
  for (size_t i = 0; vectors && i < n_chunks * (size_t)dims; i++) {
    if (!isfinite(vectors[i])) {
      lode__store_seterr(err, errlen, "store %s: put '%s': vector %zu has a non-finite value",
                         s->path, doc->path, i / (size_t)dims + 1);
      return -1;
    }
  }
  return s->ops->put(s, doc, chunks, n_chunks, vectors, vectors ? dims : 0, err, errlen);
}

int lode_store_delete(lode_store *s, const char *path, int *removed, char *err,
                      size_t errlen) {
  *removed = 0;
  return s->ops->del(s, path, removed, err, errlen);
}

int lode_store_paths(lode_store *s, int (*fn)(void *ud, const char *path), void *ud, char *err,
                     size_t errlen) {
  return s->ops->paths(s, fn, ud, err, errlen);
}

int lode_store_count(lode_store *s, int64_t *docs, int64_t *chunks, char *err, size_t errlen) {
  return s->ops->count(s, docs, chunks, err, errlen);
}

/* ---- hybrid ------------------------------------------------------------------ */
typedef struct fused {
  double score;
  lode_store_hit *hit; /* borrowed from one of the two lists */
  int64_t vrank, krank;
} fused;

static int cmp_fused(const void *pa, const void *pb) {
  const fused *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  /* equal fused scores: the better single rank first, then the chunk id */
  int64_t ra = a->vrank && (!a->krank || a->vrank < a->krank) ? a->vrank : a->krank;
  int64_t rb = b->vrank && (!b->krank || b->vrank < b->krank) ? b->vrank : b->krank;
  if (ra != rb) return ra < rb ? -1 : 1;
  return a->hit->chunk_id < b->hit->chunk_id ? -1 : a->hit->chunk_id > b->hit->chunk_id;
}

int lode_store_search_hybrid(lode_store *s, const float *query, int64_t dims, const char *text,
                             int64_t k, const lode_store_filter *filter, lode_store_hit **hits,
                             size_t *n_hits, char *err, size_t errlen) {
  lode_store_hit *vh = NULL, *kh = NULL, *out = NULL;
  size_t nv = 0, nk = 0, nf = 0;
  fused *f = NULL;
  int rc = -1;
  *hits = NULL;
  *n_hits = 0;
  if (k < 0 || k > 100000) {
    lode__store_seterr(err, errlen, "store %s: search: k must be in 0..100000, got %lld",
                       s->path, (long long)k);
    return -1;
  }
  /* each ranking's top k, as LangChain's EnsembleRetriever fuses its
   * retrievers' results: deeper lists let chunks that are middling in both
   * (common words, a generic vector) outrank a chunk that is first in one,
   * which on tests/integration/test_store_search.py's questions took recall@5
   * from 1.00 (depth k) to 0.47 (depth 4k or 100) */
  int64_t cand = k;
  if (lode_store_search(s, query, dims, cand, filter, &vh, &nv, err, errlen) != 0) goto done;
  if (lode_store_search_text(s, text ? text : "", cand, filter, &kh, &nk, err, errlen) != 0)
    goto done;
  if (!(f = calloc(nv + nk + 1, sizeof *f))) goto nomem;
  for (size_t i = 0; i < nv; i++)
    f[nf++] = (fused){1.0 / (LODE_STORE_RRF_K + (double)(i + 1)), &vh[i], (int64_t)i + 1, 0};
  for (size_t i = 0; i < nk; i++) {
    double add = 1.0 / (LODE_STORE_RRF_K + (double)(i + 1));
    size_t j = 0;
    while (j < nv && vh[j].chunk_id != kh[i].chunk_id) j++;
    if (j < nv) {
      f[j].score += add;
      f[j].krank = (int64_t)i + 1;
    } else {
      f[nf++] = (fused){add, &kh[i], 0, (int64_t)i + 1};
    }
  }
  qsort(f, nf, sizeof *f, cmp_fused);
  if ((int64_t)nf > k) nf = (size_t)k;
  if (!(out = calloc(nf ? nf : 1, sizeof *out))) goto nomem;
  /* the hits move to the output: their strings are taken, not copied */
  for (size_t i = 0; i < nf; i++) {
    out[i] = *f[i].hit;
    memset(f[i].hit, 0, sizeof *f[i].hit);
    out[i].score = (float)f[i].score;
    out[i].vector_rank = f[i].vrank;
    out[i].keyword_rank = f[i].krank;
  }
  *hits = out;
  *n_hits = nf;
  out = NULL;
  rc = 0;
  goto done;
nomem:
  lode__store_seterr(err, errlen, "store %s: search: out of memory", s->path);
done:
  free(f);
  free(out);
  lode_store_hits_free(vh, nv);
  lode_store_hits_free(kh, nk);
  return rc;
}
