#ifndef LODE_FS_H
#define LODE_FS_H
/* fs.h - walking folders, reading files with a size limit, content hashes
 * and document loaders (text, Markdown, HTML, PDF).
 *
 * Ownership: everything returned through an out-pointer is malloc'd and
 * owned by the caller (free(), or lode_fs_doc_free for a lode_fs_doc).
 * Inputs are only read during the call.
 *
 * Errors: functions return 0 on success and -1 on failure with a message in
 * `err` that starts with the file's path and says what went wrong, e.g.
 * "docs/a.bin: binary file, not loaded". Hostile input (any bytes, any size
 * up to the limit) gives a result or an error, never a crash. */
#include <stddef.h>
#include <stdint.h>

#define LODE_FS_ERRLEN 1024
#define LODE_FS_DEFAULT_MAX_BYTES ((size_t)64 << 20) /* 64 MiB */

/* ---- globs ----------------------------------------------------------------
 * `*` any run of characters except '/', `?` one character except '/',
 * `[abc]`, `[a-z]`, `[!a-z]` or `[^a-z]` one character of a set (never '/'),
 * `**` any run of characters including '/', and `**` followed by '/' also
 * matches zero folders ("**" + "/x.md" matches "x.md" and "a/b/x.md"),
 * `\c` the character c itself. The whole path must match.
 * Returns 1 on a match, 0 otherwise. */
int lode_fs_glob_match(const char *pattern, const char *path);

/* ---- walk ----------------------------------------------------------------- */
typedef struct lode_fs_walk_opts {
  const char *const *include; /* NULL or n_include patterns */
  size_t n_include;
  const char *const *exclude;
  size_t n_exclude;
  size_t max_files; /* 0: no limit; more files is an error */
  /* symbolic links (docs/fs.md, "Symbolic links"): INSIDE (the default)
   * follows a link only when its target is inside the folder walked, ALL
   * follows every link, NONE none */
  enum { LODE_FS_LINKS_INSIDE = 0, LODE_FS_LINKS_ALL, LODE_FS_LINKS_NONE } follow_links;
  /* NULL, or called with each link not followed and why ("outside the
   * folder", "links are not followed"); non-zero stops the walk */
  int (*skipped)(void *ud, const char *relpath, const char *why);
} lode_fs_walk_opts;

/* Calls fn(ud, relpath) for every regular file under `dir`, depth-first with
 * the entries of each folder in byte order of their names, so the order is
 * stable across runs and machines. relpath uses '/' and has no leading "./".
 *
 * Patterns are matched against the path relative to `dir`; a pattern with no
 * '/' is matched against the file's name alone ("*.md" finds Markdown files
 * at any depth). A file is reported if it matches some include pattern (or
 * there are none) and no exclude pattern. A folder that matches an exclude
 * pattern is not entered. Symbolic links are followed as opts->follow_links
 * says (by default only those whose target, all links resolved, is inside
 * `dir`), except a link back to a folder being walked (a loop), which is
 * skipped; broken links, sockets, FIFOs and devices are skipped. fn (and
 * opts->skipped) return non-zero to stop the walk. */
int lode_fs_walk(const char *dir, const lode_fs_walk_opts *opts,
                 int (*fn)(void *ud, const char *relpath), void *ud, char *err, size_t errlen);

/* ---- reading and hashing ---------------------------------------------------
 * Reads a whole regular file of at most max_bytes (0: the default) into
 * *data (NUL-terminated, *len excludes the NUL). */
int lode_fs_read(const char *path, size_t max_bytes, char **data, size_t *len, char *err,
                 size_t errlen);

/* XXH3-128 of the bytes as 32 lowercase hex digits (canonical, big-endian). */
void lode_fs_hash(const void *p, size_t n, char out[33]);
/* The same hash of a file's content, streamed (no size limit). */
int lode_fs_hash_file(const char *path, char out[33], char *err, size_t errlen);

/* 1 if a walk with these include/exclude patterns would report the file
 * `rel` (a path relative to the folder walked) were it there: it matches an
 * include pattern (or there are none), and neither it nor a folder above it
 * matches an exclude pattern. Tells which stored documents a run's scope
 * covers (docs/pipelines.md, "Cleanup"). -1: out of memory. */
int lode_fs_walk_matches(const lode_fs_walk_opts *opts, const char *rel);

/* ---- loaders --------------------------------------------------------------- */
typedef enum lode_fs_kind {
  LODE_FS_AUTO = 0, /* by extension, then by content */
  LODE_FS_TEXT,
  LODE_FS_MARKDOWN,
  LODE_FS_HTML,
  LODE_FS_PDF,
} lode_fs_kind;

typedef struct lode_fs_doc {
  char *text; /* NUL-terminated; text_len excludes the NUL */
  size_t text_len;
  char *title;      /* NULL when the document has none */
  const char *mime; /* static string */
} lode_fs_doc;

void lode_fs_doc_free(lode_fs_doc *d);

/* Reads `path` (at most max_bytes, 0: the default) and loads it. */
int lode_fs_load(const char *path, lode_fs_kind kind, size_t max_bytes, lode_fs_doc *out,
                 char *err, size_t errlen);
/* Loads bytes already in memory; `name` is used for the extension (AUTO) and
 * in error messages. */
int lode_fs_load_bytes(const char *name, const void *p, size_t n, lode_fs_kind kind,
                       lode_fs_doc *out, char *err, size_t errlen);

/* The kind a file would be loaded as, from its name and first bytes. */
lode_fs_kind lode_fs_sniff(const char *name, const void *p, size_t n);
/* 1 if the bytes look binary (NUL bytes, or mostly control characters). */
int lode_fs_is_binary(const void *p, size_t n);

#endif
