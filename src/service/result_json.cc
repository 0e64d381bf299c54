#include "service/result_json.h"

#include <cmath>

#include "image/product_colour.h"

namespace lookalike {
namespace {

double round_to(double v, double step) {
  return std::round(v / step) * step;
}

}  // namespace

nlohmann::json item_json(const Item& item, const ImageUrlFn& image_url) {
  nlohmann::json j{{"id", item.id},
                   {"category", item.category},
                   {"file_name", item.file_name},
                   {"image_url", image_url(item)},
                   {"width", item.width},
                   {"height", item.height},
                   {"sha256", item.sha256},
                   {"added_at", item.added_at}};
  nlohmann::json metadata{
      {"title", item.metadata.title}, {"url", item.metadata.url}, {"attributes", item.metadata.attributes}};
  metadata["price"] = item.metadata.price ? nlohmann::json(*item.metadata.price) : nlohmann::json(nullptr);
  j["metadata"] = metadata;
  j["colors"] = colours_json(item.colours);
  return j;
}

nlohmann::json colours_json(const std::vector<float>& signature) {
  nlohmann::json out = nlohmann::json::array();
  if (!valid_colour_signature(signature)) return out;
  for (size_t i = 0; i < signature.size(); i += kColourRowValues) {
    const LabColour lab{signature[i + 1], signature[i + 2], signature[i + 3]};
    out.push_back({{"share", round_to(signature[i], 1e-3)},
                   {"lab", {round_to(lab.l, 0.01), round_to(lab.a, 0.01), round_to(lab.b, 0.01)}},
                   {"hex", srgb_hex(lab)}});
  }
  return out;
}

nlohmann::json prediction_json(const Prediction& p) {
  nlohmann::json probabilities = nlohmann::json::object();
  for (const auto& [name, prob] : p.probabilities) probabilities[name] = round_to(prob, 1e-5);
  return {{"category", p.category.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.category)},
          {"confidence", round_to(p.confidence, 1e-5)},
          {"probabilities", probabilities}};
}

nlohmann::json timings_json(const Timings& t) {
  return {{"decode", round_to(t.decode_ms, 1e-3)},
          {"model", round_to(t.model_ms, 1e-3)},
          {"classify", round_to(t.classify_ms, 1e-3)},
          {"search", round_to(t.search_ms, 1e-3)},
          {"total", round_to(t.total_ms, 1e-3)}};
}

nlohmann::json query_result_json(const QueryResult& r, const ImageUrlFn& image_url) {
  nlohmann::json query = prediction_json(r.prediction);
  query["searched"] = r.searched;
  query["fallback_used"] = r.fallback_used;
  query["model_version"] = r.embedding.version;
  if (!r.embedding.colours.empty()) query["colors"] = colours_json(r.embedding.colours);
  nlohmann::json results = nlohmann::json::array();
  for (const auto& hit : r.hits) {
    auto j = item_json(hit.item, image_url);
    j["score"] = round_to(hit.score, 1e-6);
    j["similarity"] = round_to(hit.similarity, 1e-4);
    if (hit.same_item) j["same_item"] = true;
    if (hit.colour_similarity) j["color_similarity"] = round_to(*hit.colour_similarity, 1e-4);
    if (!hit.copies.empty()) {
      j["hidden_copies"] = hit.copies.size();
      j["copy_ids"] = hit.copies;
    }
    results.push_back(std::move(j));
  }
  return {{"query", query}, {"results", results}, {"timings_ms", timings_json(r.timings)}};
}

nlohmann::json copy_groups_json(const std::vector<std::vector<Item>>& groups, size_t offset, size_t limit,
                                const ImageUrlFn& image_url) {
  nlohmann::json page = nlohmann::json::array();
  size_t items_in_groups = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    items_in_groups += groups[g].size();
    if (g < offset || g - offset >= limit) continue;
    nlohmann::json items = nlohmann::json::array();
    for (const auto& item : groups[g]) items.push_back(item_json(item, image_url));
    page.push_back({{"items", std::move(items)}});
  }
  return {{"groups", std::move(page)},
          {"offset", offset},
          {"limit", limit},
          {"total", groups.size()},
          {"items_in_groups", items_in_groups}};
}

nlohmann::json inference_json(const InferenceInfo& i) {
  nlohmann::json j = {{"engine", i.engine}, {"precision", i.precision}, {"isa", i.isa}};
  if (!i.note.empty()) j["note"] = i.note;
  return j;
}

nlohmann::json stats_json(const CatalogStats& s) {
  nlohmann::json categories = nlohmann::json::array();
  for (const auto& c : s.categories) categories.push_back({{"name", c.name}, {"count", c.count}});
  nlohmann::json doc = {{"items", s.items},
                        {"store", s.store},
                        {"categories", categories},
                        {"descriptor_dimension", s.descriptor_dimension},
                        {"index_dimension", s.index_dimension},
                        {"trained", s.trained},
                        {"classifier", s.classifier},
                        {"classifier_cv_accuracy", s.classifier_cv_accuracy},
                        {"model", s.model_id},
                        {"revision", s.revision},
                        {"model_version", s.model_version},
                        {"frozen_blend_weight", s.frozen_blend_weight},
                        {"frozen_search_weight", s.frozen_search_weight},
                        {"instance_threshold", s.instance_threshold},
                        {"instance_margin", s.instance_margin},
                        {"inference", inference_json(s.inference)},
                        {"index",
                         {{"type", s.index_kind},
                          {"chosen", s.index_choice},
                          {"parameters", s.index_parameters},
                          {"bytes", s.index_bytes},
                          {"exact_copy_bytes", s.index_exact_copy_bytes},
                          {"mapped_copy_bytes", s.index_mapped_copy_bytes}}}};
  if (!s.store_error.empty()) doc["store_error"] = s.store_error;
  return doc;
}

nlohmann::json versions_json(const Catalog& catalog) {
  const int64_t active = catalog.stats().model_version;
  nlohmann::json versions = nlohmann::json::array();
  versions.push_back({{"version", 0},
                      {"active", active == 0},
                      {"recipe", "frozen: GeM mixed5..9, PCA-whitening, linear probe"},
                      {"cross_validated_accuracy", catalog.frozen_cv_accuracy()},
                      {"evaluation", catalog.evaluation(0)}});
  for (const auto& v : catalog.versions()) {
    nlohmann::json entry{
        {"version", v.version}, {"active", v.version == active}, {"created_at", v.created_at}};
    for (const char* key : {"recipe", "classes", "train_photos", "validation_photos", "best_epoch",
                            "validation_accuracy", "frozen_validation_accuracy", "frozen_blend_weight",
                            "blended_validation_accuracy", "auto_min_confidence", "seed", "seconds"}) {
      if (v.info.contains(key)) entry[key] = v.info[key];
    }
    entry["evaluation"] = v.info.value("evaluation", nlohmann::json());  // the store keeps it in info
    versions.push_back(std::move(entry));
  }
  return {{"active", active}, {"versions", versions}};
}

}  // namespace lookalike
