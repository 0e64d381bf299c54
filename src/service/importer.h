// Bulk import: decode on a background thread while the CNN embeds the previous batch, commit
// each batch in one transaction (so kill -9 loses at most the batch in flight), skip what is
// already stored, reuse descriptors of byte-identical photos, and train at the end.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "service/catalog.h"
#include "service/import_source.h"

namespace lookalike {

struct ImportProgress {
  size_t done = 0;  // entries handled (imported, skipped or failed)
  size_t total = 0;
  size_t imported = 0;
  double seconds = 0;
};

struct ImportOptions {
  size_t batch_size = 8;
  size_t queue_depth = 64;                    // decoded photos waiting for the CNN; bounds memory
  bool train = true;                          // learn PCA + classifier and rebuild the index at the end
  const std::atomic<bool>* cancel = nullptr;  // set from a signal handler: stop after this batch
  std::function<void(const ImportProgress&)> on_progress;
};

struct ImportFailure {
  std::string path;
  std::string reason;
};

struct ImportReport {
  size_t total = 0;
  size_t imported = 0;
  size_t already_stored = 0;
  size_t reused_descriptors = 0;  // byte-identical to a stored photo: no CNN run
  std::vector<ImportFailure> failures;
  bool interrupted = false;
  double seconds = 0;
  double images_per_second = 0;
  std::string training;  // summary, empty when not trained
};

ImportReport import_entries(Catalog& catalog, const std::vector<ImportEntry>& entries,
                            const ImportOptions& options);

}  // namespace lookalike
