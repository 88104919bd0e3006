#ifndef LODE_TEXT_H
#define LODE_TEXT_H
/* text.h - text kernels: normalize, recursive split, markdown split.
 *
 * Ownership: every function takes the source text as (pointer, length) and
 * never keeps it. Results are owned by the caller: free normalized text with
 * free(), a chunk list with lode_text_chunks_free(). A chunk's `text` points
 * either into the source (when the chunk is an exact slice of it) or into
 * memory owned by the chunk list, so it is valid while both the source and
 * the list live. Errors come back as -1 with a message in `err` (which may be
 * NULL) naming the option or input at fault. */
#include <stddef.h>

#define LODE_TEXT_ERRLEN 200

/* ---- UTF-8 helpers ------------------------------------------------------ */

/* Byte offset of the first invalid UTF-8 byte, or len if `s` is valid
 * (strict: no overlongs, no surrogates, nothing above U+10FFFF). */
size_t lode_text_utf8_invalid_at(const char *s, size_t len);
/* Number of code points in valid UTF-8 (counts the bytes that start one). */
size_t lode_text_cp_count(const char *s, size_t len);

/* ---- normalize ---------------------------------------------------------- */

struct lode_text_normalize_opts {
  int nfc;        /* compose to NFC (default 1) */
  int nfkc;       /* compose to NFKC instead (default 0; implies nfc) */
  int controls;   /* drop control chars, unify newlines (default 1) */
  int whitespace; /* collapse blank runs, keep paragraph breaks (default 1) */
};
void lode_text_normalize_opts_default(struct lode_text_normalize_opts *o);

/* Any bytes in, valid UTF-8 out (invalid sequences become U+FFFD even with
 * every option off). Returns 0 and a malloc'd NUL-terminated *out (length in
 * *out_len), or -1 with `err` filled. */
int lode_text_normalize(const char *s, size_t len,
                        const struct lode_text_normalize_opts *o, char **out,
                        size_t *out_len, char *err);

/* ---- split (LangChain RecursiveCharacterTextSplitter) ------------------- */

#define LODE_TEXT_MAX_SEPARATORS 32

struct lode_text_split_opts {
  long size;    /* chunk size in code points (default 1000) */
  long overlap; /* chunk overlap in code points (default 200) */
  /* separators tried in order; each may be "" (split by code point). When
   * nseparators is 0 the defaults "\n\n", "\n", " ", "" are used. Not owned. */
  const char *separators[LODE_TEXT_MAX_SEPARATORS];
  size_t separator_lens[LODE_TEXT_MAX_SEPARATORS];
  size_t nseparators;
  int keep_separator; /* default 1: separator kept at the start of a piece */
};
void lode_text_split_opts_default(struct lode_text_split_opts *o);
/* Checks sizes and separators; 0 or -1 with `err` filled. */
int lode_text_split_opts_check(const struct lode_text_split_opts *o, char *err);

struct lode_text_chunk {
  size_t start, end;  /* byte span [start, end) in the source */
  const char *text;   /* the chunk text (see ownership above) */
  size_t len;         /* bytes of text */
  int exact;          /* 1 when text == source[start, end) */
  size_t header_first, nheaders; /* split_markdown: header path, indices into
                                    the list's `headers` */
  size_t priv_off; /* private: arena offset of text while the list grows */
};

struct lode_text_header {
  const char *text; /* owned by the chunk list */
  size_t len;
  int level;        /* 1..6 */
  size_t priv_off;  /* private: arena offset of text while the list grows */
};

struct lode_text_chunks {
  struct lode_text_chunk *v;
  size_t n, cap;
  struct lode_text_header *headers; /* header paths, shared by chunks */
  size_t nheaders, headers_cap;
  /* private: owned memory the texts point into */
  char *arena;
  size_t arena_len, arena_cap;
  char *repaired; /* the input with invalid UTF-8 replaced, when it had any */
};

/* Splits `s` into chunks. Input that is not valid UTF-8 is split as if each
 * invalid byte were U+FFFD; such chunks are not exact but their spans still
 * index the source. Returns 0 with *out a new list, or -1 with `err`. */
int lode_text_split(const char *s, size_t len,
                    const struct lode_text_split_opts *o,
                    struct lode_text_chunks **out, char *err);

struct lode_text_markdown_opts {
  struct lode_text_split_opts split;
  unsigned levels;   /* bit n set = split on level n headers; default 1..6 */
  int strip_headers; /* default 1: header lines are not part of chunks */
};
void lode_text_markdown_opts_default(struct lode_text_markdown_opts *o);

/* Sections the document at ATX and setext headers found by md4c (top level
 * only; never inside code blocks), then splits each section with `o->split`.
 * Each chunk carries its header path. Same return convention as split. */
int lode_text_split_markdown(const char *s, size_t len,
                             const struct lode_text_markdown_opts *o,
                             struct lode_text_chunks **out, char *err);

void lode_text_chunks_free(struct lode_text_chunks *c);

#endif
