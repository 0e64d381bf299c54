// `import` on a PostgreSQL store: the photos and a job per item go to the store's queue
// (store/work_queue.h), `lookalike worker` processes embed them, and the import waits for them
// before training as the in-process import does.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "service/catalog.h"
#include "service/import_source.h"
#include "service/importer.h"
#include "store/work_queue.h"

namespace lookalike {

struct QueuedImportOptions {
  size_t batch_size = 64;  // photos per enqueueing transaction
  bool wait = true;        // false: return once the jobs are queued
  double idle_seconds = 30;
  std::function<void(size_t done, size_t total, double seconds)> on_enqueued;
  // While waiting, every second: done (stored or failed) of total, and the queue's counts.
  std::function<void(const ImportProgress&, const QueueCounts&)> on_wait;
  // No job of this import was claimed for idle_seconds: no worker is running (said again
  // every idle_seconds).
  std::function<void()> on_idle;
};

struct QueuedImportReport {
  ImportReport report;  // imported: stored by the workers; failures: failed jobs and unreadable files
  size_t queued = 0;    // jobs this import queued (or took over from an earlier run)
  std::string batch;    // the jobs' tag
  bool waited = false;
};

// Registers the entries not stored yet with their photos (in batches, one transaction each),
// then, when options.wait, waits until the workers are done with them and ends as the import
// does (finish_import with `import_options`: training, copies). Measures the int8 calibration on
// these photos first when the catalog has none, so that every worker embeds alike. Stops early
// when import_options.cancel is set (the jobs stay queued).
QueuedImportReport import_through_queue(Catalog& catalog, const std::vector<ImportEntry>& entries,
                                        const QueuedImportOptions& options,
                                        const ImportOptions& import_options);

}  // namespace lookalike
