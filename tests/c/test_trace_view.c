/* test_trace_view.c - `lode trace`'s views (src/trace/trace_tree.c,
 * src/trace/trace_view.c): the tree read from stored spans, previews, folding
 * of repeated siblings, --errors, --name, --depth, --slowest and --span. The
 * whole binary on a real run is tests/integration/test_trace_views.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/error.h"
#include "state/sysdb.h"
#include "trace/trace.h"
#include "trace/trace_tree_int.h"
#include "trace/trace_view.h"

#define TID "01900000-0000-7000-8000-000000000000"
/* span ids: one prefix, a 4-digit number */
#define SID(buf, n) snprintf(buf, sizeof buf, "01900000-0000-7000-8000-00000000%04d", n)

static lode_sysdb *open_db(void) {
  lode_sysdb *db = NULL;
  char err[256];
  lode_trace_set_disabled(1); /* nothing here is ever sent */
  assert_int_equal(lode_sysdb_open(":memory:", 0, &db, err, sizeof err), LODE_OK);
  return db;
}

typedef struct sp {
  int id, parent; /* parent 0: a root */
  const char *name;
  long long start, end;
  const char *in, *out, *meta, *error;
} sp;

static void put(lode_sysdb *db, const sp *s) {
  char id[40], parent[40], err[256];
  SID(id, s->id);
  SID(parent, s->parent);
  lode_span_rec r = {0};
  r.id = id, r.trace_id = TID, r.parent_span_id = s->parent ? parent : NULL, r.name = s->name;
  r.start_ms = s->start, r.end_ms = s->end;
  r.input_json = s->in, r.output_json = s->out, r.metadata_json = s->meta;
  r.error_type = s->error ? "RuntimeError" : NULL, r.error_message = s->error;
  assert_int_equal(lode_trace_put_span(db, &r, err, sizeof err), 0);
}

/* A run as the reference ingestion records it: a root workflow, a discover
 * step, `nkids` queued children (every `fail_every`th failed, 0: none), each
 * with one step. Child k is span 100+k, its step 5000+k; child k's start is
 * 1000+10k and it lasts k ms (so the last child is the slowest). */
static void put_run(lode_sysdb *db, int nkids, int fail_every) {
  char err[256];
  lode_trace_rec t = {0};
  t.id = TID, t.name = "ingest_folder_workflow", t.start_ms = 1000, t.end_ms = 900000;
  assert_int_equal(lode_trace_put_trace(db, &t, err, sizeof err), 0);
  put(db, &(sp){1, 0, "ingest_folder_workflow", 1000, 900000, "[\"docs\"]", "{\"files\":3}", NULL,
                NULL});
  put(db, &(sp){2, 1, "discover_files_step", 1001, 1003, "[\"docs\"]", NULL, NULL, NULL});
  for (int k = 1; k <= nkids; k++) {
    char in[64], meta[64];
    snprintf(in, sizeof in, "[\"/data/f%04d.md\", {\"x\":1}]", k);
    snprintf(meta, sizeof meta, "{\"queued_ms\":%d,\"attempts\":%d}", k % 7, 1 + (k % 3 == 0));
    int bad = fail_every && k % fail_every == 0;
    long long s = 1000 + 10LL * k;
    put(db, &(sp){100 + k, 1, "process_file_workflow", s, s + k, in, NULL, meta,
                  bad ? "cannot read" : NULL});
    put(db, &(sp){5000 + k, 100 + k, "load_step", s + 1, s + 2, NULL, "{\"path\":\"ok\"}", NULL,
                  NULL});
  }
}

static char *render(lode_sysdb *db, const lode_trace_view *v, int want_rc) {
  lode_buf out;
  char err[256];
  lode_buf_init(&out, 16 << 20);
  assert_int_equal(lode_trace_render_view(db, TID, NULL, v, &out, err, sizeof err), want_rc);
  char *s = strdup(lode_buf_cstr(&out) ? lode_buf_cstr(&out) : "");
  lode_buf_free(&out);
  return s;
}

static int count_of(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

/* ---- the tree ----------------------------------------------------------------- */

static void test_tree_links_previews_and_metadata(void **state) {
  (void)state;
  lode_sysdb *db = open_db();
  put_run(db, 3, 0);
  /* recorded out of start order, and one whose parent is not recorded */
  put(db, &(sp){9, 1, "late_but_early", 999, 1000, "{\"input\":{\"path\":\"/p.md\"}}", NULL,
                NULL, NULL});
  put(db, &(sp){8, 77, "orphan", 2000, 2001, "\"a\\nb\"", NULL, NULL, NULL});
  lode__tree t;
  char err[256], id[40];
  assert_int_equal(lode__tree_load(db, TID, &t, err, sizeof err), 0);
  assert_int_equal(t.count, 2 + 2 * 3 + 2);

  SID(id, 1);
  int root = lode__tree_find(&t, id);
  assert_true(root >= 0);
  assert_int_equal(t.n[root].parent_ix, -1);
  /* children in start order: the late-recorded span started first */
  int c = t.n[root].first_child;
  assert_string_equal(t.n[c].name, "late_but_early");
  assert_string_equal(t.n[c].in_preview, "/p.md"); /* an object's path field */
  c = t.n[c].next_sibling;
  assert_string_equal(t.n[c].name, "discover_files_step");
  int kids = 0;
  for (c = t.n[c].next_sibling; c >= 0; c = t.n[c].next_sibling, kids++) {
    assert_string_equal(t.n[c].name, "process_file_workflow");
    assert_int_equal(t.n[c].parent_ix, root);
  }
  assert_int_equal(kids, 3);

  /* a child's preview is its first argument; queue wait and attempts from
   * its metadata; a step's output preview unwraps Opik's {"output": v} */
  SID(id, 103);
  int k3 = lode__tree_find(&t, id);
  assert_string_equal(t.n[k3].in_preview, "/data/f0003.md");
  assert_int_equal(t.n[k3].queued_ms, 3);
  assert_int_equal(t.n[k3].attempts, 2);
  assert_string_equal(t.n[t.n[k3].first_child].out_preview, "{\"path\":\"ok\"}");
  assert_int_equal(t.n[t.n[k3].first_child].queued_ms, -1); /* not queued */
  assert_string_equal(lode__span_status(&t.n[k3]), "ok");

  /* a parent that is not recorded: a root; a newline in a preview: a space */
  SID(id, 8);
  int o = lode__tree_find(&t, id);
  assert_int_equal(t.n[o].parent_ix, -1);
  assert_string_equal(t.n[o].in_preview, "a b");

  /* a unique prefix finds a span; an ambiguous or short one does not */
  assert_int_equal(lode__tree_find(&t, "01900000-0000-7000-8000-000000005003"),
                   t.n[k3].first_child);
  assert_int_equal(lode__tree_find(&t, "01900000-0000-7000-8000-00000000500"), -1);
  assert_int_equal(lode__tree_find(&t, "019"), -1);
  assert_int_equal(lode__tree_find(&t, "nope-nope"), -1);
  lode__tree_free(&t);
  assert_null(t.n);

  /* a trace with no spans loads as an empty tree */
  assert_int_equal(lode__tree_load(db, "01900000-0000-7000-8000-00000000beef", &t, err,
                                   sizeof err), 0);
  assert_int_equal(t.count, 0);
  lode__tree_free(&t);
  lode_sysdb_close(db);
}

static void test_json_preview_cuts_whole_characters(void **state) {
  (void)state;
  cJSON *v = cJSON_CreateString("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"); /* 5 x é */
  char *p = lode__json_preview(v, 6);
  /* 3 bytes of room before the ellipsis: one é, not a half */
  assert_string_equal(p, "\xc3\xa9\xe2\x80\xa6");
  free(p);
  p = lode__json_preview(v, 10);
  assert_string_equal(p, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
  free(p);
  cJSON_Delete(v);
  v = cJSON_Parse("{\"a\":[1,2]}");
  p = lode__json_preview(v, 60);
  assert_string_equal(p, "{\"a\":[1,2]}");
  free(p);
  cJSON_Delete(v);
}

/* ---- text views ---------------------------------------------------------------- */

static void test_preview_lines(void **state) {
  (void)state;
  lode_sysdb *db = open_db();
  put_run(db, 2, 2);
  lode_trace_view v = {0};
  char *s = render(db, &v, 0);
  const char *want =
      "trace " TID "  ingest_folder_workflow\n"
      "ingest_folder_workflow(docs) \xe2\x86\x92 {\"files\":3}  14m59s  ok\n"
      " \xe2\x94\x9c\xe2\x94\x80\xe2\x94\x80 discover_files_step(docs)  2ms  ok\n"
      " \xe2\x94\x9c\xe2\x94\x80\xe2\x94\x80 process_file_workflow(/data/f0001.md)  1ms (queued 1ms)"
      "  ok\n"
      " \xe2\x94\x82    \xe2\x94\x94\xe2\x94\x80\xe2\x94\x80 load_step \xe2\x86\x92 {\"path\":\"ok\"}"
      "  1ms  ok\n"
      " \xe2\x94\x94\xe2\x94\x80\xe2\x94\x80 process_file_workflow(/data/f0002.md)  2ms (queued 2ms)"
      "  error\n"
      "      \xe2\x94\x82   error: RuntimeError: cannot read\n"
      "      \xe2\x94\x94\xe2\x94\x80\xe2\x94\x80 load_step \xe2\x86\x92 {\"path\":\"ok\"}  1ms  ok\n";
  assert_string_equal(s, want);
  free(s);
  lode_sysdb_close(db);
}

static void test_folding_of_repeated_siblings(void **state) {
  (void)state;
  lode_sysdb *db = open_db();
  put_run(db, 2000, 500); /* 4 failed */
  lode_trace_view v = {0};
  char *s = render(db, &v, 0);
  /* the first three children, then one line for the rest */
  assert_int_equal(count_of(s, "process_file_workflow("), 3);
  assert_non_null(strstr(s, "(/data/f0003.md)"));
  assert_null(strstr(s, "(/data/f0004.md)"));
  assert_non_null(strstr(s, "\xe2\x80\xa6 1,997 more process_file_workflow, 4 failed: see --errors"
                            " (--all shows them)\n"));
  free(s);

  /* --all: no fold */
  v.all = 1;
  s = render(db, &v, 0);
  assert_int_equal(count_of(s, "process_file_workflow("), 2000);
  assert_null(strstr(s, " more "));
  free(s);
  lode_sysdb_close(db);

  /* a run of 8 stays whole; 9 fold (3 shown, 6 more, no failure to mention) */
  db = open_db();
  put_run(db, 8, 0);
  memset(&v, 0, sizeof v);
  s = render(db, &v, 0);
  assert_int_equal(count_of(s, "process_file_workflow("), 8);
  free(s);
  lode_sysdb_close(db);
  db = open_db();
  put_run(db, 9, 0);
  s = render(db, &v, 0);
  assert_int_equal(count_of(s, "process_file_workflow("), 3);
  assert_non_null(strstr(s, "\xe2\x80\xa6 6 more process_file_workflow (--all shows them)\n"));
  free(s);
  lode_sysdb_close(db);
}

static void test_errors_and_name_filters(void **state) {
  (void)state;
  lode_sysdb *db = open_db();
  put_run(db, 2000, 500);
  lode_trace_view v = {0};
  v.errors = 1;
  char *s = render(db, &v, 0);
  /* the failed children and their ancestor, each with its id; no step of
   * theirs (they did not fail), no sibling that did not fail */
  assert_int_equal(count_of(s, "process_file_workflow("), 4);
  assert_non_null(strstr(s, "(/data/f0500.md)"));
  assert_non_null(strstr(s, "(/data/f2000.md)"));
  assert_int_equal(count_of(s, "error: RuntimeError: cannot read"), 4);
  assert_int_equal(count_of(s, "ingest_folder_workflow(docs)"), 1);
  assert_null(strstr(s, "discover_files_step"));
  assert_null(strstr(s, "load_step"));
  assert_null(strstr(s, " more "));
  assert_non_null(strstr(s, "#01900000-0000-7000-8000-000000000600")); /* child 500's id */
  free(s);

  /* --name: the matching spans and their ancestors */
  memset(&v, 0, sizeof v);
  v.name_glob = "discover_*";
  s = render(db, &v, 0);
  assert_int_equal(count_of(s, "\n"), 3); /* header, root, the step */
  assert_non_null(strstr(s, "discover_files_step(docs)"));
  free(s);
  lode_sysdb_close(db);

  /* nothing failed */
  db = open_db();
  put_run(db, 5, 0);
  memset(&v, 0, sizeof v);
  v.errors = 1;
  s = render(db, &v, 0);
  assert_non_null(strstr(s, "(no span failed)\n"));
  free(s);
  lode_sysdb_close(db);
}

static void test_depth(void **state) {
  (void)state;
  lode_sysdb *db = open_db();
  put_run(db, 20, 0);
  lode_trace_view v = {0};
  v.depth = 1;
  char *s = render(db, &v, 0);
  /* the root alone, with how many spans it hides: 1 + 20 + 20 */
  assert_int_equal(count_of(s, "\n"), 2);
  assert_non_null(strstr(s, "ingest_folder_workflow(docs) \xe2\x86\x92 {\"files\":3}  14m59s  ok"
                            "  (+41 below)\n"));
  free(s);
  v.depth = 2;
  s = render(db, &v, 0);
  assert_null(strstr(s, "load_step"));
  assert_int_equal(count_of(s, "  (+1 below)"), 3); /* the three children shown */
  assert_non_null(strstr(s, "discover_files_step(docs)  2ms  ok\n")); /* a leaf: no count */
  free(s);
  /* JSON honours --depth too */
  v.json = 1;
  s = render(db, &v, 0);
  cJSON *doc = cJSON_Parse(s);
  assert_non_null(doc);
  cJSON *root = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "spans"), 0);
  cJSON *kids = cJSON_GetObjectItem(root, "children");
  assert_int_equal(cJSON_GetArraySize(kids), 21);
  cJSON *k1 = cJSON_GetArrayItem(kids, 1);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(k1, "children")), 0);
  assert_int_equal(cJSON_GetObjectItem(k1, "queued_ms")->valueint, 1);
  cJSON_Delete(doc);
  free(s);
  lode_sysdb_close(db);
}

static void test_slowest(void **state) {
  (void)state;
  lode_sysdb *db = open_db();
  put_run(db, 50, 0);
  lode_trace_view v = {0};
  v.slowest = 3;
  char *s = render(db, &v, 0);
  /* the root (14m59s), then child 50 (50ms), then child 49, flat, with
   * their parent's name */
  char *a = strstr(s, "\ningest_folder_workflow(docs)");
  char *b = strstr(s, "\nprocess_file_workflow(/data/f0050.md)  50ms");
  char *c = strstr(s, "\nprocess_file_workflow(/data/f0049.md)  49ms");
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(c);
  assert_true(a < b && b < c);
  assert_non_null(strstr(b, "  under ingest_folder_workflow\n"));
  assert_int_equal(count_of(s, "\n"), 4);
  free(s);
  lode_sysdb_close(db);
}

static void test_one_span(void **state) {
  (void)state;
  lode_sysdb *db = open_db();
  put_run(db, 3, 3);
  /* a long input, cut unless --full */
  char *big = malloc(6002);
  big[0] = '"';
  memset(big + 1, 'x', 5999);
  big[6000] = '"', big[6001] = 0;
  put(db, &(sp){7, 1, "big_step", 1500, 1600, big, NULL, NULL, NULL});
  free(big);

  lode_trace_view v = {0};
  v.span_id = "01900000-0000-7000-8000-000000000103"; /* child 3, failed */
  char *s = render(db, &v, 0);
  assert_non_null(strstr(s, "span 01900000-0000-7000-8000-000000000103  process_file_workflow\n"));
  assert_non_null(strstr(s, "parent: 01900000-0000-7000-8000-000000000001  ingest_folder_workflow\n"));
  assert_non_null(strstr(s, "duration: 3ms (queued 3ms, ran 0ms)\n"));
  assert_non_null(strstr(s, "status: error\n"));
  assert_non_null(strstr(s, "children: 1\n"));
  assert_non_null(strstr(s, "/data/f0003.md"));
  assert_non_null(strstr(s, "error:\n"));
  free(s);

  v.span_id = "01900000-0000-7000-8000-000000000007";
  s = render(db, &v, 0);
  assert_non_null(strstr(s, "more bytes (--full shows all)\n"));
  assert_true(strlen(s) < 3000);
  free(s);
  v.full = 1;
  s = render(db, &v, 0);
  assert_null(strstr(s, "more bytes"));
  assert_true(strlen(s) > 6000);
  free(s);

  v.span_id = "01900000-0000-7000-8000-000000009999";
  s = render(db, &v, 2);
  free(s);
  lode_sysdb_close(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tree_links_previews_and_metadata),
      cmocka_unit_test(test_json_preview_cuts_whole_characters),
      cmocka_unit_test(test_preview_lines),
      cmocka_unit_test(test_folding_of_repeated_siblings),
      cmocka_unit_test(test_errors_and_name_filters),
      cmocka_unit_test(test_depth),
      cmocka_unit_test(test_slowest),
      cmocka_unit_test(test_one_span),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
