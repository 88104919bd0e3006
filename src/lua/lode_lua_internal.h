#ifndef LODE_LUA_INTERNAL_H
#define LODE_LUA_INTERNAL_H
/* lode_lua_internal.h - what the workflow, scheduler and trace faces share.
 * Not for kernels' bindings. */
#include "core/executor.h"
#include "lua/lode_lua.h"
#include "lua/lode_lua_trace.h"

typedef struct host {
  struct lode_sched *sched; /* this thread's tasks (lode_lua_sched.c) */
  lode_exec *ex;
  lode_wf *current; /* workflow whose body is running, or NULL */
  int in_step;      /* inside a step function: nested steps run plain */
  int loading;      /* declarations allowed (lode__check_declare); 1 from the
                     * start, 0 once the CLI has loaded the pipeline */
  char *db_path, *pipeline, *version;
  int sync_full;
  char last_top_id[512]; /* id of the last top-level workflow started */
  int begin_rc;          /* why the last workflow could not start */
  double main_timeout;   /* lode run --timeout, for the next top-level workflow */
  /* the step attempt running now under a time limit (lode_lua_timeout.c) */
  int64_t step_deadline_ms; /* when it is interrupted (wall clock), 0: never */
  int step_deadline_kind;   /* LODE_LIMIT_STEP or LODE_LIMIT_WORKFLOW */
  double step_timeout_s;    /* its own `timeout` option, for the message */
  const char *step_name;    /* anchored by the step object while it runs */
  int step_interrupted;     /* which limit interrupted it (0: none) */
  /* state-database faults of this thread's connection already charged to a
   * workflow body (lode__body_run): the rest of a resume's are its own */
  unsigned faults_charged;
} host;

/* The host context of this state (created on first use). */
host *lode__host(lua_State *L);
/* The executor, or raises its open error (own nothing when calling it). */
lode_exec *lode__need_exec(lua_State *L);

/* Size of the error buffers of the workflow, scheduler and trace glue. */
#define LODE_LUA_ERRLEN 1024

typedef struct lode_body {
  lode_wf *wf;               /* NULL once finished */
  lode_span_frame *frames;   /* its frame chain while suspended */
  lode_span_frame *wf_frame; /* its workflow frame */
  int nargs;                 /* arguments for the first resume */
  int started, finished;
  int hit_fault;    /* a state-database write failed (full disk, I/O error)
                     * while it ran, not counting bodies nested in its steps */
  int abandoned;    /* it failed because the state database could not be
                     * written: nothing recorded, it stays PENDING (release
                     * it to its queue) */
  /* an inline child: its checkpoint in the parent commits with its end */
  lode_wf *parent;
  int64_t parent_pos, parent_started;
  char parent_step_name[201];
} lode_body;

enum { LODE_BODY_OK, LODE_BODY_ERR, LODE_BODY_YIELD };

/* Pushes a body for `wf` (taking ownership of it) running the workflow
 * object at obj with the nargs values at args_idx. */
lode_body *lode__body_new(lua_State *L, int obj, lode_wf *wf, int args_idx, int nargs);
/* Resumes the body at idx: LODE_BODY_YIELD (it waits), or finished with its
 * result (LODE_BODY_OK) or error (LODE_BODY_ERR) pushed. */
int lode__body_run(lua_State *L, int idx);

/* Begins (or resumes) a workflow: 1 with a body pushed (run it), 0 with its
 * recorded outcome pushed (it had finished), -1 with the error pushed
 * (*status -1 if it never started). */
int lode__begin_body(lua_State *L, int obj, const char *id, lode_wf *parent, int64_t pos,
                     int args_idx, int nargs, int use_recorded_input, int *status);

/* Checkpoints, at position pos, the value (ok) or error message on top of
 * the stack (recorded values, waits, child outcomes). */
int lode__record_top(lua_State *L, lode_wf *wf, int64_t pos, const char *name, int ok,
                     const char *child_id, int64_t started, char *err, size_t errlen);

/* Scheduler (lode_lua_sched.c): runs the body at idx to its end, running
 * the other tasks of this thread (and claiming queued work) while it waits.
 * Returns LODE_BODY_OK / LODE_BODY_ERR with the result / error pushed. */
int lode__sched_run_body(lua_State *L, int idx);
/* The running task's wait condition (set by a waiter just before it yields). */
void lode__sched_wait_for_workflow(lua_State *L, const char *id);
void lode__sched_wait_until(lua_State *L, int64_t wake_ms);
/* 1 when code runs inside a scheduled task (so waiting may yield). */
int lode__sched_in_task(lua_State *L);
/* Runs one scheduling pass (for waits outside any task): returns how many
 * tasks made progress. */
int lode__sched_pass(lua_State *L, int claim);
/* Puts the queued workflows this thread holds back on their queues, but
 * not one still running (on the C stack below this call). */
int lode__sched_release(lua_State *L);
/* 1 (message in msg) when the state database has not been writable (full
 * disk, I/O error) for longer than the retry limit: the run ends. */
int lode__state_gave_up(char *msg, size_t n);

/* Time limits of step attempts (lode_lua_timeout.c). A step attempt runs
 * under a count hook on the Lua thread that runs it (and on coroutines it
 * creates, which inherit it) when it has a limit: its own `timeout` or its
 * workflow's deadline. Past the limit the hook raises an error in Lua code;
 * C code called from Lua is not interrupted, it stops when it returns. */
enum { LODE_LIMIT_NONE, LODE_LIMIT_STEP, LODE_LIMIT_WORKFLOW, LODE_LIMIT_OUTER };
typedef struct lode_limit_saved {
  lua_Hook hook;
  int mask, count;
  int64_t deadline_ms;
  int kind;
  double timeout_s;
  const char *name;
} lode_limit_saved;
/* Arms the limits for one attempt of step `name` (timeout_s <= 0: none of
 * its own; wf_deadline_ms 0: none) on L; what was armed before (a step
 * inside a step) is kept in *saved for lode__limit_disarm. */
void lode__limit_arm(lua_State *L, const char *name, double timeout_s, int64_t wf_deadline_ms,
                     lode_limit_saved *saved);
/* Restores what lode__limit_arm saved; returns which limit interrupted the
 * attempt (LODE_LIMIT_*), and clears it, except when the enclosing step's
 * limit has passed too: then it returns LODE_LIMIT_OUTER and leaves the
 * interrupt set for the enclosing attempt. */
int lode__limit_disarm(lua_State *L, const lode_limit_saved *saved);

/* Options (lode_lua_opts.c), checked when a workflow, step, tracked
 * function or queue is declared. */
enum {
  LODE_OPT_POS_NUMBER,    /* a number > 0 */
  LODE_OPT_SECONDS,       /* a time limit: a number > 0, at most LODE_MAX_SECONDS */
  LODE_OPT_NONNEG_NUMBER, /* a number >= 0 */
  LODE_OPT_NUMBER_GE1,    /* a number >= 1 */
  LODE_OPT_POS_INT,       /* an integer >= 1 */
  LODE_OPT_STRING,
  LODE_OPT_BOOLEAN,
  LODE_OPT_STRINGS,       /* a list of strings */
  LODE_OPT_TABLE          /* any table, or one checked with `sub` */
};
typedef struct lode_opt {
  const char *name;
  int kind;
  const struct lode_opt *sub; /* LODE_OPT_TABLE: its own options */
} lode_opt;
/* Raises "<api> '<name>': option 'x' must be ... (got ...)" (or names an
 * unknown option) when the options table at idx (nil is fine) does not fit
 * spec (ended by a {NULL} entry). Allocates nothing. */
void lode__check_opts(lua_State *L, int idx, const char *api, const char *name,
                      const lode_opt *spec);
/* Raises a clear error unless declarations are allowed now: while a
 * pipeline file, a module it requires or a spec file runs at top level,
 * not inside a running workflow body or step. */
void lode__check_declare(lua_State *L, const char *api, const char *name);

#endif
