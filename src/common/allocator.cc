#include "common/allocator.h"

#include <dlfcn.h>
#include <malloc.h>

namespace lookalike {

void tune_allocator_for_large_batches() {
  constexpr int kLarge = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kLarge);  // blocks below 1 GiB come from the heap
  mallopt(M_TRIM_THRESHOLD, kLarge);  // and stay there for the next batch
}

void return_free_memory() {
  malloc_trim(0);
}

void set_blas_threads(int threads) {
  // Looked up at run time: libblas.so.3 is whichever BLAS the machine's alternatives chose.
  using SetThreads = void (*)(int);
  if (auto* set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(threads);
}

}  // namespace lookalike
