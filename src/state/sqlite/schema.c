/* schema.c - the SQLite backend's schema: every migration, in the order it
 * applies (the runner, which applies each once in one transaction, is
 * lode_sysdb_open's, in sysdb.c). */
#include <stdio.h>

#include "base/error.h"
#include "state/sqlite/sysdb_int.h"


static const char *const schema_v1 =
    "CREATE TABLE workflows("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,"
    " parent_id TEXT, parent_step INTEGER, input BLOB, output BLOB, error TEXT,"
    " pipeline TEXT, version TEXT, executor_id TEXT,"
    " recovery_attempts INTEGER NOT NULL DEFAULT 0, max_recovery_attempts INTEGER,"
    " trace_id TEXT, span_id TEXT, parent_span_id TEXT,"
    " queue TEXT, priority INTEGER NOT NULL DEFAULT 0, dedup_id TEXT, deadline_ms INTEGER,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " started_at INTEGER, ended_at INTEGER);"
    "CREATE INDEX workflows_status ON workflows(status, created_at);"
    "CREATE INDEX workflows_parent ON workflows(parent_id);"
    "CREATE INDEX workflows_created ON workflows(created_at);"
    "CREATE TABLE steps("
    " workflow_id TEXT NOT NULL, step_no INTEGER NOT NULL, name TEXT NOT NULL,"
    " status TEXT NOT NULL, output BLOB, error TEXT, attempts INTEGER NOT NULL DEFAULT 1,"
    " child_id TEXT, span_id TEXT, started_at INTEGER, ended_at INTEGER,"
    " PRIMARY KEY(workflow_id, step_no)) WITHOUT ROWID;"
    "CREATE TABLE executors("
    " id TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL,"
    " proc_start TEXT, started_at INTEGER NOT NULL);";

/* Runs one migration's SQL; a failure names the schema step. */
static int run_schema(sqlite3 *db, const char *what, const char *sql, char *err,
                      size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, errlen, "%s: %s", what, msg ? msg : "?");
    sqlite3_free(msg);
    return LODE_EDB;
  }
  return LODE_OK;
}

static int core_v1(sqlite3 *db, char *err, size_t errlen) {
  return run_schema(db, "schema", schema_v1, err, errlen);
}

/* Queues: what the dispatcher scans, and deduplication while a workflow
 * with the same dedup id is queued or running (the partial unique index
 * lets the id be reused once that workflow has finished). */
static int core_v2(sqlite3 *db, char *err, size_t errlen) {
  return run_schema(db, "schema 2",
                    "ALTER TABLE workflows ADD COLUMN wake_at INTEGER;"
                    "CREATE INDEX workflows_queue ON workflows(queue, status, priority, created_at)"
                    " WHERE queue IS NOT NULL;"
                    "CREATE UNIQUE INDEX workflows_dedup ON workflows(queue, dedup_id)"
                    " WHERE dedup_id IS NOT NULL AND status IN ('ENQUEUED','PENDING');", err, errlen);
}

/* Trace records of workflows and steps live in their own rows (the
 * checkpoint is the record, written in the same commit at no extra index
 * cost): `traced` marks a workflow whose spans lode renders, `trace_extra`
 * keeps its tags, metadata, phase and lode.trace.update values, and a
 * step's `span_input`/`span_recovery` keep what its span needs besides the
 * checkpoint. the trace renderer (src/trace/render.c) turns them into
 * trace_records rows in batches, off the step path; `trace_cursor` and
 * `trace_open` are its progress (workflows rowids seen, workflows whose
 * spans are not final yet). Rows written before this migration had their
 * records stored directly, so the cursor starts past them. */
static int core_v3(sqlite3 *db, char *err, size_t errlen) {
  return run_schema(db, "schema 3",
                    "ALTER TABLE workflows ADD COLUMN traced INTEGER;"
                    "ALTER TABLE workflows ADD COLUMN trace_extra TEXT;"
                    "ALTER TABLE steps ADD COLUMN span_input TEXT;"
                    "ALTER TABLE steps ADD COLUMN span_recovery INTEGER;"
                    "CREATE TABLE trace_cursor(name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                    "INSERT INTO trace_cursor SELECT 'workflows', coalesce(max(rowid), 0)"
                    " FROM workflows;"
                    "CREATE TABLE trace_open(workflow_id TEXT PRIMARY KEY,"
                    " steps_done INTEGER NOT NULL DEFAULT 0);", err, errlen);
}

/* Fewer index pages per workflow: a workflow's row is written with its
 * first checkpoint, and each index is one more page in that commit. Lists
 * are ordered by rowid (the order rows were recorded), so `created_at` needs
 * no index of its own; only children are looked up by parent, so top-level
 * rows stay out of that index; and only PENDING rows are looked up by status
 * (recovery, releasing a process's work), so a finished workflow leaves the
 * status index instead of moving within it. */
static int core_v4(sqlite3 *db, char *err, size_t errlen) {
  return run_schema(db, "schema 4",
                    "DROP INDEX IF EXISTS workflows_created;"
                    "DROP INDEX IF EXISTS workflows_parent;"
                    "CREATE INDEX workflows_parent ON workflows(parent_id)"
                    " WHERE parent_id IS NOT NULL;"
                    "DROP INDEX IF EXISTS workflows_status;"
                    "CREATE INDEX workflows_pending ON workflows(executor_id)"
                    " WHERE status='PENDING';", err, errlen);
}

/* A workflow left PENDING by a dead process changes no more until it is
 * claimed again: the renderer parks it (the owner it saw) rather than look
 * at it on every pass. */
static int core_v5(sqlite3 *db, char *err, size_t errlen) {
  return run_schema(db, "schema 5", "ALTER TABLE trace_open ADD COLUMN parked_owner TEXT;", err,
                    errlen);
}

/* A step's output (a page's text, its chunks, a matrix: often megabytes)
 * becomes the last column of its row. SQLite keeps a long value in a chain
 * of overflow pages and reaches any column stored after it by reading the
 * whole chain, so a read of a step's span columns, status or times read its
 * output too; the trace renderer does such reads for every step. The table
 * is rebuilt once with the same rows. */
static int core_v6(sqlite3 *db, char *err, size_t errlen) {
  return run_schema(
      db, "schema 6",
      "CREATE TABLE steps_v6("
      " workflow_id TEXT NOT NULL, step_no INTEGER NOT NULL, name TEXT NOT NULL,"
      " status TEXT NOT NULL, error TEXT, attempts INTEGER NOT NULL DEFAULT 1,"
      " child_id TEXT, span_id TEXT, started_at INTEGER, ended_at INTEGER,"
      " span_input TEXT, span_recovery INTEGER, output BLOB,"
      " PRIMARY KEY(workflow_id, step_no)) WITHOUT ROWID;"
      "INSERT INTO steps_v6(workflow_id,step_no,name,status,error,attempts,child_id,span_id,"
      " started_at,ended_at,span_input,span_recovery,output)"
      " SELECT workflow_id,step_no,name,status,error,attempts,child_id,span_id,"
      " started_at,ended_at,span_input,span_recovery,output FROM steps;"
      "DROP TABLE steps;"
      "ALTER TABLE steps_v6 RENAME TO steps;",
      err, errlen);
}

/* What a running workflow reports of its progress (lode.progress), for
 * `lode workflow list/get` in another process: one row per workflow, the
 * last report wins. */
static int core_v7(sqlite3 *db, char *err, size_t errlen) {
  return run_schema(db, "schema 7",
                    "CREATE TABLE workflow_progress(workflow_id TEXT PRIMARY KEY,"
                    " progress TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;",
                    err, errlen);
}

/* Every migration, in the order they apply; a new one goes at the end
 * (docs/operations.md: how a state database is upgraded). The trace store's
 * table (trace_store.c) commits with the checkpoints it describes, so it
 * lives in the same file. */
const lode__migration lode__migrations[] = {{"core-1", core_v1}, {"trace-1", lode__trace_store_v1}, {"core-2", core_v2},
                  {"core-3", core_v3}, {"core-4", core_v4}, {"core-5", core_v5},
                  {"core-6", core_v6}, {"core-7", core_v7},
                  {"trace-2", lode__trace_store_v2}};
const int lode__n_migrations = (int)(sizeof lode__migrations / sizeof lode__migrations[0]);
