/* store_sqlite.c - the SQLite backend's schema and writes: documents,
 * chunks, vectors, and the keyword index.
 *
 * Layout (one SQLite file, WAL mode):
 *   meta(key, value)        schema version, embedder identity, dims, generation
 *   documents(id, path UNIQUE, hash, metadata JSON, title, mime, bytes, updated_at)
 *   chunks(id, doc_id, ordinal, text, start_byte, end_byte, headers JSON)
 *   vectors(chunk_id, dims, data BLOB of little-endian float32)
 *   chunks_fts              FTS5 over chunks.text (external content, porter
 *                           stemmer), kept by triggers on chunks
 * Every write runs in one BEGIN IMMEDIATE transaction that also bumps
 * meta.generation, which is how searches (store_search.c) in this or another
 * process know their vector cache is stale.
 *
 * The keyword index came after schema 1 and needs no new version: an older
 * store gets it at its first open (filled from its chunks), and the triggers
 * live in the file, so an older lode writing to it keeps it in step. */
#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/busy.h"
#include "base/util.h"
#include "kernels/store_int.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the store writes vectors as native float32 blobs, defined as little-endian"
#endif

#define SCHEMA_VERSION 1

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS documents("
    " id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, hash TEXT, metadata TEXT,"
    " title TEXT, mime TEXT, bytes INTEGER, updated_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS chunks("
    " id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL REFERENCES documents(id),"
    " ordinal INTEGER NOT NULL, text TEXT NOT NULL, start_byte INTEGER, end_byte INTEGER,"
    " headers TEXT, UNIQUE(doc_id, ordinal));"
    "CREATE TABLE IF NOT EXISTS vectors("
    " chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id), dims INTEGER NOT NULL,"
    " data BLOB NOT NULL);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', 1), ('generation', 0);";

static int dberr(lode_store *s, char *err, size_t errlen, const char *what) {
  lode__store_seterr(err, errlen, "store %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
  return -1;
}

int lode__store_sqlite_exec(lode_store *s, const char *sql, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
  lode__store_seterr(err, errlen, "store %s: %s", s->path,
                     msg ? msg : sqlite3_errmsg(s->db));
  sqlite3_free(msg);
  return -1;
}

/* A rollback releases the write lock without calling the WAL hook, so it
 * wakes the waiters itself (busy.h). Every write commits a page (the
 * generation), so its commit wakes them through the hook. */
static void rollback(lode_store *s) {
  if (sqlite3_get_autocommit(s->db)) return;
  lode_busy_releasing(&s->busy);
  sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  lode_busy_released(&s->busy);
}

/* Reads meta.<key> as text (NULL if absent) into *out (malloc'd). */
static int meta_get(lode_store *s, const char *key, char **out, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1;
  *out = NULL;
  if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) !=
      SQLITE_OK) {
    dberr(s, err, errlen, "reading meta");
    goto done;
  }
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW) {
    const unsigned char *v = sqlite3_column_text(st, 0);
    if (v && !(*out = strdup((const char *)v))) {
      lode__store_seterr(err, errlen, "store %s: out of memory", s->path);
      goto done;
    }
  } else if (step != SQLITE_DONE) {
    dberr(s, err, errlen, "reading meta");
    goto done;
  }
  rc = 0;
done:
  sqlite3_finalize(st);
  return rc;
}

static int meta_set(lode_store *s, const char *key, const char *value, char *err,
                    size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1;
  if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", -1,
                         &st, NULL) != SQLITE_OK) {
    dberr(s, err, errlen, "writing meta");
    goto done;
  }
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) {
    dberr(s, err, errlen, "writing meta");
    goto done;
  }
  rc = 0;
done:
  sqlite3_finalize(st);
  return rc;
}

int lode__store_sqlite_generation(lode_store *s, int64_t *gen, char *err, size_t errlen) {
  char *v = NULL;
  if (meta_get(s, "generation", &v, err, errlen) != 0) return -1;
  *gen = v ? strtoll(v, NULL, 10) : 0;
  free(v);
  return 0;
}

/* Refreshes s->embedder and s->dims from the file (another process may have
 * recorded them since we opened it). */
static int load_identity(lode_store *s, char *err, size_t errlen) {
  char *emb = NULL, *dims = NULL;
  if (meta_get(s, "embedder", &emb, err, errlen) != 0) return -1;
  if (meta_get(s, "dims", &dims, err, errlen) != 0) {
    free(emb);
    return -1;
  }
  free(s->embedder);
  s->embedder = emb;
  s->dims = dims ? strtoll(dims, NULL, 10) : 0;
  free(dims);
  return 0;
}

static int bump_generation(lode_store *s, char *err, size_t errlen) {
  return lode__store_sqlite_exec(
      s, "UPDATE meta SET value = value + 1 WHERE key = 'generation'", err, errlen);
}

/* Waiting for another writer (the other worker threads, another process):
 * SQLite's own busy timeout sleeps 1, 2, 5, 10, 15, 20, 25 ms... and so
 * wakes up to 20 ms after the lock is free; a put holds it for a few ms
 * (under 50 ms for an 8 MB page), so naps here are capped at 2 ms, and a
 * release by this process's other connections ends them at once (busy.h).
 * Gives up after LODE_STORE_BUSY_MS. The time waited is counted for
 * LODE_STATS (lode_store_busy_ms). */
static const int busy_naps_us[] = {50, 100, 200, 500, 1000, 2000};
static lode_busy_kind busy_kind = LODE_BUSY_KIND(busy_naps_us, LODE_STORE_BUSY_MS);

int64_t lode_store_busy_ms(void) { return lode_busy_waited_ms(&busy_kind); }

/* The keyword index (schema 1 stores made before it get it here, filled
 * from their chunks). Runs inside open's write transaction. */
static int ensure_fts(lode_store *s, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int have = 0;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chunks_fts'",
                         -1, &st, NULL) != SQLITE_OK)
    return dberr(s, err, errlen, "checking the keyword index");
  have = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  if (have) return 0;
  return lode__store_sqlite_exec(
      s,
      "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks', content_rowid='id',"
      " tokenize='porter unicode61');"
      "CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN"
      " INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END;"
      "CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN"
      " INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);"
      " END;"
      "CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN"
      " INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);"
      " INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END;"
      "INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');",
      err, errlen);
}

/* documents.shared_from (identical content stored once, store_share.c),
 * added to stores made before it. Runs inside open's write transaction. */
static int ensure_sharing(lode_store *s, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT 1 FROM pragma_table_info('documents') WHERE name = 'shared_from'",
                         -1, &st, NULL) != SQLITE_OK)
    return dberr(s, err, errlen, "checking the schema");
  int have = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  if (have) return 0;
  return lode__store_sqlite_exec(
      s,
      "ALTER TABLE documents ADD COLUMN shared_from INTEGER;"
      "CREATE INDEX IF NOT EXISTS documents_hash ON documents(hash);"
      "CREATE INDEX IF NOT EXISTS documents_shared ON documents(shared_from);",
      err, errlen);
}

int lode__store_sqlite_open(lode_store *s, const char *path, const char *embedder, char *err,
                            size_t errlen) {
  int rc = -1;
  char *schema = NULL;
  s->ops = &lode__store_sqlite_ops;
  /* it holds document text: created 0600 (docs/operations.md); its folder
   * must exist (the state database's open creates .lode/ 0700) */
  if (strcmp(path, ":memory:") && path[0] && lode_prepare_private_file(path, 0) != 0 &&
      errno != ENOENT) {
    lode__store_seterr(err, errlen, "store %s: cannot create it: %s", path, strerror(errno));
    goto done;
  }
  if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
      SQLITE_OK) {
    if (s->db)
      dberr(s, err, errlen, "cannot open (check the folder exists and is writable)");
    else
      lode__store_seterr(err, errlen, "store %s: cannot open: out of memory", path);
    goto done;
  }
  if (lode_busy_attach(&s->busy, &busy_kind, s->db, 0) != SQLITE_OK) {
    dberr(s, err, errlen, "cannot set up waiting for locks");
    goto done;
  }
  sqlite3_extended_result_codes(s->db, 1);
  if (lode__store_sqlite_exec(s, "PRAGMA journal_mode=WAL", err, errlen) != 0) goto done;
  if (lode__store_sqlite_exec(s, "PRAGMA synchronous=NORMAL", err, errlen) != 0) goto done;
  if (lode__store_sqlite_exec(s, "BEGIN IMMEDIATE", err, errlen) != 0) goto done;
  if (lode__store_sqlite_exec(s, SCHEMA, err, errlen) != 0) goto done;
  if (meta_get(s, "schema", &schema, err, errlen) != 0) goto done;
  if (!schema || atoi(schema) != SCHEMA_VERSION) {
    lode__store_seterr(err, errlen,
                       "store %s: schema version %s, this lode reads version %d; "
                       "use a newer lode or a new store file",
                       path, schema ? schema : "(none)", SCHEMA_VERSION);
    goto done;
  }
  if (ensure_fts(s, err, errlen) != 0) goto done;
  if (ensure_sharing(s, err, errlen) != 0) goto done;
  if (load_identity(s, err, errlen) != 0) goto done;
  if (embedder && *embedder) {
    if (!s->embedder) {
      if (meta_set(s, "embedder", embedder, err, errlen) != 0) goto done;
      if (!(s->embedder = strdup(embedder))) {
        lode__store_seterr(err, errlen, "store %s: out of memory", path);
        goto done;
      }
    } else if (strcmp(s->embedder, embedder) != 0) {
      lode__store_seterr(err, errlen,
                         "store %s holds vectors of embedder '%s', not '%s'; open it with "
                         "the same embedder or use another store file",
                         path, s->embedder, embedder);
      goto done;
    }
  }
  if (lode__store_sqlite_exec(s, "COMMIT", err, errlen) != 0) goto done;
  rc = 0;
done:
  free(schema);
  if (rc != 0 && s->db) rollback(s);
  return rc;
}

static void sq_close(lode_store *s) {
  sqlite3_close_v2(s->db);
  s->db = NULL;
}

static int sq_has(lode_store *s, const char *path, const char *hash, int *found, char *err,
                   size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1;
  *found = 0;
  if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM documents WHERE path = ? AND hash IS ?", -1,
                         &st, NULL) != SQLITE_OK) {
    dberr(s, err, errlen, "has");
    goto done;
  }
  sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
  if (hash) sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  if (step != SQLITE_ROW && step != SQLITE_DONE) {
    dberr(s, err, errlen, "has");
    goto done;
  }
  *found = step == SQLITE_ROW;
  rc = 0;
done:
  sqlite3_finalize(st);
  return rc;
}

static char *col_dup(sqlite3_stmt *st, int i, int *oom) {
  const unsigned char *t = sqlite3_column_text(st, i);
  if (!t) return NULL;
  char *d = strdup((const char *)t);
  if (!d) *oom = 1;
  return d;
}

static int sq_get(lode_store *s, const char *path, lode_store_record *rec, int *found,
                   char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1, oom = 0;
  memset(rec, 0, sizeof *rec);
  *found = 0;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT path, hash, metadata, title, mime, bytes, updated_at,"
                         " (SELECT count(*) FROM chunks"
                         "  WHERE doc_id = coalesce(d.shared_from, d.id))"
                         " FROM documents d WHERE path = ?",
                         -1, &st, NULL) != SQLITE_OK) {
    dberr(s, err, errlen, "get");
    goto done;
  }
  sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW) {
    rec->path = col_dup(st, 0, &oom);
    rec->hash = col_dup(st, 1, &oom);
    rec->metadata = col_dup(st, 2, &oom);
    rec->title = col_dup(st, 3, &oom);
    rec->mime = col_dup(st, 4, &oom);
    rec->bytes = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 5);
    rec->updated_at = sqlite3_column_int64(st, 6);
    rec->chunks = sqlite3_column_int64(st, 7);
    if (oom) {
      lode__store_seterr(err, errlen, "store %s: get '%s': out of memory", s->path, path);
      lode_store_record_free(rec);
      goto done;
    }
    *found = 1;
  } else if (step != SQLITE_DONE) {
    dberr(s, err, errlen, "get");
    goto done;
  }
  rc = 0;
done:
  sqlite3_finalize(st);
  return rc;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v) {
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

/* Removes the chunks and vectors of document `doc_id`. */
static int drop_chunks(lode_store *s, int64_t doc_id, char *err, size_t errlen) {
  static const char *sql[2] = {
      "DELETE FROM vectors WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = ?)",
      "DELETE FROM chunks WHERE doc_id = ?"};
  for (int i = 0; i < 2; i++) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) != SQLITE_OK)
      return dberr(s, err, errlen, "dropping old chunks");
    sqlite3_bind_int64(st, 1, doc_id);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) return dberr(s, err, errlen, "dropping old chunks");
  }
  return 0;
}

/* Checks the vectors' dims against the store's, recording them on the first
 * put. Runs inside the write transaction, so two processes cannot record
 * different dims. */
static int check_dims(lode_store *s, const lode_store_doc *doc, int64_t dims, char *err,
                      size_t errlen) {
  if (load_identity(s, err, errlen) != 0) return -1;
  if (s->dims && s->dims != dims) {
    lode__store_seterr(err, errlen,
                       "store %s: put '%s': vectors have %lld dims, the store holds %lld",
                       s->path, doc->path, (long long)dims, (long long)s->dims);
    return -1;
  }
  if (!s->dims) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)dims);
    if (meta_set(s, "dims", buf, err, errlen) != 0) return -1;
    s->dims = dims;
  }
  return 0;
}

static int put_doc(lode_store *s, const lode_store_doc *doc, int64_t *doc_id, char *err,
                   size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1;
  if (sqlite3_prepare_v2(
          s->db,
          "INSERT INTO documents(path, hash, metadata, title, mime, bytes, updated_at)"
          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(path) DO UPDATE SET"
          " hash = ?2, metadata = ?3, title = ?4, mime = ?5, bytes = ?6, updated_at = ?7"
          " RETURNING id",
          -1, &st, NULL) != SQLITE_OK) {
    dberr(s, err, errlen, "put");
    goto done;
  }
  sqlite3_bind_text(st, 1, doc->path, -1, SQLITE_STATIC);
  bind_text_or_null(st, 2, doc->hash);
  bind_text_or_null(st, 3, doc->metadata);
  bind_text_or_null(st, 4, doc->title);
  bind_text_or_null(st, 5, doc->mime);
  if (doc->bytes >= 0)
    sqlite3_bind_int64(st, 6, doc->bytes);
  else
    sqlite3_bind_null(st, 6);
  sqlite3_bind_int64(st, 7, lode_now_ms());
  if (sqlite3_step(st) != SQLITE_ROW) {
    dberr(s, err, errlen, "put");
    goto done;
  }
  *doc_id = sqlite3_column_int64(st, 0);
  rc = 0;
done:
  sqlite3_finalize(st);
  return rc;
}

static int put_chunks(lode_store *s, int64_t doc_id, const lode_store_chunk *chunks, size_t n,
                      const float *vectors, int64_t dims, char *err, size_t errlen) {
  sqlite3_stmt *ch = NULL, *vec = NULL;
  int rc = -1;
  if (sqlite3_prepare_v2(s->db,
                         "INSERT INTO chunks(doc_id, ordinal, text, start_byte, end_byte,"
                         " headers) VALUES (?, ?, ?, ?, ?, ?)",
                         -1, &ch, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db, "INSERT INTO vectors(chunk_id, dims, data) VALUES (?, ?, ?)",
                         -1, &vec, NULL) != SQLITE_OK) {
    dberr(s, err, errlen, "put chunks");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    const lode_store_chunk *c = &chunks[i];
    sqlite3_reset(ch);
    sqlite3_bind_int64(ch, 1, doc_id);
    sqlite3_bind_int64(ch, 2, (int64_t)i + 1);
    sqlite3_bind_text(ch, 3, c->text ? c->text : "", (int)c->text_len, SQLITE_STATIC);
    sqlite3_bind_int64(ch, 4, c->start);
    sqlite3_bind_int64(ch, 5, c->end);
    bind_text_or_null(ch, 6, c->headers);
    if (sqlite3_step(ch) != SQLITE_DONE) {
      dberr(s, err, errlen, "put chunks");
      goto done;
    }
    if (!vectors) continue;
    sqlite3_reset(vec);
    sqlite3_bind_int64(vec, 1, sqlite3_last_insert_rowid(s->db));
    sqlite3_bind_int64(vec, 2, dims);
    sqlite3_bind_blob(vec, 3, vectors + i * (size_t)dims, (int)(dims * 4), SQLITE_STATIC);
    if (sqlite3_step(vec) != SQLITE_DONE) {
      dberr(s, err, errlen, "put vectors");
      goto done;
    }
  }
  rc = 0;
done:
  sqlite3_finalize(ch);
  sqlite3_finalize(vec);
  return rc;
}

/* lode__store_ops.scalar: $N becomes ?N, SQLite's numbered parameter. */
static int sq_scalar(lode_store *s, const char *sql, int64_t a, int64_t b, const char *t,
                     int64_t *out, char *err, size_t errlen) {
  char q[512];
  size_t n = strlen(sql);
  if (n >= sizeof q) {
    lode__store_seterr(err, errlen, "store %s: statement too long", s->path);
    return -1;
  }
  for (size_t i = 0; i <= n; i++) q[i] = sql[i] == '$' ? '?' : sql[i];
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK)
    return dberr(s, err, errlen, "sharing content");
  sqlite3_bind_int64(st, 1, a);
  sqlite3_bind_int64(st, 2, b);
  if (t) sqlite3_bind_text(st, 3, t, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  if (out) *out = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (step != SQLITE_ROW && step != SQLITE_DONE) return dberr(s, err, errlen, "sharing content");
  return 0;
}

/* What is stored under `path` now: its id (0 if none), whether it holds its
 * chunks, its hash (malloc'd or NULL). */
static int old_state(lode_store *s, const char *path, int64_t *id, int *holds, char **hash,
                     char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int oom = 0;
  *id = 0;
  *holds = 0;
  *hash = NULL;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT id, shared_from IS NULL, hash FROM documents WHERE path = ?", -1,
                         &st, NULL) != SQLITE_OK)
    return dberr(s, err, errlen, "put");
  sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW) {
    *id = sqlite3_column_int64(st, 0);
    *holds = sqlite3_column_int(st, 1);
    *hash = col_dup(st, 2, &oom);
  }
  sqlite3_finalize(st);
  if (step != SQLITE_ROW && step != SQLITE_DONE) return dberr(s, err, errlen, "put");
  if (oom) lode__store_seterr(err, errlen, "store %s: put: out of memory", s->path);
  return oom ? -1 : 0;
}

static int sq_put(lode_store *s, const lode_store_doc *doc, const lode_store_chunk *chunks,
                  size_t n_chunks, const float *vectors, int64_t dims, char *err,
                  size_t errlen) {
  int64_t doc_id = 0, holder = 0;
  char *old_hash = NULL;
  int was_holder = 0;
  if (lode__store_sqlite_exec(s, "BEGIN IMMEDIATE", err, errlen) != 0) return -1;
  if (vectors && check_dims(s, doc, dims, err, errlen) != 0) goto fail;
  if (old_state(s, doc->path, &doc_id, &was_holder, &old_hash, err, errlen) != 0) goto fail;
  if (put_doc(s, doc, &doc_id, err, errlen) != 0) goto fail;
  if (lode__store_share_put(s, doc_id, was_holder, old_hash, doc->hash, &holder, err, errlen))
    goto fail;
  if (drop_chunks(s, doc_id, err, errlen) != 0) goto fail;
  if (sq_scalar(s, "UPDATE documents SET shared_from = nullif($2, 0) WHERE id = $1", doc_id,
                holder, NULL, NULL, err, errlen) != 0)
    goto fail;
  if (!holder && put_chunks(s, doc_id, chunks, n_chunks, vectors, dims, err, errlen) != 0)
    goto fail;
  if (bump_generation(s, err, errlen) != 0) goto fail;
  if (lode__store_sqlite_exec(s, "COMMIT", err, errlen) != 0) goto fail;
  free(old_hash);
  return 0;
fail:
  free(old_hash);
  rollback(s);
  return -1;
}

static int sq_del(lode_store *s, const char *path, int *removed, char *err,
                      size_t errlen) {
  sqlite3_stmt *st = NULL;
  *removed = 0;
  if (lode__store_sqlite_exec(s, "BEGIN IMMEDIATE", err, errlen) != 0) return -1;
  if (sqlite3_prepare_v2(s->db, "SELECT id, shared_from IS NULL FROM documents WHERE path = ?",
                         -1, &st, NULL) != SQLITE_OK) {
    dberr(s, err, errlen, "delete");
    goto fail;
  }
  sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    int holds = sqlite3_column_int(st, 1);
    sqlite3_finalize(st);
    st = NULL;
    if (lode__store_share_delete(s, id, holds, err, errlen) != 0) goto fail;
    if (drop_chunks(s, id, err, errlen) != 0) goto fail;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM documents WHERE id = ?", -1, &st, NULL) !=
        SQLITE_OK) {
      dberr(s, err, errlen, "delete");
      goto fail;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
      dberr(s, err, errlen, "delete");
      goto fail;
    }
    if (bump_generation(s, err, errlen) != 0) goto fail;
    *removed = 1;
  } else if (step != SQLITE_DONE) {
    dberr(s, err, errlen, "delete");
    goto fail;
  }
  sqlite3_finalize(st);
  st = NULL;
  if (lode__store_sqlite_exec(s, "COMMIT", err, errlen) != 0) goto fail;
  return 0;
fail:
  sqlite3_finalize(st);
  rollback(s);
  *removed = 0;
  return -1;
}

static int sq_paths(lode_store *s, int (*fn)(void *ud, const char *path), void *ud, char *err,
                     size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1, step;
  if (sqlite3_prepare_v2(s->db, "SELECT path FROM documents ORDER BY path", -1, &st, NULL) !=
      SQLITE_OK) {
    dberr(s, err, errlen, "paths");
    goto done;
  }
  while ((step = sqlite3_step(st)) == SQLITE_ROW)
    if (fn(ud, (const char *)sqlite3_column_text(st, 0))) break;
  if (step != SQLITE_ROW && step != SQLITE_DONE) {
    dberr(s, err, errlen, "paths");
    goto done;
  }
  rc = 0;
done:
  sqlite3_finalize(st);
  return rc;
}

static int sq_count(lode_store *s, int64_t *docs, int64_t *chunks, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = -1;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)",
                         -1, &st, NULL) != SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW) {
    dberr(s, err, errlen, "count");
    goto done;
  }
  *docs = sqlite3_column_int64(st, 0);
  *chunks = sqlite3_column_int64(st, 1);
  rc = 0;
done:
  sqlite3_finalize(st);
  return rc;
}

const lode__store_ops lode__store_sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .has = sq_has,
    .put = sq_put,
    .get = sq_get,
    .del = sq_del,
    .paths = sq_paths,
    .count = sq_count,
    .scalar = sq_scalar,
    .read_begin = lode__store_sqlite_read_begin,
    .read_end = lode__store_sqlite_read_end,
    .load = lode__store_sqlite_load,
    .fetch = lode__store_sqlite_fetch,
    .keyword = lode__store_sqlite_keyword,
};
