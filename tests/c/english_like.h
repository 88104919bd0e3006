#ifndef LODE_TESTS_ENGLISH_LIKE_H
#define LODE_TESTS_ENGLISH_LIKE_H
/* english_like.h - generated English-like text: common words and a few
 * domain, Unicode and punctuated ones, picked by splitmix64 from a seed,
 * separated by spaces and now and then a newline. The hash embedder's
 * pinned-bits test (tests/c/test_embed.c) and its speed bench
 * (bench/bench_embed.c) read the same text from it; changing it changes the
 * test's pinned bits. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const char *const english_like_words[] = {
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
    "an", "had", "they", "pipeline", "durable", "workflow", "checkpoint", "embedding",
    "retrieval", "document", "chunks", "vector", "search", "database", "recovery", "tracing",
    "Lua", "kernel", "normalised", "throughput", "Unicode", "tokeniser", "quickly", "ingestion",
    "configuration", "language", "system", "between", "important", "However,", "results.",
    "naïve", "café", "(see", "section", "3.2)", "2024", "people", "through", "example"};

/* Room to leave after `want` bytes: the longest word and its separator. */
#define ENGLISH_LIKE_SLACK 64

/* Writes whole words into out until at least `want` bytes are written
 * (out holds want + ENGLISH_LIKE_SLACK); returns the length written. */
static inline size_t english_like_fill(char *out, size_t want, uint64_t seed) {
  size_t len = 0;
  while (len < want) {
    uint64_t z = (seed += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    const char *w = english_like_words[z % (sizeof english_like_words / sizeof *english_like_words)];
    size_t l = strlen(w);
    memcpy(out + len, w, l);
    len += l;
    out[len++] = (z >> 40) % 15 == 0 ? '\n' : ' ';
  }
  return len;
}
#endif
