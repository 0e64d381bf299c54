#include "http/server.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "common/error.h"
#include "common/files.h"
#include "http/api.h"

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
      throw Error(ErrorCode::kInvalidArgument, options.admin_token_file + ": the admin token must be >= 16 characters");
    }
    return token;
  }
  if (const char* env = std::getenv("LOOKALIKE_ADMIN_TOKEN"); env && *env) {
    if (std::strlen(env) < 16) throw Error(ErrorCode::kInvalidArgument, "LOOKALIKE_ADMIN_TOKEN must be >= 16 characters");
    return env;
  }
  return "";
}

void configure(httplib::Server& server, const ServerOptions& options) {
  const size_t workers = options.workers;
  server.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  // Debian's defaults (Nagle on, 5 requests per connection) cost ~40 ms per response.
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(10000);
  server.set_keep_alive_timeout(5);
  server.set_read_timeout(30, 0);
  server.set_write_timeout(30, 0);
  // Multipart framing adds a little over the image itself.
  server.set_payload_max_length((options.max_upload_mb << 20) + (64 << 10));
}

}  // namespace

int serve(const CatalogOptions& catalog_options, const ServerOptions& options) {
  // Signals are taken by a dedicated thread (sigwait), so every thread created below,
  // including httplib's workers, inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ApiOptions api_options;
  api_options.admin_token = load_admin_token(options);
  api_options.cors_origins = options.cors_origins;
  api_options.max_upload_bytes = options.max_upload_mb << 20;
  api_options.web_root = options.web_root.empty() ? LOOKALIKE_DEFAULT_WEB_ROOT : options.web_root;
  Api api(api_options);

  httplib::Server server;
  configure(server, options);
  api.attach(server);

  const int port = options.port == 0 ? server.bind_to_any_port(options.host)
                                     : (server.bind_to_port(options.host, options.port) ? options.port : -1);
  if (port < 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot listen on " + options.host + ":" + std::to_string(options.port) + " (in use or not permitted)");
  }
  std::thread listener([&] { server.listen_after_bind(); });
  std::printf("listening on http://%s:%d\n", options.host.c_str(), port);
  std::fflush(stdout);

  std::atomic<bool> stopping{false};
  std::thread signal_waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    stopping = true;
    spdlog::warn("signal {} received: finishing in-flight requests", sig);
    server.stop();
  });

  int status = 0;
  try {
    const auto started = std::chrono::steady_clock::now();
    auto catalog = std::make_unique<Catalog>(catalog_options, /*load_model=*/true);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const auto stats = catalog->stats();
    api.set_catalog(std::move(catalog));
    std::printf("ready: %zu items, %zu categories, loaded in %.2f s%s\n", stats.items, stats.categories.size(), seconds,
                api_options.admin_token.empty() ? "; write endpoints disabled (no admin token)" : "");
    std::fflush(stdout);
  } catch (const Error& e) {
    std::fprintf(stderr, "lookalike: error: %s\n", e.what());
    status = 1;
    if (!stopping) {
      pthread_kill(signal_waiter.native_handle(), SIGTERM);
    }
  }
  signal_waiter.join();
  listener.join();
  std::printf("stopped\n");
  return status;
}

}  // namespace lookalike
