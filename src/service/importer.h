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
  // Stored items without a colour signature (imported before colours were measured) get one
  // from their stored photo first: (done, total).
  std::function<void(size_t, size_t)> on_colours;
  // The training steps at the end (Catalog::train), each named as it starts.
  std::function<void(const std::string&)> on_phase;
  // The comparison of the new items with their neighbours for copies of one product shot, last.
  std::function<void(size_t, size_t)> on_copies;
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
  size_t colours_measured = 0;    // stored items given their missing colour signature
  std::vector<ImportFailure> failures;
  bool interrupted = false;
  double seconds = 0;
  double images_per_second = 0;
  std::string training;  // summary, empty when not trained
  CopyCheckSummary copies;
};

ImportReport import_entries(Catalog& catalog, const std::vector<ImportEntry>& entries,
                            const ImportOptions& options);

// The end of an import that was not interrupted: trains (options.train, when photos were
// imported) or reloads, then compares the items with their neighbours for copies. import_entries
// ends with it; an import through the PostgreSQL queue calls it once the workers are done.
void finish_import(Catalog& catalog, const ImportOptions& options, ImportReport& report);

// Gives every stored item without a colour signature one, measured on its stored photo and
// committed in batches (an interruption keeps what was committed). An unreadable photo is left
// without one (`check` reports the photo). Stops early when *cancel becomes true. Returns how
// many items got one; the caller reloads the serving state.
size_t fill_missing_colours(Catalog& catalog, const std::atomic<bool>* cancel,
                            const std::function<void(size_t, size_t)>& on_progress);

}  // namespace lookalike
