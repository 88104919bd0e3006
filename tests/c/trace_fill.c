/* trace_fill.c - test and bench helper: writes traces and spans through the
 * C API (as the executor does: records inside the caller's transaction) and
 * optionally runs the background exporter configured from the environment.
 *
 *   lode_trace_fill DB [--traces N] [--spans M] [--twice] [--feedback]
 *                   [--bad-name NAME] [--export] [--flush SECONDS] [--pause-ms MS]
 *                   [--no-writer]   (accepted; the upsert is always cached now)
 *
 * --twice writes every span first as started (no end) and then again as
 * finished, like a real run; --pause-ms waits after each commit (so a live
 * exporter sends many small batches, as during a real run). Prints one JSON line with what it did.
 * DB is a file or a postgresql:// URL: everything goes through the state
 * interface. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "trace/opik_config.h"
#include "state/sysdb.h"
#include "trace/trace.h"
#include "trace/trace_export.h"
#include "base/util.h"

int main(int argc, char **argv) {
  int ntraces = 1, nspans = 3, twice = 0, feedback = 0, do_export = 0, pause_ms = 0;
  int use_writer = 1;
  double flush = 10;
  const char *bad = NULL;
  char err[512];
  if (argc < 2) {
    fprintf(stderr, "usage: lode_trace_fill DB [--traces N] [--spans M] [--twice] [--feedback]"
                    " [--bad-name NAME] [--export] [--flush S]\n");
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--traces") && i + 1 < argc) ntraces = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--spans") && i + 1 < argc) nspans = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--twice")) twice = 1;
    else if (!strcmp(argv[i], "--feedback")) feedback = 1;
    else if (!strcmp(argv[i], "--export")) do_export = 1;
    else if (!strcmp(argv[i], "--flush") && i + 1 < argc) flush = atof(argv[++i]);
    else if (!strcmp(argv[i], "--pause-ms") && i + 1 < argc) pause_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--no-writer")) use_writer = 0;
    else if (!strcmp(argv[i], "--bad-name") && i + 1 < argc) bad = argv[++i];
    else {
      fprintf(stderr, "trace_fill: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (nspans < 1) nspans = 1;
  /* a real state database: the exporter renders workflow rows too (these
   * rows are not `traced`: their records are the ones written here) */
  lode_sysdb *sys = NULL;
  if (lode_sysdb_open(argv[1], 0, &sys, err, sizeof err) != LODE_OK) {
    fprintf(stderr, "trace_fill: %s\n", err);
    return 1;
  }
  lode_exporter *ex = NULL;
  lode_opik_config cfg;
  memset(&cfg, 0, sizeof cfg);
  if (do_export) {
    if (lode_opik_config_load(&cfg, NULL, err, sizeof err) ||
        !(ex = lode_exporter_start(argv[1], &cfg, err, sizeof err))) {
      fprintf(stderr, "trace_fill: %s\n", err);
      return 1;
    }
  }
  (void)use_writer; /* the upsert is always prepared once per connection now */
  char (*ids)[37] = malloc((size_t)nspans * sizeof *ids);
  if (!ids) return 1;
  int64_t t0 = lode_mono_ns();
  long long puts = 0;
  for (int t = 0; t < ntraces; t++) {
    char tid[37], wfid[64];
    lode_uuid7(tid);
    for (int s = 0; s < nspans; s++) lode_uuid7(ids[s]);
    snprintf(wfid, sizeof wfid, "wf-%d", t);
    const char *tags[] = {"execution:workflow", "phase:TEST"};
    int64_t start = lode_now_ms();
    for (int pass = twice ? 0 : 1; pass < 2; pass++) {
      int fin = pass == 1;
      int64_t end = fin ? lode_now_ms() + 1 : 0;
      if (lode_sysdb_begin(sys, err, sizeof err)) goto fail;
      lode_trace_rec tr = {tid, "fill_workflow", start, end, "{\"folder\":\"docs\"}",
                           fin ? "{\"files\":3}" : NULL, "{\"phase\":\"TEST\"}", tags, 2,
                           NULL, NULL, NULL};
      if (lode_trace_put_trace(sys, &tr, err, sizeof err))
        goto fail;
      puts++;
      for (int s = 0; s < nspans; s++) {
        char name[64], out[64];
        snprintf(name, sizeof name, s == 0 ? "fill_workflow" : "step_%d", s);
        if (bad && t == 0 && s == 1) snprintf(name, sizeof name, "%s", bad);
        snprintf(out, sizeof out, "{\"n\":%d,\"pass\":%d}", s, pass);
        int err_span = fin && s == 2;
        lode_span_rec sp = {0};
        sp.id = ids[s];
        sp.trace_id = tid;
        sp.parent_span_id = s == 0 ? NULL : ids[s < 3 ? 0 : 1];
        sp.name = name;
        sp.type = s % 4 == 3 ? "tool" : NULL;
        sp.start_ms = start;
        sp.end_ms = end;
        sp.input_json = "[1,2,3]";
        sp.output_json = fin ? out : NULL;
        sp.metadata_json = "{\"step\":1}";
        sp.error_type = err_span ? "RuntimeError" : NULL;
        sp.error_message = err_span ? "boom" : NULL;
        sp.error_traceback = err_span ? "stack traceback:\n\t[C]: in ?" : NULL;
        if (lode_trace_put_span(sys, &sp, err, sizeof err))
          goto fail;
        puts++;
      }
      if (fin && feedback &&
          lode_trace_put_feedback(sys, tid, "quality", 0.75, "fine", err, sizeof err))
        goto fail;
      if (!pass || !twice) {
        /* through the interface: the same on every backend */
        lode_wf_row w;
        memset(&w, 0, sizeof w);
        w.id = wfid;
        w.name = "fill_workflow";
        w.status = LODE_WF_PENDING;
        w.trace_id = tid;
        w.span_id = ids[0];
        int existed;
        if (lode_sysdb_wf_insert(sys, &w, &existed, err, sizeof err)) goto fail;
      }
      if (lode_sysdb_commit(sys, err, sizeof err)) goto fail;
      lode_exporter_kick(ex);
      if (pause_ms > 0) lode_sleep_s(pause_ms / 1000.0);
    }
  }
  int64_t t1 = lode_mono_ns();
  int left = lode_exporter_stop(ex, flush);
  int64_t t2 = lode_mono_ns();
  printf("{\"traces\":%d,\"spans\":%lld,\"puts\":%lld,\"put_s\":%.6f,\"stop_s\":%.6f,"
         "\"pending\":%d}\n", ntraces, (long long)ntraces * nspans, puts,
         (double)(t1 - t0) / 1e9, (double)(t2 - t1) / 1e9, left);
  free(ids);
  lode_opik_config_free(&cfg);
  lode_sysdb_close(sys);
  return 0;
fail:
  fprintf(stderr, "trace_fill: %s\n", err);
  return 1;
}
