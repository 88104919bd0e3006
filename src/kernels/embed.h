#ifndef LODE_EMBED_H
#define LODE_EMBED_H
/* embed.h - text embedders: "hash" (built in), "model2vec" (local model
 * directory) and "openai" (the /v1/embeddings HTTP protocol).
 *
 * Ownership: lode_embedder_new returns an embedder the caller owns and frees
 * with lode_embedder_free; it keeps its own copies of every option string, so
 * the opts struct may be released right after. lode_embed fills `out` with a
 * newly allocated matrix (rows = n, L2-normalised rows) that the caller owns
 * (free out->data). An embedder is not thread-safe: one call at a time. */
#include <stddef.h>
#include <stdint.h>

#include "kernels/matrix.h"

typedef struct lode_embed_opts {
  const char *provider;  /* "hash" (default), "model2vec", "openai" */
  int64_t dims;          /* hash: output dimensions (default 384); 0 means default
                            in every numeric option below too */
  const char *path;      /* model2vec: model directory */
  int64_t max_length;    /* model2vec: tokens kept per text (default 512) */
  const char *base_url;  /* openai: default $OPENAI_BASE_URL, else api.openai.com/v1 */
  const char *api_key;   /* openai: default $OPENAI_API_KEY (may be absent) */
  const char *model;     /* openai: model name (default text-embedding-3-small) */
  int64_t dimensions;    /* openai: requested dimensions (0 = server default) */
  int64_t batch_size;    /* openai: inputs per request (default 256, max 2048) */
  int64_t concurrency;   /* openai: requests in flight (default 4) */
  int64_t max_retries;   /* openai: retries after 429/5xx/network errors (0: default
                            5; negative: none) */
  double retry_base;     /* openai: first backoff delay in seconds (default 0.5) */
  double timeout;        /* openai: seconds per request (default 60) */
} lode_embed_opts;

typedef struct lode_embed_usage {
  int64_t prompt_tokens, total_tokens;
  char model[128]; /* the model the server reported */
} lode_embed_usage;

typedef struct lode_embedder lode_embedder;

#define LODE_EMBED_HASH_DEFAULT_DIMS 384
#define LODE_EMBED_OPENAI_MAX_BATCH 2048

/* 0 and *out set, or -1 with err filled (naming the option or file). */
int lode_embedder_new(const lode_embed_opts *opts, lode_embedder **out, char *err,
                      size_t errlen);
void lode_embedder_free(lode_embedder *e);

/* Embeds n texts (texts[i] of lens[i] bytes; lens may be NULL for
 * NUL-terminated texts). 0 or -1 with err filled; on error `out` is empty. */
int lode_embed(lode_embedder *e, const char *const *texts, const size_t *lens, size_t n,
               lode_matrix *out, char *err, size_t errlen);

/* Output dimensions; for openai without `dimensions` it is 0 until the first
 * successful call tells. */
int64_t lode_embedder_dims(const lode_embedder *e);
const char *lode_embedder_provider(const lode_embedder *e);
/* Model name ("hash-v1" for hash, the directory for model2vec). */
const char *lode_embedder_model(const lode_embedder *e);
/* Usage of the last lode_embed call (openai only; zeros otherwise). */
const lode_embed_usage *lode_embedder_usage(const lode_embedder *e);

/* The hash embedder on one text without a word cache: adds the text's
 * vector (not normalised) into v[dims]. Exposed for benchmarks and tests.
 * Returns 0, or -1 if dims is out of 1..65536 or memory runs out. */
int lode_embed_hash_text(const char *s, size_t n, float *v, int64_t dims);

#endif
