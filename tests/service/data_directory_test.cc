// The data directory's file layout: snapshot names written and read back, the newest chosen,
// the old format recognised and deleted, photos stored once by content.
#include "service/data_directory.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "common/error.h"
#include "support/test_support.h"

namespace lookalike {
namespace {
namespace fs = std::filesystem;

TEST(DataDirectory, SnapshotNamesRoundTripAndTheNewestIsChosen) {
  testing::TempDir tmp;
  const DataDirectory dir(tmp.str());
  for (int64_t revision : {7, 12, 9}) testing::write_bytes(dir.index_snapshot_path(0, "abc", revision), "x");
  testing::write_bytes(dir.index_snapshot_path(0, "def", 40), "x");  // another projection
  testing::write_bytes(dir.index_snapshot_path(2, "h", 50), "x");
  testing::write_bytes(tmp.path() / "index" / "v0-pabc-r13.faiss.tmp-99-0", "x");  // being written
  testing::write_bytes(tmp.path() / "index" / "notes.txt", "x");
  EXPECT_EQ(dir.index_snapshots().size(), 5u);
  const auto latest = dir.latest_index_snapshot(0, "abc");
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->revision, 12);
  EXPECT_EQ(latest->projection, "abc");
  EXPECT_EQ(latest->path, fs::path(dir.index_snapshot_path(0, "abc", 12)));
  EXPECT_FALSE(dir.latest_index_snapshot(1, "abc"));
  EXPECT_EQ(dir.latest_index_snapshot(2, "h")->revision, 50);
}

TEST(DataDirectory, RemovingAVersionsSnapshotsKeepsOneAndSparesOthersAndTemporaries) {
  testing::TempDir tmp;
  const DataDirectory dir(tmp.str());
  const std::string keep = dir.index_snapshot_path(0, "abc", 12);
  for (const std::string& f : {dir.index_snapshot_path(0, "abc", 7), keep,
                               dir.index_snapshot_path(0, "zz", 3), dir.index_snapshot_path(1, "h", 8)})
    testing::write_bytes(f, "x");
  testing::write_bytes(tmp.path() / "index" / "v0-r5.faiss", "x");  // the format before projection tags
  testing::write_bytes(tmp.path() / "index" / "v0-pabc-r13.faiss.tmp-99-0", "x");
  dir.remove_index_snapshots(0, keep);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp.path() / "index"))
    left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left,
            (std::vector<std::string>{"v0-pabc-r12.faiss", "v0-pabc-r13.faiss.tmp-99-0", "v1-ph-r8.faiss"}));
}

TEST(DataDirectory, OldFormatSnapshotsAreListedButNeverLoaded) {
  testing::TempDir tmp;
  const DataDirectory dir(tmp.str());
  testing::write_bytes(tmp.path() / "index" / "v3-r44.faiss", "x");
  const auto all = dir.index_snapshots();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].version, 3);
  EXPECT_EQ(all[0].revision, 44);
  EXPECT_EQ(all[0].projection, "");
  EXPECT_FALSE(dir.latest_index_snapshot(3, "h"));
}

TEST(DataDirectory, PhotosAreStoredOnceByContentAndRemovedWithTheirMaps) {
  testing::TempDir tmp;
  const DataDirectory dir(tmp.str());
  const std::string sha = std::string(64, 'a');
  const std::string relative = dir.store_photo("jpeg bytes", sha, ImageFormat::kJpeg);
  EXPECT_EQ(relative, "images/aa/" + sha + ".jpg");
  EXPECT_EQ(testing::read_bytes(dir.photo_path(relative)), "jpeg bytes");
  EXPECT_EQ(dir.store_photo("other bytes", sha, ImageFormat::kJpeg), relative);  // kept, not rewritten
  EXPECT_EQ(testing::read_bytes(dir.photo_path(relative)), "jpeg bytes");
  const fs::path map = fs::path(dir.feature_directory()) / "aa" / (sha + ".f16");
  testing::write_bytes(map, "map");
  dir.remove_photo(relative, sha);
  EXPECT_FALSE(fs::exists(dir.photo_path(relative)));
  EXPECT_FALSE(fs::exists(map));
}

TEST(DataDirectory, AnUncreatableRootIsAClearError) {
  testing::TempDir tmp;
  testing::write_bytes(tmp.path() / "file", "not a folder");
  try {
    DataDirectory dir((tmp.path() / "file" / "data").string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIoError);
    EXPECT_NE(std::string(e.what()).find("cannot create data directory"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lookalike
