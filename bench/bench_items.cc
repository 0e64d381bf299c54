// The served items under churn: how long a search waits behind the writes that add and remove
// items (issue 14: add/remove p50 <= 10 ms with no search waiting more than 50 ms behind it).
// Builds a ServingState of N synthetic items (ItemTable, CategoryTags; no index, no model), then
// one thread removes the oldest item and adds a new one, W times, each through LiveState as a
// write does, while another reads an item's facts under the shared lock in a loop, as a
// filtered search does per row. W > N makes the dead slots outnumber the live ones, so the
// table compacts at least once.
//
//   build/bench/bench_items [--items 1000000] [--writes 1100000]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench_flags.h"
#include "common/clock.h"
#include "service/serving_state.h"

namespace {
using namespace lookalike;
using Clock = std::chrono::steady_clock;

const char* const kCategories[] = {"dress", "shirts", "coat", "jumper", "sweater", "hood"};

// As long as an import stores them (bench_store's items).
Item synthetic_item(size_t i) {
  Item item;
  item.key = static_cast<int64_t>(i);
  item.id = "item-" + std::to_string(i);
  item.category = kCategories[(i * 7919) % 6];
  item.file_name = std::to_string(i) + ".jpg";
  char sha[65];
  std::snprintf(sha, sizeof sha, "%016zx%016zx%016zx%016zx", i * 2654435761u, i, ~i, i * 40503u);
  item.sha256 = sha;
  item.image_path = "images/" + item.sha256.substr(0, 2) + "/" + item.sha256 + ".jpg";
  item.source = "/srv/shop/photos/" + item.category + "/" + item.file_name;
  item.width = 300;
  item.height = 400;
  item.metadata.title = "Product " + std::to_string(i) + " in navy wool blend";
  item.metadata.url = "https://shop.example/p/" + std::to_string(i);
  item.metadata.price = 10.0 + static_cast<double>(i % 200);
  if (i % 10 == 0) item.metadata.attributes = {{"colour", i % 20 ? "navy" : "red"}};
  item.colours.assign(12, 0.5f);
  return item;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}
}  // namespace

int main(int argc, char** argv) {
  if (!bench::every_flag_has_a_value(argc, argv)) return 2;
  size_t items = 1000000, writes = 1100000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const size_t value = std::stoul(argv[i + 1]);
    if (flag == "--items") {
      items = value;
    } else if (flag == "--writes") {
      writes = value;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  auto state = std::make_unique<ServingState>();
  const auto built = Clock::now();
  state->items.reserve(items);
  for (size_t i = 0; i < items; ++i) state->put_item(synthetic_item(i));
  std::printf("%zu items in %.2f s, %.0f bytes an item\n", items, ms_since(built) / 1e3,
              static_cast<double>(state->items.bytes()) / static_cast<double>(items));
  LiveState live(std::move(state));

  std::atomic<bool> done{false};
  std::vector<double> waits;
  std::thread reader([&] {
    size_t n = 0;
    while (!done) {
      const auto t = Clock::now();
      const auto key = static_cast<int64_t>((n++ * 7919) % (items + writes));
      live.read([&](const ServingState& s) { return s.items.facts(key).has_value(); });
      waits.push_back(ms_since(t));
    }
  });
  std::vector<double> write_ms;
  write_ms.reserve(writes);
  const auto churned = Clock::now();
  for (size_t w = 0; w < writes; ++w) {
    const auto t = Clock::now();
    const Item added = synthetic_item(items + w);
    const auto write = live.begin_write();
    live.change(write, [&](ServingState& s) {
      s.erase_item(static_cast<int64_t>(w));
      s.put_item(added);
    });
    write_ms.push_back(ms_since(t));
  }
  const double churn_s = ms_since(churned) / 1e3;
  done = true;
  reader.join();
  const size_t over_50 =
      static_cast<size_t>(std::count_if(waits.begin(), waits.end(), [](double ms) { return ms > 50; }));
  std::printf(
      "%zu writes (remove one, add one) in %.2f s: p50 %.4f ms, p99 %.4f ms, max %.1f ms, %zu over 10 ms\n",
      writes, churn_s, quantile(write_ms, 0.5), quantile(write_ms, 0.99), quantile(write_ms, 1.0),
      static_cast<size_t>(
          std::count_if(write_ms.begin(), write_ms.end(), [](double ms) { return ms > 10; })));
  std::vector<double> slow;
  for (const double ms : write_ms)
    if (ms > 10) slow.push_back(ms);
  std::printf("writes over 10 ms (a rebuild of the item table each):");
  for (const double ms : slow) std::printf(" %.0f", ms);
  std::printf(" ms\n");
  std::printf("%zu reads beside them: p50 %.4f ms, p99.9 %.4f ms, max %.1f ms, %zu over 50 ms\n",
              waits.size(), quantile(waits, 0.5), quantile(waits, 0.999), quantile(waits, 1.0), over_50);
  return 0;
}
