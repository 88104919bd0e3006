/* executor.c - durable workflows and steps. See executor.h. */
#include "core/executor.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/util.h"

struct lode_exec {
  lode_sysdb *db;
  char id[37];
  char *pipeline, *version;
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
};

void lode_test_crash_point(const char *step_name) {
#ifdef LODE_TEST_HOOKS
  static int count;
  const char *spec = getenv("LODE_TEST_CRASH_AT");
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

int lode_exec_open(const lode_exec_opts *o, lode_exec **out, char *err, size_t errlen) {
  *out = NULL;
  lode_exec *ex = calloc(1, sizeof *ex);
  if (!ex) {
    snprintf(err, errlen, "out of memory");
    return LODE_ENOMEM;
  }
  int rc = lode_sysdb_open(o->db_path, o->sync_full, &ex->db, err, errlen);
  if (rc != LODE_OK) goto done;
  lode_uuid7(ex->id);
  rc = lode_sysdb_executor_register(ex->db, ex->id, err, errlen);
  if (rc != LODE_OK) goto done;
  if (o->pipeline) ex->pipeline = strdup(o->pipeline);
  if (o->version) ex->version = strdup(o->version);
done:
  if (rc != LODE_OK) {
    lode_sysdb_close(ex->db);
    free(ex);
    return rc;
  }
  *out = ex;
  return LODE_OK;
}

void lode_exec_close(lode_exec *ex) {
  if (!ex) return;
  lode_sysdb_executor_unregister(ex->db, ex->id);
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

static int finished(int status) {
  return status == LODE_WF_SUCCESS || status == LODE_WF_ERROR || status == LODE_WF_CANCELLED ||
         status == LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED;
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
  if (s->parent) lode_strlcpy(trace_id, s->parent->row.trace_id ? s->parent->row.trace_id : span_id, sizeof trace_id);
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
  nr.parent_span_id = s->parent ? s->parent->row.span_id : NULL;
  int existed = 0;
  int rc = lode_sysdb_wf_insert(ex->db, &nr, &existed, err, errlen);
  if (rc != LODE_OK) return rc;

  lode_wf *wf = calloc(1, sizeof *wf);
  if (!wf) {
    snprintf(err, errlen, "out of memory");
    return LODE_ENOMEM;
  }
  wf->ex = ex;
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
    if (finished(wf->row.status)) {
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
        lode_sysdb_wf_set_status(ex->db, id, LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED,
                                 1u << LODE_WF_PENDING, &changed, err, errlen);
        lode_warn("workflow %s (%s) exceeded its %d recovery attempts; marked "
                  "MAX_RECOVERY_ATTEMPTS_EXCEEDED (resume it with: lode workflow resume %s)",
                  id, wf->row.name, wf->row.max_recovery_attempts, id);
        wf->row.status = LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED;
        take_outcome(&wf->row, done);
        lode_wf_free(wf);
        return LODE_OK;
      }
      wf->resumed = 1;
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
    if (finished(status)) break;
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
int lode_wf_resumed(const lode_wf *wf) { return wf->resumed; }

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
  /* about to run new work: honour a cancel from anywhere */
  int status = LODE_WF_PENDING;
  int rc = lode_sysdb_wf_status(wf->ex->db, wf->row.id, &status, err, errlen);
  if (rc != LODE_OK) return rc;
  if (status == LODE_WF_CANCELLED) {
    wf->cancelled = 1;
    snprintf(err, errlen, "workflow %s was cancelled", wf->row.id);
    return LODE_ECANCELLED;
  }
  return LODE_OK;
}

int lode_wf_step_record(lode_wf *wf, const lode_step_row *row, char *err, size_t errlen) {
  return lode_sysdb_step_put(wf->ex->db, wf->row.id, row, err, errlen);
}

int lode_wf_finish(lode_wf *wf, int status, const uint8_t *out, size_t out_len,
                   const char *error, char *err, size_t errlen) {
  return lode_sysdb_wf_finish(wf->ex->db, wf->row.id, status, out, out_len, error, err, errlen);
}

void lode_wf_free(lode_wf *wf) {
  if (!wf) return;
  lode_wf_row_clear(&wf->row);
  lode_step_rows_free(wf->steps, wf->nsteps);
  free(wf);
}
