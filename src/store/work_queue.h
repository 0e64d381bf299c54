// The embedding queue of a catalog in PostgreSQL (issue 15): an import registers each photo
// (stored once, by SHA-256) and a job per item; `lookalike worker` processes, on any machine,
// claim jobs, embed the photos and store the items through the catalog store. A worker that dies
// loses its jobs only until their lease expires; a photo that keeps failing is retried a bounded
// number of times, then marked failed with its error. PostgreSQL only (postgres_work_queue.cc):
// the embedded SQLite catalog imports in-process.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/catalog_store.h"

namespace lookalike {

// A photo to embed: the item it becomes (id, category, file_name, source, sha256 and metadata;
// the rest is measured by the worker) and the photo's bytes.
struct QueuedPhoto {
  Item item;
  std::string bytes;
};

// A claimed job: the item to store, its photo named by item.sha256; or, for version > 0, the
// stored item (by item.id) whose descriptor of that trained version is to be computed.
struct EmbedJob {
  int64_t id = 0;
  Item item;
  int attempts = 0;  // this one included
  int64_t version = 0;
};

struct QueueCounts {
  size_t queued = 0;   // waiting for a worker (or held by one whose lease expired)
  size_t running = 0;  // claimed, lease not expired
  size_t failed = 0;   // given up on, with their error
  // Jobs completed per second over the last one to two minutes (all workers; 0 when none).
  double per_second = 0;
};

struct FailedJob {
  std::string item_id;
  std::string source;
  std::string error;
  int attempts = 0;
};

struct WorkQueueOptions {
  // A job whose photo failed (fail()) or whose worker died (lease expired) this many times is
  // marked failed instead of queued again.
  int max_attempts = 3;
  // prune_photos walks the photos in key order, this many rows per transaction, so that at a
  // million photos no single statement scans them all or holds thousands of row locks.
  size_t prune_batch_rows = 5000;
};

class WorkQueue {
 public:
  virtual ~WorkQueue() = default;

  // Stores the photos (once per SHA-256) and one job per item, in one transaction, all tagged
  // `batch` (an import waits for its own tag). An item id already queued or running keeps its
  // job (now tagged `batch`); a failed one is queued again with its attempts reset. Returns how
  // many jobs are new (not in the queue before).
  virtual size_t enqueue(const std::vector<QueuedPhoto>& photos, const std::string& batch) = 0;

  // A job per stored item to compute its descriptor of trained `version` (not active yet), so
  // that the workers spread a new version's descriptors as they spread embedding. Items keep
  // their photos in the store (queued imports and API adds put them there). Same tagging and
  // requeueing of failed jobs as enqueue. Returns how many jobs are new.
  virtual size_t enqueue_descriptors(int64_t version, const std::vector<Item>& items,
                                     const std::string& batch) = 0;
  // Takes up to n jobs for `worker` for `lease`: queued ones, and running ones whose lease
  // expired (their worker died or stalled), oldest first; concurrent claimers never get the
  // same job (FOR UPDATE SKIP LOCKED). Expired jobs that had max_attempts already are marked
  // failed instead.
  virtual std::vector<EmbedJob> claim(size_t n, std::chrono::seconds lease, const std::string& worker) = 0;
  // Extends the lease of jobs `worker` still holds.
  virtual void renew(const std::vector<int64_t>& jobs, std::chrono::seconds lease,
                     const std::string& worker) = 0;
  // The job's item is stored: the job is deleted (the item row is the record).
  virtual void complete(int64_t job) = 0;
  // The job's photo could not be processed: queued again, or failed for good at max_attempts
  // (returns true then). Ignored when `worker` no longer holds the job.
  virtual bool fail(int64_t job, const std::string& error, const std::string& worker) = 0;
  // Jobs `worker` holds go back to the queue without using an attempt (a worker stopping).
  virtual void release(const std::vector<int64_t>& jobs, const std::string& worker) = 0;

  // All jobs, or those tagged `batch`.
  virtual QueueCounts counts(const std::string& batch = {}) const = 0;
  virtual std::vector<FailedJob> failed(const std::string& batch = {}, size_t limit = 1000) const = 0;

  // A stored photo's bytes, by SHA-256.
  virtual std::optional<std::string> photo(const std::string& sha256) const = 0;
  // Stores a photo (kept when there already): one added outside an import (`add`, the API).
  virtual void put_photo(const std::string& sha256, std::string_view bytes) = 0;
  // Deletes the photos no item and no job refers to any more (their items were removed), unless
  // handed over (stored or queued again) within `grace`. Returns how many.
  virtual size_t prune_photos(std::chrono::seconds grace) = 0;
};

// Connects (its own connection) and creates the queue's tables when absent. Errors as
// open_postgres_store's.
std::unique_ptr<WorkQueue> open_postgres_work_queue(const std::string& conninfo,
                                                    WorkQueueOptions options = {});

// True for a store spec that open_store opens as PostgreSQL (postgres:// or postgresql://).
bool is_postgres_spec(const std::string& spec);

}  // namespace lookalike
