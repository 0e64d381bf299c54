#include "service/model_pools.h"

namespace lookalike {

ModelPools::ModelPools(std::string model_manifest, std::string trunk_manifest, size_t inference_slots,
                       std::function<void(const EmbedderPool&)> on_embedders_loaded)
    : model_manifest_(std::move(model_manifest)),
      trunk_manifest_(std::move(trunk_manifest)),
      inference_slots_(inference_slots),
      on_embedders_loaded_(std::move(on_embedders_loaded)),
      image_slots_(static_cast<std::ptrdiff_t>(inference_slots + 2)) {}

EmbedderPool& ModelPools::embedders() {
  std::lock_guard lock(mutex_);
  if (!embedders_) {
    auto pool = std::make_unique<EmbedderPool>(ModelManifest::load(model_manifest_), inference_slots_);
    if (on_embedders_loaded_) on_embedders_loaded_(*pool);
    embedders_ = std::move(pool);
  }
  return *embedders_;
}

ExtractorPool& ModelPools::extractors() {
  std::lock_guard lock(mutex_);
  if (!extractors_) {
    extractors_ = std::make_unique<ExtractorPool>(ModelManifest::load(trunk_manifest_), inference_slots_);
  }
  return *extractors_;
}

}  // namespace lookalike
