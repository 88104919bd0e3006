/* fs.c - globs, the folder walk, bounded reads and XXH3-128 content hashes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/buf.h"
#include "kernels/fs_int.h"

void lode__fs_seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* ---- globs ----------------------------------------------------------------
 * A backtracking matcher made linear-ish the way git's wildmatch is: a
 * sub-match reports not just "no" but how far back a retry could help.
 * ABORT_ALL: the text ran out, so no later start position can match either.
 * ABORT_TO_STARSTAR: a '*' would have had to cross a '/', which only an
 * enclosing '**' can do. Without these, patterns like "*a*a*a*a*b" take
 * exponential time on long names. */
enum { MATCH = 1, NOMATCH = 0, ABORT_ALL = -1, ABORT_TO_STARSTAR = -2 };

/* Matches one [...] class at *pp against c; advances *pp past it. Returns
 * -1 if the class is unterminated (then '[' is an ordinary character). */
static int match_class(const char **pp, unsigned char c) {
  const char *p = *pp + 1;
  int neg = 0, hit = 0;
  if (*p == '!' || *p == '^') {
    neg = 1;
    p++;
  }
  const char *first = p;
  while (*p && (*p != ']' || p == first)) {
    unsigned char lo = (unsigned char)*p++;
    if (lo == '\\' && *p) lo = (unsigned char)*p++;
    unsigned char hi = lo;
    if (*p == '-' && p[1] && p[1] != ']') {
      p++;
      hi = (unsigned char)*p++;
      if (hi == '\\' && *p) hi = (unsigned char)*p++;
    }
    if (c >= lo && c <= hi) hit = 1;
  }
  if (*p != ']') return -1;
  *pp = p; /* on the ']' */
  return hit != neg;
}

static int dowild(const char *p, const char *t) {
  for (; *p; p++, t++) {
    if (*t == 0 && *p != '*') return ABORT_ALL;
    switch (*p) {
      case '\\':
        if (p[1]) p++;
        if (*t != *p) return NOMATCH;
        break;
      case '?':
        if (*t == '/') return NOMATCH;
        break;
      case '[': {
        if (*t == '/') return NOMATCH;
        int r = match_class(&p, (unsigned char)*t);
        if (r < 0) {
          if (*t != '[') return NOMATCH;
        } else if (!r) {
          return NOMATCH;
        }
        break;
      }
      case '*': {
        int dbl = p[1] == '*';
        while (*p == '*') p++;
        /* "**" + "/" may stand for no folder at all */
        if (dbl && *p == '/') {
          int r = dowild(p + 1, t);
          if (r == MATCH) return MATCH;
        }
        if (*p == 0) return (!dbl && strchr(t, '/')) ? ABORT_TO_STARSTAR : MATCH;
        for (;;) {
          int r = dowild(p, t);
          if (r != NOMATCH && (!dbl || r != ABORT_TO_STARSTAR)) return r;
          if (*t == 0) return ABORT_ALL;
          if (!dbl && *t == '/') return ABORT_TO_STARSTAR;
          t++;
        }
      }
      default:
        if (*t != *p) return NOMATCH;
    }
  }
  return *t ? NOMATCH : MATCH;
}

int lode_fs_glob_match(const char *pattern, const char *path) {
  return dowild(pattern, path) == MATCH;
}

/* A slash-less pattern is matched against the last path component. */
static int match_any(const char *const *pats, size_t n, const char *rel, const char *base) {
  for (size_t i = 0; i < n; i++) {
    const char *pat = pats[i];
    if (lode_fs_glob_match(pat, strchr(pat, '/') ? rel : base)) return 1;
  }
  return 0;
}

int lode_fs_walk_matches(const lode_fs_walk_opts *o, const char *rel) {
  size_t n = strlen(rel);
  char *buf = malloc(n + 1);
  if (!buf) return -1;
  memcpy(buf, rel, n + 1);
  int ok = 1;
  /* each folder on the way down, as the walk tests it before entering */
  for (char *slash = strchr(buf, '/'); ok && slash; slash = strchr(slash + 1, '/')) {
    *slash = 0;
    const char *base = strrchr(buf, '/');
    if (match_any(o->exclude, o->n_exclude, buf, base ? base + 1 : buf)) ok = 0;
    *slash = '/';
  }
  if (ok) {
    const char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    if (o->n_include && !match_any(o->include, o->n_include, buf, base)) ok = 0;
    if (match_any(o->exclude, o->n_exclude, buf, base)) ok = 0;
  }
  free(buf);
  return ok;
}

/* ---- walk ------------------------------------------------------------------ */
#define MAX_DEPTH 256

typedef struct walk_dirid {
  dev_t dev;
  ino_t ino;
} walk_dirid;

typedef struct walk_ctx {
  const lode_fs_walk_opts *o;
  int (*fn)(void *, const char *);
  void *ud;
  char *err;
  size_t errlen;
  lode_buf abs, rel;             /* current paths, reused down the recursion */
  walk_dirid stack[MAX_DEPTH + 1]; /* folders being walked, for loop checks */
  const char *root;
  char *root_real; /* realpath of root: links must stay under it (INSIDE) */
  size_t files;
  int stopped;
} walk_ctx;

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* The sorted names in the folder at c->abs (without "." and ".."). */
static int list_dir(walk_ctx *c, char ***out, size_t *count) {
  DIR *d = opendir(lode_buf_cstr(&c->abs));
  char **names = NULL;
  size_t n = 0, cap = 0;
  *out = NULL;
  *count = 0;
  if (!d) {
    lode__fs_seterr(c->err, c->errlen, "%s: cannot open folder: %s", lode_buf_cstr(&c->abs),
                    strerror(errno));
    return -1;
  }
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, cap * sizeof *nn);
      if (!nn) goto nomem;
      names = nn;
    }
    if (!(names[n] = strdup(e->d_name))) goto nomem;
    n++;
  }
  if (errno) {
    lode__fs_seterr(c->err, c->errlen, "%s: cannot read folder: %s", lode_buf_cstr(&c->abs),
                    strerror(errno));
    goto fail;
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, cmp_names);
  *out = names;
  *count = n;
  return 0;
nomem:
  lode__fs_seterr(c->err, c->errlen, "%s: out of memory listing the folder",
                  lode_buf_cstr(&c->abs));
fail:
  closedir(d);
  free_names(names, n);
  return -1;
}

/* NULL when the link at abs may be followed, else why not. */
static const char *link_refused(walk_ctx *c, const char *abs) {
  if (c->o->follow_links == LODE_FS_LINKS_ALL) return NULL;
  if (c->o->follow_links == LODE_FS_LINKS_NONE) return "links are not followed";
  char *t = realpath(abs, NULL);
  if (!t) return NULL; /* broken: stat skips it below */
  size_t n = strlen(c->root_real);
  int inside = !strncmp(t, c->root_real, n) && (t[n] == '/' || t[n] == 0 ||
                                                 (n == 1 && c->root_real[0] == '/'));
  free(t);
  return inside ? NULL : "leads outside the folder";
}

static int walk_dir(walk_ctx *c, size_t depth) {
  char **names = NULL;
  size_t n = 0;
  int rc = -1;
  if (list_dir(c, &names, &n) != 0) return -1;
  size_t abs_len = c->abs.len, rel_len = c->rel.len;
  for (size_t i = 0; i < n && !c->stopped; i++) {
    c->abs.len = abs_len;
    c->rel.len = rel_len;
    if (lode_buf_putc(&c->abs, '/') || lode_buf_puts(&c->abs, names[i]) ||
        (rel_len && lode_buf_putc(&c->rel, '/')) || lode_buf_puts(&c->rel, names[i])) {
      lode__fs_seterr(c->err, c->errlen, "%s/%s: path too long", lode_buf_cstr(&c->abs),
                      names[i]);
      goto done;
    }
    const char *abs = lode_buf_cstr(&c->abs), *rel = lode_buf_cstr(&c->rel);
    struct stat st;
    if (lstat(abs, &st) != 0) continue; /* gone since listed */
    if (S_ISLNK(st.st_mode)) {
      const char *why = link_refused(c, abs);
      if (why) {
        if (c->o->skipped && c->o->skipped(c->ud, rel, why)) c->stopped = 1;
        continue;
      }
    }
    if (stat(abs, &st) != 0) continue; /* broken link, or gone since listed */
    if (S_ISDIR(st.st_mode)) {
      if (match_any(c->o->exclude, c->o->n_exclude, rel, names[i])) continue;
      int loop = 0;
      for (size_t j = 0; j <= depth; j++)
        if (c->stack[j].dev == st.st_dev && c->stack[j].ino == st.st_ino) loop = 1;
      if (loop) continue;
      if (depth + 1 >= MAX_DEPTH) {
        lode__fs_seterr(c->err, c->errlen, "%s: folders nested deeper than %d", abs,
                        MAX_DEPTH);
        goto done;
      }
      c->stack[depth + 1] = (walk_dirid){st.st_dev, st.st_ino};
      if (walk_dir(c, depth + 1) != 0) goto done;
    } else if (S_ISREG(st.st_mode)) {
      if (c->o->n_include && !match_any(c->o->include, c->o->n_include, rel, names[i]))
        continue;
      if (match_any(c->o->exclude, c->o->n_exclude, rel, names[i])) continue;
      if (c->o->max_files && c->files >= c->o->max_files) {
        lode__fs_seterr(c->err, c->errlen,
                        "%s: more than %zu files; narrow it with include/exclude or raise "
                        "max_files",
                        c->root, c->o->max_files);
        goto done;
      }
      c->files++;
      if (c->fn(c->ud, rel)) c->stopped = 1;
    }
  }
  rc = 0;
done:
  free_names(names, n);
  return rc;
}

int lode_fs_walk(const char *dir, const lode_fs_walk_opts *opts,
                 int (*fn)(void *ud, const char *relpath), void *ud, char *err,
                 size_t errlen) {
  static const lode_fs_walk_opts none = {0};
  walk_ctx *c = calloc(1, sizeof *c);
  int rc = -1;
  struct stat st;
  if (!c) {
    lode__fs_seterr(err, errlen, "%s: out of memory", dir);
    return -1;
  }
  c->o = opts ? opts : &none;
  c->fn = fn;
  c->root = dir;
  c->ud = ud;
  c->err = err;
  c->errlen = errlen;
  lode_buf_init(&c->abs, 1 << 16);
  lode_buf_init(&c->rel, 1 << 16);
  if (stat(dir, &st) != 0) {
    lode__fs_seterr(err, errlen, "%s: cannot walk: %s", dir, strerror(errno));
    goto done;
  }
  if (!S_ISDIR(st.st_mode)) {
    lode__fs_seterr(err, errlen, "%s: cannot walk: not a folder", dir);
    goto done;
  }
  size_t dl = strlen(dir);
  while (dl > 1 && dir[dl - 1] == '/') dl--; /* "docs/" walks like "docs" */
  if (lode_buf_append(&c->abs, dir, dl) != 0) {
    lode__fs_seterr(err, errlen, "%s: path too long", dir);
    goto done;
  }
  if (dl == 1 && dir[0] == '/') c->abs.len = 0; /* root: children are "/x" */
  lode_buf_cstr(&c->rel);
  c->stack[0] = (walk_dirid){st.st_dev, st.st_ino};
  if (!(c->root_real = realpath(dir, NULL))) {
    lode__fs_seterr(err, errlen, "%s: cannot walk: %s", dir, strerror(errno));
    goto done;
  }
  rc = walk_dir(c, 0);
done:
  free(c->root_real);
  lode_buf_free(&c->abs);
  lode_buf_free(&c->rel);
  free(c);
  return rc;
}

/* ---- read and hash ----------------------------------------------------------- */
/* Opens a regular file for reading; O_NONBLOCK so a FIFO cannot hang us
 * before fstat has rejected it. */
static int open_regular(const char *path, struct stat *st, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    lode__fs_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  if (fstat(fd, st) != 0) {
    lode__fs_seterr(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  if (!S_ISREG(st->st_mode)) {
    lode__fs_seterr(err, errlen, "%s: not a regular file", path);
    close(fd);
    return -1;
  }
  return fd;
}

static int too_big(const char *path, size_t max, char *err, size_t errlen) {
  lode__fs_seterr(err, errlen, "%s: file is larger than max_bytes (%zu bytes); raise max_bytes "
                  "to read it", path, max);
  return -1;
}

int lode_fs_read(const char *path, size_t max_bytes, char **data, size_t *len, char *err,
                 size_t errlen) {
  struct stat st;
  char *buf = NULL;
  size_t n = 0;
  int rc = -1;
  *data = NULL;
  *len = 0;
  if (!max_bytes) max_bytes = LODE_FS_DEFAULT_MAX_BYTES;
  int fd = open_regular(path, &st, err, errlen);
  if (fd < 0) return -1;
  if ((uint64_t)st.st_size > max_bytes) {
    too_big(path, max_bytes, err, errlen);
    goto done;
  }
  /* the size may change under us: read up to max_bytes + 1 to notice */
  size_t cap = (size_t)st.st_size + 1;
  if (!(buf = malloc(cap + 1))) goto nomem;
  for (;;) {
    if (n == cap) {
      if (cap > max_bytes) {
        too_big(path, max_bytes, err, errlen);
        goto done;
      }
      size_t ncap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
      char *nb = realloc(buf, ncap + 1);
      if (!nb) goto nomem;
      buf = nb;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      lode__fs_seterr(err, errlen, "%s: cannot read: %s", path, strerror(errno));
      goto done;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  if (n > max_bytes) {
    too_big(path, max_bytes, err, errlen);
    goto done;
  }
  buf[n] = 0;
  *data = buf;
  *len = n;
  buf = NULL;
  rc = 0;
  goto done;
nomem:
  lode__fs_seterr(err, errlen, "%s: out of memory reading %lld bytes", path,
                  (long long)st.st_size);
done:
  free(buf);
  close(fd);
  return rc;
}

static void hex128(XXH128_hash_t h, char out[33]) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    out[2 * i] = digits[c.digest[i] >> 4];
    out[2 * i + 1] = digits[c.digest[i] & 15];
  }
  out[32] = 0;
}

void lode_fs_hash(const void *p, size_t n, char out[33]) { hex128(XXH3_128bits(p, n), out); }

int lode_fs_hash_file(const char *path, char out[33], char *err, size_t errlen) {
  struct stat st;
  int rc = -1;
  char *buf = NULL;
  XXH3_state_t *state = XXH3_createState();
  int fd = open_regular(path, &st, err, errlen);
  if (fd < 0) goto done;
  if (!state || !(buf = malloc(1 << 16)) || XXH3_128bits_reset(state) != XXH_OK) {
    lode__fs_seterr(err, errlen, "%s: out of memory hashing", path);
    goto done;
  }
  for (;;) {
    ssize_t r = read(fd, buf, 1 << 16);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      lode__fs_seterr(err, errlen, "%s: cannot read: %s", path, strerror(errno));
      goto done;
    }
    if (r == 0) break;
    XXH3_128bits_update(state, buf, (size_t)r);
  }
  hex128(XXH3_128bits_digest(state), out);
  rc = 0;
done:
  if (fd >= 0) close(fd);
  free(buf);
  XXH3_freeState(state);
  return rc;
}
