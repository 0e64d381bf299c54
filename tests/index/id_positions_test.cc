// IdPositions keeps dense ids in an array and any other id in a hash map; both answer alike.
#include "index/id_positions.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace lookalike {
namespace {

TEST(IdPositions, DenseIdsCostEightBytesEach) {
  IdPositions rows;
  for (int64_t id = 0; id < 100000; ++id) rows.insert(id, id * 2);
  EXPECT_EQ(rows.size(), 100000u);
  EXPECT_EQ(*rows.find(77777), 155554);
  EXPECT_FALSE(rows.find(100000));
  EXPECT_LE(rows.bytes(), 100000u * 8 * 3 / 2 + 4096 * 8);  // the array, with its growth room
}

TEST(IdPositions, FarNegativeAndRepeatedIdsWork) {
  IdPositions rows;
  rows.insert(int64_t{1} << 40, 0);  // far past the array: the hash map
  rows.insert(-5, 1);
  rows.insert(3, 2);
  rows.insert(3, 7);  // again: moves
  EXPECT_EQ(rows.size(), 3u);
  EXPECT_EQ(*rows.find(int64_t{1} << 40), 0);
  EXPECT_EQ(*rows.find(-5), 1);
  EXPECT_EQ(*rows.find(3), 7);
  EXPECT_TRUE(rows.erase(-5));
  EXPECT_FALSE(rows.erase(-5));
  EXPECT_FALSE(rows.contains(-5));
  EXPECT_EQ(rows.size(), 2u);
}

// Random inserts and erases of ids from a wide range, checked against std::map: ids first kept
// in the hash map are found after the array grows over them.
TEST(IdPositions, AgreesWithAMapUnderRandomWrites) {
  std::mt19937_64 rng(5);
  IdPositions rows;
  std::map<int64_t, int64_t> expected;
  for (int step = 0; step < 200000; ++step) {
    const int64_t id = static_cast<int64_t>(rng() % 60000) - 100;
    if (rng() % 3 == 0) {
      EXPECT_EQ(rows.erase(id), expected.erase(id) == 1);
    } else {
      rows.insert(id, step);
      expected[id] = step;
    }
  }
  ASSERT_EQ(rows.size(), expected.size());
  for (int64_t id = -200; id < 60100; ++id) {
    const auto it = expected.find(id);
    const auto found = rows.find(id);
    ASSERT_EQ(found.has_value(), it != expected.end()) << id;
    if (found) {
      EXPECT_EQ(*found, it->second) << id;
    }
  }
}

}  // namespace
}  // namespace lookalike
