// Answers queries against the live serving state: a photo (decoded, optionally cropped,
// embedded with its mirror image), an earlier query's embedding, or a stored item. Thread-safe;
// searches run concurrently and never wait for a write's commit.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <opencv2/core.hpp>

#include "image/image_decoder.h"
#include "service/model_pools.h"
#include "service/query.h"
#include "service/serving_state.h"

namespace lookalike {

// The block of the descriptor model whose maps the trained head takes as input.
inline constexpr const char* kHeadInputBlock = "mixed7";

// Query expansion: the ranking query is moved toward its best `neighbours` results, each
// weighted by its score to `power`, and the first search's best `pool` results are rescored
// and reordered by it (see CatalogOptions::expansion).
struct QueryExpansion {
  size_t neighbours = 3;  // 0: off
  float power = 3.0f;
  size_t pool = 100;
};

struct SearcherOptions {
  bool flip_queries = true;             // see CatalogOptions::flip_queries
  std::optional<float> min_confidence;  // see CatalogOptions::min_confidence
  DecodeOptions decode;
  QueryExpansion expansion;
};

class Searcher {
 public:
  // Keeps references: all three must outlive the searcher.
  Searcher(LiveState& live, const CatalogStore& store, ModelPools& models, SearcherOptions options);

  QueryResult search_image(std::string_view image_bytes, const QueryOptions& options);
  // Throws Error(kConflict) when embedding.version is no longer active.
  QueryResult search_embedding(const QueryEmbedding& embedding, const QueryOptions& options);
  // "More like this" from a stored item, excluding the item itself. Throws Error(kNotFound).
  QueryResult similar(const std::string& id, const QueryOptions& options);

 private:
  QueryEmbedding embed_query(const cv::Mat& rgb);
  QueryResult run_query(const QueryEmbedding& embedding, const QueryOptions& options,
                        std::optional<int64_t> exclude, Timings timings,
                        std::chrono::steady_clock::time_point started) const;
  std::string category_to_search(const ServingState& state, const QueryOptions& options,
                                 QueryResult& result) const;

  LiveState& live_;
  const CatalogStore& store_;
  ModelPools& models_;
  SearcherOptions options_;
};

}  // namespace lookalike
