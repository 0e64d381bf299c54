#include "model/model_manifest.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "support/test_support.h"

namespace lookalike {
namespace {

using testing::TempDir;
using testing::write_bytes;

constexpr const char* kValid = R"({
  "name": "tiny", "onnx": "tiny.onnx",
  "input": {"name": "x", "width": 64, "height": 32, "colour": "bgr", "scale": 0.5,
            "mean": [1, 2, 3], "std": [1, 1, 2], "resize": "stretch_bilinear"},
  "outputs": ["a", "b"], "descriptor": {"gem_p": 2}
})";

TEST(ModelManifest, LoadsEveryField) {
  TempDir dir;
  write_bytes(dir.path() / "m.json", kValid);
  const auto m = ModelManifest::load((dir.path() / "m.json").string());
  EXPECT_EQ(m.name, "tiny");
  EXPECT_EQ(m.onnx_path, (dir.path() / "tiny.onnx").string());
  EXPECT_EQ(m.width, 64);
  EXPECT_EQ(m.height, 32);
  EXPECT_TRUE(m.bgr);
  EXPECT_FLOAT_EQ(m.scale, 0.5f);
  EXPECT_FLOAT_EQ(m.std[2], 2.f);
  EXPECT_EQ(m.resize, ResizePolicy::kStretchBilinear);
  EXPECT_EQ(m.outputs, (std::vector<std::string>{"a", "b"}));
  EXPECT_FLOAT_EQ(m.gem_p, 2.f);
}

void expect_error(const std::string& text, const std::string& fragment) {
  TempDir dir;
  write_bytes(dir.path() / "m.json", text);
  try {
    ModelManifest::load((dir.path() / "m.json").string());
    FAIL() << "expected an error mentioning " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ModelManifest, NamesTheBadField) {
  expect_error("{", "not valid JSON");
  expect_error(R"({"name": "x"})", "missing field 'onnx'");
  std::string bad_colour = kValid;
  bad_colour.replace(bad_colour.find("\"bgr\""), 5, "\"cmyk\"");
  expect_error(bad_colour, "colour must be rgb or bgr");
  std::string bad_std = kValid;
  bad_std.replace(bad_std.find("[1, 1, 2]"), 9, "[1, 0, 2]");
  expect_error(bad_std, "std values must be > 0");
  std::string bad_width = kValid;
  bad_width.replace(bad_width.find("\"width\": 64"), 11, "\"width\": \"64\"");
  expect_error(bad_width, "'width' has the wrong type");
}

// Found by fuzz/model_manifest_fuzz.cc (inputs in fuzz/corpus/model_manifest/regression-*): a
// number too large for a double made the JSON parser throw out_of_range, which escaped as a
// non-Error exception; an integer field holding 1e300 was converted with undefined behaviour,
// and 4294967304 wrapped to a valid width of 8.
TEST(ModelManifest, RefusesNumbersOutOfRange) {
  expect_error(R"({"name": 888e8888})", "not valid JSON");
  std::string huge = kValid;
  huge.replace(huge.find("\"width\": 64"), 11, "\"width\": 1e300");
  expect_error(huge, "field 'width' is out of range");
  std::string wraps = kValid;
  wraps.replace(wraps.find("\"width\": 64"), 11, "\"width\": 4294967304");
  expect_error(wraps, "field 'width' is out of range");
  std::string boolean = kValid;
  boolean.replace(boolean.find("\"width\": 64"), 11, "\"width\": true");
  expect_error(boolean, "'width' has the wrong type");
}

TEST(ModelManifest, EngineFieldIsOptionalAndChecked) {
  TempDir dir;
  write_bytes(dir.path() / "m.json", kValid);
  EXPECT_EQ(ModelManifest::load((dir.path() / "m.json").string()).engine, ModelManifest{}.engine);
  std::string dnnl = kValid;
  dnnl.replace(dnnl.find("\"outputs\""), 0, "\"engine\": \"dnnl\", ");
  write_bytes(dir.path() / "m.json", dnnl);
  EXPECT_EQ(ModelManifest::load((dir.path() / "m.json").string()).engine, InferenceEngine::kDnnl);
  std::string opencv = kValid;
  opencv.replace(opencv.find("\"outputs\""), 0, "\"engine\": \"opencv\", ");
  write_bytes(dir.path() / "m.json", opencv);
  EXPECT_EQ(ModelManifest::load((dir.path() / "m.json").string()).engine, InferenceEngine::kOpenCv);
  std::string unknown = kValid;
  unknown.replace(unknown.find("\"outputs\""), 0, "\"engine\": \"tpu\", ");
  expect_error(unknown, "unknown inference engine 'tpu' (opencv or dnnl)");
}

TEST(ModelManifest, MissingFileIsNotFound) {
  try {
    ModelManifest::load("/nonexistent/model.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

}  // namespace
}  // namespace lookalike
