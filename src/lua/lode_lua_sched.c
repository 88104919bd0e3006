/* lode_lua_sched.c - the per-thread scheduler, queues, handles, durable sleep.
 *
 * Each thread (one lua_State) runs its workflow bodies as coroutines. A body
 * that waits (a handle's result, lode.sleep) yields with its wait condition;
 * the scheduler runs other bodies meanwhile and claims queued workflows when
 * it has nothing ready, so a waiting workflow never holds a worker. Bodies
 * that wait are resumed when their condition holds; a recorded wait is not
 * waited for again on replay. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "lua/lode_lua_codec.h"
#include "lua/lode_lua_internal.h"
#include "lua/lode_lua_workflow.h"

#define HANDLE_MT "lode.handle"
#define QUEUE_MT "lode.queue"
#define SCHED_MT "lode.sched"
#define ERRLEN LODE_LUA_ERRLEN
#define need_exec lode__need_exec
#define START_QUEUE "lode.start" /* lode.start: a queue without limits */

static const char queues_key = 'q'; /* registry: queue name -> queue object */

enum { WAIT_NONE, WAIT_WF, WAIT_TIME };

typedef struct task {
  int ref;     /* registry ref: the body */
  lode_body *body;
  int out_ref; /* registry ref: result or error, once done */
  int main;    /* driven by lode__sched_run_body (not removed when done) */
  int running, done, ok;
  int wait;
  char wait_id[512];
  int64_t wake_at;
  char id[512]; /* the workflow's id */
} task;

typedef struct lode_sched {
  task **v;
  int n, cap;
  task *cur;
  int depth; /* nested passes (a workflow started inside a step) */
  int64_t next_requeue_ms;
  int64_t next_claim_ms; /* while the state database is not writable */
  /* ids whose release failed (a full disk): still PENDING under this live
   * executor, where requeue_dead never looks; retried at each claim pass */
  char **unreleased;
  int n_unreleased, cap_unreleased;
  int claim_backoff_ms;
} lode_sched;

static int sched_gc(lua_State *L) {
  lode_sched *s = luaL_checkudata(L, 1, SCHED_MT);
  for (int i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  s->v = NULL;
  s->n = s->cap = 0;
  for (int i = 0; i < s->n_unreleased; i++) free(s->unreleased[i]);
  free(s->unreleased);
  s->unreleased = NULL;
  s->n_unreleased = s->cap_unreleased = 0;
  return 0;
}

static lode_sched *get_sched(lua_State *L) {
  host *h = lode__host(L);
  if (h->sched) return h->sched;
  lode_sched *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  if (luaL_newmetatable(L, SCHED_MT)) {
    lua_pushcfunction(L, sched_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &h->sched); /* anchored for the state's life */
  h->sched = s;
  return s;
}

#define MAX_UNRELEASED 4096 /* past it, the next process's requeue_dead takes them */

/* Puts workflow id, claimed by this executor and still PENDING, back on its
 * queue (a no-op for a row in any other state). A release is a write: when
 * it fails the id is kept and retried by retry_releases. Returns the
 * status. */
static int release(lode_sched *s, lode_exec *ex, const char *id) {
  char err[ERRLEN];
  int rc = lode_sysdb_release(lode_exec_db(ex), lode_exec_id(ex), id, err, sizeof err);
  if (rc == LODE_OK) return rc;
  for (int i = 0; i < s->n_unreleased; i++)
    if (!strcmp(s->unreleased[i], id)) return rc;
  if (s->n_unreleased == s->cap_unreleased) {
    int cap = s->cap_unreleased ? s->cap_unreleased * 2 : 16;
    char **v = cap <= MAX_UNRELEASED ? realloc(s->unreleased, (size_t)cap * sizeof *v) : NULL;
    if (!v) {
      lode_warn("workflow %s could not be put back on its queue (%s); the next process "
                "recovers it", id, err);
      return rc;
    }
    s->unreleased = v;
    s->cap_unreleased = cap;
  }
  char *dup = strdup(id);
  if (!dup) return rc;
  s->unreleased[s->n_unreleased++] = dup;
  lode_debug("workflow %s not put back on its queue yet: %s", id, err);
  return rc;
}

/* Retries the releases that failed; stops at the first failure (the
 * database is still not writable). */
static void retry_releases(lode_sched *s, lode_exec *ex) {
  char err[ERRLEN];
  while (s->n_unreleased > 0) {
    char *id = s->unreleased[s->n_unreleased - 1];
    if (lode_sysdb_release(lode_exec_db(ex), lode_exec_id(ex), id, err, sizeof err) != LODE_OK)
      return;
    free(id);
    s->n_unreleased--;
  }
}

static task *add_task(lua_State *L, int body_idx, const char *id, int main) {
  lode_sched *s = get_sched(L);
  if (s->n == s->cap) {
    int cap = s->cap ? s->cap * 2 : 16;
    task **v = realloc(s->v, (size_t)cap * sizeof *v);
    if (!v) luaL_error(L, "out of memory");
    s->v = v;
    s->cap = cap;
  }
  task *t = calloc(1, sizeof *t);
  if (!t) luaL_error(L, "out of memory");
  lua_pushvalue(L, body_idx);
  t->body = lua_touserdata(L, -1);
  t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->out_ref = LUA_NOREF;
  t->main = main;
  lode_strlcpy(t->id, id ? id : "", sizeof t->id);
  s->v[s->n++] = t;
  return t;
}

static void drop_done(lua_State *L, lode_sched *s) {
  if (s->depth > 0) return; /* an outer pass is iterating */
  int k = 0;
  for (int i = 0; i < s->n; i++) {
    task *t = s->v[i];
    if (t->done && !t->main) {
      luaL_unref(L, LUA_REGISTRYINDEX, t->out_ref);
      free(t);
    } else {
      s->v[k++] = t;
    }
  }
  s->n = k;
}

void lode__sched_wait_for_workflow(lua_State *L, const char *id) {
  lode_sched *s = get_sched(L);
  if (!s->cur) return;
  s->cur->wait = WAIT_WF;
  lode_strlcpy(s->cur->wait_id, id, sizeof s->cur->wait_id);
}

void lode__sched_wait_until(lua_State *L, int64_t wake_ms) {
  lode_sched *s = get_sched(L);
  if (!s->cur) return;
  s->cur->wait = WAIT_TIME;
  s->cur->wake_at = wake_ms;
}

int lode__sched_in_task(lua_State *L) {
  host *h = lode__host(L);
  return get_sched(L)->cur != NULL && h->current != NULL && !h->in_step &&
         lua_isyieldable(L);
}

static int ready(lua_State *L, task *t) {
  if (t->done || t->running) return 0;
  if (t->wait == WAIT_NONE) return 1;
  if (t->body && t->body->wf && lode_wf_deadline(t->body->wf) &&
      lode_now_ms() >= lode_wf_deadline(t->body->wf))
    return 1; /* its deadline passed: resume it so it is cancelled */
  if (t->wait == WAIT_TIME) return lode_now_ms() >= t->wake_at;
  char err[256];
  lode_exec *ex = lode_host_exec(L, err, sizeof err);
  int st;
  if (!ex || lode_sysdb_wf_status(lode_exec_db(ex), t->wait_id, &st, err, sizeof err) != LODE_OK)
    return 1; /* let the waiter see the problem */
  return lode_wf_status_finished(st);
}

static void run_task(lua_State *L, lode_sched *s, task *t) {
  task *prev = s->cur;
  s->cur = t;
  t->running = 1;
  t->wait = WAIT_NONE;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
  int r = lode__body_run(L, lua_gettop(L));
  t->running = 0;
  s->cur = prev;
  if (r == LODE_BODY_YIELD) {
    lua_pop(L, 1);
    return;
  }
  /* [.., body, result-or-error] */
  t->done = 1;
  t->ok = r == LODE_BODY_OK;
  if (!t->ok && !t->main && t->body && t->body->abandoned) {
    /* failed for lack of space (or an I/O error) in the state database:
     * back on its queue, to be tried again (claim's back-off) or taken by a
     * later run */
    char err[ERRLEN];
    lode_exec *ex = lode_host_exec(L, err, sizeof err);
    if (ex) release(s, ex, t->id);
    lode_debug("workflow %s put back on its queue: %s", t->id, lua_tostring(L, -1));
  }
  if (!t->ok && !t->main)
    lode_debug("workflow %s failed: %s", t->id, lua_tostring(L, -1));
  t->out_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
  t->ref = LUA_NOREF;
  t->body = NULL;
}

/* ---- claiming queued work ---------------------------------------------------- */

static void queue_limits(lua_State *L, int q, lode_queue_limits *lim) {
  memset(lim, 0, sizeof *lim);
  lua_getfield(L, q, "name");
  lim->name = lua_tostring(L, -1); /* anchored by the queue object */
  lua_pop(L, 1);
  lua_getfield(L, q, "opts");
  int o = lua_gettop(L);
  lua_getfield(L, o, "concurrency");
  lim->concurrency = (int)lua_tointeger(L, -1);
  lua_getfield(L, o, "worker_concurrency");
  lim->worker_concurrency = (int)lua_tointeger(L, -1);
  lua_getfield(L, o, "priority");
  lim->priority = lua_toboolean(L, -1);
  lua_getfield(L, o, "limiter");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "limit");
    lim->limit = (int)lua_tointeger(L, -1);
    lua_getfield(L, -2, "period");
    lim->period_s = lua_tonumber(L, -1);
    lua_pop(L, 2);
  }
  lua_settop(L, o - 1);
}

/* Starts a claimed (PENDING, ours) workflow as a task. */
static int start_claimed(lua_State *L, const char *id) {
  char err[ERRLEN];
  lode_exec *ex = lode_host_exec(L, err, sizeof err);
  if (!ex) return 0;
  lode_wf_row r;
  int grc = lode_sysdb_wf_get(lode_exec_db(ex), id, &r, err, sizeof err);
  if (grc != LODE_OK) {
    lode_warn("workflow %s: %s; put back on its queue", id, err);
    release(get_sched(L), ex, id);
    return 0;
  }
  lode_lua_push_workflow(L, r.name);
  if (lua_isnil(L, -1)) {
    lode_warn("workflow %s: this pipeline declares no workflow '%s'; released", id, r.name);
    lua_pop(L, 1);
    release(get_sched(L), ex, id);
    lode_wf_row_clear(&r);
    return 0;
  }
  lode_wf_row_clear(&r);
  int status;
  lode__host(L)->begin_rc = LODE_OK;
  int b = lode__begin_body(L, lua_gettop(L), id, NULL, 0, 0, 0, 1, &status);
  int brc = lode__host(L)->begin_rc;
  if (b == 1) add_task(L, lua_gettop(L), id, 0);
  else if (b < 0) lode_warn("workflow %s: %s", id, lua_tostring(L, -1));
  if (b < 0 && brc != LODE_OK)
    /* claimed but its begin failed, whatever the status (a full disk, an
     * I/O error, a lock wait that ran out): back on its queue (issue 17),
     * not left PENDING under this live process where nothing would run it;
     * a no-op if the row is no longer PENDING. Not for input that cannot
     * be decoded (begin_rc stays LODE_OK): it would fail the same way at
     * every claim, so it stays PENDING for the next process's recovery. */
    release(get_sched(L), ex, id);
  lua_pop(L, 2); /* object, body or outcome */
  return b == 1;
}

/* ---- a state database that cannot be written ------------------------------- */

/* How long a full (or failing) state database is waited for: the
 * environment's LODE_STATE_RETRY_S, else 30 s (docs/operations.md). */
static double state_retry_s(void) {
  const char *v = getenv("LODE_STATE_RETRY_S");
  double d = v && *v ? strtod(v, NULL) : 0;
  return d > 0 ? d : 30.0;
}

static atomic_int announced; /* the message is printed once per process */

/* While the state database cannot be written: announces it (once: a disk
 * that fills, frees a little and fills again would otherwise repeat it at
 * every checkpoint) and returns 1 (0 when it is fine). */
static int state_fault(void) {
  int st;
  char path[1024];
  int64_t since = lode_sysdb_fault(&st, path, sizeof path, NULL);
  if (!since) return 0;
  int prev = 0;
  if (atomic_compare_exchange_strong(&announced, &prev, 1))
    lode_warn("state database %s: %s; retrying for up to %g s (free space to let the run go "
              "on; nothing recorded is lost)",
              path, st == LODE_EFULL ? "disk full (or its size limit reached)" : "I/O error",
              state_retry_s());
  return 1;
}

int lode__state_gave_up(char *msg, size_t n) {
  int st;
  char path[1024];
  int64_t last;
  int64_t since = lode_sysdb_fault(&st, path, sizeof path, &last);
  double limit = state_retry_s();
  /* writes must still fail at the end of the period, not only at its
   * start: an idle worker, or a run whose workflow sleeps, whose last
   * failed write was long ago has nothing failing (review9 1a) */
  if (!since || (double)(last - since) < limit * 1000.0) return 0;
  snprintf(msg, n,
           "state database %s: %s for %g s; giving up. Free space (or check the disk) and run "
           "again: nothing recorded is lost, and the workflows this run had not finished were "
           "put back on their queues or are recovered by the next run",
           path, st == LODE_EFULL ? "disk full (or its size limit reached)" : "I/O errors",
           limit);
  return 1;
}

static int claim(lua_State *L, int max_n) {
  char err[ERRLEN];
  lode_exec *ex = lode_host_exec(L, err, sizeof err);
  if (!ex) return 0;
  lode_sched *s = get_sched(L);
  int64_t now = lode_now_ms();
  if (state_fault()) {
    /* claims are the retries (released work runs again): backed off, and
     * none once this run gives up */
    char msg[8];
    if (lode__state_gave_up(msg, sizeof msg) || now < s->next_claim_ms) return 0;
    s->claim_backoff_ms = s->claim_backoff_ms ? s->claim_backoff_ms * 2 : 100;
    if (s->claim_backoff_ms > 2000) s->claim_backoff_ms = 2000;
    s->next_claim_ms = now + s->claim_backoff_ms;
  } else {
    s->claim_backoff_ms = 0;
  }
  retry_releases(s, ex);
  if (now >= s->next_requeue_ms) {
    /* queued work of processes that died goes back to its queue */
    lode_sysdb_requeue_dead(lode_exec_db(ex), err, sizeof err);
    s->next_requeue_ms = now + 1000;
  }
  int started = 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &queues_key);
  int qs = lua_gettop(L);
  lua_pushnil(L);
  while (started < max_n && lua_next(L, qs)) {
    lode_queue_limits lim;
    queue_limits(L, lua_gettop(L), &lim);
    char **ids;
    int n;
    if (lode_sysdb_queue_claim(lode_exec_db(ex), &lim, lode_exec_id(ex), max_n - started, &ids,
                               &n, err, sizeof err) == LODE_OK) {
      for (int i = 0; i < n; i++) {
        started += start_claimed(L, ids[i]);
        free(ids[i]);
      }
      free(ids);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, qs - 1);
  return started;
}

int lode__sched_pass(lua_State *L, int do_claim) {
  lode_sched *s = get_sched(L);
  s->depth++;
  int progress = 0;
  for (int i = 0; i < s->n; i++) {
    task *t = s->v[i];
    if (!ready(L, t)) continue;
    run_task(L, s, t);
    progress++;
  }
  s->depth--;
  if (do_claim && progress == 0) progress += claim(L, 8);
  drop_done(L, s);
  return progress;
}

int lode__sched_run_body(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lode_body *b = lua_touserdata(L, idx);
  task *t = add_task(L, idx, b && b->wf ? lode_wf_id(b->wf) : "", 1);
  int idle = 0;
  while (!t->done) {
    int p = lode__sched_pass(L, 1);
    if (t->done) break;
    char msg[2048];
    if (state_fault() && lode__state_gave_up(msg, sizeof msg)) {
      /* the run ends: what this thread holds goes back to its queues; the
       * body is left PENDING (recovered by the next run) */
      lode__sched_release(L);
      for (int i = 0; i < get_sched(L)->n; i++)
        if (get_sched(L)->v[i] == t) {
          memmove(&get_sched(L)->v[i], &get_sched(L)->v[i + 1],
                  (size_t)(get_sched(L)->n - i - 1) * sizeof *get_sched(L)->v);
          get_sched(L)->n--;
          break;
        }
      luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
      free(t);
      lua_pushstring(L, msg);
      return LODE_BODY_ERR;
    }
    if (p == 0) {
      /* nothing ready: back off a little (bounded) */
      lode_sleep_s(idle < 10 ? 0.001 : 0.005);
      idle++;
    } else {
      idle = 0;
    }
  }
  lode_sched *s = get_sched(L);
  for (int i = 0; i < s->n; i++)
    if (s->v[i] == t) {
      memmove(&s->v[i], &s->v[i + 1], (size_t)(s->n - i - 1) * sizeof *s->v);
      s->n--;
      break;
    }
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->out_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, t->out_ref);
  int ok = t->ok;
  free(t);
  return ok ? LODE_BODY_OK : LODE_BODY_ERR;
}

int lode__sched_release(lua_State *L) {
  lode_sched *s = get_sched(L);
  char err[ERRLEN];
  lode_exec *ex = lode_host_exec(L, err, sizeof err);
  int n = 0;
  if (ex) retry_releases(s, ex);
  for (int i = 0; i < s->n; i++) {
    task *t = s->v[i];
    /* a running task (the one whose step reached this nested give-up, and
     * every task below it on the C stack: s->cur's chain) still has its body
     * on the stack: releasing it would let another process run it while it
     * still runs here. It ends through its own failure path. */
    if (t->done || t->main || t->running || !ex) continue;
    if (release(s, ex, t->id) == LODE_OK) n++;
    t->done = 1;
    luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
    t->ref = LUA_NOREF;
  }
  drop_done(L, s);
  return n;
}

/* ---- handles ----------------------------------------------------------------- */

typedef struct handle {
  char id[512];
} handle;

static void push_handle(lua_State *L, const char *id) {
  handle *h = lua_newuserdatauv(L, sizeof *h, 0);
  lode_strlcpy(h->id, id, sizeof h->id);
  luaL_setmetatable(L, HANDLE_MT);
}

static int h_status(lua_State *L) {
  handle *h = luaL_checkudata(L, 1, HANDLE_MT);
  char err[ERRLEN];
  int st;
  if (lode_sysdb_wf_status(lode_exec_db(need_exec(L)), h->id, &st, err, sizeof err) != LODE_OK)
    return luaL_error(L, "%s", err);
  lua_pushstring(L, lode_wf_status_name(st));
  return 1;
}

/* Pushes the finished workflow's result, or its error (returns -1). */
static int push_result(lua_State *L, const char *id, lode_wf_outcome *o) {
  char err[ERRLEN];
  if (o->status == LODE_WF_SUCCESS) {
    if (!o->output) lua_pushnil(L);
    else if (lode_lua_decode(L, o->output, o->output_len, err, sizeof err)) {
      lua_pushfstring(L, "workflow %s: result cannot be read: %s", id, err);
      return -1;
    }
    return 0;
  }
  if (o->status == LODE_WF_ERROR && o->error) /* as an inline call raises it */
    lua_pushstring(L, o->error);
  else
    lua_pushfstring(L, "workflow %s %s: %s", id, lode_wf_status_name(o->status),
                    o->error ? o->error : "failed");
  return -1;
}

static int outcome_of(lua_State *L, const char *id, lode_wf_outcome *o) {
  char err[ERRLEN];
  lode_exec *ex = need_exec(L);
  lode_wf_row r;
  if (lode_sysdb_wf_get(lode_exec_db(ex), id, &r, err, sizeof err) != LODE_OK)
    return luaL_error(L, "%s", err);
  int st = r.status;
  memset(o, 0, sizeof *o);
  o->status = st;
  o->output = r.output;
  o->output_len = r.output_len;
  o->error = r.error;
  r.output = NULL;
  r.error = NULL;
  lode_wf_row_clear(&r);
  return lode_wf_status_finished(st);
}

/* In a workflow: [h, pos]; the wait is recorded as a step 'lode.result'. */
static int result_cont(lua_State *L, int st, lua_KContext ctx) {
  (void)st;
  (void)ctx;
  handle *h = luaL_checkudata(L, 1, HANDLE_MT);
  int64_t pos = lua_tointeger(L, 2);
  char derr[ERRLEN];
  if (lode_wf_check_deadline(lode__host(L)->current, derr, sizeof derr) != LODE_OK)
    return lode__raise_fail(L, derr);
  lode_wf_outcome o;
  if (!outcome_of(L, h->id, &o)) {
    lode_wf_outcome_clear(&o);
    lode__sched_wait_for_workflow(L, h->id);
    return lua_yieldk(L, 0, 0, result_cont);
  }
  int bad = push_result(L, h->id, &o);
  lode_wf_outcome_clear(&o);
  char err[ERRLEN];
  int rc = lode__record_top(L, lode__host(L)->current, pos, "lode.result", !bad, h->id, 0, err,
                           sizeof err);
  if (rc != LODE_OK) return luaL_error(L, "%s", err);
  if (bad) return lua_error(L);
  return 1;
}

static int h_result(lua_State *L) {
  handle *h = luaL_checkudata(L, 1, HANDLE_MT);
  lua_settop(L, 1);
  host *hs = lode__host(L);
  if (hs->current && !hs->in_step) {
    if (!lode__sched_in_task(L))
      return luaL_error(L, "h:result() cannot wait here (inside a coroutine of your own?)");
    char err[ERRLEN];
    int64_t pos;
    const lode_step_row *rec;
    int nrc = lode_wf_step_next(hs->current, "lode.result", &pos, &rec, err, sizeof err);
    if (nrc != LODE_OK)
      return nrc == LODE_ECANCELLED ? lode__raise_fail(L, err) : luaL_error(L, "%s", err);
    if (rec) { /* recorded: the wait is not repeated */
      if (rec->status != LODE_WF_SUCCESS) {
        lua_pushstring(L, rec->error ? rec->error : "failed");
        return lua_error(L);
      }
      if (!rec->output) return lua_pushnil(L), 1;
      if (lode_lua_decode(L, rec->output, rec->output_len, err, sizeof err))
        return luaL_error(L, "recorded result cannot be read: %s", err);
      return 1;
    }
    lua_pushinteger(L, pos);
    return result_cont(L, LUA_OK, 0);
  }
  /* outside a workflow: run this thread's scheduler until it has finished */
  for (int idle = 0;;) {
    lode_wf_outcome o;
    if (outcome_of(L, h->id, &o)) {
      int bad = push_result(L, h->id, &o);
      lode_wf_outcome_clear(&o);
      if (bad) return lua_error(L);
      return 1;
    }
    lode_wf_outcome_clear(&o);
    if (lode__sched_pass(L, 1) == 0) lode_sleep_s(idle++ < 10 ? 0.001 : 0.005);
  }
}

static int h_index(lua_State *L) {
  handle *h = luaL_checkudata(L, 1, HANDLE_MT);
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "id")) lua_pushstring(L, h->id);
  else if (!strcmp(k, "status")) lua_pushcfunction(L, h_status);
  else if (!strcmp(k, "result")) lua_pushcfunction(L, h_result);
  else lua_pushnil(L);
  return 1;
}

static int h_tostring(lua_State *L) {
  handle *h = luaL_checkudata(L, 1, HANDLE_MT);
  lua_pushfstring(L, "lode.handle(%s)", h->id);
  return 1;
}

/* ---- enqueue / start --------------------------------------------------------- */

/* q:enqueue(wf, ...) or q:enqueue({ workflow = wf, id =, priority =, dedup_id = }, ...) */
static const lode_opt enqueue_spec[] = {{"workflow", LODE_OPT_TABLE, NULL},
                                        {"id", LODE_OPT_STRING, NULL},
                                        {"priority", LODE_OPT_POS_INT, NULL},
                                        {"dedup_id", LODE_OPT_STRING, NULL},
                                        {NULL, 0, NULL}};
static int enqueue(lua_State *L, const char *queue, int wf_arg, int priority_on) {
  int nargs = lua_gettop(L) - wf_arg;
  const char *id = NULL, *dedup = NULL;
  int priority = 0;
  int obj = wf_arg;
  if (!lode_lua_is_workflow(L, wf_arg)) {
    if (lua_istable(L, wf_arg)) {
      lode__check_opts(L, wf_arg, "enqueue on queue", queue, enqueue_spec);
      lua_getfield(L, wf_arg, "workflow");
      obj = lua_gettop(L);
      lua_getfield(L, wf_arg, "id");
      id = lua_tostring(L, -1);
      lua_getfield(L, wf_arg, "dedup_id");
      dedup = lua_tostring(L, -1);
      lua_getfield(L, wf_arg, "priority");
      priority = (int)lua_tointeger(L, -1);
    }
    if (!lode_lua_is_workflow(L, obj))
      return luaL_argerror(L, wf_arg, "expected a workflow or { workflow = wf, id =, priority "
                                      "=, dedup_id = }");
  }
  if (priority && !priority_on)
    return luaL_error(L, "queue '%s' was declared without priority = true; a priority cannot "
                         "be given", queue);
  if (priority < 0) return luaL_error(L, "priority must be >= 1 (lower runs first)");
  const char *name = lua_tostring(L, -1); /* pushed by lode_lua_is_workflow */
  int name_idx = lua_gettop(L);
  host *hs = lode__host(L);
  lode_wf *parent = hs->in_step ? NULL : hs->current;
  char err[ERRLEN];
  int64_t pos = 0;
  if (parent) {
    const lode_step_row *rec;
    int nrc = lode_wf_step_next(parent, name, &pos, &rec, err, sizeof err);
    if (nrc != LODE_OK)
      return nrc == LODE_ECANCELLED ? lode__raise_fail(L, err) : luaL_error(L, "%s", err);
    if (rec) {
      if (rec->status != LODE_WF_SUCCESS || !rec->child_id) {
        lua_pushstring(L, rec->error ? rec->error : "enqueue failed");
        return lua_error(L);
      }
      push_handle(L, rec->child_id);
      return 1;
    }
  }
  lode_exec *ex = need_exec(L); /* may raise: before the input is encoded */
  lua_getfield(L, obj, "opts");
  lua_getfield(L, -1, "timeout");
  double timeout_s = lua_tonumber(L, -1);
  lua_pop(L, 2);
  lode_buf in;
  lode_buf_init(&in, 0);
  if (lode_lua_encode_args(L, wf_arg + 1, nargs, &in, err, sizeof err)) {
    lode_buf_free(&in);
    lua_pushfstring(L, "workflow '%s' input: %s", name, err);
    return lua_error(L);
  }
  lode_enqueue_opts eo;
  memset(&eo, 0, sizeof eo);
  eo.id = id;
  eo.name = name;
  eo.input = in.p;
  eo.input_len = in.len;
  eo.queue = queue;
  eo.priority = priority;
  eo.dedup_id = dedup;
  eo.parent = parent;
  eo.parent_pos = pos;
  eo.timeout_s = timeout_s;
  char out_id[512];
  int rc = lode_exec_enqueue(ex, &eo, out_id, err, sizeof err);
  lode_buf_free(&in);
  (void)name_idx;
  if (rc != LODE_OK) return luaL_error(L, "%s", err);
  push_handle(L, out_id);
  return 1;
}

static int q_enqueue(lua_State *L) {
  luaL_checkudata(L, 1, QUEUE_MT);
  lua_getiuservalue(L, 1, 1); /* the queue's table */
  lua_getfield(L, -1, "name");
  char qname[256];
  lode_strlcpy(qname, lua_tostring(L, -1), sizeof qname);
  lua_getfield(L, -2, "opts");
  lua_getfield(L, -1, "priority");
  int prio = lua_toboolean(L, -1);
  lua_pop(L, 4);
  return enqueue(L, qname, 2, prio);
}

static int l_start(lua_State *L) { return enqueue(L, START_QUEUE, 1, 0); }

static int q_index(lua_State *L) {
  luaL_checkudata(L, 1, QUEUE_MT);
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "enqueue")) {
    lua_pushcfunction(L, q_enqueue);
    return 1;
  }
  lua_getiuservalue(L, 1, 1);
  lua_getfield(L, -1, k);
  return 1;
}

static const lode_opt limiter_spec[] = {{"limit", LODE_OPT_POS_INT, NULL},
                                        {"period", LODE_OPT_POS_NUMBER, NULL},
                                        {NULL, 0, NULL}};
static const lode_opt queue_spec[] = {{"concurrency", LODE_OPT_POS_INT, NULL},
                                      {"worker_concurrency", LODE_OPT_POS_INT, NULL},
                                      {"limiter", LODE_OPT_TABLE, limiter_spec},
                                      {"priority", LODE_OPT_BOOLEAN, NULL},
                                      {NULL, 0, NULL}};

/* lode.queue(name, { concurrency, worker_concurrency, limiter = { limit, period },
 * priority = true }) */
static int l_queue(lua_State *L) {
  size_t n;
  const char *name = luaL_checklstring(L, 1, &n);
  if (n == 0 || n > 200)
    return luaL_error(L, "lode.queue: a queue name must be 1 to 200 characters, got '%s'", name);
  lode__check_declare(L, "lode.queue", name);
  lode__check_opts(L, 2, "lode.queue", name, queue_spec);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  lua_settop(L, 2);
  lua_getfield(L, 2, "limiter");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "period");
    if (lua_isnil(L, -1))
      return luaL_error(L, "lode.queue '%s': option 'limiter.period' is required (a number of "
                           "seconds > 0)", name);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &queues_key);
  if (lua_getfield(L, -1, name) != LUA_TNIL && strcmp(name, START_QUEUE) != 0)
    return luaL_error(L, "queue '%s' is declared twice", name);
  lua_pop(L, 1);
  lua_newuserdatauv(L, 0, 1);
  luaL_setmetatable(L, QUEUE_MT);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "name");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "opts");
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name);
  return 1;
}

/* ---- lode.sleep --------------------------------------------------------------- */

/* A durable sleep is a span "lode.sleep" under its workflow's span, written
 * when it wakes: its planned wake-up and the real one (metadata
 * planned_wake_ms, woke_ms, late_ms). A replayed sleep whose wake-up had
 * already passed adds none (its span was written by the run that slept). */
static void sleep_span(lua_State *L, int64_t started, int64_t planned, double secs) {
  host *hs = lode__host(L);
  if (!hs->ex || !lode_exec_tracing(hs->ex) || !lode_wf_trace_id(hs->current)) return;
  char id[37], in[64], meta[160], err[256];
  int64_t now = lode_now_ms();
  lode_uuid7(id);
  snprintf(in, sizeof in, "{\"seconds\":%.3f}", secs);
  snprintf(meta, sizeof meta, "{\"planned_wake_ms\":%lld,\"woke_ms\":%lld,\"late_ms\":%lld}",
           (long long)planned, (long long)now, (long long)(now - planned));
  lode_span_rec sp;
  memset(&sp, 0, sizeof sp);
  sp.id = id;
  sp.trace_id = lode_wf_trace_id(hs->current);
  sp.parent_span_id = lode_wf_span_id(hs->current);
  sp.name = "lode.sleep";
  sp.type = "general";
  sp.start_ms = started;
  sp.end_ms = now;
  sp.input_json = in;
  sp.metadata_json = meta;
  if (lode_exec_trace_write(hs->ex, NULL, &sp, 1, err, sizeof err) != LODE_OK)
    lode_warn("lode.sleep: its span is not recorded: %s", err);
}

/* Stack: [secs, started_ms, write_span] */
static int sleep_cont(lua_State *L, int st, lua_KContext ctx) {
  (void)st;
  int64_t wake = (int64_t)ctx;
  char derr[ERRLEN];
  if (lode_wf_check_deadline(lode__host(L)->current, derr, sizeof derr) != LODE_OK)
    return lode__raise_fail(L, derr);
  if (lode_now_ms() < wake) {
    lua_pushboolean(L, 1);
    lua_replace(L, 3); /* it waits in this process: its span is ours to write */
    lode__sched_wait_until(L, wake);
    return lua_yieldk(L, 0, ctx, sleep_cont);
  }
  if (lua_toboolean(L, 3))
    sleep_span(L, (int64_t)lua_tointeger(L, 2), wake, lua_tonumber(L, 1));
  return 0;
}

/* The wake-up time is recorded: after a restart only what remains is slept,
 * and nothing once it has passed. */
static int l_sleep(lua_State *L) {
  double secs = luaL_checknumber(L, 1);
  host *hs = lode__host(L);
  if (!hs->current || hs->in_step || !lode__sched_in_task(L)) {
    lode_sleep_s(secs);
    return 0;
  }
  lua_settop(L, 1);
  char err[ERRLEN];
  int64_t pos;
  const lode_step_row *rec;
  int nrc = lode_wf_step_next(hs->current, "lode.sleep", &pos, &rec, err, sizeof err);
  if (nrc != LODE_OK)
    return nrc == LODE_ECANCELLED ? lode__raise_fail(L, err) : luaL_error(L, "%s", err);
  int64_t wake, started;
  if (rec) {
    if (!rec->output || lode_lua_decode(L, rec->output, rec->output_len, err, sizeof err))
      return luaL_error(L, "recorded sleep cannot be read");
    wake = (int64_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    started = rec->started_at ? rec->started_at : wake;
  } else {
    started = lode_now_ms();
    wake = started + (int64_t)(secs * 1000.0);
    lua_pushinteger(L, wake);
    int rc = lode__record_top(L, hs->current, pos, "lode.sleep", 1, NULL, 0, err, sizeof err);
    lua_pop(L, 1);
    if (rc != LODE_OK) return luaL_error(L, "%s", err);
  }
  lua_pushinteger(L, (lua_Integer)started); /* [secs, started] */
  lua_pushboolean(L, !rec);                 /* [secs, started, write_span] */
  return sleep_cont(L, LUA_OK, (lua_KContext)wake);
}

static const luaL_Reg api[] = {
    {"queue", l_queue}, {"start", l_start}, {"sleep", l_sleep}, {NULL, NULL}};

void lode_lua_open_sched(lua_State *L) {
  if (luaL_newmetatable(L, HANDLE_MT)) {
    lua_pushcfunction(L, h_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, h_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, QUEUE_MT)) {
    lua_pushcfunction(L, q_index);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &queues_key);
  if (lua_isnil(L, -1)) {
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &queues_key);
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, api, 0);
  /* the queue lode.start uses: no limits */
  lua_pushcfunction(L, l_queue);
  lua_pushliteral(L, START_QUEUE);
  lua_call(L, 1, 0);
}
