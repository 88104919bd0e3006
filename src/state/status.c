/* status.c - workflow statuses, the same for every backend (state/sysdb.h). */
#include <string.h>
#include <strings.h>

#include "state/sysdb.h"

static const char *const status_names[] = {
#define X(s) #s,
    LODE_WF_STATUSES(X)
#undef X
};

const char *lode_wf_status_name(int s) {
  return s >= 0 && s < LODE_WF_NSTATUS ? status_names[s] : "UNKNOWN";
}

int lode_wf_status_finished(int s) {
  return s == LODE_WF_SUCCESS || s == LODE_WF_ERROR || s == LODE_WF_CANCELLED ||
         s == LODE_WF_MAX_RECOVERY_ATTEMPTS_EXCEEDED;
}

int lode_wf_status_parse(const char *name) {
  for (int i = 0; i < LODE_WF_NSTATUS; i++)
    if (!strcasecmp(name, status_names[i])) return i;
  return -1;
}
