/* store_sqlite_read.c - the SQLite backend's reads for searches: the read
 * transaction, loading the vector cache, fetching hits, keyword matches
 * (FTS5, BM25). store_search.c calls these through lode__store_ops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/store_int.h"

static int dberr(lode_store *s, char *err, size_t errlen, const char *what) {
  lode__store_seterr(err, errlen, "store %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
  return -1;
}

int lode__store_sqlite_read_begin(lode_store *s, int64_t *gen, char *err, size_t errlen) {
  if (lode__store_sqlite_exec(s, "BEGIN", err, errlen) != 0) return -1;
  if (lode__store_sqlite_generation(s, gen, err, errlen) != 0) goto fail;
  if (!s->cache.valid || s->cache.generation != *gen) {
    /* dims may have been recorded by another process since we opened */
    sqlite3_stmt *m = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'dims'", -1, &m, NULL) ==
            SQLITE_OK &&
        sqlite3_step(m) == SQLITE_ROW)
      s->dims = sqlite3_column_int64(m, 0);
    sqlite3_finalize(m);
  }
  return 0;
fail:
  sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
  return -1;
}

void lode__store_sqlite_read_end(lode_store *s) {
  if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
}

static int load_docs(lode_store *s, lode__store_cache *c, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1, step;
  if (sqlite3_prepare_v2(s->db, "SELECT id, path, mime, hash, shared_from IS NULL FROM documents ORDER BY id", -1,
                         &st, NULL) != SQLITE_OK) {
    dberr(s, err, errlen, "loading documents");
    goto done;
  }
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (lode__store_cache_add_doc(c, sqlite3_column_int64(st, 0),
                                  (const char *)sqlite3_column_text(st, 1),
                                  (const char *)sqlite3_column_text(st, 2),
                                  (const char *)sqlite3_column_text(st, 3),
                                  sqlite3_column_int(st, 4)) != 0) {
      lode__store_seterr(err, errlen, "store %s: out of memory loading documents", s->path);
      goto done;
    }
  }
  if (step != SQLITE_DONE) {
    dberr(s, err, errlen, "loading documents");
    goto done;
  }
  rc = 0;
done:
  sqlite3_finalize(st);
  return rc;
}

int lode__store_sqlite_load(lode_store *s, lode__store_cache *c, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1, step;
  if (load_docs(s, c, err, errlen) != 0) return -1;
  if (c->dims <= 0) return 0;
  if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM vectors WHERE dims = ?", -1, &st,
                         NULL) != SQLITE_OK)
    goto dberr;
  sqlite3_bind_int64(st, 1, c->dims);
  if (sqlite3_step(st) != SQLITE_ROW) goto dberr;
  int64_t count = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  st = NULL;
  if (lode__store_cache_reserve(c, count) != 0) {
    lode__store_seterr(err, errlen, "store %s: out of memory loading vectors", s->path);
    goto done;
  }
  if (sqlite3_prepare_v2(s->db,
                         "SELECT v.chunk_id, c.doc_id, v.data FROM vectors v"
                         " JOIN chunks c ON c.id = v.chunk_id WHERE v.dims = ?"
                         " ORDER BY v.chunk_id",
                         -1, &st, NULL) != SQLITE_OK)
    goto dberr;
  sqlite3_bind_int64(st, 1, c->dims);
  size_t row_bytes = (size_t)c->dims * sizeof(float);
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    const void *blob = sqlite3_column_blob(st, 2);
    /* a blob of the wrong size can only come from outside lode: skip it
     * rather than read past its end */
    if ((size_t)sqlite3_column_bytes(st, 2) != row_bytes || !blob) continue;
    float *row = lode__store_cache_add_vec(c, sqlite3_column_int64(st, 0),
                                           sqlite3_column_int64(st, 1));
    if (row) memcpy(row, blob, row_bytes);
  }
  if (step != SQLITE_DONE) goto dberr;
  rc = 0;
  goto done;
dberr:
  dberr(s, err, errlen, "loading vectors");
done:
  sqlite3_finalize(st);
  return rc;
}

static char *dup_col(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return strdup(t ? (const char *)t : "");
}

int lode__store_sqlite_fetch(lode_store *s, lode_store_hit *hits, size_t n, char *err,
                             size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT c.ordinal, c.text, c.start_byte, c.end_byte, c.headers, d.path"
                         " FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id = ?",
                         -1, &st, NULL) != SQLITE_OK) {
    dberr(s, err, errlen, "search");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    lode_store_hit *hit = &hits[i];
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, hit->chunk_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
      lode__store_seterr(err, errlen, "store %s: reading chunk %lld: %s", s->path,
                         (long long)hit->chunk_id, sqlite3_errmsg(s->db));
      goto done;
    }
    hit->ordinal = sqlite3_column_int64(st, 0);
    hit->start = sqlite3_column_int64(st, 2);
    hit->end = sqlite3_column_int64(st, 3);
    int tl = sqlite3_column_bytes(st, 1);
    const void *t = sqlite3_column_blob(st, 1);
    hit->text = malloc((size_t)tl + 1);
    hit->path = dup_col(st, 5);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) hit->headers = dup_col(st, 4);
    if (!hit->text || !hit->path ||
        (sqlite3_column_type(st, 4) != SQLITE_NULL && !hit->headers)) {
      lode__store_seterr(err, errlen, "store %s: search: out of memory", s->path);
      goto done;
    }
    if (tl) memcpy(hit->text, t, (size_t)tl);
    hit->text[tl] = 0;
    hit->text_len = (size_t)tl;
  }
  rc = 0;
done:
  sqlite3_finalize(st);
  return rc;
}

/* The terms become an FTS5 query of quoted words joined by OR (a term holds
 * only letters and digits, so quoting is enough); BM25 weighs them. */
int lode__store_sqlite_keyword(lode_store *s, const char *const *terms, size_t n_terms,
                               int64_t limit, lode__store_kw **out, size_t *n, char *err,
                               size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1, step;
  size_t len = 1, cap = 0;
  *out = NULL;
  *n = 0;
  for (size_t i = 0; i < n_terms; i++) len += strlen(terms[i]) + 6;
  char *q = malloc(len), *w = q;
  if (!q) goto nomem;
  *w = 0;
  for (size_t i = 0; i < n_terms; i++)
    w += sprintf(w, "%s\"%s\"", i ? " OR " : "", terms[i]);
  if (sqlite3_prepare_v2(s->db,
                         "SELECT c.id, c.doc_id, bm25(chunks_fts) FROM chunks_fts"
                         " JOIN chunks c ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH ?"
                         " ORDER BY bm25(chunks_fts), c.id LIMIT ?",
                         -1, &st, NULL) != SQLITE_OK) {
    dberr(s, err, errlen, "keyword search");
    goto done;
  }
  sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, limit);
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      lode__store_kw *m = realloc(*out, cap * sizeof *m);
      if (!m) goto nomem;
      *out = m;
    }
    /* bm25() is lower-is-better; hits say higher-is-better */
    (*out)[(*n)++] = (lode__store_kw){sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                      (float)-sqlite3_column_double(st, 2)};
  }
  if (step != SQLITE_DONE) {
    dberr(s, err, errlen, "keyword search");
    goto done;
  }
  rc = 0;
  goto done;
nomem:
  lode__store_seterr(err, errlen, "store %s: keyword search: out of memory", s->path);
done:
  if (rc != 0) {
    free(*out);
    *out = NULL;
    *n = 0;
  }
  sqlite3_finalize(st);
  free(q);
  return rc;
}
