#ifndef LODE_TRACE_TREE_INT_H
#define LODE_TRACE_TREE_INT_H
/* trace_tree_int.h - a trace's spans as a tree, read from the local trace
 * store, for the views of trace_view.c (text, JSON) and trace_html.c (the
 * page). Internal to src/trace/.
 *
 * Ownership: the tree owns every string in it; lode__tree_free frees all. */
#include <cjson/cJSON.h>
#include <stddef.h>

#include "state/sysdb.h"

typedef struct lode__span {
  char *id, *parent, *name, *type, *error, *state, *body;
  long long start_ms, end_ms;
  int parent_ix, first_child, last_child, next_sibling;
  /* from the body: what identifies the item (a child's first argument),
   * the output's start, attempts (0: not said), queued_ms (-1: not queued) */
  char *in_preview, *out_preview;
  int attempts;
  long long queued_ms;
} lode__span;

typedef struct lode__tree {
  lode__span *n;
  int count;
  int *by_id; /* indices sorted by id, for parent lookup */
} lode__tree;

/* Reads trace_id's spans (children in start order). Returns 0, -1 with err. */
int lode__tree_load(lode_sysdb *db, const char *trace_id, lode__tree *t, char *err,
                    size_t errlen);
void lode__tree_free(lode__tree *t);
/* The index of span `id` (or of the one span whose id starts with it), -1. */
int lode__tree_find(const lode__tree *t, const char *id);
/* "ok", "error" or "running" */
const char *lode__span_status(const lode__span *n);
/* A one-line preview of a JSON value, at most max bytes (UTF-8 whole),
 * malloc'd: a string as it is, anything else as compact JSON. */
char *lode__json_preview(const cJSON *v, size_t max);
/* The parent-child links come from stored rows: a cycle is possible in
 * hostile input, so walks are bounded by this depth. */
#define LODE__TREE_MAX_DEPTH 200
#endif
