/* trace_tree.c - a trace's spans as a tree (see trace_tree_int.h). */
#include "trace/trace_tree_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "state/trace_store.h"

#define PREVIEW_MAX 60

static char *dup(const char *t) { return t ? strdup(t) : NULL; }

void lode__tree_free(lode__tree *t) {
  for (int i = 0; i < t->count; i++) {
    lode__span *n = &t->n[i];
    free(n->id), free(n->parent), free(n->name), free(n->type), free(n->error), free(n->state);
    free(n->body), free(n->in_preview), free(n->out_preview);
  }
  free(t->n);
  free(t->by_id);
  memset(t, 0, sizeof *t);
}

static const lode__span *sort_base;
static int cmp_id(const void *a, const void *b) {
  return strcmp(sort_base[*(const int *)a].id, sort_base[*(const int *)b].id);
}

int lode__tree_find(const lode__tree *t, const char *id) {
  int lo = 0, hi = t->count - 1;
  size_t l = strlen(id);
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(t->n[t->by_id[mid]].id, id);
    if (!c) return t->by_id[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  /* a unique prefix: lo is where id would sort */
  if (l >= 4 && lo < t->count && !strncmp(t->n[t->by_id[lo]].id, id, l) &&
      (lo + 1 >= t->count || strncmp(t->n[t->by_id[lo + 1]].id, id, l)))
    return t->by_id[lo];
  return -1;
}

const char *lode__span_status(const lode__span *n) {
  if (n->error) return "error";
  return n->end_ms > 0 ? "ok" : "running";
}

char *lode__json_preview(const cJSON *v, size_t max) {
  char *s = cJSON_IsString(v) ? strdup(v->valuestring) : cJSON_PrintUnformatted(v);
  if (!s) return NULL;
  size_t l = strlen(s);
  for (char *c = s; *c; c++)
    if (*c == '\n' || *c == '\r' || *c == '\t') *c = ' ';
  if (l <= max) return s;
  size_t keep = max > 3 ? max - 3 : 0;
  while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80) keep--;
  memcpy(s + keep, "\xe2\x80\xa6", 4); /* … */
  return s;
}

/* {"input": x} or {"output": x} as Opik wraps a non-object: x */
static const cJSON *unwrap(const cJSON *v, const char *key) {
  if (cJSON_IsObject(v) && v->child && !v->child->next && v->child->string &&
      !strcmp(v->child->string, key))
    return v->child;
  return v;
}

/* What identifies the item: the first argument of a call (a child
 * workflow's file path), or that argument's path/name/id field. */
static char *input_preview(const cJSON *in) {
  const cJSON *v = unwrap(in, "input");
  if (!v) return NULL;
  if (cJSON_IsArray(v)) {
    if (!v->child) return NULL;
    v = v->child;
  }
  if (cJSON_IsObject(v)) {
    static const char *const keys[] = {"path", "file", "name", "id", "url"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
      const cJSON *k = cJSON_GetObjectItemCaseSensitive(v, keys[i]);
      if (cJSON_IsString(k)) return lode__json_preview(k, PREVIEW_MAX);
    }
  }
  return lode__json_preview(v, PREVIEW_MAX);
}

static void from_body(lode__span *n) {
  n->queued_ms = -1;
  cJSON *b = n->body ? cJSON_Parse(n->body) : NULL;
  if (!b) return;
  const cJSON *in = cJSON_GetObjectItemCaseSensitive(b, "input");
  const cJSON *out = cJSON_GetObjectItemCaseSensitive(b, "output");
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(b, "metadata");
  if (in) n->in_preview = input_preview(in);
  if (out && (out = unwrap(out, "output"))) n->out_preview = lode__json_preview(out, PREVIEW_MAX);
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(meta, "attempts");
  if (cJSON_IsNumber(a)) n->attempts = a->valueint;
  const cJSON *q = cJSON_GetObjectItemCaseSensitive(meta, "queued_ms");
  if (cJSON_IsNumber(q)) n->queued_ms = (long long)q->valuedouble;
  cJSON_Delete(b);
}

typedef struct loading {
  lode__tree *t;
  int cap;
} loading;

static int add_node(void *ud, const lode_trace_span_row *r) {
  loading *l = ud;
  lode__tree *t = l->t;
  if (t->count == l->cap) {
    int nc = l->cap ? l->cap * 2 : 64;
    lode__span *nn = realloc(t->n, (size_t)nc * sizeof *nn);
    if (!nn) return 1;
    t->n = nn;
    l->cap = nc;
  }
  lode__span *n = &t->n[t->count++];
  memset(n, 0, sizeof *n);
  n->id = dup(r->id), n->parent = dup(r->parent_id), n->name = dup(r->name);
  n->type = dup(r->type), n->error = dup(r->error), n->state = dup(r->state);
  n->body = dup(r->body);
  n->start_ms = r->start_ms, n->end_ms = r->end_ms;
  n->parent_ix = n->first_child = n->last_child = n->next_sibling = -1;
  from_body(n);
  return n->id ? 0 : 1;
}

int lode__tree_load(lode_sysdb *db, const char *trace_id, lode__tree *t, char *err,
                    size_t errlen) {
  int rc = -1;
  memset(t, 0, sizeof *t);
  loading l = {t, 0};
  /* rows arrive sorted by start, then id */
  if (lode_sysdb_trace_spans(db, trace_id, add_node, &l, err, errlen) != LODE_OK) goto done;
  if (t->count) {
    if (!(t->by_id = malloc((size_t)t->count * sizeof *t->by_id))) goto oom;
    for (int i = 0; i < t->count; i++) t->by_id[i] = i;
    sort_base = t->n; /* the CLI renders on one thread */
    qsort(t->by_id, (size_t)t->count, sizeof *t->by_id, cmp_id);
  }
  /* children in start order: rows arrive sorted by start */
  for (int i = 0; i < t->count; i++) {
    lode__span *n = &t->n[i];
    int p = -1;
    if (n->parent) {
      /* exact ids only: a prefix match would invent a parent */
      p = lode__tree_find(t, n->parent);
      if (p >= 0 && strcmp(t->n[p].id, n->parent)) p = -1;
    }
    if (p == i) p = -1; /* a self-parented record is hostile input, not a loop */
    n->parent_ix = p;
    if (p < 0) continue;
    if (t->n[p].last_child < 0) t->n[p].first_child = i;
    else t->n[t->n[p].last_child].next_sibling = i;
    t->n[p].last_child = i;
  }
  rc = 0;
  goto done;
oom:
  snprintf(err, errlen, "out of memory reading trace %s", trace_id);
done:
  if (rc) lode__tree_free(t);
  return rc;
}
