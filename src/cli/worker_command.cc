// `lookalike worker`: embeds the photos that imports on a PostgreSQL store queued
// (store/work_queue.h), on this machine, beside any number of others; and `lookalike status`,
// the queue as any machine sees it.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "service/catalog.h"
#include "store/work_queue.h"

namespace lookalike {
namespace {

using Clock = std::chrono::steady_clock;

struct WorkerArgs {
  size_t batch = 8;
  int lease_seconds = 60;
  int max_attempts = 3;
  std::string name;
  bool exit_when_empty = false;
};

void require_postgres(const GlobalOptions& g, const char* command) {
  if (!is_postgres_spec(g.store)) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(command) +
                    " needs a catalog in PostgreSQL: --store postgresql://... or "
                    "LOOKALIKE_STORE");
  }
}

std::string default_worker_name() {
  char host[256] = "";
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

class Worker {
 public:
  Worker(Catalog& catalog, WorkQueue& queue, const WorkerArgs& args)
      : catalog_(catalog), queue_(queue), args_(args), lease_(args.lease_seconds) {}

  int run() {
    const auto started = Clock::now();
    while (!g_interrupted) {
      // A version activated meanwhile (the import's training): items are stored with its
      // descriptor from now on, as an in-process add would.
      if (catalog_.store().active_version() != catalog_.active_version()) catalog_.refresh();
      const auto jobs = queue_.claim(args_.batch, lease_, args_.name);
      if (jobs.empty()) {
        const QueueCounts c = queue_.counts();
        if (args_.exit_when_empty && c.queued + c.running == 0) break;
        pause(std::chrono::seconds(1));
        continue;
      }
      const auto batch_started = Clock::now();
      const size_t stored = process(jobs);
      std::fprintf(stderr,
                   "worker %s: %zu of %zu photos stored in %.1f s (%.1f img/s); %zu in %.0f s (%.2f img/s)\n",
                   args_.name.c_str(), stored, jobs.size(), seconds_since(batch_started),
                   double(stored) / std::max(seconds_since(batch_started), 1e-3), done_,
                   seconds_since(started), double(done_) / std::max(seconds_since(started), 1e-3));
    }
    std::fprintf(stderr, "worker %s: stopping; %zu photos stored, %zu failed\n", args_.name.c_str(), done_,
                 failed_);
    return 0;
  }

 private:
  // Stores each job's item; on Ctrl-C or SIGTERM, the item in flight is finished and the rest
  // of the batch goes back to the queue. Returns how many were stored.
  size_t process(const std::vector<EmbedJob>& jobs) {
    size_t stored = 0;
    auto leased_at = Clock::now();
    for (size_t i = 0; i < jobs.size(); ++i) {
      std::vector<int64_t> rest;
      for (size_t j = i; j < jobs.size(); ++j) rest.push_back(jobs[j].id);
      if (g_interrupted) {
        queue_.release(rest, args_.name);
        break;
      }
      // A slow batch keeps its jobs: renewed once a quarter of the lease has gone, not per photo
      // (a statement per photo for nothing when photos take a tenth of a second).
      if (Clock::now() - leased_at > lease_ / 4) {
        queue_.renew(rest, lease_, args_.name);
        leased_at = Clock::now();
      }
      try {
        stored += store(jobs[i]);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kBusy) throw;
        // The database is busy, not the photo: the jobs go back without using an attempt.
        spdlog::warn("{}; the batch goes back to the queue", e.what());
        queue_.release(rest, args_.name);
        pause(std::chrono::seconds(1));
        break;
      }
    }
    return stored;
  }

  bool store(const EmbedJob& job) {
    if (job.version > 0) return store_descriptor(job);
    const auto bytes = queue_.photo(job.item.sha256);
    if (!bytes) return give_up(job, "the photo " + job.item.sha256 + " is not in the store");
    try {
      catalog_.add(*bytes, job.item);
    } catch (const Error& e) {
      // The item and the job are in two transactions (the catalog store's and the queue's
      // connections), so a worker that dies between the two commits leaves a stored item whose
      // job comes back after its lease. Its id exists then: the job is done, not stored twice.
      // (An id stored by anyone else means the same to an import: already stored.)
      if (e.code() == ErrorCode::kConflict && catalog_.store().find(job.item.id)) {
        queue_.complete(job.id);
        return false;
      }
      if (e.code() == ErrorCode::kBusy) throw;
      return give_up(job, e.what());
    } catch (const std::exception& e) {
      return give_up(job, std::string("internal error: ") + e.what());
    }
    queue_.complete(job.id);
    ++done_;
    return true;
  }

  // A trained version's descriptor of a stored item (the photo comes from the store when this
  // data directory lacks it). An item removed meanwhile needs none: the job is done.
  bool store_descriptor(const EmbedJob& job) {
    try {
      const auto item = catalog_.store().find(job.item.id);
      if (item) catalog_.store_version_descriptors(job.version, {*item});
      queue_.complete(job.id);
      done_ += item.has_value();
      return item.has_value();
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kBusy) throw;
      return give_up(job, e.what());
    } catch (const std::exception& e) {
      return give_up(job, std::string("internal error: ") + e.what());
    }
  }

  bool give_up(const EmbedJob& job, const std::string& error) {
    const bool failed = queue_.fail(job.id, error, args_.name);
    spdlog::warn("{} ({}, attempt {}): {}{}", job.item.id, job.item.source, job.attempts, error,
                 failed ? "; failed for good" : "; queued again");
    failed_ += failed;
    return false;
  }

  void pause(std::chrono::milliseconds duration) {
    for (auto left = duration; left.count() > 0 && !g_interrupted; left -= std::chrono::milliseconds(100))
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  Catalog& catalog_;
  WorkQueue& queue_;
  const WorkerArgs& args_;
  std::chrono::seconds lease_;
  size_t done_ = 0, failed_ = 0;
};

}  // namespace

void add_worker(CLI::App& app, const GlobalOptions& g) {
  auto* cmd = app.add_subcommand(
      "worker", "Embed photos queued by `import` on a PostgreSQL store (run any number, on any machine)");
  auto a = std::make_shared<WorkerArgs>();
  cmd->add_option("--batch", a->batch, "Jobs claimed at a time")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--lease", a->lease_seconds,
                  "Seconds a claimed job stays this worker's without news; then another worker takes it")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  cmd->add_option("--max-attempts", a->max_attempts,
                  "Attempts at a photo (failed, or its worker died) before its job is marked failed")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--name", a->name, "Name in the queue and logs (default: host:pid)");
  cmd->add_flag("--exit-when-empty", a->exit_when_empty,
                "Exit once no job is queued or running (default: wait for more)");
  cmd->callback([&g, a] {
    run(g, [&] {
      require_postgres(g, "worker");
      if (a->name.empty()) a->name = default_worker_name();
      // The model loads with the first job: by then the import stored the int8 calibration.
      Catalog catalog(catalog_options(g), /*load_model=*/false);
      auto queue = open_postgres_work_queue(g.store, {a->max_attempts});
      catch_interrupts();
      std::fprintf(stderr, "worker %s: taking jobs from %s\n", a->name.c_str(),
                   catalog.store().describe().c_str());
      return Worker(catalog, *queue, *a).run();
    });
  });
}

void add_status(CLI::App& app, const GlobalOptions& g) {
  auto* cmd =
      app.add_subcommand("status", "The embedding queue of a PostgreSQL store: done, queued, failed, rate");
  auto json = std::make_shared<bool>(false);
  auto failures = std::make_shared<size_t>(10);
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->add_option("--failures", *failures, "Failed jobs listed")->capture_default_str();
  cmd->callback([&g, json, failures] {
    run(g, [&] {
      require_postgres(g, "status");
      auto store = open_store(g.store);
      auto queue = open_postgres_work_queue(g.store);
      const QueueCounts c = queue->counts();
      const size_t items = store->count();
      const double eta = c.per_second > 0 ? double(c.queued + c.running) / c.per_second : -1;
      const auto failed = queue->failed({}, *failures);
      if (*json) {
        nlohmann::json doc = {{"store", store->describe()},
                              {"items", items},
                              {"queue",
                               {{"queued", c.queued},
                                {"running", c.running},
                                {"failed", c.failed},
                                {"per_second", c.per_second},
                                {"eta_seconds", eta}}},
                              {"failures", nlohmann::json::array()}};
        for (const auto& f : failed)
          doc["failures"].push_back(
              {{"id", f.item_id}, {"source", f.source}, {"error", f.error}, {"attempts", f.attempts}});
        std::cout << doc.dump(2) << "\n";
        return 0;
      }
      std::printf("store:    %s\n", store->describe().c_str());
      std::printf("items:    %zu stored\n", items);
      std::printf("queue:    %zu queued, %zu running, %zu failed\n", c.queued, c.running, c.failed);
      std::printf(
          "rate:     %.1f img/s over the last minute%s\n", c.per_second,
          eta >= 0 ? (", about " + std::to_string(static_cast<long>(eta + 0.5)) + " s left").c_str() : "");
      for (const auto& f : failed)
        std::printf("failed:   %s (%s, %d attempts): %s\n", f.item_id.c_str(), f.source.c_str(), f.attempts,
                    f.error.c_str());
      return 0;
    });
  });
}

}  // namespace lookalike
