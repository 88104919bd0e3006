/* bench_otlp.c - OTLP encoding and export to a local sink, without the
 * outbox: the span bodies of a filled state database (lode_trace_fill) are
 * read into memory, then encoded as ExportTraceServiceRequests of 1000 spans
 * and POSTed to the sink, one request at a time on one keep-alive
 * connection, as the exporter does.
 *   bench_otlp DB URL      (prints one JSON line) */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/http.h"
#include "trace/otlp.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: bench_otlp DB URL\n");
    return 2;
  }
  sqlite3 *db;
  sqlite3_stmt *st;
  if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT body FROM trace_records WHERE kind='span'", -1, &st,
                         NULL) != SQLITE_OK) {
    fprintf(stderr, "bench_otlp: %s\n", sqlite3_errmsg(db));
    return 1;
  }
  size_t n = 0, cap = 1024;
  char **bodies = malloc(cap * sizeof *bodies);
  size_t *lens = malloc(cap * sizeof *lens);
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (n == cap) {
      cap *= 2;
      bodies = realloc(bodies, cap * sizeof *bodies);
      lens = realloc(lens, cap * sizeof *lens);
    }
    lens[n] = (size_t)sqlite3_column_bytes(st, 0);
    bodies[n] = malloc(lens[n] + 1);
    memcpy(bodies[n], sqlite3_column_text(st, 0), lens[n] + 1);
    n++;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  lode_otlp_config cfg;
  char err[256];
  memset(&cfg, 0, sizeof cfg);
  lode_otlp_kv res = {"service.name", "bench"};
  cfg.resource[0] = res;
  cfg.nresource = 1;
  lode_otlp_enc *e = lode_otlp_enc_new(&cfg);
  lode_http *h = lode_http_new(err, sizeof err);
  const char *hdrs[] = {"Content-Type: application/x-protobuf", "Expect:"};
  if (!e || !h || lode_http_set_headers(h, hdrs, 2)) {
    fprintf(stderr, "bench_otlp: setup failed: %s\n", err);
    return 1;
  }
  lode_buf req;
  lode_buf_init(&req, (size_t)64 << 20);
  lode_http_resp *resp = malloc(sizeof *resp);
  double enc_s = 0, t0 = now_s();
  size_t bytes = 0, spans = 0;
  int requests = 0, bad = 0;
  for (size_t i = 0; i < n; i += 1000) {
    double a = now_s();
    lode_otlp_enc_reset(e);
    for (size_t j = i; j < n && j < i + 1000; j++)
      if (lode_otlp_enc_add(e, bodies[j], lens[j]) != 1) bad++;
    spans += (size_t)lode_otlp_enc_count(e);
    if (lode_otlp_enc_pack(e, &req)) bad++;
    enc_s += now_s() - a;
    bytes += req.len;
    requests++;
    if (lode_http_send(h, "POST", argv[2], (const char *)req.p, req.len, 30, resp) ||
        resp->status / 100 != 2)
      bad++;
  }
  double total = now_s() - t0;
  printf("{\"spans\":%zu,\"requests\":%d,\"bytes\":%zu,\"encode_s\":%.4f,\"total_s\":%.4f,"
         "\"bad\":%d}\n", spans, requests, bytes, enc_s, total, bad);
  for (size_t i = 0; i < n; i++) free(bodies[i]);
  free(bodies);
  free(lens);
  free(resp);
  lode_buf_free(&req);
  lode_http_free(h);
  lode_otlp_enc_free(e);
  return bad ? 1 : 0;
}
