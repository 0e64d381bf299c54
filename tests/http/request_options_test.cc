#include "http/request_options.h"

#include "http/image_fetch.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace lookalike {
namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.what();
  }
  return "";
}

TEST(SearchOptions, ParsesEveryOption) {
  const auto q = parse_search_options_text(R"({"k": 30, "category": "coat", "min_confidence": 0.7,
      "filters": {"categories": ["coat", "dress"], "price": {"min": 10, "max": 60}, "attributes": {"colour": "red"}},
      "crop": {"x": 1, "y": 2, "w": 30, "h": 40}})");
  EXPECT_EQ(q.k, 30u);
  EXPECT_EQ(q.category, "coat");
  EXPECT_FLOAT_EQ(*q.min_confidence, 0.7f);
  EXPECT_EQ(q.filter.categories.size(), 2u);
  EXPECT_EQ(*q.filter.price_max, 60);
  EXPECT_EQ(q.filter.attributes.at("colour"), "red");
  EXPECT_EQ(*q.crop, cv::Rect(1, 2, 30, 40));
  EXPECT_EQ(parse_search_options_text("").k, 12u);
  EXPECT_EQ(parse_search_options_text(R"({"k": 12.0})").k, 12u);
}

TEST(SearchOptions, RefusesBadValuesWithTheFieldName) {
  EXPECT_NE(error_of([] { parse_search_options_text("{"); }).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of([] { parse_search_options_text("[]"); }).find("must be a JSON object"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_search_options_text(R"({"k": 0})"); }).find("'k' must be within 1..500"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_search_options_text(R"({"k": 501})"); }).find("1..500"), std::string::npos);
  EXPECT_NE(error_of([] { parse_search_options_text(R"({"k": "12"})"); }).find("'k' must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_search_options_text(R"({"k": 2.5})"); }).find("'k' must be an integer"),
            std::string::npos);
  // Integral but far outside int64: once an undefined float-to-integer cast (found by
  // fuzz/request_options_fuzz.cc), which also mislabelled the error.
  EXPECT_NE(error_of([] { parse_search_options_text(R"({"k": 1e300})"); }).find("'k' must be within 1..500"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_search_options_text(R"({"crop": {"x": -1e300, "y": 0, "w": 1, "h": 1}})");
            }).find("'crop.x' must be within"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_search_options_text(R"({"kk": 2})"); }).find("unknown option 'kk'"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_search_options_text(R"({"min_confidence": 2})"); }).find("0..1"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_search_options_text(R"({"filters": {"price": {"max": "cheap"}}})");
            }).find("filters.price.max"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_search_options_text(R"({"filters": {"price": {"min": 9, "max": 1}}})");
            }).find("greater than"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_search_options_text(R"({"crop": {"x": 1, "y": 2, "w": 0, "h": 4}})");
            }).find("crop.w"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_search_options_text(R"({"crop": {"x": 1}})"); }).find("'crop' needs 'y'"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_search_options_text(R"({"category": ""})"); }).find("'category'"),
            std::string::npos);
}

TEST(SearchOptions, ColourWeightIsANumberWithinZeroAndOne) {
  EXPECT_FLOAT_EQ(parse_search_options_text(R"({"color_weight": 0.35})").colour_weight, 0.35f);
  EXPECT_FLOAT_EQ(parse_search_options_text(R"({"color_weight": 1})").colour_weight, 1.0f);
  EXPECT_FLOAT_EQ(parse_search_options_text("{}").colour_weight, 0.0f);
  EXPECT_NE(error_of([] {
              parse_search_options_text(R"({"color_weight": 1.5})");
            }).find("'color_weight' must be within 0..1"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_search_options_text(R"({"color_weight": -0.1})"); }).find("0..1"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_search_options_text(R"({"color_weight": "red"})");
            }).find("'color_weight' must be a number"),
            std::string::npos);
  EXPECT_FLOAT_EQ(parse_fraction("color_weight", "0.5"), 0.5f);
  EXPECT_FLOAT_EQ(parse_fraction("color_weight", "1"), 1.0f);
  for (const char* bad : {"", "2", "-1", "0.5x", "nan", "inf", " 0.5", "1e400"})
    EXPECT_NE(error_of([bad] {
                parse_fraction("color_weight", bad);
              }).find("'color_weight' must be a number within 0..1"),
              std::string::npos)
        << bad;
}

TEST(SeedSetting, MatchesTheOriginalContract) {
  const auto s = parse_seed_setting(R"({"output_limit": 30, "on_cnn": true})");
  EXPECT_EQ(s.output_limit, 30u);
  EXPECT_TRUE(s.on_cnn);
  EXPECT_NE(error_of([] { parse_seed_setting("{bad"); }).find("'setting' is not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_seed_setting(R"({"on_cnn": true})"); }).find("needs 'output_limit'"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_seed_setting(R"({"output_limit": "12", "on_cnn": true})");
            }).find("must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_seed_setting(R"({"output_limit": 501, "on_cnn": true})"); }).find("1..500"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_seed_setting(R"({"output_limit": 5, "on_cnn": "yes"})");
            }).find("'on_cnn' must be true or false"),
            std::string::npos);
}

TEST(QueryParameters, ParseCount) {
  EXPECT_EQ(parse_count("k", "30", 1, 500), 30u);
  EXPECT_NE(error_of([] { parse_count("k", "", 1, 500); }).find("'k' must be an integer within 1..500"),
            std::string::npos);
  EXPECT_FALSE(error_of([] { parse_count("k", "3x", 1, 500); }).empty());
  EXPECT_FALSE(error_of([] { parse_count("k", "-1", 1, 500); }).empty());
  EXPECT_FALSE(error_of([] { parse_count("k", "99999999999999999999999", 1, 500); }).empty());
}

TEST(Base64, DecodesPlainAndDataUrls) {
  EXPECT_EQ(decode_base64("aGVsbG8=", 100), "hello");
  EXPECT_EQ(decode_base64("aGVs\nbG8h", 100), "hello!");
  EXPECT_EQ(decode_base64("data:image/png;base64,aGk=", 100), "hi");
  EXPECT_NE(error_of([] { decode_base64("a$==", 100); }).find("outside the base64 alphabet"),
            std::string::npos);
  EXPECT_NE(error_of([] { decode_base64("abc", 100); }).find("multiple of 4"), std::string::npos);
  EXPECT_NE(error_of([] { decode_base64("", 100); }).find("empty"), std::string::npos);
  try {
    decode_base64(std::string(400, 'A'), 100);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPayloadTooLarge);
  }
}

}  // namespace
}  // namespace lookalike

namespace lookalike {
namespace {

TEST(ImageFetch, ClassifiesPrivateAddresses) {
  for (const char* a :
       {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.1.1", "100.64.0.1",
        "0.0.0.0", "::1", "::", "fe80::1", "fd00::1", "::ffff:10.0.0.1", "not-an-ip"}) {
    EXPECT_TRUE(is_private_address(a)) << a;
  }
  for (const char* a : {"8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:4860::8888", "::ffff:8.8.8.8"}) {
    EXPECT_FALSE(is_private_address(a)) << a;
  }
}

TEST(ImageFetch, RefusesWithoutAllowListAndBadUrls) {
  FetchPolicy off;
  EXPECT_NE(error_of([&] { fetch_image("http://cdn.example.com/a.jpg", off); }).find("disabled"),
            std::string::npos);
  FetchPolicy on;
  on.allowed_hosts = {"cdn.example.com"};
  EXPECT_NE(error_of([&] {
              fetch_image("http://other.example.com/a.jpg", on);
            }).find("not on this server's allow-list"),
            std::string::npos);
  for (const char* url :
       {"ftp://cdn.example.com/a.jpg", "http://", "cdn.example.com/a.jpg", "http://cdn.example.com:99999/a",
        "http://user@cdn.example.com/a.jpg", "http://cdn.example.com/a b.jpg"}) {
    EXPECT_NE(error_of([&] { fetch_image(url, on); }).find("'image_url'"), std::string::npos) << url;
  }
  on.allowed_hosts = {"localhost"};
  EXPECT_NE(error_of([&] { fetch_image("http://localhost:1/a.jpg", on); }).find("private address"),
            std::string::npos);
}

}  // namespace
}  // namespace lookalike
