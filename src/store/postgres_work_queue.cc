// The embedding queue in PostgreSQL: photos as bytea by SHA-256, jobs claimed with FOR UPDATE
// SKIP LOCKED under a lease. Its tables are its own, created beside the catalog's (which it
// never writes, and reads only to tell which photos items still use: prune_photos), so the
// catalog schema and its version are unaffected.
#include <algorithm>
#include <mutex>

#include "common/error.h"
#include "store/postgres_connection.h"
#include "store/stored_json.h"
#include "store/work_queue.h"

namespace lookalike {
namespace {

using namespace pg;  // NOLINT: written in terms of the connection layer

// pg_advisory_xact_lock key ("Lkqueue1"), not the catalog's: two processes opening an empty
// database at once both succeed.
constexpr int64_t kQueueSchemaLock = 0x4c6b717565756531;

// Photos are bytea, not files in a shared directory: every machine that reaches the database
// reads them (no NFS to mount and keep consistent), one backup holds the whole catalog, and the
// SHA-256 key deduplicates. STORAGE EXTERNAL: out of line without compression, since JPEG,
// PNG and WebP do not compress. A done job is deleted (its item row is the record);
// embed_throughput counts completions per minute for the rate.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS photos(sha256 text COLLATE "C" PRIMARY KEY, bytes bytea NOT NULL);
ALTER TABLE photos ALTER COLUMN bytes SET STORAGE EXTERNAL;
-- When the photo was last handed over (stored, or queued again): prune_photos spares recent ones.
ALTER TABLE photos ADD COLUMN IF NOT EXISTS stored_at timestamptz NOT NULL DEFAULT now();
CREATE TABLE IF NOT EXISTS embed_jobs(
  id bigserial PRIMARY KEY,
  item_id text COLLATE "C" NOT NULL,
  item text NOT NULL,  -- JSON: category, file_name, source, title, price, url, attributes
  sha256 text COLLATE "C" NOT NULL,
  batch text NOT NULL DEFAULT '',
  state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  lease_until timestamptz,
  worker text,
  error text,
  enqueued_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS embed_jobs_by_state ON embed_jobs(state, id);
CREATE INDEX IF NOT EXISTS embed_jobs_by_batch ON embed_jobs(batch, state);
CREATE INDEX IF NOT EXISTS embed_jobs_by_photo ON embed_jobs(sha256);
-- A job is (item, model version): 0 embeds the photo and stores the item, N > 0 computes the
-- item's descriptor of trained version N (enqueue_descriptors). Queues from before had one
-- job per item.
ALTER TABLE embed_jobs ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0;
ALTER TABLE embed_jobs DROP CONSTRAINT IF EXISTS embed_jobs_item_id_key;
CREATE UNIQUE INDEX IF NOT EXISTS embed_jobs_by_item_version ON embed_jobs(item_id, version);
CREATE TABLE IF NOT EXISTS embed_throughput(minute bigint PRIMARY KEY, done bigint NOT NULL);
)sql";

// Stores a photo, or marks the one stored as handed over again: the update takes the row's
// lock, which keeps prune_photos away from it until this transaction commits.
constexpr const char* kStorePhoto =
    "INSERT INTO photos(sha256, bytes) VALUES ($1, $2) "
    "ON CONFLICT (sha256) DO UPDATE SET stored_at = now()";

constexpr const char* kThisMinute = "floor(extract(epoch FROM now()) / 60)::bigint";

std::string item_json(const Item& item) {
  nlohmann::json j = {{"category", item.category}, {"file_name", item.file_name},
                      {"source", item.source},     {"title", item.metadata.title},
                      {"url", item.metadata.url},  {"attributes", item.metadata.attributes}};
  if (item.metadata.price) j["price"] = *item.metadata.price;
  return j.dump();
}

Item read_item(const std::string& id, const std::string& sha256, std::string_view json) {
  const nlohmann::json j = stored_json_object(json);
  Item item;
  item.id = id;
  item.sha256 = sha256;
  item.category = j.value("category", "");
  item.file_name = j.value("file_name", "");
  item.source = j.value("source", "");
  item.metadata.title = j.value("title", "");
  item.metadata.url = j.value("url", "");
  if (j.contains("price") && j["price"].is_number()) item.metadata.price = j["price"].get<double>();
  if (j.contains("attributes") && j["attributes"].is_object()) item.metadata.attributes = j["attributes"];
  return item;
}

// "1,2,3" for `id = ANY(string_to_array($n, ',')::bigint[])`: one statement for a batch.
std::string id_list(const std::vector<int64_t>& ids) {
  std::string out;
  for (const int64_t id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

double seconds(std::chrono::seconds s) {
  return static_cast<double>(s.count());
}

class PostgresWorkQueue final : public WorkQueue {
 public:
  PostgresWorkQueue(const std::string& conninfo, WorkQueueOptions options)
      : conn_(conninfo), options_(options) {
    // The job bookkeeping (claim, renew, complete, fail, release) commits without waiting for
    // its WAL flush: a crash of the server loses at most the last fraction of a second of it,
    // which the queue already survives (a lost claim or completion leaves a job whose lease
    // expires; its item, stored durably by the catalog store, then makes it count as done).
    // Waiting would add WAL flushes per photo to the one the item's own commit needs.
    // What an import hands over (photos and jobs) stays durable: enqueue and put_photo commit
    // synchronously.
    conn_.exec("SET synchronous_commit = off");
    // Checked first so that an existing queue is opened without any lock (the ALTER TABLE
    // would take photos' exclusive lock on every open).
    // (embed_jobs.version came last: a queue from before it is brought up to date below.)
    if (conn_
            .exec("SELECT (to_regclass('embed_throughput') IS NOT NULL AND EXISTS (SELECT 1 FROM "
                  "information_schema.columns WHERE table_schema = current_schema() AND "
                  "table_name = 'embed_jobs' AND column_name = 'version'))::int4")
            .int64(0, 0) != 0)
      return;
    Transaction tx(conn_, Transaction::Kind::kPlain);
    conn_.exec("SELECT pg_advisory_xact_lock($1)", Params().int8(kQueueSchemaLock));
    conn_.exec_script(kSchema);
    tx.commit();
  }

  size_t enqueue(const std::vector<QueuedPhoto>& photos, const std::string& batch) override {
    // Rows are written in key order, so two imports enqueueing overlapping batches at once
    // lock them in the same order (no deadlock).
    std::vector<const QueuedPhoto*> by_id;
    for (const auto& p : photos) by_id.push_back(&p);
    std::sort(by_id.begin(), by_id.end(), [](auto* a, auto* b) { return a->item.id < b->item.id; });
    std::vector<const QueuedPhoto*> by_hash = by_id;
    std::sort(by_hash.begin(), by_hash.end(),
              [](auto* a, auto* b) { return a->item.sha256 < b->item.sha256; });
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kPlain);
    conn_.exec("SET LOCAL synchronous_commit = on");
    for (const auto* p : by_hash) conn_.exec(kStorePhoto, Params().text(p->item.sha256).bytes(p->bytes));
    size_t queued = 0;
    for (const auto* p : by_id) queued += insert_job(p->item, batch, 0);
    tx.commit();
    return queued;
  }

  size_t enqueue_descriptors(int64_t version, const std::vector<Item>& items,
                             const std::string& batch) override {
    std::vector<const Item*> by_id;
    for (const auto& item : items) by_id.push_back(&item);
    std::sort(by_id.begin(), by_id.end(), [](auto* a, auto* b) { return a->id < b->id; });
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kPlain);
    conn_.exec("SET LOCAL synchronous_commit = on");
    size_t queued = 0;
    for (const Item* item : by_id) queued += insert_job(*item, batch, version);
    tx.commit();
    return queued;
  }

  std::vector<EmbedJob> claim(size_t n, std::chrono::seconds lease, const std::string& worker) override {
    std::lock_guard lock(mutex_);
    give_up_on_expired();
    // The candidates are picked once, in a MATERIALIZED CTE, the form PostgreSQL evaluates
    // exactly once. Written as `WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`, the
    // planner may put the subquery inside a nested-loop semi join (EXPLAIN on the containers'
    // database, where a worker's log showed one claim of 8 returning all 126 jobs of an import;
    // not reproduced on a fresh database).
    const Result r = conn_.exec(
        "WITH picked AS MATERIALIZED (SELECT id FROM embed_jobs "
        "  WHERE (state = 'queued' OR state = 'running' AND lease_until < now()) AND attempts < $4 "
        "  ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) "
        "UPDATE embed_jobs AS j SET state = 'running', attempts = j.attempts + 1, worker = $3, "
        "  lease_until = now() + make_interval(secs => $2) "
        "FROM picked WHERE j.id = picked.id "
        "RETURNING j.id, j.item_id, j.sha256, j.item, j.attempts, j.version",
        Params()
            .int8(static_cast<int64_t>(n))
            .float8(seconds(lease))
            .text(worker)
            .int8(options_.max_attempts));
    std::vector<EmbedJob> jobs;
    for (int row = 0; row < r.rows(); ++row) {
      jobs.push_back({r.int64(row, 0), read_item(r.text(row, 1), r.text(row, 2), r.bytes(row, 3)),
                      static_cast<int>(r.int64(row, 4)), r.int64(row, 5)});
    }
    std::sort(jobs.begin(), jobs.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return jobs;
  }

  void renew(const std::vector<int64_t>& jobs, std::chrono::seconds lease,
             const std::string& worker) override {
    if (jobs.empty()) return;
    std::lock_guard lock(mutex_);
    conn_.exec(
        "UPDATE embed_jobs SET lease_until = now() + make_interval(secs => $2) "
        "WHERE id = ANY(string_to_array($1, ',')::bigint[]) AND worker = $3 AND state = 'running'",
        Params().text(id_list(jobs)).float8(seconds(lease)).text(worker));
  }

  void complete(int64_t job) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kPlain);
    if (conn_.exec("DELETE FROM embed_jobs WHERE id = $1", Params().int8(job)).affected() > 0) {
      conn_.exec(std::string("INSERT INTO embed_throughput(minute, done) VALUES (") + kThisMinute +
                 ", 1) ON CONFLICT (minute) DO UPDATE SET done = embed_throughput.done + 1");
    }
    tx.commit();
  }

  bool fail(int64_t job, const std::string& error, const std::string& worker) override {
    std::lock_guard lock(mutex_);
    const Result r = conn_.exec(
        "UPDATE embed_jobs SET state = CASE WHEN attempts >= $3 THEN 'failed' ELSE 'queued' END, "
        "  error = $2, lease_until = NULL "
        "WHERE id = $1 AND worker = $4 AND state = 'running' RETURNING (state = 'failed')::int4",
        Params().int8(job).text(error).int8(options_.max_attempts).text(worker));
    return r.rows() > 0 && r.int64(0, 0) != 0;
  }

  void release(const std::vector<int64_t>& jobs, const std::string& worker) override {
    if (jobs.empty()) return;
    std::lock_guard lock(mutex_);
    conn_.exec(
        "UPDATE embed_jobs SET state = 'queued', attempts = greatest(attempts - 1, 0), lease_until = NULL "
        "WHERE id = ANY(string_to_array($1, ',')::bigint[]) AND worker = $2 AND state = 'running'",
        Params().text(id_list(jobs)).text(worker));
  }

  QueueCounts counts(const std::string& batch) const override {
    std::lock_guard lock(mutex_);
    QueueCounts c;
    // A running job whose lease expired is waiting for a worker again: counted as queued.
    const Result r = conn_.exec(
        "SELECT CASE WHEN state = 'running' AND lease_until < now() THEN 'queued' ELSE state END AS s, "
        "  count(*) FROM embed_jobs WHERE ($1 = '' OR batch = $1) GROUP BY 1",
        Params().text(batch));
    for (int row = 0; row < r.rows(); ++row) {
      const std::string state = r.text(row, 0);
      const auto n = static_cast<size_t>(r.int64(row, 1));
      (state == "queued" ? c.queued : state == "running" ? c.running : c.failed) += n;
    }
    // The last whole minute and this one so far.
    const Result rate =
        conn_.exec(std::string("SELECT coalesce(sum(done), 0)::bigint, "
                               "  (60 + extract(epoch FROM now()) - 60 * ") +
                   kThisMinute + ")::float8 FROM embed_throughput WHERE minute >= " + kThisMinute + " - 1");
    const double window = rate.real(0, 1);
    if (window > 0) c.per_second = static_cast<double>(rate.int64(0, 0)) / window;
    return c;
  }

  std::vector<FailedJob> failed(const std::string& batch, size_t limit) const override {
    std::lock_guard lock(mutex_);
    const Result r = conn_.exec(
        "SELECT item_id, item, coalesce(error, ''), attempts FROM embed_jobs "
        "WHERE state = 'failed' AND ($1 = '' OR batch = $1) ORDER BY id LIMIT $2",
        Params().text(batch).int8(static_cast<int64_t>(limit)));
    std::vector<FailedJob> out;
    for (int row = 0; row < r.rows(); ++row) {
      out.push_back({r.text(row, 0), stored_json_object(r.bytes(row, 1)).value("source", ""), r.text(row, 2),
                     static_cast<int>(r.int64(row, 3))});
    }
    return out;
  }

  std::optional<std::string> photo(const std::string& sha256) const override {
    std::lock_guard lock(mutex_);
    const Result r = conn_.exec("SELECT bytes FROM photos WHERE sha256 = $1", Params().text(sha256));
    if (r.rows() == 0) return std::nullopt;
    return r.text(0, 0);
  }

  void put_photo(const std::string& sha256, std::string_view bytes) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kPlain);
    conn_.exec("SET LOCAL synchronous_commit = on");
    conn_.exec(kStorePhoto, Params().text(sha256).bytes(bytes));
    tx.commit();
  }

  size_t prune_photos(std::chrono::seconds grace) override {
    // A photo being handed over at this moment is safe: kStorePhoto holds its row's lock until
    // that transaction commits, and the DELETE, which then waits for the lock, re-checks
    // stored_at on the row as it was left (now recent). The grace also covers an item stored
    // after its photo, in another transaction (put_photo, then the catalog store's insert).
    size_t deleted = 0;
    std::string after;  // the walk's position: photos above this key are still to look at
    for (;;) {
      std::lock_guard lock(mutex_);  // per batch: the queue's other calls go between them
      const Result r = conn_.exec(
          "WITH batch AS (SELECT sha256 FROM photos WHERE sha256 > $1 ORDER BY sha256 LIMIT $2), "
          "gone AS (DELETE FROM photos p USING batch b WHERE p.sha256 = b.sha256 "
          "AND p.stored_at < now() - make_interval(secs => $3) "
          "AND NOT EXISTS (SELECT 1 FROM items i WHERE i.sha256 = p.sha256) "
          "AND NOT EXISTS (SELECT 1 FROM embed_jobs j WHERE j.sha256 = p.sha256) RETURNING 1) "
          "SELECT (SELECT max(sha256) FROM batch), (SELECT count(*) FROM gone)",
          Params()
              .text(after)
              .int8(static_cast<int64_t>(std::max<size_t>(1, options_.prune_batch_rows)))
              .float8(seconds(grace)));
      if (r.is_null(0, 0)) return deleted;
      after = r.text(0, 0);
      deleted += static_cast<size_t>(r.int64(0, 1));
    }
  }

 private:
  // One job of enqueue or enqueue_descriptors; true when it is new. On a job already there, the
  // CASEs read the row as it was: a failed job starts again (with the item as given now), a live
  // one only changes tag.
  bool insert_job(const Item& item, const std::string& batch, int64_t version) {
    const Result r = conn_.exec(
        "INSERT INTO embed_jobs AS j(item_id, item, sha256, batch, version) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (item_id, version) DO UPDATE SET batch = EXCLUDED.batch, "
        "  item = CASE WHEN j.state = 'failed' THEN EXCLUDED.item ELSE j.item END, "
        "  sha256 = CASE WHEN j.state = 'failed' THEN EXCLUDED.sha256 ELSE j.sha256 END, "
        "  attempts = CASE WHEN j.state = 'failed' THEN 0 ELSE j.attempts END, "
        "  error = CASE WHEN j.state = 'failed' THEN NULL ELSE j.error END, "
        "  state = CASE WHEN j.state = 'failed' THEN 'queued' ELSE j.state END "
        "RETURNING (xmax = 0)::int4",  // inserted, not updated
        Params().text(item.id).text(item_json(item)).text(item.sha256).text(batch).int8(version));
    return r.int64(0, 0) != 0;
  }

  // Jobs whose worker died (or stalled past its lease) max_attempts times are not claimed again.
  // Old throughput minutes are dropped here too, once per claim.
  void give_up_on_expired() {
    conn_.exec(
        "UPDATE embed_jobs SET state = 'failed', lease_until = NULL, "
        "  error = 'worker died or timed out ' || attempts || ' times' || coalesce(' (earlier: ' || error || "
        "')', '') "
        "WHERE id IN (SELECT id FROM embed_jobs WHERE state = 'running' AND lease_until < now() "
        "  AND attempts >= $1 FOR UPDATE SKIP LOCKED)",
        Params().int8(options_.max_attempts));
    conn_.exec(std::string("DELETE FROM embed_throughput WHERE minute < ") + kThisMinute + " - 60");
  }

  mutable std::mutex mutex_;
  mutable Connection conn_;
  WorkQueueOptions options_;
};

}  // namespace

std::unique_ptr<WorkQueue> open_postgres_work_queue(const std::string& conninfo, WorkQueueOptions options) {
  if (options.max_attempts < 1) throw Error(ErrorCode::kInvalidArgument, "max attempts must be at least 1");
  return std::make_unique<PostgresWorkQueue>(conninfo, options);
}

bool is_postgres_spec(const std::string& spec) {
  return spec.rfind("postgres://", 0) == 0 || spec.rfind("postgresql://", 0) == 0;
}

}  // namespace lookalike
