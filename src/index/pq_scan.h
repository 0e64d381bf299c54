// The compressed index's candidate scan: approximate distances from one query to the 8-bit
// product-quantizer codes of its nearest IVF lists, in place of FAISS's IVF-PQ scanner (Debian's
// FAISS is built for baseline x86-64). It keeps four codes in flight, reads each code 8 bytes at
// a time and fetches codes ahead into the cache; the caller skips rejected rows before any
// distance is computed. At 1M items it took a query from 3.8-4.6 ms to 2.1-2.3 ms, and a 1/6
// category filter from 13.7-18.7 ms to 3.9-5.4 ms (docs/benchmarks.md, same index and machine).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lookalike {

// out[i] = sum_j table[j * 256 + code_i[j]] over the m sub-quantizers, where code_i is
// codes + rows[i] * m (or codes + i * m when rows is null): the layout of
// faiss::ProductQuantizer::compute_distance_table (m rows of 256 floats, row-major) and of an
// inverted list's codes (n rows of m bytes). m must be a multiple of 8. Nothing is owned.
void pq8_distances(const float* table, size_t m, const uint8_t* codes, const uint32_t* rows, size_t n,
                   float* out);

}  // namespace lookalike
