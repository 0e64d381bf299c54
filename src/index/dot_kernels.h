// Inner products for the compressed index's hot loops: the re-rank against float16 copies and
// the distances of a single query to the IVF list centroids. Debian's FAISS is built for
// baseline x86-64, where its float16 code converts one value at a time (4.5 ns a dimension:
// 1.8 ms to re-rank 384 candidates of 1,024 values), and BLAS's sgemv for one query wakes
// OpenBLAS's worker threads, which then spin on the other core for a while after each search.
// These use AVX2, FMA and F16C when the CPU has them (chosen once, at run time), plain loops
// otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lookalike {

// sum_i query[i] * row[i], row holding n IEEE 754 binary16 values. Neither pointer needs alignment.
float dot_float16(const float* query, const uint16_t* row, size_t n);

// sum_i a[i] * b[i] over n floats, in one thread.
float dot_float32(const float* a, const float* b, size_t n);

// Whether the kernels use the AVX2 + FMA + F16C path on this CPU (for reports).
bool dot_kernels_vectorised();

}  // namespace lookalike
