// The compressed index's candidate scans, in place of FAISS's IVF-PQ scanners (Debian builds
// FAISS for baseline x86-64, without the AVX2 code paths of its scanners).
// - 8-bit codes (pq8_distances): four codes in flight, each read 8 bytes at a time and fetched
//   ahead into the cache; the caller skips rejected rows before any distance is computed. At 1M
//   items it took a query from 3.8-4.6 ms to 2.1-2.3 ms (docs/benchmarks.md).
// - 4-bit codes in blocks of 32 rows (pq4_distances): AVX2 byte shuffles look a pair of
//   sub-quantizers up for 32 rows at once.
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

// 4-bit codes in FAISS's fast-scan layout (faiss/impl/pq4_fast_scan.h, IndexIVFPQFastScan with
// blocks of 32 rows): each block holds, per pair of sub-quantizers, 32 bytes whose nibbles are
// the two sub-quantizers' codes of the block's 32 rows. A query's 16-entry table per
// sub-quantizer is quantized to bytes so that one byte shuffle looks up 32 rows at once: at 128
// sub-quantizers a row costs about 20 vector instructions where an 8-bit code costs 64 table loads.

constexpr size_t kPq4BlockRows = 32;

// The query's float table (m rows of 16 distances, row-major, as
// faiss::ProductQuantizer::compute_distance_table gives it for 4-bit codes) as bytes: each row
// less its minimum, all scaled by one factor so that the widest row spans 0..255, laid out in
// pairs of rows as the kernel reads them (m * 16 bytes into `packed`). Byte sums keep the order
// of the float sums up to rounding (half a step per sub-quantizer). m must be even.
void pq4_quantize_table(const float* table, size_t m, uint8_t* packed);

// out[b * 32 + r] = sum over the m sub-quantizers of packed-table entries for row r of block b,
// for the `blocks` blocks at `codes` (each m * 16 bytes). At most 256 sub-quantizers (the sums
// fit 16 bits). Uses AVX2 when the CPU has it, otherwise the same sums one nibble at a time.
void pq4_distances(const uint8_t* packed, size_t m, const uint8_t* codes, size_t blocks, uint16_t* out);
bool pq4_vectorised();
// The code of sub-quantizer `sq` for row `row` of packed blocks (m sub-quantizers).
inline uint8_t pq4_packed_code(const uint8_t* codes, size_t m, size_t row, size_t sq) {
  // The pair of sub-quantizers (sq & ~1) owns 32 bytes of the row's block: the even one the
  // first 16, the odd one the last 16; byte 2t holds rows t and t + 16 (low, high nibble), byte
  // 2t + 1 rows t + 8 and t + 24 (faiss::pq4_pack_codes).
  const uint8_t* block = codes + (row / kPq4BlockRows) * m * 16;
  const size_t r = row % kPq4BlockRows, within = r & 15;
  const size_t byte = (within < 8 ? 2 * within : 2 * (within - 8) + 1) + (sq & 1) * 16;
  const uint8_t packed = block[(sq / 2) * 32 + byte];
  return r < 16 ? packed & 15 : packed >> 4;
}
// The same sums one nibble at a time (what pq4_distances does without AVX2), for tests.
void pq4_distances_portable(const uint8_t* packed, size_t m, const uint8_t* codes, size_t blocks,
                            uint16_t* out);

}  // namespace lookalike
