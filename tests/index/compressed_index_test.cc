// The compressed indexes (IVF-PQ, HNSW over SQ8, both re-ranked from float16 copies) against
// exact search on clustered vectors: recall, exact scores, filters of every selectivity,
// removals, and a snapshot round trip.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <functional>
#include <random>
#include <set>

#include "common/error.h"
#include "common/vectors.h"
#include "index/vector_index.h"
#include "support/test_support.h"

namespace lookalike {
namespace {

constexpr size_t kD = 64, kN = 3000, kQueries = 60;

// Points around 60 centres, like descriptors of a catalog's look-alike groups.
std::vector<float> clustered_vectors(size_t n, uint32_t seed) {
  const auto centres = testing::random_unit_vectors(60, kD, seed);
  std::mt19937 rng(seed + 1);
  std::normal_distribution<float> noise(0.0f, 0.08f);
  std::vector<float> v(n * kD);
  for (size_t i = 0; i < n; ++i) {
    const float* c = centres.data() + (rng() % 60) * kD;
    for (size_t j = 0; j < kD; ++j) v[i * kD + j] = c[j] + noise(rng);
    l2_normalise(v.data() + i * kD, kD);
  }
  return v;
}

std::set<int64_t> ids_of(const std::vector<Neighbour>& found) {
  std::set<int64_t> ids;
  for (const auto& n : found) ids.insert(n.id);
  return ids;
}

// IVF-PQ with each of its code layouts (4-bit fast-scan blocks, 8-bit codes), and HNSW.
struct Variant {
  IndexKind kind;
  size_t pq_bits;
  const char* name;
};

class CompressedIndexTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    vectors_ = clustered_vectors(kN, 11);
    for (size_t i = 0; i < kN; ++i) ids_.push_back(static_cast<int64_t>(10 + i));
    index_ = build_index(options(), kD, kN, ids_.data(), vectors_.data());
    exact_ = make_flat_index(kD);
    exact_->add(kN, ids_.data(), vectors_.data());
    queries_ = clustered_vectors(kQueries, 12);
  }
  static IndexOptions options() {
    IndexOptions options;
    options.kind = GetParam().kind;
    options.pq_bits = GetParam().pq_bits;
    options.pq_bytes = 16;  // 4 dimensions per code byte, as 64 bytes are for 1,024 dimensions
    return options;
  }
  IndexKind kind() const { return GetParam().kind; }
  // Mean share of the exact top k the index finds.
  double recall(const SearchParams& params) const {
    const auto want = exact_->search(kQueries, queries_.data(), params);
    const auto got = index_->search(kQueries, queries_.data(), params);
    double sum = 0;
    for (size_t q = 0; q < kQueries; ++q) {
      const auto expected = ids_of(want[q]), found = ids_of(got[q]);
      size_t hit = 0;
      for (int64_t id : found) hit += expected.count(id);
      sum += expected.empty() ? 1.0 : static_cast<double>(hit) / static_cast<double>(expected.size());
    }
    return sum / kQueries;
  }
  std::vector<float> vectors_, queries_;
  std::vector<int64_t> ids_;
  std::unique_ptr<VectorIndex> index_, exact_;
};

TEST_P(CompressedIndexTest, IsTheKindAskedForAndFindsWhatExactSearchFinds) {
  EXPECT_EQ(index_->kind(), kind());
  if (kind() == IndexKind::kIvfPq) {
    const std::string layout = GetParam().pq_bits == 4 ? "x4fs" : "x8 ";
    EXPECT_NE(index_->parameters().find(layout), std::string::npos) << index_->parameters();
  }
  EXPECT_EQ(index_->size(), kN);
  EXPECT_FALSE(index_->parameters().empty());
  SearchParams params;
  params.k = 12;
  EXPECT_GE(recall(params), 0.95);
}

TEST_P(CompressedIndexTest, ScoresAreExactInnerProductsInDecreasingOrder) {
  SearchParams params;
  params.k = 12;
  const auto found = index_->search(1, queries_.data(), params).front();
  ASSERT_EQ(found.size(), 12u);
  for (size_t j = 0; j < found.size(); ++j) {
    const float* v = vectors_.data() + static_cast<size_t>(found[j].id - 10) * kD;
    EXPECT_NEAR(found[j].score, dot(queries_.data(), v, kD), 2e-3);
    if (j > 0) {
      EXPECT_LE(found[j].score, found[j - 1].score);
    }
  }
  const auto stored = index_->vector(ids_[7]);
  ASSERT_EQ(stored.size(), kD);
  for (size_t j = 0; j < kD; ++j) EXPECT_NEAR(stored[j], vectors_[7 * kD + j], index_->vector_tolerance());
}

TEST_P(CompressedIndexTest, FiltersHoldAtEverySelectivity) {
  for (const int64_t every : {6, 100}) {  // a sixth of the items, and 1%
    SearchParams params;
    params.k = 12;
    params.accept = [every](int64_t id) { return id % every == 0; };
    params.expected_accepted = kN / static_cast<size_t>(every);
    for (const auto& found : index_->search(kQueries, queries_.data(), params)) {
      EXPECT_EQ(found.size(), 12u);
      for (const auto& n : found) EXPECT_EQ(n.id % every, 0) << n.id;
    }
    EXPECT_GE(recall(params), every == 100 ? 0.999 : 0.9) << "1 in " << every;
  }
  // A selective filter over more rows than the exact scan takes: the list scan, which picks a
  // list's rows before scoring them when a filter admits this few (1/40).
  IndexOptions lists_only;
  lists_only.exact_subset = 10;
  index_->set_search_options(lists_only);
  SearchParams rare;
  rare.k = 12;
  rare.accept = [](int64_t id) { return id % 40 == 0; };
  rare.expected_accepted = kN / 40;
  for (const auto& found : index_->search(kQueries, queries_.data(), rare)) {
    EXPECT_EQ(found.size(), 12u);
    for (const auto& n : found) EXPECT_EQ(n.id % 40, 0) << n.id;
  }
  EXPECT_GE(recall(rare), 0.9);
  if (kind() == IndexKind::kIvfPq) {
    // Picking rows first changes which rows are scored, not their distances: with every list
    // probed and no more candidates than k, it returns what the same filter returns when told
    // it admits a quarter (scored first, the filter asked after).
    lists_only.nprobe = 100000;
    lists_only.rerank = 12;
    index_->set_search_options(lists_only);
    SearchParams told_broad = rare;
    told_broad.expected_accepted = kN / 4;
    const auto picked = index_->search(kQueries, queries_.data(), rare);
    const auto scored = index_->search(kQueries, queries_.data(), told_broad);
    for (size_t q = 0; q < kQueries; ++q) EXPECT_EQ(ids_of(picked[q]), ids_of(scored[q])) << q;
  }
  // A filter whose size the caller does not know still returns only accepted ids.
  SearchParams unknown;
  unknown.accept = [](int64_t id) { return id % 50 == 0; };
  const auto found = index_->search(1, queries_.data(), unknown).front();
  EXPECT_FALSE(found.empty());
  for (const auto& n : found) EXPECT_EQ(n.id % 50, 0);
}

// Tags (a category per row) restrict searches as the same filter would: on the widened list
// scan and on the exact scan of a small subset, alone and with `accept`. A re-tag moves a row,
// untagged rows are in no tagged search, and a tag no row holds finds nothing.
TEST_P(CompressedIndexTest, TagsRestrictSearchesAsTheSameFilterWould) {
  constexpr int64_t kMoved = 11;  // row 1, tag 6, re-tagged 2
  const auto tag_of = [](int64_t id) -> uint32_t {
    if (id == kMoved) return 2;
    return id % 7 == 0 ? 0 : static_cast<uint32_t>(id % 6 + 1);
  };
  std::vector<int64_t> tagged;
  std::vector<uint32_t> tags;
  for (const int64_t id : ids_) {
    if (id % 7 == 0) continue;
    tagged.push_back(id);
    tags.push_back(static_cast<uint32_t>(id % 6 + 1));
  }
  for (VectorIndex* index : {index_.get(), exact_.get()}) {
    index->set_tags(tagged.size(), tagged.data(), tags.data());
    const uint32_t two = 2;
    index->set_tags(1, &kMoved, &two);
  }
  IndexOptions small_subsets;
  small_subsets.exact_subset = 100;  // a sixth (500 rows) scans lists, 100 rows are scanned exactly
  index_->set_search_options(small_subsets);
  struct Case {
    uint32_t tag;
    std::function<bool(int64_t)> accept;
    size_t expected;
    bool follows = false;  // SearchParams::filter_follows_query: a narrower widening
  };
  const std::vector<Case> cases = {{2, nullptr, kN / 6},
                                   {3, nullptr, kN / 6, true},
                                   {5, [](int64_t id) { return id % 4 != 0; }, kN / 6},
                                   {2, [](int64_t id) { return id % 5 == 0; }, kN / 30}};
  for (const Case& c : cases) {
    SearchParams params;
    params.k = 12;
    params.tag = c.tag;
    params.accept = c.accept;
    params.expected_accepted = c.expected;
    params.filter_follows_query = c.follows;
    for (const auto& found : index_->search(kQueries, queries_.data(), params)) {
      EXPECT_EQ(found.size(), 12u);
      for (const auto& n : found) {
        EXPECT_EQ(tag_of(n.id), c.tag) << n.id;
        if (c.accept) {
          EXPECT_TRUE(c.accept(n.id)) << n.id;
        }
      }
    }
    EXPECT_GE(recall(params), 0.9) << "tag " << c.tag << " expecting " << c.expected;
  }
  SearchParams own;
  own.k = 1;
  own.tag = 2;
  own.expected_accepted = kN / 6;
  EXPECT_EQ(index_->search(1, vectors_.data() + kD, own).front().front().id, kMoved);
  own.tag = 6;
  EXPECT_NE(index_->search(1, vectors_.data() + kD, own).front().front().id, kMoved);
  own.tag = 99;
  EXPECT_TRUE(index_->search(1, vectors_.data() + kD, own).front().empty());
}

// Rows added one at a time and then tagged, as the service adds an item, join their tag's
// searches; fast-scan lists whose added rows outgrow their tag order are ordered again (with 4
// lists, about 250 rows each here) without losing or mixing up a row.
TEST_P(CompressedIndexTest, RowsAddedAndTaggedOnlineJoinTheirTagsSearches) {
  IndexOptions options = CompressedIndexTest::options();
  options.nlist = 4;
  const auto index = build_index(options, kD, kN, ids_.data(), vectors_.data());
  const auto tag_of = [](int64_t id) { return static_cast<uint32_t>(id % 6 + 1); };
  std::vector<uint32_t> tags;
  for (const int64_t id : ids_) tags.push_back(tag_of(id));
  index->set_tags(kN, ids_.data(), tags.data());
  exact_->set_tags(kN, ids_.data(), tags.data());
  constexpr size_t kFresh = 1200;
  const auto fresh = clustered_vectors(kFresh, 14);
  for (size_t i = 0; i < kFresh; ++i) {
    const auto id = static_cast<int64_t>(200000 + i);
    const uint32_t tag = tag_of(id);
    for (VectorIndex* into : {index.get(), exact_.get()}) {
      into->add(1, &id, fresh.data() + i * kD);
      into->set_tags(1, &id, &tag);
    }
  }
  IndexOptions wide;
  wide.nprobe = 4;
  wide.rerank = 400;
  wide.exact_subset = 100;
  index->set_search_options(wide);
  for (uint32_t tag = 1; tag <= 6; ++tag) {
    SearchParams params;
    params.k = 12;
    params.tag = tag;
    params.expected_accepted = (kN + kFresh) / 6;
    const auto want = exact_->search(kQueries, queries_.data(), params);
    const auto got = index->search(kQueries, queries_.data(), params);
    double hits = 0;
    for (size_t q = 0; q < kQueries; ++q) {
      const auto expected = ids_of(want[q]);
      for (const auto& n : got[q]) {
        EXPECT_EQ(tag_of(n.id), tag) << n.id;
        hits += static_cast<double>(expected.count(n.id));
      }
    }
    EXPECT_GE(hits / (12.0 * kQueries), 0.9) << "tag " << tag;
  }
  for (size_t i = 0; i < kFresh; i += 97) {
    SearchParams own;
    own.k = 1;
    own.tag = tag_of(static_cast<int64_t>(200000 + i));
    own.expected_accepted = (kN + kFresh) / 6;
    const auto found = index->search(1, fresh.data() + i * kD, own).front();
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found.front().id, static_cast<int64_t>(200000 + i));
  }
}

TEST_P(CompressedIndexTest, RemovedIdsAreNeverReturnedAndMayComeBack) {
  SearchParams params;
  params.k = 5;
  const auto before = index_->search(1, vectors_.data(), params).front();
  ASSERT_EQ(before.front().id, ids_[0]);
  std::vector<int64_t> gone;
  for (const auto& n : before) gone.push_back(n.id);
  EXPECT_EQ(index_->remove(gone), gone.size());
  EXPECT_EQ(index_->remove(gone), 0u);
  EXPECT_EQ(index_->size(), kN - gone.size());
  EXPECT_TRUE(index_->vector(gone.front()).empty());
  const auto ids = index_->ids();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), gone.front()), 0);
  const auto after = index_->search(1, vectors_.data(), params).front();
  for (const auto& n : after) {
    EXPECT_EQ(std::count(gone.begin(), gone.end(), n.id), 0);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), n.id), 1) << n.id;  // a live id, not a removed row
  }
  index_->add(1, &gone.front(), vectors_.data());  // the same id again, as a new row
  EXPECT_EQ(index_->search(1, vectors_.data(), params).front().front().id, gone.front());
  EXPECT_THROW(index_->add(1, &ids_[100], vectors_.data()), Error);
}

TEST_P(CompressedIndexTest, SnapshotRoundTripKeepsResultsAndRemovals) {
  index_->remove({ids_[3], ids_[4]});
  const auto copy = deserialize_index(index_->serialize());
  EXPECT_EQ(copy->kind(), kind());
  EXPECT_EQ(copy->size(), kN - 2);
  EXPECT_EQ(copy->parameters(), index_->parameters());
  SearchParams params;
  params.k = 12;
  const auto a = index_->search(kQueries, queries_.data(), params);
  const auto b = copy->search(kQueries, queries_.data(), params);
  for (size_t q = 0; q < kQueries; ++q) {
    ASSERT_EQ(a[q].size(), b[q].size());
    for (size_t j = 0; j < a[q].size(); ++j) EXPECT_EQ(a[q][j].id, b[q][j].id);
  }
  EXPECT_TRUE(copy->vector(ids_[3]).empty());
  const std::string bytes = index_->serialize();
  EXPECT_THROW(deserialize_index(bytes.substr(0, bytes.size() / 2)), Error);
  EXPECT_THROW(deserialize_index(bytes.substr(0, 20)), Error);
}

// Serving loads snapshots from files, streamed: the same index, and a damaged file is refused.
TEST_P(CompressedIndexTest, SnapshotFileLoadsAsTheSameIndexAndATruncatedOneIsRefused) {
  testing::TempDir dir;
  const auto path = dir.path() / "index.bin";
  const std::string bytes = index_->serialize();
  testing::write_bytes(path, bytes);
  const auto copy = load_index_file(path.string());
  EXPECT_EQ(copy->size(), kN);
  EXPECT_EQ(copy->parameters(), index_->parameters());
  SearchParams params;
  params.k = 12;
  const auto a = index_->search(kQueries, queries_.data(), params);
  const auto b = copy->search(kQueries, queries_.data(), params);
  for (size_t q = 0; q < kQueries; ++q) EXPECT_EQ(ids_of(a[q]), ids_of(b[q]));
  for (const size_t cut : {bytes.size() - 1, bytes.size() / 2, size_t{30}}) {
    testing::write_bytes(path, bytes.substr(0, cut));
    EXPECT_THROW(load_index_file(path.string()), Error) << cut;
  }
  EXPECT_THROW(load_index_file((dir.path() / "absent.bin").string()), Error);
}

// The float16 copies are sealed apart: open_index_file checks the rest and maps them unread,
// leaving their check to the caller (serve does it once ready); load_index_file and
// deserialize_index check both. A damaged byte before the copies is refused at once. A snapshot
// sealed whole (by an older build) is checked whole.
TEST_P(CompressedIndexTest, SnapshotCopiesAreSealedApartAndCheckedWhenAsked) {
  testing::TempDir dir;
  const auto path = (dir.path() / "index.bin").string();
  const std::string bytes = index_->serialize();
  constexpr size_t kSeal = 32;
  const size_t copies = kN * kD * sizeof(uint16_t), copies_at = bytes.size() - kSeal - copies;
  testing::write_bytes(path, bytes);
  {
    IndexFile opened = open_index_file(path);
    ASSERT_TRUE(opened.unchecked.has_value());
    EXPECT_EQ(opened.unchecked->size(), copies);
    EXPECT_TRUE(opened.unchecked->intact());
    EXPECT_EQ(opened.index->size(), kN);
  }
  auto flipped = [&](const std::string& from, size_t at) {
    std::string damaged = from;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x04);
    return damaged;
  };
  // The copies, and the CRC sealed for them.
  for (const size_t at : {copies_at, copies_at + copies / 2, copies_at + copies - 1, bytes.size() - 12}) {
    testing::write_bytes(path, flipped(bytes, at));
    IndexFile opened = open_index_file(path);
    ASSERT_TRUE(opened.unchecked.has_value()) << at;
    EXPECT_FALSE(opened.unchecked->intact()) << at;
    EXPECT_THROW(load_index_file(path), Error) << at;
    EXPECT_THROW(deserialize_index(flipped(bytes, at)), Error) << at;
  }
  for (const size_t at :
       {size_t{20}, copies_at - 1, bytes.size() - kSeal + 1, bytes.size() - kSeal + 9, bytes.size() - 1}) {
    testing::write_bytes(path, flipped(bytes, at));
    EXPECT_THROW(open_index_file(path), Error) << at;
  }
  // The version-1 seal: "LKSEAL01", then the CRC-32 of every byte.
  std::string whole = bytes.substr(0, bytes.size() - kSeal);
  const uint64_t crc = crc32_z(0, reinterpret_cast<const Bytef*>(whole.data()), whole.size());
  whole += std::string("LKSEAL01") + std::string(reinterpret_cast<const char*>(&crc), sizeof crc);
  testing::write_bytes(path, whole);
  {
    IndexFile opened = open_index_file(path);
    EXPECT_FALSE(opened.unchecked.has_value());
    EXPECT_EQ(opened.index->size(), kN);
    EXPECT_EQ(deserialize_index(whole)->size(), kN);
  }
  testing::write_bytes(path, flipped(whole, copies_at + 5));
  EXPECT_THROW(open_index_file(path), Error);
}

// A loaded snapshot serves its float16 copies from the file, mapped: none in the process's
// memory, the same vectors and results; rows added since sit in memory until the next snapshot,
// which is the same bytes whatever is mapped, and which the index then maps instead.
TEST_P(CompressedIndexTest, SnapshotFileCopiesAreMappedAndRowsAddedSinceMoveToTheNextSnapshot) {
  testing::TempDir dir;
  const auto first = (dir.path() / "first.bin").string(), second = (dir.path() / "second.bin").string();
  index_->remove({ids_[7]});
  save_index_file(*index_, first);
  EXPECT_EQ(testing::read_bytes(first), index_->serialize());
  const auto loaded = load_index_file(first);
  EXPECT_EQ(loaded->mapped_copy_bytes(), kN * kD * sizeof(uint16_t));
  EXPECT_EQ(loaded->exact_copy_bytes(), 0u);
  for (const int64_t id : {ids_[0], ids_[1234], ids_[kN - 1]})
    EXPECT_EQ(loaded->vector(id), index_->vector(id));

  const auto more = clustered_vectors(40, 21);
  std::vector<int64_t> more_ids(40);
  for (size_t i = 0; i < more_ids.size(); ++i) more_ids[i] = static_cast<int64_t>(100000 + i);
  for (auto* index : {index_.get(), loaded.get()}) {
    index->add(more_ids.size(), more_ids.data(), more.data());
    index->remove({ids_[8], more_ids[3]});
  }
  EXPECT_EQ(loaded->exact_copy_bytes(), 40 * kD * sizeof(uint16_t));
  EXPECT_EQ(loaded->serialize(), index_->serialize());
  SearchParams params;
  params.k = 12;
  const auto want = index_->search(kQueries, queries_.data(), params);
  auto same_results = [&](const VectorIndex& index) {
    const auto got = index.search(kQueries, queries_.data(), params);
    for (size_t q = 0; q < kQueries; ++q) EXPECT_EQ(ids_of(got[q]), ids_of(want[q])) << q;
    EXPECT_EQ(index.vector(more_ids[5]), index_->vector(more_ids[5]));
    EXPECT_EQ(index.vector(ids_[2]), index_->vector(ids_[2]));
  };
  same_results(*loaded);

  save_index_file(*loaded, second);
  ASSERT_TRUE(loaded->map_snapshot(second));
  EXPECT_EQ(loaded->mapped_copy_bytes(), (kN + 40) * kD * sizeof(uint16_t));
  EXPECT_EQ(loaded->exact_copy_bytes(), 0u);
  same_results(*loaded);
  same_results(*load_index_file(second));
  EXPECT_FALSE(loaded->map_snapshot(first)) << "a snapshot of other rows is not mapped";
  same_results(*loaded);
}

// Snapshots written before the copies could be mapped (version 01: FAISS's float16 index) still
// load, from bytes and from a file, and are written in the current layout.
TEST(CompressedIndexSnapshotTest, SnapshotsOfTheFirstLayoutStillLoad) {
  for (const char* name : {"ivfpq", "ivfpq-fastscan", "hnsw", "ivfpq-parts"}) {
    const auto path = std::string(LOOKALIKE_SOURCE_DIR) + "/fuzz/corpus/index_snapshot/" + name;
    const std::string bytes = testing::read_bytes(path);
    ASSERT_EQ(bytes.substr(0, 8), "LKIDXC01") << name;
    const auto from_bytes = deserialize_index(bytes);
    const auto from_file = load_index_file(path);
    EXPECT_EQ(from_file->mapped_copy_bytes(), 0u) << name;
    const auto rewritten = deserialize_index(from_bytes->serialize());
    const std::vector<float> query(from_bytes->dimension(), 0.5f);
    SearchParams params;
    params.k = 4;
    const auto want = from_bytes->search(1, query.data(), params).front();
    EXPECT_FALSE(want.empty()) << name;
    for (const auto* index : {from_file.get(), rewritten.get()}) {
      EXPECT_EQ(ids_of(index->search(1, query.data(), params).front()), ids_of(want)) << name;
      for (const auto& n : want) EXPECT_EQ(index->vector(n.id), from_bytes->vector(n.id)) << name;
    }
  }
}

// A few rows added at a time find their IVF list by another route than a batch (see add_to_part).
// With one list probed, a row is found by its own vector only if it sits in the list nearest to
// it, which is the list the query probes.
TEST_P(CompressedIndexTest, RowsAddedOneAtATimeOrInABatchSitInTheirNearestList) {
  IndexOptions narrow;
  narrow.nprobe = 1;
  narrow.rerank = 1;
  if (kind() == IndexKind::kIvfPq) index_->set_search_options(narrow);  // HNSW has no lists
  const auto fresh = clustered_vectors(60, 13);
  std::vector<int64_t> fresh_ids;
  for (size_t i = 0; i < 60; ++i) fresh_ids.push_back(static_cast<int64_t>(100000 + i));
  for (size_t i = 0; i < 30; ++i) index_->add(1, &fresh_ids[i], fresh.data() + i * kD);
  index_->add(30, fresh_ids.data() + 30, fresh.data() + 30 * kD);
  SearchParams params;
  params.k = 1;
  for (size_t i = 0; i < 60; ++i) {
    const auto found = index_->search(1, fresh.data() + i * kD, params).front();
    ASSERT_EQ(found.size(), 1u) << i;
    EXPECT_EQ(found.front().id, fresh_ids[i]) << i;
  }
}

// One query at a time takes another route to the IVF lists (its own BLAS product over the
// centroids, not FAISS's batched search): it must find what the batch finds.
TEST_P(CompressedIndexTest, ASingleQueryFindsWhatTheSameQueryInABatchFinds) {
  SearchParams params;
  params.k = 12;
  const auto batch = index_->search(kQueries, queries_.data(), params);
  for (size_t q = 0; q < kQueries; ++q) {
    const auto alone = index_->search(1, queries_.data() + q * kD, params);
    ASSERT_EQ(alone[0].size(), batch[q].size());
    for (size_t j = 0; j < batch[q].size(); ++j) {
      EXPECT_EQ(alone[0][j].id, batch[q][j].id) << q << " " << j;
      EXPECT_NEAR(alone[0][j].score, batch[q][j].score, 1e-5f);
    }
  }
}

// A blended version's vectors are [head, frozen] and its queries weigh one half (ranking, or
// the instance tier): with parts, each half is routed by its own coarse structure.
TEST_P(CompressedIndexTest, QueriesThatWeighOnePartFindWhatExactSearchFinds) {
  // Two independent clustered halves, each scaled to 1/sqrt(2) as ServingState::combine does.
  const auto head = clustered_vectors(kN, 21), frozen = clustered_vectors(kN, 31);
  std::vector<float> combined(kN * 2 * kD);
  for (size_t i = 0; i < kN; ++i) {
    for (size_t j = 0; j < kD; ++j) {
      combined[i * 2 * kD + j] = head[i * kD + j] / std::sqrt(2.0f);
      combined[i * 2 * kD + kD + j] = frozen[i * kD + j] / std::sqrt(2.0f);
    }
  }
  IndexOptions options = CompressedIndexTest::options();
  options.parts = {kD, kD};
  const auto index = build_index(options, 2 * kD, kN, ids_.data(), combined.data());
  EXPECT_NE(index->parameters().find("part 64d"), std::string::npos) << index->parameters();
  auto exact = make_flat_index(2 * kD);
  exact->add(kN, ids_.data(), combined.data());
  const auto probes = clustered_vectors(kQueries, 41);
  SearchParams params;
  params.k = 12;
  for (const size_t half : {size_t{0}, kD}) {
    std::vector<float> queries(kQueries * 2 * kD, 0.0f);
    for (size_t q = 0; q < kQueries; ++q) {
      for (size_t j = 0; j < kD; ++j) queries[q * 2 * kD + half + j] = probes[q * kD + j] * std::sqrt(2.0f);
    }
    const auto want = exact->search(kQueries, queries.data(), params);
    const auto got = index->search(kQueries, queries.data(), params);
    double hits = 0;
    for (size_t q = 0; q < kQueries; ++q) {
      const auto expected = ids_of(want[q]);
      for (const auto& n : got[q]) hits += static_cast<double>(expected.count(n.id));
    }
    EXPECT_GE(hits / (12.0 * kQueries), 0.95) << "half at " << half;
  }
  EXPECT_EQ(deserialize_index(index->serialize())->parameters(), index->parameters());
}

INSTANTIATE_TEST_SUITE_P(Kinds, CompressedIndexTest,
                         ::testing::Values(Variant{IndexKind::kIvfPq, 4, "ivfpq"},
                                           Variant{IndexKind::kIvfPq, 8, "ivfpq8"},
                                           Variant{IndexKind::kHnsw, 8, "hnsw"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(IndexKindTest, AutoIsExactBelowTheThresholdAndCompressedFromIt) {
  IndexOptions options;
  options.exact_below = 500;
  EXPECT_EQ(resolve_index_kind(options, 499), IndexKind::kFlat);
  EXPECT_EQ(resolve_index_kind(options, 500), IndexKind::kIvfPq);
  options.kind = IndexKind::kHnsw;
  EXPECT_EQ(resolve_index_kind(options, 100000), IndexKind::kHnsw);
  EXPECT_EQ(resolve_index_kind(options, 10), IndexKind::kFlat);  // too few vectors to train codes on
  const auto vectors = clustered_vectors(600, 3);
  std::vector<int64_t> ids(600);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
  options.kind = IndexKind::kAuto;
  EXPECT_EQ(build_index(options, kD, 400, ids.data(), vectors.data())->kind(), IndexKind::kFlat);
  const auto compressed = build_index(options, kD, 600, ids.data(), vectors.data());
  EXPECT_EQ(compressed->kind(), IndexKind::kIvfPq);
  EXPECT_EQ(compressed->exact_copy_bytes(), 600 * kD * 2);  // the float16 copies
  EXPECT_EQ(deserialize_index(make_flat_index(kD)->serialize())->kind(), IndexKind::kFlat);
}

TEST(IndexKindTest, ProbesGrowWithTheListCountUnlessSetAndTheSettingSurvivesASnapshot) {
  EXPECT_EQ(auto_nprobe(16), 96u);
  EXPECT_EQ(auto_nprobe(2880), 96u);
  EXPECT_EQ(auto_nprobe(2881), 97u);
  EXPECT_EQ(auto_nprobe(4000), 134u);  // 1M items
  const auto vectors = clustered_vectors(600, 3);
  std::vector<int64_t> ids(600);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
  IndexOptions options;
  options.kind = IndexKind::kIvfPq;
  const auto automatic = build_index(options, kD, 600, ids.data(), vectors.data());
  EXPECT_NE(automatic->parameters().find("nprobe=auto:96"), std::string::npos) << automatic->parameters();
  EXPECT_NE(automatic->parameters().find("rerank=auto:512"), std::string::npos) << automatic->parameters();
  EXPECT_EQ(deserialize_index(automatic->serialize())->parameters(), automatic->parameters());
  IndexOptions eight_bit = options;  // coarser fast-scan distances re-rank 16/3 x the lists, 8-bit 4 x
  eight_bit.pq_bits = 8;
  const auto automatic8 = build_index(eight_bit, kD, 600, ids.data(), vectors.data());
  EXPECT_NE(automatic8->parameters().find("rerank=auto:384"), std::string::npos) << automatic8->parameters();
  options.nprobe = 8;
  options.rerank = 50;
  const auto set = build_index(options, kD, 600, ids.data(), vectors.data());
  EXPECT_NE(set->parameters().find("nprobe=8;"), std::string::npos) << set->parameters();
  EXPECT_NE(set->parameters().find("rerank=50 "), std::string::npos) << set->parameters();
  EXPECT_EQ(deserialize_index(set->serialize())->parameters(), set->parameters());
}

TEST(IndexKindTest, NamesRoundTripAndUnknownNamesAreRefused) {
  for (IndexKind kind : {IndexKind::kAuto, IndexKind::kFlat, IndexKind::kIvfPq, IndexKind::kHnsw})
    EXPECT_EQ(parse_index_kind(index_kind_name(kind)), kind);
  try {
    parse_index_kind("ivf");
    FAIL() << "accepted 'ivf'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("auto, flat, ivfpq or hnsw"), std::string::npos);
  }
}

}  // namespace
}  // namespace lookalike
