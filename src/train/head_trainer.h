// Trains the category head (model/head_model.h) on cached mixed7 feature maps with libtorch.
//
// Recipe (issue 5's measurements on fashion6): Dropout2d 0.1 on the maps -> 1x1 conv to 512 ->
// BatchNorm -> ReLU -> GeM with a learnable p (init 3) -> BatchNorm1d -> dropout 0.3 -> linear.
// AdamW, one-cycle learning rate over 20 epochs, label smoothing 0.1; each sample is fed as its
// original or its horizontally flipped map at random, and each batch as a random window of its
// maps (sides 70-100%; docs/quality.md, "Map crops and 20 epochs"). The epoch with the best validation
// accuracy is kept (early stopping), and a softmax temperature is fitted on the validation split so that
// probabilities mean what they say (`auto` search compares them with a threshold).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "model/head_model.h"
#include "train/feature_cache.h"

namespace lookalike {

struct TrainSample {
  std::string sha256;  // key of the photo's maps in the FeatureCache
  int label = 0;       // index into the class list
};

struct HeadTrainOptions {
  uint32_t seed = 42;
  int max_epochs = 20;
  int patience = 4;  // epochs without a better validation accuracy before stopping
  size_t batch_size = 64;
  size_t channels = 512;
  float learning_rate = 1e-3f;  // peak of the one-cycle schedule
  float weight_decay = 0.05f;
  float label_smoothing = 0.1f;
  float map_dropout = 0.1f;
  float dropout = 0.3f;
  float map_crop = 0.7f;  // each batch trains on a random window of its maps, sides >= this share (1 = none)
  int threads = 0;        // 0 = every core
};

struct EpochReport {
  int epoch = 0, epochs = 0;
  double train_loss = 0, train_accuracy = 0;
  double val_loss = 0, val_accuracy = 0;
  double seconds = 0;
  bool best = false;
};

struct BatchProgress {
  int epoch = 0;
  size_t batch = 0, batches = 0;
  double loss = 0;  // running mean over the epoch
};

struct HeadTrainCallbacks {
  std::function<void(const BatchProgress&)> on_batch;
  std::function<void(const EpochReport&)> on_epoch;
};

// Outputs of the trained libtorch module (eval mode, before folding) on a few validation maps:
// the exported head must reproduce them (see verify_export in the catalog and the tests).
struct HeadReference {
  size_t n = 0;
  std::vector<float> maps;    // n x C x H x W
  std::vector<float> gem;     // n x channels
  std::vector<float> logits;  // n x classes
};

struct HeadTrainResult {
  HeadWeights weights;  // of the best epoch, BatchNorm folded in
  HeadReference reference;
  float temperature = 1;
  std::vector<EpochReport> epochs;
  int best_epoch = 0;
  double val_accuracy = 0;
  double val_loss = 0;
};

// Stratified, seeded split: each class with n >= 2 samples gives
// max(1, round(fraction * n), min(5, n / 4)) to validation, never all of them.
// Returns {train, validation}.
std::pair<std::vector<TrainSample>, std::vector<TrainSample>> split_validation(
    std::vector<TrainSample> samples, double fraction, uint32_t seed);

// Every sample must have both maps (original and flipped) in the cache; throws
// Error(kNotReady) otherwise. Deterministic for a fixed seed and thread count.
// libtorch runs in a module of its own, liblookalike_torch.so, loaded on the first call: from
// $LOOKALIKE_TORCH_MODULE, else beside the executable or in its ../lib/lookalike, else where
// the build put it. Throws
// Error(kNotReady) when it cannot be loaded.
HeadTrainResult train_head(const FeatureCache& cache, const std::vector<TrainSample>& train,
                           const std::vector<TrainSample>& validation,
                           const std::vector<std::string>& classes, const HeadTrainOptions& options,
                           const HeadTrainCallbacks& callbacks = {});

// train_head's arguments as the torch module receives them (all borrowed from the caller).
struct HeadTrainCall {
  const FeatureCache& cache;
  const std::vector<TrainSample>& train;
  const std::vector<TrainSample>& validation;
  const std::vector<std::string>& classes;
  const HeadTrainOptions& options;
  const HeadTrainCallbacks& callbacks;
};

}  // namespace lookalike
