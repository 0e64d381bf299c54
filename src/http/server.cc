#include "http/server.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/error.h"
#include "common/files.h"
#include "http/api.h"
#include "http/bounded_server.h"
#include "service/activity.h"
#include "service/maintenance.h"

#ifndef LOOKALIKE_DEFAULT_WEB_ROOT
#define LOOKALIKE_DEFAULT_WEB_ROOT "web/dist"
#endif

namespace lookalike {
namespace {

std::string load_admin_token(const ServerOptions& options) {
  if (!options.admin_token_file.empty()) {
    std::string token = read_file(options.admin_token_file, 4096);
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    if (token.size() < 16) {
      throw Error(ErrorCode::kInvalidArgument,
                  options.admin_token_file + ": the admin token must be >= 16 characters");
    }
    return token;
  }
  if (const char* env = std::getenv("LOOKALIKE_ADMIN_TOKEN"); env && *env) {
    if (std::strlen(env) < 16)
      throw Error(ErrorCode::kInvalidArgument, "LOOKALIKE_ADMIN_TOKEN must be >= 16 characters");
    return env;
  }
  return "";
}

ConnectionLimits connection_limits(const ServerOptions& options) {
  ConnectionLimits limits;
  limits.max_request_bytes = request_size_limit(options.max_upload_mb << 20);
  limits.request_timeout = std::chrono::seconds(options.request_timeout_s);
  limits.max_in_flight_bytes = options.max_upload_memory_mb << 20;
  return limits;
}

void configure(httplib::Server& server, const ServerOptions& options) {
  const size_t workers = options.workers;
  server.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  // Debian's default (Nagle on) costs ~40 ms per response.
  server.set_tcp_nodelay(true);
  // A declared length over the limit is refused before the body is read.
  server.set_payload_max_length(request_body_limit(options.max_upload_mb << 20));
}

int g_stop_pipe[2] = {-1, -1};

// Libraries start threads before main (OpenBLAS, TBB), so a blocked mask plus sigwait cannot
// catch every delivery; a handler that only writes one byte to a pipe (async-signal-safe)
// works whichever thread the kernel picks.
extern "C" void on_stop_signal(int sig) {
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = ::write(g_stop_pipe[1], &byte, 1);
}

void install_stop_handlers() {
  if (::pipe(g_stop_pipe) != 0) throw Error(ErrorCode::kInternal, "cannot create the shutdown pipe");
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

int wait_for_stop_signal() {
  unsigned char byte = 0;
  while (::read(g_stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
  }
  return byte;
}

// The head trainings this server runs in the background: one at a time, started when one is due
// at start-up or after the catalog changed on disk (or as soon as the job that held one back
// has ended), never again after one failed (its log says why; a restart or `lookalike train`
// tries again).
class TrainingSupervisor {
 public:
  explicit TrainingSupervisor(const ServerOptions& options) : options_(options) {}
  ~TrainingSupervisor() { stop(); }

  // Never throws: the server answers whether or not a training can start.
  void start_if_due(const Catalog& catalog) {
    try {
      try_start(catalog);
    } catch (const std::exception& e) {
      failed_ = true;
      held_back_ = false;
      spdlog::error("cannot start the background training: {}", e.what());
    }
  }

  // A due training waits for another job: check again at the next tick.
  bool held_back() const { return held_back_; }

  // Logs how a training ended, once.
  void report_end(const Catalog& catalog) {
    if (!child_ || reported_ || !child_->poll()) return;
    reported_ = true;
    const int status = *child_->poll();
    failed_ = status != 0;
    if (failed_) {
      spdlog::error("background training ended with status {}; see {}/activity/train.log", status,
                    catalog.data_dir());
    } else {
      spdlog::info("background training finished; model version {} answers", catalog.active_version());
    }
  }

  // At shutdown: a training that has written its "finished" report but not exited yet (the
  // process tears down libtorch after its last write) gets a few seconds to exit, so that its end
  // is logged rather than taken for a training to stop.
  void report_end_at_exit(const Catalog& catalog) {
    if (!child_ || reported_) return;
    const auto finished = [&] {
      for (const auto& a : read_activities(catalog.data_dir()))
        if (a.job == "train" && a.pid == child_->pid() && a.state == "finished") return true;
      return false;
    };
    if (!child_->poll() && finished()) {
      for (int i = 0; i < 50 && !child_->poll(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    report_end(catalog);
  }

  void stop() {
    if (!child_ || child_->poll()) return;
    spdlog::warn("stopping the background training (pid {}); the next start trains again", child_->pid());
    child_->stop();
  }

 private:
  void try_start(const Catalog& catalog) {
    if (options_.background_training.command.empty() || failed_ || (child_ && !child_->poll())) return;
    const auto reason = head_training_due(catalog, options_.min_per_category);
    held_back_ = reason && another_job_is_busy(catalog, *reason);
    if (!reason || held_back_) return;
    BackgroundTrainingOptions training = options_.background_training;
    training.log_file = (std::filesystem::path(catalog.data_dir()) / "activity" / "train.log").string();
    std::filesystem::create_directories(std::filesystem::path(training.log_file).parent_path());
    child_ = std::make_unique<BackgroundTraining>(training);
    // Until the child writes its own report (a second or two: it loads the catalog first), this
    // one tells /api/v1/stats and the page that a training is under way.
    announce_activity(catalog.data_dir(), "train", child_->pid());
    reported_ = false;
    std::printf(
        "training a head in the background (%s): pid %d, log %s; answers come from version %lld "
        "until it is activated\n",
        reason->c_str(), static_cast<int>(child_->pid()), training.log_file.c_str(),
        static_cast<long long>(catalog.active_version()));
    std::fflush(stdout);
  }

  // An import or a training running, or an import that has just ended: one without --no-head
  // starts its own training right after, and two would collide on the training lock.
  bool another_job_is_busy(const Catalog& catalog, const std::string& reason) const {
    const double now = unix_time();
    for (const auto& activity : read_activities(catalog.data_dir())) {
      const bool just_imported = activity.job == "import" && now - activity.updated_at < 5;
      if (activity.state != "running" && !just_imported) continue;
      if (!held_back_) {
        spdlog::info("{}, but {} {}: the background training waits", reason,
                     activity.job == "import" ? "an import" : "a training",
                     activity.state == "running" ? "is running" : "has just ended");
      }
      return true;
    }
    return false;
  }

  const ServerOptions& options_;
  std::unique_ptr<BackgroundTraining> child_;
  bool reported_ = false;
  bool failed_ = false;
  bool held_back_ = false;
};

}  // namespace

int serve(const CatalogOptions& catalog_options, const ServerOptions& options) {
  if (options.max_upload_memory_mb <= options.max_upload_mb) {
    throw Error(ErrorCode::kInvalidArgument,
                "--max-upload-memory-mb (" + std::to_string(options.max_upload_memory_mb) +
                    ") must be larger than --max-upload-mb (" + std::to_string(options.max_upload_mb) + ")");
  }
  install_stop_handlers();

  // Access log lines are info level; --verbose raises it further.
  if (spdlog::get_level() > spdlog::level::info) spdlog::set_level(spdlog::level::info);
  ApiOptions api_options;
  api_options.admin_token = load_admin_token(options);
  api_options.cors_origins = options.cors_origins;
  api_options.max_upload_bytes = options.max_upload_mb << 20;
  api_options.web_root = options.web_root.empty() ? LOOKALIKE_DEFAULT_WEB_ROOT : options.web_root;
  api_options.fetch.allowed_hosts = options.fetch_allow_hosts;
  api_options.fetch.allow_private_addresses = options.fetch_allow_private;
  Api api(api_options);

  BoundedServer server(connection_limits(options));
  configure(server, options);
  api.attach(server);
  // Debian's libcpp-httplib is compiled with a listen backlog of 5: a burst of clients
  // overflows it, their requests stall in TCP retransmission past the keep-alive wait, and
  // they see the connection closed. The listening socket is captured here and re-listened
  // with a deep backlog once bound.
  int listen_fd = -1;
  server.set_socket_options([&listen_fd](int sock) {
    httplib::default_socket_options(sock);
    if (listen_fd < 0) listen_fd = sock;
  });

  const int port = options.port == 0 ? server.bind_to_any_port(options.host)
                                     : (server.bind_to_port(options.host, options.port) ? options.port : -1);
  if (port < 0) {
    throw Error(ErrorCode::kInvalidArgument, "cannot listen on " + options.host + ":" +
                                                 std::to_string(options.port) + " (in use or not permitted)");
  }
  if (listen_fd >= 0) ::listen(listen_fd, 1024);
  std::thread listener([&] { server.listen_after_bind(); });
  std::printf("listening on http://%s:%d\n", options.host.c_str(), port);
  std::fflush(stdout);

  std::thread signal_waiter([&] {
    const int sig = wait_for_stop_signal();
    if (sig != 0) spdlog::warn("signal {} received: finishing in-flight requests", sig);
    server.stop();
  });

  // Another process (an import, a training, `lookalike model use`) may change the catalog:
  // the watcher reloads it within a second, off the request path, and swaps it in atomically.
  std::mutex watch_mutex;
  std::condition_variable watch_wake;
  bool stopping = false;
  std::thread watcher;
  // On PostgreSQL every commit (a worker's item, another replica's write) wakes the follower,
  // which applies the change log at once; the watcher's poll every second stays the fallback.
  std::atomic<bool> stop_following{false};
  std::thread follower;
  TrainingSupervisor training(options);
  // Items no import compared for copies of one photo (a catalog from before copies were found)
  // are compared once, off the request path; stopping the server stops it after a batch.
  std::atomic<bool> stop_copies{false};
  std::thread copies;

  int status = 0;
  try {
    const auto started = std::chrono::steady_clock::now();
    CatalogOptions serving = catalog_options;
    serving.check_copies_later = true;  // by the watcher, once it runs
    auto catalog = std::make_unique<Catalog>(serving, /*load_model=*/true);
    Catalog* watched = catalog.get();
    training.start_if_due(*catalog);
    copies = std::thread([watched, &stop_copies] {
      try {
        const auto summary = watched->check_copies({}, {}, &stop_copies);
        if (summary.checked > 0)
          spdlog::info("compared {} items with their neighbours for copies of one photo: {} pairs",
                       summary.checked, summary.pairs);
      } catch (const std::exception& e) {
        spdlog::warn("comparing items for copies of one photo failed: {}", e.what());
      }
    });
    watcher = std::thread([&, watched] {
      // First, before any snapshot is written from the index (it would seal damaged copies).
      try {
        watched->check_started_copies();
      } catch (const std::exception& e) {
        spdlog::error("checking the index snapshot's float16 copies failed: {}", e.what());
      }
      // Writes over HTTP change the in-memory index only; it is saved as a snapshot every
      // kSnapshotEvery ticks when it changed, and once more on the way out.
      constexpr int kSnapshotEvery = 30;
      // Leftovers of writes that a kill interrupted (in this or another process) are deleted
      // at start-up and every hour, as are the photos of removed items in a PostgreSQL store.
      constexpr int kCollectEvery = 3600;
      const auto collect = [watched] {
        try {
          if (const size_t n = collect_orphans(*watched)) spdlog::info("removed {} orphan files", n);
        } catch (const std::exception& e) {
          spdlog::warn("collecting orphan files failed: {}", e.what());
        }
        try {
          if (const size_t n = prune_stored_photos(*watched))
            spdlog::info("deleted {} photos of removed items from the store", n);
        } catch (const std::exception& e) {
          spdlog::warn("deleting the store's unused photos failed: {}", e.what());
        }
      };
      collect();
      const auto snapshot = [watched] {
        try {
          if (watched->snapshot_index_if_stale()) spdlog::info("vector index snapshot written");
        } catch (const std::exception& e) {
          spdlog::error("writing the index snapshot failed (the catalog database has every write): {}",
                        e.what());
        }
      };
      std::unique_lock lock(watch_mutex);
      for (int tick = 1; !watch_wake.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; });
           ++tick) {
        lock.unlock();
        try {
          const int64_t version = watched->active_version();
          if (watched->refresh_if_changed()) {
            if (watched->active_version() != version)
              spdlog::info("catalog changed: model version {} answers now", watched->active_version());
            training.start_if_due(*watched);
          } else if (training.held_back()) {
            training.start_if_due(*watched);
          }
        } catch (const std::exception& e) {
          spdlog::error("reloading the changed catalog failed, still serving the previous state: {}",
                        e.what());
        }
        training.report_end(*watched);
        if (tick % kSnapshotEvery == 0) snapshot();
        if (tick % kCollectEvery == 0) collect();
        lock.lock();
      }
      lock.unlock();
      training.report_end_at_exit(*watched);
      snapshot();
    });
    if (auto changes = listen_for_changes(catalog_options.store)) {
      follower = std::thread([watched, &stop_following, changes = std::move(changes)] {
        constexpr int kWaitMs = 250;  // how soon a stop is noticed
        while (!stop_following) {
          if (!changes->wait(kWaitMs)) continue;
          try {
            watched->refresh_if_changed();
          } catch (const std::exception& e) {
            spdlog::warn("following the catalog's changes failed (the watcher tries again): {}", e.what());
          }
        }
      });
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const auto stats = catalog->stats();
    api.set_catalog(std::move(catalog));
    std::printf("ready: %zu items, %zu categories, loaded in %.2f s%s\n", stats.items,
                stats.categories.size(), seconds,
                api_options.admin_token.empty() ? "; write endpoints disabled (no admin token)" : "");
    std::fflush(stdout);
  } catch (const std::exception& e) {
    // Any failure while the listener and signal threads run must stop them before they are
    // joined below; an escaping exception would destroy them joinable (std::terminate).
    const auto* error = dynamic_cast<const Error*>(&e);
    std::fprintf(stderr, "lookalike: %s: %s\n", error ? "error" : "internal error", e.what());
    status = 1;
    const unsigned char wake = 0;
    [[maybe_unused]] const ssize_t n = ::write(g_stop_pipe[1], &wake, 1);
  }
  signal_waiter.join();
  listener.join();
  {
    std::lock_guard lock(watch_mutex);
    stopping = true;
  }
  watch_wake.notify_all();
  if (watcher.joinable()) watcher.join();
  stop_following = true;
  if (follower.joinable()) follower.join();
  stop_copies = true;
  if (copies.joinable()) copies.join();
  training.stop();
  std::printf("stopped\n");
  return status;
}

}  // namespace lookalike
