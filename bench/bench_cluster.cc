// What the cluster layout costs, measured on one machine (docs/benchmarks.md, docs/cluster.md):
// commit-to-visible latency of a write on every replica, the latency HAProxy adds to a search,
// and a replica's start-up (from its index snapshot plus the change log, and from nothing).
//
//   bench_cluster --photos DIR --dir WORK [--replicas 2] [--writes 200] [--searches 200]
//
// It starts scripts/cluster.sh in WORK (its own PostgreSQL), imports DIR there unless WORK's
// catalog already holds items, measures, and leaves the cluster running (`cluster.sh down WORK`).
#include <httplib.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "bench_shell.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/percentile.h"
#include "store/catalog_store.h"

namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using lookalike::CatalogStore;
using lookalike::ms_since;
using lookalike::percentile;

using lookalike::bench::run;

std::string value_of(const std::string& text, const std::string& key) {
  const auto at = text.find(key + ": ");
  if (at == std::string::npos) throw std::runtime_error("no '" + key + "' line in:\n" + text);
  const auto start = at + key.size() + 2;
  return text.substr(start, text.find('\n', start) - start);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool ready(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(0, 200000);
  const auto r = client.Get("/readyz");
  return r && r->status == 200;
}

struct Cluster {
  std::string script, dir, store;
  int balancer_port = 0;
  std::vector<int> replica_ports;

  void up(size_t replicas) {
    const auto out =
        run("'" + script + "' up '" + dir + "' --workers 0 --replicas " + std::to_string(replicas));
    store = value_of(out, "store");
    const std::string url = value_of(out, "url");
    balancer_port = std::stoi(url.substr(url.rfind(':') + 1));
    replica_ports.clear();
    for (size_t i = 1; i <= replicas; ++i)
      replica_ports.push_back(
          std::stoi(read_file(fs::path(dir) / ("replica-" + std::to_string(i) + ".port"))));
  }
  int replica_pid(size_t i) const {
    return std::stoi(read_file(fs::path(dir) / ("replica-" + std::to_string(i) + ".pid")));
  }
  void wait_ready(int port, int seconds = 600) const {
    for (const auto end = Clock::now() + std::chrono::seconds(seconds); !ready(port);) {
      if (Clock::now() > end)
        throw std::runtime_error("replica on port " + std::to_string(port) + " not ready");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
};

// Stops replica 1 and starts it again; milliseconds until it answers /readyz.
double restart_replica(Cluster& cluster, bool from_nothing) {
  const int pid = cluster.replica_pid(1);
  ::kill(pid, SIGTERM);
  while (::kill(pid, 0) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (from_nothing) fs::remove_all(fs::path(cluster.dir) / "replica-1" / "index");
  const auto started = Clock::now();
  cluster.up(cluster.replica_ports.size());
  cluster.wait_ready(cluster.replica_ports[0]);
  return ms_since(started);
}

// Copies of a stored item under new ids, inserted one at a time; each is timed until every
// replica answers it.
std::vector<double> commit_to_visible(const Cluster& cluster, size_t writes) {
  auto store = lookalike::open_store(cluster.store);
  const auto model = store->active_version();
  const auto source = store->list({"", 0, 1}).at(0);
  lookalike::NewItem copy{source, store->descriptor(0, source.key), {}};
  if (model != 0) copy.version_descriptors.push_back({model, store->descriptor(model, source.key)});
  std::vector<double> latencies;
  std::vector<std::unique_ptr<httplib::Client>> clients;
  for (const int port : cluster.replica_ports)
    clients.push_back(std::make_unique<httplib::Client>("127.0.0.1", port));
  const std::string run_tag = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  for (size_t i = 0; i < writes; ++i) {
    copy.item.id = "bench-" + run_tag + "-" + std::to_string(i);
    store->insert({copy});
    const auto committed = Clock::now();
    for (auto& client : clients) {
      while (true) {
        const auto r = client->Get("/api/v1/items/" + copy.item.id);
        if (r && r->status == 200) break;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    latencies.push_back(ms_since(committed));  // until the last replica answered it
    store->remove(copy.item.id);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return latencies;
}

// The same request straight to a replica and through HAProxy, interleaved: a listing of 12
// items (what HAProxy's hop costs, on a request that costs the replica little) and a search.
struct Overhead {
  std::vector<double> straight, through;
};

Overhead haproxy_overhead(const Cluster& cluster,
                          const std::function<httplib::Result(httplib::Client&)>& request, size_t n) {
  httplib::Client direct("127.0.0.1", cluster.replica_ports[0]);
  httplib::Client balanced("127.0.0.1", cluster.balancer_port);
  Overhead o;
  for (size_t i = 0; i < n + 5; ++i) {
    for (auto* client : {&direct, &balanced}) {
      const auto started = Clock::now();
      const auto r = request(*client);
      if (!r || r->status != 200) throw std::runtime_error("a request failed");
      if (i >= 5) (client == &direct ? o.straight : o.through).push_back(ms_since(started));  // 5 to warm up
    }
  }
  return o;
}

void print_overhead(const char* what, const Overhead& o) {
  std::printf("%s p50: straight to a replica %.2f ms, through HAProxy %.2f ms: %+.2f ms (p99 %.2f vs %.2f)\n",
              what, percentile(o.straight, 0.5), percentile(o.through, 0.5),
              percentile(o.through, 0.5) - percentile(o.straight, 0.5), percentile(o.straight, 0.99),
              percentile(o.through, 0.99));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_cluster: what the cluster layout costs on one machine"};
  std::string photos, dir, lookalike = LOOKALIKE_BINARY_PATH;
  size_t replicas = 2, writes = 200, searches = 200;
  app.add_option("--photos", photos, "Catalog folder to import when the cluster's catalog is empty")
      ->required();
  app.add_option("--dir", dir, "Cluster directory (scripts/cluster.sh)")->required();
  app.add_option("--replicas", replicas)->check(CLI::Range(1, 8));
  app.add_option("--writes", writes)->check(CLI::Range(1, 100000));
  app.add_option("--searches", searches)->check(CLI::Range(1, 100000));
  app.add_option("--lookalike", lookalike, "The lookalike binary");
  CLI11_PARSE(app, argc, argv);
  try {
    ::setenv("LOOKALIKE_BIN", lookalike.c_str(), 1);
    Cluster cluster{LOOKALIKE_SOURCE_DIR "/scripts/cluster.sh", dir, "", 0, {}};
    cluster.up(replicas);
    if (lookalike::open_store(cluster.store)->count() == 0) {
      std::printf("importing %s into the cluster's catalog (embedding here)...\n", photos.c_str());
      std::fflush(stdout);
      run("'" + lookalike + "' --data '" + dir + "/importer' --store '" + cluster.store + "' import '" +
          photos + "' --no-head --embed-here 2>&1 | tail -n 3");
    }
    for (const int port : cluster.replica_ports) cluster.wait_ready(port);
    const size_t items = lookalike::open_store(cluster.store)->count();
    std::printf("cluster: %zu replicas, %zu items, store %s\n", replicas, items, cluster.store.c_str());

    std::vector<double> warm, cold;
    for (int i = 0; i < 3; ++i) warm.push_back(restart_replica(cluster, false));
    for (int i = 0; i < 3; ++i) cold.push_back(restart_replica(cluster, true));
    std::printf(
        "replica start-up to /readyz 200: from its snapshot + log median %.0f ms (%.0f..%.0f); "
        "rebuilding its index from PostgreSQL median %.0f ms (%.0f..%.0f)\n",
        percentile(warm, 0.5), percentile(warm, 0), percentile(warm, 1), percentile(cold, 0.5),
        percentile(cold, 0), percentile(cold, 1));
    for (const int port : cluster.replica_ports) cluster.wait_ready(port);

    const auto visible = commit_to_visible(cluster, writes);
    std::printf(
        "commit-to-visible on all %zu replicas over %zu writes: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
        replicas, writes, percentile(visible, 0.5), percentile(visible, 0.99), percentile(visible, 1));

    std::string photo;
    for (const auto& entry : fs::recursive_directory_iterator(photos)) {
      if (entry.is_regular_file() && entry.path().extension() == ".jpg") {
        photo = read_file(entry.path());
        break;
      }
    }
    print_overhead(
        "listing of 12 items",
        haproxy_overhead(
            cluster, [](httplib::Client& c) { return c.Get("/api/v1/items?limit=12"); }, searches));
    // Round robin sends every other balanced search to replica 2, which was not restarted:
    // compare it with care (the listing above is the hop's own cost).
    const httplib::MultipartFormDataItems upload{{"image", photo, "q.jpg", "image/jpeg"}};
    print_overhead(
        "search",
        haproxy_overhead(
            cluster, [&](httplib::Client& c) { return c.Post("/api/v1/search", upload); }, searches));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cluster: %s\n", e.what());
    return 1;
  }
  return 0;
}
