/* embed.c - the embedder front: provider dispatch. The providers live in
 * embed_hash.c (built-in hash), embed_m2v.c (model2vec) and embed_openai.c.
 *
 * Ownership: see embed.h. */
#include "kernels/embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/embed_internal.h"

int lode_embed_hash_text(const char *s, size_t n, float *v, int64_t dims) {
  lode__hash *h;
  if (dims < 1 || dims > 65536 || lode__hash_new(dims, 0, &h) != 0) return -1;
  lode__hash_text(h, s, n, v, 0);
  lode__hash_free(h);
  return 0;
}

/* ---- front ------------------------------------------------------------- */

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

int lode_embedder_new(const lode_embed_opts *o, lode_embedder **out, char *err,
                      size_t errlen) {
  static const lode_embed_opts none;
  if (!o) o = &none;
  *out = NULL;
  int rc = -1;
  lode_embedder *e = calloc(1, sizeof *e);
  if (!e) {
    snprintf(err, errlen, "embedder: out of memory");
    goto done;
  }
  const char *prov = o->provider ? o->provider : "hash";
  if (strcmp(prov, "hash") == 0) {
    e->kind = LODE__EMB_HASH;
    e->dims = o->dims ? o->dims : LODE_EMBED_HASH_DEFAULT_DIMS;
    if (e->dims < 1 || e->dims > 65536) {
      snprintf(err, errlen, "embedder hash: dims must be between 1 and 65536 (got %lld)",
               (long long)o->dims);
      goto done;
    }
    e->model = dupstr("hash-v1");
  } else if (strcmp(prov, "model2vec") == 0) {
    e->kind = LODE__EMB_M2V;
    if (!o->path || !*o->path) {
      snprintf(err, errlen, "embedder model2vec: option 'path' (the model directory) is required");
      goto done;
    }
    if (o->max_length < 0) {
      snprintf(err, errlen, "embedder model2vec: max_length must be >= 1");
      goto done;
    }
    if (lode__m2v_open(o->path, o->max_length ? o->max_length : 512, &e->m2v, &e->dims, err,
                       errlen) != 0)
      goto done;
    e->model = dupstr(o->path);
  } else if (strcmp(prov, "openai") == 0) {
    e->kind = LODE__EMB_OAI;
    if (lode__oai_open(o, &e->oai, err, errlen) != 0) goto done;
    e->dims = o->dimensions;
    e->model = dupstr(lode__oai_model(e->oai));
  } else {
    snprintf(err, errlen, "embedder: unknown provider '%s' (use hash, model2vec or openai)", prov);
    goto done;
  }
  if (!e->model) {
    snprintf(err, errlen, "embedder: out of memory");
    goto done;
  }
  *out = e;
  e = NULL;
  rc = 0;
done:
  lode_embedder_free(e);
  return rc;
}

void lode_embedder_free(lode_embedder *e) {
  if (!e) return;
  if (e->m2v) lode__m2v_free(e->m2v);
  if (e->oai) lode__oai_free(e->oai);
  lode__hash_free(e->hash);
  free(e->model);
  free(e);
}

int lode_embed(lode_embedder *e, const char *const *texts, const size_t *lens, size_t n,
               lode_matrix *out, char *err, size_t errlen) {
  out->rows = out->dims = 0;
  out->data = NULL;
  if (e->kind == LODE__EMB_OAI) {
    memset(&e->usage, 0, sizeof e->usage);
    if (lode__oai_embed(e->oai, texts, lens, n, out, &e->usage, err, errlen) != 0) return -1;
    e->dims = out->dims;
    return 0;
  }
  if (e->kind == LODE__EMB_HASH && !e->hash && lode__hash_new(e->dims, 1, &e->hash) != 0) {
    snprintf(err, errlen, "embed hash: out of memory for the word cache (%lld dims)",
             (long long)e->dims);
    return -1;
  }
  float *d = lode_matrix_alloc((int64_t)n, e->dims);
  if (!d) {
    snprintf(err, errlen, "embed: %zu x %lld matrix is too large", n, (long long)e->dims);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    size_t len = lens ? lens[i] : strlen(texts[i]);
    float *v = d + (int64_t)i * e->dims;
    if (e->kind == LODE__EMB_HASH) {
      lode__hash_text(e->hash, texts[i], len, v, 1); /* v is zero (calloc) */
    } else if (lode__m2v_embed(e->m2v, texts[i], len, v) != 0) {
      snprintf(err, errlen, "embed model2vec: out of memory on text %zu", i + 1);
      free(d);
      return -1;
    }
  }
  out->rows = (int64_t)n;
  out->dims = e->dims;
  out->data = d;
  return 0;
}

int64_t lode_embedder_dims(const lode_embedder *e) { return e->dims; }

const char *lode_embedder_provider(const lode_embedder *e) {
  return e->kind == LODE__EMB_HASH ? "hash" : e->kind == LODE__EMB_M2V ? "model2vec" : "openai";
}

const char *lode_embedder_model(const lode_embedder *e) { return e->model; }

const lode_embed_usage *lode_embedder_usage(const lode_embedder *e) { return &e->usage; }
