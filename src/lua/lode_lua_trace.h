#ifndef LODE_LUA_TRACE_H
#define LODE_LUA_TRACE_H
/* lode_lua_trace.h - span frames of the running Lua code, and `lode.trace`.
 *
 * Every workflow body, step and tracked function that runs pushes a frame;
 * a frame's parent is the frame below it, so spans nest by the real call
 * structure without the pipeline passing anything. Frames live on a stack
 * per lua_State (in a registry-anchored userdata, freed with the state).
 *
 * Where a finished frame's span goes:
 *   - a step in a workflow: returned to the caller, which writes it in the
 *     step's checkpoint transaction (with the spans it buffered);
 *   - a tracked function inside a step or another tracked function: buffered
 *     in that frame, so it commits with it (a crash leaves no orphan);
 *   - a tracked function directly in a workflow body: written at once;
 *   - a step or tracked function called outside any workflow: the root of a
 *     trace of its own, tagged `execution:manual`. */
#include "core/executor.h"
#include "lua/lode_lua.h"
#include "trace/trace_ctx.h"

enum { LODE_FRAME_WF, LODE_FRAME_STEP, LODE_FRAME_TRACK };

typedef struct lode_span_frame lode_span_frame;

/* Pushes a frame for a workflow body (ids from the executor). */
lode_span_frame *lode__frame_push_wf(lua_State *L, const char *trace_id, const char *span_id);
/* Pushes a frame for a step or tracked function under the current one (or
 * a new manual trace when there is none). */
lode_span_frame *lode__frame_push(lua_State *L, int kind, const char *name, const char *type);
/* Pops the top frame (which must be f) and frees it. */
void lode__frame_pop(lua_State *L, lode_span_frame *f);
/* Each workflow body keeps its own chain of frames while it is suspended
 * (waiting coroutines interleave): swaps the running chain for `top` and
 * returns the previous one. */
lode_span_frame *lode__frames_set(lua_State *L, lode_span_frame *top);
/* Frees a suspended chain that will never resume. */
void lode__frame_chain_free(lode_span_frame *f);
const char *lode__frame_id(const lode_span_frame *f);
const char *lode__frame_trace_id(const lode_span_frame *f);
/* Merges a JSON object into the frame's metadata (as lode.trace.update). */
void lode__frame_set_meta(lode_span_frame *f, const char *json);
/* 1 when the frame's span is only what its checkpoint row says: no
 * lode.trace.update values and no spans of tracked calls waiting on it
 * (its span can then be rendered from the row: lode_trace_materialize). */
int lode__frame_plain(const lode_span_frame *f);
int64_t lode__frame_start(const lode_span_frame *f);

/* The spans of a finished step frame, for lode_wf_step_record: the step's
 * span (input/output JSON given, error if any), one span per failed attempt
 * given in `attempts`, then what the frame buffered. Valid until the frame
 * is popped. */
typedef struct lode_attempt {
  int64_t start_ms, end_ms;
  char *error; /* NULL if the attempt succeeded */
} lode_attempt;
int lode__frame_spans(lode_span_frame *f, lode_exec *ex, const char *wf_id, int64_t step_no,
                      int recovery, const char *input_json, const char *output_json,
                      const char *error, const lode_attempt *attempts, int nattempts,
                      const lode_span_rec **spans);
/* Ends a tracked function's (or a manual step's) frame: buffers its span in
 * the parent frame, writes it now, or writes its whole manual trace. */
int lode__frame_finish(lua_State *L, lode_span_frame *f, lode_exec *ex, const char *input_json,
                       const char *output_json, const char *error, char *err, size_t errlen);
/* The headers that carry the running span's context out (trace_ctx.h);
 * -1 when no span is running. */
int lode__trace_headers(lua_State *L, lode_ctx_headers *h);
/* What lode.trace.update set on a workflow frame, for lode_wf_finish. */
void lode__frame_extra(lode_span_frame *f, lode_span_extra *x);

#endif
