/* conn.c - a connection to PostgreSQL: opening it, sending statements
 * (prepared ones cached per connection), transactions, notifications, and
 * riding out a server that restarts (pg_int.h, docs/postgres.md). */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "state/postgres/pg_int.h"

/* A statement of the open transaction, kept to be sent again. */
typedef struct lode__pg_logged {
  int slot;
  char *sql;
  int n;
  char *v[LODE__PG_MAXP];
  int len[LODE__PG_MAXP], fmt[LODE__PG_MAXP];
} lode__pg_logged;

/* ---- parameters --------------------------------------------------------- */

void lode__pgq_text(lode__pgq *q, const char *s) {
  q->v[q->n] = s;
  q->len[q->n] = 0;
  q->fmt[q->n++] = 0;
}
void lode__pgq_null(lode__pgq *q) { lode__pgq_text(q, NULL); }
void lode__pgq_i64(lode__pgq *q, int64_t v) {
  snprintf(q->num[q->n], sizeof q->num[q->n], "%lld", (long long)v);
  lode__pgq_text(q, q->num[q->n]);
}
void lode__pgq_blob(lode__pgq *q, const void *p, size_t n) {
  q->v[q->n] = p ? (p && n ? (const char *)p : "") : NULL;
  q->len[q->n] = (int)n;
  q->fmt[q->n++] = 1;
}

char *lode__pg_text(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}
int64_t lode__pg_i64(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}
uint8_t *lode__pg_blob(const PGresult *r, int row, int col, size_t *n) {
  *n = 0;
  if (PQgetisnull(r, row, col)) return NULL;
  size_t len = 0;
  unsigned char *u = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &len);
  if (!u) return NULL;
  uint8_t *p = malloc(len ? len : 1);
  if (p) memcpy(p, u, len);
  PQfreemem(u);
  *n = p ? len : 0;
  return p;
}

/* ---- text the server accepts ------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (1-4), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p) {
  if (p[0] < 0x80) return 1;
  size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 : 0;
  if (!n || (n == 3 && p[0] >= 0xf0)) return 0;
  for (size_t i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  if (n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0))) return 0;
  if (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))) return 0;
  return n;
}

/* PostgreSQL refuses text that is not UTF-8 (SQLite stores any bytes): a
 * Lua string (a name, an error message) may be anything. NULL if s is
 * valid, else a malloc'd copy with each invalid byte as U+FFFD. */
static char *utf8_fixed(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, n;
  while (p[i] && (n = utf8_seq(p + i))) i += n;
  if (!p[i]) return NULL;
  size_t len = strlen(s);
  char *out = malloc(len * 3 + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (i = 0; p[i];) {
    n = utf8_seq(p + i);
    if (n) {
      memcpy(out + o, p + i, n);
      o += n, i += n;
    } else {
      memcpy(out + o, "\xef\xbf\xbd", 3);
      o += 3, i++;
    }
  }
  out[o] = 0;
  return out;
}

/* ---- notifications ------------------------------------------------------ */

static void drain(lode_sysdb *db) {
  PGnotify *n;
  while ((n = PQnotifies(db->c))) {
    if (!strcmp(n->relname, "lode_status")) db->notified++;
    else if (!strcmp(n->relname, "lode_wake")) db->wakes++;
    PQfreemem(n);
  }
}

void lode__pg_poll(lode_sysdb *db) {
  if (db->c && PQconsumeInput(db->c)) drain(db);
}

/* ---- connecting --------------------------------------------------------- */

/* How long a lost server is waited for: $LODE_PG_RETRY_S, default 60 s. */
static double retry_s(void) {
  const char *v = getenv("LODE_PG_RETRY_S");
  double s = v && *v ? strtod(v, NULL) : 60.0;
  return s >= 0 ? s : 60.0;
}

/* The URL without its password (user:secret@ -> user@), for messages. */
static char *shown_url(const char *url) {
  char *s = strdup(url);
  if (!s) return NULL;
  char *scheme = strstr(s, "://");
  char *at = scheme ? strchr(scheme + 3, '@') : NULL;
  char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
  if (at && colon && colon < at) memmove(colon, at, strlen(at) + 1);
  char *q = strstr(s, "password=");
  if (q) q[9] = 0, strcat(s, "***");
  return s;
}

/* After a (re)connect: lode's schema first on the search path, lode's
 * notifications listened to, nothing prepared yet. */
static int setup(lode_sysdb *db, char *err, size_t errlen) {
  memset(db->prepared, 0, sizeof db->prepared);
  PGresult *r = PQexec(db->c, db->readonly
                                  ? "SET search_path TO lode, public;"
                                    "SET default_transaction_read_only TO on"
                                  : "SET search_path TO lode, public;"
                                    "LISTEN lode_status; LISTEN lode_wake");
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    snprintf(err, errlen, "%s: cannot set up the connection: %s", db->shown,
             PQerrorMessage(db->c));
  PQclear(r);
  if (ok && db->relaxed) {
    r = PQexec(db->c, "SET synchronous_commit TO off");
    PQclear(r);
  }
  return ok ? LODE_OK : LODE_EDB;
}

static int connect_once(lode_sysdb *db, char *err, size_t errlen) {
  if (db->c) PQfinish(db->c);
  db->c = PQconnectdb(db->url);
  if (PQstatus(db->c) != CONNECTION_OK) {
    char msg[512];
    lode_strlcpy(msg, PQerrorMessage(db->c), sizeof msg);
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' ')) msg[--l] = 0;
    snprintf(err, errlen, "%s: cannot connect: %s", db->shown, msg);
    return LODE_EDB;
  }
  return setup(db, err, errlen);
}

/* Reconnects with back-off for up to retry_s(); LODE_EDB (err says since
 * when and why) when the server does not come back. */
static int reconnect(lode_sysdb *db, char *err, size_t errlen) {
  double limit = retry_s();
  int64_t start = lode_now_ms();
  double nap = 0.05;
  int warned = 0;
  for (;;) {
    int rc = connect_once(db, err, errlen);
    if (rc == LODE_OK) {
      if (warned) lode_warn("%s: connected again", db->shown);
      return LODE_OK;
    }
    double waited = (double)(lode_now_ms() - start) / 1000.0;
    if (waited >= limit) {
      char why[400];
      lode_strlcpy(why, err, sizeof why);
      snprintf(err, errlen,
               "%.400s; gave up after %g s of retries ($LODE_PG_RETRY_S): is the PostgreSQL "
               "server up and reachable? Nothing recorded is lost; run again to go on",
               why, limit);
      return LODE_EDB;
    }
    if (!warned++)
      lode_warn("%s: the connection was lost; retrying for up to %g s", db->shown, limit);
    lode_sleep_s(nap);
    nap = nap * 2 > 1.0 ? 1.0 : nap * 2;
  }
}

static void log_clear(lode_sysdb *db) {
  for (int i = 0; i < db->nlog; i++) {
    free(db->log[i].sql);
    for (int k = 0; k < db->log[i].n; k++) free(db->log[i].v[k]);
  }
  db->nlog = 0;
}

static int log_add(lode_sysdb *db, int slot, const char *sql, const lode__pgq *q) {
  if (db->nlog == db->caplog) {
    int cap = db->caplog ? db->caplog * 2 : 16;
    lode__pg_logged *p = realloc(db->log, (size_t)cap * sizeof *p);
    if (!p) return -1;
    db->log = p;
    db->caplog = cap;
  }
  lode__pg_logged *e = &db->log[db->nlog];
  memset(e, 0, sizeof *e);
  e->slot = slot;
  e->sql = strdup(sql);
  e->n = q ? q->n : 0;
  for (int k = 0; k < e->n; k++) {
    e->len[k] = q->len[k];
    e->fmt[k] = q->fmt[k];
    if (!q->v[k]) continue;
    size_t n = q->fmt[k] ? (size_t)q->len[k] : strlen(q->v[k]) + 1;
    e->v[k] = malloc(n ? n : 1);
    if (e->v[k]) memcpy(e->v[k], q->v[k], n);
  }
  db->nlog++;
  return 0;
}

/* ---- sending ------------------------------------------------------------ */

static PGresult *send1(lode_sysdb *db, int slot, const char *sql, int n,
                       const char *const *v, const int *len, const int *fmt) {
  if (slot >= 0) {
    char name[16];
    snprintf(name, sizeof name, "l%d", slot);
    if (!db->prepared[slot]) {
      PGresult *p = PQprepare(db->c, name, sql, 0, NULL);
      int ok = PQresultStatus(p) == PGRES_COMMAND_OK;
      if (!ok) return p;
      PQclear(p);
      db->prepared[slot] = 1;
    }
    return PQexecPrepared(db->c, name, n, v, len, fmt, 0);
  }
  if (n == 0) return PQexec(db->c, sql);
  return PQexecParams(db->c, sql, n, NULL, v, len, fmt, 0);
}

static int result_ok(const PGresult *r) {
  int s = PQresultStatus(r);
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* Sends the transaction's statements again on a new connection. */
static int replay(lode_sysdb *db) {
  PGresult *r = PQexec(db->c, "BEGIN");
  int ok = result_ok(r);
  PQclear(r);
  for (int i = 0; i < db->nlog && ok; i++) {
    lode__pg_logged *e = &db->log[i];
    r = send1(db, e->slot, e->sql, e->n, (const char *const *)e->v, e->len, e->fmt);
    ok = result_ok(r);
    PQclear(r);
  }
  return ok;
}

static PGresult *exec_valid(lode_sysdb *db, int slot, const char *sql, const lode__pgq *q,
                           const char *what, char *err, size_t errlen, int *rc);

PGresult *lode__pg_exec(lode_sysdb *db, int slot, const char *sql, const lode__pgq *q,
                        const char *what, char *err, size_t errlen, int *rc) {
  static const lode__pgq none;
  if (!q) q = &none;
  char *fixed[LODE__PG_MAXP];
  int nfixed = 0;
  lode__pgq copy;
  for (int i = 0; i < q->n; i++) {
    char *f = q->v[i] && !q->fmt[i] ? utf8_fixed(q->v[i]) : NULL;
    if (!f) continue;
    if (!nfixed) copy = *q;
    copy.v[i] = fixed[nfixed++] = f;
  }
  PGresult *r = exec_valid(db, slot, sql, nfixed ? &copy : q, what, err, errlen, rc);
  for (int i = 0; i < nfixed; i++) free(fixed[i]);
  return r;
}

static PGresult *exec_valid(lode_sysdb *db, int slot, const char *sql, const lode__pgq *q,
                           const char *what, char *err, size_t errlen, int *rc) {
  *rc = LODE_OK;
  for (int attempt = 0;; attempt++) {
    PGresult *r = db->c ? send1(db, slot, sql, q->n, q->v, q->len, q->fmt) : NULL;
    if (r && result_ok(r)) {
      drain(db);
      if (db->in_tx && log_add(db, slot, sql, q) != 0) {
        PQclear(r);
        snprintf(err, errlen, "out of memory");
        *rc = LODE_ENOMEM;
        return NULL;
      }
      return r;
    }
    if (db->c && PQstatus(db->c) == CONNECTION_OK) {
      const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(db->c);
      char msg[600];
      lode_strlcpy(msg, m, sizeof msg);
      size_t l = strlen(msg);
      while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' ')) msg[--l] = 0;
      snprintf(err, errlen, "%s: %s: %s", db->shown, what, msg);
      const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
      /* a deadlock (40P01) or a serialization failure (40001) aborts the
       * transaction through no fault of its own: as PostgreSQL advises, it
       * is rolled back and sent again in full (its statements so far, then
       * this one), a few times, after a short random pause. A queue claim's
       * transaction is not replayed (it would pick other rows). */
      int retry = state && (!strcmp(state, "40P01") || !strcmp(state, "40001")) &&
                  attempt < 5 && !(db->in_tx && db->no_replay);
      if (retry) {
        PQclear(r);
        lode_sleep_s(0.002 * (double)(1 + ((uint64_t)lode_mono_ns() >> 10) % (4u << attempt)));
        if (!db->in_tx) continue;
        PGresult *rb = PQexec(db->c, "ROLLBACK");
        PQclear(rb);
        if (replay(db)) continue;
        snprintf(err, errlen, "%s: %s: cannot redo the transaction after a deadlock: %s",
                 db->shown, what, PQerrorMessage(db->c));
        *rc = LODE_EDB;
        return NULL;
      }
      *rc = state && !strcmp(state, "23505") ? LODE_ECONFLICT : LODE_EDB;
      PQclear(r);
      return NULL;
    }
    PQclear(r);
    /* the connection is gone: back, then the transaction so far, then this */
    if (attempt >= 3 || reconnect(db, err, errlen) != LODE_OK) {
      if (attempt >= 3) snprintf(err, errlen, "%s: %s: the connection keeps failing", db->shown, what);
      *rc = LODE_EDB;
      return NULL;
    }
    if (db->in_tx && db->no_replay) {
      snprintf(err, errlen, "%s: %s: the connection was lost in the transaction", db->shown,
               what);
      db->in_tx = 0;
      log_clear(db);
      *rc = LODE_EDB;
      return NULL;
    }
    if (db->in_tx && !replay(db)) {
      snprintf(err, errlen, "%s: %s: cannot redo the transaction after reconnecting: %s",
               db->shown, what, PQerrorMessage(db->c));
      *rc = LODE_EDB;
      return NULL;
    }
  }
}

int lode__pg_run(lode_sysdb *db, int slot, const char *sql, const lode__pgq *q,
                 const char *what, char *err, size_t errlen) {
  int rc;
  PGresult *r = lode__pg_exec(db, slot, sql, q, what, err, errlen, &rc);
  PQclear(r);
  return rc;
}

void lode__pg_wrote(lode_sysdb *db) {
  if (!db->in_tx) db->commits++;
}

/* ---- open, close --------------------------------------------------------- */

static int open_common(const char *url, int readonly, int sync_full, lode_sysdb **out,
                       char *err, size_t errlen) {
  *out = NULL;
  lode_sysdb *db = calloc(1, sizeof *db);
  if (!db || !(db->url = strdup(url)) || !(db->shown = shown_url(url))) {
    if (db) free(db->url);
    free(db);
    snprintf(err, errlen, "out of memory");
    return LODE_ENOMEM;
  }
  db->ops = &lode__pg_ops;
  db->readonly = readonly;
  db->sync_full = sync_full;
  /* a server that is not there when lode starts is an error at once (a bad
   * URL, a typo'd host, a wrong password): retries are for a server lost
   * during a run */
  int rc = connect_once(db, err, errlen);
  if (rc == LODE_OK && !readonly) rc = lode__pg_migrate(db, err, errlen);
  if (rc != LODE_OK) {
    lode__pg_close(db);
    return rc;
  }
  *out = db;
  return LODE_OK;
}

int lode__pg_open(const char *url, int sync_full, lode_sysdb **out, char *err, size_t errlen) {
  return open_common(url, 0, sync_full, out, err, errlen);
}

int lode__pg_open_readonly(const char *url, lode_sysdb **out, char *err, size_t errlen) {
  return open_common(url, 1, 0, out, err, errlen);
}

void lode__pg_close(lode_sysdb *db) {
  if (!db) return;
  if (db->c) PQfinish(db->c);
  log_clear(db);
  free(db->log);
  free(db->me);
  free(db->url);
  free(db->shown);
  free(db);
}

const char *lode__pg_path(lode_sysdb *db) { return db->shown; }
unsigned lode__pg_faults(lode_sysdb *db) {
  (void)db;
  return 0; /* lost connections are retried here, not charged to bodies */
}

/* Every commit of this connection plus every status change another
 * announced (NOTIFY lode_status, sent by cancels and status changes):
 * the engine's "has anything changed since my last checkpoint" test. */
unsigned lode__pg_data_version(lode_sysdb *db) {
  lode__pg_poll(db);
  return db->commits + db->notified;
}

/* Commits wait for their WAL flush as the server is configured
 * (synchronous_commit, on by default) with either --sync; with --sync full,
 * relaxed, a batch's commits do not wait (SET synchronous_commit TO off:
 * they are durable with the next full commit, as on SQLite). */
void lode__pg_relax_sync(lode_sysdb *db, int on) {
  if (!db->sync_full || db->relaxed == on) return;
  PGresult *r = PQexec(db->c, on ? "SET synchronous_commit TO off" : "SET synchronous_commit TO on");
  PQclear(r);
  db->relaxed = on;
}

int lode__pg_begin(lode_sysdb *db, char *err, size_t errlen) {
  log_clear(db);
  int rc = lode__pg_run(db, -1, "BEGIN", NULL, "cannot begin a transaction", err, errlen);
  if (rc == LODE_OK) db->in_tx = 1;
  return rc;
}

int lode__pg_commit(lode_sysdb *db, char *err, size_t errlen) {
  int rc = lode__pg_run(db, -1, "COMMIT", NULL, "cannot commit", err, errlen);
  db->in_tx = 0;
  log_clear(db);
  if (rc == LODE_OK) db->commits++;
  return rc;
}

void lode__pg_rollback(lode_sysdb *db) {
  if (!db->in_tx) return;
  db->in_tx = 0;
  log_clear(db);
  if (db->c && PQstatus(db->c) == CONNECTION_OK) PQclear(PQexec(db->c, "ROLLBACK"));
}
