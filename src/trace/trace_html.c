/* trace_html.c - `lode trace --html`: the page template
 * (src/trace/trace_page.html, embedded at build time as lode__trace_page)
 * with the trace's spans as JSON in place of its data marker. The page works
 * offline: no network, no CDN. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "state/trace_store.h"
#include "trace/trace_tree_int.h"
#include "trace/trace_view.h"

extern const char lode__trace_page[];
extern const size_t lode__trace_page_len;

#define DATA_MARK "__LODE_TRACE_DATA__"
/* a span's input, output, metadata or error in the page: at most this much
 * JSON (the rest: lode trace ID --span SPAN_ID --full), so that 10,000
 * spans stay a few MB */
#define PART_MAX 1500

/* body[k], or a preview string when its JSON is longer than PART_MAX */
static void add_part(cJSON *o, const cJSON *body, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, k);
  if (!v) return;
  char *s = cJSON_PrintUnformatted(v);
  if (s && strlen(s) > PART_MAX) {
    char *p = lode__json_preview(v, PART_MAX);
    char note[96];
    snprintf(note, sizeof note, " [cut at %d of %zu bytes: --span --full shows all]", PART_MAX,
             strlen(s));
    size_t l = p ? strlen(p) : 0;
    char *t = malloc(l + sizeof note);
    if (t) {
      memcpy(t, p ? p : "", l);
      strcpy(t + l, note);
      cJSON_AddStringToObject(o, k, t);
    }
    free(t);
    free(p);
  } else if (s) {
    cJSON_AddItemToObject(o, k, cJSON_Duplicate(v, 1));
  }
  cJSON_free(s);
}

static cJSON *span_json(const lode__tree *t, int i, long long t0) {
  const lode__span *n = &t->n[i];
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "id", n->id);
  cJSON_AddNumberToObject(o, "p", n->parent_ix);
  cJSON_AddStringToObject(o, "n", n->name ? n->name : "?");
  if (n->type && strcmp(n->type, "general")) cJSON_AddStringToObject(o, "ty", n->type);
  cJSON_AddNumberToObject(o, "s", (double)(n->start_ms - t0));
  cJSON_AddNumberToObject(o, "e", n->end_ms > 0 ? (double)(n->end_ms - t0) : -1);
  cJSON_AddStringToObject(o, "st", lode__span_status(n));
  if (n->queued_ms >= 0) cJSON_AddNumberToObject(o, "q", (double)n->queued_ms);
  if (n->attempts > 0) cJSON_AddNumberToObject(o, "a", n->attempts);
  if (n->in_preview) cJSON_AddStringToObject(o, "ip", n->in_preview);
  if (n->out_preview) cJSON_AddStringToObject(o, "op", n->out_preview);
  cJSON *body = n->body ? cJSON_Parse(n->body) : NULL;
  static const char *const parts[] = {"input",      "output",     "metadata", "tags",
                                      "error_info", "start_time", "end_time"};
  for (size_t k = 0; body && k < sizeof parts / sizeof *parts; k++) add_part(o, body, parts[k]);
  cJSON_Delete(body);
  if (n->error && !cJSON_GetObjectItemCaseSensitive(o, "error_info"))
    cJSON_AddStringToObject(o, "error", n->error);
  return o;
}

/* JSON inside <script>: every '<', '>' and '&' (in JSON they only occur
 * inside strings) is written as its \u escape, so no text of a span
 * ("</script>", "<!--<script>") can end or change the element. */
static int put_script_safe(lode_buf *b, const char *s) {
  for (const char *p = s; *p; p++) {
    int rc = *p == '<'   ? lode_buf_puts(b, "\\u003c")
             : *p == '>' ? lode_buf_puts(b, "\\u003e")
             : *p == '&' ? lode_buf_puts(b, "\\u0026")
                         : lode_buf_putc(b, (uint8_t)*p);
    if (rc) return -1;
  }
  return 0;
}

int lode_trace_html(lode_sysdb *db, const char *trace_id, const char *root_span_id,
                    const char *opik_url, lode_buf *out, char *err, size_t errlen) {
  lode__tree t;
  cJSON *doc = NULL;
  char *txt = NULL, *tname = NULL, *tbody = NULL;
  int rc = -1;
  if (lode__tree_load(db, trace_id, &t, err, errlen)) return -1;
  char herr[128];
  lode_sysdb_trace_head(db, trace_id, &tname, &tbody, herr, sizeof herr);
  if (!t.count && !tname) {
    rc = 1;
    snprintf(err, errlen, "trace %s has no records in this database", trace_id);
    goto done;
  }
  if (root_span_id && lode__tree_find(&t, root_span_id) < 0) {
    rc = 1;
    snprintf(err, errlen, "span %s of trace %s is not recorded in this database", root_span_id,
             trace_id);
    goto done;
  }
  long long t0 = 0;
  for (int i = 0; i < t.count; i++)
    if (!t0 || t.n[i].start_ms < t0) t0 = t.n[i].start_ms;
  if (!(doc = cJSON_CreateObject())) goto oom;
  cJSON_AddStringToObject(doc, "trace_id", trace_id);
  if (tname) cJSON_AddStringToObject(doc, "name", tname);
  if (root_span_id) cJSON_AddStringToObject(doc, "focus", root_span_id);
  if (opik_url) cJSON_AddStringToObject(doc, "opik_url", opik_url);
  cJSON_AddNumberToObject(doc, "t0", (double)t0);
  cJSON *tb = tbody ? cJSON_Parse(tbody) : NULL;
  cJSON *tags = cJSON_GetObjectItemCaseSensitive(tb, "tags");
  if (tags) cJSON_AddItemToObject(doc, "tags", cJSON_Duplicate(tags, 1));
  cJSON_Delete(tb);
  cJSON *spans = cJSON_AddArrayToObject(doc, "spans");
  if (!spans) goto oom;
  for (int i = 0; i < t.count; i++) {
    cJSON *s = span_json(&t, i, t0);
    if (!s) goto oom;
    cJSON_AddItemToArray(spans, s);
  }
  if (!(txt = cJSON_PrintUnformatted(doc))) goto oom;
  const char *mark = strstr(lode__trace_page, DATA_MARK);
  if (!mark) {
    snprintf(err, errlen, "the embedded trace page has no %s marker", DATA_MARK);
    goto done;
  }
  if (lode_buf_append(out, lode__trace_page, (size_t)(mark - lode__trace_page)) ||
      put_script_safe(out, txt) || lode_buf_puts(out, mark + strlen(DATA_MARK)))
    goto oom;
  rc = 0;
  goto done;
oom:
  snprintf(err, errlen, "out of memory rendering trace %s as a page", trace_id);
done:
  (void)lode__trace_page_len;
  cJSON_free(txt);
  cJSON_Delete(doc);
  free(tname);
  free(tbody);
  lode__tree_free(&t);
  return rc;
}
