#include "service/model_pools.h"

#include <spdlog/spdlog.h>

#include "model/dnnl_network.h"

namespace lookalike {

ModelPools::ModelPools(ModelPoolOptions options)
    : options_(std::move(options)),
      // The manifest's own choice is read when it is loaded (load_manifest): `info` and `list`
      // never need the model files.
      engine_(options_.engine.value_or(ModelManifest{}.engine)),
      precision_(resolve_precision(options_.precision, engine_)),
      image_slots_(options_.inference_slots + 2) {}

ModelManifest ModelPools::load_manifest(const std::string& path) {
  ModelManifest manifest = ModelManifest::load(path);
  if (options_.engine) {
    manifest.engine = *options_.engine;
  } else if (manifest.engine != engine_) {  // a manifest naming another engine than the default
    engine_ = manifest.engine;
    precision_ = resolve_precision(options_.precision, engine_);
  }
  return manifest;
}

const NetworkOptions& ModelPools::network_options(const ModelManifest& whole_cnn) {
  if (network_options_) return *network_options_;
  NetworkOptions options;
  if (precision_ == Precision::kInt8) {
    if (options_.int8_calibration) options.int8 = options_.int8_calibration(whole_cnn);
    if (!options.int8) {
      note_ = "int8 needs a calibration on the catalog's own photos, which has too few yet: fp32 until then";
      spdlog::warn("{}", note_);
    }
  }
  network_options_ = std::move(options);
  return *network_options_;
}

EmbedderPool& ModelPools::embedders() {
  std::lock_guard lock(mutex_);
  if (!embedders_) {
    const ModelManifest manifest = load_manifest(options_.model_manifest);
    auto pool = std::make_unique<EmbedderPool>(manifest, options_.inference_slots, network_options(manifest));
    if (options_.on_embedders_loaded) options_.on_embedders_loaded(*pool);
    embedders_ = std::move(pool);
  }
  return *embedders_;
}

ExtractorPool& ModelPools::extractors() {
  std::lock_guard lock(mutex_);
  if (!extractors_) {
    const NetworkOptions& options = network_options(load_manifest(options_.model_manifest));
    extractors_ = std::make_unique<ExtractorPool>(load_manifest(options_.trunk_manifest),
                                                  options_.inference_slots, options);
  }
  return *extractors_;
}

InferenceInfo ModelPools::inference() const {
  std::lock_guard lock(mutex_);
  InferenceInfo info;
  info.engine = std::string(engine_name(engine_));
  const bool int8 = network_options_ ? network_options_->int8.has_value() : precision_ == Precision::kInt8;
  info.precision = int8 ? "int8" : "fp32";
  info.isa = DnnlNetwork::cpu_isa();
  info.note = note_;
  return info;
}

}  // namespace lookalike
