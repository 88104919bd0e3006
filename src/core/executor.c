/* executor.c - durable workflows and steps. See executor.h. */
#include "core/executor.h"

#include <cjson/cJSON.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/codec.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "trace/trace_ctx.h"

struct lode_exec {
  lode_sysdb *db;
  char id[37];
  char *pipeline, *version;
  int tracing;
  int counted;            /* counted in open_dbs (unregisters at the last close) */
  unsigned seen_version;  /* data version after this connection's last checkpoint */
  void (*kick)(void *ud);
  void *kick_ud;
};

struct lode_wf {
  lode_exec *ex;
  lode_wf_row row;      /* as recorded (input, trace context, ...) */
  lode_step_row *steps; /* recorded checkpoints, ordered by step_no */
  size_t nsteps;
  size_t cursor;        /* replay cursor into steps */
  int64_t pos;          /* last position handed out */
  int resumed;
  int cancelled;
  int unsaved; /* a fresh top-level run whose row rides on its first write */
  /* trace attributes, kept for the span written at the end */
  char **tags;
  int ntags;
  char *metadata_json, *phase;
};

#ifdef LODE_TEST_HOOKS
/* Read once: the hook sits on every step's path, and worker threads share
 * the count. */
static pthread_once_t crash_once = PTHREAD_ONCE_INIT;
static const char *crash_spec;
static void read_crash_spec(void) { crash_spec = getenv("LODE_TEST_CRASH_AT"); }
#endif

void lode_test_crash_point(const char *step_name) {
#ifdef LODE_TEST_HOOKS
  static _Atomic int count;
  pthread_once(&crash_once, read_crash_spec);
  const char *spec = crash_spec;
  if (!spec) return;
  const char *colon = strrchr(spec, ':');
  size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
  if (strlen(step_name) != nlen || strncmp(spec, step_name, nlen) != 0) return;
  int k = colon ? atoi(colon + 1) : 1;
  if (++count == k) {
    fprintf(stderr, "lode: test hook: killing the process at step '%s'\n", step_name);
    fflush(stderr);
    raise(SIGKILL);
  }
#else
  (void)step_name;
#endif
}

/* One executor id per process: its threads share queue limits
 * (worker_concurrency) and recovery treats their work as one owner's. */
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;
static char the_process_id[37];
static void make_process_id(void) { lode_uuid7(the_process_id); }
static void process_id(char out[37]) {
  pthread_once(&pid_once, make_process_id);
  memcpy(out, the_process_id, 37);
}

/* How many executors of this process are open, per state database: the
 * process's row in a database's executors table goes when the last executor
 * on that database closes cleanly (a killed process leaves its row, which is
 * how recovery tells its workflows are orphaned). A process may have
 * executors on several databases (`lode test` gives each spec its own). */
typedef struct open_db {
  char *path;
  int n;
  struct open_db *next;
} open_db;
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static open_db *open_dbs;

/* The count for path, made if absent (NULL if out of memory); under open_mu. */
static open_db *open_db_for(const char *path) {
  for (open_db *o = open_dbs; o; o = o->next)
    if (!strcmp(o->path, path)) return o;
  open_db *o = calloc(1, sizeof *o);
  if (!o || !(o->path = strdup(path))) {
    free(o);
    return NULL;
  }
  o->next = open_dbs;
  open_dbs = o;
  return o;
}

int lode_exec_open(const lode_exec_opts *o, lode_exec **out, char *err, size_t errlen) {
  *out = NULL;
  lode_exec *ex = calloc(1, sizeof *ex);
  if (!ex) {
    snprintf(err, errlen, "out of memory");
    return LODE_ENOMEM;
  }
  int rc = lode_sysdb_open(o->db_path, o->sync_full, &ex->db, err, errlen);
  if (rc != LODE_OK) goto done;
  process_id(ex->id);
  /* counted before registering: a close racing this open must not delete
   * the row this executor is about to (re)insert */
  pthread_mutex_lock(&open_mu);
  open_db *od = open_db_for(lode_sysdb_path(ex->db));
  if (od) od->n++;
  pthread_mutex_unlock(&open_mu);
  if (!od) {
    snprintf(err, errlen, "out of memory");
    rc = LODE_ENOMEM;
    goto done;
  }
  ex->counted = 1;
  rc = lode_sysdb_executor_register(ex->db, ex->id, err, errlen);
  if (rc != LODE_OK) goto done;
  ex->tracing = !lode_trace_disabled();
  if (o->pipeline) ex->pipeline = strdup(o->pipeline);
  if (o->version) ex->version = strdup(o->version);
done:
  if (rc != LODE_OK) {
    lode_exec_close(ex);
    return rc;
  }
  *out = ex;
  return LODE_OK;
}

void lode_exec_close(lode_exec *ex) {
  if (!ex) return;
  if (ex->counted) {
    pthread_mutex_lock(&open_mu);
    open_db **pp = &open_dbs;
    while (*pp && strcmp((*pp)->path, lode_sysdb_path(ex->db))) pp = &(*pp)->next;
    open_db *od = *pp;
    /* unregistered under the lock, so an open in another thread cannot
     * register between the count reaching 0 and the row's delete */
    if (od && --od->n == 0) {
      lode_sysdb_executor_unregister(ex->db, ex->id);
      *pp = od->next;
      free(od->path);
      free(od);
    }
    pthread_mutex_unlock(&open_mu);
  }
  lode_sysdb_close(ex->db);
  free(ex->pipeline);
  free(ex->version);
  free(ex);
}

lode_sysdb *lode_exec_db(lode_exec *ex) { return ex->db; }
const char *lode_exec_id(lode_exec *ex) { return ex->id; }

void lode_wf_outcome_clear(lode_wf_outcome *o) {
  free(o->output);
  free(o->error);
  memset(o, 0, sizeof *o);
}

/* Moves a finished row's outcome into *o. */
static void take_outcome(lode_wf_row *r, lode_wf_outcome *o) {
  o->status = r->status;
  o->output = r->output;
  o->output_len = r->output_len;
  o->error = r->error;
  r->output = NULL;
  r->error = NULL;
  if (!o->error && r->status == LODE_WF_CANCELLED) {
    size_t n = strlen(r->id) + 64;
    o->error = malloc(n);
    if (o->error) snprintf(o->error, n, "workflow %s was cancelled", r->id);
  }
  if (!o->error && r->status == LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED) {
    size_t n = strlen(r->id) + 128;
    o->error = malloc(n);
    if (o->error)
      snprintf(o->error, n, "workflow %s exceeded its %d recovery attempts", r->id,
               r->max_recovery_attempts);
  }
}

int lode_exec_tracing(const lode_exec *ex) { return ex->tracing; }

void lode_exec_on_trace_commit(lode_exec *ex, void (*fn)(void *ud), void *ud) {
  ex->kick = fn;
  ex->kick_ud = ud;
}

static void kick(lode_exec *ex) {
  if (ex->kick) ex->kick(ex->kick_ud);
}

static void keep_trace_opts(lode_wf *wf, const lode_wf_trace *t, int is_child) {
  if (!t) return;
  if (t->ntags > 0 && (wf->tags = calloc((size_t)t->ntags, sizeof *wf->tags))) {
    for (int i = 0; i < t->ntags; i++)
      if (t->tags[i]) wf->tags[wf->ntags++] = strdup(t->tags[i]);
  }
  if (t->metadata_json) wf->metadata_json = strdup(t->metadata_json);
  if (t->phase && !is_child) wf->phase = strdup(t->phase);
}

/* A run that joined a caller keeps the caller's W3C context in its span's
 * metadata (caller_traceparent, caller_baggage): in Opik, the link to a
 * caller's trace that is not an Opik trace; for OTLP, the parent or link of
 * the root span (otlp.h); and, being in the row, it survives recovery. */
static void add_caller_metadata(lode_wf *wf, const lode_trace_ctx *c) {
  if (!c->traceparent[0] && !c->baggage[0]) return;
  cJSON *m = wf->metadata_json ? cJSON_Parse(wf->metadata_json) : cJSON_CreateObject();
  if (!cJSON_IsObject(m)) {
    cJSON_Delete(m);
    return;
  }
  if (c->traceparent[0]) {
    cJSON_DeleteItemFromObjectCaseSensitive(m, "caller_traceparent");
    cJSON_AddStringToObject(m, "caller_traceparent", c->traceparent);
  }
  if (c->baggage[0]) {
    cJSON_DeleteItemFromObjectCaseSensitive(m, "caller_baggage");
    cJSON_AddStringToObject(m, "caller_baggage", c->baggage);
  }
  char *j = cJSON_PrintUnformatted(m);
  cJSON_Delete(m);
  if (!j) return;
  free(wf->metadata_json);
  wf->metadata_json = strdup(j);
  cJSON_free(j);
}

/* The workflow's trace attributes (and lode.trace.update values) as its
 * row keeps them (render.h); NULL when there are none. */
static char *trace_extra_json(const lode_wf *wf, const lode_span_extra *x) {
  lode_wf_trace t = {(const char *const *)wf->tags, wf->ntags, wf->metadata_json, wf->phase};
  return lode_trace_extra_json(&t, x);
}

int lode_exec_trace_write(lode_exec *ex, const lode_trace_rec *t, const lode_span_rec *spans,
                          int nspans, char *err, size_t errlen) {
  if (!ex->tracing || (nspans == 0 && !t)) return LODE_OK;
  int rc = lode_sysdb_begin(ex->db, err, errlen);
  if (rc != LODE_OK) return rc;
  if (t && lode_trace_put_trace(ex->db, t, err, errlen) != 0) rc = LODE_EDB;
  for (int i = 0; i < nspans && rc == LODE_OK; i++)
    if (lode_trace_put_span(ex->db, &spans[i], err, errlen) != 0) rc = LODE_EDB;
  if (rc == LODE_OK) rc = lode_sysdb_commit(ex->db, err, errlen);
  if (rc != LODE_OK) lode_sysdb_rollback(ex->db);
  else kick(ex);
  return rc;
}

int lode_exec_trace_feedback(lode_exec *ex, const char *trace_id, const char *name, double value,
                             const char *reason, char *err, size_t errlen) {
  if (!ex->tracing) return LODE_OK;
  int rc = lode_sysdb_begin(ex->db, err, errlen);
  if (rc != LODE_OK) return rc;
  if (lode_trace_put_feedback(ex->db, trace_id, name, value, reason, err, errlen) != 0)
    rc = LODE_EDB;
  if (rc == LODE_OK) rc = lode_sysdb_commit(ex->db, err, errlen);
  if (rc != LODE_OK) lode_sysdb_rollback(ex->db);
  else kick(ex);
  return rc;
}

/* A child's deadline is its own or its parent's, whichever comes first. */
static int64_t deadline_for(double timeout_s, const lode_wf *parent) {
  int64_t d = timeout_s > 0 ? lode_now_ms() + lode_limit_ms(timeout_s) : 0;
  int64_t p = parent ? parent->row.deadline_ms : 0;
  if (p && (!d || p < d)) d = p;
  return d;
}

int64_t lode_wf_deadline(const lode_wf *wf) { return wf->row.deadline_ms; }

/* A top-level run under an id lode just made (a UUIDv7 no one else can
 * hold) is not inserted on its own: its row is written by the first
 * transaction that writes anything for it (its first checkpoint, its
 * outcome, a child), which saves a commit per run. Until then it is not
 * visible to other processes, which is as if it had not started: a crash
 * before that write leaves nothing to recover and nothing was done. Ids
 * given by the caller and child ids (PARENT-N) are inserted at once, since
 * their uniqueness is checked by that insert; so is a run with a deadline,
 * so that another process can list and cancel it while its first step runs
 * (issue 17). */
/* Inserts the row if it is not yet (the caller's transaction; the caller
 * clears wf->unsaved once that transaction has committed). */
static int save_row(lode_wf *wf, char *err, size_t errlen) {
  if (!wf->unsaved) return LODE_OK;
  int existed = 0;
  int rc = lode_sysdb_wf_insert(wf->ex->db, &wf->row, &existed, err, errlen);
  if (rc != LODE_OK) return rc;
  if (existed) {
    snprintf(err, errlen, "workflow id %s was taken meanwhile", wf->row.id);
    return LODE_ECONFLICT;
  }
  return LODE_OK;
}

/* save_row in a transaction of its own (before a child's row is written). */
static int save_row_now(lode_wf *wf, char *err, size_t errlen) {
  if (!wf || !wf->unsaved) return LODE_OK;
  lode_sysdb_relax_sync(wf->ex->db, 1);
  int rc = save_row(wf, err, errlen); /* autocommit */
  lode_sysdb_relax_sync(wf->ex->db, 0);
  if (rc == LODE_OK) wf->unsaved = 0;
  return rc;
}

int lode_wf_check_deadline(lode_wf *wf, char *err, size_t errlen) {
  if (!wf->row.deadline_ms || lode_now_ms() < wf->row.deadline_ms) return LODE_OK;
  int src = save_row_now(wf, err, errlen); /* the cancel below must find it */
  if (src != LODE_OK) return src;
  /* the deadline belongs to the highest ancestor that set it (children
   * inherit it): cancel from there, so the whole tree stops */
  char top[512], e2[256];
  lode_strlcpy(top, wf->row.id, sizeof top);
  for (int guard = 0; guard < 64; guard++) {
    lode_wf_row r, p;
    if (lode_sysdb_wf_get(wf->ex->db, top, &r, e2, sizeof e2) != LODE_OK) break;
    int up = 0;
    if (r.parent_id && lode_sysdb_wf_get(wf->ex->db, r.parent_id, &p, e2, sizeof e2) == LODE_OK) {
      if (p.deadline_ms == wf->row.deadline_ms) {
        lode_strlcpy(top, p.id, sizeof top);
        up = 1;
      }
      lode_wf_row_clear(&p);
    }
    lode_wf_row_clear(&r);
    if (!up) break;
  }
  int n = 0;
  wf->cancelled = 1; /* it stops either way */
  int crc = lode_sysdb_cancel_tree(wf->ex->db, top, &n, e2, sizeof e2);
  if (crc != LODE_OK) {
    /* the tree is not marked CANCELLED: say so rather than claim it was */
    snprintf(err, errlen,
             "workflow %s reached its deadline (timeout) but could not be cancelled: %s",
             wf->row.id, e2);
    return crc;
  }
  snprintf(err, errlen, "workflow %s was cancelled: it reached its deadline (timeout)",
           wf->row.id);
  return LODE_ECANCELLED;
}

static int copy_row(const lode_wf_row *a, lode_wf_row *b) {
  memset(b, 0, sizeof *b);
  const char *src[] = {a->id, a->name, a->parent_id, a->trace_id, a->span_id,
                       a->parent_span_id, a->executor_id, a->trace_extra};
  char **dst[] = {&b->id, &b->name, &b->parent_id, &b->trace_id, &b->span_id,
                  &b->parent_span_id, &b->executor_id, &b->trace_extra};
  for (size_t i = 0; i < sizeof src / sizeof src[0]; i++)
    if (src[i] && !(*dst[i] = strdup(src[i]))) return LODE_ENOMEM;
  if (a->input) {
    if (!(b->input = malloc(a->input_len ? a->input_len : 1))) return LODE_ENOMEM;
    memcpy(b->input, a->input, a->input_len);
    b->input_len = a->input_len;
  }
  b->status = a->status;
  b->deadline_ms = a->deadline_ms;
  b->parent_step = a->parent_step;
  b->max_recovery_attempts = a->max_recovery_attempts;
  b->traced = a->traced;
  return LODE_OK;
}

/* A workflow that goes on in this process with tracing on: its later steps
 * and its outcome must be rendered even if its row was recorded untraced
 * (tracing off then, or an older lode) or its final span was rendered
 * already (resumed after a cancel). */
static int trace_reopen(lode_wf *wf, char *err, size_t errlen) {
  int rc = lode_sysdb_trace_reopen(wf->ex->db, wf->row.id, err, errlen);
  if (rc == LODE_OK) wf->row.traced = 1;
  return rc;
}

int lode_wf_begin(lode_exec *ex, const lode_wf_start *s, lode_wf **wfp, lode_wf_outcome *done,
                  char *err, size_t errlen) {
  *wfp = NULL;
  memset(done, 0, sizeof *done);
  char idbuf[512];
  const char *id = s->id;
  if (!id && s->parent) {
    snprintf(idbuf, sizeof idbuf, "%s-%lld", s->parent->row.id, (long long)s->parent_pos);
    id = idbuf;
  } else if (!id) {
    lode_uuid7(idbuf);
    id = idbuf;
  }

  lode_wf_row nr;
  memset(&nr, 0, sizeof nr);
  char trace_id[37], span_id[37];
  lode_uuid7(span_id);
  /* a new top-level run of a process that joined a caller's trace
   * (trace_ctx.h) starts in it; a recovered one keeps its recorded row */
  const lode_trace_ctx *caller = s->parent ? NULL : lode_trace_joined();
  if (s->parent) lode_strlcpy(trace_id, s->parent->row.trace_id ? s->parent->row.trace_id : span_id, sizeof trace_id);
  else if (caller && caller->trace_id[0]) lode_strlcpy(trace_id, caller->trace_id, sizeof trace_id);
  else lode_uuid7(trace_id);
  nr.id = (char *)id;
  nr.name = (char *)s->name;
  nr.status = LODE_WF_PENDING;
  nr.parent_id = s->parent ? s->parent->row.id : NULL;
  nr.parent_step = s->parent_pos;
  nr.input = (uint8_t *)s->input;
  nr.input_len = s->input_len;
  nr.pipeline = ex->pipeline;
  nr.version = ex->version;
  nr.executor_id = ex->id;
  nr.max_recovery_attempts =
      s->max_recovery_attempts > 0 ? s->max_recovery_attempts : LODE_DEFAULT_MAX_RECOVERY;
  nr.trace_id = trace_id;
  nr.span_id = span_id;
  nr.parent_span_id = s->parent ? s->parent->row.span_id
                     : caller && caller->parent_span_id[0] ? (char *)caller->parent_span_id
                                                           : NULL;
  nr.deadline_ms = deadline_for(s->timeout_s, s->parent);
  int existed = 0;
  nr.created_at = lode_now_ms();
  lode_wf *wf = calloc(1, sizeof *wf);
  if (!wf) {
    snprintf(err, errlen, "out of memory");
    return LODE_ENOMEM;
  }
  wf->ex = ex;
  int rc;
  /* The span (and, for a top-level run, the trace) is this row: with
   * tracing on, the row says so and keeps the trace attributes, and
   * lode_trace_materialize renders its records later, off this path. */
  keep_trace_opts(wf, s->trace, s->parent != NULL);
  if (caller) add_caller_metadata(wf, caller);
  char *extra = NULL;
  if (ex->tracing) {
    nr.traced = 1;
    nr.trace_extra = extra = trace_extra_json(wf, NULL);
  }
  /* A child's parent must be recorded before it (see save_row). */
  rc = save_row_now(s->parent, err, errlen);
  if (rc != LODE_OK) {
    free(extra);
    goto fail;
  }
  /* a run with a deadline is recorded at once, so that `lode workflow
   * cancel` and `lode workflow list` find it while it runs */
  int deferred = !s->parent && !s->id && !nr.deadline_ms;
  /* With --sync full, the start of a workflow is committed without its own
   * fsync: WAL frames are written in order, so the first checkpoint's fsync
   * makes it durable too. A power loss before then loses a workflow that had
   * done nothing yet, which the same command simply starts again. */
  if (!deferred) {
    lode_sysdb_relax_sync(ex->db, 1);
    rc = lode_sysdb_wf_insert(ex->db, &nr, &existed, err, errlen);
    lode_sysdb_relax_sync(ex->db, 0);
    if (rc != LODE_OK) {
      free(extra);
      goto fail;
    }
  }
  if (!existed) {
    /* fresh: the row is what we inserted (or will); no need to read it back */
    rc = copy_row(&nr, &wf->row);
    free(extra);
    if (rc == LODE_OK && deferred) {
      wf->unsaved = 1;
      wf->row.started_at = nr.created_at;
      if ((ex->pipeline && !(wf->row.pipeline = strdup(ex->pipeline))) ||
          (ex->version && !(wf->row.version = strdup(ex->version))))
        rc = LODE_ENOMEM;
    }
    if (rc != LODE_OK) {
      snprintf(err, errlen, "out of memory");
      goto fail;
    }
    wf->row.created_at = nr.created_at;
    if (ex->tracing && !deferred) kick(ex);
    *wfp = wf;
    return LODE_OK;
  }
  free(extra);
  lode_wf_row_clear(&wf->row);
  rc = lode_sysdb_wf_get(ex->db, id, &wf->row, err, errlen);
  if (rc != LODE_OK) goto fail;
  if (strcmp(wf->row.name, s->name) != 0) {
    snprintf(err, errlen,
             "workflow id '%s' is already used by workflow '%s'; it cannot run '%s' "
             "(choose another --id)",
             id, wf->row.name, s->name);
    rc = LODE_ECONFLICT;
    goto fail;
  }
  if (existed) {
    if (lode_wf_status_finished(wf->row.status)) {
      take_outcome(&wf->row, done);
      lode_wf_free(wf);
      return LODE_OK;
    }
    if (wf->row.status == LODE_WF_PENDING) {
      const char *owner = wf->row.executor_id;
      int mine = owner && !strcmp(owner, ex->id);
      if (!mine && lode_sysdb_executor_alive(ex->db, owner)) {
        snprintf(err, errlen, "workflow %s is running in another live process", id);
        rc = LODE_EBUSY;
        goto fail;
      }
      int claimed = 0;
      rc = lode_sysdb_wf_claim(ex->db, id, owner, ex->id, !mine, &claimed, err, errlen);
      if (rc != LODE_OK) goto fail;
      if (!claimed) {
        snprintf(err, errlen, "workflow %s was claimed by another process", id);
        rc = LODE_EBUSY;
        goto fail;
      }
      if (!mine) wf->row.recovery_attempts++;
      if (wf->row.recovery_attempts > wf->row.max_recovery_attempts) {
        int changed;
        rc = lode_sysdb_wf_set_status(ex->db, id, LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED,
                                      1u << LODE_WF_PENDING, &changed, err, errlen);
        if (rc != LODE_OK) goto fail; /* not marked: it must not look finished */
        lode_warn("workflow %s (%s) exceeded its %d recovery attempts; marked "
                  "MAX_RECOVERY_ATTEMPTS_EXCEEDED (resume it with: lode workflow resume %s)",
                  id, wf->row.name, wf->row.max_recovery_attempts, id);
        wf->row.status = LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED;
        take_outcome(&wf->row, done);
        lode_wf_free(wf);
        return LODE_OK;
      }
      wf->resumed = 1;
      /* a resumed workflow (recovered, or `lode workflow resume` after a
       * cancel, whose final span may already be rendered) has its new steps
       * and its next outcome rendered too */
      if (ex->tracing) {
        rc = trace_reopen(wf, err, errlen);
        if (rc != LODE_OK) goto fail;
      }
    } else if (wf->row.status == LODE_WF_ENQUEUED) {
      /* the queue scheduler dequeues through the same path: claim it */
      int changed = 0;
      rc = lode_sysdb_wf_set_status(ex->db, id, LODE_WF_PENDING, 1u << LODE_WF_ENQUEUED,
                                    &changed, err, errlen);
      if (rc != LODE_OK) goto fail;
      int claimed = 0;
      rc = lode_sysdb_wf_claim(ex->db, id, wf->row.executor_id, ex->id, 0, &claimed, err,
                               errlen);
      if (rc != LODE_OK) goto fail;
      /* queued while tracing was off (or by an older lode): traced from here */
      if (ex->tracing && !wf->row.traced) {
        rc = trace_reopen(wf, err, errlen);
        if (rc != LODE_OK) goto fail;
      }
    }
    rc = lode_sysdb_steps_load(ex->db, id, &wf->steps, &wf->nsteps, err, errlen);
    if (rc != LODE_OK) goto fail;
  }
  *wfp = wf;
  return LODE_OK;
fail:
  lode_wf_free(wf);
  return rc;
}

int lode_exec_await(lode_exec *ex, const char *id, lode_wf_outcome *out, char *err,
                    size_t errlen) {
  memset(out, 0, sizeof *out);
  for (;;) {
    int status;
    int rc = lode_sysdb_wf_status(ex->db, id, &status, err, errlen);
    if (rc != LODE_OK) return rc;
    if (lode_wf_status_finished(status)) break;
    lode_sleep_s(0.05);
  }
  lode_wf_row r;
  int rc = lode_sysdb_wf_get(ex->db, id, &r, err, errlen);
  if (rc != LODE_OK) return rc;
  take_outcome(&r, out);
  lode_wf_row_clear(&r);
  return LODE_OK;
}

const char *lode_wf_id(const lode_wf *wf) { return wf->row.id; }
const char *lode_wf_name(const lode_wf *wf) { return wf->row.name; }
const char *lode_wf_trace_id(const lode_wf *wf) { return wf->row.trace_id; }
const char *lode_wf_span_id(const lode_wf *wf) { return wf->row.span_id; }

int lode_wf_progress(lode_wf *wf, const char *json, char *err, size_t errlen) {
  return lode_sysdb_progress_put(wf->ex->db, wf->row.id, json, err, errlen);
}
int lode_wf_resumed(const lode_wf *wf) { return wf->resumed; }
int lode_wf_traced(const lode_wf *wf) { return wf->row.traced; }
int lode_wf_recovery_attempts(const lode_wf *wf) { return wf->row.recovery_attempts; }

void lode_wf_input(const lode_wf *wf, const uint8_t **p, size_t *n) {
  *p = wf->row.input;
  *n = wf->row.input_len;
}

int lode_wf_step_next(lode_wf *wf, const char *name, int64_t *pos, const lode_step_row **rec,
                      char *err, size_t errlen) {
  *rec = NULL;
  *pos = ++wf->pos;
  while (wf->cursor < wf->nsteps && wf->steps[wf->cursor].step_no < *pos) wf->cursor++;
  if (wf->cursor < wf->nsteps && wf->steps[wf->cursor].step_no == *pos) {
    const lode_step_row *r = &wf->steps[wf->cursor++];
    if (strcmp(r->name, name) != 0) {
      snprintf(err, errlen,
               "workflow %s step %lld: recorded '%s' but the pipeline now calls '%s'; the "
               "workflow is not deterministic",
               wf->row.id, (long long)*pos, r->name, name);
      return LODE_ENONDET;
    }
    *rec = r;
    return LODE_OK;
  }
  /* about to run new work: honour a cancel seen by the last checkpoint (the
   * status is read inside each checkpoint's transaction, so this costs no
   * extra query on the hot path) */
  if (wf->cancelled) {
    if (wf->row.deadline_ms && lode_now_ms() >= wf->row.deadline_ms)
      snprintf(err, errlen, "workflow %s was cancelled: it reached its deadline (timeout)",
               wf->row.id);
    else
      snprintf(err, errlen, "workflow %s was cancelled", wf->row.id);
    return LODE_ECANCELLED;
  }
  return lode_wf_check_deadline(wf, err, errlen);
}

static int step_record(lode_wf *wf, const lode_step_row *row, const lode_span_rec *spans,
                       int nspans, char *err, size_t errlen);

/* The step's error is kept cut to LODE_ERROR_MAX_BYTES (its spans' errors
 * are cut where their records are built, src/trace/trace.c). */
int lode_wf_step_record(lode_wf *wf, const lode_step_row *row, const lode_span_rec *spans,
                        int nspans, char *err, size_t errlen) {
  int oom;
  char *cut = lode_error_cut(row->error, LODE_ERROR_MAX_BYTES, &oom);
  if (oom) {
    snprintf(err, errlen, "workflow %s step %lld: out of memory", wf->row.id,
             (long long)row->step_no);
    return LODE_ENOMEM;
  }
  if (!cut) return step_record(wf, row, spans, nspans, err, errlen);
  lode_step_row r = *row;
  r.error = cut;
  int rc = step_record(wf, &r, spans, nspans, err, errlen);
  free(cut);
  return rc;
}

/* One transaction: the checkpoint, and a look at the workflow's status so a
 * cancel from any process stops it before its next step. */
static int step_record(lode_wf *wf, const lode_step_row *row, const lode_span_rec *spans,
                       int nspans, char *err, size_t errlen) {
  lode_sysdb *db = wf->ex->db;
  int status = LODE_WF_PENDING;
  int rc;
  if (nspans == 0 && wf->ex->seen_version && !wf->unsaved) {
    /* The usual checkpoint is one row: one autocommit statement. Then, if
     * anything else was committed since this connection's last checkpoint
     * (the data version moved by more than this commit), the status is read
     * so a cancel from anywhere stops the workflow before its next step. */
    rc = lode_sysdb_step_put(db, wf->row.id, row, err, errlen);
    if (rc != LODE_OK) return rc;
    unsigned v = lode_sysdb_data_version(db);
    if (!v || v != wf->ex->seen_version + 1) {
      rc = lode_sysdb_wf_status(db, wf->row.id, &status, err, errlen);
      if (rc != LODE_OK) return rc;
      v = lode_sysdb_data_version(db);
    }
    wf->ex->seen_version = v;
    if (status == LODE_WF_CANCELLED) wf->cancelled = 1;
    if (row->span_input && wf->ex->tracing) kick(wf->ex);
    return LODE_OK;
  }
  rc = lode_sysdb_begin(db, err, errlen);
  if (rc != LODE_OK) return rc;
  /* nothing committed since this connection's last checkpoint (the data
   * version is unchanged): no one can have cancelled it, skip the read */
  unsigned v = lode_sysdb_data_version(db);
  int look = !v || v != wf->ex->seen_version;
  rc = save_row(wf, err, errlen);
  if (rc == LODE_OK) rc = lode_sysdb_step_put(db, wf->row.id, row, err, errlen);
  if (rc == LODE_OK && look) rc = lode_sysdb_wf_status(db, wf->row.id, &status, err, errlen);
  for (int i = 0; i < nspans && rc == LODE_OK && wf->ex->tracing; i++)
    if (lode_trace_put_span(wf->ex->db, &spans[i], err, errlen) != 0) rc = LODE_EDB;
  if (rc == LODE_OK) rc = lode_sysdb_commit(db, err, errlen);
  if (rc != LODE_OK) {
    lode_sysdb_rollback(db);
    return rc;
  }
  wf->ex->seen_version = lode_sysdb_data_version(db);
  wf->unsaved = 0;
  if (status == LODE_WF_CANCELLED) wf->cancelled = 1;
  if ((nspans || row->span_input) && wf->ex->tracing) kick(wf->ex);
  return LODE_OK;
}

static int wf_finish(lode_wf *wf, int status, const uint8_t *out, size_t out_len,
                     const char *error, const lode_span_extra *extra, lode_wf *parent,
                     const lode_step_row *prow, char *err, size_t errlen);

/* The outcome's error (and its parent's checkpoint's) is kept cut to
 * LODE_ERROR_MAX_BYTES. */
int lode_wf_finish(lode_wf *wf, int status, const uint8_t *out, size_t out_len,
                   const char *error, const lode_span_extra *extra, lode_wf *parent,
                   const lode_step_row *prow, char *err, size_t errlen) {
  int oom1, oom2 = 0;
  char *cut = lode_error_cut(error, LODE_ERROR_MAX_BYTES, &oom1);
  char *pcut = prow ? lode_error_cut(prow->error, LODE_ERROR_MAX_BYTES, &oom2) : NULL;
  int rc;
  if (oom1 || oom2) {
    snprintf(err, errlen, "workflow %s: out of memory", wf->row.id);
    rc = LODE_ENOMEM;
  } else if (pcut) {
    lode_step_row p = *prow;
    p.error = pcut;
    rc = wf_finish(wf, status, out, out_len, cut ? cut : error, extra, parent, &p, err, errlen);
  } else {
    rc = wf_finish(wf, status, out, out_len, cut ? cut : error, extra, parent, prow, err,
                   errlen);
  }
  free(cut);
  free(pcut);
  return rc;
}

static int wf_finish(lode_wf *wf, int status, const uint8_t *out, size_t out_len,
                     const char *error, const lode_span_extra *extra, lode_wf *parent,
                     const lode_step_row *prow, char *err, size_t errlen) {
  lode_exec *ex = wf->ex;
  /* the span's end is this row's outcome; only lode.trace.update values
   * need keeping besides it */
  int traced = ex->tracing && wf->row.traced;
  char *x = traced && extra ? trace_extra_json(wf, extra) : NULL;
  /* With --sync full, the outcome is committed without its own fsync, like
   * the start: it is a function of the checkpoints, which are durable (each
   * step's commit is synced, and WAL frames reach the disk in order, so the
   * next synced commit, or the checkpoint when the database is closed, makes
   * it durable too). A power loss before then leaves the workflow PENDING;
   * recovery replays its recorded steps, runs none of them again and records
   * the same outcome. */
  lode_sysdb_relax_sync(ex->db, 1);
  if (!x && !parent && !wf->unsaved) {
    int rc = lode_sysdb_wf_finish(ex->db, wf->row.id, status, out, out_len, error, err, errlen);
    lode_sysdb_relax_sync(ex->db, 0);
    if (rc == LODE_OK && traced) kick(ex);
    return rc;
  }
  int rc = lode_sysdb_begin(ex->db, err, errlen);
  if (rc == LODE_OK) rc = save_row(wf, err, errlen);
  if (rc == LODE_OK)
    rc = lode_sysdb_wf_finish(ex->db, wf->row.id, status, out, out_len, error, err, errlen);
  /* an inline child's outcome is also its parent's checkpoint: one commit */
  if (rc == LODE_OK && parent) rc = lode_sysdb_step_put(ex->db, parent->row.id, prow, err, errlen);
  if (rc == LODE_OK && x) rc = lode_sysdb_wf_set_trace_extra(ex->db, wf->row.id, x, err, errlen);
  if (rc == LODE_OK) rc = lode_sysdb_commit(ex->db, err, errlen);
  if (rc != LODE_OK) lode_sysdb_rollback(ex->db);
  else wf->unsaved = 0;
  lode_sysdb_relax_sync(ex->db, 0);
  if (rc == LODE_OK && traced) kick(ex);
  free(x);
  return rc;
}

void lode_wf_free(lode_wf *wf) {
  if (!wf) return;
  for (int i = 0; i < wf->ntags; i++) free(wf->tags[i]);
  free(wf->tags);
  free(wf->metadata_json);
  free(wf->phase);
  lode_wf_row_clear(&wf->row);
  lode_step_rows_free(wf->steps, wf->nsteps);
  free(wf);
}

int lode_exec_enqueue(lode_exec *ex, const lode_enqueue_opts *o, char id_out[512], char *err,
                      size_t errlen) {
  if (o->id) lode_strlcpy(id_out, o->id, 512);
  else if (o->parent)
    snprintf(id_out, 512, "%s-%lld", o->parent->row.id, (long long)o->parent_pos);
  else lode_uuid7(id_out);
  lode_wf_row row; /* its span is rendered from this row (render.h) */
  memset(&row, 0, sizeof row);
  char trace_id[37], span_id[37];
  lode_uuid7(span_id);
  if (o->parent && o->parent->row.trace_id) lode_strlcpy(trace_id, o->parent->row.trace_id, 37);
  else lode_uuid7(trace_id);
  lode_wf_row *r = &row;
  r->id = id_out;
  r->name = (char *)o->name;
  r->parent_id = o->parent ? o->parent->row.id : NULL;
  r->parent_step = o->parent_pos;
  r->input = (uint8_t *)o->input;
  r->input_len = o->input_len;
  r->pipeline = ex->pipeline;
  r->version = ex->version;
  r->max_recovery_attempts =
      o->max_recovery_attempts > 0 ? o->max_recovery_attempts : LODE_DEFAULT_MAX_RECOVERY;
  r->trace_id = trace_id;
  r->span_id = span_id;
  r->parent_span_id = o->parent ? o->parent->row.span_id : NULL;
  r->queue = (char *)o->queue;
  r->created_at = lode_now_ms();
  r->deadline_ms = deadline_for(o->timeout_s, o->parent);
  r->traced = ex->tracing; /* its span is rendered from the row */
  int existed = 0;
  int rc = lode_sysdb_begin(ex->db, err, errlen);
  if (rc != LODE_OK) return rc;
  if (o->parent) rc = save_row(o->parent, err, errlen);
  if (rc == LODE_OK)
    rc = lode_sysdb_wf_enqueue(ex->db, r, o->priority, o->dedup_id, &existed, err, errlen);
  if (rc == LODE_OK && o->parent) {
    lode_step_row row;
    memset(&row, 0, sizeof row);
    row.step_no = o->parent_pos;
    row.name = (char *)o->name;
    row.status = LODE_WF_SUCCESS;
    row.attempts = 1;
    row.child_id = id_out;
    row.started_at = row.ended_at = r->created_at;
    rc = lode_sysdb_step_put(ex->db, o->parent->row.id, &row, err, errlen);
  }
  if (rc == LODE_OK) rc = lode_sysdb_commit(ex->db, err, errlen);
  if (rc != LODE_OK) {
    lode_sysdb_rollback(ex->db);
    return rc;
  }
  if (o->parent) o->parent->unsaved = 0;
  if (ex->tracing) kick(ex);
  return LODE_OK;
}
