#include "common/allocator.h"

#include <malloc.h>

namespace lookalike {

void tune_allocator_for_large_batches() {
  constexpr int kLarge = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kLarge);  // blocks below 1 GiB come from the heap
  mallopt(M_TRIM_THRESHOLD, kLarge);  // and stay there for the next batch
}

}  // namespace lookalike
