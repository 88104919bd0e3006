/* bench_text_split.c - split throughput: bench_text_split FILE SIZE OVERLAP [REPS]
 * Prints one line: bytes, chunks, best seconds per pass, MB/s (1 MB = 1e6 B). */
#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"
#include "kernels/text.h"

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s FILE SIZE OVERLAP [REPS]\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    fprintf(stderr, "bench_text_split: cannot open %s\n", argv[1]);
    return 2;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "bench_text_split: cannot read %s\n", argv[1]);
    return 2;
  }
  fclose(f);
  struct lode_text_split_opts o;
  lode_text_split_opts_default(&o);
  o.size = atol(argv[2]);
  o.overlap = atol(argv[3]);
  int reps = argc > 4 ? atoi(argv[4]) : 20;
  double best = 1e30;
  size_t nchunks = 0;
  char err[LODE_TEXT_ERRLEN];
  for (int r = 0; r < reps; r++) {
    struct lode_text_chunks *c = NULL;
    int64_t t0 = lode_mono_ns();
    if (lode_text_split(s, (size_t)n, &o, &c, err) < 0) {
      fprintf(stderr, "bench_text_split: %s\n", err);
      return 1;
    }
    double dt = (double)(lode_mono_ns() - t0) / 1e9;
    if (dt < best) best = dt;
    nchunks = c->n;
    lode_text_chunks_free(c);
  }
  printf("%ld %zu %.6f %.1f\n", n, nchunks, best, (double)n / best / 1e6);
  free(s);
  return 0;
}
