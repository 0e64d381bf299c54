#include "http/api.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <strings.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>

#include "common/error.h"
#include "common/files.h"
#include "http/bounded_server.h"
#include "http/openapi.h"
#include "http/request_options.h"
#include "service/activity.h"
#include "service/import_source.h"
#include "service/result_json.h"
#include "store/work_queue.h"

namespace lookalike {
namespace {

using httplib::Request;
using httplib::Response;
using nlohmann::json;

void send_json(Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(Response& res, ErrorCode code, const std::string& message) {
  send_json(res, http_status(code), {{"error", {{"code", error_code_name(code)}, {"message", message}}}});
}

std::string item_image_url(const Item& item) {
  return "/api/v1/items/" + item.id + "/image";
}

const char* mime_for(const std::string& path) {
  const auto ext = std::filesystem::path(path).extension().string();
  if (ext == ".jpg") return "image/jpeg";
  if (ext == ".png") return "image/png";
  if (ext == ".webp") return "image/webp";
  if (ext == ".gif") return "image/gif";
  return "application/octet-stream";
}

// The uploaded image of a multipart request, or a 400/415 explaining what is missing.
std::string multipart_image(const Request& req, const char* field) {
  if (!req.is_multipart_form_data()) {
    throw Error(ErrorCode::kUnsupportedMedia,
                std::string("expected multipart/form-data with the image in field '") + field + "'");
  }
  if (!req.has_file(field)) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("missing multipart field '") + field + "' (the image)");
  }
  return req.get_file_value(field).content;
}

std::string form_text(const Request& req, const char* field) {
  return req.has_file(field) ? req.get_file_value(field).content : std::string();
}

bool is_json(const Request& req) {
  return req.get_header_value("Content-Type").rfind("application/json", 0) == 0;
}

json parse_body(const Request& req) {
  if (!is_json(req)) throw Error(ErrorCode::kUnsupportedMedia, "expected Content-Type: application/json");
  const json doc = json::parse(req.body, nullptr, false);
  if (doc.is_discarded()) throw Error(ErrorCode::kInvalidArgument, "the request body is not valid JSON");
  if (!doc.is_object()) throw Error(ErrorCode::kInvalidArgument, "the request body must be a JSON object");
  return doc;
}

// Request bodies must arrive as they are: httplib would inflate gzip/brotli bodies with no
// bound on the inflated size, and images are compressed already. Empty when acceptable.
std::string refused_encoding(const Request& req) {
  const std::string encoding = req.get_header_value("Content-Encoding");
  if (encoding.empty() || ::strcasecmp(encoding.c_str(), "identity") == 0) return "";
  return "Content-Encoding '" + encoding.substr(0, 64) +
         "' is not accepted: send the request body uncompressed (images are compressed already)";
}

// Answers without reading the body; the connection closes after the answer, because the
// unread body cannot be told apart from a next request.
void refuse_unread_body(Response& res, ErrorCode code, const std::string& message) {
  send_error(res, code, message);
  res.set_header("Connection", "close");
  BoundedServer::close_after_response();
}

[[noreturn]] void no_such_item(const std::string& id) {
  throw Error(ErrorCode::kNotFound, "no catalog item with id '" + id + "'");
}

std::string path_id(const Request& req) {
  const std::string id = req.matches[1];
  if (!valid_item_id(id)) no_such_item(id);
  return id;
}

double parse_price(const std::string& name, const std::string& text) {
  char* end = nullptr;
  const double v = text.empty() ? NAN : std::strtod(text.c_str(), &end);
  if (!std::isfinite(v) || end != text.c_str() + text.size())
    throw Error(ErrorCode::kInvalidArgument, "'" + name + "' must be a number");
  return v;
}

// `attr.NAME=VALUE`: VALUE is a JSON scalar ("red" in quotes, 38, true), so that 38 and "38" stay
// apart as the catalog stores them; anything else is taken as a plain string (attr.colour=red).
json attribute_value(const std::string& text) {
  const auto parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return !parsed.is_discarded() && parsed.is_primitive() && !parsed.is_null() ? parsed : json(text);
}

QueryOptions query_params(const Request& req) {
  QueryOptions q;
  for (const auto& [key, value] : req.params) {
    if (key == "k") {
      q.k = parse_count("k", value, 1, kMaxResults);
    } else if (key == "category") {
      if (value.empty())
        throw Error(ErrorCode::kInvalidArgument, "'category' must be auto, all or a category name");
      q.category = value;
    } else if (key == "color_weight") {
      q.colour_weight = parse_fraction("color_weight", value);
    } else if (key == "collapse_duplicates") {
      if (value != "true" && value != "false")
        throw Error(ErrorCode::kInvalidArgument, "'collapse_duplicates' must be true or false");
      q.collapse_duplicates = value == "true";
    } else if (key == "price_min" || key == "price_max") {
      (key == "price_min" ? q.filter.price_min : q.filter.price_max) = parse_price(key, value);
    } else if (key.starts_with("attr.") && key.size() > 5) {
      q.filter.attributes[key.substr(5)] = attribute_value(value);
    } else {
      throw Error(
          ErrorCode::kInvalidArgument,
          "unknown query parameter '" + key +
              "' (expected k, category, color_weight, collapse_duplicates, price_min, price_max, attr.NAME)");
    }
  }
  if (q.filter.price_min && q.filter.price_max && *q.filter.price_min > *q.filter.price_max)
    throw Error(ErrorCode::kInvalidArgument, "'price_min' is greater than 'price_max'");
  return q;
}

ItemMetadata metadata_from(const json& j, ItemMetadata base, std::optional<std::string>* category) {
  for (const auto& [key, value] : j.items()) {
    if (key == "title" || key == "url") {
      if (!value.is_string()) throw Error(ErrorCode::kInvalidArgument, "'" + key + "' must be a string");
      (key == "title" ? base.title : base.url) = value.get<std::string>();
    } else if (key == "price") {
      if (value.is_null()) {
        base.price.reset();
      } else if (!value.is_number() || value.get<double>() < 0) {
        throw Error(ErrorCode::kInvalidArgument, "'price' must be a non-negative number or null");
      } else {
        base.price = value.get<double>();
      }
    } else if (key == "attributes") {
      if (!value.is_object()) throw Error(ErrorCode::kInvalidArgument, "'attributes' must be an object");
      for (const auto& [name, v] : value.items()) {
        if (v.is_object() || v.is_array()) {
          throw Error(ErrorCode::kInvalidArgument,
                      "attribute '" + name + "' must be a string, number, boolean or null");
        }
        if (v.is_null()) {
          base.attributes.erase(name);
        } else {
          base.attributes[name] = v;
        }
      }
    } else if (key == "category" && category) {
      if (!value.is_string()) throw Error(ErrorCode::kInvalidArgument, "'category' must be a string");
      *category = value.get<std::string>();
    } else if (key != "id" || category == nullptr) {
      throw Error(ErrorCode::kInvalidArgument,
                  "unknown field '" + key + "' (expected title, price, url, attributes, category)");
    }
  }
  return base;
}

}  // namespace

size_t request_body_limit(size_t max_upload_bytes) {
  return max_upload_bytes + (64 << 10);
}

size_t request_size_limit(size_t max_upload_bytes) {
  return request_body_limit(max_upload_bytes) + (64 << 10);
}

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kUnauthorized:
      return 401;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kPayloadTooLarge:
      return 413;
    case ErrorCode::kUnsupportedMedia:
      return 415;
    case ErrorCode::kUnprocessable:
      return 422;
    case ErrorCode::kNotReady:
    case ErrorCode::kCancelled:
    case ErrorCode::kBusy:
      return 503;
    case ErrorCode::kNoSpace:
      return 507;
    case ErrorCode::kIoError:
    case ErrorCode::kCorruptStore:
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

Api::Api(ApiOptions options) : options_(std::move(options)) {}
Api::~Api() = default;

void Api::set_catalog(std::unique_ptr<Catalog> catalog) {
  catalog_ = std::move(catalog);
  ready_catalog_ = catalog_.get();
}

Catalog& Api::catalog() const {
  Catalog* c = ready_catalog_.load();
  if (!c) throw Error(ErrorCode::kNotReady, "the catalog is still loading; retry in a moment");
  return *c;
}

void Api::route(httplib::Server& server, const char* method, const char* pattern, const char* name,
                Handler handler, bool needs_catalog) {
  routes_.push_back({method, pattern, name});
  auto wrapped = [this, name = std::string(name), handler, needs_catalog](const Request& req, Response& res) {
    const auto started = std::chrono::steady_clock::now();
    try {
      if (needs_catalog) catalog();
      (this->*handler)(req, res);
    } catch (const Error& e) {
      send_error(res, e.code(), e.what());
    } catch (const std::exception& e) {
      spdlog::error("{} {}: {}", req.method, req.path, e.what());
      send_error(res, ErrorCode::kInternal, "internal error; see the server log");
    }
    metrics_.record_request(
        name, res.status, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  };
  const std::string m = method;
  if (m == "GET") server.Get(pattern, wrapped);
  if (m == "POST") server.Post(pattern, wrapped);
  if (m == "PUT") server.Put(pattern, wrapped);
  if (m == "PATCH") server.Patch(pattern, wrapped);
  if (m == "DELETE") server.Delete(pattern, wrapped);
}

void Api::attach(httplib::Server& server) {
  route(server, "POST", "/process_image", "/process_image", &Api::process_image, true);
  route(server, "GET", R"(/static/img/([^/]+)/([^/]+))", "/static/img", &Api::static_image, true);
  route(server, "POST", "/api/v1/search", "/api/v1/search", &Api::search, true);
  route(server, "POST", "/api/v1/classify", "/api/v1/classify", &Api::classify, true);
  route(server, "GET", R"(/api/v1/items/([^/]+)/similar)", "/api/v1/items/{id}/similar", &Api::similar, true);
  route(server, "GET", R"(/api/v1/items/([^/]+)/image)", "/api/v1/items/{id}/image", &Api::item_image, true);
  route(server, "GET", R"(/api/v1/items/([^/]+))", "/api/v1/items/{id}", &Api::get_item, true);
  route(server, "PATCH", R"(/api/v1/items/([^/]+))", "/api/v1/items/{id}", &Api::patch_item, true);
  route(server, "DELETE", R"(/api/v1/items/([^/]+))", "/api/v1/items/{id}", &Api::delete_item, true);
  route(server, "GET", "/api/v1/items", "/api/v1/items", &Api::list_items, true);
  route(server, "POST", "/api/v1/items", "/api/v1/items", &Api::create_item, true);
  route(server, "GET", "/api/v1/categories", "/api/v1/categories", &Api::categories, true);
  route(server, "GET", "/api/v1/duplicates", "/api/v1/duplicates", &Api::duplicates, true);
  route(server, "GET", "/api/v1/attributes", "/api/v1/attributes", &Api::attributes, true);
  route(server, "GET", "/api/v1/stats", "/api/v1/stats", &Api::stats, true);
  route(server, "GET", "/api/v1/models", "/api/v1/models", &Api::models, true);
  route(server, "PUT", "/api/v1/models/active", "/api/v1/models/active", &Api::activate_model, true);
  route(server, "DELETE", R"(/api/v1/models/([^/]+))", "/api/v1/models/{version}", &Api::remove_model, true);
  route(server, "GET", "/healthz", "/healthz", &Api::healthz, false);
  route(server, "GET", "/readyz", "/readyz", &Api::readyz, false);
  route(server, "GET", "/metrics", "/metrics", &Api::metrics, false);
  route(server, "GET", "/api/openapi.json", "/api/openapi.json", &Api::openapi, false);
  route(server, "GET", "/", "/", &Api::index_page, false);
  if (std::filesystem::is_directory(options_.web_root)) server.set_mount_point("/", options_.web_root);

  server.set_pre_routing_handler([this](const Request& req, Response& res) {
    if (const std::string refusal = refused_encoding(req); !refusal.empty()) {
      refuse_unread_body(res, ErrorCode::kUnsupportedMedia, refusal);
      metrics_.record_request("unmatched", res.status, 0);
      return httplib::Server::HandlerResponse::Handled;
    }
    const std::string origin = req.get_header_value("Origin");
    const auto& allowed = options_.cors_origins;
    if (!origin.empty() && std::find(allowed.begin(), allowed.end(), origin) != allowed.end()) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
      if (req.method == "OPTIONS") {
        res.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
        res.set_header("Access-Control-Allow-Headers", "Content-Type, Authorization");
        res.set_header("Access-Control-Max-Age", "600");
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // A client that asks first (Expect: 100-continue, as curl does for large bodies) is refused
  // from the declared length and never sends the body. Without it, httplib reads and discards
  // an oversized body, then answers 413 through the error handler below.
  server.set_expect_100_continue_handler([this](const Request& req, Response& res) {
    const size_t limit = request_body_limit(options_.max_upload_bytes);
    if (const std::string refusal = refused_encoding(req); !refusal.empty()) {
      refuse_unread_body(res, ErrorCode::kUnsupportedMedia, refusal);
    } else if (std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) > limit) {
      refuse_unread_body(res, ErrorCode::kPayloadTooLarge, over_upload_limit());
    } else {
      return 100;
    }
    metrics_.record_request("unmatched", res.status, 0);
    return res.status;
  });

  // httplib's own failures (unknown route, body over the limit, bad request line) get the
  // same JSON error shape; an existing path with another method is a 405.
  server.set_error_handler(httplib::Server::HandlerWithResponse([this](const Request& req, Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // a handler answered
    // The connection layer stopped reading: whatever status httplib chose, say why, and close.
    if (const ReadRefusal refusal = BoundedServer::current_refusal(); refusal != ReadRefusal::kNone) {
      res.set_header("Connection", "close");
      if (refusal == ReadRefusal::kBusy) res.set_header("Retry-After", "1");
      res.status = BoundedServer::refusal_status(refusal);
      res.set_content(BoundedServer::current_refusal_json(), "application/json");
    } else if (res.status == 404) {
      std::string allow;
      for (const auto& r : routes_) {
        if (std::regex_match(req.path, std::regex(r.pattern)))
          allow += (allow.empty() ? "" : ", ") + r.method;
      }
      if (!allow.empty()) {
        res.set_header("Allow", allow);
        send_json(res, 405,
                  {{"error",
                    {{"code", "method_not_allowed"},
                     {"message", req.method + " is not allowed on " + req.path + "; use " + allow}}}});
      } else {
        send_error(res, ErrorCode::kNotFound, "no such endpoint: " + req.method + " " + req.path);
      }
    } else if (res.status == 413) {
      send_error(res, ErrorCode::kPayloadTooLarge, over_upload_limit());
    } else if (res.status == 400) {
      send_error(res, ErrorCode::kInvalidArgument,
                 "malformed request: the HTTP request or its multipart body could not be parsed");
    } else {
      send_json(res, res.status,
                {{"error",
                  {{"code", "bad_request"},
                   {"message", "the request could not be read (HTTP " + std::to_string(res.status) + ")"}}}});
    }
    metrics_.record_request("unmatched", res.status, 0);
    return httplib::Server::HandlerResponse::Handled;
  }));

  server.set_logger([](const Request& req, const Response& res) {
    spdlog::info("{} {} {} {} {}B", req.remote_addr, req.method, req.path, res.status, res.body.size());
  });
}

void Api::record_stages(const Timings& t) {
  metrics_.record_stage("decode", t.decode_ms / 1000);
  metrics_.record_stage("model", t.model_ms / 1000);
  metrics_.record_stage("classify", t.classify_ms / 1000);
  metrics_.record_stage("search", t.search_ms / 1000);
  metrics_.record_stage("total", t.total_ms / 1000);
}

void Api::require_admin(const Request& req) const {
  if (options_.admin_token.empty()) {
    throw Error(
        ErrorCode::kUnauthorized,
        "catalog writes are disabled: start the server with LOOKALIKE_ADMIN_TOKEN or --admin-token-file");
  }
  const std::string header = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (header.rfind(prefix, 0) != 0)
    throw Error(ErrorCode::kUnauthorized, "missing 'Authorization: Bearer <token>'");
  const std::string token = header.substr(prefix.size());
  const bool same = token.size() == options_.admin_token.size() &&
                    CRYPTO_memcmp(token.data(), options_.admin_token.data(), token.size()) == 0;
  if (!same) throw Error(ErrorCode::kUnauthorized, "wrong admin token");
}

void Api::process_image(const Request& req, Response& res) {
  const std::string image = multipart_image(req, "filepath");
  if (!req.has_file("setting")) throw Error(ErrorCode::kInvalidArgument, "missing multipart field 'setting'");
  const SeedSetting setting = parse_seed_setting(form_text(req, "setting"));
  QueryOptions q;
  q.k = setting.output_limit;
  q.category = setting.on_cnn ? "auto" : "all";
  q.allow_fallback = false;  // the original searched the predicted class only
  const auto result = catalog().search_image(image, q);
  record_stages(result.timings);
  json out = json::array();
  for (const auto& hit : result.hits) {
    out.push_back(
        {{"path", hit.item.file_name},
         {"class", hit.item.category},
         {"id", hit.item.id},
         {"score", hit.score},
         {"url", hit.item.category.empty() ? item_image_url(hit.item)
                                           : "/static/img/" + hit.item.category + "/" + hit.item.file_name}});
  }
  send_json(res, 200, out);
}

void Api::static_image(const Request& req, Response& res) {
  // Looked up in the database, never joined onto a filesystem path: '..' cannot escape.
  const auto item = catalog().store().find_by_file(req.matches[1], req.matches[2]);
  if (!item)
    throw Error(ErrorCode::kNotFound,
                "no catalog image " + std::string(req.matches[1]) + "/" + std::string(req.matches[2]));
  send_stored_image(*item, res);
}

void Api::search(const Request& req, Response& res) {
  std::string image;
  QueryOptions q;
  if (is_json(req)) {
    json body = parse_body(req);
    if (body.contains("image_url") == body.contains("image_base64")) {
      throw Error(ErrorCode::kInvalidArgument,
                  "give exactly one of 'image_base64' (a base64 string) or 'image_url'");
    }
    if (body.contains("image_url")) {
      if (!body["image_url"].is_string())
        throw Error(ErrorCode::kInvalidArgument, "'image_url' must be a string");
      FetchPolicy policy = options_.fetch;
      policy.max_bytes = options_.max_upload_bytes;
      image = fetch_image(body["image_url"].get<std::string>(), policy);
      body.erase("image_url");
    } else {
      if (!body["image_base64"].is_string())
        throw Error(ErrorCode::kInvalidArgument, "'image_base64' must be a string");
      image = decode_base64(body["image_base64"].get<std::string>(), options_.max_upload_bytes);
      body.erase("image_base64");
    }
    json options = body.contains("options") ? body["options"] : json::object();
    if (body.contains("options") && body.size() > 1) {
      throw Error(ErrorCode::kInvalidArgument,
                  "give options either inside 'options' or at the top level, not both");
    }
    if (!body.contains("options")) options = body;
    q = parse_search_options(options);
  } else {
    image = multipart_image(req, "image");
    q = parse_search_options_text(form_text(req, "options"));
  }
  const auto result = catalog().search_image(image, q);
  record_stages(result.timings);
  send_json(res, 200, query_result_json(result, item_image_url));
}

void Api::classify(const Request& req, Response& res) {
  const std::string image = multipart_image(req, "image");
  Timings timings;
  const Prediction p = catalog().classify_image(image, &timings);
  record_stages(timings);
  send_json(res, 200, {{"query", prediction_json(p)}, {"timings_ms", timings_json(timings)}});
}

void Api::similar(const Request& req, Response& res) {
  const auto result = catalog().similar(path_id(req), query_params(req));
  send_json(res, 200, query_result_json(result, item_image_url));
}

Item Api::path_item(const Request& req) const {
  const std::string id = path_id(req);
  auto item = catalog().store().find(id);
  if (!item) no_such_item(id);
  return std::move(*item);
}

void Api::send_stored_image(const Item& item, Response& res) const {
  const std::string file = catalog().image_file(item);
  res.set_header("Cache-Control", "public, max-age=86400");
  res.set_content(read_file(file, SIZE_MAX), mime_for(file));
}

std::string Api::over_upload_limit() const {
  return "the request body is over the upload limit of " + std::to_string(options_.max_upload_bytes >> 20) +
         " MB";
}

void Api::get_item(const Request& req, Response& res) {
  send_json(res, 200, item_json(path_item(req), item_image_url));
}

void Api::list_items(const Request& req, Response& res) {
  ListQuery q;
  for (const auto& [key, value] : req.params) {
    if (key == "category") {
      q.category = value;
    } else if (key == "offset") {
      q.offset = parse_count("offset", value, 0, 1'000'000'000);
    } else if (key == "limit") {
      q.limit = parse_count("limit", value, 1, 500);
    } else {
      throw Error(ErrorCode::kInvalidArgument,
                  "unknown query parameter '" + key + "' (expected category, offset, limit)");
    }
  }
  json items = json::array();
  for (const auto& item : catalog().store().list(q)) items.push_back(item_json(item, item_image_url));
  // `total` counts what the query matches, so a client can page through one category.
  const size_t total =
      q.category.empty() ? catalog().stats().items : category_size(catalog().store(), q.category);
  send_json(res, 200, {{"items", items}, {"offset", q.offset}, {"limit", q.limit}, {"total", total}});
}

void Api::duplicates(const Request& req, Response& res) {
  size_t offset = 0, limit = 50;
  for (const auto& [key, value] : req.params) {
    if (key == "offset") {
      offset = parse_count("offset", value, 0, 1'000'000'000);
    } else if (key == "limit") {
      limit = parse_count("limit", value, 1, 500);
    } else {
      throw Error(ErrorCode::kInvalidArgument,
                  "unknown query parameter '" + key + "' (expected offset, limit)");
    }
  }
  send_json(res, 200, copy_groups_json(catalog().copy_groups(), offset, limit, item_image_url));
}

void Api::attributes(const Request& req, Response& res) {
  if (!req.params.empty())
    throw Error(ErrorCode::kInvalidArgument,
                "unknown query parameter '" + req.params.begin()->first + "' (this endpoint takes none)");
  send_json(res, 200, facets_json(catalog().facets()));
}

void Api::item_image(const Request& req, Response& res) {
  send_stored_image(path_item(req), res);
}

void Api::create_item(const Request& req, Response& res) {
  require_admin(req);
  const std::string image = multipart_image(req, "image");
  const std::string text = form_text(req, "metadata");
  json meta = text.empty() ? json::object() : json::parse(text, nullptr, false);
  if (meta.is_discarded() || !meta.is_object()) {
    throw Error(ErrorCode::kInvalidArgument, "'metadata' must be a JSON object");
  }
  Item item;
  if (!meta.contains("id") || !meta["id"].is_string() || !valid_item_id(meta["id"].get<std::string>())) {
    throw Error(ErrorCode::kInvalidArgument, "'metadata.id' must be 1-200 characters of A-Z a-z 0-9 . _ -");
  }
  item.id = meta["id"].get<std::string>();
  std::optional<std::string> category;
  item.metadata = metadata_from(meta, {}, &category);
  item.category = category.value_or("");
  const auto& file = req.get_file_value("image");
  item.file_name = file.filename.empty() ? item.id : std::filesystem::path(file.filename).filename().string();
  item.source = "api";
  const Item stored = catalog().add(image, item);
  res.set_header("Location", "/api/v1/items/" + stored.id);
  send_json(res, 201, item_json(stored, item_image_url));
}

void Api::patch_item(const Request& req, Response& res) {
  require_admin(req);
  const Item current = path_item(req);
  std::optional<std::string> category;
  const json body = parse_body(req);
  if (body.contains("id")) throw Error(ErrorCode::kInvalidArgument, "'id' cannot be changed");
  const ItemMetadata metadata = metadata_from(body, current.metadata, &category);
  if (!catalog().update(current.id, metadata, category)) no_such_item(current.id);
  send_json(res, 200, item_json(path_item(req), item_image_url));
}

void Api::delete_item(const Request& req, Response& res) {
  require_admin(req);
  const std::string id = path_id(req);
  if (!catalog().remove(id)) no_such_item(id);
  send_json(res, 200, {{"deleted", id}});
}

void Api::categories(const Request&, Response& res) {
  json out = json::array();
  for (const auto& c : catalog().stats().categories) out.push_back({{"name", c.name}, {"count", c.count}});
  send_json(res, 200, {{"categories", out}});
}

void Api::stats(const Request&, Response& res) {
  json doc = stats_json(catalog().stats());
  doc["activity"] = json::array();
  for (const auto& a : read_activities(catalog().data_dir())) doc["activity"].push_back(activity_json(a));
  try {
    if (WorkQueue* queue = catalog().queue()) {
      const QueueCounts c = queue->counts();
      doc["queue"] = {
          {"queued", c.queued}, {"running", c.running}, {"failed", c.failed}, {"per_second", c.per_second}};
    }
  } catch (const Error& e) {
    doc["queue"] = {{"error", e.what()}};  // the store is away: the rest still answers
  }
  send_json(res, 200, doc);
}

void Api::models(const Request&, Response& res) {
  send_json(res, 200, versions_json(catalog()));
}

// {"version": N}: the same switch as `lookalike model use N`, effective for the next query.
void Api::activate_model(const Request& req, Response& res) {
  require_admin(req);
  const json body = parse_body(req);
  for (const auto& [key, value] : body.items()) {
    if (key != "version")
      throw Error(ErrorCode::kInvalidArgument, "unknown field '" + key + "' (expected version)");
  }
  const auto version = body.find("version");
  if (version == body.end() || !version->is_number_integer() || version->get<int64_t>() < 0) {
    throw Error(ErrorCode::kInvalidArgument, "'version' must be a non-negative integer (0 = frozen recipe)");
  }
  catalog().use_version(version->get<int64_t>());
  send_json(res, 200, versions_json(catalog()));
}

// The same as `lookalike model remove N`: an inactive trained version, its descriptors and index
// files. The active version is refused (409); the frozen recipe is not a removable version.
void Api::remove_model(const Request& req, Response& res) {
  require_admin(req);
  const size_t version = parse_count("version", req.matches[1].str(), 0, INT64_MAX);
  if (version == 0)
    throw Error(ErrorCode::kInvalidArgument, "version 0 is the frozen recipe; it cannot be removed");
  catalog().remove_version(static_cast<int64_t>(version));
  send_json(res, 200, versions_json(catalog()));
}

void Api::healthz(const Request&, Response& res) {
  send_json(res, 200, {{"status", "ok"}});
}

void Api::readyz(const Request&, Response& res) {
  Catalog* c = ready_catalog_.load();
  if (!c) throw Error(ErrorCode::kNotReady, "the catalog is still loading");
  if (!c->ready()) throw Error(ErrorCode::kNotReady, "the catalog is empty or not trained");
  // From memory only: a replica whose PostgreSQL is away still answers searches, so it stays
  // in the load balancer.
  send_json(res, 200, {{"status", "ready"}, {"items", c->size()}});
}

void Api::metrics(const Request&, Response& res) {
  Catalog* c = ready_catalog_.load();
  res.set_content(metrics_.render(c ? c->stats().items : 0), "text/plain; version=0.0.4");
}

void Api::openapi(const Request&, Response& res) {
  send_json(res, 200, openapi_document());
}

void Api::index_page(const Request&, Response& res) {
  const auto index = std::filesystem::path(options_.web_root) / "index.html";
  if (std::filesystem::exists(index)) {
    res.set_content(read_file(index.string(), 1 << 20), "text/html; charset=utf-8");
    return;
  }
  res.set_content(
      "<!doctype html><meta charset=utf-8><title>Lookalike</title><h1>Lookalike</h1>"
      "<p>The web page is not built. Run <code>scripts/build-web.sh</code>, or use the API: "
      "<a href=\"/api/openapi.json\">/api/openapi.json</a>.</p>",
      "text/html; charset=utf-8");
}

}  // namespace lookalike
