// The real server binary on 127.0.0.1 (ephemeral port) over a small imported subset of the
// sample catalog: every endpoint, the seed /process_image contract, a battery of bad inputs,
// and concurrency.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "support/test_support.h"

namespace lookalike {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kToken = "test-admin-token-0123456789";

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::dataset_dir().empty()) return;
    dir_ = new testing::TempDir();
    testing::make_subset(dir_->path() / "photos", 6);
    const auto import =
        testing::run_lookalike({"--data", data(), "import", (dir_->path() / "photos").string()});
    ASSERT_EQ(import.status, 0) << import.err;
    pid_ = testing::start_lookalike(
        {"--data", data(), "serve", "--port", "0", "--workers", "40", "--max-upload-mb", "2",
         "--request-timeout", "5", "--cors-origin", "https://shop.example", "--fetch-allow-host", "127.0.0.1",
         "--fetch-allow-private"},
        out_path(), err_path(), {std::string("LOOKALIKE_ADMIN_TOKEN=") + kToken});
    ASSERT_GT(pid_, 0);
    // Generous: the model load alone takes tens of seconds on a loaded 2-core machine.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
    const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
    std::smatch m;
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string out = testing::read_bytes(out_path());
      if (port_ == 0 && std::regex_search(out, m, listening)) port_ = std::stoi(m[1]);
      if (port_ != 0) {
        auto res = client().Get("/readyz");
        if (res && res->status == 200) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "server did not become ready within 240 s (port " << port_
           << "); stdout: " << testing::read_bytes(out_path())
           << "\nstderr: " << testing::read_bytes(err_path());
  }
  static void TearDownTestSuite() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      const int status = testing::wait_process(pid_);
      EXPECT_EQ(status, 0) << "SIGTERM must stop the server cleanly; stderr: "
                           << testing::read_bytes(err_path());
    }
    delete dir_;
  }
  void SetUp() override {
    LOOKALIKE_REQUIRE_DATASET();
    ASSERT_NE(port_, 0);
  }

  static std::string data() { return (dir_->path() / "data").string(); }
  static std::string out_path() { return (dir_->path() / "server.out").string(); }
  static std::string err_path() { return (dir_->path() / "server.err").string(); }
  static httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    c.set_write_timeout(60, 0);
    return c;
  }
  static std::vector<fs::path> photos(const std::string& category) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir_->path() / "photos" / category))
      files.push_back(fs::canonical(e.path()));
    std::sort(files.begin(), files.end());
    return files;
  }
  static std::string photo(const std::string& category, size_t i) {
    return testing::read_bytes(photos(category).at(i));
  }

  static httplib::Result search(const std::string& image, const std::string& options = "") {
    httplib::MultipartFormDataItems items{{"image", image, "q.jpg", "image/jpeg"}};
    if (!options.empty()) items.push_back({"options", options, "", ""});
    return client().Post("/api/v1/search", items);
  }

  static void expect_error(const httplib::Result& res, int status, const std::string& code) {
    ASSERT_TRUE(res) << "no response";
    EXPECT_EQ(res->status, status) << res->body;
    const auto doc = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << res->body;
    EXPECT_EQ(doc["error"]["code"], code) << res->body;
    EXPECT_FALSE(doc["error"]["message"].get<std::string>().empty());
  }

  static void expect_still_serving() {
    const auto res = search(photo("coat", 0));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
  }

  static testing::TempDir* dir_;
  static int pid_;
  static int port_;
};

testing::TempDir* ServerTest::dir_ = nullptr;
int ServerTest::pid_ = -1;
int ServerTest::port_ = 0;

TEST_F(ServerTest, ProcessImageKeepsTheSeedContract) {
  httplib::MultipartFormDataItems items{{"filepath", photo("dress", 2), "dress.jpg", "image/jpeg"},
                                        {"setting", R"({"output_limit": 5, "on_cnn": false})", "", ""}};
  const auto res = client().Post("/process_image", items);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  const auto doc = json::parse(res->body);
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 5u);
  for (const auto& r : doc) {
    ASSERT_TRUE(r["path"].is_string());
    ASSERT_TRUE(r["class"].is_string());
    EXPECT_TRUE(std::regex_match(r["path"].get<std::string>(), std::regex(R"(\d+\.jpg)"))) << r;
    EXPECT_EQ(r["url"], "/static/img/" + r["class"].get<std::string>() + "/" + r["path"].get<std::string>());
    EXPECT_TRUE(r["score"].is_number());
    EXPECT_TRUE(r["id"].is_string());
  }
  EXPECT_EQ(doc[0]["class"], "dress");
  EXPECT_EQ(doc[0]["path"], photos("dress")[2].filename().string());
  // The image behind the seed URL is the catalog photo, byte for byte.
  const auto image = client().Get(doc[0]["url"].get<std::string>());
  ASSERT_TRUE(image);
  EXPECT_EQ(image->status, 200);
  EXPECT_EQ(image->get_header_value("Content-Type"), "image/jpeg");
  EXPECT_EQ(image->body, photo("dress", 2));

  items[1].content = R"({"output_limit": 6, "on_cnn": true})";
  const auto cnn = client().Post("/process_image", items);
  ASSERT_EQ(cnn->status, 200);
  const auto restricted = json::parse(cnn->body);
  ASSERT_EQ(restricted.size(), 6u);
  for (const auto& r : restricted) EXPECT_EQ(r["class"], restricted[0]["class"]);
}

TEST_F(ServerTest, SearchAnswersMultipartAndBase64) {
  const auto res = search(photo("hood", 1), R"({"k": 4, "category": "all"})");
  ASSERT_EQ(res->status, 200) << res->body;
  const auto doc = json::parse(res->body);
  EXPECT_TRUE(doc["query"]["category"].is_string());
  EXPECT_EQ(doc["query"]["probabilities"].size(), 6u);
  EXPECT_EQ(doc["query"]["searched"], "all");
  EXPECT_FALSE(doc["query"]["fallback_used"]);
  ASSERT_EQ(doc["results"].size(), 4u);
  EXPECT_GT(doc["results"][0]["score"].get<double>(), 0.98);  // the photo itself, flip-averaged
  for (const char* key : {"id", "score", "category", "image_url", "metadata"})
    EXPECT_TRUE(doc["results"][0].contains(key));
  for (const char* key : {"decode", "model", "classify", "search", "total"})
    EXPECT_GT(doc["timings_ms"][key], 0.0);

  const json body{{"image_base64", base64(photo("hood", 1))}, {"options", {{"k", 2}}}};
  const auto b64 = client().Post("/api/v1/search", body.dump(), "application/json");
  ASSERT_EQ(b64->status, 200) << b64->body;
  EXPECT_EQ(json::parse(b64->body)["results"][0]["id"], doc["results"][0]["id"]);

  // image_url: this server allow-lists itself (127.0.0.1, private addresses allowed).
  const std::string own_image = "http://127.0.0.1:" + std::to_string(port_) + "/api/v1/items/" +
                                doc["results"][0]["id"].get<std::string>() + "/image";
  const json by_url_body{{"image_url", own_image}, {"options", {{"k", 1}}}};
  const auto by_url = client().Post("/api/v1/search", by_url_body.dump(), "application/json");
  ASSERT_EQ(by_url->status, 200) << by_url->body;
  EXPECT_EQ(json::parse(by_url->body)["results"][0]["id"], doc["results"][0]["id"]);

  const auto cropped =
      search(photo("hood", 1), R"({"crop": {"x": 10, "y": 10, "w": 60, "h": 60}, "category": "all"})");
  ASSERT_EQ(cropped->status, 200) << cropped->body;
  EXPECT_LT(json::parse(cropped->body)["results"][0]["score"].get<double>(), 0.9999);
}

TEST_F(ServerTest, ClassifySimilarAndReadEndpoints) {
  httplib::MultipartFormDataItems items{{"image", photo("shirts", 0), "s.jpg", "image/jpeg"}};
  const auto classify = client().Post("/api/v1/classify", items);
  ASSERT_EQ(classify->status, 200) << classify->body;
  EXPECT_EQ(json::parse(classify->body)["query"]["probabilities"].size(), 6u);

  const auto list = client().Get("/api/v1/items?category=coat&limit=3");
  ASSERT_EQ(list->status, 200) << list->body;
  const auto items_doc = json::parse(list->body);
  ASSERT_EQ(items_doc["items"].size(), 3u);
  EXPECT_EQ(items_doc["total"], 6) << "total counts the category, not the catalog";
  const std::string id = items_doc["items"][0]["id"];

  const auto item = client().Get("/api/v1/items/" + id);
  ASSERT_EQ(item->status, 200);
  EXPECT_EQ(json::parse(item->body)["category"], "coat");
  const auto image = client().Get("/api/v1/items/" + id + "/image");
  ASSERT_EQ(image->status, 200);
  EXPECT_EQ(image->get_header_value("Content-Type"), "image/jpeg");

  const auto similar = client().Get("/api/v1/items/" + id + "/similar?k=5&category=all");
  ASSERT_EQ(similar->status, 200) << similar->body;
  const auto sim = json::parse(similar->body);
  ASSERT_EQ(sim["results"].size(), 5u);
  for (const auto& r : sim["results"]) {
    EXPECT_NE(r["id"], id);
    EXPECT_FALSE(r.contains("color_similarity")) << "colour counts only when asked for";
    ASSERT_GE(r["colors"].size(), 1u) << "every item shows its dominant colours";
    EXPECT_EQ(r["colors"][0]["hex"].get<std::string>().size(), 7u);
  }
  // The colour slider's parameter: every hit then says how close its colours are.
  const auto by_colour = client().Get("/api/v1/items/" + id + "/similar?k=5&category=all&color_weight=0.5");
  ASSERT_EQ(by_colour->status, 200) << by_colour->body;
  const auto coloured = json::parse(by_colour->body);
  ASSERT_EQ(coloured["results"].size(), 5u);
  EXPECT_EQ(coloured["query"]["colors"], json::parse(item->body)["colors"]);
  for (const auto& r : coloured["results"]) {
    const double c = r["color_similarity"];
    EXPECT_TRUE(c >= 0 && c <= 1) << c;
  }

  const auto cats = json::parse(client().Get("/api/v1/categories")->body);
  EXPECT_EQ(cats["categories"].size(), 6u);
  const auto stats = json::parse(client().Get("/api/v1/stats")->body);
  EXPECT_EQ(stats["items"], 36);
  // What runs the CNN: oneDNN by default, at the precision `auto` chose for this CPU.
  EXPECT_EQ(stats["inference"]["engine"], "dnnl");
  EXPECT_TRUE(stats["inference"]["precision"] == "fp32" || stats["inference"]["precision"] == "int8");
  EXPECT_FALSE(stats["inference"]["isa"].get<std::string>().empty());
  // Which vector index answers: exact search for a catalog this small (auto's choice).
  EXPECT_EQ(stats["index"]["type"], "flat");
  EXPECT_EQ(stats["index"]["chosen"], "auto");
  EXPECT_GT(stats["index"]["bytes"].get<size_t>(), 0u);
  EXPECT_EQ(client().Get("/healthz")->status, 200);
  EXPECT_EQ(client().Get("/readyz")->status, 200);
  const auto metrics = client().Get("/metrics");
  ASSERT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("lookalike_http_requests_total{route=\"/api/v1/classify\",status=\"200\"}"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("lookalike_search_stage_duration_seconds_bucket{stage=\"model\""),
            std::string::npos);
  EXPECT_NE(metrics->body.find("lookalike_catalog_items 36"), std::string::npos);
  const auto openapi = json::parse(client().Get("/api/openapi.json")->body);
  EXPECT_EQ(openapi["openapi"], "3.0.3");
  for (const char* path :
       {"/process_image", "/api/v1/search", "/api/v1/classify", "/api/v1/items/{id}/similar", "/api/v1/items",
        "/api/v1/items/{id}", "/api/v1/categories", "/api/v1/stats", "/api/v1/models",
        "/api/v1/models/active", "/api/v1/models/{version}", "/metrics"}) {
    EXPECT_TRUE(openapi["paths"].contains(path)) << path;
  }
}

TEST_F(ServerTest, AdminWritesAreAuthenticatedDurableAndVisible) {
  const std::string image = photo("sweater", 4);
  httplib::MultipartFormDataItems items{
      {"image", image, "new.jpg", "image/jpeg"},
      {"metadata",
       R"({"id": "api-new", "category": "sweater", "title": "Knit", "price": 55, "attributes": {"colour": "grey"}})",
       "", ""}};
  expect_error(client().Post("/api/v1/items", items), 401, "unauthorized");
  httplib::Headers wrong{{"Authorization", "Bearer nope"}};
  expect_error(client().Post("/api/v1/items", wrong, items), 401, "unauthorized");
  httplib::Headers auth{{"Authorization", std::string("Bearer ") + kToken}};
  const auto created = client().Post("/api/v1/items", auth, items);
  ASSERT_EQ(created->status, 201) << created->body;
  expect_error(client().Post("/api/v1/items", auth, items), 409, "conflict");

  const auto found = search(image, R"({"category": "all", "filters": {"price": {"max": 60}}})");
  ASSERT_EQ(found->status, 200);
  const auto doc = json::parse(found->body);
  ASSERT_EQ(doc["results"].size(), 1u);
  EXPECT_EQ(doc["results"][0]["id"], "api-new");
  EXPECT_EQ(doc["results"][0]["metadata"]["title"], "Knit");

  const auto patched = client().Patch("/api/v1/items/api-new", auth, R"({"price": 70})", "application/json");
  ASSERT_EQ(patched->status, 200) << patched->body;
  EXPECT_EQ(json::parse(patched->body)["metadata"]["price"], 70);
  EXPECT_TRUE(
      json::parse(search(image, R"({"category": "all", "filters": {"price": {"max": 60}}})")->body)["results"]
          .empty());
  expect_error(client().Patch("/api/v1/items/api-new", auth, R"({"price": "free"})", "application/json"), 400,
               "invalid_argument");
  expect_error(client().Patch("/api/v1/items/api-new", auth, "{", "application/json"), 400,
               "invalid_argument");
  expect_error(client().Delete("/api/v1/items/api-new"), 401, "unauthorized");
  ASSERT_EQ(client().Delete("/api/v1/items/api-new", auth)->status, 200);
  expect_error(client().Get("/api/v1/items/api-new"), 404, "not_found");
  expect_error(client().Delete("/api/v1/items/api-new", auth), 404, "not_found");
}

// The photo at half size through JPEG quality 80: a copy as another shop would re-publish it.
std::string half_size_copy(const std::string& jpeg) {
  const cv::Mat photo = cv::imdecode(std::vector<uchar>(jpeg.begin(), jpeg.end()), cv::IMREAD_COLOR);
  cv::Mat half;
  cv::resize(photo, half, cv::Size(), 0.5, 0.5, cv::INTER_AREA);
  std::vector<uchar> bytes;
  cv::imencode(".jpg", half, bytes, {cv::IMWRITE_JPEG_QUALITY, 80});
  return {bytes.begin(), bytes.end()};
}

TEST_F(ServerTest, ACopyOfAListedPhotoCollapsesIntoItAndIsListed) {
  const std::string original = photo("dress", 2);
  const auto listed = json::parse(search(original, R"({"category": "all", "k": 1})")->body);
  const std::string original_id = listed["results"][0]["id"];
  httplib::Headers auth{{"Authorization", std::string("Bearer ") + kToken}};
  httplib::MultipartFormDataItems items{{"image", half_size_copy(original), "copy.jpg", "image/jpeg"},
                                        {"metadata", R"({"id": "dress-copy", "category": "dress"})", "", ""}};
  const auto created = client().Post("/api/v1/items", auth, items);
  ASSERT_EQ(created->status, 201) << created->body;

  // Collapsed by default: one result for the two, naming the hidden copy.
  const auto collapsed = json::parse(search(original, R"({"category": "all", "k": 5})")->body);
  ASSERT_EQ(collapsed["results"].size(), 5u);
  EXPECT_EQ(collapsed["results"][0]["id"], original_id);
  EXPECT_EQ(collapsed["results"][0]["hidden_copies"], 1);
  EXPECT_EQ(collapsed["results"][0]["copy_ids"], json::array({"dress-copy"}));
  for (const auto& hit : collapsed["results"]) EXPECT_NE(hit["id"], "dress-copy");
  // Kept apart on request, over POST and GET.
  const auto apart =
      json::parse(search(original, R"({"category": "all", "k": 5, "collapse_duplicates": false})")->body);
  std::set<std::string> ids;
  for (const auto& hit : apart["results"]) ids.insert(hit["id"]);
  EXPECT_TRUE(ids.count("dress-copy") && ids.count(original_id)) << apart.dump();
  EXPECT_FALSE(apart["results"][0].contains("hidden_copies"));
  const auto similar =
      json::parse(client().Get("/api/v1/items/" + original_id + "/similar?k=4&category=all")->body);
  for (const auto& hit : similar["results"])
    EXPECT_NE(hit["id"], "dress-copy") << "a copy is not a look-alike";
  const auto similar_apart = json::parse(
      client()
          .Get("/api/v1/items/" + original_id + "/similar?k=4&category=all&collapse_duplicates=false")
          ->body);
  EXPECT_EQ(similar_apart["results"][0]["id"], "dress-copy");

  const auto groups = client().Get("/api/v1/duplicates");
  ASSERT_EQ(groups->status, 200) << groups->body;
  const auto doc = json::parse(groups->body);
  bool found = false;
  for (const auto& group : doc["groups"]) {
    std::set<std::string> members;
    for (const auto& item : group["items"]) members.insert(item["id"]);
    found |= members == std::set<std::string>{original_id, "dress-copy"};
  }
  EXPECT_TRUE(found) << groups->body;
  EXPECT_GE(doc["items_in_groups"].get<size_t>(), 2u);

  expect_error(search(original, R"({"collapse_duplicates": "yes"})"), 400, "invalid_argument");
  expect_error(client().Get("/api/v1/items/" + original_id + "/similar?collapse_duplicates=1"), 400,
               "invalid_argument");
  expect_error(client().Get("/api/v1/duplicates?limit=0"), 400, "invalid_argument");
  expect_error(client().Get("/api/v1/duplicates?group=1"), 400, "invalid_argument");

  ASSERT_EQ(client().Delete("/api/v1/items/dress-copy", auth)->status, 200);
  const auto after = json::parse(search(original, R"({"category": "all", "k": 5})")->body);
  EXPECT_FALSE(after["results"][0].contains("hidden_copies")) << after.dump();
}

TEST_F(ServerTest, FacetsListPricesAndAttributesAndSimilarFiltersByThem) {
  httplib::Headers auth{{"Authorization", std::string("Bearer ") + kToken}};
  std::vector<std::string> coats;  // four coats of the catalog: a, b, c get metadata, d searches
  const auto listed = json::parse(client().Get("/api/v1/items?category=coat&limit=4")->body);
  for (const auto& item : listed["items"]) coats.push_back(item["id"]);
  ASSERT_EQ(coats.size(), 4u);
  const std::string a = coats[0], b = coats[1], c = coats[2], d = coats[3];
  const auto patch = [&](const std::string& id, const std::string& body) {
    const auto res = client().Patch("/api/v1/items/" + id, auth, body, "application/json");
    ASSERT_EQ(res->status, 200) << res->body;
  };
  patch(a, R"({"price": 80, "attributes": {"colour": "navy", "size": 38}})");
  patch(b, R"({"price": 20, "attributes": {"colour": "navy", "size": "38"}})");
  patch(c, R"({"price": 45, "attributes": {"colour": "camel"}})");

  const auto facets = client().Get("/api/v1/attributes");
  ASSERT_EQ(facets->status, 200) << facets->body;
  const auto doc = json::parse(facets->body);
  EXPECT_EQ(doc["price"]["min"], 20);
  EXPECT_EQ(doc["price"]["max"], 80);
  EXPECT_EQ(doc["price"]["items"], 3);
  ASSERT_EQ(doc["attributes"].size(), 2u) << facets->body;
  EXPECT_EQ(doc["attributes"][0]["name"], "colour");
  EXPECT_EQ(doc["attributes"][0]["values"][0], json({{"value", "navy"}, {"count", 2}}));
  EXPECT_EQ(doc["attributes"][1]["distinct"], 2);

  const auto ids_of = [&](const std::string& query) {
    const auto res =
        client().Get("/api/v1/items/" + d + "/similar?category=all&k=20&collapse_duplicates=false&" + query);
    EXPECT_EQ(res->status, 200) << res->body;
    std::set<std::string> ids;
    const auto doc = json::parse(res->body);
    for (const auto& hit : doc["results"]) ids.insert(hit["id"]);
    return ids;
  };
  EXPECT_EQ(ids_of("price_min=30"), (std::set<std::string>{a, c}));
  EXPECT_EQ(ids_of("price_min=30&price_max=50"), (std::set<std::string>{c}));
  EXPECT_EQ(ids_of("attr.colour=navy"), (std::set<std::string>{a, b}));
  EXPECT_EQ(ids_of("attr.colour=%22navy%22&attr.size=38"), (std::set<std::string>{a}));
  EXPECT_EQ(ids_of("attr.size=%2238%22"), (std::set<std::string>{b}));
  expect_error(client().Get("/api/v1/items/" + d + "/similar?price_min=cheap"), 400, "invalid_argument");
  expect_error(client().Get("/api/v1/items/" + d + "/similar?price_min=50&price_max=10"), 400,
               "invalid_argument");
  expect_error(client().Get("/api/v1/items/" + d + "/similar?attr.=x"), 400, "invalid_argument");
  expect_error(client().Get("/api/v1/attributes?limit=3"), 400, "invalid_argument");

  for (const std::string& id : {a, b, c})
    patch(id, R"({"price": null, "attributes": {"colour": null, "size": null}})");
  EXPECT_TRUE(json::parse(client().Get("/api/v1/attributes")->body)["price"].is_null());
}

size_t files_under(const fs::path& dir, const std::string& extension) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.path().extension() == extension;
  return n;
}

TEST_F(ServerTest, WritesDoNotRewriteTheIndexAndARefusedAddLeavesNoFiles) {
  httplib::Headers auth{{"Authorization", std::string("Bearer ") + kToken}};
  const fs::path index_dir = fs::path(data()) / "index";
  const size_t snapshots = files_under(index_dir, ".faiss");
  for (int i = 0; i < 3; ++i) {
    const std::string id = "write-" + std::to_string(i);
    httplib::MultipartFormDataItems items{
        {"image", photo("dress", static_cast<size_t>(i)), "a.jpg", "image/jpeg"},
        {"metadata", R"({"id": ")" + id + R"(", "category": "dress"})", "", ""}};
    ASSERT_EQ(client().Post("/api/v1/items", auth, items)->status, 201);
    ASSERT_EQ(client().Patch("/api/v1/items/" + id, auth, R"({"price": 1})", "application/json")->status,
              200);
    ASSERT_EQ(client().Delete("/api/v1/items/" + id, auth)->status, 200);
  }
  // Nine writes: each used to write a whole new index file (about 10 MB at 4.8k items), never
  // deleted until a rebuild.
  EXPECT_EQ(files_under(index_dir, ".faiss"), snapshots);

  // An add refused for its id (409) keeps neither the new photo nor its feature map.
  const size_t photos = files_under(fs::path(data()) / "images", ".jpg");
  const size_t maps = files_under(fs::path(data()) / "features", ".f16");
  const auto list = json::parse(client().Get("/api/v1/items?limit=1")->body);
  const std::string existing = list["items"][0]["id"];
  const std::string fresh_photo = photo("shirts", 5) + std::string(16, '\0');  // new bytes, same picture
  httplib::MultipartFormDataItems clash{
      {"image", fresh_photo, "b.jpg", "image/jpeg"},
      {"metadata", R"({"id": ")" + existing + R"(", "category": "shirts"})", "", ""}};
  expect_error(client().Post("/api/v1/items", auth, clash), 409, "conflict");
  EXPECT_EQ(files_under(fs::path(data()) / "images", ".jpg"), photos);
  EXPECT_EQ(files_under(fs::path(data()) / "features", ".f16"), maps);
}

TEST_F(ServerTest, CorsPreflightListsEveryMethodTheApiUses) {
  httplib::Headers origin{{"Origin", "https://shop.example"}, {"Access-Control-Request-Method", "PUT"}};
  const auto res = client().Options("/api/v1/models/active", origin);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 204);
  EXPECT_EQ(res->get_header_value("Access-Control-Allow-Origin"), "https://shop.example");
  const std::string methods = res->get_header_value("Access-Control-Allow-Methods");
  for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE"})
    EXPECT_NE(methods.find(m), std::string::npos) << m << " missing from " << methods;
}

// A PNG whose header claims 30000x30000 pixels.
std::string huge_png_header() {
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string("\x00\x00\x00\x0dIHDR", 8);
  png += std::string("\x00\x00\x75\x30\x00\x00\x75\x30\x08\x02\x00\x00\x00", 13);
  png += std::string("\x00\x00\x00\x00", 4) + std::string(100, '\0');
  return png;
}

TEST_F(ServerTest, BadInputsGetPreciseErrorsAndTheServerKeepsServing) {
  auto seed = [](const std::string& image, const std::string& setting) {
    httplib::MultipartFormDataItems items{{"filepath", image, "a.jpg", "image/jpeg"}};
    if (!setting.empty()) items.push_back({"setting", setting, "", ""});
    return client().Post("/process_image", items);
  };
  const std::string good = photo("coat", 1);
  expect_error(seed(good, "{not json"), 400, "invalid_argument");
  expect_error(seed(good, ""), 400, "invalid_argument");
  expect_error(seed(good, R"({"output_limit": "12", "on_cnn": true})"), 400, "invalid_argument");
  expect_error(seed(good, R"({"output_limit": 0, "on_cnn": true})"), 400, "invalid_argument");
  expect_error(seed(good, R"({"output_limit": 501, "on_cnn": true})"), 400, "invalid_argument");
  expect_error(seed(good, R"({"output_limit": 12})"), 400, "invalid_argument");
  expect_error(client().Post("/process_image", httplib::MultipartFormDataItems{}), 400, "invalid_argument");
  expect_error(client().Post("/process_image", "x", "text/plain"), 415, "unsupported_media_type");
  expect_error(seed("", R"({"output_limit": 3, "on_cnn": false})"), 415, "unsupported_media_type");
  expect_error(seed("hello, I am a text file", R"({"output_limit": 3, "on_cnn": false})"), 415,
               "unsupported_media_type");
  expect_error(seed(good.substr(0, good.size() / 2), R"({"output_limit": 3, "on_cnn": false})"), 422,
               "unprocessable_image");
  expect_error(search(huge_png_header()), 422, "unprocessable_image");
  expect_error(search(good, R"({"k": 0})"), 400, "invalid_argument");
  expect_error(search(good, R"({"color_weight": 1.5})"), 400, "invalid_argument");
  expect_error(client().Get("/api/v1/items/coat-1/similar?color_weight=lots"), 400, "invalid_argument");
  expect_error(search(good, R"({"category": "trousers"})"), 400, "invalid_argument");
  expect_error(search(good, R"({"crop": {"x": 9000, "y": 0, "w": 5, "h": 5}})"), 400, "invalid_argument");
  expect_error(client().Post("/api/v1/search", R"({"image_base64": "%%%"})", "application/json"), 400,
               "invalid_argument");
  expect_error(
      client().Post("/api/v1/search", R"({"image_url": "http://cdn.example.com/x.jpg"})", "application/json"),
      400, "invalid_argument");
  expect_error(
      client().Post("/api/v1/search", R"({"image_url": "http://127.0.0.1:1/x.jpg"})", "application/json"),
      422, "unprocessable_image");
  expect_error(
      client().Post("/api/v1/search", R"({"image_base64": "aGk=", "image_url": "http://127.0.0.1/x"})",
                    "application/json"),
      400, "invalid_argument");
  expect_error(client().Get("/api/v1/nothing-here"), 404, "not_found");
  expect_error(client().Get("/api/v1/items/no-such-item/similar"), 404, "not_found");
  expect_error(client().Get("/api/v1/items/coat-1/similar?k=abc"), 400, "invalid_argument");
  expect_error(client().Get("/api/v1/items?limit=100000"), 400, "invalid_argument");
  expect_error(client().Get("/api/v1/search"), 405, "method_not_allowed");
  expect_error(client().Put("/api/v1/items/coat-1", "{}", "application/json"), 405, "method_not_allowed");
  // Over the 2 MB limit this server was started with.
  expect_error(search(std::string(3 << 20, 'x')), 413, "payload_too_large");
  expect_still_serving();
}

TEST_F(ServerTest, FiftyMegabyteBodyIsRefusedWithoutReadingIt) {
  // A client that asks before sending (Expect: 100-continue) is refused from the declared
  // length alone; it never has to send the 50 MB.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string request =
      "POST /api/v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
      "Content-Length: 52428800\r\nExpect: 100-continue\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string response;
  char buf[4096];
  ssize_t n = 0;
  while (response.find('}') == std::string::npos && (n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    response.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  EXPECT_EQ(response.rfind("HTTP/1.1 413", 0), 0u) << response;
  EXPECT_NE(response.find("payload_too_large"), std::string::npos) << response;
  // And a real 50 MB upload: refused, never a crash.
  auto big = client().Post("/api/v1/search", std::string(50 << 20, 'x'), "application/octet-stream");
  if (big) {
    EXPECT_EQ(big->status, 413);
  }
  expect_still_serving();
}

// A raw connection to the server: sends what it is given, reads until the peer closes, a
// complete JSON error arrives, or 15 s pass.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval timeout{15, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  }
  ~RawConnection() { ::close(fd_); }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  // False once the server stopped accepting bytes (it answered and closed).
  bool send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  std::string response() {
    std::string out;
    char buf[4096];
    ssize_t n = 0;
    while (out.find("\"}}") == std::string::npos && (n = ::recv(fd_, buf, sizeof buf, 0)) > 0)
      out.append(buf, static_cast<size_t>(n));
    return out;
  }

 private:
  int fd_;
  bool connected_ = false;
};

// Resident memory of a process, from /proc.
size_t rss_bytes(int pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

// The server's largest resident-memory growth while `attack` runs (sampled every 2 ms).
template <typename Attack>
size_t rss_growth_during(int pid, Attack attack) {
  const size_t before = rss_bytes(pid);
  std::atomic<bool> done{false};
  std::atomic<size_t> peak{before};
  std::thread sampler([&] {
    while (!done) {
      peak = std::max(peak.load(), rss_bytes(pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  attack();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let a late allocation show
  done = true;
  sampler.join();
  return peak > before ? peak - before : 0;
}

std::string gzip_of_zeros(size_t bytes) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
  const std::string zeros(1 << 20, '\0');
  std::string out;
  char buf[1 << 16];
  for (size_t left = bytes; left > 0 || z.avail_in > 0;) {
    if (z.avail_in == 0) {
      const size_t n = std::min(left, zeros.size());
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
      z.avail_in = static_cast<uInt>(n);
      left -= n;
    }
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = sizeof buf;
      deflate(&z, left == 0 ? Z_FINISH : Z_NO_FLUSH);
      out.append(buf, sizeof buf - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  return out;
}

std::string chunked(const std::string& body, size_t chunk) {
  std::string out;
  char size[32];
  for (size_t at = 0; at < body.size(); at += chunk) {
    const size_t n = std::min(chunk, body.size() - at);
    std::snprintf(size, sizeof size, "%zx\r\n", n);
    out += size + body.substr(at, n) + "\r\n";
  }
  return out + "0\r\n\r\n";
}

constexpr size_t kMiB = size_t{1} << 20;

TEST_F(ServerTest, AGzipBombIsRefusedWithoutInflatingIt) {
  // 200 MB of zeros in about 200 KB: httplib would inflate it whole before any limit.
  const std::string bomb = gzip_of_zeros(200 * kMiB);
  ASSERT_LT(bomb.size(), kMiB);
  std::string response;
  const size_t growth = rss_growth_during(pid_, [&] {
    RawConnection c(port_);
    ASSERT_TRUE(c.connected());
    c.send(
        "POST /api/v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Encoding: gzip\r\nContent-Length: " +
        std::to_string(bomb.size()) + "\r\n\r\n" + bomb);
    response = c.response();
  });
  EXPECT_EQ(response.rfind("HTTP/1.1 415", 0), 0u) << response.substr(0, 300);
  EXPECT_NE(response.find("Content-Encoding 'gzip' is not accepted"), std::string::npos) << response;
  EXPECT_LT(growth, 32 * kMiB) << "the server inflated the body";
  expect_still_serving();
}

TEST_F(ServerTest, TheUploadLimitHoldsForChunkedAndUnsizedBodies) {
  // This server's limit is 2 MB; 40 MB arrive as chunks, then as a body with no length at all.
  const std::string big(40 * kMiB, 'x');
  const std::string head =
      "POST /api/v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n";
  for (const std::string& request :
       {head + "Transfer-Encoding: chunked\r\n\r\n" + chunked(big, 64 << 10), head + "\r\n" + big}) {
    std::string response;
    const size_t growth = rss_growth_during(pid_, [&] {
      RawConnection c(port_);
      ASSERT_TRUE(c.connected());
      c.send(request);  // the server stops reading past the limit: the send may fail midway
      response = c.response();
    });
    EXPECT_EQ(response.rfind("HTTP/1.1 413", 0), 0u) << response.substr(0, 300);
    EXPECT_NE(response.find("payload_too_large"), std::string::npos) << response.substr(0, 300);
    EXPECT_LT(growth, 16 * kMiB) << "the server held more than the limit";
  }
  // A chunked body within the limit is read and served as usual.
  const std::string image = photo("coat", 2);
  const std::string boundary = "lookalike-boundary";
  const std::string body = "--" + boundary +
                           "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"q.jpg\"\r\n"
                           "Content-Type: image/jpeg\r\n\r\n" +
                           image + "\r\n--" + boundary + "--\r\n";
  RawConnection c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(
      c.send("POST /api/v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
             "Content-Type: multipart/form-data; boundary=" +
             boundary + "\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 4096)));
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = ::recv(c.fd(), buf, sizeof buf, 0)) > 0;) response.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response.substr(0, 300);
  expect_still_serving();
}

TEST_F(ServerTest, AHugeHeaderOrASlowRequestIsCutOff) {
  {
    RawConnection c(port_);
    ASSERT_TRUE(c.connected());
    c.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(8 * kMiB, 'a') + "\r\n\r\n");
    const std::string response = c.response();
    EXPECT_TRUE(response.empty() || response.rfind("HTTP/1.1 4", 0) == 0) << response.substr(0, 300);
  }
  // This server gives a request 5 s to arrive (--request-timeout 5); one header byte a second
  // would otherwise hold a worker thread for ever.
  RawConnection slow(port_);
  ASSERT_TRUE(slow.connected());
  const auto started = std::chrono::steady_clock::now();
  std::string response;
  std::thread reader([&] { response = slow.response(); });
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
  for (size_t i = 0; i < 20 && response.empty(); ++i) {
    if (!slow.send(std::string(1, request[i % request.size()]))) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    // Meanwhile the server answers others at once.
    const auto health = client().Get("/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
  }
  reader.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_LT(seconds, 9.0);
  EXPECT_EQ(response.rfind("HTTP/1.1 408", 0), 0u) << response.substr(0, 300);
  expect_still_serving();
}

TEST_F(ServerTest, PathTraversalNeverEscapesTheCatalog) {
  for (const char* path :
       {"/static/img/../../catalog.sqlite", "/static/img/..%2F..%2Fcatalog.sqlite/x",
        "/static/img/%2e%2e/%2e%2e%2fcatalog.sqlite", "/static/img/coat/..%2f..%2f..%2fetc%2fpasswd",
        "/api/v1/items/..%2F..%2Fcatalog.sqlite/image", "/api/v1/items/../../catalog.sqlite",
        "/../catalog.sqlite", "/%2e%2e/%2e%2e/etc/passwd"}) {
    const auto res = client().Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_TRUE(res->status == 404 || res->status == 400) << path << " -> " << res->status;
    EXPECT_EQ(res->body.find("SQLite format"), std::string::npos) << path;
    EXPECT_EQ(res->body.find("root:"), std::string::npos) << path;
  }
  expect_still_serving();
}

TEST_F(ServerTest, AnEmptyCatalogIsNotReady) {
  testing::TempDir empty;
  const std::string out = empty.str() + "/out", err = empty.str() + "/err";
  const int pid = testing::start_lookalike({"--data", empty.str() + "/d", "serve", "--port", "0"}, out, err);
  ASSERT_GT(pid, 0);
  int port = 0;
  const std::regex ready(R"(listening on http://127\.0\.0\.1:(\d+)[\s\S]*ready:)");
  std::smatch m;
  for (int i = 0; i < 600 && port == 0; ++i) {
    const std::string text = testing::read_bytes(out);
    if (std::regex_search(text, m, ready)) port = std::stoi(m[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(port, 0) << testing::read_bytes(err);
  httplib::Client c("127.0.0.1", port);
  expect_error(c.Get("/readyz"), 503, "not_ready");
  httplib::MultipartFormDataItems items{{"image", photo("coat", 0), "q.jpg", "image/jpeg"}};
  expect_error(c.Post("/api/v1/search", items), 503, "not_ready");
  EXPECT_EQ(c.Get("/healthz")->status, 200);
  ::kill(pid, SIGTERM);
  EXPECT_EQ(testing::wait_process(pid), 0);
}

TEST_F(ServerTest, ParallelSearchesMatchSequentialOnes) {
  std::vector<std::string> images;
  for (const char* c : {"coat", "dress", "hood", "jumper", "shirts", "sweater"}) {
    for (size_t i = 0; i < 6; ++i) images.push_back(photo(c, i));
  }
  images.resize(32);
  auto ids = [](const httplib::Result& res) {
    std::vector<std::string> out;
    if (!res) {
      ADD_FAILURE() << "request failed: " << httplib::to_string(res.error());
      return out;
    }
    if (res->status != 200) {
      ADD_FAILURE() << res->status << " " << res->body;
      return out;
    }
    const auto doc = json::parse(res->body);
    for (const auto& r : doc["results"]) out.push_back(r["id"]);
    if (out.empty()) ADD_FAILURE() << "no results: " << res->body;
    return out;
  };
  std::vector<std::vector<std::string>> sequential;
  const std::string options = R"({"k": 8, "category": "all"})";
  for (const auto& image : images) sequential.push_back(ids(search(image, options)));
  std::vector<std::future<std::vector<std::string>>> parallel;
  for (const auto& image : images) {
    parallel.push_back(std::async(std::launch::async, [&, image] { return ids(search(image, options)); }));
  }
  for (size_t i = 0; i < images.size(); ++i) {
    const auto got = parallel[i].get();
    ASSERT_EQ(got.size(), 8u) << i;
    EXPECT_EQ(got, sequential[i]) << i;
  }
}

// Waits until the server reports `version` as active (its watcher reloads within a second).
bool wait_for_version(httplib::Client& c, int64_t version) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto res = c.Get("/api/v1/stats");
    if (res && res->status == 200 && json::parse(res->body)["model_version"] == version) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Last but one in this file: it trains a head version and switches versions under the running
// server.
TEST_F(ServerTest, SearchesDuringModelSwitchesNeverFailAndNeverMixVersions) {
  const auto trained =
      testing::run_lookalike({"--data", data(), "train", "--head-only", "--min-per-category", "3", "--epochs",
                              "2", "--validation", "0.2", "--activate-anyway"});
  ASSERT_EQ(trained.status, 0) << trained.err;
  ASSERT_NE(trained.out.find("model version 1"), std::string::npos) << trained.out;
  auto c = client();
  ASSERT_TRUE(wait_for_version(c, 1)) << "the server did not switch to the new version without a restart";

  const std::string image = photo("dress", 2);
  std::atomic<bool> done{false};
  std::mutex mutex;
  std::set<int64_t> seen;
  std::vector<std::string> failures;
  size_t searches = 0;
  auto searcher = [&] {
    while (!done) {
      const auto res = search(image, R"({"k": 3, "category": "all"})");
      std::lock_guard lock(mutex);
      ++searches;
      if (!res || res->status != 200) {
        failures.push_back(res ? std::to_string(res->status) + " " + res->body : "no response");
        continue;
      }
      const auto doc = json::parse(res->body);
      seen.insert(doc["query"]["model_version"].get<int64_t>());
      // The photo is in the catalog: its own item comes first with a cosine of 1 in either
      // version. A query embedded by one version and searched in the other's index would not.
      const auto& top = doc["results"].at(0);
      if (top["category"] != "dress" || top["score"].get<double>() < 0.99) failures.push_back(res->body);
    }
  };
  std::thread a(searcher), b(searcher);
  for (int i = 0; i < 6; ++i) {
    const int64_t version = i % 2 == 0 ? 0 : 1;
    const auto use = testing::run_lookalike({"--data", data(), "model", "use", std::to_string(version)});
    EXPECT_EQ(use.status, 0) << use.err;
    EXPECT_TRUE(wait_for_version(c, version)) << version;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  done = true;
  a.join();
  b.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " of " << searches
                                << " failed, first: " << failures.front();
  EXPECT_EQ(seen, (std::set<int64_t>{0, 1})) << searches << " searches";
  expect_still_serving();
}

// After the test above: versions 0 and 1 exist.
TEST_F(ServerTest, ModelVersionsAreListedAndSwitchedOverHttp) {
  auto c = client();
  const auto listed = c.Get("/api/v1/models");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->status, 200) << listed->body;
  const auto doc = json::parse(listed->body);
  ASSERT_EQ(doc["versions"].size(), 2u) << doc.dump();
  EXPECT_EQ(doc["versions"][0]["version"], 0);
  EXPECT_EQ(doc["versions"][1]["version"], 1);
  EXPECT_TRUE(doc["versions"][1]["validation_accuracy"].is_number()) << doc.dump();
  EXPECT_TRUE(doc["versions"][1]["frozen_validation_accuracy"].is_number()) << doc.dump();
  EXPECT_TRUE(doc["versions"][1]["auto_min_confidence"].is_number()) << doc.dump();
  EXPECT_EQ(doc["versions"][doc["active"].get<size_t>()]["active"], true);

  const auto put = [&c](const std::string& body, bool authorised = true) {
    httplib::Headers headers;
    if (authorised) headers.emplace("Authorization", std::string("Bearer ") + kToken);
    return c.Put("/api/v1/models/active", headers, body, "application/json");
  };
  expect_error(put(R"({"version": 0})", false), 401, "unauthorized");
  expect_error(put("not json"), 400, "invalid_argument");
  expect_error(put(R"({"version": "1"})"), 400, "invalid_argument");
  expect_error(put(R"({"version": -1})"), 400, "invalid_argument");
  expect_error(put(R"({"version": 1.5})"), 400, "invalid_argument");
  expect_error(put(R"({"version": 1, "force": true})"), 400, "invalid_argument");
  expect_error(put(R"({"version": 9})"), 404, "not_found");
  expect_error(
      c.Put("/api/v1/models/active", httplib::Headers{{"Authorization", std::string("Bearer ") + kToken}},
            "version=0", "application/x-www-form-urlencoded"),
      415, "unsupported_media_type");

  for (const int64_t version : {0, 1}) {
    const auto switched = put("{\"version\": " + std::to_string(version) + "}");
    ASSERT_TRUE(switched);
    ASSERT_EQ(switched->status, 200) << switched->body;
    EXPECT_EQ(json::parse(switched->body)["active"], version);
    // Effective for the very next query, without waiting for the store watcher.
    const auto res = search(photo("coat", 1), R"({"k": 2})");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(json::parse(res->body)["query"]["model_version"], version);
  }

  // Removal: admin only, trained versions only, never the active one.
  const auto remove = [&c](const std::string& version, bool authorised = true) {
    httplib::Headers headers;
    if (authorised) headers.emplace("Authorization", std::string("Bearer ") + kToken);
    return c.Delete("/api/v1/models/" + version, headers);
  };
  expect_error(remove("1", false), 401, "unauthorized");
  expect_error(remove("one"), 400, "invalid_argument");
  expect_error(remove("-1"), 400, "invalid_argument");
  expect_error(remove("0"), 400, "invalid_argument");
  expect_error(remove("99999999999999999999"), 400, "invalid_argument");
  expect_error(remove("1"), 409, "conflict");  // active since the loop above
  ASSERT_EQ(put(R"({"version": 0})")->status, 200);
  const auto removed = remove("1");
  ASSERT_TRUE(removed);
  ASSERT_EQ(removed->status, 200) << removed->body;
  EXPECT_EQ(json::parse(removed->body)["versions"].size(), 1u) << removed->body;
  expect_error(remove("1"), 404, "not_found");
  expect_error(put(R"({"version": 1})"), 404, "not_found");
  const auto res = search(photo("coat", 1), R"({"k": 2})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

}  // namespace
}  // namespace lookalike
