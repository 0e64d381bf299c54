#include "train/feature_cache.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "support/test_support.h"

namespace lookalike {
namespace {
namespace fs = std::filesystem;

TEST(FeatureCache, StoresMapsAsFloat16AndReadsThemBack) {
  testing::TempDir dir;
  const FeatureCache cache(dir.str(), {3, 2, 2});
  std::vector<float> map(cache.values());
  for (size_t i = 0; i < map.size(); ++i) map[i] = 0.37f * float(i) - 1.5f;
  const std::string sha = "ab" + std::string(62, '0');
  EXPECT_FALSE(cache.contains(sha, false));
  cache.put(sha, false, map.data());
  EXPECT_TRUE(cache.contains(sha, false));
  EXPECT_FALSE(cache.contains(sha, true));  // the flipped map is a separate entry
  std::vector<float> back(cache.values());
  ASSERT_TRUE(cache.get(sha, false, back.data()));
  for (size_t i = 0; i < map.size(); ++i) EXPECT_NEAR(back[i], map[i], 1e-3 * (1 + std::abs(map[i])));
  EXPECT_EQ(cache.count(), 1u);
}

TEST(FeatureCache, TreatsTornOrForeignFilesAsMissing) {
  testing::TempDir dir;
  const FeatureCache cache(dir.str(), {3, 2, 2});
  std::vector<float> map(cache.values(), 1.f), back(cache.values());
  const std::string sha = "cd" + std::string(62, '1');
  cache.put(sha, true, map.data());
  const fs::path file = dir.path() / "cd" / (sha + ".flip.f16");
  ASSERT_TRUE(fs::exists(file));
  // A map of another shape (another model) is not this cache's.
  const FeatureCache other(dir.str(), {2, 3, 2});
  EXPECT_FALSE(other.get(sha, true, back.data()));
  // Truncated: absent, not garbage.
  fs::resize_file(file, fs::file_size(file) - 1);
  EXPECT_FALSE(cache.contains(sha, true));
  EXPECT_FALSE(cache.get(sha, true, back.data()));
  // Right size, wrong header.
  testing::write_bytes(file, std::string(cache.bytes_per_map(), 'x'));
  EXPECT_FALSE(cache.get(sha, true, back.data()));
}

}  // namespace
}  // namespace lookalike
