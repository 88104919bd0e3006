/* trace_view.c - `lode trace`: the tree of a run as text or JSON, narrowed
 * (--depth, --errors, --name, --slowest) and folded, or one span whole
 * (--span). The tree is read by trace_tree.c. */
#include "trace/trace_view.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "state/trace_store.h"
#include "trace/trace_tree_int.h"

/* A run of more than FOLD_AFTER same-named siblings shows its first
 * FOLD_SHOW and one line for the rest. */
#define FOLD_AFTER 8
#define FOLD_SHOW 3
/* --span without --full: each part cut at this many bytes */
#define PART_MAX 2000

void lode_trace_fmt_duration(long long ms, char out[32]) {
  if (ms < 0) ms = 0;
  if (ms < 1000) snprintf(out, 32, "%lldms", ms);
  else if (ms < 60000) snprintf(out, 32, "%.2fs", (double)ms / 1000.0);
  else if (ms < 3600000) snprintf(out, 32, "%lldm%02llds", ms / 60000, (ms / 1000) % 60);
  else snprintf(out, 32, "%lldh%02lldm", ms / 3600000, (ms / 60000) % 60);
}

/* 2240 -> "2,240" */
static void fmt_count(long long v, char out[32]) {
  char d[32];
  int n = snprintf(d, sizeof d, "%lld", v), o = 0;
  for (int i = 0; i < n; i++) {
    if (i && (n - i) % 3 == 0 && d[i - 1] != '-') out[o++] = ',';
    out[o++] = d[i];
  }
  out[o] = 0;
}

typedef struct view {
  const lode__tree *t;
  const lode_trace_view *o;
  unsigned char *keep; /* NULL: every span */
  lode_buf *b;
} view;

static int kept(const view *v, int i) { return !v->keep || v->keep[i]; }

/* The span's line after its name: input -> output, duration (queue wait),
 * status, attempts. */
static int span_line(lode_buf *b, const lode__span *n, int show_id) {
  char dur[32], q[32];
  if (lode_buf_puts(b, n->name ? n->name : "?")) return -1;
  if (n->in_preview && lode_buf_printf(b, "(%s)", n->in_preview)) return -1;
  if (n->out_preview && lode_buf_printf(b, " \xe2\x86\x92 %s", n->out_preview)) return -1;
  if (n->type && strcmp(n->type, "general") && lode_buf_printf(b, "  [%s]", n->type)) return -1;
  if (n->end_ms > 0) lode_trace_fmt_duration(n->end_ms - n->start_ms, dur);
  else snprintf(dur, sizeof dur, "-");
  if (lode_buf_printf(b, "  %s", dur)) return -1;
  if (n->queued_ms >= 0) {
    lode_trace_fmt_duration(n->queued_ms, q);
    if (lode_buf_printf(b, " (queued %s)", q)) return -1;
  }
  if (lode_buf_printf(b, "  %s", lode__span_status(n))) return -1;
  if (n->attempts > 1 && lode_buf_printf(b, "  %d attempts", n->attempts)) return -1;
  if (show_id && lode_buf_printf(b, "  #%s", n->id)) return -1;
  return 0;
}

static int count_below(const lode__tree *t, int i, int depth) {
  int c = 0;
  if (depth >= LODE__TREE_MAX_DEPTH) return 0;
  for (int k = t->n[i].first_child; k >= 0; k = t->n[k].next_sibling)
    c += 1 + count_below(t, k, depth + 1);
  return c;
}

/* One entry under a parent: a span, or a fold of `count` more same-named. */
typedef struct item {
  int ix, count, failed;
} item;

static int text_node(const view *v, int i, const char *prefix, const char *cont, int depth);

static int text_children(const view *v, int i, const char *cont, int depth) {
  const lode__tree *t = v->t;
  int n = 0;
  for (int c = t->n[i].first_child; c >= 0; c = t->n[c].next_sibling) n += kept(v, c);
  if (!n) return 0;
  item *it = malloc((size_t)n * sizeof *it);
  if (!it) return -1;
  int ni = 0;
  for (int c = t->n[i].first_child; c >= 0;) {
    if (!kept(v, c)) {
      c = t->n[c].next_sibling;
      continue;
    }
    /* the run of kept siblings named as c */
    int run = 0, failed = 0, e = c;
    const char *nm = t->n[c].name ? t->n[c].name : "";
    for (int k = c; k >= 0; k = t->n[k].next_sibling) {
      if (!kept(v, k)) continue;
      if (strcmp(t->n[k].name ? t->n[k].name : "", nm)) break;
      run++;
      e = t->n[k].next_sibling;
    }
    int shown = 0;
    for (int k = c; k != e; k = t->n[k].next_sibling) {
      if (!kept(v, k)) continue;
      if (v->o->all || run <= FOLD_AFTER || shown < FOLD_SHOW) {
        it[ni++] = (item){k, 0, 0};
        shown++;
      } else {
        failed += t->n[k].error != NULL;
      }
    }
    if (shown < run) it[ni++] = (item){-1, run - shown, failed};
    if (it[ni - 1].ix < 0) it[ni - 1].ix = -2 - c; /* the fold remembers its name */
    c = e;
  }
  int rc = 0;
  size_t pl = strlen(cont) + 16;
  char *p = malloc(pl), *cc = malloc(pl);
  if (!p || !cc) rc = -1;
  for (int k = 0; k < ni && !rc; k++) {
    int last = k == ni - 1;
    snprintf(p, pl, "%s%s", cont, last ? " \xe2\x94\x94\xe2\x94\x80\xe2\x94\x80 "
                                       : " \xe2\x94\x9c\xe2\x94\x80\xe2\x94\x80 ");
    snprintf(cc, pl, "%s%s", cont, last ? "     " : " \xe2\x94\x82   ");
    if (it[k].ix >= 0) {
      rc = text_node(v, it[k].ix, p, cc, depth + 1);
      continue;
    }
    char cnt[32];
    fmt_count(it[k].count, cnt);
    const char *nm = t->n[-2 - it[k].ix].name;
    rc = lode_buf_printf(v->b, "%s\xe2\x80\xa6 %s more %s", p, cnt, nm ? nm : "?");
    if (!rc && it[k].failed) {
      fmt_count(it[k].failed, cnt);
      rc = lode_buf_printf(v->b, ", %s failed: see --errors", cnt);
    }
    if (!rc) rc = lode_buf_printf(v->b, " (--all shows them)\n");
  }
  free(p), free(cc), free(it);
  return rc;
}

static int text_node(const view *v, int i, const char *prefix, const char *cont, int depth) {
  const lode__span *n = &v->t->n[i];
  int filtered = v->o->errors || v->o->name_glob;
  if (lode_buf_puts(v->b, prefix) || span_line(v->b, n, filtered)) return -1;
  if (n->parent && n->parent_ix < 0 && depth == 0 && lode_buf_puts(v->b, "  (parent missing)"))
    return -1;
  int cut = v->o->depth > 0 && depth + 1 >= v->o->depth && n->first_child >= 0;
  if (cut) {
    char cnt[32];
    fmt_count(count_below(v->t, i, depth), cnt);
    if (lode_buf_printf(v->b, "  (+%s below)", cnt)) return -1;
  }
  if (lode_buf_putc(v->b, '\n')) return -1;
  if (n->error) {
    /* only the first line: the full traceback is in --span, --json, Opik */
    const char *nl = strchr(n->error, '\n');
    int len = nl ? (int)(nl - n->error) : (int)strlen(n->error);
    if (lode_buf_printf(v->b, "%s%s  error: %.*s\n", cont,
                        n->first_child >= 0 && !cut ? " \xe2\x94\x82 " : "   ", len, n->error))
      return -1;
  }
  if (cut) return 0;
  if (depth >= LODE__TREE_MAX_DEPTH) return lode_buf_printf(v->b, "%s ...\n", cont);
  return text_children(v, i, cont, depth);
}

/* Marks spans that match (--errors: failed; --name: the glob) and their
 * ancestors. */
static unsigned char *filter(const lode__tree *t, const lode_trace_view *o) {
  if (!o->errors && !o->name_glob) return NULL;
  unsigned char *k = calloc((size_t)t->count + 1, 1);
  if (!k) return NULL;
  for (int i = 0; i < t->count; i++) {
    const lode__span *n = &t->n[i];
    if (o->errors && !n->error) continue;
    if (o->name_glob && fnmatch(o->name_glob, n->name ? n->name : "", 0)) continue;
    for (int a = i, d = 0; a >= 0 && d < LODE__TREE_MAX_DEPTH && !k[a]; a = t->n[a].parent_ix, d++)
      k[a] = 1;
  }
  return k;
}

static cJSON *parsed_member(const cJSON *body, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, k);
  return v ? cJSON_Duplicate(v, 1) : NULL;
}

static cJSON *json_node(const view *v, int i, int depth) {
  const lode__span *n = &v->t->n[i];
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
  if (n->queued_ms >= 0) cJSON_AddNumberToObject(o, "queued_ms", (double)n->queued_ms);
  if (n->attempts > 0) cJSON_AddNumberToObject(o, "attempts", n->attempts);
  cJSON_AddStringToObject(o, "status", lode__span_status(n));
  if (n->error) cJSON_AddStringToObject(o, "error", n->error);
  if (n->state) cJSON_AddStringToObject(o, "export_state", n->state);
  cJSON *body = n->body ? cJSON_Parse(n->body) : NULL;
  static const char *const parts[] = {"input", "output", "metadata", "tags", "error_info"};
  for (size_t k = 0; body && k < sizeof parts / sizeof *parts; k++) {
    cJSON *p = parsed_member(body, parts[k]);
    if (p) cJSON_AddItemToObject(o, parts[k], p);
  }
  cJSON_Delete(body);
  cJSON *kids = cJSON_AddArrayToObject(o, "children");
  int cut = v->o->depth > 0 && depth + 1 >= v->o->depth;
  if (depth < LODE__TREE_MAX_DEPTH && !cut)
    for (int c = n->first_child; c >= 0; c = v->t->n[c].next_sibling) {
      if (!kept(v, c)) continue;
      cJSON *k = json_node(v, c, depth + 1);
      if (k) cJSON_AddItemToArray(kids, k);
    }
  return o;
}

/* --slowest K: the K longest finished spans, longest first. */
static const lode__span *slow_base;
static int cmp_slow(const void *a, const void *b) {
  const lode__span *x = &slow_base[*(const int *)a], *y = &slow_base[*(const int *)b];
  long long dx = x->end_ms - x->start_ms, dy = y->end_ms - y->start_ms;
  return dx < dy ? 1 : dx > dy ? -1 : 0;
}

static int slowest(const view *v, int root) {
  const lode__tree *t = v->t;
  int *ix = malloc((size_t)(t->count + 1) * sizeof *ix), n = 0, rc = 0;
  if (!ix) return -1;
  for (int i = 0; i < t->count; i++) {
    if (t->n[i].end_ms <= 0) continue;
    if (root >= 0) { /* within the subtree shown */
      int a = i, d = 0;
      while (a >= 0 && a != root && d++ < LODE__TREE_MAX_DEPTH) a = t->n[a].parent_ix;
      if (a != root) continue;
    }
    ix[n++] = i;
  }
  slow_base = t->n;
  qsort(ix, (size_t)n, sizeof *ix, cmp_slow);
  for (int k = 0; k < n && k < v->o->slowest && !rc; k++) {
    const lode__span *s = &t->n[ix[k]];
    rc = span_line(v->b, s, 1) ||
         (s->parent_ix >= 0 && lode_buf_printf(v->b, "  under %s", t->n[s->parent_ix].name)) ||
         lode_buf_putc(v->b, '\n');
  }
  free(ix);
  return rc ? -1 : 0;
}

/* One part of --span: pretty JSON, cut at PART_MAX unless --full. */
static int part(const view *v, const char *title, const cJSON *val) {
  if (!val) return 0;
  char *s = cJSON_IsString(val) ? strdup(val->valuestring) : cJSON_Print(val);
  if (!s) return -1;
  size_t l = strlen(s), keep = l;
  if (!v->o->full && l > PART_MAX) {
    keep = PART_MAX;
    while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80) keep--;
  }
  int rc = lode_buf_printf(v->b, "%s:\n", title);
  /* indented by two */
  for (size_t a = 0; !rc && a < keep;) {
    const char *nl = memchr(s + a, '\n', keep - a);
    size_t e = nl ? (size_t)(nl - s) : keep;
    rc = lode_buf_printf(v->b, "  %.*s\n", (int)(e - a), s + a);
    a = e + 1;
  }
  if (!rc && keep < l)
    rc = lode_buf_printf(v->b, "  \xe2\x80\xa6 %zu more bytes (--full shows all)\n", l - keep);
  free(s);
  return rc;
}

static int one_span(const view *v, int i) {
  const lode__span *n = &v->t->n[i];
  char dur[32];
  int rc = lode_buf_printf(v->b, "span %s  %s\n", n->id, n->name ? n->name : "?");
  if (!rc && n->parent_ix >= 0)
    rc = lode_buf_printf(v->b, "parent: %s  %s\n", v->t->n[n->parent_ix].id,
                         v->t->n[n->parent_ix].name);
  if (!rc && n->end_ms > 0) {
    lode_trace_fmt_duration(n->end_ms - n->start_ms, dur);
    rc = lode_buf_printf(v->b, "duration: %s", dur);
    if (!rc && n->queued_ms >= 0) {
      char q[32], r[32];
      lode_trace_fmt_duration(n->queued_ms, q);
      lode_trace_fmt_duration(n->end_ms - n->start_ms - n->queued_ms, r);
      rc = lode_buf_printf(v->b, " (queued %s, ran %s)", q, r);
    }
    if (!rc) rc = lode_buf_putc(v->b, '\n');
  }
  if (!rc)
    rc = lode_buf_printf(v->b, "status: %s\ntype: %s\nchildren: %d\n", lode__span_status(n),
                         n->type ? n->type : "general", count_below(v->t, i, 0));
  cJSON *body = n->body ? cJSON_Parse(n->body) : NULL;
  if (!rc) rc = part(v, "start", cJSON_GetObjectItemCaseSensitive(body, "start_time"));
  if (!rc) rc = part(v, "end", cJSON_GetObjectItemCaseSensitive(body, "end_time"));
  if (!rc) rc = part(v, "input", cJSON_GetObjectItemCaseSensitive(body, "input"));
  if (!rc) rc = part(v, "output", cJSON_GetObjectItemCaseSensitive(body, "output"));
  if (!rc) rc = part(v, "metadata", cJSON_GetObjectItemCaseSensitive(body, "metadata"));
  if (!rc) rc = part(v, "tags", cJSON_GetObjectItemCaseSensitive(body, "tags"));
  const cJSON *ei = cJSON_GetObjectItemCaseSensitive(body, "error_info");
  const cJSON *tb = cJSON_GetObjectItemCaseSensitive(ei, "traceback");
  if (!rc) rc = part(v, "error", tb ? tb : ei);
  cJSON_Delete(body);
  return rc ? -1 : 0;
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

int lode_trace_render_view(lode_sysdb *db, const char *trace_id, const char *root_span_id,
                           const lode_trace_view *o, lode_buf *out, char *err, size_t errlen) {
  lode__tree t;
  char *tname = NULL;
  cJSON *tags = NULL, *doc = NULL;
  char *txt = NULL;
  int rc = -1;
  view v = {&t, o, NULL, out};
  if (lode__tree_load(db, trace_id, &t, err, errlen)) return -1;
  trace_header(db, trace_id, &tname, &tags);
  if (!t.count && !tname) {
    rc = 1;
    snprintf(err, errlen, "trace %s has no records in this database", trace_id);
    goto done;
  }
  int root = root_span_id ? lode__tree_find(&t, root_span_id) : -1;
  if (root_span_id && root < 0) {
    rc = 1;
    snprintf(err, errlen, "span %s of trace %s is not recorded in this database", root_span_id,
             trace_id);
    goto done;
  }
  if (o->span_id) {
    int s = lode__tree_find(&t, o->span_id);
    if (s < 0) {
      rc = 2;
      snprintf(err, errlen, "no span %s in trace %s (span ids: lode trace ID --json)", o->span_id,
               trace_id);
      goto done;
    }
    if (one_span(&v, s)) goto oom;
    rc = 0;
    goto done;
  }
  if ((o->errors || o->name_glob) && !(v.keep = filter(&t, o))) goto oom;
  if (o->json) {
    if (!(doc = cJSON_CreateObject())) goto oom;
    cJSON_AddStringToObject(doc, "trace_id", trace_id);
    if (tname) cJSON_AddStringToObject(doc, "name", tname);
    if (tags) cJSON_AddItemToObject(doc, "tags", tags), tags = NULL;
    cJSON *roots = cJSON_AddArrayToObject(doc, "spans");
    if (!roots) goto oom;
    for (int i = 0; i < t.count; i++)
      if ((root >= 0 ? i == root : t.n[i].parent_ix < 0) && kept(&v, i)) {
        cJSON *k = json_node(&v, i, 0);
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
    if (o->slowest > 0) {
      if (slowest(&v, root)) goto oom;
    } else {
      int shown = 0;
      for (int i = 0; i < t.count; i++)
        if ((root >= 0 ? i == root : t.n[i].parent_ix < 0) && kept(&v, i)) {
          shown++;
          if (text_node(&v, i, "", "", 0)) goto oom;
        }
      if (!shown && v.keep &&
          lode_buf_printf(out, "(no span %s)\n", o->errors ? "failed" : "matches --name"))
        goto oom;
    }
  }
  rc = 0;
  goto done;
oom:
  snprintf(err, errlen, "out of memory rendering trace %s", trace_id);
done:
  free(v.keep);
  cJSON_free(txt);
  cJSON_Delete(doc);
  cJSON_Delete(tags);
  free(tname);
  lode__tree_free(&t);
  return rc;
}

int lode_trace_render(lode_sysdb *db, const char *trace_id, const char *root_span_id, int json,
                      lode_buf *out, char *err, size_t errlen) {
  lode_trace_view o;
  memset(&o, 0, sizeof o);
  o.json = json;
  return lode_trace_render_view(db, trace_id, root_span_id, &o, out, err, errlen);
}
