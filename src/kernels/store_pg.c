/* store_pg.c - the store's PostgreSQL backend (libpq).
 *
 * Layout (schema lode_store, documented for users' own SQL in docs/store.md):
 *   meta(key, value)      schema version, embedder identity, dims, generation
 *   documents(id, path UNIQUE, hash, metadata json, title, mime, bytes,
 *             updated_at timestamptz)
 *   chunks(id, doc_id -> documents ON DELETE CASCADE, ordinal, text,
 *          start_byte, end_byte, headers json, embedding real[],
 *          tsv tsvector generated from text ('english'), UNIQUE(doc_id, ordinal))
 *   a GIN index on chunks.tsv, a b-tree on documents.hash
 *
 * Many hosts write one store: a put is one transaction (upsert the document
 * row, which locks it, delete its chunks, COPY the new ones, bump the
 * generation), so two hosts putting the same path serialise on that row and
 * the second replaces the first: one copy, never a mix. The generation row
 * is updated last, so writers of different documents wait for each other
 * only for the commit. The schema is created under a transaction-scoped
 * advisory lock, so hosts opening a new database at once do not race.
 *
 * A lost connection (the server restarted, the network cut) is opened again
 * before the next call, for up to LODE_STORE_BUSY_MS with back-off; a put,
 * has, get, delete, paths or count that failed because the connection went
 * is run once more on the new one (a put is one transaction and idempotent,
 * so running it again is safe whether or not its commit had landed).
 *
 * Searches read in a REPEATABLE READ snapshot; the vectors travel once, in
 * binary (float4[]), into the same in-memory cache the SQLite backend uses,
 * and are reloaded when the generation moves. */
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "kernels/store_int.h"

#define SCHEMA_VERSION 1
#define CONN(s) ((PGconn *)(s)->pg)
/* pg_advisory_xact_lock(key1, key2): 'lode' and 2, the store's schema */
#define LOCK_KEY1 0x6c6f6465
#define LOCK_KEY2 2
/* pg_advisory_xact_lock(class, hashtext(x)) while a put or delete rearranges
 * shared content: first the path's, then the hashes' in key order, before
 * any row lock, so writers of one content queue up instead of deadlocking */
#define LOCK_PATH 0x6c6f6470 /* 'lodp' */
#define LOCK_HASH 0x6c6f6468 /* 'lodh' */
#define FETCH_ROWS 8192

static const char *SCHEMA =
    "CREATE SCHEMA IF NOT EXISTS lode_store;"
    "CREATE TABLE IF NOT EXISTS lode_store.meta(key text PRIMARY KEY, value text NOT NULL);"
    "CREATE TABLE IF NOT EXISTS lode_store.documents("
    " id bigserial PRIMARY KEY, path text NOT NULL UNIQUE, hash text, metadata json,"
    " title text, mime text, bytes bigint, updated_at timestamptz NOT NULL,"
    " shared_from bigint);"
    "CREATE INDEX IF NOT EXISTS documents_hash ON lode_store.documents(hash);"
    "CREATE INDEX IF NOT EXISTS documents_shared ON lode_store.documents(shared_from);"
    "CREATE TABLE IF NOT EXISTS lode_store.chunks("
    " id bigserial PRIMARY KEY,"
    " doc_id bigint NOT NULL REFERENCES lode_store.documents(id) ON DELETE CASCADE,"
    " ordinal integer NOT NULL, text text NOT NULL, start_byte bigint, end_byte bigint,"
    " headers json, embedding real[],"
    " tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,"
    " UNIQUE(doc_id, ordinal));"
    "CREATE INDEX IF NOT EXISTS chunks_tsv ON lode_store.chunks USING gin(tsv);"
    "INSERT INTO lode_store.meta(key, value) VALUES ('schema', '1'), ('generation', '0')"
    " ON CONFLICT DO NOTHING;";

/* ---- plumbing ------------------------------------------------------------------- */
static int pgerr(lode_store *s, char *err, size_t errlen, const char *what, PGresult *r) {
  const char *m = r ? PQresultErrorMessage(r) : "";
  if (!m || !*m) m = PQerrorMessage(CONN(s));
  size_t l = strlen(m);
  while (l && (m[l - 1] == '\n' || m[l - 1] == ' ')) l--;
  lode__store_seterr(err, errlen, "store %s: %s: %.*s", s->path, what, (int)l, m);
  return -1;
}

/* Runs one statement with text parameters (NULL values are SQL NULL); the
 * result if its status is `want`, else NULL with the message in err. */
static PGresult *run(lode_store *s, const char *sql, int n, const char *const *vals,
                     ExecStatusType want, int binary, const char *what, char *err,
                     size_t errlen) {
  PGresult *r = PQexecParams(CONN(s), sql, n, NULL, vals, NULL, NULL, binary);
  if (r && PQresultStatus(r) == want) return r;
  pgerr(s, err, errlen, what, r);
  PQclear(r);
  return NULL;
}

static int cmd(lode_store *s, const char *sql, const char *what, char *err, size_t errlen) {
  PGresult *r = PQexec(CONN(s), sql);
  int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) pgerr(s, err, errlen, what, r);
  PQclear(r);
  return ok ? 0 : -1;
}

static void rollback(lode_store *s) {
  if (PQtransactionStatus(CONN(s)) != PQTRANS_IDLE) PQclear(PQexec(CONN(s), "ROLLBACK"));
}

static char *get_dup(PGresult *r, int row, int col, int *oom) {
  if (PQgetisnull(r, row, col)) return NULL;
  char *d = strdup(PQgetvalue(r, row, col));
  if (!d) *oom = 1;
  return d;
}

static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message; /* NOTICEs of CREATE ... IF NOT EXISTS, stop words in queries */
}

/* Unqualified names are the store's tables (store_share.c's statements are
 * written once for both backends). A session setting: set again after a
 * reconnection. */
static int set_search_path(lode_store *s, char *err, size_t errlen) {
  PGresult *r = PQexec(CONN(s), "SELECT pg_catalog.set_config('search_path', 'lode_store', false)");
  int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok) pgerr(s, err, errlen, "setting the search path", r);
  PQclear(r);
  return ok ? 0 : -1;
}

/* Opens the connection again if it was lost, trying for up to
 * LODE_STORE_BUSY_MS (naps of 50 ms doubling to 1 s). */
static int ensure_conn(lode_store *s, char *err, size_t errlen) {
  if (PQstatus(CONN(s)) == CONNECTION_OK) return 0;
  int64_t give_up = lode_mono_ns() / 1000000 + LODE_STORE_BUSY_MS;
  double nap = 0.05;
  for (;;) {
    PQreset(CONN(s));
    if (PQstatus(CONN(s)) == CONNECTION_OK) return set_search_path(s, err, errlen);
    if (lode_mono_ns() / 1000000 >= give_up)
      return pgerr(s, err, errlen, "the connection was lost and could not be opened again",
                   NULL);
    lode_sleep_s(nap);
    nap = nap < 0.5 ? nap * 2 : 1.0;
  }
}

/* Runs `call` on a live connection, once more if it failed because the
 * connection went meanwhile. */
#define ON_LIVE_CONNECTION(call)                                       \
  do {                                                                 \
    for (int attempt_ = 0;; attempt_++) {                              \
      if (ensure_conn(s, err, errlen) != 0) return -1;                 \
      int rc_ = (call);                                                \
      if (rc_ == 0 || attempt_ || PQstatus(CONN(s)) == CONNECTION_OK) \
        return rc_;                                                    \
    }                                                                  \
  } while (0)

/* meta.<key> (NULL if absent; malloc'd) */
static int meta_get(lode_store *s, const char *key, char **out, char *err, size_t errlen) {
  const char *v[1] = {key};
  int oom = 0;
  *out = NULL;
  PGresult *r = run(s, "SELECT value FROM lode_store.meta WHERE key = $1", 1, v,
                    PGRES_TUPLES_OK, 0, "reading meta", err, errlen);
  if (!r) return -1;
  if (PQntuples(r) > 0) *out = get_dup(r, 0, 0, &oom);
  PQclear(r);
  if (oom) lode__store_seterr(err, errlen, "store %s: out of memory", s->path);
  return oom ? -1 : 0;
}

/* Records meta.<key> = value unless it is set; *now is what is recorded. */
static int meta_claim(lode_store *s, const char *key, const char *value, char **now,
                      char *err, size_t errlen) {
  const char *v[2] = {key, value};
  PGresult *r = run(s,
                    "INSERT INTO lode_store.meta(key, value) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    2, v, PGRES_COMMAND_OK, 0, "writing meta", err, errlen);
  if (!r) return -1;
  PQclear(r);
  return meta_get(s, key, now, err, errlen);
}

static int bump_generation(lode_store *s, char *err, size_t errlen) {
  return cmd(s,
             "UPDATE lode_store.meta SET value = (value::bigint + 1)::text"
             " WHERE key = 'generation'",
             "bumping the generation", err, errlen);
}

/* ---- open ------------------------------------------------------------------------ */
static int create_schema(lode_store *s, char *err, size_t errlen) {
  PGresult *r = run(s, "SELECT to_regclass('lode_store.chunks') IS NOT NULL", 0, NULL,
                    PGRES_TUPLES_OK, 0, "checking the schema", err, errlen);
  if (!r) return -1;
  int have = PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (have) return 0;
  char lock[96];
  snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%d, %d)", LOCK_KEY1, LOCK_KEY2);
  if (!(r = run(s, lock, 0, NULL, PGRES_TUPLES_OK, 0, "locking the schema", err, errlen)))
    return -1;
  PQclear(r);
  return cmd(s, SCHEMA, "creating the schema lode_store", err, errlen);
}

int lode__store_pg_open(lode_store *s, const char *url, const char *embedder, char *err,
                        size_t errlen) {
  char *schema = NULL, *emb = NULL, *dims = NULL;
  int rc = -1;
  s->ops = &lode__store_pg_ops;
  /* an unreachable host fails in 10 s rather than the system's TCP timeout,
   * unless the URL or PGCONNECT_TIMEOUT says otherwise (keywords before
   * dbname are overridden by the URL's own) */
  const char *keys[] = {"connect_timeout", "dbname", NULL};
  const char *vals[] = {getenv("PGCONNECT_TIMEOUT") ? getenv("PGCONNECT_TIMEOUT") : "10", url,
                        NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  s->pg = c;
  if (!c) {
    lode__store_seterr(err, errlen, "store %s: cannot connect: out of memory", s->path);
    return -1;
  }
  if (PQstatus(c) != CONNECTION_OK) return pgerr(s, err, errlen, "cannot connect", NULL);
  PQsetNoticeProcessor(c, quiet, NULL);
  if (set_search_path(s, err, errlen) != 0) goto done;
  if (cmd(s, "BEGIN", "open", err, errlen) != 0) goto done;
  if (create_schema(s, err, errlen) != 0) goto done;
  if (meta_get(s, "schema", &schema, err, errlen) != 0) goto done;
  if (!schema || atoi(schema) != SCHEMA_VERSION) {
    lode__store_seterr(err, errlen,
                       "store %s: schema lode_store has version %s, this lode reads version "
                       "%d; use a newer lode or another database",
                       s->path, schema ? schema : "(none)", SCHEMA_VERSION);
    goto done;
  }
  if (embedder && *embedder) {
    if (meta_claim(s, "embedder", embedder, &emb, err, errlen) != 0) goto done;
    if (emb && strcmp(emb, embedder) != 0) {
      lode__store_seterr(err, errlen,
                         "store %s holds vectors of embedder '%s', not '%s'; open it with "
                         "the same embedder or use another store",
                         s->path, emb, embedder);
      goto done;
    }
  } else if (meta_get(s, "embedder", &emb, err, errlen) != 0) {
    goto done;
  }
  if (meta_get(s, "dims", &dims, err, errlen) != 0) goto done;
  if (cmd(s, "COMMIT", "open", err, errlen) != 0) goto done;
  s->embedder = emb;
  emb = NULL;
  s->dims = dims ? strtoll(dims, NULL, 10) : 0;
  rc = 0;
done:
  if (rc != 0) rollback(s);
  free(schema);
  free(emb);
  free(dims);
  return rc;
}

static void pg_close(lode_store *s) {
  PQfinish(CONN(s));
  s->pg = NULL;
}

/* ---- documents ------------------------------------------------------------------ */
static int pg_has_once(lode_store *s, const char *path, const char *hash, int *found, char *err,
                  size_t errlen) {
  const char *v[2] = {path, hash};
  PGresult *r = run(s,
                    "SELECT 1 FROM lode_store.documents WHERE path = $1"
                    " AND hash IS NOT DISTINCT FROM $2",
                    2, v, PGRES_TUPLES_OK, 0, "has", err, errlen);
  if (!r) return -1;
  *found = PQntuples(r) > 0;
  PQclear(r);
  return 0;
}

static int pg_get_once(lode_store *s, const char *path, lode_store_record *rec, int *found,
                  char *err, size_t errlen) {
  const char *v[1] = {path};
  int oom = 0;
  PGresult *r = run(s,
                    "SELECT path, hash, metadata, title, mime, bytes,"
                    " (extract(epoch FROM updated_at) * 1000)::bigint,"
                    " (SELECT count(*) FROM lode_store.chunks"
                    "  WHERE doc_id = coalesce(d.shared_from, d.id))"
                    " FROM lode_store.documents d WHERE path = $1",
                    1, v, PGRES_TUPLES_OK, 0, "get", err, errlen);
  if (!r) return -1;
  if (PQntuples(r) > 0) {
    rec->path = get_dup(r, 0, 0, &oom);
    rec->hash = get_dup(r, 0, 1, &oom);
    rec->metadata = get_dup(r, 0, 2, &oom);
    rec->title = get_dup(r, 0, 3, &oom);
    rec->mime = get_dup(r, 0, 4, &oom);
    rec->bytes = PQgetisnull(r, 0, 5) ? -1 : strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    rec->updated_at = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
    rec->chunks = strtoll(PQgetvalue(r, 0, 7), NULL, 10);
    *found = 1;
  }
  PQclear(r);
  if (oom) {
    lode_store_record_free(rec);
    *found = 0;
    lode__store_seterr(err, errlen, "store %s: get '%s': out of memory", s->path, path);
    return -1;
  }
  return 0;
}

/* COPY's binary format: big-endian integers, text as its bytes, float4[] as
 * (ndim 1, no nulls, element type 700, length, lower bound 1, then each
 * element's length and bits). Binary spares printing and parsing 384
 * floats per chunk as text. */
static int put_be(lode_buf *b, uint64_t v, int bytes) {
  uint8_t x[8];
  for (int i = 0; i < bytes; i++) x[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
  return lode_buf_append(b, x, (size_t)bytes);
}

static int put_field(lode_buf *b, const void *p, size_t n) {
  return put_be(b, (uint32_t)n, 4) || lode_buf_append(b, p, n);
}

/* One row: doc_id, ordinal, text, start, end, headers, embedding. */
static int copy_row(lode_buf *b, int64_t doc_id, size_t i, const lode_store_chunk *c,
                    const float *vec, int64_t dims) {
  if (put_be(b, 7, 2) || put_be(b, 8, 4) || put_be(b, (uint64_t)doc_id, 8) ||
      put_be(b, 4, 4) || put_be(b, (uint32_t)(i + 1), 4) ||
      put_field(b, c->text ? c->text : "", c->text_len) || put_be(b, 8, 4) ||
      put_be(b, (uint64_t)c->start, 8) || put_be(b, 8, 4) || put_be(b, (uint64_t)c->end, 8))
    return -1;
  if (c->headers ? put_field(b, c->headers, strlen(c->headers)) : put_be(b, 0xffffffffu, 4))
    return -1;
  if (!vec) return put_be(b, 0xffffffffu, 4);
  if (put_be(b, (uint32_t)(20 + dims * 8), 4) || put_be(b, 1, 4) || put_be(b, 0, 4) ||
      put_be(b, 700, 4) || put_be(b, (uint32_t)dims, 4) || put_be(b, 1, 4))
    return -1;
  for (int64_t j = 0; j < dims; j++) {
    uint32_t bits;
    memcpy(&bits, &vec[j], 4);
    if (put_be(b, 4, 4) || put_be(b, bits, 4)) return -1;
  }
  return 0;
}

static int put_chunks(lode_store *s, int64_t doc_id, const lode_store_chunk *chunks, size_t n,
                      const float *vectors, int64_t dims, const char *path, char *err,
                      size_t errlen) {
  PGconn *c = CONN(s);
  lode_buf b;
  lode_buf_init(&b, 0);
  int rc = -1;
  for (size_t i = 0; i < n; i++) {
    if (chunks[i].text && memchr(chunks[i].text, 0, chunks[i].text_len)) {
      lode__store_seterr(err, errlen,
                         "store %s: put '%s': chunk %zu holds a NUL byte, which PostgreSQL "
                         "text cannot store",
                         s->path, path, i + 1);
      return -1;
    }
  }
  PGresult *r = run(s,
                    "COPY lode_store.chunks(doc_id, ordinal, text, start_byte, end_byte,"
                    " headers, embedding) FROM STDIN (FORMAT binary)",
                    0, NULL, PGRES_COPY_IN, 0, "put chunks", err, errlen);
  if (!r) return -1;
  PQclear(r);
  const char *fail = NULL;
  static const char header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
  if (lode_buf_append(&b, header, sizeof header)) fail = "out of memory";
  for (size_t i = 0; i < n && !fail; i++) {
    if (copy_row(&b, doc_id, i, &chunks[i], vectors ? vectors + i * (size_t)dims : NULL,
                 dims) != 0 ||
        (i + 1 == n && put_be(&b, 0xffff, 2) != 0)) /* the trailer */
      fail = "out of memory";
    else if ((b.len > (1 << 20) || i + 1 == n) &&
             PQputCopyData(c, (const char *)b.p, (int)b.len) != 1)
      fail = "sending chunks failed";
    else if (b.len > (1 << 20) || i + 1 == n)
      lode_buf_reset(&b);
  }
  if (PQputCopyEnd(c, fail) != 1) fail = fail ? fail : "ending the copy failed";
  r = PQgetResult(c);
  if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
    pgerr(s, err, errlen, "put chunks", r);
  } else if (!fail) {
    rc = 0;
  }
  if (fail && rc != 0 && !strstr(err, fail))
    lode__store_seterr(err, errlen, "store %s: put '%s': %s", s->path, path, fail);
  PQclear(r);
  while ((r = PQgetResult(c))) PQclear(r);
  lode_buf_free(&b);
  return rc;
}

static int check_dims(lode_store *s, const char *path, int64_t dims, char *err,
                      size_t errlen) {
  char buf[32], *now = NULL;
  snprintf(buf, sizeof buf, "%lld", (long long)dims);
  if (meta_claim(s, "dims", buf, &now, err, errlen) != 0) return -1;
  int64_t have = now ? strtoll(now, NULL, 10) : 0;
  free(now);
  if (have != dims) {
    lode__store_seterr(err, errlen,
                       "store %s: put '%s': vectors have %lld dims, the store holds %lld",
                       s->path, path, (long long)dims, (long long)have);
    return -1;
  }
  s->dims = dims;
  return 0;
}

/* lode__store_ops.scalar: $1, $2 bigint, $3 text. */
static int pg_scalar(lode_store *s, const char *sql, int64_t a, int64_t b, const char *t,
                     int64_t *out, char *err, size_t errlen) {
  char as[32], bs[32];
  snprintf(as, sizeof as, "%lld", (long long)a);
  snprintf(bs, sizeof bs, "%lld", (long long)b);
  const char *v[3] = {as, bs, t};
  static const Oid types[3] = {20, 20, 25}; /* int8, int8, text */
  PGresult *r = PQexecParams(CONN(s), sql, 3, types, v, NULL, NULL, 0);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    pgerr(s, err, errlen, "sharing content", r);
    PQclear(r);
    return -1;
  }
  if (out)
    *out = st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)
               ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
               : 0;
  PQclear(r);
  return 0;
}

/* Locks `path`, then reads what is stored under it (id 0 if nothing; its
 * hash malloc'd), then locks that hash and `hash` in key order (one
 * statement: the sort feeds the locks in order). Three round trips: a read
 * must be a statement of its own after the lock, as a statement's snapshot
 * is taken before it waits. */
static int lock_and_read(lode_store *s, const char *path, const char *hash, int64_t *id,
                         int *holds, char **old_hash, char *err, size_t errlen) {
  int oom = 0;
  char cls[16];
  *id = 0;
  *holds = 0;
  *old_hash = NULL;
  snprintf(cls, sizeof cls, "%d", LOCK_PATH);
  const char *pv[2] = {path, cls};
  PGresult *r = run(s, "SELECT pg_advisory_xact_lock($2::int, hashtext($1))", 2, pv,
                    PGRES_TUPLES_OK, 0, "locking", err, errlen);
  if (!r) return -1;
  PQclear(r);
  if (!(r = run(s, "SELECT id, shared_from IS NULL, hash FROM documents WHERE path = $1", 1, pv,
                PGRES_TUPLES_OK, 0, "reading the document", err, errlen)))
    return -1;
  if (PQntuples(r) > 0) {
    *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *holds = PQgetvalue(r, 0, 1)[0] == 't';
    *old_hash = get_dup(r, 0, 2, &oom);
  }
  PQclear(r);
  if (oom) {
    lode__store_seterr(err, errlen, "store %s: out of memory", s->path);
    return -1;
  }
  if ((!*old_hash || !**old_hash) && (!hash || !*hash)) return 0;
  snprintf(cls, sizeof cls, "%d", LOCK_HASH);
  const char *hv[3] = {*old_hash, hash, cls};
  if (!(r = run(s,
                "SELECT pg_advisory_xact_lock($3::int, k) FROM (SELECT DISTINCT hashtext(h) AS k"
                " FROM unnest(ARRAY[$1, $2]::text[]) h WHERE h <> '' ORDER BY k) x",
                3, hv, PGRES_TUPLES_OK, 0, "locking", err, errlen)))
    return -1;
  PQclear(r);
  return 0;
}

static int pg_put_once(lode_store *s, const lode_store_doc *doc, const lode_store_chunk *chunks,
                       size_t n_chunks, const float *vectors, int64_t dims, char *err,
                       size_t errlen) {
  char bytes[32], *old_hash = NULL;
  snprintf(bytes, sizeof bytes, "%lld", (long long)doc->bytes);
  const char *v[6] = {doc->path, doc->hash,  doc->metadata,
                      doc->title, doc->mime, doc->bytes >= 0 ? bytes : NULL};
  PGresult *r = NULL;
  int64_t doc_id = 0, holder = 0;
  int was_holder = 0;
  if (cmd(s, "BEGIN", "put", err, errlen) != 0) return -1;
  if (lock_and_read(s, doc->path, doc->hash, &doc_id, &was_holder, &old_hash, err, errlen))
    goto fail;
  int64_t had_id = doc_id;
  if (vectors && check_dims(s, doc->path, dims, err, errlen) != 0) goto fail;
  r = run(s,
          "INSERT INTO lode_store.documents(path, hash, metadata, title, mime, bytes,"
          " updated_at) VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (path) DO UPDATE"
          " SET hash = EXCLUDED.hash, metadata = EXCLUDED.metadata, title = EXCLUDED.title,"
          " mime = EXCLUDED.mime, bytes = EXCLUDED.bytes, updated_at = EXCLUDED.updated_at"
          " RETURNING id",
          6, v, PGRES_TUPLES_OK, 0, "put", err, errlen);
  if (!r) goto fail;
  doc_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  if (lode__store_share_put(s, doc_id, was_holder, old_hash, doc->hash, &holder, err, errlen))
    goto fail;
  /* a new document has no chunks to drop and shares nothing yet */
  int was_new = !had_id;
  if ((!was_new && pg_scalar(s, "DELETE FROM chunks WHERE doc_id = $1", doc_id, 0, NULL, NULL,
                             err, errlen)) ||
      ((!was_new || holder) &&
       pg_scalar(s, "UPDATE documents SET shared_from = nullif($2, 0) WHERE id = $1", doc_id,
                 holder, NULL, NULL, err, errlen)))
    goto fail;
  if (!holder && n_chunks &&
      put_chunks(s, doc_id, chunks, n_chunks, vectors, dims, doc->path, err, errlen) != 0)
    goto fail;
  if (bump_generation(s, err, errlen) != 0) goto fail;
  if (cmd(s, "COMMIT", "put", err, errlen) != 0) goto fail;
  free(old_hash);
  return 0;
fail:
  free(old_hash);
  rollback(s);
  return -1;
}

static int pg_del_once(lode_store *s, const char *path, int *removed, char *err,
                       size_t errlen) {
  int64_t id = 0;
  int holds = 0;
  char *old_hash = NULL;
  *removed = 0;
  if (cmd(s, "BEGIN", "delete", err, errlen) != 0) return -1;
  if (lock_and_read(s, path, NULL, &id, &holds, &old_hash, err, errlen) != 0) goto fail;
  if (id) {
    if (lode__store_share_delete(s, id, holds, err, errlen) != 0 ||
        pg_scalar(s, "DELETE FROM documents WHERE id = $1", id, 0, NULL, NULL, err, errlen) ||
        bump_generation(s, err, errlen) != 0)
      goto fail;
    *removed = 1;
  }
  if (cmd(s, "COMMIT", "delete", err, errlen) != 0) goto fail;
  free(old_hash);
  return 0;
fail:
  free(old_hash);
  rollback(s);
  *removed = 0;
  return -1;
}

static int pg_paths_once(lode_store *s, int (*fn)(void *ud, const char *path), void *ud, char *err,
                    size_t errlen) {
  PGresult *r = run(s, "SELECT path FROM lode_store.documents ORDER BY path COLLATE \"C\"", 0,
                    NULL, PGRES_TUPLES_OK, 0, "paths", err, errlen);
  if (!r) return -1;
  for (int i = 0; i < PQntuples(r); i++)
    if (fn(ud, PQgetvalue(r, i, 0))) break;
  PQclear(r);
  return 0;
}

static int pg_count_once(lode_store *s, int64_t *docs, int64_t *chunks, char *err, size_t errlen) {
  PGresult *r = run(s,
                    "SELECT (SELECT count(*) FROM lode_store.documents),"
                    " (SELECT count(*) FROM lode_store.chunks)",
                    0, NULL, PGRES_TUPLES_OK, 0, "count", err, errlen);
  if (!r) return -1;
  *docs = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  *chunks = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
  PQclear(r);
  return 0;
}

static int pg_has(lode_store *s, const char *path, const char *hash, int *found, char *err,
                  size_t errlen) {
  ON_LIVE_CONNECTION(pg_has_once(s, path, hash, found, err, errlen));
}

static int pg_get(lode_store *s, const char *path, lode_store_record *rec, int *found,
                  char *err, size_t errlen) {
  ON_LIVE_CONNECTION(pg_get_once(s, path, rec, found, err, errlen));
}

static int pg_put(lode_store *s, const lode_store_doc *doc, const lode_store_chunk *chunks,
                  size_t n_chunks, const float *vectors, int64_t dims, char *err,
                  size_t errlen) {
  ON_LIVE_CONNECTION(pg_put_once(s, doc, chunks, n_chunks, vectors, dims, err, errlen));
}

static int pg_del(lode_store *s, const char *path, int *removed, char *err, size_t errlen) {
  ON_LIVE_CONNECTION(pg_del_once(s, path, removed, err, errlen));
}

static int pg_paths(lode_store *s, int (*fn)(void *ud, const char *path), void *ud, char *err,
                    size_t errlen) {
  ON_LIVE_CONNECTION(pg_paths_once(s, fn, ud, err, errlen));
}

static int pg_count(lode_store *s, int64_t *docs, int64_t *chunks, char *err, size_t errlen) {
  ON_LIVE_CONNECTION(pg_count_once(s, docs, chunks, err, errlen));
}

/* ---- reads for searches ----------------------------------------------------------- */
static int pg_read_begin_once(lode_store *s, int64_t *gen, char *err, size_t errlen) {
  if (cmd(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "search", err, errlen) != 0)
    return -1;
  PGresult *r = run(s,
                    "SELECT (SELECT value FROM lode_store.meta WHERE key = 'generation'),"
                    " (SELECT value FROM lode_store.meta WHERE key = 'dims')",
                    0, NULL, PGRES_TUPLES_OK, 0, "search", err, errlen);
  if (!r) {
    rollback(s);
    return -1;
  }
  *gen = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  if (!PQgetisnull(r, 0, 1)) s->dims = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
  PQclear(r);
  return 0;
}

static int pg_read_begin(lode_store *s, int64_t *gen, char *err, size_t errlen) {
  ON_LIVE_CONNECTION(pg_read_begin_once(s, gen, err, errlen));
}

static void pg_read_end(lode_store *s) {
  PGTransactionStatusType t = PQtransactionStatus(CONN(s));
  if (t == PQTRANS_INTRANS) PQclear(PQexec(CONN(s), "COMMIT"));
  else if (t != PQTRANS_IDLE) rollback(s);
}

static int64_t be64(const char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | (uint8_t)p[i];
  return (int64_t)v;
}

static uint32_t be32(const char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return ntohl(v);
}

/* A binary float4[] of exactly `dims` non-null elements into row; -1 if it
 * is anything else (only a foreign writer could store that). */
static int read_vector(const char *p, int len, int64_t dims, float *row) {
  if (len < 20 || be32(p) != 1 || be32(p + 4) != 0 || be32(p + 8) != 700 ||
      (int64_t)be32(p + 12) != dims || (int64_t)len != 20 + dims * 8)
    return -1;
  p += 20;
  for (int64_t j = 0; j < dims; j++, p += 8) {
    if (be32(p) != 4) return -1;
    uint32_t bits = be32(p + 4);
    memcpy(&row[j], &bits, 4);
  }
  return 0;
}

static int pg_load(lode_store *s, lode__store_cache *c, char *err, size_t errlen) {
  PGresult *r = run(s,
                    "SELECT id, path, mime, hash, shared_from IS NULL FROM lode_store.documents"
                    " ORDER BY id",
                    0, NULL, PGRES_TUPLES_OK, 0, "loading documents", err, errlen);
  if (!r) return -1;
  for (int i = 0; i < PQntuples(r); i++) {
    if (lode__store_cache_add_doc(c, strtoll(PQgetvalue(r, i, 0), NULL, 10),
                                  PQgetvalue(r, i, 1),
                                  PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2),
                                  PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3),
                                  PQgetvalue(r, i, 4)[0] == 't') != 0) {
      PQclear(r);
      lode__store_seterr(err, errlen, "store %s: out of memory loading documents", s->path);
      return -1;
    }
  }
  PQclear(r);
  if (c->dims <= 0) return 0;
  char dims[32];
  snprintf(dims, sizeof dims, "%lld", (long long)c->dims);
  const char *v[1] = {dims};
  if (!(r = run(s,
                "SELECT count(*) FROM lode_store.chunks WHERE cardinality(embedding) = $1",
                1, v, PGRES_TUPLES_OK, 0, "loading vectors", err, errlen)))
    return -1;
  int64_t count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  if (lode__store_cache_reserve(c, count) != 0) {
    lode__store_seterr(err, errlen, "store %s: out of memory loading vectors", s->path);
    return -1;
  }
  /* a cursor, so neither side holds every vector twice over */
  if (!(r = run(s,
                "DECLARE lode_vectors NO SCROLL CURSOR FOR SELECT id, doc_id, embedding"
                " FROM lode_store.chunks WHERE cardinality(embedding) = $1 ORDER BY id",
                1, v, PGRES_COMMAND_OK, 0, "loading vectors", err, errlen)))
    return -1;
  PQclear(r);
  char fetch[64];
  snprintf(fetch, sizeof fetch, "FETCH %d FROM lode_vectors", FETCH_ROWS);
  for (;;) {
    if (!(r = run(s, fetch, 0, NULL, PGRES_TUPLES_OK, 1, "loading vectors", err, errlen)))
      return -1;
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
      if (PQgetisnull(r, i, 2) || PQgetlength(r, i, 0) != 8 || PQgetlength(r, i, 1) != 8)
        continue;
      float *row = lode__store_cache_add_vec(c, be64(PQgetvalue(r, i, 0)),
                                             be64(PQgetvalue(r, i, 1)));
      if (row && read_vector(PQgetvalue(r, i, 2), PQgetlength(r, i, 2), c->dims, row) != 0)
        c->n--; /* not a plain vector: leave it out */
    }
    PQclear(r);
    if (rows < FETCH_ROWS) break;
  }
  return cmd(s, "CLOSE lode_vectors", "loading vectors", err, errlen);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int pg_fetch(lode_store *s, lode_store_hit *hits, size_t n, char *err, size_t errlen) {
  lode_buf b;
  lode_buf_init(&b, 0);
  int rc = -1, oom = 0;
  PGresult *r = NULL;
  /* (chunk id, index) pairs sorted by id, to place each row */
  int64_t *ix = malloc(2 * n * sizeof *ix);
  if (!ix) goto nomem;
  for (size_t i = 0; i < n; i++) {
    ix[2 * i] = hits[i].chunk_id;
    ix[2 * i + 1] = (int64_t)i;
  }
  qsort(ix, n, 2 * sizeof *ix, cmp_i64);
  if (lode_buf_putc(&b, '{')) goto nomem;
  for (size_t i = 0; i < n; i++)
    if (lode_buf_printf(&b, i ? ",%lld" : "%lld", (long long)hits[i].chunk_id)) goto nomem;
  if (lode_buf_putc(&b, '}')) goto nomem;
  const char *v[1] = {lode_buf_cstr(&b)};
  if (!(r = run(s,
                "SELECT c.id, c.ordinal, c.text, c.start_byte, c.end_byte, c.headers, d.path"
                " FROM lode_store.chunks c JOIN lode_store.documents d ON d.id = c.doc_id"
                " WHERE c.id = ANY($1::bigint[])",
                1, v, PGRES_TUPLES_OK, 0, "search", err, errlen)))
    goto done;
  for (int row = 0; row < PQntuples(r); row++) {
    int64_t id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
    size_t lo = 0, hi = n;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (ix[2 * mid] < id) lo = mid + 1;
      else hi = mid;
    }
    for (; lo < n && ix[2 * lo] == id; lo++) {
      lode_store_hit *h = &hits[ix[2 * lo + 1]];
      h->ordinal = strtoll(PQgetvalue(r, row, 1), NULL, 10);
      h->text_len = (size_t)PQgetlength(r, row, 2);
      h->text = get_dup(r, row, 2, &oom);
      h->start = strtoll(PQgetvalue(r, row, 3), NULL, 10);
      h->end = strtoll(PQgetvalue(r, row, 4), NULL, 10);
      h->headers = get_dup(r, row, 5, &oom);
      h->path = get_dup(r, row, 6, &oom);
    }
  }
  if (oom) goto nomem;
  for (size_t i = 0; i < n; i++) {
    if (!hits[i].text) {
      lode__store_seterr(err, errlen, "store %s: reading chunk %lld: not found", s->path,
                         (long long)hits[i].chunk_id);
      goto done;
    }
  }
  rc = 0;
  goto done;
nomem:
  lode__store_seterr(err, errlen, "store %s: search: out of memory", s->path);
done:
  PQclear(r);
  free(ix);
  lode_buf_free(&b);
  return rc;
}

/* PostgreSQL's own rankings (ts_rank, ts_rank_cd) weigh every word alike:
 * no inverse document frequency, so a chunk that repeats "port" and "module"
 * outranks the one chunk naming the rare word the question is about. So
 * each term (in the 'english' configuration; a term holds only letters and
 * digits, so it cannot be a tsquery operator) is weighed by BM25's idf,
 * ln(1 + (N - df + 0.5) / (df + 0.5)), from its chunk count through the GIN
 * index; a chunk scores the idf of the terms it holds plus a tenth of its
 * best ts_rank_cd (term frequency and proximity). */
static int pg_keyword(lode_store *s, const char *const *terms, size_t n_terms, int64_t limit,
                      lode__store_kw **out, size_t *n, char *err, size_t errlen) {
  lode_buf b;
  lode_buf_init(&b, 0);
  char lim[32];
  snprintf(lim, sizeof lim, "%lld", (long long)limit);
  *out = NULL;
  *n = 0;
  if (lode_buf_putc(&b, '{')) goto nomem;
  for (size_t i = 0; i < n_terms; i++)
    if (lode_buf_printf(&b, i ? ",\"%s\"" : "\"%s\"", terms[i])) goto nomem;
  if (lode_buf_putc(&b, '}')) goto nomem;
  const char *v[2] = {lode_buf_cstr(&b), lim};
  PGresult *r = run(
      s,
      "WITH terms AS (SELECT to_tsquery('english', t) AS tq"
      "   FROM (SELECT DISTINCT lower(t) AS t FROM unnest($1::text[]) AS t) u),"
      " n AS (SELECT count(*)::float8 AS n FROM lode_store.chunks),"
      " w AS (SELECT terms.tq, ln(1 + (n.n - d.df + 0.5) / (d.df + 0.5)) AS idf"
      "   FROM terms, n, LATERAL (SELECT count(*)::float8 AS df FROM lode_store.chunks c"
      "   WHERE c.tsv @@ terms.tq) d WHERE numnode(terms.tq) > 0)"
      " SELECT c.id, c.doc_id, sum(w.idf) + 0.1 * max(ts_rank_cd(c.tsv, w.tq)) AS score"
      " FROM lode_store.chunks c JOIN w ON c.tsv @@ w.tq"
      " GROUP BY c.id, c.doc_id ORDER BY score DESC, c.id LIMIT $2",
      2, v, PGRES_TUPLES_OK, 0, "keyword search", err, errlen);
  if (!r) {
    lode_buf_free(&b);
    return -1;
  }
  int rows = PQntuples(r);
  if (rows && !(*out = malloc((size_t)rows * sizeof **out))) {
    PQclear(r);
    goto nomem;
  }
  for (int i = 0; i < rows; i++)
    (*out)[i] = (lode__store_kw){strtoll(PQgetvalue(r, i, 0), NULL, 10),
                                 strtoll(PQgetvalue(r, i, 1), NULL, 10),
                                 strtof(PQgetvalue(r, i, 2), NULL)};
  *n = (size_t)rows;
  PQclear(r);
  lode_buf_free(&b);
  return 0;
nomem:
  lode_buf_free(&b);
  lode__store_seterr(err, errlen, "store %s: keyword search: out of memory", s->path);
  return -1;
}

const lode__store_ops lode__store_pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .has = pg_has,
    .put = pg_put,
    .get = pg_get,
    .del = pg_del,
    .paths = pg_paths,
    .count = pg_count,
    .scalar = pg_scalar,
    .read_begin = pg_read_begin,
    .read_end = pg_read_end,
    .load = pg_load,
    .fetch = pg_fetch,
    .keyword = pg_keyword,
};
