/* store_share.c - identical content stored once.
 *
 * Documents with the same content hash share one set of chunks: the first
 * one stored (the holder) keeps them, each later one records the holder in
 * documents.shared_from and stores none. Every path keeps its own document
 * row (has, get, paths, delete work per path); searches return the content
 * once and name every path (store_search.c).
 *
 * When the holder goes (deleted, or put again with other content) the
 * lowest-id document sharing it becomes the holder: the chunk rows move to
 * it (their ids stay, so vectors and the keyword index need no change) and
 * the others point at it. A stored document that is put again with the same
 * content as a holder elsewhere joins it and drops its own chunks.
 *
 * The statements are written once for both backends ($1, $2: ids, $3: a
 * hash) and run through lode__store_ops.scalar inside the backend's write
 * transaction. On PostgreSQL the caller holds advisory locks on the paths
 * and hashes involved (store_pg.c), so two hosts never rearrange one content
 * at once. */
#include <string.h>

#include "kernels/store_int.h"

#define SCALAR(sql, a, b, t, out) s->ops->scalar(s, sql, a, b, t, out, err, errlen)

/* Hands holder d's chunks and its sharers to the lowest-id sharer, if any. */
static int promote(lode_store *s, int64_t d, char *err, size_t errlen) {
  int64_t m = 0;
  if (SCALAR("SELECT min(id) FROM documents WHERE shared_from = $1", d, 0, NULL, &m)) return -1;
  if (!m) return 0;
  if (SCALAR("UPDATE chunks SET doc_id = $2 WHERE doc_id = $1", d, m, NULL, NULL) ||
      SCALAR("UPDATE documents SET shared_from = $2 WHERE shared_from = $1 AND id <> $2", d, m,
             NULL, NULL) ||
      SCALAR("UPDATE documents SET shared_from = NULL WHERE id = $1", m, 0, NULL, NULL))
    return -1;
  return 0;
}

int lode__store_share_put(lode_store *s, int64_t d, int was_holder, const char *old_hash,
                          const char *hash, int64_t *holder, char *err, size_t errlen) {
  int64_t e = 0;
  *holder = 0;
  if (hash && *hash &&
      SCALAR("SELECT min(id) FROM documents WHERE hash = $3 AND shared_from IS NULL"
             " AND id <> $1",
             d, 0, hash, &e))
    return -1;
  if (was_holder) {
    int same = old_hash && hash && *hash && !strcmp(old_hash, hash);
    if (same && e) {
      /* two holders of one content (a store written before sharing): d's
       * sharers join the other */
      if (SCALAR("UPDATE documents SET shared_from = $2 WHERE shared_from = $1", d, e, NULL,
                 NULL))
        return -1;
    } else if (!same && promote(s, d, err, errlen)) {
      return -1;
    }
  }
  *holder = e;
  return 0;
}

int lode__store_share_delete(lode_store *s, int64_t d, int is_holder, char *err,
                             size_t errlen) {
  return is_holder ? promote(s, d, err, errlen) : 0;
}
