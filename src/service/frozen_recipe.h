// The frozen recipe: PCA-whitening of the CNN's GeM descriptors plus a linear category probe,
// learned from every stored descriptor of version 0 and kept as store blobs. It serves until a
// head version is trained, and its probe is blended into trained versions' predictions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "store/catalog_store.h"

namespace lookalike {

// Store blobs of the frozen recipe.
inline constexpr const char* kPcaBlob = "pca";
inline constexpr const char* kClassifierBlob = "classifier";
inline constexpr const char* kTrainingBlob = "training";
// The index type `reindex --index` chose: auto, flat, ivfpq or hnsw (absent: auto).
inline constexpr const char* kIndexKindBlob = "index_kind";

// Learns PCA-whitening to `pca_dimension` and, over categories with enough photos, the probe
// (5-fold cross-validated, temperature fitted), and stores them. Returns a one-line summary.
// Throws Error(kNotReady) below 8 items. `on_phase` (may be empty) hears each step's name as
// it starts: neither step can count its progress, and the PCA takes minutes.
std::string train_frozen_recipe(CatalogStore& store, size_t pca_dimension,
                                const std::function<void(const std::string&)>& on_phase = {});

// The probe's 5-fold accuracy at the last training (0 before one).
double frozen_cv_accuracy(const CatalogStore& store);

// Rewrites a stored PCA-whitening that still carries FAISS's eigenvector matrix (recipes
// trained before 2026-12-01: ten times the size, read by every start-up) in the compact form
// training writes now; the projection is unchanged. Returns {bytes before, after} when it
// rewrote, nullopt when there was nothing to do.
std::optional<std::pair<size_t, size_t>> compact_frozen_recipe(CatalogStore& store);

struct LabelledKey {
  int64_t key = 0;
  int label = 0;
};

struct FrozenProbeValidation {
  double accuracy = 0;
  // One row per validation item, in its order: probabilities over `classes`, with the served
  // probe's temperature.
  std::vector<std::vector<float>> probabilities;
};

// The frozen recipe's probe trained on the `train` items only and scored on the `validation`
// items (labels index `classes`): the fair comparison for a new head, and the figures its blend
// weight is chosen on. Empty when the frozen recipe has not been trained or a validation item
// has no frozen descriptor.
std::optional<FrozenProbeValidation> frozen_probe_validation(const CatalogStore& store,
                                                             const std::vector<LabelledKey>& train,
                                                             const std::vector<LabelledKey>& validation,
                                                             const std::vector<std::string>& classes);

}  // namespace lookalike
