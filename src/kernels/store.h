#ifndef LODE_STORE_H
#define LODE_STORE_H
/* store.h - documents, chunks and their vectors in one SQLite file or one
 * PostgreSQL database, with an exact top-k vector search computed in C,
 * keyword search (SQLite FTS5 BM25, PostgreSQL full-text search) and hybrid
 * ranking of the two (reciprocal rank fusion).
 *
 * Ownership: a lode_store owns its database connection and its in-memory
 * vector cache; lode_store_free releases both. Strings passed in are copied
 * before the call returns. Results (lode_store_hit) are owned by the caller
 * and released with lode_store_hits_free.
 *
 * Concurrency: one lode_store per thread. Several processes may write the
 * same SQLite file: writes take the write lock up front (BEGIN IMMEDIATE) and
 * wait for it up to a busy timeout. Any number of processes and hosts may
 * write one PostgreSQL store: a put locks its document's row, so two puts of
 * one path serialise and the last one wins whole. Every write bumps a
 * generation counter stored in the database, so a search in any process
 * notices the change and reloads its vector cache.
 *
 * Errors: functions return 0 on success and -1 on failure, with a message
 * naming the store file (and the document, when there is one) in `err`. */
#include <stddef.h>
#include <stdint.h>

typedef struct lode_store lode_store;

#define LODE_STORE_ERRLEN 512
#define LODE_STORE_BUSY_MS 30000

/* Milliseconds this process has spent waiting for store write locks. */
int64_t lode_store_busy_ms(void);

typedef struct lode_store_doc {
  const char *path;     /* required, the document's identity */
  const char *hash;     /* content hash (lode_fs_hash), may be NULL */
  const char *metadata; /* JSON text, may be NULL */
  const char *title, *mime;
  int64_t bytes;        /* size of the source; -1 if unknown */
} lode_store_doc;

typedef struct lode_store_chunk {
  const char *text;
  size_t text_len;
  int64_t start, end;  /* byte offsets in the source document */
  const char *headers; /* JSON text (header path), may be NULL */
} lode_store_chunk;

typedef struct lode_store_filter {
  const char *path_prefix; /* NULL: any path */
  const char *mime;        /* NULL: any mime */
  const char *path_glob;   /* NULL: any path; else as lode_fs_glob_match, a
                              pattern without '/' matching the last component */
} lode_store_filter;

typedef struct lode_store_hit {
  /* vector search: dot product of query and chunk vector (cosine when
   * unit-length); keyword: BM25 (SQLite) or ts_rank_cd (PostgreSQL), higher
   * is better; hybrid: the fused score sum(1 / (LODE_STORE_RRF_K + rank)) */
  float score;
  int64_t chunk_id, ordinal, start, end;
  char *path, *text, *headers; /* headers: JSON text or NULL */
  size_t text_len;
  /* every stored path with the same content (hash) that passes the filter,
   * path first; NULL (n_paths 0) when the content is stored under one path */
  char **paths;
  size_t n_paths;
  int64_t vector_rank, keyword_rank; /* hybrid: rank in each list, 0 if absent */
} lode_store_hit;

/* Reciprocal rank fusion's constant (Cormack et al. 2009). */
#define LODE_STORE_RRF_K 60

/* True if `location` names a PostgreSQL store (postgresql:// or postgres://). */
int lode_store_is_url(const char *location);

/* Opens (creating if needed) the store at `path`: a SQLite file, or a
 * PostgreSQL database given as a URL (postgresql://user@host:port/db, with
 * libpq's conventions: PG* variables, sslmode, ~/.pgpass), whose tables live
 * in the schema lode_store. `embedder` identifies the
 * embedder whose vectors the store holds (e.g. "hash/v1/384"); NULL accepts
 * whatever the store recorded. If the store already recorded another
 * embedder, opening fails, so vectors of different models never mix. */
int lode_store_open(const char *path, const char *embedder, lode_store **out, char *err,
                    size_t errlen);
void lode_store_free(lode_store *s);

/* The recorded embedder identity and dims (NULL / 0 while none is recorded).
 * The string is owned by the store and valid until the next call. */
const char *lode_store_embedder(lode_store *s);
int64_t lode_store_dims(lode_store *s);

/* *found = 1 if `path` is stored with content hash `hash`. */
int lode_store_has(lode_store *s, const char *path, const char *hash, int *found, char *err,
                   size_t errlen);

/* Stores a document with its chunks and their vectors (`vectors` holds
 * n_chunks rows of `dims` floats; NULL with dims 0 stores chunks without
 * vectors), replacing whatever was stored under doc->path, in one
 * transaction: after a crash either the old or the new version is there. */
int lode_store_put(lode_store *s, const lode_store_doc *doc, const lode_store_chunk *chunks,
                   size_t n_chunks, const float *vectors, int64_t dims, char *err,
                   size_t errlen);

/* A stored document's record; strings malloc'd (NULL when not set), freed
 * with lode_store_record_free. */
typedef struct lode_store_record {
  char *path, *hash, *metadata, *title, *mime;
  int64_t bytes; /* -1 if unknown */
  int64_t updated_at; /* ms since the epoch */
  int64_t chunks;
} lode_store_record;

/* Reads the record of `path`; *found = 0 (and *rec zeroed) if not stored. */
int lode_store_get(lode_store *s, const char *path, lode_store_record *rec, int *found,
                   char *err, size_t errlen);
void lode_store_record_free(lode_store_record *rec);

/* Removes a document and its chunks; *removed = 1 if it existed. */
int lode_store_delete(lode_store *s, const char *path, int *removed, char *err, size_t errlen);

/* Calls fn for every stored path in byte order; fn returns non-zero to stop. */
int lode_store_paths(lode_store *s, int (*fn)(void *ud, const char *path), void *ud, char *err,
                     size_t errlen);

/* Number of documents and chunks. */
int lode_store_count(lode_store *s, int64_t *docs, int64_t *chunks, char *err, size_t errlen);

/* Exact top-k by dot product over every stored vector that passes `filter`
 * (may be NULL). Hits are sorted by score, best first; equal scores by chunk
 * id. *hits is malloc'd (free with lode_store_hits_free). */
int lode_store_search(lode_store *s, const float *query, int64_t dims, int64_t k,
                      const lode_store_filter *filter, lode_store_hit **hits, size_t *n_hits,
                      char *err, size_t errlen);
void lode_store_hits_free(lode_store_hit *hits, size_t n);

/* Keyword search: chunks matching any word of `text` (letters and digits;
 * SQLite: FTS5 with the porter stemmer, ranked by BM25; PostgreSQL: the
 * 'english' text search configuration, ranked by ts_rank_cd), best first,
 * equal scores by chunk id. Filters and duplicate collapsing as for
 * lode_store_search. */
int lode_store_search_text(lode_store *s, const char *text, int64_t k,
                           const lode_store_filter *filter, lode_store_hit **hits,
                           size_t *n_hits, char *err, size_t errlen);

/* Hybrid: the vector and keyword rankings (each its best k) fused by
 * reciprocal rank fusion, best first; equal fused scores by the better
 * single rank, then chunk id. */
int lode_store_search_hybrid(lode_store *s, const float *query, int64_t dims, const char *text,
                             int64_t k, const lode_store_filter *filter, lode_store_hit **hits,
                             size_t *n_hits, char *err, size_t errlen);

#endif
