// What the embedding queue and the change log cost per item, with the CNN replaced by a fixed
// sleep (issue 15): N workers, each a thread with its own two PostgreSQL connections (the
// catalog store's and the queue's, as a `lookalike worker` process has), run the worker's
// cycle on real photo bytes: claim a batch, and for each job renew the rest of the batch when
// a quarter of the lease has gone, fetch the photo, "embed" it (sleep --embed-ms), store the item with a 5,632-value
// descriptor (its change-log row and NOTIFY in the same transaction) and complete the job.
// With no overhead, N workers would finish in items x embed-ms / N; the bench prints the
// fraction of that ideal it reaches, and the overhead per item.
//
//   bench_queue --photos DIR --dir WORK [--workers 16] [--items 1600] [--embed-ms 100] [--batch 8]
//               [--real 80]
//
// With --real K it then imports K photos of each category through one real `lookalike worker`
// (--threads 1), and again through two at once, each into a database of its own, and prints
// both throughputs and their ratio (issue 15: about 2x on 2 cores).
// WORK is emptied and holds a PostgreSQL of its own (scripts/postgres.sh), stopped at the end.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <latch>
#include <mutex>
#include <random>
#include <thread>

#include "bench_shell.h"
#include "common/clock.h"
#include "common/files.h"
#include "store/catalog_store.h"
#include "store/work_queue.h"

namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace lookalike;

constexpr size_t kDescriptor = 5632;  // the frozen recipe's raw descriptor (GeM, mixed5..mixed9)

using lookalike::bench::run;

// The first `n` photos of the catalog folder (category folders, sorted), as queued photos.
std::vector<QueuedPhoto> photos_of(const std::string& dir, size_t n) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".jpg") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw std::runtime_error("no .jpg photos under " + dir);
  std::vector<QueuedPhoto> photos;
  for (size_t i = 0; i < n; ++i) {
    const fs::path& f = files[i % files.size()];
    QueuedPhoto p;
    p.item.id = "q" + std::to_string(i);
    p.item.category = f.parent_path().filename().string();
    p.item.file_name = f.filename().string();
    p.item.source = f.string();
    // Repeated photos under new ids stay distinct rows of `photos`, as distinct products would.
    p.bytes = read_file(f.string(), 10 << 20) + std::string(i / files.size(), '\0');
    p.item.sha256 = sha256_hex(p.bytes);
    photos.push_back(std::move(p));
  }
  return photos;
}

// Milliseconds spent in each step, over all workers.
struct Totals {
  std::atomic<size_t> stored{0};
  std::mutex mutex;
  double claim = 0, renew = 0, photo = 0, slept = 0, insert = 0, complete = 0;
  void add(double& step, double ms) {
    std::lock_guard lock(mutex);
    step += ms;
  }
};

// Connections are opened before `start` opens: a worker process opens them once at start-up.
void work(const std::string& store_url, size_t batch, int embed_ms, int index, Totals& totals,
          std::latch& opened, std::latch& start) {
  auto store = open_store(store_url);
  auto queue = open_postgres_work_queue(store_url);
  opened.count_down();
  start.wait();
  const std::string name = "bench-" + std::to_string(index);
  const auto lease = std::chrono::seconds(60);
  std::mt19937 rng(static_cast<uint32_t>(index));
  std::normal_distribution<float> gauss;
  while (true) {
    auto t = Clock::now();
    store->active_version();  // a worker checks for a version switch before each batch
    const auto jobs = queue->claim(batch, lease, name);
    totals.add(totals.claim, ms_since(t));
    auto leased_at = Clock::now();
    if (jobs.empty()) {
      const auto c = queue->counts();
      if (c.queued + c.running == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    for (size_t i = 0; i < jobs.size(); ++i) {
      t = Clock::now();
      if (Clock::now() - leased_at > lease / 4) {  // as the worker does
        std::vector<int64_t> rest;
        for (size_t j = i; j < jobs.size(); ++j) rest.push_back(jobs[j].id);
        queue->renew(rest, lease, name);
        leased_at = Clock::now();
      }
      totals.add(totals.renew, ms_since(t));
      t = Clock::now();
      const auto bytes = queue->photo(jobs[i].item.sha256);
      if (!bytes) throw std::runtime_error("photo missing for " + jobs[i].item.id);
      totals.add(totals.photo, ms_since(t));
      t = Clock::now();
      std::this_thread::sleep_for(std::chrono::milliseconds(embed_ms));  // the CNN's place
      totals.add(totals.slept, ms_since(t));
      NewItem n{jobs[i].item, std::vector<float>(kDescriptor), {}};
      for (float& v : n.descriptor) v = gauss(rng);
      n.item.image_path = "images/" + n.item.sha256.substr(0, 2) + "/" + n.item.sha256 + ".jpg";
      n.item.width = n.item.height = 256;
      n.item.added_at = unix_seconds();
      t = Clock::now();
      store->insert({n});
      totals.add(totals.insert, ms_since(t));
      t = Clock::now();
      queue->complete(jobs[i].id);
      totals.add(totals.complete, ms_since(t));
      ++totals.stored;
    }
  }
}

struct Round {
  size_t workers, items;
  double seconds, ideal_seconds;
};

Round round(const std::string& store_url, const std::vector<QueuedPhoto>& photos, size_t workers, size_t batch,
            int embed_ms, const std::string& tag) {
  auto queue = open_postgres_work_queue(store_url);
  std::vector<QueuedPhoto> tagged = photos;
  for (auto& p : tagged) p.item.id = tag + "-" + p.item.id;
  const auto enqueue_started = Clock::now();
  queue->enqueue(tagged, tag);
  const double enqueue_ms = ms_since(enqueue_started);
  Totals totals;
  std::latch opened(static_cast<std::ptrdiff_t>(workers)), start(1);
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w)
    threads.emplace_back(work, store_url, batch, embed_ms, static_cast<int>(w), std::ref(totals),
                         std::ref(opened), std::ref(start));
  opened.wait();
  const auto started = Clock::now();
  start.count_down();
  for (auto& t : threads) t.join();
  const double seconds = ms_since(started) / 1e3;
  const size_t items = totals.stored;
  if (items != photos.size())
    throw std::runtime_error("stored " + std::to_string(items) + " of " + std::to_string(photos.size()));
  const double ideal = static_cast<double>(items) * embed_ms / 1e3 / static_cast<double>(workers);
  std::printf(
      "%2zu workers, %zu items, embed %d ms: %.2f s (ideal %.2f s) = %.3f of ideal, %.1f items/s; "
      "overhead %.1f ms per item per worker; enqueue %.0f items/s\n",
      workers, items, embed_ms, seconds, ideal, ideal / seconds, static_cast<double>(items) / seconds,
      (seconds * static_cast<double>(workers) / static_cast<double>(items)) * 1e3 - embed_ms,
      static_cast<double>(items) / (enqueue_ms / 1e3));
  const auto per_item = [&](double ms) { return ms / static_cast<double>(items); };
  std::printf(
      "    per item, mean ms: claim %.2f, renew %.2f, photo %.2f, the sleep %.2f, insert %.2f, complete %.2f\n",
      per_item(totals.claim), per_item(totals.renew), per_item(totals.photo), per_item(totals.slept),
      per_item(totals.insert), per_item(totals.complete));
  std::fflush(stdout);
  return {workers, items, seconds, ideal};
}

// The real thing on `per_category` photos of each category: `import --no-wait` into a database
// of its own, then `workers` `lookalike worker --threads 1 --exit-when-empty` processes at
// once. Returns photos per second, from the workers' launch to the last one's exit (their
// start-ups included).
double real_workers(const std::string& lookalike, const std::string& url, const std::string& photos_dir,
                    const fs::path& work, size_t per_category, size_t workers) {
  const std::string name = "real" + std::to_string(workers);
  const fs::path subset = work / (name + "-photos");
  size_t photos = 0;
  for (const auto& category : fs::directory_iterator(photos_dir)) {
    if (!category.is_directory()) continue;
    std::vector<fs::path> files;
    for (const auto& f : fs::directory_iterator(category.path())) files.push_back(f.path());
    std::sort(files.begin(), files.end());
    fs::create_directories(subset / category.path().filename());
    for (size_t i = 0; i < std::min(per_category, files.size()); ++i, ++photos)
      fs::create_symlink(fs::absolute(files[i]), subset / category.path().filename() / files[i].filename());
  }
  run("psql '" + url + "' -q -c 'CREATE DATABASE " + name + "' 2>&1");
  const std::string store = url.substr(0, url.rfind('/') + 1) + name;
  const std::string common = "'" + lookalike + "' --threads 1 --store '" + store + "' --data '";
  run(common + (work / (name + "-importer")).string() + "' import '" + subset.string() + "' --no-wait 2>&1");
  std::string launch;
  for (size_t w = 0; w < workers; ++w)
    launch += common + (work / (name + "-w" + std::to_string(w))).string() + "' worker --exit-when-empty " +
              ">'" + (work / (name + "-w" + std::to_string(w) + ".log")).string() + "' 2>&1 & ";
  const auto started = Clock::now();
  run("(" + launch + "wait)");
  const double seconds = ms_since(started) / 1e3;
  const size_t stored = open_store(store)->count();
  if (stored != photos) throw std::runtime_error(name + ": stored " + std::to_string(stored) + " of " +
                                                 std::to_string(photos) + " photos");
  std::printf("%zu real worker(s), --threads 1 each: %zu photos in %.1f s = %.2f photos/s\n", workers, photos,
              seconds, static_cast<double>(photos) / seconds);
  std::fflush(stdout);
  return static_cast<double>(photos) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_queue: the embedding queue's and change log's cost per item, CNN replaced by a sleep"};
  std::string photos_dir, dir;
  size_t workers = 16, items = 1600, batch = 8;
  int embed_ms = 100;
  app.add_option("--photos", photos_dir, "Catalog folder whose photos are queued")->required();
  app.add_option("--dir", dir, "Work directory (emptied; holds the bench's PostgreSQL)")->required();
  app.add_option("--workers", workers)->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--items", items)->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_option("--embed-ms", embed_ms, "The sleep standing in for the CNN")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--batch", batch, "Jobs claimed at a time (the worker's --batch)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  size_t real_per_category = 0;
  std::string lookalike = LOOKALIKE_BINARY_PATH;
  app.add_option("--real", real_per_category,
                 "Also import this many photos per category through 1, then 2 real `lookalike worker` "
                 "processes (--threads 1 each) and compare their throughput (0: skip)");
  app.add_option("--lookalike", lookalike, "The lookalike binary (--real)");
  CLI11_PARSE(app, argc, argv);
  const std::string postgres = LOOKALIKE_SOURCE_DIR "/scripts/postgres.sh";
  int status = 0;
  try {
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string out = run("'" + postgres + "' start '" + dir + "/pg' 2>&1");
    const auto at = out.find("store: ");
    if (at == std::string::npos) throw std::runtime_error("no store line in:\n" + out);
    const std::string url = out.substr(at + 7, out.find('\n', at) - at - 7);
    open_store(url);  // creates the catalog's tables before the workers race to
    const auto photos = photos_of(photos_dir, items);
    std::printf("PostgreSQL %s; %zu photos of %s, %zu bytes on average\n", url.c_str(), photos.size(),
                photos_dir.c_str(), [&] {
                  size_t total = 0;
                  for (const auto& p : photos) total += p.bytes.size();
                  return total / photos.size();
                }());
    // One worker on a tenth of the items first: the overhead without contention.
    round(url, {photos.begin(), photos.begin() + static_cast<std::ptrdiff_t>(std::max<size_t>(1, items / 10))},
          1, batch, embed_ms, "one");
    round(url, photos, workers, batch, embed_ms, "all");
    if (real_per_category > 0) {
      const double one = real_workers(lookalike, url, photos_dir, dir, real_per_category, 1);
      const double two = real_workers(lookalike, url, photos_dir, dir, real_per_category, 2);
      std::printf("2 real workers / 1: %.2fx (on %u cores)\n", two / one, std::thread::hardware_concurrency());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_queue: %s\n", e.what());
    status = 1;
  }
  [[maybe_unused]] const int stopped = std::system(("'" + postgres + "' stop '" + dir + "/pg' >/dev/null 2>&1").c_str());
  return status;
}
