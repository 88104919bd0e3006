/* embed_m2v.c - the model2vec provider: a local model directory with
 * config.json, model.safetensors (an `embeddings` tensor in F32/F16/BF16/F64/
 * I8, optional `mapping` token->row and `weights` per token) and
 * tokenizer.json (embed_tok.c). A text's vector is the mean of its tokens'
 * rows (each scaled by its weight when `weights` exists), L2-normalised when
 * config.json says "normalize": true, exactly as model2vec's encode.
 *
 * Ownership: a lode__m2v owns the decoded tensors (float32 embeddings, the
 * mapping as int32, weights as double) and the tokenizer; the file bytes are
 * released once loaded. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/embed_internal.h"
#include "kernels/embed_tok.h"

struct lode__m2v {
  lode__tok *tok;
  float *emb;       /* rows x dims */
  int64_t rows, dims;
  int32_t *mapping; /* NULL or nmap entries */
  int64_t nmap;
  double *weights;  /* NULL or nweights entries */
  int64_t nweights;
  int normalize;
  int64_t max_length;
  lode__ids ids;    /* scratch, reused across texts */
  double *acc;
};

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal: value = man * 2^-24 */
      float f = ldexpf((float)man, -24);
      return sign ? -f : f;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static uint64_t le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static int dtype_size(const char *dt) {
  static const struct { const char *n; int s; } t[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U8", 1},  {"BOOL", 1}};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++)
    if (strcmp(dt, t[i].n) == 0) return t[i].s;
  return 0;
}

/* Element i of a tensor as a double (ints and floats alike). */
static double elem(const char *dt, const uint8_t *p, size_t i) {
  if (strcmp(dt, "F32") == 0) {
    uint32_t u = (uint32_t)le(p + 4 * i, 4);
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  if (strcmp(dt, "F64") == 0) {
    uint64_t u = le(p + 8 * i, 8);
    double d;
    memcpy(&d, &u, 8);
    return d;
  }
  if (strcmp(dt, "F16") == 0) return half_to_float((uint16_t)le(p + 2 * i, 2));
  if (strcmp(dt, "BF16") == 0) {
    uint32_t u = (uint32_t)le(p + 2 * i, 2) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  if (strcmp(dt, "I8") == 0) return (int8_t)p[i];
  if (strcmp(dt, "U8") == 0) return p[i];
  if (strcmp(dt, "I16") == 0) return (int16_t)le(p + 2 * i, 2);
  if (strcmp(dt, "I32") == 0) return (int32_t)le(p + 4 * i, 4);
  if (strcmp(dt, "I64") == 0) return (double)(int64_t)le(p + 8 * i, 8);
  return 0;
}

typedef struct tensor {
  const char *dtype;
  int64_t shape[2];
  int ndim;
  const uint8_t *data;
  size_t count;
} tensor;

/* Finds and validates tensor `name` in a parsed safetensors header. 1 found,
 * 0 absent, -1 malformed (err filled). */
static int find_tensor(const cJSON *hdr, const char *name, const uint8_t *base, size_t size,
                       tensor *t, const char *path, char *err, size_t errlen) {
  const cJSON *o = cJSON_GetObjectItemCaseSensitive(hdr, name);
  if (!o) return 0;
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(o, "dtype");
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shape");
  const cJSON *off = cJSON_GetObjectItemCaseSensitive(o, "data_offsets");
  if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) ||
      cJSON_GetArraySize(off) != 2 || cJSON_GetArraySize(sh) < 1 || cJSON_GetArraySize(sh) > 2) {
    snprintf(err, errlen, "%s: tensor '%s' has a malformed header entry", path, name);
    return -1;
  }
  int es = dtype_size(dt->valuestring);
  if (!es || strcmp(dt->valuestring, "BOOL") == 0) {
    snprintf(err, errlen, "%s: tensor '%s' has unsupported dtype %s", path, name, dt->valuestring);
    return -1;
  }
  t->dtype = dt->valuestring;
  t->ndim = cJSON_GetArraySize(sh);
  t->shape[1] = 1;
  double count = 1;
  for (int i = 0; i < t->ndim; i++) {
    const cJSON *d = cJSON_GetArrayItem(sh, i);
    if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e12) {
      snprintf(err, errlen, "%s: tensor '%s' has a bad shape", path, name);
      return -1;
    }
    t->shape[i] = (int64_t)d->valuedouble;
    count *= d->valuedouble;
  }
  double b = cJSON_GetArrayItem(off, 0)->valuedouble, e = cJSON_GetArrayItem(off, 1)->valuedouble;
  if (!(b >= 0 && e >= b && e <= (double)size && count * es == e - b)) {
    snprintf(err, errlen, "%s: tensor '%s' data offsets do not match its shape or the file size",
             path, name);
    return -1;
  }
  t->data = base + (size_t)b;
  t->count = (size_t)count;
  return 1;
}

static int load_safetensors(lode__m2v *m, const char *path, char *err, size_t errlen) {
  char *buf = NULL;
  size_t len = 0;
  cJSON *hdr = NULL;
  int rc = -1;
  if (lode__read_file(path, (size_t)8 << 30, &buf, &len, err, errlen)) goto done;
  const uint8_t *p = (const uint8_t *)buf;
  uint64_t hl = len >= 8 ? le(p, 8) : 0;
  if (len < 8 || hl > len - 8 || hl > (100u << 20)) {
    snprintf(err, errlen, "%s: not a safetensors file (bad header length)", path);
    goto done;
  }
  hdr = cJSON_ParseWithLength(buf + 8, (size_t)hl);
  if (!cJSON_IsObject(hdr)) {
    snprintf(err, errlen, "%s: safetensors header is not a JSON object", path);
    goto done;
  }
  const uint8_t *base = p + 8 + hl;
  size_t size = len - 8 - (size_t)hl;
  tensor e, mp, w;
  int r = find_tensor(hdr, "embeddings", base, size, &e, path, err, errlen);
  if (r < 0) goto done;
  if (r == 0 || e.ndim != 2 || e.shape[0] < 1 || e.shape[1] < 1) {
    snprintf(err, errlen, "%s: needs a 2-D tensor named 'embeddings'", path);
    goto done;
  }
  m->rows = e.shape[0];
  m->dims = e.shape[1];
  m->emb = malloc(e.count * sizeof(float));
  if (!m->emb) goto oom;
  for (size_t i = 0; i < e.count; i++) m->emb[i] = (float)elem(e.dtype, e.data, i);
  r = find_tensor(hdr, "mapping", base, size, &mp, path, err, errlen);
  if (r < 0) goto done;
  if (r) {
    m->nmap = (int64_t)mp.count;
    m->mapping = malloc((mp.count ? mp.count : 1) * sizeof(int32_t));
    if (!m->mapping) goto oom;
    for (size_t i = 0; i < mp.count; i++) {
      double v = elem(mp.dtype, mp.data, i);
      if (!(v >= 0 && v < (double)m->rows)) {
        snprintf(err, errlen, "%s: mapping[%zu] = %g is outside the %lld embedding rows", path, i,
                 v, (long long)m->rows);
        goto done;
      }
      m->mapping[i] = (int32_t)v;
    }
  }
  r = find_tensor(hdr, "weights", base, size, &w, path, err, errlen);
  if (r < 0) goto done;
  if (r) {
    m->nweights = (int64_t)w.count;
    m->weights = malloc((w.count ? w.count : 1) * sizeof(double));
    if (!m->weights) goto oom;
    for (size_t i = 0; i < w.count; i++) m->weights[i] = elem(w.dtype, w.data, i);
  }
  rc = 0;
  goto done;
oom:
  snprintf(err, errlen, "%s: out of memory", path);
done:
  cJSON_Delete(hdr);
  free(buf);
  return rc;
}

static int load_config(lode__m2v *m, const char *path, char *err, size_t errlen) {
  char *buf = NULL;
  size_t len = 0;
  if (lode__read_file(path, 16u << 20, &buf, &len, err, errlen)) return -1;
  cJSON *j = cJSON_ParseWithLength(buf, len);
  free(buf);
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    snprintf(err, errlen, "%s: not a JSON object", path);
    return -1;
  }
  m->normalize = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "normalize"));
  cJSON_Delete(j);
  return 0;
}

int lode__m2v_open(const char *dir, int64_t max_length, lode__m2v **out, int64_t *dims,
                   char *err, size_t errlen) {
  char path[4096];
  int rc = -1;
  *out = NULL;
  lode__m2v *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, errlen, "%s: out of memory", dir);
    return -1;
  }
  m->max_length = max_length;
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (load_config(m, path, err, errlen)) goto done;
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (load_safetensors(m, path, err, errlen)) goto done;
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  if (lode__tok_load(path, &m->tok, err, errlen)) goto done;
  int64_t vocab = (int64_t)lode__tok_max_id(m->tok) + 1;
  int64_t need = m->mapping ? m->nmap : m->rows;
  if (vocab > need || (m->weights && vocab > m->nweights)) {
    snprintf(err, errlen, "%s/model.safetensors: %lld %s for a tokenizer of %lld tokens", dir,
             (long long)(m->weights && vocab > m->nweights ? m->nweights : need),
             m->weights && vocab > m->nweights ? "weights" : m->mapping ? "mapping entries"
                                                                         : "embedding rows",
             (long long)vocab);
    goto done;
  }
  m->acc = malloc((size_t)m->dims * sizeof *m->acc);
  if (!m->acc) {
    snprintf(err, errlen, "%s: out of memory", dir);
    goto done;
  }
  *dims = m->dims;
  *out = m;
  m = NULL;
  rc = 0;
done:
  lode__m2v_free(m);
  return rc;
}

int lode__m2v_embed(lode__m2v *m, const char *s, size_t n, float *v) {
  m->ids.n = 0;
  if (lode__tok_encode(m->tok, s, n, &m->ids, (size_t)m->max_length)) return -1;
  int64_t d = m->dims;
  if (m->ids.n == 0) { /* no known token: the zero vector, as model2vec */
    memset(v, 0, (size_t)d * sizeof *v);
    return 0;
  }
  for (int64_t k = 0; k < d; k++) m->acc[k] = 0;
  for (size_t i = 0; i < m->ids.n; i++) {
    int32_t id = m->ids.v[i];
    const float *row = m->emb + (int64_t)(m->mapping ? m->mapping[id] : id) * d;
    double w = m->weights ? m->weights[id] : 1.0;
    for (int64_t k = 0; k < d; k++) m->acc[k] += (double)row[k] * w;
  }
  double norm = 0, cnt = (double)m->ids.n;
  for (int64_t k = 0; k < d; k++) {
    m->acc[k] /= cnt;
    norm += m->acc[k] * m->acc[k];
  }
  norm = m->normalize ? sqrt(norm) + 1e-32 : 1.0;
  for (int64_t k = 0; k < d; k++) v[k] = (float)(m->acc[k] / norm);
  return 0;
}

void lode__m2v_free(lode__m2v *m) {
  if (!m) return;
  lode__tok_free(m->tok);
  free(m->emb);
  free(m->mapping);
  free(m->weights);
  free(m->ids.v);
  free(m->acc);
  free(m);
}
