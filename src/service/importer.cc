#include "service/importer.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/files.h"
#include "image/image_decoder.h"
#include "image/product_colour.h"
#include "service/maintenance.h"

namespace lookalike {
namespace {

struct Decoded {
  const ImportEntry* entry;
  std::string bytes;
  std::string sha256;
  DecodedImage image;
  std::vector<float> colours;  // dominant_colours, measured here beside the decode
  std::optional<std::string> error;
};

// A bounded single-producer queue between the decode thread and the embedding loop.
class DecodeQueue {
 public:
  explicit DecodeQueue(size_t depth) : depth_(depth) {}
  bool push(Decoded d, const std::atomic<bool>& stop) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return items_.size() < depth_ || stop.load(); });
    if (stop.load()) return false;
    items_.push_back(std::move(d));
    not_empty_.notify_one();
    return true;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
  }
  void wake() { not_full_.notify_all(); }
  std::optional<Decoded> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return std::nullopt;
    Decoded d = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return d;
  }

 private:
  size_t depth_;
  std::deque<Decoded> items_;
  bool closed_ = false;
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
};

Decoded load(const ImportEntry& entry, const CatalogOptions& options) {
  Decoded d{&entry, {}, {}, {}, {}, std::nullopt};
  try {
    d.bytes = read_file(entry.path, options.max_image_bytes);
  } catch (const Error& e) {
    d.error = e.what();
    return d;
  }
  auto image = decode_image(d.bytes, options.decode);
  if (!image) {
    d.error = image.error().message;
    return d;
  }
  d.image = std::move(*image);
  d.sha256 = sha256_hex(d.bytes);
  d.colours = dominant_colours(d.image.rgb);
  return d;
}

class ImportRun {
 public:
  ImportRun(Catalog& catalog, const std::vector<ImportEntry>& entries, const ImportOptions& options)
      : catalog_(catalog), entries_(entries), options_(options), queue_(options.queue_depth) {}

  ImportReport run() {
    const auto started = std::chrono::steady_clock::now();
    report_.total = entries_.size();
    report_.colours_measured = fill_missing_colours(catalog_, options_.cancel, options_.on_colours);
    std::vector<const ImportEntry*> todo = pending();
    std::exception_ptr decoder_failure;
    {
      std::thread decoder([&] {
        try {
          for (const ImportEntry* e : todo) {
            if (cancelled() || !queue_.push(load(*e, catalog_.options()), stop_)) break;
          }
        } catch (...) {
          decoder_failure = std::current_exception();
        }
        queue_.close();
      });
      // Stops and joins the decode thread on every way out of this block, a failing store
      // write (busy database, id conflict, full disk) included: destroying a joinable
      // std::thread while the error propagates would call std::terminate.
      const DecoderJoin join{*this, decoder};
      consume(started);
    }
    if (decoder_failure) std::rethrow_exception(decoder_failure);
    report_.interrupted = cancelled();
    report_.seconds = seconds_since(started);
    report_.images_per_second = report_.seconds > 0 ? double(report_.imported) / report_.seconds : 0;
    finish_import(catalog_, options_, report_);
    return report_;
  }

 private:
  struct DecoderJoin {
    ImportRun& run;
    std::thread& thread;
    ~DecoderJoin() {
      run.stop_ = true;
      run.queue_.wake();
      thread.join();
    }
  };

  void consume(std::chrono::steady_clock::time_point started) {
    std::vector<Decoded> batch;
    while (auto d = queue_.pop()) {
      if (cancelled()) break;
      if (d->error) {
        report_.failures.push_back({d->entry->path, *d->error});
        ++done_;
        continue;
      }
      batch.push_back(std::move(*d));
      if (batch.size() >= options_.batch_size) flush(batch, started);
    }
    if (!cancelled()) flush(batch, started);
  }

  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  bool cancelled() const { return options_.cancel && options_.cancel->load(); }

  // Entries whose id is already stored are resumed past, not re-embedded.
  std::vector<const ImportEntry*> pending() {
    std::vector<const ImportEntry*> todo;
    for (const auto& e : entries_) {
      if (catalog_.store().find(e.id)) {
        ++report_.already_stored;
        ++done_;
      } else {
        todo.push_back(&e);
      }
    }
    return todo;
  }

  void flush(std::vector<Decoded>& batch, std::chrono::steady_clock::time_point started) {
    if (batch.empty()) return;
    std::vector<NewItem> items(batch.size());
    // Each photo's descriptor comes from the store (a stored twin), from an earlier photo of
    // this batch with the same bytes, or from the CNN; only the last kind is embedded.
    std::vector<std::optional<size_t>> copy_of(batch.size());
    std::unordered_map<std::string, size_t> first_with_hash;
    std::vector<cv::Mat> to_embed;
    std::vector<size_t> embedded;
    const int64_t active = catalog_.active_version();
    for (size_t i = 0; i < batch.size(); ++i) {
      if (auto key = catalog_.store().find_by_hash(batch[i].sha256)) {
        items[i].descriptor = catalog_.store().descriptor(0, *key);
        if (active != 0) {
          if (auto v = catalog_.store().descriptor(active, *key); !v.empty())
            items[i].version_descriptors.emplace_back(active, std::move(v));
        }
        ++report_.reused_descriptors;
      } else if (auto [it, first] = first_with_hash.emplace(batch[i].sha256, i); !first) {
        copy_of[i] = it->second;
      } else {
        to_embed.push_back(batch[i].image.rgb);
        embedded.push_back(i);
      }
    }
    if (!to_embed.empty()) {
      cv::Mat descriptors, maps;
      {
        auto embedder = catalog_.embedders().lease();
        descriptors = embedder->embed_keeping(to_embed, kHeadInputBlock, &maps);
      }
      // Items are stored complete: with the active trained version's descriptor too, so a
      // killed import never leaves items that version cannot search.
      auto [version, rows] = catalog_.active_version_descriptors(maps);
      for (size_t row = 0; row < embedded.size(); ++row) {
        const float* p = descriptors.ptr<float>(static_cast<int>(row));
        items[embedded[row]].descriptor.assign(p, p + descriptors.cols);
        if (!rows.empty())
          items[embedded[row]].version_descriptors.emplace_back(version, std::move(rows[row]));
      }
      cache_maps(batch, embedded, maps);
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (copy_of[i]) {
        items[i].descriptor = items[*copy_of[i]].descriptor;
        items[i].version_descriptors = items[*copy_of[i]].version_descriptors;
      }
    }
    const int64_t now = unix_seconds();
    for (size_t i = 0; i < batch.size(); ++i) {
      const Decoded& d = batch[i];
      Item& item = items[i].item;
      item.id = d.entry->id;
      item.category = d.entry->category;
      item.file_name = d.entry->file_name;
      item.source = d.entry->path;
      item.sha256 = d.sha256;
      item.image_path = catalog_.directory().store_photo(d.bytes, d.sha256, d.image.format);
      item.width = d.image.rgb.cols;
      item.height = d.image.rgb.rows;
      item.added_at = now;
      item.metadata = d.entry->metadata;
      item.colours = d.colours;
    }
    catalog_.store().insert(items);  // one transaction: the whole batch or nothing
    report_.imported += batch.size();
    done_ += batch.size();
    batch.clear();
    if (options_.on_progress) {
      options_.on_progress({done_, entries_.size(), report_.imported, seconds_since(started)});
    }
  }

  // The same forward gives the trained head's input: photos within their category's training
  // quota keep it, so a later `train` only has to extract the mirrored maps.
  void cache_maps(const std::vector<Decoded>& batch, const std::vector<size_t>& embedded,
                  const cv::Mat& maps) {
    if (!cache_) {
      cache_.emplace(catalog_.feature_cache({maps.size[1], maps.size[2], maps.size[3]}));
      for (const auto& c : catalog_.store().categories()) per_category_[c.name] = c.count;
    }
    for (size_t row = 0; row < embedded.size(); ++row) {
      const ImportEntry& entry = *batch[embedded[row]].entry;
      if (entry.category.empty() || per_category_[entry.category]++ >= catalog_.options().max_per_category)
        continue;
      cache_->put(batch[embedded[row]].sha256, false, maps.ptr<float>(static_cast<int>(row)));
    }
  }

  Catalog& catalog_;
  std::optional<FeatureCache> cache_;
  std::unordered_map<std::string, size_t> per_category_;
  const std::vector<ImportEntry>& entries_;
  const ImportOptions& options_;
  DecodeQueue queue_;
  std::atomic<bool> stop_{false};
  ImportReport report_;
  size_t done_ = 0;
};

}  // namespace

ImportReport import_entries(Catalog& catalog, const std::vector<ImportEntry>& entries,
                            const ImportOptions& options) {
  if (entries.empty()) throw Error(ErrorCode::kInvalidArgument, "nothing to import");
  // An int8 catalog too new to calibrate on its own photos calibrates on the ones it imports.
  std::vector<std::string> paths;
  paths.reserve(entries.size());
  for (const auto& entry : entries) paths.push_back(entry.path);
  catalog.set_calibration_photos(std::move(paths));
  catalog.embedders();  // load the model (and check it matches the catalog) before any work
  if (const size_t removed = collect_orphans(catalog)) {
    spdlog::warn("removed {} files left by an interrupted write", removed);
  }
  return ImportRun(catalog, entries, options).run();
}

void finish_import(Catalog& catalog, const ImportOptions& options, ImportReport& report) {
  if (report.interrupted) return;
  if (options.train && report.imported > 0) {
    report.training = catalog.train(options.on_phase);
  } else {
    catalog.refresh();
  }
  if (catalog.ready()) {
    if (options.on_phase) options.on_phase("comparing photos for copies");
    report.copies = catalog.check_copies(options.on_copies, {}, options.cancel);
    report.interrupted = options.cancel && options.cancel->load();
  }
}

size_t fill_missing_colours(Catalog& catalog, const std::atomic<bool>* cancel,
                            const std::function<void(size_t, size_t)>& on_progress) {
  constexpr size_t kBatch = 64;
  const std::vector<int64_t> keys = catalog.store().keys_missing_colours();
  size_t done = 0, measured = 0;
  KeyedDescriptors batch;
  const auto commit = [&] {
    if (batch.empty()) return;
    catalog.store().put_colours(batch);
    measured += batch.size();
    batch.clear();
  };
  for (const int64_t key : keys) {
    if (cancel && cancel->load()) break;
    if (const auto item = catalog.store().find_by_key(key)) {
      try {
        const std::string bytes = read_file(catalog.image_file(*item), catalog.options().max_image_bytes);
        batch.emplace_back(key, dominant_colours(decode_image_or_throw(bytes, catalog.options().decode).rgb));
      } catch (const Error&) {
        // A missing or damaged stored photo: `check` names it; the item keeps no colours.
      }
    }
    if (batch.size() >= kBatch) commit();
    if (on_progress) on_progress(++done, keys.size());
  }
  commit();
  return measured;
}

}  // namespace lookalike
