#ifndef LODE_EMBED_TOK_H
#define LODE_EMBED_TOK_H
/* embed_tok.h - a Hugging Face tokenizer.json subset for model2vec: the
 * normalizers BertNormalizer, Lowercase, Strip, Replace (literal, or the regex
 * \s+), NFC/NFD/NFKC/NFKD, StripAccents and Sequence; the pre-tokenizers
 * BertPreTokenizer, Whitespace, WhitespaceSplit, Metaspace and Sequence; the
 * models WordPiece and Unigram. Anything else fails at load with a message
 * naming the file and the type.
 *
 * Ownership: lode__tok_load returns a tokenizer the caller frees with
 * lode__tok_free; it owns its vocabulary. Encoding is read-only on it. */
#include <stddef.h>
#include <stdint.h>

typedef struct lode__tok lode__tok;

typedef struct lode__ids {
  int32_t *v;
  size_t n, cap;
} lode__ids;

int lode__tok_load(const char *path, lode__tok **out, char *err, size_t errlen);
void lode__tok_free(lode__tok *t);
/* Appends the ids of s as model2vec tokenises (no special tokens added;
 * WordPiece unknown tokens dropped, Unigram ones kept) until `max` ids; 0, or
 * -1 when out of memory. */
int lode__tok_encode(const lode__tok *t, const char *s, size_t n, lode__ids *ids, size_t max);
int32_t lode__tok_max_id(const lode__tok *t);

/* Reads a whole file (at most max bytes) into a NUL-terminated malloc'd
 * buffer; 0, or -1 with err naming the file. */
int lode__read_file(const char *path, size_t max, char **out, size_t *len, char *err,
                    size_t errlen);

#endif
