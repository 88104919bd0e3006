#ifndef LODE_STORE_INT_H
#define LODE_STORE_INT_H
/* store_int.h - internals shared by store.c (schema, writes) and
 * store_search.c (vector cache, scan). Not part of the C API. */
#include <sqlite3.h>
#include <stdarg.h>

#include "base/busy.h"
#include "kernels/store.h"

/* The in-memory copy of every vector, loaded lazily and reloaded when the
 * generation stored in the file moves. Rows are in chunk-id order. */
typedef struct lode__store_cache {
  int valid;
  int64_t generation;
  int64_t dims, n;
  float *vecs;        /* n * dims floats, contiguous */
  int64_t *chunk_ids; /* n */
  int32_t *doc_idx;   /* n, index into the doc arrays */
  int64_t n_docs;
  int64_t *doc_ids;   /* sorted */
  char **doc_paths, **doc_mimes;
} lode__store_cache;

struct lode_store {
  sqlite3 *db;
  lode_busy busy; /* the connection's busy handler and WAL hook */
  char *path;
  char *embedder; /* recorded identity or NULL */
  int64_t dims;   /* recorded dims or 0 */
  lode__store_cache cache;
};

void lode__store_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Executes SQL with no result rows; -1 with the message in err. */
int lode__store_exec(lode_store *s, const char *sql, char *err, size_t errlen);
/* Reads meta.generation into *gen. */
int lode__store_generation(lode_store *s, int64_t *gen, char *err, size_t errlen);
void lode__store_cache_clear(lode__store_cache *c);

#endif
