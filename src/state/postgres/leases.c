/* leases.c - the lease of each executor of this process on a PostgreSQL
 * state database (docs/postgres.md, "Hosts, leases and fencing"): one
 * thread per executor id renews executors.lease_until every third of the
 * lease, on a connection of its own. Another host takes the executor's
 * work over once the lease has run out (lode__pg_executor_alive). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/util.h"
#include "state/postgres/pg_int.h"

typedef struct lease {
  struct lease *next;
  char *id, *url;
  int stop;
  pthread_t th;
  pthread_cond_t cv;
} lease;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static lease *leases;

/* $LODE_PG_LEASE_S (seconds, default 30) in ms; at least 300 ms. */
int64_t lode__pg_lease_ms(void) {
  const char *v = getenv("LODE_PG_LEASE_S");
  double s = v && *v ? strtod(v, NULL) : 30.0;
  if (!(s >= 0.3)) s = s > 0 ? 0.3 : 30.0;
  return (int64_t)(s * 1000);
}

static void *renew(void *arg) {
  lease *l = arg;
  int64_t ms = lode__pg_lease_ms();
  PGconn *c = NULL;
  char lease_ms[32];
  snprintf(lease_ms, sizeof lease_ms, "%lld", (long long)ms);
  pthread_mutex_lock(&mu);
  while (!l->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (ms / 3) * 1000000;
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    while (!l->stop && pthread_cond_timedwait(&l->cv, &mu, &ts) != ETIMEDOUT) {
    }
    if (l->stop) break;
    pthread_mutex_unlock(&mu);
    if (!c || PQstatus(c) != CONNECTION_OK) {
      if (c) PQfinish(c);
      c = PQconnectdb(l->url);
    }
    if (PQstatus(c) == CONNECTION_OK) {
      const char *v[2] = {l->id, lease_ms};
      PQclear(PQexecParams(c,
                           "UPDATE lode.executors SET lease_until=lode.now_ms()+$2::bigint"
                           " WHERE id=$1",
                           2, NULL, v, NULL, NULL, 0));
    }
    pthread_mutex_lock(&mu);
  }
  pthread_mutex_unlock(&mu);
  if (c) PQfinish(c);
  return NULL;
}

int lode__pg_lease_start(lode_sysdb *db, const char *executor_id, char *err, size_t errlen) {
  pthread_mutex_lock(&mu);
  lease *l = leases;
  while (l && strcmp(l->id, executor_id)) l = l->next;
  if (l) { /* every thread's executor registers; one renewal for the id */
    pthread_mutex_unlock(&mu);
    return LODE_OK;
  }
  l = calloc(1, sizeof *l);
  if (!l || !(l->id = strdup(executor_id)) || !(l->url = strdup(db->url))) {
    if (l) free(l->id);
    free(l);
    pthread_mutex_unlock(&mu);
    snprintf(err, errlen, "out of memory");
    return LODE_ENOMEM;
  }
  pthread_cond_init(&l->cv, NULL);
  if (pthread_create(&l->th, NULL, renew, l) != 0) {
    pthread_cond_destroy(&l->cv);
    free(l->id);
    free(l->url);
    free(l);
    pthread_mutex_unlock(&mu);
    snprintf(err, errlen, "cannot start the lease thread");
    return LODE_EIO;
  }
  l->next = leases;
  leases = l;
  pthread_mutex_unlock(&mu);
  return LODE_OK;
}

void lode__pg_lease_stop(const char *executor_id) {
  pthread_mutex_lock(&mu);
  lease **pp = &leases;
  while (*pp && strcmp((*pp)->id, executor_id)) pp = &(*pp)->next;
  lease *l = *pp;
  if (!l) {
    pthread_mutex_unlock(&mu);
    return;
  }
  *pp = l->next;
  l->stop = 1;
  pthread_cond_signal(&l->cv);
  pthread_mutex_unlock(&mu);
  pthread_join(l->th, NULL);
  pthread_cond_destroy(&l->cv);
  free(l->id);
  free(l->url);
  free(l);
}
