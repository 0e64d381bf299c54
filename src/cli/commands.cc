#include "cli/commands.h"

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <opencv2/core/utility.hpp>

#include "cli/progress.h"
#include "common/error.h"
#include "common/files.h"
#include "http/server.h"
#include "service/catalog.h"
#include "service/evaluator.h"
#include "service/import_source.h"
#include "service/importer.h"
#include "service/result_json.h"

namespace lookalike {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) {
  g_interrupted = true;
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once (still safe)
}

CatalogOptions catalog_options(const GlobalOptions& g) {
  CatalogOptions o;
  o.data_dir = g.data_dir;
  o.model_manifest = g.model_manifest;
  return o;
}

void configure_runtime(const GlobalOptions& g) {
  spdlog::set_level(g.verbose ? spdlog::level::debug : spdlog::level::warn);
  spdlog::set_default_logger(spdlog::default_logger());
  if (g.threads > 0) cv::setNumThreads(g.threads);
}

// Runs a command body, turning errors into a message and an exit status.
void run(const GlobalOptions& g, const std::function<int()>& body) {
  configure_runtime(g);
  int status = 1;
  try {
    status = body();
  } catch (const Error& e) {
    std::fprintf(stderr, "lookalike: error: %s\n", e.what());
    status = e.code() == ErrorCode::kInvalidArgument ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lookalike: internal error: %s\n", e.what());
  }
  std::fflush(stdout);
  std::exit(status);
}

ImageUrlFn file_urls(const Catalog& catalog) {
  return [&catalog](const Item& item) { return catalog.image_file(item); };
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

void print_result(const QueryResult& r) {
  if (!r.prediction.category.empty()) {
    std::printf("predicted category: %s (%.1f%%)\n", r.prediction.category.c_str(),
                100.0 * r.prediction.confidence);
  }
  std::printf("searched: %s%s\n", r.searched.c_str(),
              r.fallback_used ? " (prediction below the confidence threshold: searched all categories)" : "");
  std::printf("%3s  %-7s  %-10s  %-24s  %s\n", "#", "score", "category", "id", "source");
  for (size_t i = 0; i < r.hits.size(); ++i) {
    const auto& h = r.hits[i];
    std::printf("%3zu  %-7s  %-10s  %-24s  %s\n", i + 1, fixed(h.score, 4).c_str(), h.item.category.c_str(),
                h.item.id.c_str(), h.item.source.c_str());
  }
  const auto& t = r.timings;
  std::printf("timings: decode %.1f ms, model %.1f ms, classify %.2f ms, search %.2f ms, total %.1f ms\n",
              t.decode_ms, t.model_ms, t.classify_ms, t.search_ms, t.total_ms);
}

void add_import(CLI::App& app, const GlobalOptions& g) {
  auto* cmd =
      app.add_subcommand("import", "Import a folder of category sub-folders, or a CSV/JSONL manifest");
  auto path = std::make_shared<std::string>();
  auto batch = std::make_shared<size_t>(8);
  auto no_train = std::make_shared<bool>(false);
  cmd->add_option("PATH", *path, "Folder (one sub-folder per category) or manifest (.csv / .jsonl)")
      ->required();
  cmd->add_option("--batch", *batch, "Photos per CNN batch and per database transaction")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_flag("--no-train", *no_train, "Store photos only; train later with `lookalike train`");
  cmd->callback([&g, path, batch, no_train] {
    run(g, [&] {
      const auto entries = scan_import_source(*path);
      Catalog catalog(catalog_options(g), /*load_model=*/true);
      std::signal(SIGINT, on_interrupt);
      std::signal(SIGTERM, on_interrupt);
      ProgressBar bar("import");
      ImportOptions options;
      options.batch_size = *batch;
      options.train = !*no_train;
      options.cancel = &g_interrupted;
      options.on_progress = [&](const ImportProgress& p) {
        bar.update(p.done, p.total, p.seconds, p.imported);
      };
      std::fprintf(stderr, "importing %zu photos from %s into %s\n", entries.size(), path->c_str(),
                   g.data_dir.c_str());
      const auto report = import_entries(catalog, entries, options);
      bar.finish();
      for (const auto& f : report.failures)
        std::fprintf(stderr, "skipped %s: %s\n", f.path.c_str(), f.reason.c_str());
      std::printf(
          "imported %zu, already stored %zu, reused descriptors %zu, failed %zu of %zu in %.1f s (%.1f "
          "img/s)\n",
          report.imported, report.already_stored, report.reused_descriptors, report.failures.size(),
          report.total, report.seconds, report.images_per_second);
      if (!report.training.empty()) std::printf("trained: %s\n", report.training.c_str());
      if (report.interrupted) {
        std::fprintf(stderr, "interrupted: %zu photos are stored; run the same import again to resume\n",
                     report.imported);
        return 130;
      }
      if (report.imported + report.already_stored == 0) {
        std::fprintf(stderr, "lookalike: error: none of the %zu photos could be imported\n", report.total);
        return 1;
      }
      return 0;
    });
  });
}

QueryOptions query_options_from(size_t k, const std::string& category) {
  QueryOptions q;
  q.k = k;
  q.category = category;
  return q;
}

void add_search(CLI::App& app, const GlobalOptions& g) {
  auto* cmd = app.add_subcommand("search", "Find catalog items that look like a photo");
  struct Args {
    std::string image;
    size_t k = 12;
    std::string category = "auto";
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("IMAGE", a->image, "Photo to search with (JPEG, PNG, WebP, GIF)")->required();
  cmd->add_option("-k,--k", a->k, "Number of results")->check(CLI::Range(1, 500))->capture_default_str();
  cmd->add_option("--category", a->category, "auto (predict and search inside it), all, or a category name")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print JSON");
  cmd->callback([&g, a] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      const std::string bytes = read_file(a->image, catalog.options().max_image_bytes);
      const auto result = catalog.search_image(bytes, query_options_from(a->k, a->category));
      if (a->json) {
        std::cout << query_result_json(result, file_urls(catalog)).dump(2) << "\n";
      } else {
        print_result(result);
      }
      return 0;
    });
  });
}

void add_eval(CLI::App& app, const GlobalOptions& g) {
  auto* cmd = app.add_subcommand("eval", "Measure retrieval and classification quality");
  struct Args {
    std::string queries;
    size_t limit = 0;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--queries", a->queries,
                  "Folder of category sub-folders used as queries (default: leave-one-out)");
  cmd->add_option("--limit", a->limit, "Evaluate at most this many queries");
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->callback([&g, a] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      ProgressBar bar("eval");
      EvalOptions options;
      options.queries = a->queries;
      options.limit = a->limit;
      const auto started = std::chrono::steady_clock::now();
      options.on_progress = [&](size_t done, size_t total) {
        bar.update(done, total,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), done);
      };
      const auto result = evaluate(catalog, options);
      bar.finish();
      std::cout << result.dump(a->json ? -1 : 2) << "\n";
      return 0;
    });
  });
}

void add_maintenance(CLI::App& app, const GlobalOptions& g) {
  app.add_subcommand("reindex", "Rebuild the vector index from the catalog database")->callback([&g] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      catalog.reindex();
      std::printf("index rebuilt: %zu items\n", catalog.stats().items);
      return 0;
    });
  });
  app.add_subcommand("train", "Learn the PCA-whitening and the category classifier from the catalog")
      ->callback([&g] {
        run(g, [&] {
          Catalog catalog(catalog_options(g), false);
          std::printf("trained: %s\n", catalog.train().c_str());
          return 0;
        });
      });
  auto* info = app.add_subcommand("info", "Show catalog size, categories and training figures");
  auto json = std::make_shared<bool>(false);
  info->add_flag("--json", *json, "Print JSON");
  info->callback([&g, json] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      const auto s = catalog.stats();
      if (*json) {
        std::cout << stats_json(s).dump(2) << "\n";
        return 0;
      }
      std::printf("data directory: %s\nitems: %zu\nmodel: %s\n", g.data_dir.c_str(), s.items,
                  s.model_id.empty() ? "(none yet)" : s.model_id.c_str());
      std::printf("trained: %s (descriptor %zu -> index %zu dimensions)\n", s.trained ? "yes" : "no",
                  s.descriptor_dimension, s.index_dimension);
      if (s.classifier) std::printf("classifier: 5-fold accuracy %.3f\n", s.classifier_cv_accuracy);
      for (const auto& c : s.categories) std::printf("  %-16s %zu\n", c.name.c_str(), c.count);
      return 0;
    });
  });
}

void add_items(CLI::App& app, const GlobalOptions& g) {
  auto* add = app.add_subcommand("add", "Add one photo to the catalog (searchable at once)");
  struct AddArgs {
    std::string image, id, category, title, url;
    std::optional<double> price;
    std::vector<std::string> attributes;
  };
  auto a = std::make_shared<AddArgs>();
  add->add_option("IMAGE", a->image, "Photo file")->required();
  add->add_option("--id", a->id, "Item id (default: from the file name)");
  add->add_option("--category", a->category, "Category name");
  add->add_option("--title", a->title, "Title");
  add->add_option("--price", a->price, "Price")->check(CLI::NonNegativeNumber);
  add->add_option("--url", a->url, "Product page URL");
  add->add_option("--attr", a->attributes, "Attribute KEY=VALUE (repeatable)");
  add->callback([&g, a] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      Item item;
      item.id = a->id.empty() ? slug(std::filesystem::path(a->image).stem().string()) : a->id;
      if (!valid_item_id(item.id)) {
        throw Error(ErrorCode::kInvalidArgument, "--id must be 1-200 characters of A-Z a-z 0-9 . _ -");
      }
      item.category = a->category;
      item.file_name = std::filesystem::path(a->image).filename().string();
      item.source = std::filesystem::absolute(a->image).string();
      item.metadata.title = a->title;
      item.metadata.url = a->url;
      item.metadata.price = a->price;
      for (const auto& kv : a->attributes) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) {
          throw Error(ErrorCode::kInvalidArgument, "--attr expects KEY=VALUE, got '" + kv + "'");
        }
        item.metadata.attributes[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
      const auto stored = catalog.add(read_file(a->image, catalog.options().max_image_bytes), item);
      std::printf("added %s (%s)%s\n", stored.id.c_str(),
                  stored.category.empty() ? "no category" : stored.category.c_str(),
                  catalog.ready() ? "" : "; run `lookalike train` to make the catalog searchable");
      return 0;
    });
  });

  auto* remove = app.add_subcommand("remove", "Remove items by id");
  auto ids = std::make_shared<std::vector<std::string>>();
  remove->add_option("ID", *ids, "Item ids")->required();
  remove->callback([&g, ids] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      int missing = 0;
      for (const auto& id : *ids) {
        if (catalog.remove(id)) {
          std::printf("removed %s\n", id.c_str());
        } else {
          std::fprintf(stderr, "lookalike: error: no item with id '%s'\n", id.c_str());
          ++missing;
        }
      }
      return missing ? 1 : 0;
    });
  });

  auto* list = app.add_subcommand("list", "List catalog items");
  struct ListArgs {
    ListQuery query;
    bool json = false;
  };
  auto l = std::make_shared<ListArgs>();
  list->add_option("--category", l->query.category, "Only this category");
  list->add_option("--offset", l->query.offset, "Skip this many")->capture_default_str();
  list->add_option("--limit", l->query.limit, "At most this many")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  list->add_flag("--json", l->json, "Print JSON lines");
  list->callback([&g, l] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      for (const auto& item : catalog.store().list(l->query)) {
        if (l->json) {
          std::cout << item_json(item, file_urls(catalog)).dump() << "\n";
        } else {
          std::printf("%-24s %-12s %s\n", item.id.c_str(), item.category.c_str(), item.source.c_str());
        }
      }
      return 0;
    });
  });
}

void add_serve(CLI::App& app, const GlobalOptions& g) {
  auto* cmd = app.add_subcommand("serve", "Serve the catalog over HTTP (API + web page)");
  auto o = std::make_shared<ServerOptions>();
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port (0 = pick a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--workers", o->workers, "HTTP worker threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--inference-slots", o->inference_slots, "CNN forwards that may run at once")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--max-upload-mb", o->max_upload_mb, "Largest accepted upload")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--web-root", o->web_root, "Folder of the built web page (default: the build's web/dist)");
  cmd->add_option("--admin-token-file", o->admin_token_file, "File holding the admin bearer token");
  cmd->add_option("--cors-origin", o->cors_origins,
                  "Allowed cross-origin (repeatable; default: same origin only)");
  cmd->add_option("--fetch-allow-host", o->fetch_allow_hosts,
                  "Host that search requests may name in image_url (repeatable; none = image_url off)");
  cmd->add_flag("--fetch-allow-private", o->fetch_allow_private,
                "Let image_url reach private, loopback and link-local addresses");
  cmd->add_option("--min-confidence", o->min_confidence, "auto mode falls back to all categories below this")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->callback([&g, o] {
    run(g, [&] {
      CatalogOptions options = catalog_options(g);
      options.inference_slots = o->inference_slots;
      options.max_image_bytes = o->max_upload_mb << 20;
      options.min_confidence = static_cast<float>(o->min_confidence);
      return serve(options, *o);
    });
  });
}

}  // namespace

void register_commands(CLI::App& app, const GlobalOptions& global) {
  add_import(app, global);
  add_search(app, global);
  add_eval(app, global);
  add_maintenance(app, global);
  add_items(app, global);
  add_serve(app, global);
}

}  // namespace lookalike
