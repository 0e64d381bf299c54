// Process-wide memory allocator settings for the CNN and training workloads.
#pragma once

namespace lookalike {

// Keeps large freed blocks in glibc's heap for reuse instead of returning them to the kernel.
// The CNN and libtorch allocate and free tens of MB per batch; with glibc's defaults each such
// block is a fresh mmap, paid again in page faults on every batch (a quarter of the training
// time went to the kernel; GeM forward+backward on 64x512x17x17 took 210 ms instead of 45 ms).
// Call once at the start of main().
void tune_allocator_for_large_batches();

}  // namespace lookalike
