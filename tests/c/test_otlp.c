/* test_otlp.c - trace context (trace_ctx.h: ids, traceparent, baggage, the
 * headers going out), OTLP settings from OTEL_* (otlp_config.h), the
 * encoder (otlp.h, decoded back with the generated protobuf-c code) and the
 * per-destination outbox state (state/trace_store.h). */
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
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "state/sysdb.h"
#include "state/trace_store.h"
#include "trace/otlp.h"
#include "trace/otlp_config.h"
#include "trace/trace.h"
#include "trace/trace_ctx.h"

#define T7 "0192f0c1-a2b3-7cde-8f00-112233445566"
#define S7 "0192f0c1-a2b3-7cde-9f00-aabbccddeeff"

static void test_uuid7_and_span_rule(void **state) {
  (void)state;
  uint8_t b[16], s[8];
  assert_int_equal(lode_uuid7_parse(T7, b), 0);
  assert_int_equal(b[0], 0x01);
  assert_int_equal(b[15], 0x66);
  assert_int_equal(lode_uuid7_parse("0192f0c1-a2b3-4cde-8f00-112233445566", NULL), -1); /* v4 */
  assert_int_equal(lode_uuid7_parse("0192f0c1-a2b3-7cde-0f00-112233445566", NULL), -1); /* variant */
  assert_int_equal(lode_uuid7_parse("0192f0c1a2b37cde8f00112233445566", NULL), -1);
  assert_int_equal(lode_uuid7_parse("0192f0c1-a2b3-7cde-8f00-11223344556g", NULL), -1);
  assert_int_equal(lode_uuid7_parse(NULL, NULL), -1);
  assert_int_equal(lode_otlp_span_id(S7, s), 0);
  static const uint8_t want[8] = {0x9f, 0x00, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  assert_memory_equal(s, want, 8);
}

static void test_traceparent(void **state) {
  (void)state;
  uint8_t t[16], p[8], f;
  assert_int_equal(
      lode_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t, p, &f),
      0);
  assert_int_equal(t[0], 0x4b);
  assert_int_equal(p[7], 0xb7);
  assert_int_equal(f, 1);
  static const char *const bad[] = {
      "", "00", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(lode_traceparent_parse(bad[i], t, p, &f), -1);
  /* a later version may add fields after a dash */
  assert_int_equal(
      lode_traceparent_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz", t,
                             p, &f),
      0);
}

static void test_context_read(void **state) {
  (void)state;
  lode_trace_ctx c;
  assert_int_equal(lode_trace_ctx_read(&c, "test", NULL, NULL, T7, S7), 1);
  assert_string_equal(c.trace_id, T7);
  assert_string_equal(c.parent_span_id, S7);
  /* a UUIDv7 W3C trace id is the trace; a random one is not */
  assert_int_equal(lode_trace_ctx_read(&c, "test",
                                       "00-0192f0c1a2b37cde8f00112233445566-00f067aa0ba902b7-01",
                                       NULL, NULL, NULL), 1);
  assert_string_equal(c.trace_id, T7);
  assert_string_equal(c.parent_span_id, "");
  assert_int_equal(lode_trace_ctx_read(&c, "test",
                                       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                       NULL, NULL, NULL), 1);
  assert_string_equal(c.trace_id, "");
  assert_string_equal(c.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  /* Opik's pair from baggage members */
  assert_int_equal(lode_trace_ctx_read(&c, "test", NULL,
                                       "opik_trace_id=" T7 ", opik_parent_span_id=" S7 ";p=1",
                                       NULL, NULL), 1);
  assert_string_equal(c.trace_id, T7);
  assert_string_equal(c.parent_span_id, S7);
  /* malformed: nothing taken */
  assert_int_equal(lode_trace_ctx_read(&c, "test", "x", "a b", "x", S7), 0);
  assert_string_equal(c.trace_id, "");
  assert_string_equal(c.baggage, "");
  /* upper case Opik ids are taken, written lower case */
  assert_int_equal(lode_trace_ctx_read(&c, "test", NULL, NULL,
                                       "0192F0C1-A2B3-7CDE-8F00-112233445566", S7), 1);
  assert_string_equal(c.trace_id, T7);
}

static void test_headers_out(void **state) {
  (void)state;
  lode_ctx_headers h;
  lode_trace_ctx c;
  lode_trace_join(NULL);
  assert_int_equal(lode_ctx_headers_make(&h, T7, S7), 0);
  assert_string_equal(h.traceparent, "00-0192f0c1a2b37cde8f00112233445566-9f00aabbccddeeff-01");
  assert_string_equal(h.baggage, "opik_trace_id=" T7 ",opik_parent_span_id=" S7);
  assert_string_equal(h.value[2], T7);
  assert_string_equal(h.value[3], S7);
  /* a joined caller's baggage travels on, minus its own Opik members */
  assert_int_equal(lode_trace_ctx_read(&c, "t", NULL, "user=ann,opik_trace_id=" T7, NULL, NULL),
                   1);
  lode_trace_join(&c);
  assert_int_equal(lode_ctx_headers_make(&h, T7, S7), 0);
  assert_string_equal(h.baggage, "opik_trace_id=" T7 ",opik_parent_span_id=" S7 ",user=ann");
  lode_trace_join(NULL);
  assert_int_equal(lode_ctx_headers_make(&h, "nope", S7), -1);
}

static void test_config(void **state) {
  (void)state;
  lode_otlp_config c;
  char err[256];
  unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318/", 1);
  setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20x, projectName = p ,bad", 1);
  setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,team=a%2Cb", 1);
  setenv("OTEL_SERVICE_NAME", "svc", 1);
  setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500", 1);
  assert_int_equal(lode_otlp_config_load(&c, err, sizeof err), 0);
  assert_string_equal(c.url, "http://h:4318/v1/traces");
  assert_int_equal(c.nheaders, 2);
  assert_string_equal(c.headers[0].value, "Bearer x");
  assert_string_equal(c.headers[1].key, "projectName");
  assert_string_equal(c.headers[1].value, "p");
  assert_string_equal(c.resource[0].key, "service.name");
  assert_string_equal(c.resource[0].value, "svc");
  assert_string_equal(c.resource[1].value, "a,b");
  assert_true(c.timeout_s > 2.49 && c.timeout_s < 2.51);
  assert_int_equal(lode_otlp_config_sends(&c), 1);
  lode_otlp_config_free(&c);
  setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t/x", 1);
  setenv("OTEL_SDK_DISABLED", "true", 1);
  assert_int_equal(lode_otlp_config_load(&c, err, sizeof err), 0);
  assert_string_equal(c.url, "http://t/x");
  assert_int_equal(lode_otlp_config_sends(&c), 0);
  lode_otlp_config_free(&c);
  const char *vars[] = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT",
                        "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_RESOURCE_ATTRIBUTES",
                        "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_SDK_DISABLED"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
  assert_int_equal(lode_otlp_config_load(&c, err, sizeof err), 0);
  assert_null(c.url);
  assert_string_equal(c.resource[0].value, "lode");
  lode_otlp_config_free(&c);
}

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;

static const char *attr(const Opentelemetry__Proto__Trace__V1__Span *s, const char *k) {
  for (size_t i = 0; i < s->n_attributes; i++)
    if (!strcmp(s->attributes[i]->key, k) && s->attributes[i]->value->value_case ==
                                                 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
      return s->attributes[i]->value->string_value;
  return NULL;
}

static void test_encoder(void **state) {
  (void)state;
  lode_otlp_config c;
  memset(&c, 0, sizeof c);
  lode_otlp_kv r = {"service.name", "t"};
  c.resource[0] = r;
  c.nresource = 1;
  lode_otlp_enc *e = lode_otlp_enc_new(&c);
  assert_non_null(e);
  const char *open_span = "{\"id\":\"" S7 "\",\"trace_id\":\"" T7 "\",\"name\":\"a\","
                          "\"start_time\":\"2026-12-03T10:00:00.000Z\"}";
  const char *closed = "{\"id\":\"" S7 "\",\"trace_id\":\"" T7 "\",\"parent_span_id\":\"" T7
                       "\",\"name\":\"a \\\"quoted\\\" name\",\"type\":\"tool\","
                       "\"start_time\":\"2026-12-03T10:00:00.250Z\","
                       "\"end_time\":\"2026-12-03T10:00:01.5Z\",\"input\":{\"x\":[1,\"}\"]},"
                       "\"output\":\"plain\",\"metadata\":{\"workflow_id\":\"w\",\"step\":3},"
                       "\"tags\":[\"a\",\"b\"],\"usage\":{\"prompt_tokens\":7},"
                       "\"error_info\":{\"exception_type\":\"LuaError\",\"message\":\"m\","
                       "\"traceback\":\"line1\\nline2\"}}";
  assert_int_equal(lode_otlp_enc_add(e, open_span, strlen(open_span)), 0);
  assert_int_equal(lode_otlp_enc_add(e, closed, strlen(closed)), 1);
  assert_int_equal(lode_otlp_enc_add(e, "{\"id\":", 6), -1);
  assert_int_equal(lode_otlp_enc_add(e, "[1]", 3), -1);
  assert_int_equal(lode_otlp_enc_count(e), 1);
  lode_buf b;
  lode_buf_init(&b, 0);
  assert_int_equal(lode_otlp_enc_pack(e, &b), 0);
  req_t *q = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
      NULL, b.len, b.p);
  assert_non_null(q);
  assert_int_equal(q->n_resource_spans, 1);
  Opentelemetry__Proto__Trace__V1__Span *s = q->resource_spans[0]->scope_spans[0]->spans[0];
  assert_string_equal(s->name, "a \"quoted\" name");
  assert_int_equal(s->trace_id.len, 16);
  assert_int_equal(s->span_id.data[0], 0x9f);
  assert_int_equal(s->parent_span_id.data[0], 0x8f); /* T7's last 8 bytes */
  assert_true(s->end_time_unix_nano - s->start_time_unix_nano == 1250000000ull);
  assert_string_equal(attr(s, "opik.span_id"), S7);
  assert_string_equal(attr(s, "input"), "{\"x\":[1,\"}\"]}");
  assert_string_equal(attr(s, "output"), "\"plain\"");
  assert_string_equal(attr(s, "lode.workflow.id"), "w");
  assert_int_equal(s->status->code,
                   OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
  assert_int_equal(s->n_events, 1);
  assert_string_equal(s->events[0]->attributes[2]->value->string_value, "line1\nline2");
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(q,
                                                                                         NULL);
  lode_otlp_enc_reset(e);
  assert_int_equal(lode_otlp_enc_count(e), 0);
  lode_buf_free(&b);
  lode_otlp_enc_free(e);
}

static void test_outbox_per_destination(void **state) {
  (void)state;
  lode_sysdb *db;
  char err[256];
  assert_int_equal(lode_sysdb_open(":memory:", 0, &db, err, sizeof err), LODE_OK);
  lode_span_rec sp;
  memset(&sp, 0, sizeof sp);
  sp.id = S7;
  sp.trace_id = T7;
  sp.name = "s";
  sp.start_ms = 1;
  sp.end_ms = 2;
  lode_trace_rec tr;
  memset(&tr, 0, sizeof tr);
  tr.id = T7;
  tr.name = "t";
  assert_int_equal(lode_trace_put_span(db, &sp, err, sizeof err), 0);
  assert_int_equal(lode_trace_put_trace(db, &tr, err, sizeof err), 0);
  assert_int_equal(lode_sysdb_outbox_pending(db), 2); /* Opik: trace and span */
  lode_sysdb_outbox_use(db, LODE_OUTBOX_OTLP);
  assert_int_equal(lode_sysdb_outbox_pending(db), 1); /* OTLP: the span only */
  lode_outbox_ref ref = {S7, 1};
  int changed = 0;
  assert_int_equal(lode_sysdb_outbox_mark(db, LODE_OUTBOX_SENT, &ref, 1, NULL, 0, &changed, err,
                                          sizeof err), LODE_OK);
  assert_int_equal(changed, 1);
  assert_int_equal(lode_sysdb_outbox_pending(db), 0);
  lode_sysdb_outbox_use(db, LODE_OUTBOX_OPIK);
  assert_int_equal(lode_sysdb_outbox_pending(db), 2); /* untouched */
  /* a new version is pending again for both */
  sp.end_ms = 3;
  assert_int_equal(lode_trace_put_span(db, &sp, err, sizeof err), 0);
  lode_sysdb_outbox_use(db, LODE_OUTBOX_OTLP);
  assert_int_equal(lode_sysdb_outbox_pending(db), 1);
  ref.rev = 2;
  assert_int_equal(lode_sysdb_outbox_mark(db, LODE_OUTBOX_FAILED, &ref, 1, "HTTP 400", 0, NULL,
                                          err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_outbox_pending(db), 0);
  assert_int_equal(lode_sysdb_outbox_retry_failed(db, err, sizeof err), LODE_OK);
  assert_int_equal(lode_sysdb_outbox_pending(db), 1);
  lode_sysdb_close(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uuid7_and_span_rule), cmocka_unit_test(test_traceparent),
      cmocka_unit_test(test_context_read),        cmocka_unit_test(test_headers_out),
      cmocka_unit_test(test_config),              cmocka_unit_test(test_encoder),
      cmocka_unit_test(test_outbox_per_destination),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
