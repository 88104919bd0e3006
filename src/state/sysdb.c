/* sysdb.c - the state interface's forwarders: lode_sysdb_open picks a
 * backend from the database's name, every other call goes to the table of
 * the connection it is given (state/backend.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "state/backend.h"

#define OPS(db) (*(const lode__sysdb_ops *const *)(db))

int lode_sysdb_is_url(const char *name) {
  return name && (!strncasecmp(name, "postgresql://", 13) || !strncasecmp(name, "postgres://", 11));
}

int lode_sysdb_open(const char *path, int sync_full, lode_sysdb **out, char *err,
                    size_t errlen) {
  return lode_sysdb_is_url(path) ? lode__pg_open(path, sync_full, out, err, errlen)
                                 : lode__sqlite_open(path, sync_full, out, err, errlen);
}

int lode_sysdb_open_readonly(const char *path, lode_sysdb **out, char *err, size_t errlen) {
  return lode_sysdb_is_url(path) ? lode__pg_open_readonly(path, out, err, errlen)
                                 : lode__sqlite_open_readonly(path, out, err, errlen);
}

const char *lode_sysdb_default_path(void) {
  const char *p = getenv("LODE_DB");
  return p && *p ? p : ".lode/lode.db";
}

/* A NULL connection: nothing for close, 0 from faults (the only two
 * callers may pass one); a programming error for the rest. */
#define X(ret, name, params, args) \
  ret lode_sysdb_##name params {   \
    if (db) OPS(db)->name args;    \
  }
LODE__SYSDB_OPS_VOID(X)
#undef X
#define X(ret, name, params, args)              \
  ret lode_sysdb_##name params {                \
    return db ? OPS(db)->name args : (ret)0;    \
  }
LODE__SYSDB_OPS_VALUE(X)
#undef X
