/* trace_view.c - the `lode trace` tree, from trace_records. */
#include "trace/trace_view.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "state/trace_store.h"

typedef struct node {
  char *id, *parent, *name, *type, *error, *state;
  long long start_ms, end_ms;
  int parent_ix, first_child, last_child, next_sibling;
} node;

typedef struct tree {
  node *n;
  int count;
  int *by_id; /* indices sorted by id, for parent lookup */
} tree;

static char *dup(const char *t) { return t ? strdup(t) : NULL; }

static void tree_free(tree *t) {
  for (int i = 0; i < t->count; i++) {
    node *n = &t->n[i];
    free(n->id), free(n->parent), free(n->name), free(n->type), free(n->error), free(n->state);
  }
  free(t->n);
  free(t->by_id);
  memset(t, 0, sizeof *t);
}

static const node *sort_base;
static int cmp_id(const void *a, const void *b) {
  return strcmp(sort_base[*(const int *)a].id, sort_base[*(const int *)b].id);
}

static int find(const tree *t, const char *id) {
  int lo = 0, hi = t->count - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(t->n[t->by_id[mid]].id, id);
    if (!c) return t->by_id[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

typedef struct loading {
  tree *t;
  int cap;
} loading;

static int add_node(void *ud, const lode_trace_span_row *r) {
  loading *l = ud;
  tree *t = l->t;
  if (t->count == l->cap) {
    int nc = l->cap ? l->cap * 2 : 64;
    node *nn = realloc(t->n, (size_t)nc * sizeof *nn);
    if (!nn) return 1;
    t->n = nn;
    l->cap = nc;
  }
  node *n = &t->n[t->count++];
  memset(n, 0, sizeof *n);
  n->id = dup(r->id), n->parent = dup(r->parent_id), n->name = dup(r->name);
  n->type = dup(r->type), n->error = dup(r->error), n->state = dup(r->state);
  n->start_ms = r->start_ms, n->end_ms = r->end_ms;
  n->parent_ix = n->first_child = n->last_child = n->next_sibling = -1;
  return n->id ? 0 : 1;
}

static int load(lode_sysdb *db, const char *trace_id, tree *t, char *err, size_t errlen) {
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
    node *n = &t->n[i];
    int p = n->parent ? find(t, n->parent) : -1;
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
  if (rc) tree_free(t);
  return rc;
}

void lode_trace_fmt_duration(long long ms, char out[32]) {
  if (ms < 0) ms = 0;
  if (ms < 1000) snprintf(out, 32, "%lldms", ms);
  else if (ms < 60000) snprintf(out, 32, "%.2fs", (double)ms / 1000.0);
  else if (ms < 3600000) snprintf(out, 32, "%lldm%02llds", ms / 60000, (ms / 1000) % 60);
  else snprintf(out, 32, "%lldh%02lldm", ms / 3600000, (ms / 60000) % 60);
}

static const char *status_of(const node *n) {
  if (n->error) return "error";
  return n->end_ms > 0 ? "ok" : "running";
}

/* The parent-child links come from stored rows: a cycle (A under B under A)
 * is possible in hostile input, so depth is bounded. */
#define MAX_DEPTH 200

static int text_node(const tree *t, int i, lode_buf *b, const char *prefix, const char *cont,
                     int depth) {
  const node *n = &t->n[i];
  char dur[32];
  if (n->end_ms > 0) lode_trace_fmt_duration(n->end_ms - n->start_ms, dur);
  else snprintf(dur, sizeof dur, "-");
  if (lode_buf_printf(b, "%s%s", prefix, n->name ? n->name : "?")) return -1;
  if (n->type && strcmp(n->type, "general") && lode_buf_printf(b, "  [%s]", n->type)) return -1;
  if (lode_buf_printf(b, "  %s  %s%s\n", dur, status_of(n),
                      n->parent && n->parent_ix < 0 && depth == 0 ? "  (parent missing)" : ""))
    return -1;
  if (n->error) {
    /* only the first line: the full traceback is in Opik and --json */
    const char *nl = strchr(n->error, '\n');
    int len = nl ? (int)(nl - n->error) : (int)strlen(n->error);
    if (lode_buf_printf(b, "%s%s  error: %.*s\n", cont, n->first_child >= 0 ? " │ " : "   ",
                        len, n->error))
      return -1;
  }
  if (depth >= MAX_DEPTH) return lode_buf_printf(b, "%s ...\n", cont);
  for (int c = n->first_child; c >= 0; c = t->n[c].next_sibling) {
    int last = t->n[c].next_sibling < 0;
    size_t pl = strlen(cont) + 16;
    char *p = malloc(pl), *cc = malloc(pl);
    if (!p || !cc) {
      free(p), free(cc);
      return -1;
    }
    snprintf(p, pl, "%s%s", cont, last ? " └── " : " ├── ");
    snprintf(cc, pl, "%s%s", cont, last ? "     " : " │   ");
    int r = text_node(t, c, b, p, cc, depth + 1);
    free(p), free(cc);
    if (r) return -1;
  }
  return 0;
}

static cJSON *json_node(const tree *t, int i, int depth) {
  const node *n = &t->n[i];
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "id", n->id);
  if (n->parent) cJSON_AddStringToObject(o, "parent_span_id", n->parent);
  cJSON_AddStringToObject(o, "name", n->name ? n->name : "");
  cJSON_AddStringToObject(o, "type", n->type ? n->type : "general");
  cJSON_AddNumberToObject(o, "start_ms", (double)n->start_ms);
  if (n->end_ms > 0) {
    cJSON_AddNumberToObject(o, "end_ms", (double)n->end_ms);
    cJSON_AddNumberToObject(o, "duration_ms", (double)(n->end_ms - n->start_ms));
  }
  cJSON_AddStringToObject(o, "status", status_of(n));
  if (n->error) cJSON_AddStringToObject(o, "error", n->error);
  if (n->state) cJSON_AddStringToObject(o, "export_state", n->state);
  cJSON *kids = cJSON_AddArrayToObject(o, "children");
  if (depth < MAX_DEPTH)
    for (int c = n->first_child; c >= 0; c = t->n[c].next_sibling) {
      cJSON *k = json_node(t, c, depth + 1);
      if (k) cJSON_AddItemToArray(kids, k);
    }
  return o;
}

/* The trace row's name and tags, for the header line. */
static void trace_header(lode_sysdb *db, const char *trace_id, char **name, cJSON **tags) {
  char *body = NULL, err[256];
  *tags = NULL;
  if (lode_sysdb_trace_head(db, trace_id, name, &body, err, sizeof err) != LODE_OK) return;
  cJSON *o = body ? cJSON_Parse(body) : NULL;
  cJSON *tg = cJSON_GetObjectItemCaseSensitive(o, "tags");
  if (cJSON_IsArray(tg)) *tags = cJSON_DetachItemViaPointer(o, tg);
  cJSON_Delete(o);
  free(body);
}

int lode_trace_render(lode_sysdb *db, const char *trace_id, const char *root_span_id, int json,
                      lode_buf *out, char *err, size_t errlen) {
  tree t;
  char *tname = NULL;
  cJSON *tags = NULL, *doc = NULL;
  char *txt = NULL;
  int rc = -1;
  if (load(db, trace_id, &t, err, errlen)) return -1;
  trace_header(db, trace_id, &tname, &tags);
  if (!t.count && !tname) {
    rc = 1;
    snprintf(err, errlen, "trace %s has no records in this database", trace_id);
    goto done;
  }
  int root = root_span_id ? find(&t, root_span_id) : -1;
  if (root_span_id && root < 0) {
    rc = 1;
    snprintf(err, errlen, "span %s of trace %s is not recorded in this database", root_span_id,
             trace_id);
    goto done;
  }
  if (json) {
    if (!(doc = cJSON_CreateObject())) goto oom;
    cJSON_AddStringToObject(doc, "trace_id", trace_id);
    if (tname) cJSON_AddStringToObject(doc, "name", tname);
    if (tags) cJSON_AddItemToObject(doc, "tags", tags), tags = NULL;
    cJSON *roots = cJSON_AddArrayToObject(doc, "spans");
    if (!roots) goto oom;
    for (int i = 0; i < t.count; i++)
      if (root >= 0 ? i == root : t.n[i].parent_ix < 0) {
        cJSON *k = json_node(&t, i, 0);
        if (!k) goto oom;
        cJSON_AddItemToArray(roots, k);
      }
    if (!(txt = cJSON_Print(doc)) || lode_buf_puts(out, txt) || lode_buf_putc(out, '\n'))
      goto oom;
  } else {
    if (lode_buf_printf(out, "trace %s", trace_id)) goto oom;
    if (tname && lode_buf_printf(out, "  %s", tname)) goto oom;
    cJSON *tg;
    cJSON_ArrayForEach(tg, tags) {
      if (cJSON_IsString(tg) && lode_buf_printf(out, " [%s]", tg->valuestring)) goto oom;
    }
    if (lode_buf_putc(out, '\n')) goto oom;
    for (int i = 0; i < t.count; i++)
      if ((root >= 0 ? i == root : t.n[i].parent_ix < 0) && text_node(&t, i, out, "", "", 0))
        goto oom;
  }
  rc = 0;
  goto done;
oom:
  snprintf(err, errlen, "out of memory rendering trace %s", trace_id);
done:
  cJSON_free(txt);
  cJSON_Delete(doc);
  cJSON_Delete(tags);
  free(tname);
  tree_free(&t);
  return rc;
}
