// Route table and handlers of the HTTP API. Handlers validate input, call the Catalog and
// render JSON; errors become {"error": {"code", "message"}} with the matching status.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "http/image_fetch.h"
#include "http/metrics.h"
#include "service/catalog.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace lookalike {

struct ApiOptions {
  std::string admin_token;  // empty: write endpoints answer 403
  std::vector<std::string> cors_origins;
  size_t max_upload_bytes = 10 << 20;
  std::string web_root;
  FetchPolicy fetch;  // image_url downloads; off while fetch.allowed_hosts is empty
};

int http_status(ErrorCode code);
// Largest request body accepted for uploads of max_upload_bytes: multipart framing adds a little.
size_t request_body_limit(size_t max_upload_bytes);
// Largest request on the wire (request line, headers and body, any framing).
size_t request_size_limit(size_t max_upload_bytes);

class Api {
 public:
  explicit Api(ApiOptions options);
  ~Api();
  void attach(httplib::Server& server);
  // Until this is called every catalog route answers 503 not_ready.
  void set_catalog(std::unique_ptr<Catalog> catalog);

 private:
  using Handler = void (Api::*)(const httplib::Request&, httplib::Response&);
  void route(httplib::Server& server, const char* method, const char* pattern, const char* name,
             Handler handler, bool needs_catalog);
  Catalog& catalog() const;

  void process_image(const httplib::Request&, httplib::Response&);
  void static_image(const httplib::Request&, httplib::Response&);
  void search(const httplib::Request&, httplib::Response&);
  void classify(const httplib::Request&, httplib::Response&);
  void similar(const httplib::Request&, httplib::Response&);
  void get_item(const httplib::Request&, httplib::Response&);
  void list_items(const httplib::Request&, httplib::Response&);
  void duplicates(const httplib::Request&, httplib::Response&);
  void attributes(const httplib::Request&, httplib::Response&);
  void item_image(const httplib::Request&, httplib::Response&);
  void create_item(const httplib::Request&, httplib::Response&);
  void patch_item(const httplib::Request&, httplib::Response&);
  void delete_item(const httplib::Request&, httplib::Response&);
  void categories(const httplib::Request&, httplib::Response&);
  void stats(const httplib::Request&, httplib::Response&);
  void models(const httplib::Request&, httplib::Response&);
  void activate_model(const httplib::Request&, httplib::Response&);
  void remove_model(const httplib::Request&, httplib::Response&);
  void healthz(const httplib::Request&, httplib::Response&);
  void readyz(const httplib::Request&, httplib::Response&);
  void metrics(const httplib::Request&, httplib::Response&);
  void openapi(const httplib::Request&, httplib::Response&);
  void index_page(const httplib::Request&, httplib::Response&);

  void require_admin(const httplib::Request&) const;
  Item path_item(const httplib::Request&) const;  // the item named in the path, or 404
  void send_stored_image(const Item& item, httplib::Response&) const;
  std::string over_upload_limit() const;
  void record_stages(const Timings& t);

  ApiOptions options_;
  std::unique_ptr<Catalog> catalog_;
  std::atomic<Catalog*> ready_catalog_{nullptr};
  Metrics metrics_;
  struct Route {
    std::string method, pattern, name;
  };
  std::vector<Route> routes_;
};

}  // namespace lookalike
