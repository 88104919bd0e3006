/* matrix.c - dense float32 matrices. */
#include "kernels/matrix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float *lode_matrix_alloc(int64_t rows, int64_t dims) {
  if (rows < 0 || dims < 0 || (dims && rows > LODE_MATRIX_MAX_ELEMS / dims)) return NULL;
  size_t n = (size_t)(rows * dims);
  return calloc(n ? n : 1, sizeof(float));
}

float lode_dot_f32(const float *a, const float *b, int64_t n) {
  /* four accumulators let the compiler vectorise without -ffast-math */
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; i++) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

void lode_l2_normalize(float *v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)v[i] * v[i];
  if (s <= 0) return;
  float inv = (float)(1.0 / sqrt(s));
  for (int64_t i = 0; i < n; i++) v[i] *= inv;
}

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t lode_matrix_payload_size(const lode_matrix *m) {
  return 8 + (size_t)(m->rows * m->dims) * 4;
}

void lode_matrix_payload_write(const lode_matrix *m, uint8_t *out) {
  put_u32(out, (uint32_t)m->rows);
  put_u32(out + 4, (uint32_t)m->dims);
  size_t n = (size_t)(m->rows * m->dims);
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &m->data[i], 4);
    put_u32(out + 8 + 4 * i, u);
  }
}

int lode_matrix_payload_read(const uint8_t *p, size_t n, lode_matrix *out) {
  if (n < 8) return -1;
  int64_t rows = get_u32(p), dims = get_u32(p + 4);
  if (dims && rows > LODE_MATRIX_MAX_ELEMS / dims) return -1;
  if ((size_t)(rows * dims) * 4 != n - 8) return -1;
  float *d = lode_matrix_alloc(rows, dims);
  if (!d) return -1;
  for (int64_t i = 0; i < rows * dims; i++) {
    uint32_t u = get_u32(p + 8 + 4 * i);
    memcpy(&d[i], &u, 4);
  }
  out->rows = rows;
  out->dims = dims;
  out->data = d;
  return 0;
}
