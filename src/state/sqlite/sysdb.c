/* sysdb.c - the system database on SQLite (WAL). See sysdb.h. */
#include "state/sysdb.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/busy.h"
#include "base/codec.h"
#include "base/error.h"
#include "base/util.h"
#include "state/sqlite/sysdb_int.h"

/* Prepared statements, cached per connection: the step path is hot. */
#define STMTS(X)                                                                          \
  X(WF_INSERT,                                                                            \
    "INSERT INTO workflows(id,name,status,parent_id,parent_step,input,pipeline,"           \
    "version,executor_id,recovery_attempts,max_recovery_attempts,trace_id,span_id,"       \
    "parent_span_id,queue,created_at,updated_at,started_at,deadline_ms,priority,dedup_id," \
    "traced,trace_extra)"                                                                 \
    " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING")  \
  X(WF_GET,                                                                               \
    "SELECT id,name,status,parent_id,parent_step,input,output,error,pipeline,version,"    \
    "executor_id,recovery_attempts,max_recovery_attempts,trace_id,span_id,parent_span_id," \
    "queue,created_at,updated_at,started_at,ended_at,deadline_ms,traced,trace_extra"     \
    " FROM workflows WHERE id=?")                                                         \
  X(WF_STATUS, "SELECT status FROM workflows WHERE id=?")                                 \
  X(WF_FINISH,                                                                            \
    "UPDATE workflows SET status=?,output=?,error=?,updated_at=?,ended_at=? "             \
    "WHERE id=? AND status='PENDING'")                                                    \
  X(WF_CLAIM,                                                                             \
    "UPDATE workflows SET executor_id=?,recovery_attempts=recovery_attempts+?,"           \
    "updated_at=? WHERE id=? AND status='PENDING' AND executor_id IS ?")                  \
  X(WF_RESET, "UPDATE workflows SET recovery_attempts=0 WHERE id=?")                      \
  X(STEPS_LOAD,                                                                           \
    "SELECT step_no,name,status,output,error,attempts,child_id,span_id,started_at,"       \
    "ended_at FROM steps WHERE workflow_id=? ORDER BY step_no")                           \
  X(STEP_PUT,                                                                             \
    "INSERT OR REPLACE INTO steps(workflow_id,step_no,name,status,output,error,attempts," \
    "child_id,span_id,started_at,ended_at,span_input,span_recovery)"                      \
    " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)")                                                 \
  X(WF_TRACE_EXTRA, "UPDATE workflows SET trace_extra=? WHERE id=?")                      \
  X(BEGIN, "BEGIN IMMEDIATE")                                                             \
  X(COMMIT, "COMMIT")                                                                     \
  X(ROLLBACK, "ROLLBACK")

enum {
#define X(name, sql) S_##name,
  STMTS(X)
#undef X
  S_COUNT
};

static const char *const stmt_sql[] = {
#define X(name, sql) sql,
    STMTS(X)
#undef X
};

struct lode_sysdb {
  LODE__SYSDB_HEAD;
  sqlite3 *db;
  lode_busy busy;
  int sync_full, relaxed;
  sqlite3_stmt *st[S_COUNT];
  sqlite3_stmt *xst[LODE__X_COUNT]; /* the other backend files' (sysdb_int.h) */
  char *path;
  unsigned faults;    /* SQLITE_FULL / SQLITE_IOERR seen on this connection */
  int wrote_progress; /* this transaction writes a checkpoint or an outcome */
  int outbox_dest;    /* lode_sysdb_outbox_use (trace_store.c) */
};

/* A state database that cannot be written for lack of space (or an I/O
 * error), process-wide: since when (epoch ms, 0: it is fine), which status,
 * and the file. Set by any connection's failed write, cleared by any
 * checkpoint or outcome written (docs/operations.md, "When the state
 * database fails"). */
static _Atomic int64_t fault_since_ms;
static _Atomic int64_t fault_last_ms; /* the latest failed write */
static _Atomic int fault_status;
static char fault_path[1024];
static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;

/* A fault with no failed write for this long is over even if no checkpoint
 * cleared it (an idle process: nothing it tried since has failed); the next
 * failure starts a new episode instead of ending the run at once. */
#define FAULT_STALE_MS 60000

static void fault_set(lode_sysdb *db, int status) {
  db->faults++;
  int64_t now = lode_now_ms();
  pthread_mutex_lock(&fault_mu);
  if (atomic_load(&fault_since_ms) && now - atomic_load(&fault_last_ms) > FAULT_STALE_MS)
    atomic_store(&fault_since_ms, 0);
  atomic_store(&fault_last_ms, now);
  if (!atomic_load(&fault_since_ms)) {
    lode_strlcpy(fault_path, db->path ? db->path : "state database", sizeof fault_path);
    atomic_store(&fault_status, status);
    atomic_store(&fault_since_ms, now);
  }
  pthread_mutex_unlock(&fault_mu);
}

static void progress_written(lode_sysdb *db) {
  db->wrote_progress = 0;
  if (atomic_load(&fault_since_ms)) atomic_store(&fault_since_ms, 0);
}

int64_t lode_sysdb_fault(int *status, char *path, size_t pathlen, int64_t *last_ms) {
  pthread_mutex_lock(&fault_mu);
  int64_t since = atomic_load(&fault_since_ms);
  if (since && lode_now_ms() - atomic_load(&fault_last_ms) > FAULT_STALE_MS) since = 0;
  if (status) *status = atomic_load(&fault_status);
  if (last_ms) *last_ms = since ? atomic_load(&fault_last_ms) : 0;
  if (path) lode_strlcpy(path, fault_path, pathlen);
  pthread_mutex_unlock(&fault_mu);
  return since;
}

unsigned lode__sqlite_faults(lode_sysdb *db) { return db ? db->faults : 0; }

/* What to do about SQLite's primary result code `code`, or "" (docs/operations.md,
 * "When the state database fails"). */
static const char *advice(int code) {
  switch (code & 0xff) {
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    return "; the file is damaged: check it with sqlite3 FILE 'PRAGMA integrity_check' and "
           "see docs/operations.md, \"A damaged state database\"";
  case SQLITE_FULL:
    return "; the disk (or the database's size limit) is full: free space and run again, "
           "nothing recorded is lost";
  case SQLITE_IOERR:
    return "; an I/O error: check the disk, then run again (docs/operations.md)";
  default:
    return "";
  }
}

/* Fills err; returns LODE_EFULL for a full disk (or size limit),
 * LODE_EIO for an I/O error, which also mark the state database faulty
 * (lode_sysdb_fault), else LODE_EDB. */
static int db_err(lode_sysdb *db, int rc, const char *what, char *err, size_t errlen) {
  int code = db && db->db ? sqlite3_extended_errcode(db->db) : rc;
  if (rc && rc != SQLITE_ERROR) code = rc;
  snprintf(err, errlen, "%s: %s (%s)%s", db && db->path ? db->path : "state database", what,
           db && db->db ? sqlite3_errmsg(db->db) : sqlite3_errstr(rc), advice(code));
  int st = (code & 0xff) == SQLITE_FULL    ? LODE_EFULL
           : (code & 0xff) == SQLITE_IOERR ? LODE_EIO
                                           : LODE_EDB;
  if (st != LODE_EDB && db) fault_set(db, st);
  return st;
}

int lode__sysdb_err(lode_sysdb *db, int rc, const char *what, char *err, size_t errlen) {
  return db_err(db, rc, what, err, errlen);
}

sqlite3 *lode__sysdb_conn(lode_sysdb *db) { return db->db; }

int *lode__sysdb_outbox_dest(lode_sysdb *db) { return &db->outbox_dest; }

sqlite3_stmt *lode__sysdb_stmt(lode_sysdb *db, int slot, const char *sql) {
  if (!db->xst[slot] &&
      sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &db->xst[slot], NULL) !=
          SQLITE_OK)
    return NULL;
  return db->xst[slot];
}

static sqlite3_stmt *stmt(lode_sysdb *db, int which) {
  if (!db->st[which] &&
      sqlite3_prepare_v3(db->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                         &db->st[which], NULL) != SQLITE_OK)
    return NULL;
  return db->st[which];
}

/* ---- migrations (the list is in schema.c) -------------------------------- */


/* Refuses a database written by a newer lode: a migration this binary does
 * not know, or a schema version (user_version, lode__n_migrations when lode last
 * migrated it) above ours. Using it would misread or damage what the newer
 * lode wrote (docs/operations.md, "Upgrades"). */
static int check_known(lode_sysdb *db, char *err, size_t errlen) {
  sqlite3_stmt *q = NULL;
  int uv = 0, r;
  if (sqlite3_prepare_v2(db->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
    return db_err(db, 0, "cannot read the schema version", err, errlen);
  if ((r = sqlite3_step(q)) == SQLITE_ROW) uv = sqlite3_column_int(q, 0);
  sqlite3_finalize(q);
  if (r != SQLITE_ROW) return db_err(db, r, "cannot read the schema version", err, errlen);
  char unknown[128] = "";
  if (sqlite3_prepare_v2(db->db, "SELECT name FROM lode_migrations ORDER BY applied_at, name",
                         -1, &q, NULL) != SQLITE_OK)
    return db_err(db, 0, "cannot read lode_migrations", err, errlen);
  while ((r = sqlite3_step(q)) == SQLITE_ROW && !unknown[0]) {
    const char *name = (const char *)sqlite3_column_text(q, 0);
    int known = 0;
    for (int i = 0; i < lode__n_migrations && name; i++)
      known |= !strcmp(name, lode__migrations[i].name);
    if (!known) snprintf(unknown, sizeof unknown, "%.100s", name ? name : "(null)");
  }
  sqlite3_finalize(q);
  if (r != SQLITE_ROW && r != SQLITE_DONE)
    return db_err(db, r, "cannot read lode_migrations", err, errlen);
  if (!unknown[0] && uv <= lode__n_migrations) return LODE_OK;
  snprintf(err, errlen,
           "%s was written by a newer lode (schema version %d%s%s), this lode knows schema "
           "version %d (migrations up to %s): use that newer lode, or another --db; nothing "
           "was changed (docs/operations.md, \"Upgrades\")",
           db->path, uv, unknown[0] ? ", migration " : "", unknown, lode__n_migrations,
           lode__migrations[lode__n_migrations - 1].name);
  return LODE_EUSAGE;
}

/* Applies the migrations this database has not seen, each once, in one
 * IMMEDIATE transaction so two processes opening a new file do not race. */
static int migrate(lode_sysdb *db, char *err, size_t errlen) {
  int rc = LODE_OK;
  char *msg = NULL;
  if (sqlite3_exec(db->db, "BEGIN IMMEDIATE;"
                    "CREATE TABLE IF NOT EXISTS lode_migrations("
                    " name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL);",
                   NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, errlen, "%s: cannot prepare migrations: %s", db->path, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
    return LODE_EDB;
  }
  rc = check_known(db, err, errlen);
  int applied = 0;
  for (int i = 0; i < lode__n_migrations && rc == LODE_OK; i++) {
    sqlite3_stmt *q;
    int src = sqlite3_prepare_v2(db->db, "SELECT 1 FROM lode_migrations WHERE name=?", -1, &q,
                                 NULL);
    sqlite3_bind_text(q, 1, lode__migrations[i].name, -1, SQLITE_STATIC);
    if (src == SQLITE_OK) src = sqlite3_step(q);
    sqlite3_finalize(q);
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
      /* a damaged page must not read as "not applied" (and run core-1 again) */
      rc = db_err(db, src, "cannot read lode_migrations", err, errlen);
      break;
    }
    if (src == SQLITE_ROW) continue;
    char e2[256] = "";
    rc = lode__migrations[i].fn(db->db, e2, sizeof e2);
    if (rc != LODE_OK) {
      snprintf(err, errlen, "%s: migration %s failed: %s%s", db->path, lode__migrations[i].name, e2,
               advice(sqlite3_extended_errcode(db->db)));
      break;
    }
    applied = 1;
    sqlite3_prepare_v2(db->db, "INSERT INTO lode_migrations VALUES(?,?)", -1, &q, NULL);
    sqlite3_bind_text(q, 1, lode__migrations[i].name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, lode_now_ms());
    sqlite3_step(q);
    sqlite3_finalize(q);
  }
  if (rc == LODE_OK && applied) {
    char pv[64];
    snprintf(pv, sizeof pv, "PRAGMA user_version=%d", lode__n_migrations);
    if (sqlite3_exec(db->db, pv, NULL, NULL, NULL) != SQLITE_OK)
      rc = db_err(db, 0, "cannot record the schema version", err, errlen);
  }
  /* usually nothing to apply: every connection opened (one per worker
   * thread) takes the write lock here and commits nothing */
  lode_busy_releasing(&db->busy);
  if (rc == LODE_OK && sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    rc = db_err(db, 0, "cannot commit migrations", err, errlen);
  if (rc != LODE_OK) sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
  lode_busy_released(&db->busy);
  return rc;
}

/* Lock contention between connections (threads, processes): naps of a
 * growing length, woken early by a release in this process (busy.h), up to
 * 30 s in all; the time spent waiting is counted so the benches can report
 * it (lode_sysdb_busy_ms). */
static const int busy_naps_us[] = {50, 100, 200, 500, 1000, 2000, 5000, 10000};
static lode_busy_kind busy_kind = LODE_BUSY_KIND(busy_naps_us, 30000);

int64_t lode_sysdb_busy_ms(void) { return lode_busy_waited_ms(&busy_kind); }

int lode__sqlite_open(const char *path, int sync_full, lode_sysdb **out, char *err,
                    size_t errlen) {
  *out = NULL;
  lode_sysdb *db = calloc(1, sizeof *db);
  if (!db || !(db->path = strdup(path))) {
    free(db);
    snprintf(err, errlen, "out of memory");
    return LODE_ENOMEM;
  }
  db->ops = &lode__sqlite_ops;
  int rc = LODE_OK;
  /* it holds step outputs (document text): 0600 in a 0700 folder */
  if (lode_prepare_private_file(path, 1) != 0) {
    snprintf(err, errlen, "%s: cannot create it or its folder: %s", path, strerror(errno));
    rc = LODE_EIO;
    goto done;
  }
  if (sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                          SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    rc = db_err(db, 0, "cannot open", err, errlen);
    goto done;
  }
  /* --sync full syncs the WAL at every commit: a WAL kept small (SQLite's
   * default 1000-page checkpoint) is reset early and then rewritten in
   * place, so those syncs never also write the file's grown size (the
   * reason PostgreSQL recycles its WAL segments); measured 1.5x more steps/s
   * than a WAL growing to 8000 pages. --sync normal syncs only at
   * checkpoints, so fewer, larger ones suit it. The busy module's WAL hook
   * runs those checkpoints (it replaces SQLite's). */
  if (lode_busy_attach(&db->busy, &busy_kind, db->db, sync_full ? 1000 : 8000) != SQLITE_OK) {
    rc = db_err(db, 0, "cannot set up waiting for locks", err, errlen);
    goto done;
  }
  /* The page cache is SQLite's default 2 MB per connection: big checkpoints
   * (page texts, matrices) only pass through it, and each worker thread has
   * a connection (a 16 MB cache measured ~10 MB more peak RSS in the
   * ingestion bench, no faster). */
  char pragmas[256];
  snprintf(pragmas, sizeof pragmas,
           "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=OFF;"
           "PRAGMA cache_size=-2000;", sync_full ? "FULL" : "NORMAL");
  char *msg = NULL;
  if (sqlite3_exec(db->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
    const char *adv = advice(sqlite3_extended_errcode(db->db));
    snprintf(err, errlen, "%s: %s%s", path, msg ? msg : "?",
             *adv ? adv : " (is it a lode state database?)");
    sqlite3_free(msg);
    rc = LODE_EDB;
    goto done;
  }
  db->sync_full = sync_full;
#ifdef LODE_TEST_HOOKS
  /* test builds: a state database that fills up (docs/operations.md) */
  const char *maxp = getenv("LODE_TEST_MAX_PAGES");
  if (maxp && *maxp) {
    snprintf(pragmas, sizeof pragmas, "PRAGMA max_page_count=%ld", strtol(maxp, NULL, 10));
    sqlite3_exec(db->db, pragmas, NULL, NULL, NULL);
  }
#endif
  rc = migrate(db, err, errlen);
done:
  if (rc != LODE_OK) {
    lode__sqlite_close(db);
    return rc;
  }
  *out = db;
  return LODE_OK;
}

int lode__sqlite_open_readonly(const char *path, lode_sysdb **out, char *err, size_t errlen) {
  *out = NULL;
  lode_sysdb *db = calloc(1, sizeof *db);
  if (!db || !(db->path = strdup(path))) {
    free(db);
    snprintf(err, errlen, "out of memory");
    return LODE_ENOMEM;
  }
  db->ops = &lode__sqlite_ops;
  /* no migration, no pragma that writes: a read-only copy stays as it is */
  if (sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK) {
    int rc = db_err(db, 0, "cannot open", err, errlen);
    lode__sqlite_close(db);
    return rc;
  }
  sqlite3_busy_timeout(db->db, 5000);
  /* a newer lode's database is not read either (it could be misread); a
   * file without lode's tables is left to the caller's own checks */
  sqlite3_stmt *q = NULL;
  int lode_file = sqlite3_prepare_v2(db->db, "SELECT 1 FROM sqlite_master WHERE type='table'"
                                     " AND name='lode_migrations'", -1, &q, NULL) == SQLITE_OK &&
                  sqlite3_step(q) == SQLITE_ROW;
  sqlite3_finalize(q);
  int rc = lode_file ? check_known(db, err, errlen) : LODE_OK;
  if (rc != LODE_OK) {
    lode__sqlite_close(db);
    return rc;
  }
  *out = db;
  return LODE_OK;
}

void lode__sqlite_close(lode_sysdb *db) {
  if (!db) return;
  for (int i = 0; i < S_COUNT; i++) sqlite3_finalize(db->st[i]);
  for (int i = 0; i < LODE__X_COUNT; i++) sqlite3_finalize(db->xst[i]);
  sqlite3_close(db->db);
  free(db->path);
  free(db);
}


unsigned lode__sqlite_data_version(lode_sysdb *db) {
  unsigned v = 0;
  if (sqlite3_file_control(db->db, "main", SQLITE_FCNTL_DATA_VERSION, &v) != SQLITE_OK) return 0;
  return v;
}

void lode__sqlite_relax_sync(lode_sysdb *db, int on) {
  if (!db->sync_full || db->relaxed == on) return;
  sqlite3_exec(db->db, on ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL", NULL, NULL,
               NULL);
  db->relaxed = on;
}
const char *lode__sqlite_path(lode_sysdb *db) { return db->path; }

static int run_simple(lode_sysdb *db, int which, const char *what, char *err, size_t errlen) {
  sqlite3_stmt *s = stmt(db, which);
  if (!s) return db_err(db, 0, what, err, errlen);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) return db_err(db, rc, what, err, errlen);
  return LODE_OK;
}

int lode__sqlite_begin(lode_sysdb *db, char *err, size_t errlen) {
  return run_simple(db, S_BEGIN, "cannot begin a transaction", err, errlen);
}
/* A transaction that wrote nothing, and a rollback, release the write lock
 * without calling the WAL hook: lode_busy_released wakes the waiters then. */
int lode__sqlite_commit(lode_sysdb *db, char *err, size_t errlen) {
  lode_busy_releasing(&db->busy);
  int rc = run_simple(db, S_COMMIT, "cannot commit", err, errlen);
  lode_busy_released(&db->busy);
  if (rc == LODE_OK && db->wrote_progress) progress_written(db);
  return rc;
}
void lode__sqlite_rollback(lode_sysdb *db) {
  char e[64];
  db->wrote_progress = 0;
  if (sqlite3_get_autocommit(db->db)) return;
  lode_busy_releasing(&db->busy);
  run_simple(db, S_ROLLBACK, "rollback", e, sizeof e);
  lode_busy_released(&db->busy);
}

/* ---- binding helpers ---------------------------------------------------- */


static void bind_blob(sqlite3_stmt *s, int i, const void *p, size_t n) {
  if (p) sqlite3_bind_blob64(s, i, p ? p : "", n, SQLITE_STATIC);
  else sqlite3_bind_null(s, i);
}


static uint8_t *col_blob(sqlite3_stmt *s, int i, size_t *n) {
  const void *b = sqlite3_column_blob(s, i);
  *n = (size_t)sqlite3_column_bytes(s, i);
  if (!b) return NULL;
  uint8_t *p = malloc(*n ? *n : 1);
  if (p) memcpy(p, b, *n);
  return p;
}

/* ---- workflows ----------------------------------------------------------- */

/* One insert for both ways a workflow is recorded: started now (PENDING,
 * owned by its executor) or queued (ENQUEUED, no owner yet, not started).
 * Only an existing id is ignored; a taken dedup id is a conflict. */
static int insert_row(lode_sysdb *db, const lode_wf_row *r, int priority, const char *dedup_id,
                      int *existed, char *err, size_t errlen) {
  sqlite3_stmt *s = stmt(db, S_WF_INSERT);
  if (!s) return db_err(db, 0, "prepare", err, errlen);
  int64_t now = lode_now_ms();
  int queued = r->status == LODE_WF_ENQUEUED;
  lode__bind_text(s, 1, r->id);
  lode__bind_text(s, 2, r->name);
  lode__bind_text(s, 3, lode_wf_status_name(r->status));
  lode__bind_text(s, 4, r->parent_id);
  if (r->parent_id) sqlite3_bind_int64(s, 5, r->parent_step);
  else sqlite3_bind_null(s, 5);
  bind_blob(s, 6, r->input, r->input_len);
  lode__bind_text(s, 7, r->pipeline);
  lode__bind_text(s, 8, r->version);
  lode__bind_text(s, 9, queued ? NULL : r->executor_id);
  sqlite3_bind_int(s, 10, r->recovery_attempts);
  sqlite3_bind_int(s, 11, r->max_recovery_attempts);
  lode__bind_text(s, 12, r->trace_id);
  lode__bind_text(s, 13, r->span_id);
  lode__bind_text(s, 14, r->parent_span_id);
  lode__bind_text(s, 15, r->queue);
  sqlite3_bind_int64(s, 16, r->created_at ? r->created_at : now);
  sqlite3_bind_int64(s, 17, now);
  if (queued) sqlite3_bind_null(s, 18);
  else sqlite3_bind_int64(s, 18, r->started_at ? r->started_at : now);
  if (r->deadline_ms) sqlite3_bind_int64(s, 19, r->deadline_ms);
  else sqlite3_bind_null(s, 19);
  sqlite3_bind_int(s, 20, priority);
  lode__bind_text(s, 21, dedup_id);
  if (r->traced) sqlite3_bind_int(s, 22, 1);
  else sqlite3_bind_null(s, 22);
  lode__bind_text(s, 23, r->trace_extra);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (rc == SQLITE_CONSTRAINT) {
    snprintf(err, errlen,
             "cannot enqueue workflow '%s' on queue '%s': dedup id '%s' is already used by a "
             "workflow that is queued or running",
             r->name, r->queue ? r->queue : "?", dedup_id ? dedup_id : "?");
    return LODE_ECONFLICT;
  }
  if (rc != SQLITE_DONE) return db_err(db, rc, "cannot record workflow", err, errlen);
  *existed = sqlite3_changes(db->db) == 0;
  return LODE_OK;
}

int lode__sqlite_wf_insert(lode_sysdb *db, const lode_wf_row *r, int *existed, char *err,
                         size_t errlen) {
  return insert_row(db, r, 0, NULL, existed, err, errlen);
}

int lode__sqlite_wf_get(lode_sysdb *db, const char *id, lode_wf_row *r, char *err,
                      size_t errlen) {
  memset(r, 0, sizeof *r);
  sqlite3_stmt *s = stmt(db, S_WF_GET);
  if (!s) return db_err(db, 0, "prepare", err, errlen);
  lode__bind_text(s, 1, id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(s);
    snprintf(err, errlen, "no workflow with id '%s' in %s", id, db->path);
    return LODE_ENOTFOUND;
  }
  if (rc != SQLITE_ROW) {
    sqlite3_reset(s);
    return db_err(db, rc, "cannot read workflow", err, errlen);
  }
  r->id = lode__col_text(s, 0);
  r->name = lode__col_text(s, 1);
  r->status = lode_wf_status_parse((const char *)sqlite3_column_text(s, 2));
  r->parent_id = lode__col_text(s, 3);
  r->parent_step = sqlite3_column_int64(s, 4);
  r->input = col_blob(s, 5, &r->input_len);
  r->output = col_blob(s, 6, &r->output_len);
  r->error = lode__col_text(s, 7);
  r->pipeline = lode__col_text(s, 8);
  r->version = lode__col_text(s, 9);
  r->executor_id = lode__col_text(s, 10);
  r->recovery_attempts = sqlite3_column_int(s, 11);
  r->max_recovery_attempts = sqlite3_column_int(s, 12);
  r->trace_id = lode__col_text(s, 13);
  r->span_id = lode__col_text(s, 14);
  r->parent_span_id = lode__col_text(s, 15);
  r->queue = lode__col_text(s, 16);
  r->created_at = sqlite3_column_int64(s, 17);
  r->updated_at = sqlite3_column_int64(s, 18);
  r->started_at = sqlite3_column_int64(s, 19);
  r->ended_at = sqlite3_column_int64(s, 20);
  r->deadline_ms = sqlite3_column_int64(s, 21);
  r->traced = sqlite3_column_int(s, 22);
  r->trace_extra = lode__col_text(s, 23);
  sqlite3_reset(s);
  return LODE_OK;
}

int lode__sqlite_wf_status(lode_sysdb *db, const char *id, int *status, char *err,
                         size_t errlen) {
  sqlite3_stmt *s = stmt(db, S_WF_STATUS);
  if (!s) return db_err(db, 0, "prepare", err, errlen);
  lode__bind_text(s, 1, id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) *status = lode_wf_status_parse((const char *)sqlite3_column_text(s, 0));
  sqlite3_reset(s);
  if (rc == SQLITE_DONE) {
    snprintf(err, errlen, "no workflow with id '%s'", id);
    return LODE_ENOTFOUND;
  }
  if (rc != SQLITE_ROW) return db_err(db, rc, "cannot read workflow status", err, errlen);
  return LODE_OK;
}

int lode__sqlite_wf_finish(lode_sysdb *db, const char *id, int status, const uint8_t *out,
                         size_t out_len, const char *error, char *err, size_t errlen) {
  sqlite3_stmt *s = stmt(db, S_WF_FINISH);
  if (!s) return db_err(db, 0, "prepare", err, errlen);
  int64_t now = lode_now_ms();
  lode__bind_text(s, 1, lode_wf_status_name(status));
  bind_blob(s, 2, out, out_len);
  lode__bind_text(s, 3, error);
  sqlite3_bind_int64(s, 4, now);
  sqlite3_bind_int64(s, 5, now);
  lode__bind_text(s, 6, id);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (rc != SQLITE_DONE) return db_err(db, rc, "cannot record workflow outcome", err, errlen);
  db->wrote_progress = 1;
  if (sqlite3_get_autocommit(db->db)) progress_written(db);
  return LODE_OK;
}

int lode__sqlite_wf_set_status(lode_sysdb *db, const char *id, int status, unsigned from_mask,
                             int *changed, char *err, size_t errlen) {
  char sql[512];
  int n = snprintf(sql, sizeof sql, "UPDATE workflows SET status=?, updated_at=? WHERE id=? "
                                    "AND status IN (");
  int first = 1;
  for (int i = 0; i < LODE_WF_NSTATUS; i++)
    if (from_mask & (1u << i)) {
      n += snprintf(sql + n, sizeof sql - (size_t)n, "%s'%s'", first ? "" : ",",
                    lode_wf_status_name(i));
      first = 0;
    }
  snprintf(sql + n, sizeof sql - (size_t)n, ")");
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(db->db, sql, -1, &s, NULL) != SQLITE_OK)
    return db_err(db, 0, "prepare", err, errlen);
  lode__bind_text(s, 1, lode_wf_status_name(status));
  sqlite3_bind_int64(s, 2, lode_now_ms());
  lode__bind_text(s, 3, id);
  int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return db_err(db, rc, "cannot change workflow status", err, errlen);
  if (changed) *changed = sqlite3_changes(db->db) > 0;
  return LODE_OK;
}

int lode__sqlite_wf_claim(lode_sysdb *db, const char *id, const char *expect_executor,
                        const char *executor_id, int bump, int *claimed, char *err,
                        size_t errlen) {
  sqlite3_stmt *s = stmt(db, S_WF_CLAIM);
  if (!s) return db_err(db, 0, "prepare", err, errlen);
  lode__bind_text(s, 1, executor_id);
  sqlite3_bind_int(s, 2, bump ? 1 : 0);
  sqlite3_bind_int64(s, 3, lode_now_ms());
  lode__bind_text(s, 4, id);
  lode__bind_text(s, 5, expect_executor);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (rc != SQLITE_DONE) return db_err(db, rc, "cannot claim workflow", err, errlen);
  *claimed = sqlite3_changes(db->db) > 0;
  return LODE_OK;
}

int lode__sqlite_wf_reset_attempts(lode_sysdb *db, const char *id, char *err, size_t errlen) {
  sqlite3_stmt *s = stmt(db, S_WF_RESET);
  if (!s) return db_err(db, 0, "prepare", err, errlen);
  lode__bind_text(s, 1, id);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) return db_err(db, rc, "cannot reset attempts", err, errlen);
  return LODE_OK;
}

int lode__sqlite_wf_list(lode_sysdb *db, const lode_wf_filter *f,
                       int (*fn)(void *ud, const lode_wf_row *r), void *ud, char *err,
                       size_t errlen) {
  char sql[1024];
  /* PENDING rows (recovery) through their partial index: the order by rowid
   * would otherwise make SQLite scan every row */
  int n = snprintf(sql, sizeof sql, "SELECT id FROM workflows%s WHERE 1",
                   f->status == LODE_WF_PENDING ? " INDEXED BY workflows_pending" : "");
  /* the name inline (our own identifiers): a literal lets SQLite use the
   * partial index of PENDING rows */
  if (f->status >= 0)
    n += snprintf(sql + n, sizeof sql - (size_t)n, " AND status='%s'",
                  lode_wf_status_name(f->status));
  if (f->name) n += snprintf(sql + n, sizeof sql - (size_t)n, " AND name=?2");
  if (f->pipeline) n += snprintf(sql + n, sizeof sql - (size_t)n, " AND pipeline=?3");
  if (f->roots_only) n += snprintf(sql + n, sizeof sql - (size_t)n, " AND parent_id IS NULL");
  if (f->since_ms) n += snprintf(sql + n, sizeof sql - (size_t)n, " AND created_at>=?4");
  if (f->until_ms) n += snprintf(sql + n, sizeof sql - (size_t)n, " AND created_at<=?5");
  /* the order rows were recorded (rowids grow; no index on created_at) */
  n += snprintf(sql + n, sizeof sql - (size_t)n, " ORDER BY rowid %s",
                f->oldest_first ? "ASC" : "DESC");
  if (f->limit > 0) snprintf(sql + n, sizeof sql - (size_t)n, " LIMIT %d", f->limit);
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(db->db, sql, -1, &s, NULL) != SQLITE_OK)
    return db_err(db, 0, "cannot list workflows", err, errlen);
  if (f->name) lode__bind_text(s, 2, f->name);
  if (f->pipeline) lode__bind_text(s, 3, f->pipeline);
  if (f->since_ms) sqlite3_bind_int64(s, 4, f->since_ms);
  if (f->until_ms) sqlite3_bind_int64(s, 5, f->until_ms);
  /* collect ids first: fn may write to the database */
  char **ids = NULL;
  size_t nids = 0, cap = 0;
  int rc, ret = LODE_OK;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (nids == cap) {
      cap = cap ? cap * 2 : 64;
      char **p = realloc(ids, cap * sizeof *ids);
      if (!p) { ret = LODE_ENOMEM; break; }
      ids = p;
    }
    ids[nids++] = lode__col_text(s, 0);
  }
  sqlite3_finalize(s);
  if (ret == LODE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
    ret = db_err(db, rc, "cannot list workflows", err, errlen);
  for (size_t i = 0; i < nids && ret == LODE_OK; i++) {
    lode_wf_row r;
    if (lode__sqlite_wf_get(db, ids[i], &r, err, errlen) != LODE_OK) continue;
    int stop = fn(ud, &r);
    lode_wf_row_clear(&r);
    if (stop) break;
  }
  for (size_t i = 0; i < nids; i++) free(ids[i]);
  free(ids);
  return ret;
}

/* ---- steps --------------------------------------------------------------- */

int lode__sqlite_steps_load(lode_sysdb *db, const char *wf_id, lode_step_row **rows,
                          size_t *n, char *err, size_t errlen) {
  *rows = NULL;
  *n = 0;
  sqlite3_stmt *s = stmt(db, S_STEPS_LOAD);
  if (!s) return db_err(db, 0, "prepare", err, errlen);
  lode__bind_text(s, 1, wf_id);
  size_t cap = 0;
  int rc, ret = LODE_OK;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      lode_step_row *p = realloc(*rows, cap * sizeof **rows);
      if (!p) { ret = LODE_ENOMEM; break; }
      *rows = p;
    }
    lode_step_row *r = &(*rows)[(*n)++];
    memset(r, 0, sizeof *r);
    r->step_no = sqlite3_column_int64(s, 0);
    r->name = lode__col_text(s, 1);
    r->status = lode_wf_status_parse((const char *)sqlite3_column_text(s, 2));
    r->output = col_blob(s, 3, &r->output_len);
    r->error = lode__col_text(s, 4);
    r->attempts = sqlite3_column_int(s, 5);
    r->child_id = lode__col_text(s, 6);
    r->span_id = lode__col_text(s, 7);
    r->started_at = sqlite3_column_int64(s, 8);
    r->ended_at = sqlite3_column_int64(s, 9);
  }
  sqlite3_reset(s);
  if (ret == LODE_OK && rc != SQLITE_DONE)
    ret = db_err(db, rc, "cannot load steps", err, errlen);
  if (ret != LODE_OK) {
    lode_step_rows_free(*rows, *n);
    *rows = NULL;
    *n = 0;
    if (ret == LODE_ENOMEM) snprintf(err, errlen, "out of memory loading steps of %s", wf_id);
  }
  return ret;
}

int lode__sqlite_step_put(lode_sysdb *db, const char *wf_id, const lode_step_row *r, char *err,
                        size_t errlen) {
  sqlite3_stmt *s = stmt(db, S_STEP_PUT);
  if (!s) return db_err(db, 0, "prepare", err, errlen);
  lode__bind_text(s, 1, wf_id);
  sqlite3_bind_int64(s, 2, r->step_no);
  lode__bind_text(s, 3, r->name);
  lode__bind_text(s, 4, lode_wf_status_name(r->status));
  bind_blob(s, 5, r->output, r->output_len);
  lode__bind_text(s, 6, r->error);
  sqlite3_bind_int(s, 7, r->attempts);
  lode__bind_text(s, 8, r->child_id);
  lode__bind_text(s, 9, r->span_id);
  sqlite3_bind_int64(s, 10, r->started_at);
  sqlite3_bind_int64(s, 11, r->ended_at);
  lode__bind_text(s, 12, r->span_input);
  if (r->span_input) sqlite3_bind_int(s, 13, r->span_recovery);
  else sqlite3_bind_null(s, 13);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (rc != SQLITE_DONE) return db_err(db, rc, "cannot checkpoint step", err, errlen);
  db->wrote_progress = 1;
  if (sqlite3_get_autocommit(db->db)) progress_written(db);
  return LODE_OK;
}

int lode__sqlite_trace_reopen(lode_sysdb *db, const char *id, char *err, size_t errlen) {
  static const char *const sql[] = {
      "UPDATE workflows SET traced=1 WHERE id=?1 AND traced IS NOT 1",
      "INSERT OR IGNORE INTO trace_open(workflow_id, steps_done)"
      " SELECT ?1, coalesce(max(step_no), 0) FROM steps WHERE workflow_id=?1"};
  for (size_t i = 0; i < sizeof sql / sizeof *sql; i++) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db->db, sql[i], -1, &s, NULL) != SQLITE_OK)
      return db_err(db, 0, "prepare", err, errlen);
    lode__bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
      return db_err(db, rc, "cannot reopen the workflow's trace", err, errlen);
  }
  return LODE_OK;
}

int lode__sqlite_wf_set_trace_extra(lode_sysdb *db, const char *id, const char *extra, char *err,
                                  size_t errlen) {
  sqlite3_stmt *s = stmt(db, S_WF_TRACE_EXTRA);
  if (!s) return db_err(db, 0, "prepare", err, errlen);
  lode__bind_text(s, 1, extra);
  lode__bind_text(s, 2, id);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (rc != SQLITE_DONE) return db_err(db, rc, "cannot record trace attributes", err, errlen);
  return LODE_OK;
}

/* ---- executors ----------------------------------------------------------- */

int lode__sqlite_executor_register(lode_sysdb *db, const char *id, char *err, size_t errlen) {
  char host[256], start[64] = "";
  lode_hostname(host, sizeof host);
  lode_proc_start((long)getpid(), start, sizeof start);
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(db->db, "INSERT OR REPLACE INTO executors VALUES(?,?,?,?,?)", -1, &s,
                         NULL) != SQLITE_OK)
    return db_err(db, 0, "prepare", err, errlen);
  lode__bind_text(s, 1, id);
  sqlite3_bind_int64(s, 2, (sqlite3_int64)getpid());
  lode__bind_text(s, 3, host);
  lode__bind_text(s, 4, start);
  sqlite3_bind_int64(s, 5, lode_now_ms());
  int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return db_err(db, rc, "cannot register executor", err, errlen);
  return LODE_OK;
}

void lode__sqlite_executor_unregister(lode_sysdb *db, const char *id) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(db->db, "DELETE FROM executors WHERE id=?", -1, &s, NULL) != SQLITE_OK)
    return;
  lode__bind_text(s, 1, id);
  sqlite3_step(s);
  sqlite3_finalize(s);
}

int lode__sqlite_executor_alive(lode_sysdb *db, const char *id) {
  if (!id) return 0;
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(db->db, "SELECT pid, host, proc_start FROM executors WHERE id=?", -1,
                         &s, NULL) != SQLITE_OK)
    return 0;
  lode__bind_text(s, 1, id);
  int alive = 0;
  if (sqlite3_step(s) == SQLITE_ROW) {
    char host[256], start[64];
    lode_hostname(host, sizeof host);
    const char *rhost = (const char *)sqlite3_column_text(s, 1);
    const char *rstart = (const char *)sqlite3_column_text(s, 2);
    long pid = (long)sqlite3_column_int64(s, 0);
    if (rhost && strcmp(rhost, host) != 0)
      alive = 1; /* another host: assume alive (no heartbeat across hosts yet) */
    else if (lode_proc_start(pid, start, sizeof start) == 0 && rstart && !strcmp(start, rstart))
      alive = 1;
  }
  sqlite3_finalize(s);
  return alive;
}

/* ---- queues --------------------------------------------------------------- */

int lode__sqlite_wf_enqueue(lode_sysdb *db, const lode_wf_row *r, int priority, const char *dedup_id,
                          int *existed, char *err, size_t errlen) {
  lode_wf_row q = *r;
  q.status = LODE_WF_ENQUEUED;
  return insert_row(db, &q, priority, dedup_id, existed, err, errlen);
}

const lode__sysdb_ops lode__sqlite_ops = {
#define X(ret, name, params, args) .name = lode__sqlite_##name,
    LODE__SYSDB_OPS(X)
#undef X
};
