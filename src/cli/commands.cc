#include "cli/commands.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <opencv2/core/utility.hpp>
#include <optional>

#include "cli/progress.h"
#include "common/allocator.h"
#include "common/error.h"
#include "common/files.h"
#include "http/server.h"
#include "service/activity.h"
#include "service/catalog.h"
#include "service/evaluator.h"
#include "service/import_source.h"
#include "service/importer.h"
#include "service/maintenance.h"
#include "service/queued_import.h"
#include "service/result_json.h"

namespace lookalike {

std::atomic<bool> g_interrupted{false};

namespace {
extern "C" void on_interrupt(int) {
  g_interrupted = true;
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once (still safe)
}
}  // namespace

void catch_interrupts() {
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
}

CatalogOptions catalog_options(const GlobalOptions& g) {
  CatalogOptions o;
  o.data_dir = g.data_dir;
  o.store = g.store;
  o.model_manifest = g.model_manifest;
  if (!g.engine.empty()) o.engine = parse_engine(g.engine);
  o.precision = parse_precision(g.precision);
  return o;
}

namespace {

void configure_runtime(const GlobalOptions& g) {
  // Logs go to stderr: stdout carries the commands' output (--json documents).
  static const auto logger = spdlog::stderr_color_mt("lookalike");
  spdlog::set_default_logger(logger);
  spdlog::set_level(g.verbose ? spdlog::level::debug : spdlog::level::warn);
  if (g.threads > 0) cv::setNumThreads(g.threads);
}

// Long commands (import, train) say what each phase is doing: a minute of PCA or of
// cross-validation must not look like a hang.
void announce_phases() {
  if (spdlog::get_level() > spdlog::level::info) spdlog::set_level(spdlog::level::info);
}

}  // namespace

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

namespace {

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
  const bool colour = !r.hits.empty() && r.hits.front().colour_similarity.has_value();
  std::printf("%3s  %-7s  %s%-10s  %-24s  %s\n", "#", "score", colour ? "colour  " : "", "category", "id",
              "source");
  for (size_t i = 0; i < r.hits.size(); ++i) {
    const auto& h = r.hits[i];
    const std::string colour_column = colour ? fixed(h.colour_similarity.value_or(-1), 3) + "   " : "";
    const std::string copies = h.copies.empty() ? "" : "  (+" + std::to_string(h.copies.size()) + " copies)";
    std::printf("%3zu  %-7s  %s%-10s  %-24s  %s%s\n", i + 1, fixed(h.score, 4).c_str(), colour_column.c_str(),
                h.item.category.c_str(), h.item.id.c_str(), h.item.source.c_str(), copies.c_str());
  }
  const auto& t = r.timings;
  std::printf("timings: decode %.1f ms, model %.1f ms, classify %.2f ms, search %.2f ms, total %.1f ms\n",
              t.decode_ms, t.model_ms, t.classify_ms, t.search_ms, t.total_ms);
}

// Options of the trained head, shared by `import` (which trains at its end) and `train`.
struct HeadArgs {
  HeadTrainingRequest request;
  size_t max_per_category = 1000;
  bool skip = false;

  void add_to(CLI::App* cmd) {
    cmd->add_option("--seed", request.head.seed, "Seed of the head's training (same seed, same result)")
        ->capture_default_str();
    cmd->add_option("--epochs", request.head.max_epochs, "Most epochs of the head's training")
        ->check(CLI::Range(1, 200))
        ->capture_default_str();
    cmd->add_option("--patience", request.head.patience,
                    "Stop after this many epochs without a better validation accuracy")
        ->check(CLI::Range(1, 200))
        ->capture_default_str();
    cmd->add_option("--validation", request.validation_fraction,
                    "Share of each category held out for validation")
        ->check(CLI::Range(0.02, 0.5))
        ->capture_default_str();
    cmd->add_option("--min-per-category", request.min_per_category,
                    "Categories with fewer photos are left out of the head; fewer than 2 left: no head")
        ->check(CLI::Range(2, 1000000))
        ->capture_default_str();
    cmd->add_flag(
        "--on-workers", request.on_workers,
        "PostgreSQL store: the new version's descriptors of items whose feature maps are not cached "
        "here are computed by `lookalike worker` processes; activated when they are done");
    cmd->add_flag("--activate-anyway", request.always_activate,
                  "Activate the new version even if the frozen recipe classifies its validation photos "
                  "better");
    cmd->add_option("--max-per-category", max_per_category,
                    "Photos per category whose feature maps are cached and trained on")
        ->check(CLI::Range(2, 10000000))
        ->capture_default_str();
    cmd->add_option("--frozen-blend", request.frozen_blend_weight,
                    "Weight of the frozen probe in the new version's predictions, 0 = the head alone "
                    "(default: chosen on the validation photos)")
        ->check(CLI::Range(0.0, 0.95));
  }
};

// How queries are embedded and classified (CatalogOptions); shared by search, eval and serve.
struct QueryModelArgs {
  bool flip = true;
  bool head_alone = false;
  float frozen_search_weight = kDefaultFrozenSearchWeight;
  float instance_threshold = kDefaultInstanceThreshold;
  float instance_margin = kDefaultInstanceMargin;
  QueryExpansion expansion;

  void add_to(CLI::App* cmd) {
    cmd->add_flag("--flip-queries,!--no-flip-queries", flip,
                  "Embed each query photo with its mirror image too, averaged (default on): better "
                  "categories for 2x CNN time");
    cmd->add_flag("--no-frozen-blend", head_alone,
                  "Predict categories with a trained version's head alone: queries run the CNN only up "
                  "to mixed7 (faster), without the frozen probe's blend (less accurate)");
    cmd->add_option("--frozen-search-weight", frozen_search_weight,
                    "Weight of the frozen recipe's descriptor beside a trained head's in the ranking "
                    "(0 = the head's alone; needs the blend)")
        ->check(CLI::Range(0.0f, 1.0f))
        ->capture_default_str();
    cmd->add_option("--instance-threshold", instance_threshold,
                    "Frozen-descriptor cosine from which a hit is taken for the query's very product shot "
                    "and ranked first (0 = off; needs the blend)")
        ->check(CLI::Range(0.0f, 1.0f))
        ->capture_default_str();
    cmd->add_option("--instance-margin", instance_margin,
                    "The best frozen match is taken for the very product shot too when it leads the next "
                    "match by this much (and its cosine is at least 0.4)")
        ->check(CLI::Range(0.0f, 1.0f))
        ->capture_default_str();
    cmd->add_option(
           "--query-expansion", expansion.neighbours,
           "Reorder each query's best 100 results by the query moved toward its best N of them: better "
           "look-alikes for a few hundred dot products (0 = off)")
        ->check(CLI::Range(0, 50))
        ->capture_default_str();
    cmd->add_option("--expansion-power", expansion.power,
                    "Each of those results weighs its score to this power")
        ->check(CLI::Range(0.0f, 20.0f))
        ->capture_default_str();
  }
  void apply(CatalogOptions& options) const {
    options.flip_queries = flip;
    options.blend_frozen = !head_alone;
    options.frozen_search_weight = frozen_search_weight;
    options.instance_threshold = instance_threshold;
    options.instance_margin = instance_margin;
    options.expansion = expansion;
  }
};

// Ends a job's activity report as failed when its body throws; the error goes on up to run().
int reporting_failures(ActivityReport& activity, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    activity.fail(e.what());
    throw;
  }
}

// Trains a new model version (or says why not), with a progress bar per stage and epoch, each
// also published to `activity`.
int train_head_version(Catalog& catalog, HeadArgs& args, ActivityReport& activity) {
  HeadTrainingRequest request = args.request;
  request.cancel = &g_interrupted;
  const auto started = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  std::unique_ptr<ProgressBar> bar;
  std::string stage;
  double stage_started = 0;
  request.on_stage = [&](const std::string& name, size_t done, size_t total) {
    if (name != stage) {
      if (bar) bar->finish();
      bar = std::make_unique<ProgressBar>(name, "img/s", &activity);
      stage = name;
      stage_started = elapsed();
    }
    bar->update(done, total, elapsed() - stage_started, done);
  };
  int bar_epoch = 0;
  double epochs_started = -1;
  request.callbacks.on_batch = [&](const BatchProgress& p) {
    const std::string label =
        "epoch " + std::to_string(p.epoch) + "/" + std::to_string(request.head.max_epochs);
    if (p.epoch != bar_epoch) {
      if (bar) bar->finish();
      bar = std::make_unique<ProgressBar>(label, "batch/s");
      bar_epoch = p.epoch;
      stage_started = elapsed();
      if (epochs_started < 0) epochs_started = stage_started;
    }
    bar->update(p.batch, p.batches, elapsed() - stage_started, p.batch, "loss " + fixed(p.loss, 3));
    // The activity counts batches over all epochs, so its ETA is the whole training's (an upper
    // bound: patience may stop it earlier).
    const size_t done = size_t(p.epoch - 1) * p.batches + p.batch;
    const size_t total = size_t(request.head.max_epochs) * p.batches;
    const double seconds = elapsed() - epochs_started;
    activity.progress(label, done, total, seconds > 0 ? double(total - done) * seconds / double(done) : -1);
  };
  request.callbacks.on_epoch = [&](const EpochReport& e) {
    if (bar) bar->finish();
    bar.reset();
    std::fprintf(
        stderr,
        "epoch %d/%d: loss %.3f, train accuracy %.3f, validation loss %.3f, accuracy %.3f (%.0f s)%s\n",
        e.epoch, e.epochs, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy, e.seconds,
        e.best ? "  best so far" : "");
  };
  HeadTrainingOutcome outcome;
  try {
    outcome = catalog.train_head(request);
  } catch (const Error& e) {
    if (bar) bar->finish();
    if (e.code() != ErrorCode::kCancelled) {
      activity.fail(e.what());
      throw;
    }
    activity.stop(e.what());
    std::fprintf(stderr, "lookalike: %s\n", e.what());
    return 130;
  }
  if (bar) bar->finish();
  std::printf("%s: %s\n", outcome.trained ? "trained" : "no head", outcome.summary.c_str());
  activity.finish(outcome.summary);
  return 0;
}

// The figures `info` shows for a version, from an evaluation result.
nlohmann::json headline(const nlohmann::json& r, bool flip) {
  nlohmann::json h = nlohmann::json::object();
  for (const char* key : {"mode", "queries", "accuracy", "p_at_1", "p_at_10", "category_precision_at_12",
                          "duplicates_first", "colour_distance_at_12", "ms_per_query", "frozen_blend_weight",
                          "frozen_search_weight", "instance_threshold", "instance_margin", "inference"}) {
    if (r.contains(key)) h[key] = r[key];
  }
  if (r.contains("instance")) {
    const auto& i = r["instance"];
    h["instance_recall_at_1"] = i.value("recall_at_1", 0.0);
    h["instance_recall_at_12"] = i.value("recall_at_12", 0.0);
    h["instance_queries"] = i.value("queries", size_t{0});
  }
  h["flip_queries"] = flip;
  return h;
}

std::string evaluation_line(const nlohmann::json& e) {
  if (!e.is_object() || !e.contains("p_at_10")) return {};
  char line[384];
  std::snprintf(line, sizeof line,
                "\n       eval (%s, %zu queries%s%s): accuracy %.3f, p@10 %.3f, category precision@12 %.3f",
                e.value("mode", std::string()).c_str(), e.value("queries", size_t{0}),
                e.value("flip_queries", false) ? ", flip-averaged" : "",
                e.value("frozen_blend_weight", 0.0) > 0 ? ", probe blended" : "", e.value("accuracy", 0.0),
                e.value("p_at_10", 0.0), e.value("category_precision_at_12", 0.0));
  std::string text = line;
  if (e.value("frozen_search_weight", 0.0) > 0) {
    std::snprintf(line, sizeof line, ", frozen descriptor searched at %.2f",
                  e.value("frozen_search_weight", 0.0));
    text += line;
  }
  if (e.value("instance_threshold", 0.0) > 0) {
    std::snprintf(line, sizeof line, ", same item first (frozen cosine %.2f, or a lead of %.2f)",
                  e.value("instance_threshold", 0.0), e.value("instance_margin", 0.0));
    text += line;
  }
  if (e.contains("instance_recall_at_1")) {
    std::snprintf(line, sizeof line, ", instance recall@1 %.3f @12 %.3f (%zu altered photos)",
                  e.value("instance_recall_at_1", 0.0), e.value("instance_recall_at_12", 0.0),
                  e.value("instance_queries", size_t{0}));
    text += line;
  }
  return text;
}

// "train: running, epoch 3/12 40/96, about 2m10s left (pid 123)"
void print_activity(const Activity& a) {
  std::string progress = a.phase;
  if (a.total > 0) progress += " " + std::to_string(a.done) + "/" + std::to_string(a.total);
  if (a.eta_seconds >= 0)
    progress += ", about " + std::to_string(static_cast<long>(a.eta_seconds + 0.5)) + " s left";
  std::printf("%s: %s, %s (pid %lld)%s%s\n", a.job.c_str(), a.state.c_str(), progress.c_str(),
              static_cast<long long>(a.pid), a.message.empty() ? "" : ": ", a.message.c_str());
}

void print_versions(const Catalog& catalog) {
  const auto stats = catalog.stats();
  std::printf("model versions (active: %lld):\n", static_cast<long long>(stats.model_version));
  std::printf("  %s0  frozen recipe: GeM mixed5..9, PCA-whitening, linear probe (5-fold accuracy %.3f)%s\n",
              stats.model_version == 0 ? "*" : " ", catalog.frozen_cv_accuracy(),
              evaluation_line(catalog.evaluation(0)).c_str());
  for (const auto& v : catalog.versions()) {
    const auto& i = v.info;
    std::string judged;
    if (i.contains("frozen_validation_accuracy") && i["frozen_validation_accuracy"].is_number()) {
      char text[160];
      std::snprintf(text, sizeof text, " (frozen probe %.3f on the same photos)",
                    i["frozen_validation_accuracy"].get<double>());
      judged = text;
    }
    if (i.value("frozen_blend_weight", 0.0) > 0) {
      char text[160];
      std::snprintf(text, sizeof text, ", %.3f blended with the probe at weight %.2f",
                    i.value("blended_validation_accuracy", 0.0), i.value("frozen_blend_weight", 0.0));
      judged += text;
    }
    std::printf(
        "  %s%lld  %s: %zu categories, validation accuracy %.3f at epoch %d%s, auto threshold %.2f, %zu "
        "training photos, %.0f s%s\n",
        v.version == stats.model_version ? "*" : " ", static_cast<long long>(v.version),
        i.value("recipe", std::string("trained head")).c_str(),
        i.value("classes", nlohmann::json::array()).size(), i.value("validation_accuracy", 0.0),
        i.value("best_epoch", 0), judged.c_str(), i.value("auto_min_confidence", 0.5),
        i.value("train_photos", size_t{0}), i.value("seconds", 0.0),
        evaluation_line(i.value("evaluation", nlohmann::json())).c_str());
  }
}

// `import` on a PostgreSQL store: queues the photos for `lookalike worker` processes and, when
// `wait`, follows them on `bar` (done / total, rate, ETA; running and failed jobs beside).
QueuedImportReport queue_for_workers(Catalog& catalog, const std::vector<ImportEntry>& entries,
                                     const std::string& path, bool wait, const ImportOptions& import_options,
                                     ProgressBar& bar) {
  std::fprintf(stderr, "queueing %zu photos from %s for the workers of %s\n", entries.size(), path.c_str(),
               catalog.store().describe().c_str());
  QueuedImportOptions options;
  options.wait = wait;
  ProgressBar queueing("queueing photos", "img/s");
  options.on_enqueued = [&](size_t done, size_t total, double seconds) {
    queueing.update(done, total, seconds, done);
  };
  options.on_wait = [&](const ImportProgress& p, const QueueCounts& c) {
    bar.update(p.done, p.total, p.seconds, p.imported,
               std::to_string(c.running) + " running, " + std::to_string(c.failed) + " failed");
  };
  options.on_idle = [] {
    std::fprintf(stderr,
                 "no worker has taken a job for 30 s: start one or more with `lookalike worker` and the same "
                 "--store (or LOOKALIKE_STORE), on this machine or another\n");
  };
  auto out = import_through_queue(catalog, entries, options, import_options);
  queueing.finish();
  if (!out.waited && !out.report.interrupted) {
    for (const auto& f : out.report.failures)
      std::fprintf(stderr, "skipped %s: %s\n", f.path.c_str(), f.reason.c_str());
    std::printf(
        "queued %zu photos for the workers (already stored %zu, unreadable %zu); `lookalike status` "
        "follows them\n",
        out.queued, out.report.already_stored, out.report.failures.size());
  } else if (out.report.interrupted && !out.waited) {
    std::fprintf(stderr, "interrupted while queueing: %zu photos are queued\n", out.queued);
  } else if (out.report.interrupted) {
    std::fprintf(stderr, "stopped waiting: the %zu queued photos stay queued for the workers\n", out.queued);
  }
  return out;
}

void add_import(CLI::App& app, const GlobalOptions& g) {
  auto* cmd =
      app.add_subcommand("import", "Import a folder of category sub-folders, or a CSV/JSONL manifest");
  auto path = std::make_shared<std::string>();
  auto batch = std::make_shared<size_t>(8);
  auto no_train = std::make_shared<bool>(false);
  auto no_wait = std::make_shared<bool>(false);
  auto embed_here = std::make_shared<bool>(false);
  auto head = std::make_shared<HeadArgs>();
  cmd->add_option("PATH", *path, "Folder (one sub-folder per category) or manifest (.csv / .jsonl)")
      ->required();
  cmd->add_option("--batch", *batch, "Photos per CNN batch and per database transaction")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_flag("--no-train", *no_train, "Store photos only; train later with `lookalike train`");
  cmd->add_flag("--no-head", head->skip, "Train the frozen recipe only, not a new head version");
  cmd->add_flag("--no-wait", *no_wait,
                "PostgreSQL store: return once the photos are queued for `lookalike worker` (train later)");
  cmd->add_flag("--embed-here", *embed_here,
                "PostgreSQL store: embed the photos in this process instead of queueing them for workers");
  head->add_to(cmd);
  cmd->callback([&g, path, batch, no_train, no_wait, embed_here, head] {
    run(g, [&] {
      announce_phases();
      const auto entries = scan_import_source(*path);
      CatalogOptions catalog_opts = catalog_options(g);
      catalog_opts.max_per_category = head->max_per_category;
      // import_entries loads the model, after telling an int8 catalog what to calibrate on.
      Catalog catalog(catalog_opts, /*load_model=*/false);
      catch_interrupts();
      ActivityReport activity(g.data_dir, "import");
      return reporting_failures(activity, [&] {
        ProgressBar bar("importing photos", "img/s", &activity);
        ImportOptions options;
        options.batch_size = *batch;
        options.train = !*no_train;
        options.cancel = &g_interrupted;
        options.on_progress = [&](const ImportProgress& p) {
          bar.update(p.done, p.total, p.seconds, p.imported);
        };
        std::optional<ProgressBar> colour_bar;
        const auto colours_started = std::chrono::steady_clock::now();
        options.on_colours = [&](size_t done, size_t total) {
          if (!colour_bar) {
            std::fprintf(stderr, "measuring the colours of %zu stored items (once)\n", total);
            colour_bar.emplace("measuring colours", "img/s", &activity);
          }
          colour_bar->update(
              done, total,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - colours_started).count(),
              done);
          if (done == total) colour_bar->finish();
        };
        options.on_phase = [&](const std::string& name) {
          bar.finish();
          activity.progress(name);
        };
        std::optional<ProgressBar> copies_bar;
        const auto copies_started = std::chrono::steady_clock::now();
        options.on_copies = [&](size_t done, size_t total) {
          if (!copies_bar) copies_bar.emplace("comparing photos for copies", "items/s", &activity);
          copies_bar->update(
              done, total,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - copies_started).count(), done);
          if (done == total) copies_bar->finish();
        };
        ImportReport report;
        if (is_postgres_spec(g.store) && !*embed_here) {
          auto queued = queue_for_workers(catalog, entries, *path, !*no_wait, options, bar);
          if (!queued.waited && !queued.report.interrupted) {
            activity.finish("queued " + std::to_string(queued.queued) + " photos for the workers");
            return 0;
          }
          report = std::move(queued.report);
        } else {
          std::fprintf(stderr, "importing %zu photos from %s into %s\n", entries.size(), path->c_str(),
                       g.data_dir.c_str());
          report = import_entries(catalog, entries, options);
        }
        bar.finish();
        for (const auto& f : report.failures)
          std::fprintf(stderr, "skipped %s: %s\n", f.path.c_str(), f.reason.c_str());
        std::printf(
            "imported %zu, already stored %zu, reused descriptors %zu, failed %zu of %zu in %.1f s (%.1f "
            "img/s)\n",
            report.imported, report.already_stored, report.reused_descriptors, report.failures.size(),
            report.total, report.seconds, report.images_per_second);
        if (!report.training.empty()) std::printf("trained: %s\n", report.training.c_str());
        if (report.copies.checked > 0) {
          std::printf(
              "copies: compared %zu items with their neighbours, %zu copy pairs found "
              "(`lookalike duplicates` lists the groups)\n",
              report.copies.checked, report.copies.pairs);
        }
        if (report.interrupted) {
          const std::string message = "interrupted: " + std::to_string(report.imported) +
                                      " photos are stored; run the same import again to resume";
          std::fprintf(stderr, "%s\n", message.c_str());
          activity.stop(message);
          return 130;
        }
        if (report.imported + report.already_stored == 0) {
          const std::string message =
              "none of the " + std::to_string(report.total) + " photos could be imported";
          std::fprintf(stderr, "lookalike: error: %s\n", message.c_str());
          activity.fail(message);
          return 1;
        }
        activity.finish("imported " + std::to_string(report.imported) + ", already stored " +
                        std::to_string(report.already_stored) + ", failed " +
                        std::to_string(report.failures.size()) + " of " + std::to_string(report.total));
        // A new head version when photos arrived, or when there is none yet (an earlier run was
        // stopped during training); a resumed import that added nothing keeps the current one.
        if (!head->skip && (report.imported > 0 || catalog.versions().empty()) && catalog.stats().trained) {
          ActivityReport training(g.data_dir, "train");
          return reporting_failures(training, [&] { return train_head_version(catalog, *head, training); });
        }
        return 0;
      });
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
    float colour_weight = 0;
    bool keep_copies = false;
    bool json = false;
    QueryModelArgs model;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("IMAGE", a->image, "Photo to search with (JPEG, PNG, WebP, GIF)")->required();
  cmd->add_option("--color-weight", a->colour_weight,
                  "0..1: how much the product's colours count against its look (0 = look alone)")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  a->model.add_to(cmd);
  cmd->add_option("-k,--k", a->k, "Number of results")->check(CLI::Range(1, 500))->capture_default_str();
  cmd->add_option("--category", a->category, "auto (predict and search inside it), all, or a category name")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print JSON");
  cmd->add_flag("--keep-copies", a->keep_copies,
                "List copies of one product shot separately (default: one result names its copies)");
  cmd->callback([&g, a] {
    run(g, [&] {
      CatalogOptions options = catalog_options(g);
      a->model.apply(options);
      Catalog catalog(options, false);
      const std::string bytes = read_file(a->image, catalog.options().max_image_bytes);
      QueryOptions query = query_options_from(a->k, a->category);
      query.colour_weight = a->colour_weight;
      query.collapse_duplicates = !a->keep_copies;
      const auto result = catalog.search_image(bytes, query);
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
    size_t instance_queries = 150;
    uint32_t seed = 42;
    float colour_weight = 0;
    bool json = false;
    QueryModelArgs model;
  };
  auto a = std::make_shared<Args>();
  a->model.add_to(cmd);
  cmd->add_option("--queries", a->queries,
                  "Folder of category sub-folders used as queries (default: leave-one-out)");
  cmd->add_option("--limit", a->limit, "Evaluate at most this many queries");
  cmd->add_option("--instance-queries", a->instance_queries,
                  "Catalog photos altered like a shopper's photo and searched for (0 = none)")
      ->check(CLI::Range(size_t{0}, size_t{100000}))
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Seed choosing and altering the instance queries")
      ->capture_default_str();
  cmd->add_option("--color-weight", a->colour_weight, "Weigh the products' colours in every search (0..1)")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->callback([&g, a] {
    run(g, [&] {
      CatalogOptions eval_options = catalog_options(g);
      a->model.apply(eval_options);
      Catalog catalog(eval_options, false);
      const int64_t version = catalog.stats().model_version;
      auto bar = std::make_unique<ProgressBar>("eval version " + std::to_string(version));
      EvalOptions options;
      options.queries = a->queries;
      options.limit = a->limit;
      options.instance_queries = a->instance_queries;
      options.seed = a->seed;
      options.colour_weight = a->colour_weight;
      auto started = std::chrono::steady_clock::now();
      size_t phase_total = 0, last_done = 0;
      options.on_progress = [&](size_t done, size_t total) {
        // An eval runs phases (the queries, then the altered instance queries), each counting
        // from 1: a new one restarts the clock, or its rate and ETA would count the one before.
        if (total != phase_total || done < last_done) {
          started = std::chrono::steady_clock::now();
          phase_total = total;
        }
        last_done = done;
        bar->update(done, total,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), done);
      };
      auto result = evaluate(catalog, options);
      bar->finish();
      result["model_version"] = version;
      result["frozen_blend_weight"] = catalog.stats().frozen_blend_weight;
      result["frozen_search_weight"] = catalog.stats().frozen_search_weight;
      result["instance_threshold"] = catalog.stats().instance_threshold;
      result["instance_margin"] = catalog.stats().instance_margin;
      result["inference"] = inference_json(catalog.stats().inference);
      result["index"] = stats_json(catalog.stats())["index"];  // which index the searches ran on
      catalog.record_evaluation(headline(result, a->model.flip));
      if (version != 0) {
        // The frozen recipe, scored on the same queries in the same run, as the baseline.
        CatalogOptions frozen = eval_options;
        frozen.pinned_version = 0;
        Catalog baseline(frozen, false);
        bar = std::make_unique<ProgressBar>("eval frozen recipe");
        phase_total = last_done = 0;
        result["frozen_baseline"] = evaluate(baseline, options);
        bar->finish();
        baseline.record_evaluation(headline(result["frozen_baseline"], a->model.flip));
      }
      std::cout << result.dump(a->json ? -1 : 2) << "\n";
      return 0;
    });
  });
}

void add_maintenance(CLI::App& app, const GlobalOptions& g) {
  auto* reindex = app.add_subcommand(
      "reindex",
      "Rebuild the vector index from the catalog database (and store a frozen recipe trained before "
      "2026-12-01 in its compact form)");
  auto index_kind = std::make_shared<std::string>();
  reindex
      ->add_option("--index", *index_kind,
                   "Index type, kept for later rebuilds: auto (exact below 10,000 items, IVF-PQ above), flat "
                   "(exact), ivfpq or hnsw (compressed, re-ranked exactly from float16 copies)")
      ->check(CLI::IsMember({"auto", "flat", "ivfpq", "hnsw"}));
  reindex->callback([&g, index_kind] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      std::optional<IndexKind> kind;
      if (!index_kind->empty()) kind = parse_index_kind(*index_kind);
      catalog.reindex(kind);
      const auto s = catalog.stats();
      std::printf("index rebuilt: %zu items, %s (%s)\n", s.items,
                  s.index_kind.empty() ? "none" : s.index_kind.c_str(), s.index_parameters.c_str());
      return 0;
    });
  });
  auto* check = app.add_subcommand(
      "check",
      "Verify the data directory: database integrity, every item's photo, descriptors and index "
      "vector, no orphan files; exit 0 only when all hold");
  auto check_json = std::make_shared<bool>(false);
  auto repair = std::make_shared<bool>(false);
  check->add_flag("--json", *check_json, "Print the report as JSON");
  check->add_flag("--repair", *repair,
                  "First delete orphan files older than a minute (leftovers of interrupted writes)");
  check->callback([&g, check_json, repair] {
    run(g, [&] {
      CatalogOptions options = catalog_options(g);
      options.read_only = !*repair;
      Catalog catalog(options, false);
      if (*repair) std::fprintf(stderr, "removed %zu orphan files\n", collect_orphans(catalog));
      const CheckReport report = check_catalog(catalog);
      if (*check_json) {
        std::printf("%s\n", report.to_json().dump(2).c_str());
      } else {
        for (const auto& problem : report.problems) std::printf("problem: %s\n", problem.c_str());
        for (const auto& recent : report.recent_orphans)
          std::printf("recent orphan (not a problem): %s\n", recent.c_str());
        if (report.items_without_colours > 0) {
          std::printf(
              "%zu items have no colours yet (not a problem): the next `lookalike import` measures them\n",
              report.items_without_colours);
        }
        std::printf(
            "%s: %zu items, %zu photos verified, %zu index vectors compared, %zu orphan files, %zu "
            "problems\n",
            report.ok() ? "ok" : "NOT OK", report.items, report.photos_verified, report.index_vectors,
            report.orphan_files, report.problems.size());
      }
      return report.ok() ? 0 : 1;
    });
  });
  auto* backup = app.add_subcommand(
      "backup", "Copy the catalog (database and photos) into a new folder, consistently, while servers run");
  auto destination = std::make_shared<std::string>();
  backup->add_option("DEST", *destination, "A new or empty folder; use it later with --data DEST")
      ->required();
  backup->callback([&g, destination] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      const BackupReport report = backup_catalog(catalog, *destination);
      std::printf("backed up %zu items, %zu photos, %.1f MB to %s in %.1f s\n", report.items, report.photos,
                  static_cast<double>(report.bytes) / (1 << 20), destination->c_str(), report.seconds);
      return 0;
    });
  });
  auto* compact = app.add_subcommand(
      "compact",
      "Rewrite the catalog database so that each table's rows lie together (SQLite VACUUM): after a "
      "large import, a cold start then reads the item rows, not the whole file. Needs free disk about "
      "the database's size beside it and again in the temporary folder; interrupted, it leaves the "
      "database as it was");
  compact->callback([&g] {
    run(g, [&] {
      const CompactReport report = compact_store(catalog_options(g));
      std::printf("compacted %s: %.1f MB -> %.1f MB in %.1f s\n", report.store.c_str(),
                  static_cast<double>(report.bytes_before) / (1 << 20),
                  static_cast<double>(report.bytes_after) / (1 << 20), report.seconds);
      return 0;
    });
  });
  auto* train = app.add_subcommand(
      "train", "Learn the frozen recipe (PCA-whitening, linear probe), then train a new head version");
  auto head = std::make_shared<HeadArgs>();
  auto head_only = std::make_shared<bool>(false);
  train->add_flag("--no-head", head->skip, "Train the frozen recipe only");
  train->add_flag("--head-only", *head_only,
                  "Keep the frozen recipe as it is; train a new head version only");
  head->add_to(train);
  train->callback([&g, head, head_only] {
    run(g, [&] {
      if (head->skip && *head_only)
        throw Error(ErrorCode::kInvalidArgument, "--no-head and --head-only exclude each other");
      announce_phases();
      CatalogOptions options = catalog_options(g);
      options.max_per_category = head->max_per_category;
      Catalog catalog(options, false);
      catch_interrupts();
      ActivityReport activity(g.data_dir, "train");
      return reporting_failures(activity, [&] {
        if (!*head_only || !catalog.stats().trained) {
          const std::string summary =
              catalog.train([&](const std::string& name) { activity.progress(name); });
          std::printf("trained: %s\n", summary.c_str());
          if (head->skip) activity.finish(summary);
        }
        return head->skip ? 0 : train_head_version(catalog, *head, activity);
      });
    });
  });

  auto* model = app.add_subcommand("model", "List, switch or remove model versions");
  model->require_subcommand(1);
  model->add_subcommand("list", "List model versions with their training figures")->callback([&g] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      print_versions(catalog);
      return 0;
    });
  });
  auto* use = model->add_subcommand(
      "use", "Activate a model version (0 = frozen recipe); servers switch within a second");
  auto version = std::make_shared<int64_t>(0);
  use->add_option("VERSION", *version, "Version number from `lookalike model list`")
      ->required()
      ->check(CLI::NonNegativeNumber);
  use->callback([&g, version] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      catalog.use_version(*version);
      std::printf("active model version: %lld\n", static_cast<long long>(*version));
      return 0;
    });
  });
  auto* remove = model->add_subcommand(
      "remove", "Delete an inactive trained version and its descriptors (the active one is refused)");
  auto removed = std::make_shared<int64_t>(0);
  remove->add_option("VERSION", *removed, "Version number from `lookalike model list`")
      ->required()
      ->check(CLI::PositiveNumber);
  remove->callback([&g, removed] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      catalog.remove_version(*removed);
      std::printf("removed model version %lld\n", static_cast<long long>(*removed));
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
        auto doc = stats_json(s);
        doc["versions"] = nlohmann::json::array();
        for (const auto& v : catalog.versions()) {
          doc["versions"].push_back({{"version", v.version}, {"created_at", v.created_at}, {"info", v.info}});
        }
        doc["activity"] = nlohmann::json::array();
        for (const auto& a : read_activities(g.data_dir)) doc["activity"].push_back(activity_json(a));
        std::cout << doc.dump(2) << "\n";
        return 0;
      }
      std::printf("data directory: %s\nstore: %s\nitems: %zu\nmodel: %s\n", g.data_dir.c_str(),
                  s.store.c_str(), s.items, s.model_id.empty() ? "(none yet)" : s.model_id.c_str());
      std::printf("trained: %s (descriptor %zu -> index %zu dimensions)\n", s.trained ? "yes" : "no",
                  s.descriptor_dimension, s.index_dimension);
      if (!s.index_kind.empty()) {
        std::printf(
            "index: %s (chosen: %s) %s; %.1f MB searchable, %.1f MB exact copies in memory, %.1f MB "
            "mapped from the snapshot\n",
            s.index_kind.c_str(), s.index_choice.c_str(), s.index_parameters.c_str(), s.index_bytes / 1e6,
            s.index_exact_copy_bytes / 1e6, s.index_mapped_copy_bytes / 1e6);
      }
      std::printf("inference: %s, %s, CPU %s%s%s\n", s.inference.engine.c_str(),
                  s.inference.precision.c_str(), s.inference.isa.c_str(),
                  s.inference.note.empty() ? "" : ": ", s.inference.note.c_str());
      for (const auto& c : s.categories) std::printf("  %-16s %zu\n", c.name.c_str(), c.count);
      print_versions(catalog);
      for (const auto& a : read_activities(g.data_dir)) print_activity(a);
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

// `lookalike train --head-only` on the same catalog, with the global options and the HEAD
// OPTIONS given to `cmd` (serve).
std::vector<std::string> background_training_command(const GlobalOptions& g, const CLI::App& cmd) {
  std::error_code ec;
  const auto executable = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error(ErrorCode::kInternal, "cannot find this program's path for the background training");
  std::vector<std::string> command{executable.string(), "--data",
                                   std::filesystem::absolute(g.data_dir).string(), "--precision",
                                   g.precision};
  if (!g.model_manifest.empty()) command.insert(command.end(), {"--model", g.model_manifest});
  if (!g.engine.empty()) command.insert(command.end(), {"--engine", g.engine});
  if (g.threads > 0) command.insert(command.end(), {"--threads", std::to_string(g.threads)});
  command.insert(command.end(), {"train", "--head-only"});
  for (const char* name : {"--seed", "--epochs", "--patience", "--validation", "--min-per-category",
                           "--max-per-category", "--frozen-blend"}) {
    const CLI::Option* option = cmd.get_option(name);
    if (option->count() > 0) command.insert(command.end(), {name, option->results().back()});
  }
  if (cmd.get_option("--activate-anyway")->count() > 0) command.push_back("--activate-anyway");
  return command;
}

void add_serve(CLI::App& app, const GlobalOptions& g) {
  auto* cmd = app.add_subcommand("serve", "Serve the catalog over HTTP (API + web page)");
  auto o = std::make_shared<ServerOptions>();
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port (0 = pick a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--workers", o->workers,
                  "HTTP worker threads (each open connection holds one while it sends or idles)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--inference-slots", o->inference_slots,
                  "CNN forwards that may run at once, each on cores / slots threads unless --threads says")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--max-upload-mb", o->max_upload_mb, "Largest accepted upload")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--max-upload-memory-mb", o->max_upload_memory_mb,
                  "Memory all uploads in flight may hold together (past it: 503, retry)")
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--request-timeout", o->request_timeout_s,
                  "Seconds a request may take to arrive whole (past it: 408)")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  cmd->add_option("--web-root", o->web_root, "Folder of the built web page (default: the build's web/dist)");
  cmd->add_option("--admin-token-file", o->admin_token_file, "File holding the admin bearer token");
  cmd->add_option("--cors-origin", o->cors_origins,
                  "Allowed cross-origin (repeatable; default: same origin only)");
  cmd->add_option("--fetch-allow-host", o->fetch_allow_hosts,
                  "Host that search requests may name in image_url (repeatable; none = image_url off)");
  cmd->add_flag("--fetch-allow-private", o->fetch_allow_private,
                "Let image_url reach private, loopback and link-local addresses");
  auto model = std::make_shared<QueryModelArgs>();
  model->add_to(cmd);
  auto background = std::make_shared<std::string>("auto");
  cmd->add_option("--background-training", *background,
                  "auto: when the catalog has no head version yet (or grew by a tenth since the newest), "
                  "train one in a child process at low priority while answering from the active version, "
                  "and switch when it is activated; the HEAD OPTIONS below apply to it. off: never")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  auto head = std::make_shared<HeadArgs>();
  head->add_to(cmd);
  auto* min_confidence =
      cmd->add_option("--min-confidence", o->min_confidence,
                      "auto mode falls back to all categories below this (default: the active model "
                      "version's own, chosen on its validation photos; 0.5 for the frozen recipe)")
          ->check(CLI::Range(0.0, 1.0));
  cmd->callback([&g, o, model, min_confidence, background, head, cmd] {
    run(g, [&] {
      if (*background == "auto") o->background_training.command = background_training_command(g, *cmd);
      o->min_per_category = head->request.min_per_category;
      CatalogOptions options = catalog_options(g);
      options.inference_slots = o->inference_slots;
      options.max_image_bytes = o->max_upload_mb << 20;
      if (min_confidence->count() > 0) options.min_confidence = static_cast<float>(o->min_confidence);
      model->apply(options);
      // The serving threads, in one place. The slots share the cores: a forward split over more
      // threads than its share pays a thread wake-up per layer and slows the other slots'
      // forwards (docs/benchmarks.md: one thread per slot on 2 cores, 47-50 ms at one client and
      // 38-41 searches/s at four, against 77 ms and 32-34/s with two). A query's BLAS calls are
      // small, and OpenBLAS's idle threads would spin beside the CNN's (set_blas_threads).
      set_blas_threads(1);
      if (g.threads == 0)
        cv::setNumThreads(std::max(1, cv::getNumberOfCPUs() / static_cast<int>(o->inference_slots)));
      spdlog::info("{} inference slots, {} CNN threads each", o->inference_slots, cv::getNumThreads());
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
  add_recommend(app, global);
  add_worker(app, global);
  add_status(app, global);
  add_duplicates(app, global);
}

}  // namespace lookalike
