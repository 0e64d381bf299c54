// What an int8 forward needs to know about a network's activations: the largest value each
// tensor took over a sample of photos (a calibration pass, DnnlNetwork::calibrate). Scales are
// derived from it when the int8 primitives are built; stored as JSON so the service layer can
// keep it with a model version (the same photos give the same calibration).
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace lookalike {

struct Int8Calibration {
  std::string model;                 // ModelManifest::name of the network it was measured on
  size_t images = 0;                 // images measured
  std::map<std::string, float> max;  // tensor name -> largest value seen (>= 0: after a ReLU)

  nlohmann::json to_json() const;
  // Throws Error(kInvalidArgument) naming what is missing or malformed.
  static Int8Calibration from_json(const nlohmann::json& doc);
};

}  // namespace lookalike
