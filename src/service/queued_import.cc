#include "service/queued_import.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/clock.h"
#include "common/error.h"
#include "common/files.h"

namespace lookalike {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

bool cancelled(const ImportOptions& options) {
  return options.cancel && options.cancel->load();
}

// host:pid:time, unique enough to tell this import's jobs from another's.
std::string batch_tag() {
  char host[256] = "";
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + std::to_string(unix_seconds());
}

QueuedPhoto queued_photo(const ImportEntry& entry, std::string bytes) {
  QueuedPhoto p;
  p.item.id = entry.id;
  p.item.category = entry.category;
  p.item.file_name = entry.file_name;
  p.item.source = entry.path;
  p.item.sha256 = sha256_hex(bytes);
  p.item.metadata = entry.metadata;
  p.bytes = std::move(bytes);
  return p;
}

void enqueue_all(Catalog& catalog, WorkQueue& queue, const std::vector<ImportEntry>& entries,
                 const QueuedImportOptions& options, const ImportOptions& import_options,
                 QueuedImportReport& out) {
  const auto started = Clock::now();
  std::vector<QueuedPhoto> batch;
  size_t done = 0;
  const auto flush = [&] {
    if (batch.empty()) return;
    queue.enqueue(batch, out.batch);
    out.queued += batch.size();
    batch.clear();
    if (options.on_enqueued) options.on_enqueued(done, entries.size(), seconds_since(started));
  };
  for (const auto& entry : entries) {
    if (cancelled(import_options)) break;
    ++done;
    // Stored already (an earlier run, or another import): not queued again.
    if (catalog.store().find(entry.id)) {
      ++out.report.already_stored;
      continue;
    }
    try {
      batch.push_back(queued_photo(entry, read_file(entry.path, catalog.options().max_image_bytes)));
    } catch (const Error& e) {
      out.report.failures.push_back({entry.path, e.what()});
    }
    if (batch.size() >= options.batch_size) flush();
  }
  if (!cancelled(import_options)) flush();
}

// Until no job of this import is queued or running; false when interrupted.
bool wait_for_workers(WorkQueue& queue, const QueuedImportOptions& options,
                      const ImportOptions& import_options, QueuedImportReport& out) {
  const auto started = Clock::now();
  auto last_progress = started;
  size_t last_done = 0;
  for (;;) {
    const QueueCounts c = queue.counts(out.batch);
    const size_t left = c.queued + c.running + c.failed;
    const size_t stored = out.queued > left ? out.queued - left : 0;
    out.report.imported = stored;
    if (options.on_wait) options.on_wait({stored + c.failed, out.queued, stored, seconds_since(started)}, c);
    if (c.queued + c.running == 0) return true;
    if (c.running > 0 || stored != last_done) {
      last_done = stored;
      last_progress = Clock::now();
    } else if (seconds_since(last_progress) >= options.idle_seconds) {
      if (options.on_idle) options.on_idle();
      last_progress = Clock::now();
    }
    for (int i = 0; i < 10; ++i) {
      if (cancelled(import_options)) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace

QueuedImportReport import_through_queue(Catalog& catalog, const std::vector<ImportEntry>& entries,
                                        const QueuedImportOptions& options,
                                        const ImportOptions& import_options) {
  if (entries.empty()) throw Error(ErrorCode::kInvalidArgument, "nothing to import");
  WorkQueue* queue = catalog.queue();
  if (!queue)
    throw Error(ErrorCode::kInvalidArgument, "importing through the queue needs a PostgreSQL store");
  const auto started = Clock::now();
  QueuedImportReport out;
  out.report.total = entries.size();
  out.batch = batch_tag();
  // The workers read the int8 calibration from the store: it is measured here, on the photos
  // being imported, before any job can be claimed (a catalog with one already keeps it). Loading
  // the model also checks that it is the catalog's.
  std::vector<std::string> paths;
  for (const auto& entry : entries) paths.push_back(entry.path);
  catalog.set_calibration_photos(std::move(paths));
  catalog.embedders();
  enqueue_all(catalog, *queue, entries, options, import_options, out);
  if (cancelled(import_options)) {
    out.report.interrupted = true;
    return out;
  }
  if (!options.wait) return out;
  out.waited = true;
  if (!wait_for_workers(*queue, options, import_options, out)) {
    out.report.interrupted = true;
    return out;
  }
  for (const auto& f : queue->failed(out.batch)) {
    out.report.failures.push_back({f.source, f.error + " (" + std::to_string(f.attempts) +
                                                 (f.attempts == 1 ? " attempt)" : " attempts)")});
  }
  out.report.seconds = seconds_since(started);
  out.report.images_per_second =
      out.report.seconds > 0 ? double(out.report.imported) / out.report.seconds : 0;
  // Workers may have stored an earlier `--no-wait` import's photos: untrained, they are this
  // import's to train on even when it queued nothing new.
  if (import_options.train && out.report.imported == 0 && !catalog.stats().trained &&
      catalog.store().count() > 0)
    out.report.training = catalog.train(import_options.on_phase);
  finish_import(catalog, import_options, out.report);
  return out;
}

}  // namespace lookalike
