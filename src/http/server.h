// `lookalike serve`: the HTTP API (seed-compatible /process_image and /api/v1), the web page,
// health, readiness and Prometheus metrics, on cpp-httplib.
#pragma once

#include <string>
#include <vector>

#include "service/background_training.h"
#include "service/catalog.h"

namespace lookalike {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  // HTTP worker threads. A connection holds one while it sends a request or waits (5 s) to send
  // the next, so slow or idle clients must not be able to take them all.
  size_t workers = 512;
  size_t inference_slots = 2;  // CNN forwards at once; bounds memory under many uploads
  size_t max_upload_mb = 10;
  // Memory all request bodies in flight may hold together; past it uploads get 503 + Retry-After.
  size_t max_upload_memory_mb = 1024;
  int request_timeout_s = 60;    // a request must arrive whole (headers and body) within this
  std::string web_root;          // built web page; empty = the build's web/dist
  std::string admin_token_file;  // else $LOOKALIKE_ADMIN_TOKEN; neither = write endpoints off
  std::vector<std::string> cors_origins;
  double min_confidence = 0.5;
  std::vector<std::string> fetch_allow_hosts;  // hosts `image_url` may name; none = image_url off
  bool fetch_allow_private = false;            // let image_url reach private/loopback addresses
  // A head is trained in the background when one is due at start-up (head_training_due) and
  // no import is running; an empty command = never. Its log is DATA/activity/train.log.
  BackgroundTrainingOptions background_training;
  size_t min_per_category = 20;  // the training's: fewer than 2 such categories = no head
};

// Listens, loads the catalog (answering 503 until it is ready), serves until SIGTERM/SIGINT,
// then stops accepting, finishes in-flight requests and returns 0.
int serve(const CatalogOptions& catalog_options, const ServerOptions& options);

}  // namespace lookalike
