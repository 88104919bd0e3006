#ifndef LODE_SYSDB_INT_H
#define LODE_SYSDB_INT_H
/* sysdb_int.h - what the files of the SQLite backend share (lode__ names).
 * Nothing outside src/state/sqlite/ includes it, except tests and benches
 * that look into the file directly.
 *
 * Statements: each file of the backend caches its prepared statements on
 * the connection through lode__sysdb_stmt, in a slot of its own (the
 * LODE__X_* numbers below); they are finalized when the connection closes. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "state/backend.h"
#include "state/sysdb.h"

/* The backend's side of every interface function (state/backend.h). */
#define X(ret, name, params, args) ret lode__sqlite_##name params;
LODE__SYSDB_OPS(X)
#undef X

/* Slots of cached statements for the backend files other than sysdb.c. */
enum {
  /* trace_store.c: the record upsert and the outbox */
  LODE__X_TRACE_UPSERT,
  LODE__X_OUTBOX_SELECT,
  LODE__X_OUTBOX_SENT,
  LODE__X_OUTBOX_FAILED,
  LODE__X_OUTBOX_RETRY,
  LODE__X_OUTBOX_PENDING,
  /* the same five for the OTLP destination (its own columns) */
  LODE__X_OTLP_SELECT,
  LODE__X_OTLP_SENT,
  LODE__X_OTLP_FAILED,
  LODE__X_OTLP_RETRY,
  LODE__X_OTLP_PENDING,
  /* render_rows.c: the renderer's reads and progress */
  LODE__X_RENDER_PENDING,
  LODE__X_RENDER_STEPS,
  LODE__X_RENDER_NEW,
  LODE__X_RENDER_OPEN,
  LODE__X_OPEN_PUT,
  LODE__X_OPEN_ADVANCE,
  LODE__X_OPEN_CLOSE,
  LODE__X_OPEN_PARK,
  LODE__X_COUNT
};

/* The connection (one per lode_sysdb). */
sqlite3 *lode__sysdb_conn(lode_sysdb *db);
/* The statement of `slot`, prepared (persistent) on first use; NULL when
 * preparing failed (sqlite3_errmsg tells why). */
sqlite3_stmt *lode__sysdb_stmt(lode_sysdb *db, int slot, const char *sql);
/* The destination the outbox functions of this connection act on
 * (lode_sysdb_outbox_use; LODE_OUTBOX_OPIK until set). */
int *lode__sysdb_outbox_dest(lode_sysdb *db);
/* Fills err with "PATH: what (SQLite's message)"; returns LODE_EDB. */
int lode__sysdb_err(lode_sysdb *db, int rc, const char *what, char *err, size_t errlen);

/* Binds text, or NULL for a NULL pointer; the text must outlive the step. */
static inline void lode__bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, i);
}
/* A malloc'd copy of a text column, NULL for NULL (or out of memory). */
static inline char *lode__col_text(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return t ? strdup((const char *)t) : NULL;
}

/* Migrations: each runs once, in order, inside the migration transaction. */
typedef int (*lode__migration_fn)(sqlite3 *db, char *err, size_t errlen);
typedef struct lode__migration {
  const char *name;
  lode__migration_fn fn;
} lode__migration;
/* schema.c: every migration, in order; a new one goes at the end. */
extern const lode__migration lode__migrations[];
extern const int lode__n_migrations;
/* trace_store.c: the trace_records table (the migration named trace-1). */
int lode__trace_store_v1(sqlite3 *db, char *err, size_t errlen);
/* trace_store.c: OTLP's delivery state (the migration named trace-2). */
int lode__trace_store_v2(sqlite3 *db, char *err, size_t errlen);

#endif
