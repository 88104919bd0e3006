#ifndef LODE_ERROR_H
#define LODE_ERROR_H
/* error.h - lode's status codes and their messages, from one X-macro table.
 * Functions return one of these and, where a detail helps, fill a caller's
 * `char *err, size_t errlen` with a message naming the thing. */

#define LODE_ERRORS(X)                                                       \
  X(OK, "ok")                                                                \
  X(ENOMEM, "out of memory")                                                 \
  X(EDB, "state database error")                                             \
  X(ENOTFOUND, "not found")                                                  \
  X(ECONFLICT, "conflicting record")                                         \
  X(ECORRUPT, "corrupt record")                                              \
  X(ECANCELLED, "workflow was cancelled")                                    \
  X(ENONDET, "workflow is not deterministic")                                \
  X(EDEADLETTER, "workflow exceeded its recovery attempts")                  \
  X(EUSAGE, "bad usage")                                                     \
  X(EIO, "input/output error")                                               \
  X(EBUSY, "owned by a live process")                                        \
  X(EFULL, "the disk (or the database's size limit) is full")

enum lode_status_code {
#define X(name, msg) LODE_##name,
  LODE_ERRORS(X)
#undef X
};

const char *lode_strerror(int code);

/* Error texts kept in the state database (workflow and step rows, trace
 * records) are cut at this many bytes (docs/operations.md): a step failing
 * with a 20 MB message must not write it five times nor make a record too
 * big to send. */
#define LODE_ERROR_MAX_BYTES ((size_t)64 << 10)

/* When strlen(s) > max: a malloc'd copy of its first bytes (cut at a UTF-8
 * character boundary, at most max) followed by
 * "...[error truncated by lode: K of N bytes kept]"; else NULL (use s).
 * Also NULL when out of memory (*oom set, if given). */
char *lode_error_cut(const char *s, size_t max, int *oom);

#endif
