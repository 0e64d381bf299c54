// The CNNs one catalog runs, each loaded once on first use (so `list` and `info` never pay for
// them), and the slots that bound how many photos are decoded and embedded at once.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>

#include "model/embedder.h"

namespace lookalike {

class ModelPools {
 public:
  // `on_embedders_loaded` runs once, when the descriptor model has just been loaded (the
  // catalog checks that it is the model the catalog was built with).
  ModelPools(std::string model_manifest, std::string trunk_manifest, size_t inference_slots,
             std::function<void(const EmbedderPool&)> on_embedders_loaded);

  EmbedderPool& embedders();    // the whole CNN: GeM descriptors (and mixed7 maps)
  ExtractorPool& extractors();  // the trunk cut after mixed7: the trained head's input
  size_t inference_slots() const { return inference_slots_; }

  // Holds one image slot: decoding and embedding a photo may need a few hundred MB (a
  // 40-megapixel image decodes to 120 MB), so a burst of uploads waits here, holding only its
  // compressed bytes, instead of decoding all at once.
  class ImageSlot {
   public:
    explicit ImageSlot(ModelPools& pools) : slots_(pools.image_slots_) { slots_.acquire(); }
    ~ImageSlot() { slots_.release(); }
    ImageSlot(const ImageSlot&) = delete;
    ImageSlot& operator=(const ImageSlot&) = delete;

   private:
    std::counting_semaphore<>& slots_;
  };

 private:
  std::string model_manifest_, trunk_manifest_;
  size_t inference_slots_;
  std::function<void(const EmbedderPool&)> on_embedders_loaded_;
  // Inference slots + 2, so that decoding the next photo overlaps the CNN.
  std::counting_semaphore<> image_slots_;
  std::mutex mutex_;
  std::unique_ptr<EmbedderPool> embedders_;
  std::unique_ptr<ExtractorPool> extractors_;
};

}  // namespace lookalike
