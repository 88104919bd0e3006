#ifndef LODE_MATRIX_H
#define LODE_MATRIX_H
/* matrix.h - dense row-major float32 matrices (embeddings, query vectors).
 *
 * Ownership: a lode_matrix owns `data`; lode_matrix_free releases both. The
 * Lua userdata (src/lua/lode_lua_matrix.c) wraps one and frees it in __gc. */
#include <stddef.h>
#include <stdint.h>

typedef struct lode_matrix {
  int64_t rows, dims;
  float *data; /* rows * dims floats, row-major */
} lode_matrix;

#define LODE_MATRIX_MAX_ELEMS ((int64_t)1 << 31)

/* Zero-filled (calloc: free() releases it); NULL if too large or out of
 * memory. */
float *lode_matrix_alloc(int64_t rows, int64_t dims);
static inline float *lode_matrix_row(const lode_matrix *m, int64_t i) {
  return m->data + i * m->dims;
}
float lode_dot_f32(const float *a, const float *b, int64_t n);
/* Scales v to unit L2 norm (a zero vector stays zero). */
void lode_l2_normalize(float *v, int64_t n);

/* Payload for the checkpoint codec: u32 rows, u32 dims (LE), then the floats
 * little-endian. */
size_t lode_matrix_payload_size(const lode_matrix *m);
void lode_matrix_payload_write(const lode_matrix *m, uint8_t *out);
/* Parses a payload into a new matrix; -1 if malformed. */
int lode_matrix_payload_read(const uint8_t *p, size_t n, lode_matrix *out);

#endif
