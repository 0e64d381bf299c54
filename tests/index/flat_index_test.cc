#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "common/files.h"
#include "common/vectors.h"
#include "index/vector_index.h"
#include "support/test_support.h"

namespace lookalike {
namespace {

using testing::random_unit_vectors;
using testing::TempDir;

class FlatIndexTest : public ::testing::Test {
 protected:
  static constexpr size_t kD = 16, kN = 50;
  void SetUp() override {
    vectors_ = random_unit_vectors(kN, kD, 5);
    for (size_t i = 0; i < kN; ++i) ids_.push_back(static_cast<int64_t>(1000 + i * 3));
    index_ = make_flat_index(kD);
    index_->add(kN, ids_.data(), vectors_.data());
  }
  std::vector<float> vectors_;
  std::vector<int64_t> ids_;
  std::unique_ptr<VectorIndex> index_;
};

TEST_F(FlatIndexTest, FindsEachVectorFirstWithScoreOne) {
  SearchParams params;
  params.k = 5;
  const auto results = index_->search(kN, vectors_.data(), params);
  for (size_t i = 0; i < kN; ++i) {
    ASSERT_EQ(results[i].size(), 5u);
    EXPECT_EQ(results[i][0].id, ids_[i]);
    EXPECT_NEAR(results[i][0].score, 1.f, 1e-5);
    for (size_t j = 1; j < 5; ++j) EXPECT_LE(results[i][j].score, results[i][j - 1].score);
  }
}

TEST_F(FlatIndexTest, FilterRestrictsResults) {
  SearchParams params;
  params.k = 10;
  params.accept = [](int64_t id) { return id % 2 == 0; };
  const auto results = index_->search(1, vectors_.data() + kD, params);  // ids_[1] = 1003 is odd
  ASSERT_EQ(results[0].size(), 10u);
  for (const auto& n : results[0]) EXPECT_EQ(n.id % 2, 0);
  params.accept = [](int64_t id) { return id == 1006; };
  const auto one = index_->search(1, vectors_.data(), params);
  ASSERT_EQ(one[0].size(), 1u);
  EXPECT_EQ(one[0][0].id, 1006);
}

TEST_F(FlatIndexTest, RemoveKeepsOtherIdsAddressable) {
  EXPECT_EQ(index_->remove({ids_[0], ids_[10], 424242}), 2u);
  EXPECT_EQ(index_->size(), kN - 2);
  EXPECT_TRUE(index_->vector(ids_[0]).empty());
  SearchParams params;
  params.k = 1;
  for (size_t i : {1, 11, 49}) {
    const auto r = index_->search(1, vectors_.data() + i * kD, params);
    EXPECT_EQ(r[0][0].id, ids_[i]);
  }
  EXPECT_EQ(index_->vector(ids_[11]),
            std::vector<float>(vectors_.begin() + 11 * kD, vectors_.begin() + 12 * kD));
}

// Tags stay with their rows when a remove compacts the others, and restrict like a filter;
// rows added later are untagged until tagged, and an untagged row is in no tagged search.
TEST_F(FlatIndexTest, TagsRestrictResultsAndFollowTheirRowsThroughRemovals) {
  std::vector<uint32_t> tags(kN);
  for (size_t i = 0; i < kN; ++i) tags[i] = static_cast<uint32_t>(i % 3 + 1);
  index_->set_tags(kN, ids_.data(), tags.data());
  ASSERT_EQ(index_->remove({ids_[0], ids_[4]}), 2u);
  const int64_t added = 7;
  index_->add(1, &added, vectors_.data() + 5 * kD);  // row 5's vector again, untagged
  SearchParams params;
  params.k = kN;
  params.tag = 3;  // rows 2, 5, 8, ...
  const auto found = index_->search(1, vectors_.data() + 5 * kD, params).front();
  ASSERT_EQ(found.size(), kN / 3);  // 16 rows with tag 3, none of them removed
  EXPECT_EQ(found.front().id, ids_[5]);
  for (const auto& n : found) EXPECT_EQ((n.id - 1000) / 3 % 3, 2) << n.id;
  const uint32_t three = 3;
  index_->set_tags(1, &added, &three);
  params.accept = [](int64_t id) { return id < 1000; };
  const auto now = index_->search(1, vectors_.data() + 5 * kD, params).front();
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now.front().id, added);
}

TEST_F(FlatIndexTest, RefusesDuplicateIds) {
  EXPECT_THROW(index_->add(1, ids_.data(), vectors_.data()), Error);
  EXPECT_EQ(index_->size(), kN);
}

TEST_F(FlatIndexTest, SerialisationRoundTrips) {
  const auto copy = deserialize_index(index_->serialize());
  EXPECT_EQ(copy->size(), kN);
  SearchParams params;
  params.k = 3;
  const auto a = index_->search(2, vectors_.data(), params), b = copy->search(2, vectors_.data(), params);
  for (size_t q = 0; q < 2; ++q) {
    for (size_t j = 0; j < 3; ++j) {
      EXPECT_EQ(a[q][j].id, b[q][j].id);
      EXPECT_EQ(a[q][j].score, b[q][j].score);
    }
  }
}

TEST_F(FlatIndexTest, CorruptBytesAreReportedNotCrashed) {
  std::string bytes = index_->serialize();
  EXPECT_THROW(deserialize_index(bytes.substr(0, bytes.size() / 2)), Error);
  EXPECT_THROW(deserialize_index("xx"), Error);
  bytes[0] = '\xff';
  bytes[7] = '\x7f';
  EXPECT_THROW(deserialize_index(bytes), Error);
}

// A snapshot carries a CRC-32 seal: any damaged byte is refused before FAISS reads a length from
// it (FAISS allocates what a length says: one flipped byte asked for gigabytes when fuzzed).
TEST_F(FlatIndexTest, SealRefusesAnyDamagedByteAndUnsealedBytes) {
  const std::string bytes = index_->serialize();
  EXPECT_NE(deserialize_index(bytes), nullptr);
  // The seal's words too: a flat index has nothing sealed apart, whose CRC must then be 0.
  for (const size_t at : {size_t{0}, bytes.size() / 2, bytes.size() - 30, bytes.size() - 20,
                          bytes.size() - 12, bytes.size() - 1}) {
    std::string damaged = bytes;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x10);
    try {
      deserialize_index(damaged);
      ADD_FAILURE() << "a flipped byte at " << at << " was read";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruptStore) << at;
    }
  }
  try {
    deserialize_index(bytes.substr(0, bytes.size() - 32));  // the index without its seal
    ADD_FAILURE() << "unsealed bytes were read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not sealed"), std::string::npos) << e.what();
  }
  TempDir dir;
  const auto path = dir.path() / "index.bin";
  std::string damaged = bytes;
  damaged[bytes.size() / 2] ^= 0x01;
  write_file_atomic(path.string(), damaged);
  try {
    load_index_file(path.string());
    ADD_FAILURE() << "a damaged file was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
  write_file_atomic(path.string(), bytes);
  EXPECT_EQ(load_index_file(path.string())->size(), index_->size());
}

TEST(FlatIndex, EmptyIndexReturnsNothing) {
  auto index = make_flat_index(4);
  const float q[4] = {1, 0, 0, 0};
  SearchParams params;
  EXPECT_TRUE(index->search(1, q, params)[0].empty());
}

}  // namespace
}  // namespace lookalike
