// Copy pairs form groups: connected pairs are one group, each listed once in key order.
#include <gtest/gtest.h>

#include "service/copy_finder.h"

namespace lookalike {
namespace {

TEST(CopyGroups, ConnectedPairsFormOneGroup) {
  const CopyGroups groups({{7, 9, 1, 0}, {2, 3, 1, 0}, {3, 11, 1, 0}, {9, 20, 1, 0}, {4, 5, 1, 0}});
  ASSERT_EQ(groups.groups().size(), 3u);
  EXPECT_EQ(groups.groups()[0], (std::vector<int64_t>{2, 3, 11}));
  EXPECT_EQ(groups.groups()[1], (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(groups.groups()[2], (std::vector<int64_t>{7, 9, 20}));
  EXPECT_EQ(groups.group_of(20), groups.group_of(7));
  EXPECT_EQ(groups.group_of(6), nullptr);
  EXPECT_EQ(groups.hideable(), 5u);  // every member but one of each group: 2 + 1 + 2
}

TEST(CopyGroups, NoPairsNoGroups) {
  const CopyGroups groups(std::vector<CopyPair>{});
  EXPECT_TRUE(groups.empty());
  EXPECT_EQ(groups.hideable(), 0u);
  EXPECT_EQ(groups.group_of(1), nullptr);
}

TEST(CopyGroups, AChainJoinsItsEndsAndRepeatedPairsCountOnce) {
  const CopyGroups groups({{1, 2, 1, 0}, {2, 3, 1, 0}, {1, 2, 1, 0}, {3, 4, 1, 0}});
  ASSERT_EQ(groups.groups().size(), 1u);
  EXPECT_EQ(groups.groups()[0], (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(groups.hideable(), 3u);
}

}  // namespace
}  // namespace lookalike
