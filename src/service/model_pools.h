// The CNNs one catalog runs, each loaded once on first use (so `list` and `info` never pay for
// them), and the slots that bound how many photos are decoded and embedded at once.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/fair_slots.h"
#include "model/embedder.h"

namespace lookalike {

struct ModelPoolOptions {
  std::string model_manifest;             // the whole CNN (GeM descriptors)
  std::string trunk_manifest;             // the CNN cut after mixed7 (the trained head's input)
  size_t inference_slots = 1;             // concurrent forwards; each holds its own network copy
  std::optional<InferenceEngine> engine;  // overrides the manifests' engine when set
  Precision precision = Precision::kAuto;
  // Asked once, when the precision resolves to int8: the calibration of the whole CNN (its
  // tensors cover the trunk's), or nullopt when none can be had yet (the pools then run fp32).
  std::function<std::optional<Int8Calibration>(const ModelManifest&)> int8_calibration;
  // Runs once, when the descriptor model has just been loaded (the catalog checks that it is
  // the model the catalog was built with).
  std::function<void(const EmbedderPool&)> on_embedders_loaded;
};

// What runs the forwards, as `info` and /api/v1/stats report it.
struct InferenceInfo {
  std::string engine;     // "dnnl" / "opencv"
  std::string precision;  // "fp32" / "int8": what the loaded networks run (the resolved choice before)
  std::string isa;        // the instruction set oneDNN dispatches to on this CPU (either engine)
  std::string note;       // why the precision differs from the one asked, when it does
};

class ModelPools {
 public:
  // Throws Error(kInvalidArgument) when the engine cannot run the asked precision (for an engine
  // named by a manifest rather than by `engine`, when the model is first loaded).
  explicit ModelPools(ModelPoolOptions options);

  EmbedderPool& embedders();    // the whole CNN: GeM descriptors (and mixed7 maps)
  ExtractorPool& extractors();  // the trunk cut after mixed7: the trained head's input
  size_t inference_slots() const { return options_.inference_slots; }
  InferenceInfo inference() const;

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
    FairSlots& slots_;
  };

 private:
  // mutex_ held. The manifest, with the engine --engine overrides; without an override, the
  // manifest's engine becomes the pools' (and the precision is resolved for it again).
  ModelManifest load_manifest(const std::string& path);
  // The networks' options, the int8 calibration fetched on first need (mutex_ held).
  const NetworkOptions& network_options(const ModelManifest& whole_cnn);

  ModelPoolOptions options_;
  InferenceEngine engine_;  // guarded by mutex_ once the pools are in use
  Precision precision_;     // resolved: kFp32 or kInt8; guarded by mutex_ likewise
  // Inference slots + 2, so that decoding the next photo overlaps the CNN.
  FairSlots image_slots_;
  mutable std::mutex mutex_;
  std::optional<NetworkOptions> network_options_;
  std::string note_;
  std::unique_ptr<EmbedderPool> embedders_;
  std::unique_ptr<ExtractorPool> extractors_;
};

}  // namespace lookalike
