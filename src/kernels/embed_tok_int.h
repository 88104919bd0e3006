#ifndef LODE_EMBED_TOK_INT_H
#define LODE_EMBED_TOK_INT_H
/* embed_tok_int.h - the tokenizer's data layout, shared by embed_tok.c
 * (encoding) and embed_tok_load.c (reading tokenizer.json). Private. */
#include <stddef.h>
#include <stdint.h>

#include "kernels/embed_tok.h"

#define METASPACE_DEFAULT 0x2581 /* ▁ */
#define UNK_PENALTY 10.0         /* as sentencepiece / HF Unigram */

enum { N_BERT = 1, N_LOWER, N_STRIP, N_REPLACE, N_REPLACE_WS, N_NFC, N_NFD, N_NFKC, N_NFKD,
       N_STRIP_ACCENTS };
enum { P_BERT = 1, P_WHITESPACE, P_WHITESPACE_SPLIT, P_METASPACE };
enum { M_WORDPIECE = 1, M_UNIGRAM };

typedef struct cpv {
  int32_t *v;
  size_t n, cap;
} cpv;

typedef struct nstep {
  int kind;
  int clean, chinese, strip_acc, lower; /* BertNormalizer */
  int left, right;                      /* Strip */
  cpv pat, content;                     /* Replace */
} nstep;

typedef struct pstep {
  int kind;
  int32_t repl;    /* Metaspace replacement */
  int prepend;     /* Metaspace: 0 never, 1 always, 2 first piece only */
  int split;       /* Metaspace: split before each replacement char */
} pstep;

typedef struct entry {
  uint64_t h;
  uint32_t off, len;
  int32_t id; /* -1: empty slot */
} entry;

struct lode__tok {
  nstep *ns;
  size_t nn;
  pstep *ps;
  size_t np;
  int model;
  char *arena;
  size_t arena_len;
  entry *tab;
  size_t tabmask;
  entry *ptab;            /* Unigram: proper prefixes of pieces (id unused) */
  size_t ptabmask;
  int32_t max_id, unk_id; /* unk_id -1 if none */
  double *scores;         /* Unigram, by id */
  double min_score;
  size_t max_piece;       /* longest piece in code points */
  int byte_fallback;
  char prefix[32];        /* WordPiece continuing_subword_prefix */
  size_t max_word;        /* WordPiece max_input_chars_per_word */
  int64_t median_len;
  cpv *added;             /* added tokens' contents, matched on the raw text */
  int32_t *added_id;
  size_t nadded;
};

int lode__cpv_from_utf8(cpv *a, const char *s, size_t n, size_t max_cps);
int32_t lode__vocab_get(const lode__tok *t, const char *s, size_t n);

#endif
