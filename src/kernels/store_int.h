#ifndef LODE_STORE_INT_H
#define LODE_STORE_INT_H
/* store_int.h - internals shared by the store's files. Not part of the C API.
 *
 *   store.c             the public functions: checks, dispatch to a backend,
 *                       hybrid ranking (reciprocal rank fusion)
 *   store_search.c      the vector cache, the exact scan, filters and
 *                       duplicate collapsing, keyword search's candidate loop
 *   store_sqlite.c      the SQLite backend: schema, migrations, writes
 *   store_sqlite_read.c the SQLite backend: reads for searches
 *   store_share.c       identical content stored once (both backends)
 *   store_pg.c          the PostgreSQL backend (libpq)
 *
 * A backend is a table of operations (lode__store_ops). Searches run the same
 * C scan over an in-memory copy of the vectors whatever the backend; the
 * backend loads that copy, says when it is stale (a generation counter every
 * write bumps), fetches the hits' text and ranks keyword matches. */
#include <sqlite3.h>
#include <stdarg.h>

#include "base/busy.h"
#include "kernels/store.h"

/* The in-memory copy of every vector, loaded lazily and reloaded when the
 * generation stored in the database moves. Rows are in chunk-id order.
 * Documents are in id order; doc_group[i] is the first document (lowest id)
 * with the same content hash as document i (i itself when it has none or is
 * the first), which is how identical files collapse into one hit. */
typedef struct lode__store_cache {
  int valid;
  int64_t generation;
  int64_t dims, n, cap_vecs;
  float *vecs;        /* n * dims floats, contiguous */
  int64_t *chunk_ids; /* n */
  int32_t *doc_idx;   /* n, index into the doc arrays */
  int64_t n_docs, cap_docs;
  int64_t *doc_ids; /* sorted */
  char **doc_paths, **doc_mimes, **doc_hashes; /* hashes may be NULL */
  char *doc_holds;     /* 1: the document holds its chunks (not shared_from another) */
  int32_t *doc_group;
  int32_t *group_size; /* per document: how many share its group (heads only) */
  int64_t n_dups;      /* documents that are not their group's head */
} lode__store_cache;

/* One keyword match: a chunk, its document, its score (higher is better). */
typedef struct lode__store_kw {
  int64_t chunk_id, doc_id;
  float score;
} lode__store_kw;

typedef struct lode__store_ops {
  const char *name;
  void (*close)(lode_store *s);
  int (*has)(lode_store *s, const char *path, const char *hash, int *found, char *err,
             size_t errlen);
  /* the arguments are checked by store.c */
  int (*put)(lode_store *s, const lode_store_doc *doc, const lode_store_chunk *chunks,
             size_t n_chunks, const float *vectors, int64_t dims, char *err, size_t errlen);
  int (*get)(lode_store *s, const char *path, lode_store_record *rec, int *found, char *err,
             size_t errlen);
  int (*del)(lode_store *s, const char *path, int *removed, char *err, size_t errlen);
  int (*paths)(lode_store *s, int (*fn)(void *ud, const char *path), void *ud, char *err,
               size_t errlen);
  int (*count)(lode_store *s, int64_t *docs, int64_t *chunks, char *err, size_t errlen);
  /* Starts a read snapshot; returns the generation and refreshes s->dims. */
  int (*read_begin)(lode_store *s, int64_t *gen, char *err, size_t errlen);
  void (*read_end)(lode_store *s);
  /* Inside the snapshot: appends every document (lode__store_cache_add_doc,
   * in id order), then every vector of c->dims (lode__store_cache_add_vec,
   * in chunk-id order). */
  int (*load)(lode_store *s, lode__store_cache *c, char *err, size_t errlen);
  /* Inside the snapshot: fills text, ordinal, offsets, headers and path of
   * hits whose chunk_id is set. */
  int (*fetch)(lode_store *s, lode_store_hit *hits, size_t n, char *err, size_t errlen);
  /* Runs one statement written for both backends ($1, $2: integers, $3:
   * text, each may go unused); *out (may be NULL) gets the first column of
   * the first row, 0 when there is none or it is NULL. */
  int (*scalar)(lode_store *s, const char *sql, int64_t a, int64_t b, const char *t,
                int64_t *out, char *err, size_t errlen);
  /* Inside the snapshot: at most `limit` keyword matches of `terms` (words,
   * NUL-separated, n_terms of them), best first, equal scores by chunk id.
   * *out is malloc'd. */
  int (*keyword)(lode_store *s, const char *const *terms, size_t n_terms, int64_t limit,
                 lode__store_kw **out, size_t *n, char *err, size_t errlen);
} lode__store_ops;

struct lode_store {
  const lode__store_ops *ops;
  char *path;     /* the location as shown in messages (no password) */
  char *embedder; /* recorded identity or NULL */
  int64_t dims;   /* recorded dims or 0 */
  lode__store_cache cache;
  /* SQLite backend */
  sqlite3 *db;
  lode_busy busy; /* the connection's busy handler and WAL hook */
  /* PostgreSQL backend: a PGconn (libpq is included only by store_pg.c) */
  void *pg;
};

extern const lode__store_ops lode__store_sqlite_ops, lode__store_pg_ops;

/* Backends' open: fill s (s->path is set) or return -1. */
int lode__store_sqlite_open(lode_store *s, const char *path, const char *embedder, char *err,
                            size_t errlen);
int lode__store_pg_open(lode_store *s, const char *url, const char *embedder, char *err,
                        size_t errlen);

/* The SQLite backend's two files share these (store_sqlite_read.c). */
int lode__store_sqlite_exec(lode_store *s, const char *sql, char *err, size_t errlen);
int lode__store_sqlite_generation(lode_store *s, int64_t *gen, char *err, size_t errlen);
int lode__store_sqlite_read_begin(lode_store *s, int64_t *gen, char *err, size_t errlen);
void lode__store_sqlite_read_end(lode_store *s);
int lode__store_sqlite_load(lode_store *s, lode__store_cache *c, char *err, size_t errlen);
int lode__store_sqlite_fetch(lode_store *s, lode_store_hit *hits, size_t n, char *err,
                             size_t errlen);
int lode__store_sqlite_keyword(lode_store *s, const char *const *terms, size_t n_terms,
                               int64_t limit, lode__store_kw **out, size_t *n, char *err,
                               size_t errlen);

void lode__store_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void lode__store_cache_clear(lode__store_cache *c);
/* Appends a document (strings copied; hash and mime may be NULL; holds: it
 * holds its chunks). -1: no memory. */
int lode__store_cache_add_doc(lode__store_cache *c, int64_t id, const char *path,
                              const char *mime, const char *hash, int holds);

/* Identical content stored once (store_share.c), inside a write
 * transaction. After document d was upserted with `hash` (it held its
 * chunks before when was_holder; old_hash was its hash): rearranges the
 * sharing and sets *holder to the document whose chunks d now shares (0:
 * d must hold its own, new chunks). */
int lode__store_share_put(lode_store *s, int64_t d, int was_holder, const char *old_hash,
                          const char *hash, int64_t *holder, char *err, size_t errlen);
/* Before document d is deleted: hands its chunks to a sharer if it holds them. */
int lode__store_share_delete(lode_store *s, int64_t d, int is_holder, char *err,
                             size_t errlen);
/* Room for `count` vectors of c->dims; -1: no memory. */
int lode__store_cache_reserve(lode__store_cache *c, int64_t count);
/* The next vector row (reserved): its chunk and document ids; returns the
 * row to fill with c->dims floats, or NULL (skipped: unknown document or no
 * room left). */
float *lode__store_cache_add_vec(lode__store_cache *c, int64_t chunk_id, int64_t doc_id);

/* Splits text into search terms: runs of letters and digits (any byte of a
 * UTF-8 sequence counts as a letter), at most 64, each at most 64 bytes.
 * *buf holds them NUL-separated (malloc'd), terms[] points into it. */
size_t lode__store_terms(const char *text, char **buf, const char **terms, size_t max);
#define LODE_STORE_MAX_TERMS 64

#endif
