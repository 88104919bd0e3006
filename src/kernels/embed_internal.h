#ifndef LODE_EMBED_INTERNAL_H
#define LODE_EMBED_INTERNAL_H
/* embed_internal.h - what the embedder providers share (not public API). */
#include "kernels/embed.h"

typedef struct lode__m2v lode__m2v;
typedef struct lode__oai lode__oai;
typedef struct lode__hash lode__hash;

struct lode_embedder {
  int kind; /* LODE__EMB_* */
  int64_t dims;
  char *model;
  lode_embed_usage usage;
  lode__m2v *m2v;
  lode__oai *oai;
  lode__hash *hash; /* hash: word cache and accumulator (NULL: none yet) */
};

enum { LODE__EMB_HASH = 1, LODE__EMB_M2V, LODE__EMB_OAI };

/* hash (embed_hash.c): state for texts of `dims` dimensions (1..65536),
 * with a word cache or not (lode__hash_new returns 0, or -1 when out of
 * memory). lode__hash_text with unit == 0 ADDS the text's unnormalised
 * vector into v[dims]; with unit != 0 it stores the L2-normalised vector
 * into v, which must be all zero on entry. */
int lode__hash_new(int64_t dims, int with_cache, lode__hash **out);
void lode__hash_text(lode__hash *h, const char *s, size_t n, float *v, int unit);
void lode__hash_free(lode__hash *h);

/* model2vec (embed_m2v.c) */
int lode__m2v_open(const char *dir, int64_t max_length, lode__m2v **out, int64_t *dims,
                   char *err, size_t errlen);
int lode__m2v_embed(lode__m2v *m, const char *s, size_t n, float *v);
void lode__m2v_free(lode__m2v *m);

/* openai (embed_openai.c) */
int lode__oai_open(const lode_embed_opts *o, lode__oai **out, char *err, size_t errlen);
int lode__oai_embed(lode__oai *c, const char *const *texts, const size_t *lens, size_t n,
                    lode_matrix *out, lode_embed_usage *usage, char *err, size_t errlen);
const char *lode__oai_model(const lode__oai *c);
void lode__oai_free(lode__oai *c);

#endif
