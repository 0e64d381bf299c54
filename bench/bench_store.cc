// The catalog database at scale: `list` by category, `categories` and `count` (what
// GET /api/v1/items?category=X and /api/v1/stats read) on N synthetic items (issue 14: p50 <= 5 ms
// at 1M rows). Items are rows only (a 16-float descriptor each): the CNN is not involved.
//
//   build/bench/bench_store [--items 1000000] [--dir /tmp/bench-store] [--runs 200]
//   build/bench/bench_store --http-port PORT [--runs 200]
//
// The first writes DIR/catalog.sqlite (a data directory `lookalike serve` can serve) and times the
// store's own calls; the second times the same reads over HTTP from a `serve` of it
// (bench/serve_scale.sh runs both and measures the server's memory and start-up).
// Six categories of very different sizes, one of them 1% of the items, as a real shop's are; each
// item's fields are as long as an import stores them (hex SHA-256, stored photo path, source path,
// 12 dominant colours), with a title, URL, price and one attribute a shop feed would give.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <httplib.h>
#include <sqlite3.h>
#include <nlohmann/json.hpp>

#include "bench_flags.h"
#include "common/clock.h"
#include "store/catalog_store.h"

namespace {
using namespace lookalike;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Shares of the items per category, in per mille.
const std::vector<std::pair<std::string, int>> kCategories = {{"dress", 400},  {"shirts", 250}, {"coat", 150},
                                                              {"jumper", 110}, {"sweater", 80}, {"hood", 10}};

std::string category_of(size_t i) {
  int slot = static_cast<int>((i * 7919) % 1000);  // spread over the keys, deterministic
  for (const auto& [name, share] : kCategories) {
    if (slot < share) return name;
    slot -= share;
  }
  return kCategories.front().first;
}

template <typename F>
double median_ms(size_t runs, F&& f) {
  std::vector<double> ms;
  for (size_t r = 0; r < runs; ++r) {
    const auto t = Clock::now();
    f(r);
    ms.push_back(ms_since(t));
  }
  return median(ms);
}

NewItem synthetic_item(size_t i) {
  NewItem n;
  n.item.id = "item-" + std::to_string(i);
  n.item.category = category_of(i);
  n.item.file_name = std::to_string(i) + ".jpg";
  char sha[65];
  std::snprintf(sha, sizeof sha, "%016zx%016zx%016zx%016zx", i * 2654435761u, i, ~i, i * 40503u);
  n.item.sha256 = sha;
  n.item.image_path = "images/" + n.item.sha256.substr(0, 2) + "/" + n.item.sha256 + ".jpg";
  n.item.source = "/srv/shop/photos/" + n.item.category + "/" + n.item.file_name;
  n.item.width = 300;
  n.item.height = 400;
  n.item.metadata.title = "Product " + std::to_string(i) + " in navy wool blend";
  n.item.metadata.url = "https://shop.example/p/" + std::to_string(i);
  n.item.metadata.price = 10.0 + static_cast<double>(i % 200);
  n.item.metadata.attributes = {{"colour", i % 2 ? "navy" : "red"}};
  n.item.colours.assign(12, 0.5f);
  n.descriptor.assign(16, 0.25f);
  return n;
}

// GET `target` from the server on 127.0.0.1:port `runs` times: the median milliseconds.
double http_p50_ms(httplib::Client& client, const std::string& target, size_t runs) {
  return median_ms(runs, [&](size_t) {
    const auto res = client.Get(target);
    if (!res || res->status != 200) {
      std::fprintf(stderr, "GET %s failed: %s\n", target.c_str(),
                   res ? std::to_string(res->status).c_str() : httplib::to_string(res.error()).c_str());
      std::exit(1);
    }
  });
}

int time_http(int port, size_t runs) {
  httplib::Client client("127.0.0.1", port);
  client.set_keep_alive(true);
  nlohmann::json out{{"port", port}};
  out["stats_p50_ms"] = http_p50_ms(client, "/api/v1/stats", runs);
  for (const auto& [name, share] : kCategories)
    out["items_p50_ms"][name] = http_p50_ms(client, "/api/v1/items?category=" + name + "&limit=50", runs);
  out["items_all_p50_ms"] = http_p50_ms(client, "/api/v1/items?limit=50", runs);
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

// The statements the store ran before schema 3, timed on the same database for the ratio.
double old_statement_p50_ms(const std::string& path, const char* sql, const char* category, size_t runs) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  const double ms = median_ms(runs, [&](size_t) {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
    if (category) {
      sqlite3_bind_text(s, 1, category, -1, SQLITE_STATIC);
      sqlite3_bind_text(s, 2, category, -1, SQLITE_STATIC);
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
    }
    sqlite3_finalize(s);
  });
  sqlite3_close(db);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  size_t items = 1000000, runs = 200;
  int http_port = 0;
  std::string dir = "/tmp/bench-store";
  if (!lookalike::bench::every_flag_has_a_value(argc, argv)) return 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--items") {
      items = std::stoul(argv[i + 1]);
    } else if (flag == "--dir") {
      dir = argv[i + 1];
    } else if (flag == "--runs") {
      runs = std::stoul(argv[i + 1]);
    } else if (flag == "--http-port") {
      http_port = std::stoi(argv[i + 1]);
    } else {
      std::fprintf(stderr,
                   "usage: bench_store [--items N] [--dir DIR] [--runs N] | --http-port PORT [--runs N]\n");
      return 2;
    }
  }
  if (http_port) return time_http(http_port, runs);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/catalog.sqlite";
  nlohmann::json out{{"items", items}};
  {
    auto store = open_sqlite_store(path);
    const auto t = Clock::now();
    constexpr size_t kBatch = 10000;
    for (size_t begin = 0; begin < items; begin += kBatch) {
      std::vector<NewItem> batch;
      for (size_t i = begin; i < std::min(items, begin + kBatch); ++i) batch.push_back(synthetic_item(i));
      store->insert(batch);
    }
    out["insert_seconds"] = ms_since(t) / 1000;
  }
  const auto opened = Clock::now();
  auto store = open_sqlite_store(path);
  out["open_ms"] = ms_since(opened);
  out["count_p50_ms"] = median_ms(runs, [&](size_t) { (void)store->count(); });
  out["categories_p50_ms"] = median_ms(runs, [&](size_t) { (void)store->categories(); });
  out["stats_p50_ms"] = median_ms(runs, [&](size_t) {
    (void)store->count();
    (void)store->categories();
  });
  for (const auto& [name, share] : kCategories) {
    out["list_p50_ms"][name] = median_ms(runs, [&, name = name](size_t) {
      (void)store->list({name, 0, 50});
    });
  }
  out["list_all_p50_ms"] = median_ms(runs, [&](size_t) { (void)store->list({"", 0, 50}); });
  // A deep page of the smallest category: OFFSET walks the index up to it.
  out["list_hood_offset_5000_p50_ms"] = median_ms(runs, [&](size_t) {
    (void)store->list({"hood", 5000, 50});
  });
  const size_t old_runs = std::max<size_t>(5, runs / 20);
  out["before_schema_3"] = {
      {"count_p50_ms", old_statement_p50_ms(path, "SELECT COUNT(*) FROM items", nullptr, old_runs)},
      {"categories_p50_ms",
       old_statement_p50_ms(
           path,
           "SELECT category, COUNT(*) FROM items WHERE category != '' GROUP BY category ORDER BY category",
           nullptr, old_runs)},
      {"list_hood_p50_ms",
       old_statement_p50_ms(
           path,
           "SELECT key, id, category, file_name, source, sha256, image_path, width, height, "
           "added_at, title, price, url, attributes FROM items WHERE (?1 = '' OR category = ?2) "
           "ORDER BY key LIMIT 50 OFFSET 0",
           "hood", old_runs)}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
