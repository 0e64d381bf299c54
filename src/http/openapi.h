#pragma once

#include <nlohmann/json.hpp>

namespace lookalike {

// OpenAPI 3.0 description of every route the server answers (GET /api/openapi.json).
nlohmann::json openapi_document();

}  // namespace lookalike
