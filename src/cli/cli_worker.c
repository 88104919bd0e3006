/* cli_worker.c - worker threads (`--workers N`) and `lode worker`.
 *
 * Each worker thread has its own lua_State that loaded the same pipeline
 * and its own executor (SQLite connection); nothing else is shared but an
 * atomic stop flag. A worker runs its scheduler: it claims queued workflows
 * within their queues' limits and runs them as coroutines. On stop it puts
 * back on their queues the workflows it holds (claimed again later, by this
 * or another process: never lost). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "base/log.h"
#include "base/util.h"

struct lode_workers {
  pthread_t *th;
  int n;
  atomic_int stop;
  lode_cli *cli;
  char pipeline[PATH_MAX];
  const char *db_path;
};

static void *worker_main(void *arg) {
  lode_workers *w = arg;
  lua_State *L;
  char abs[PATH_MAX], version[17];
  if (lode_pipeline_load(w->cli, w->pipeline, &L, abs, version) != LODE_EXIT_OK) return NULL;
  lua_pop(L, 1);
  lode_cli_exporter_attach(L);
  int idle = 0;
  while (!atomic_load(&w->stop)) {
    if (lode_host_sched_pass(L) == 0) {
      lode_sleep_s(idle < 20 ? 0.001 : 0.01);
      idle++;
    } else {
      idle = 0;
    }
  }
  int released = lode_host_sched_release(L);
  if (released) lode_debug("worker released %d workflow(s) to their queues", released);
  lua_close(L);
  return NULL;
}

int lode_default_workers(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

lode_workers *lode_workers_start(lode_cli *c, const char *pipeline, int n) {
  if (n <= 0) return NULL;
  lode_workers *w = calloc(1, sizeof *w);
  if (!w || !(w->th = calloc((size_t)n, sizeof *w->th))) {
    free(w);
    return NULL;
  }
  w->cli = c;
  lode_strlcpy(w->pipeline, pipeline, sizeof w->pipeline);
  atomic_init(&w->stop, 0);
  for (int i = 0; i < n; i++) {
    if (pthread_create(&w->th[i], NULL, worker_main, w) != 0) {
      lode_warn("cannot start worker thread %d", i + 1);
      break;
    }
    w->n++;
  }
  return w;
}

void lode_workers_stop(lode_workers *w) {
  if (!w) return;
  atomic_store(&w->stop, 1);
  for (int i = 0; i < w->n; i++) pthread_join(w->th[i], NULL);
  free(w->th);
  free(w);
}

static atomic_int got_signal;
static void on_signal(int sig) {
  (void)sig;
  atomic_store(&got_signal, 1);
}

static const lode_cli_opt worker_opts[] = {
    {"--workers", "N"}, {"--db", "PATH"}, {"--sync", "MODE"}, {NULL, NULL}};

int lode_cmd_worker(lode_cli *c, int argc, char **argv) {
  int pr = lode_cli_parse(c, "worker", worker_opts, argc, argv, 1);
  if (pr) return pr > 0 ? LODE_EXIT_OK : LODE_EXIT_USAGE;
  if (c->argc != 1) {
    if (!c->argc)
      fprintf(stderr, "lode worker: no pipeline file\n");
    else if (c->argv[1][0] == '-')
      fprintf(stderr, "lode worker: '%s' after the pipeline file: lode's options go before it "
                      "(lode worker %s ... %s)\n", c->argv[1], c->argv[1], c->argv[0]);
    else
      fprintf(stderr, "lode worker: a worker takes no pipeline arguments (its workflows carry "
                      "their own)\n");
    lode_cmd_usage("worker");
    return LODE_EXIT_USAGE;
  }
  if (lode_cli_check_db(c)) return LODE_EXIT_USAGE;
  /* load once here: a bad file is reported (exit 2) before any thread starts,
   * and this state recovers the pipeline's unfinished workflows */
  lua_State *L;
  char abs[PATH_MAX], version[17];
  int rc = lode_pipeline_load(c, c->argv[0], &L, abs, version);
  if (rc != LODE_EXIT_OK) return rc;
  lua_pop(L, 1);
  lode_cli_exporter_start(L, c->db);
  char adopted[512];
  lode_cli_recover(L, abs, version, NULL, NULL, 0, adopted, NULL, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int n = c->workers > 0 ? c->workers : lode_default_workers();
  lode_workers *w = lode_workers_start(c, abs, n);
  fprintf(stderr, "lode: worker serving %s with %d thread%s (SIGINT or SIGTERM to stop)\n", abs,
          n, n == 1 ? "" : "s");
  char msg[2048];
  int failed = 0;
  while (!atomic_load(&got_signal) && !(failed = lode_host_state_gave_up(msg, sizeof msg)))
    lode_sleep_s(0.05);
  if (failed) fprintf(stderr, "lode: %s\n", msg);
  fprintf(stderr, "lode: stopping: releasing queued workflows this worker holds\n");
  lode_workers_stop(w);
  lua_close(L);
  lode_cli_exporter_stop();
  return failed ? LODE_EXIT_FAILED : LODE_EXIT_OK;
}
