// Process-wide settings of the CNN's runtime: the memory allocator, BLAS threads.
#pragma once

namespace lookalike {

// Keeps large freed blocks in glibc's heap for reuse instead of returning them to the kernel.
// The CNN and libtorch allocate and free tens of MB per batch; with glibc's defaults each such
// block is a fresh mmap, paid again in page faults on every batch (a quarter of the training
// time went to the kernel; GeM forward+backward on 64x512x17x17 took 210 ms instead of 45 ms).
// Call once at the start of main().
void tune_allocator_for_large_batches();

// Hands the heap's free pages back to the kernel (malloc_trim). With the settings above freed
// memory stays in the heap for reuse; after a one-off burst (loading 1M items, listing every
// stored photo) that would hold the process's resident memory at its peak for good.
void return_free_memory();

// Sets how many threads OpenBLAS (FAISS's and OpenCV's BLAS, through Debian's alternatives)
// may use; a no-op with another BLAS. The server calls it with 1: its BLAS calls are small
// (a query's projection and head), and OpenBLAS's idle threads spin on sched_yield after each
// call, taking the cores the CNN's threads need (docs/benchmarks.md: 26.9 -> 34.1 searches/s at
// 4 clients with the short libgomp spin of main.cc).
void set_blas_threads(int threads);

}  // namespace lookalike
