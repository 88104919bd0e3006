/* embed_tok_load.c - reading tokenizer.json into a lode__tok (see
 * embed_tok.h for what is supported). Unsupported normalizers,
 * pre-tokenizers and models fail with the file and the type named.
 *
 * Ownership: lode__tok_load hands the caller a tokenizer that owns copies of
 * everything it needs; the parsed JSON is freed before returning. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#include "kernels/embed_tok_int.h"


/* ---- loading tokenizer.json ------------------------------------------------ */

int lode__read_file(const char *path, size_t max, char **out, size_t *len, char *err,
                    size_t errlen) {
  *out = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
    return -1;
  }
  int rc = -1;
  char *buf = NULL;
  if (fseek(f, 0, SEEK_END) != 0) goto io;
  long sz = ftell(f);
  if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) goto io;
  if ((unsigned long)sz > max) {
    snprintf(err, errlen, "%s: file is larger than %zu bytes", path, max);
    goto done;
  }
  buf = malloc((size_t)sz + 1);
  if (!buf) {
    snprintf(err, errlen, "%s: out of memory reading %ld bytes", path, sz);
    goto done;
  }
  if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) goto io;
  buf[sz] = 0;
  *out = buf;
  *len = (size_t)sz;
  buf = NULL;
  rc = 0;
  goto done;
io:
  snprintf(err, errlen, "%s: read error (%s)", path, strerror(errno));
done:
  free(buf);
  fclose(f);
  return rc;
}

static int jbool(const cJSON *o, const char *k, int dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
  return dflt;
}

static const char *jstr(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int cpv_set(cpv *a, const char *s) {
  return s ? lode__cpv_from_utf8(a, s, strlen(s), (size_t)-1) : 0;
}

static int add_norm(lode__tok *t, const cJSON *j, const char *path, char *err, size_t errlen) {
  const char *type = jstr(j, "type");
  if (!type) {
    snprintf(err, errlen, "%s: normalizer without a type", path);
    return -1;
  }
  if (strcmp(type, "Sequence") == 0) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "normalizers"), *it;
    cJSON_ArrayForEach(it, arr) if (add_norm(t, it, path, err, errlen)) return -1;
    return 0;
  }
  nstep *ns = realloc(t->ns, (t->nn + 1) * sizeof *ns);
  if (!ns) goto oom;
  t->ns = ns;
  nstep *s = &t->ns[t->nn];
  memset(s, 0, sizeof *s);
  if (strcmp(type, "BertNormalizer") == 0) {
    s->kind = N_BERT;
    s->clean = jbool(j, "clean_text", 1);
    s->chinese = jbool(j, "handle_chinese_chars", 1);
    s->lower = jbool(j, "lowercase", 1);
    s->strip_acc = jbool(j, "strip_accents", s->lower); /* null follows lowercase */
  } else if (strcmp(type, "Lowercase") == 0) {
    s->kind = N_LOWER;
  } else if (strcmp(type, "Strip") == 0) {
    s->kind = N_STRIP;
    s->left = jbool(j, "strip_left", 1);
    s->right = jbool(j, "strip_right", 1);
  } else if (strcmp(type, "Replace") == 0) {
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern");
    const char *lit = jstr(pat, "String"), *re = jstr(pat, "Regex");
    s->kind = N_REPLACE;
    if (!lit && re && strcmp(re, "\\s+") == 0) {
      s->kind = N_REPLACE_WS;
    } else if (!lit) {
      snprintf(err, errlen, "%s: Replace normalizer pattern %s%s%s is not supported (literal "
               "strings and the regex \\s+ are)", path, re ? "regex '" : "", re ? re : "", re ? "'" : "");
      return -1;
    }
    if (cpv_set(&s->pat, lit) || cpv_set(&s->content, jstr(j, "content"))) goto oom;
  } else if (strcmp(type, "NFC") == 0) {
    s->kind = N_NFC;
  } else if (strcmp(type, "NFD") == 0) {
    s->kind = N_NFD;
  } else if (strcmp(type, "NFKC") == 0) {
    s->kind = N_NFKC;
  } else if (strcmp(type, "NFKD") == 0) {
    s->kind = N_NFKD;
  } else if (strcmp(type, "StripAccents") == 0) {
    s->kind = N_STRIP_ACCENTS;
  } else {
    snprintf(err, errlen, "%s: normalizer type '%s' is not supported", path, type);
    return -1;
  }
  t->nn++;
  return 0;
oom:
  snprintf(err, errlen, "%s: out of memory", path);
  return -1;
}

static int add_pre(lode__tok *t, const cJSON *j, const char *path, char *err, size_t errlen) {
  const char *type = jstr(j, "type");
  if (!type) {
    snprintf(err, errlen, "%s: pre_tokenizer without a type", path);
    return -1;
  }
  if (strcmp(type, "Sequence") == 0) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers"), *it;
    cJSON_ArrayForEach(it, arr) if (add_pre(t, it, path, err, errlen)) return -1;
    return 0;
  }
  pstep *ps = realloc(t->ps, (t->np + 1) * sizeof *ps);
  if (!ps) {
    snprintf(err, errlen, "%s: out of memory", path);
    return -1;
  }
  t->ps = ps;
  pstep *p = &t->ps[t->np];
  memset(p, 0, sizeof *p);
  if (strcmp(type, "BertPreTokenizer") == 0) {
    p->kind = P_BERT;
  } else if (strcmp(type, "Whitespace") == 0) {
    p->kind = P_WHITESPACE;
  } else if (strcmp(type, "WhitespaceSplit") == 0) {
    p->kind = P_WHITESPACE_SPLIT;
  } else if (strcmp(type, "Metaspace") == 0) {
    if (t->np != 0) {
      snprintf(err, errlen, "%s: Metaspace is supported only as the first pre_tokenizer", path);
      return -1;
    }
    p->kind = P_METASPACE;
    const char *r = jstr(j, "replacement");
    utf8proc_int32_t c = METASPACE_DEFAULT;
    if (r && utf8proc_iterate((const uint8_t *)r, -1, &c) <= 0) c = METASPACE_DEFAULT;
    p->repl = c;
    const char *scheme = jstr(j, "prepend_scheme");
    p->prepend = scheme ? (strcmp(scheme, "never") == 0 ? 0 : strcmp(scheme, "first") == 0 ? 2 : 1)
                        : jbool(j, "add_prefix_space", 1);
    p->split = jbool(j, "split", 1);
  } else {
    snprintf(err, errlen, "%s: pre_tokenizer type '%s' is not supported", path, type);
    return -1;
  }
  t->np++;
  return 0;
}

static int vocab_build(lode__tok *t, const char **toks, size_t n, const char *path, char *err,
                       size_t errlen) {
  size_t total = 0, cap = 16;
  for (size_t i = 0; i < n; i++) total += strlen(toks[i]);
  while (cap < n * 2) cap <<= 1;
  t->arena = malloc(total + 1);
  t->tab = malloc(cap * sizeof *t->tab);
  size_t *lens = calloc(n ? n : 1, sizeof *lens);
  if (!t->arena || !t->tab || !lens) {
    free(lens);
    snprintf(err, errlen, "%s: out of memory for the vocabulary", path);
    return -1;
  }
  t->tabmask = cap - 1;
  for (size_t i = 0; i < cap; i++) t->tab[i].id = -1;
  size_t off = 0;
  for (size_t id = 0; id < n; id++) {
    size_t l = strlen(toks[id]);
    memcpy(t->arena + off, toks[id], l);
    uint64_t h = XXH3_64bits(toks[id], l);
    size_t i = h & t->tabmask;
    int dup = 0;
    for (; t->tab[i].id >= 0; i = (i + 1) & t->tabmask)
      if (t->tab[i].h == h && t->tab[i].len == l && memcmp(t->arena + t->tab[i].off, toks[id], l) == 0) {
        dup = 1;
        break;
      }
    if (!dup) t->tab[i] = (entry){h, (uint32_t)off, (uint32_t)l, (int32_t)id};
    off += l;
    size_t cps = 0;
    for (size_t k = 0; k < l; k++) cps += ((uint8_t)toks[id][k] & 0xC0) != 0x80;
    lens[id] = cps;
    if (cps > t->max_piece) t->max_piece = cps;
  }
  /* median of the lengths, as numpy (mean of the middle two), then int() */
  size_t counts[65] = {0};
  for (size_t i = 0; i < n; i++) counts[lens[i] < 64 ? lens[i] : 64]++;
  free(lens);
  size_t lo = (n - 1) / 2, hi = n / 2, seen = 0;
  int64_t vlo = 0, vhi = 0;
  for (int64_t v = 0; v <= 64; v++) {
    if (seen <= lo && lo < seen + counts[v]) vlo = v;
    if (seen <= hi && hi < seen + counts[v]) vhi = v;
    seen += counts[v];
  }
  t->median_len = n ? (vlo + vhi) / 2 : 1;
  if (t->median_len < 1) t->median_len = 1;
  t->max_id = n ? (int32_t)(n - 1) : -1;
  return 0;
}

/* The proper prefixes (at code-point boundaries) of every piece, so the
 * Unigram scan stops as soon as no longer piece can match. */
static int build_prefixes(lode__tok *t, const char **toks, size_t n) {
  size_t total = 0, cap = 16;
  for (size_t i = 0; i < n; i++) total += strlen(toks[i]);
  while (cap < total * 2 + 2) cap <<= 1;
  t->ptab = malloc(cap * sizeof *t->ptab);
  if (!t->ptab) return -1;
  t->ptabmask = cap - 1;
  for (size_t i = 0; i < cap; i++) t->ptab[i].id = -1;
  size_t off = 0;
  for (size_t id = 0; id < n; id++) {
    size_t l = strlen(toks[id]);
    for (size_t k = 1; k < l; k++) {
      if (((uint8_t)toks[id][k] & 0xC0) == 0x80) continue; /* inside a code point */
      uint64_t h = XXH3_64bits(toks[id], k);
      size_t i = h & t->ptabmask;
      int dup = 0;
      for (; t->ptab[i].id >= 0; i = (i + 1) & t->ptabmask)
        if (t->ptab[i].h == h && t->ptab[i].len == k &&
            memcmp(t->arena + t->ptab[i].off, toks[id], k) == 0) {
          dup = 1;
          break;
        }
      if (!dup) t->ptab[i] = (entry){h, (uint32_t)off, (uint32_t)k, (int32_t)id};
    }
    off += l;
  }
  return 0;
}

static int load_model(lode__tok *t, const cJSON *m, const char *path, char *err, size_t errlen) {
  const char *type = jstr(m, "type");
  const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab");
  const char **toks = NULL;
  int rc = -1;
  size_t n = 0;
  if (type && strcmp(type, "WordPiece") == 0 && cJSON_IsObject(vocab)) {
    t->model = M_WORDPIECE;
    n = (size_t)cJSON_GetArraySize(vocab);
    toks = calloc(n ? n : 1, sizeof *toks);
    if (!toks) goto oom;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
      double id = cJSON_IsNumber(it) ? it->valuedouble : -1;
      if (id < 0 || id >= (double)n || toks[(size_t)id]) {
        snprintf(err, errlen, "%s: WordPiece vocab ids must be 0..%zu, each once", path, n - 1);
        goto done;
      }
      toks[(size_t)id] = it->string;
    }
    const char *pre = jstr(m, "continuing_subword_prefix");

    snprintf(t->prefix, sizeof t->prefix, "%s", pre ? pre : "##");
    const cJSON *mw = cJSON_GetObjectItemCaseSensitive(m, "max_input_chars_per_word");
    t->max_word = cJSON_IsNumber(mw) && mw->valuedouble > 0 ? (size_t)mw->valuedouble : 100;
    if (vocab_build(t, toks, n, path, err, errlen)) goto done;
    const char *unk = jstr(m, "unk_token");
    t->unk_id = unk ? lode__vocab_get(t, unk, strlen(unk)) : -1;
  } else if (type && strcmp(type, "Unigram") == 0 && cJSON_IsArray(vocab)) {
    t->model = M_UNIGRAM;
    n = (size_t)cJSON_GetArraySize(vocab);
    toks = calloc(n ? n : 1, sizeof *toks);
    t->scores = malloc((n ? n : 1) * sizeof *t->scores);
    if (!toks || !t->scores) goto oom;
    size_t i = 0;
    const cJSON *it;
    t->min_score = 0;
    cJSON_ArrayForEach(it, vocab) {
      const cJSON *p = cJSON_GetArrayItem(it, 0), *s = cJSON_GetArrayItem(it, 1);
      if (!cJSON_IsString(p) || !cJSON_IsNumber(s)) {
        snprintf(err, errlen, "%s: Unigram vocab entry %zu is not [piece, score]", path, i);
        goto done;
      }
      toks[i] = p->valuestring;
      t->scores[i] = s->valuedouble;
      if (i == 0 || s->valuedouble < t->min_score) t->min_score = s->valuedouble;
      i++;
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(m, "unk_id");
    t->unk_id = cJSON_IsNumber(u) && u->valuedouble >= 0 && u->valuedouble < (double)n
                    ? (int32_t)u->valuedouble : -1;
    t->byte_fallback = jbool(m, "byte_fallback", 0);
    if (vocab_build(t, toks, n, path, err, errlen)) goto done;
    if (build_prefixes(t, toks, n)) goto oom;
  } else {
    snprintf(err, errlen, "%s: model type '%s' is not supported (lode reads WordPiece and "
             "Unigram tokenizers)", path, type ? type : "?");
    goto done;
  }
  if (n == 0 || n > INT32_MAX) {
    snprintf(err, errlen, "%s: the vocabulary is empty or too large", path);
    goto done;
  }
  rc = 0;
  goto done;
oom:
  snprintf(err, errlen, "%s: out of memory", path);
done:
  free(toks);
  return rc;
}

/* added_tokens: [{ "id": N, "content": "..." }, ...]; ids must be in the
 * vocabulary's range (they index the embeddings). */
static int load_added(lode__tok *t, const cJSON *arr, const char *path, char *err, size_t errlen) {
  size_t n = cJSON_IsArray(arr) ? (size_t)cJSON_GetArraySize(arr) : 0;
  if (n == 0) return 0;
  t->added = calloc(n, sizeof *t->added);
  t->added_id = calloc(n, sizeof *t->added_id);
  if (!t->added || !t->added_id) goto oom;
  const cJSON *it;
  cJSON_ArrayForEach(it, arr) {
    const char *c = jstr(it, "content");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    if (!c || !*c || !cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > t->max_id) {
      snprintf(err, errlen, "%s: added token %zu has no content or an id outside the vocabulary",
               path, t->nadded);
      return -1;
    }
    if (cpv_set(&t->added[t->nadded], c)) goto oom;
    t->added_id[t->nadded++] = (int32_t)id->valuedouble;
  }
  return 0;
oom:
  snprintf(err, errlen, "%s: out of memory", path);
  return -1;
}

int lode__tok_load(const char *path, lode__tok **out, char *err, size_t errlen) {
  char *text = NULL;
  size_t len = 0;
  cJSON *root = NULL;
  int rc = -1;
  *out = NULL;
  lode__tok *t = calloc(1, sizeof *t);
  if (!t) {
    snprintf(err, errlen, "%s: out of memory", path);
    goto done;
  }
  t->unk_id = -1;
  if (lode__read_file(path, (size_t)1 << 30, &text, &len, err, errlen)) goto done;
  root = cJSON_ParseWithLength(text, len);
  if (!root) {
    snprintf(err, errlen, "%s: not valid JSON", path);
    goto done;
  }
  const cJSON *nj = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
  if (cJSON_IsObject(nj) && add_norm(t, nj, path, err, errlen)) goto done;
  const cJSON *pj = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
  if (cJSON_IsObject(pj) && add_pre(t, pj, path, err, errlen)) goto done;
  const cJSON *mj = cJSON_GetObjectItemCaseSensitive(root, "model");
  if (!cJSON_IsObject(mj)) {
    snprintf(err, errlen, "%s: no \"model\" object", path);
    goto done;
  }
  if (load_model(t, mj, path, err, errlen)) goto done;
  if (load_added(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), path, err, errlen))
    goto done;
  *out = t;
  t = NULL;
  rc = 0;
done:
  lode__tok_free(t);
  cJSON_Delete(root);
  free(text);
  return rc;
}
