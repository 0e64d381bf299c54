#include "service/import_source.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "support/test_support.h"

namespace lookalike {
namespace {

using testing::TempDir;
using testing::write_bytes;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ImportSource, FolderOfCategoriesGivesStableIds) {
  TempDir dir;
  write_bytes(dir.path() / "coat" / "1.jpg", "x");
  write_bytes(dir.path() / "coat" / "10.JPG", "x");
  write_bytes(dir.path() / "Dress Shirts" / "a b.png", "x");
  write_bytes(dir.path() / "coat" / "notes.txt", "x");
  write_bytes(dir.path() / "loose.webp", "x");
  const auto entries = scan_import_source(dir.str());
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].id, "loose");
  EXPECT_EQ(entries[0].category, "");
  EXPECT_EQ(entries[1].id, "dress-shirts-a-b");
  EXPECT_EQ(entries[1].category, "Dress Shirts");
  EXPECT_EQ(entries[2].id, "coat-1");
  EXPECT_EQ(entries[2].file_name, "1.jpg");
  EXPECT_EQ(entries[3].id, "coat-10");
}

TEST(ImportSource, CollidingSlugsGetSuffixes) {
  TempDir dir;
  write_bytes(dir.path() / "a" / "x.jpg", "x");
  write_bytes(dir.path() / "a" / "x.png", "x");
  const auto entries = scan_import_source(dir.str());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_NE(entries[0].id, entries[1].id);
}

TEST(ImportSource, MissingAndEmptyFoldersAreClearErrors) {
  EXPECT_NE(error_of([] { scan_import_source("/nonexistent/catalog"); }).find("no such file or folder"),
            std::string::npos);
  TempDir empty;
  EXPECT_NE(error_of([&] { scan_import_source(empty.str()); }).find("holds no photos"), std::string::npos);
  write_bytes(empty.path() / "readme.txt", "x");
  EXPECT_NE(error_of([&] { scan_import_source(empty.str()); }).find("only 1 other files"), std::string::npos);
  write_bytes(empty.path() / "list.xml", "x");
  EXPECT_NE(
      error_of([&] { scan_import_source((empty.path() / "list.xml").string()); }).find(".csv or a .jsonl"),
      std::string::npos);
}

TEST(ImportSource, CsvManifestWithQuotesAndAttributes) {
  const std::string csv =
      "id,image,category,title,price,url,colour\n"
      "sku-1,img/a.jpg,coat,\"Wool coat, long\",59.90,https://shop/a,navy\n"
      "sku-2,/abs/b.png,dress,,,,\n";
  const auto entries = parse_manifest(csv, false, "/base", "m.csv");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].path, "/base/img/a.jpg");
  EXPECT_EQ(entries[0].metadata.title, "Wool coat, long");
  EXPECT_EQ(entries[0].metadata.price, 59.9);
  EXPECT_EQ(entries[0].metadata.attributes["colour"], "navy");
  EXPECT_EQ(entries[1].path, "/abs/b.png");
  EXPECT_FALSE(entries[1].metadata.price);
}

TEST(ImportSource, JsonlManifest) {
  const std::string jsonl =
      R"({"id": "a", "image": "a.jpg", "category": "coat", "price": 12, "attributes": {"size": 38}})"
      "\n\n"
      R"({"image": "sub/b.jpg", "on_sale": true})"
      "\n";
  const auto entries = parse_manifest(jsonl, true, "/base", "m.jsonl");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].metadata.price, 12);
  EXPECT_EQ(entries[0].metadata.attributes["size"], 38);
  EXPECT_EQ(entries[1].id, "sub-b");
  EXPECT_EQ(entries[1].metadata.attributes["on_sale"], true);
}

TEST(ImportSource, ManifestErrorsNameFileAndLine) {
  auto csv_error = [](const std::string& text) {
    return error_of([&] { parse_manifest(text, false, "/", "m.csv"); });
  };
  EXPECT_NE(csv_error("id,title\na,b\n").find("m.csv:1: the header needs an 'image' column"),
            std::string::npos);
  EXPECT_NE(csv_error("image,price\na.jpg,cheap\n").find("m.csv:2: price 'cheap'"), std::string::npos);
  EXPECT_NE(csv_error("image,price\na.jpg\n").find("m.csv:2: 1 fields"), std::string::npos);
  EXPECT_NE(csv_error("image\n\"unterminated\n").find("malformed CSV"), std::string::npos);
  EXPECT_NE(csv_error("id,image\nx,a.jpg\nx,b.jpg\n").find("id 'x' appears twice"), std::string::npos);
  EXPECT_NE(csv_error("id,image\nbad/id,a.jpg\n").find("must be 1-200 characters"), std::string::npos);
  auto jsonl_error = [](const std::string& text) {
    return error_of([&] { parse_manifest(text, true, "/", "m.jsonl"); });
  };
  EXPECT_NE(jsonl_error("{\"image\": \"a.jpg\"}\n[1]\n").find("m.jsonl:2: not a JSON object"),
            std::string::npos);
  EXPECT_NE(jsonl_error("{\"title\": \"x\"}\n").find("missing 'image'"), std::string::npos);
  EXPECT_NE(jsonl_error("{\"image\": \"a.jpg\", \"price\": -1}\n").find("price must be >= 0"),
            std::string::npos);
  EXPECT_NE(jsonl_error("{\"image\": \"a.jpg\", \"attributes\": {\"x\": [1]}}\n").find("attribute 'x'"),
            std::string::npos);
  EXPECT_NE(jsonl_error("\n").find("lists no photos"), std::string::npos);
}

TEST(ImportSource, SlugsAndIds) {
  EXPECT_EQ(slug("Coat/Long Wool (2).JPG"), "coat-long-wool-2-.jpg");
  EXPECT_EQ(slug("../../etc"), "etc");
  EXPECT_EQ(slug("///"), "item");
  EXPECT_TRUE(valid_item_id("coat-1"));
  EXPECT_FALSE(valid_item_id(".."));
  EXPECT_FALSE(valid_item_id("a/b"));
  EXPECT_FALSE(valid_item_id(std::string(201, 'a')));
}

}  // namespace
}  // namespace lookalike
