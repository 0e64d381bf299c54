#include "http/openapi.h"

#include <string>

#include "service/query.h"

namespace lookalike {
namespace {

using nlohmann::json;

json activity_schema() {
  return {{"type", "object"},
          {"description",
           "A long job's latest report (DATA/activity/JOB.json), shown while it runs and for an hour after "
           "it ended"},
          {"properties",
           {{"job", {{"type", "string"}, {"enum", {"import", "train"}}}},
            {"state",
             {{"type", "string"},
              {"enum", {"running", "finished", "failed", "stopped"}},
              {"description", "stopped: interrupted, or its process ended without finishing"}}},
            {"phase", {{"type", "string"}, {"description", "what it does now, e.g. 'epoch 3/12'"}}},
            {"done", {{"type", "integer"}}},
            {"total", {{"type", "integer"}, {"description", "0 when the phase cannot count its progress"}}},
            {"eta_seconds",
             {{"type", "number"}, {"nullable", true}, {"description", "time the phase still needs"}}},
            {"message",
             {{"type", "string"}, {"description", "the outcome once it ended: a summary or the error"}}},
            {"pid", {{"type", "integer"}}},
            {"started_at", {{"type", "number"}, {"description", "Unix seconds"}}},
            {"updated_at", {{"type", "number"}, {"description", "Unix seconds"}}}}}};
}

json stats_schema() {
  return {
      {"type", "object"},
      {"properties",
       {{"items", {{"type", "integer"}}},
        {"store",
         {{"type", "string"},
          {"description",
           "where the catalog lives: \"sqlite PATH\" or \"postgresql postgresql://USER@HOST:PORT/DB\""}}},
        {"model_version",
         {{"type", "integer"}, {"description", "the version answering now (0 = frozen recipe)"}}},
        {"store_error",
         {{"type", "string"},
          {"description",
           "present while the store cannot be read (PostgreSQL away): why; the categories are then "
           "counted from the items in memory, the model id and index choice are those it last gave"}}},
        {"activity", {{"type", "array"}, {"items", activity_schema()}}},
        {"queue",
         {{"type", "object"},
          {"description",
           "PostgreSQL store only: the embedding jobs `import` queued for `lookalike worker` processes "
           "(done jobs are items); only `error` while the store cannot be read"},
          {"properties",
           {{"queued", {{"type", "integer"}}},
            {"running", {{"type", "integer"}}},
            {"failed", {{"type", "integer"}}},
            {"per_second",
             {{"type", "number"}, {"description", "jobs completed per second over the last minute"}}},
            {"error", {{"type", "string"}}}}}}}}}};
}

const json kColourWeight = {
    {"type", "number"},
    {"minimum", 0},
    {"maximum", 1},
    {"default", 0},
    {"description",
     "how much the product's colours count: 0 ranks by look alone; above 0 the best " +
         std::to_string(kColourPoolFactor) +
         " x k candidates are re-ranked by (1 - w) similarity + w color_similarity (very-item hits stay "
         "first)"}};

const json kCollapseDuplicates = {
    {"type", "boolean"},
    {"default", true},
    {"description",
     "copies of one product shot (GET /api/v1/duplicates) come back as one result, the best ranked, "
     "which carries hidden_copies and copy_ids; false: each copy is a result of its own"}};

const json kColours = {
    {"type", "array"},
    {"description",
     "the product's dominant colours, largest share first (backdrop left out: the convex hull of the pixels "
     "that differ from the border's colour); [] when not measured yet. On a query: present when the search "
     "weighed colour or started from a stored item"},
    {"items",
     {{"type", "object"},
      {"properties",
       {{"share", {{"type", "number"}}},
        {"lab", {{"type", "array"}, {"items", {{"type", "number"}}}, {"description", "CIE L*a*b* (D65)"}}},
        {"hex", {{"type", "string"}, {"description", "sRGB, #rrggbb"}}}}}}}};

json ref(const std::string& name) {
  return {{"$ref", "#/components/schemas/" + name}};
}

json response(const std::string& description, const json& schema) {
  return {{"description", description}, {"content", {{"application/json", {{"schema", schema}}}}}};
}

json errors(std::initializer_list<int> statuses) {
  json out = json::object();
  for (int s : statuses) out[std::to_string(s)] = {{"$ref", "#/components/responses/Error"}};
  return out;
}

json with_errors(json responses, std::initializer_list<int> statuses) {
  responses.update(errors(statuses));
  return responses;
}

json path_param(const std::string& name) {
  return {{"name", name}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}};
}

json query_param(const std::string& name, const json& schema) {
  return {{"name", name}, {"in", "query"}, {"required", false}, {"schema", schema}};
}

json schemas() {
  json s;
  s["Error"] = {{"type", "object"},
                {"properties",
                 {{"error",
                   {{"type", "object"},
                    {"properties", {{"code", {{"type", "string"}}}, {"message", {{"type", "string"}}}}}}}}}};
  s["Item"] = {{"type", "object"},
               {"properties",
                {{"id", {{"type", "string"}}},
                 {"category", {{"type", "string"}}},
                 {"file_name", {{"type", "string"}}},
                 {"image_url", {{"type", "string"}}},
                 {"width", {{"type", "integer"}}},
                 {"height", {{"type", "integer"}}},
                 {"sha256", {{"type", "string"}}},
                 {"added_at", {{"type", "integer"}}},
                 {"colors", kColours},
                 {"metadata",
                  {{"type", "object"},
                   {"properties",
                    {{"title", {{"type", "string"}}},
                     {"price", {{"type", "number"}, {"nullable", true}}},
                     {"url", {{"type", "string"}}},
                     {"attributes", {{"type", "object"}}}}}}}}}};
  s["SearchOptions"] = {
      {"type", "object"},
      {"additionalProperties", false},
      {"properties",
       {{"k", {{"type", "integer"}, {"minimum", 1}, {"maximum", 500}, {"default", 12}}},
        {"category",
         {{"type", "string"}, {"description", "auto | all | a category name"}, {"default", "auto"}}},
        {"min_confidence", {{"type", "number"}, {"minimum", 0}, {"maximum", 1}}},
        {"filters",
         {{"type", "object"},
          {"properties",
           {{"categories", {{"type", "array"}, {"items", {{"type", "string"}}}}},
            {"price",
             {{"type", "object"},
              {"properties", {{"min", {{"type", "number"}}}, {"max", {{"type", "number"}}}}}}},
            {"attributes", {{"type", "object"}}}}}}},
        {"crop",
         {{"type", "object"},
          {"required", {"x", "y", "w", "h"}},
          {"properties",
           {{"x", {{"type", "integer"}}},
            {"y", {{"type", "integer"}}},
            {"w", {{"type", "integer"}}},
            {"h", {{"type", "integer"}}}}}}},
        {"color_weight", kColourWeight},
        {"collapse_duplicates", kCollapseDuplicates}}}};
  s["Query"] = {
      {"type", "object"},
      {"properties",
       {{"category", {{"type", "string"}, {"nullable", true}}},
        {"confidence", {{"type", "number"}}},
        {"probabilities", {{"type", "object"}, {"additionalProperties", {{"type", "number"}}}}},
        {"searched", {{"type", "string"}}},
        {"fallback_used", {{"type", "boolean"}}},
        {"colors", kColours},
        {"model_version",
         {{"type", "integer"},
          {"description", "model version that answered (0 = frozen recipe, see `lookalike model list`)"}}}}}};
  s["Timings"] = {{"type", "object"},
                  {"properties",
                   {{"decode", {{"type", "number"}}},
                    {"model", {{"type", "number"}}},
                    {"classify", {{"type", "number"}}},
                    {"search", {{"type", "number"}}},
                    {"total", {{"type", "number"}}}}}};
  json hit = ref("Item");
  s["SearchResult"] = {
      {"type", "object"},
      {"properties",
       {{"query", ref("Query")},
        {"results",
         {{"type", "array"},
          {"items",
           {{"allOf",
             json::array({hit,
                          {{"type", "object"},
                           {"properties",
                            {{"score",
                              {{"type", "number"},
                               {"description",
                                "the ranking score, -1..1: the cosine of the search descriptors (a trained "
                                "version: (1-w) cosine of the head's + w cosine of the frozen recipe's)"}}},
                             {"same_item",
                              {{"type", "boolean"},
                               {"description",
                                "present and true when the hit is recognised as the query's very product "
                                "shot; such hits come first"}}},
                             {"hidden_copies",
                              {{"type", "integer"},
                               {"description",
                                "present when other items' photos are copies of this one's (the same "
                                "product shot resized, re-compressed, slightly cropped or mirrored) and "
                                "collapse_duplicates hid them: how many (those the filters admit)"}}},
                             {"copy_ids",
                              {{"type", "array"},
                               {"items", {{"type", "string"}}},
                               {"description", "the ids of those hidden copies"}}},
                             {"color_similarity",
                              {{"type", "number"},
                               {"description",
                                "0..1, present when the search weighed colour (color_weight > 0): how close "
                                "the product's dominant colours are to the query's (1 - earth mover's "
                                "distance in CIE L*a*b* / 50, floored at 0)"}}},
                             {"similarity",
                              {{"type", "number"},
                               {"description",
                                "0..1: the share of typical nearest-neighbour similarities in this catalog "
                                "that the score beats (0.95 = closer than 95% of an item's 12 nearest "
                                "neighbours are)"}}}}}}})}}}}},
        {"timings_ms", ref("Timings")}}}};
  return s;
}

json multipart(const json& properties, const std::vector<std::string>& required) {
  return {{"required", true},
          {"content",
           {{"multipart/form-data",
             {{"schema", {{"type", "object"}, {"required", required}, {"properties", properties}}}}}}}};
}

json binary() {
  return {{"type", "string"}, {"format", "binary"}};
}

}  // namespace

json openapi_document() {
  json paths;
  paths["/process_image"]["post"] = {
      {"summary",
       "Seed-compatible search: multipart 'filepath' image + 'setting' JSON {output_limit, on_cnn}"},
      {"requestBody",
       multipart({{"filepath", binary()}, {"setting", {{"type", "string"}}}}, {"filepath", "setting"})},
      {"responses", with_errors({{"200", response("Results", {{"type", "array"},
                                                              {"items",
                                                               {{"type", "object"},
                                                                {"properties",
                                                                 {{"path", {{"type", "string"}}},
                                                                  {"class", {{"type", "string"}}},
                                                                  {"id", {{"type", "string"}}},
                                                                  {"score", {{"type", "number"}}},
                                                                  {"url", {{"type", "string"}}}}}}}})}},
                                {400, 413, 415, 422, 503})}};
  paths["/static/img/{class}/{file}"]["get"] = {
      {"summary", "A catalog image by category and original file name"},
      {"parameters", {path_param("class"), path_param("file")}},
      {"responses", with_errors({{"200", {{"description", "The image"}}}}, {404})}};
  json search_body = multipart(
      {{"image", binary()}, {"options", {{"type", "string"}, {"description", "JSON SearchOptions"}}}},
      {"image"});
  search_body["content"]["application/json"]["schema"] = {
      {"type", "object"},
      {"description", "exactly one of image_base64 and image_url"},
      {"properties",
       {{"image_base64", {{"type", "string"}}},
        {"image_url",
         {{"type", "string"}, {"description", "http(s) URL on a host allowed by --fetch-allow-host"}}},
        {"options", ref("SearchOptions")}}}};
  paths["/api/v1/search"]["post"] = {
      {"summary", "Find catalog items that look like the uploaded photo"},
      {"requestBody", search_body},
      {"responses",
       with_errors({{"200", response("Ranked results", ref("SearchResult"))}}, {400, 413, 415, 422, 503})}};
  paths["/api/v1/classify"]["post"] = {
      {"summary", "Category probabilities of the uploaded photo"},
      {"requestBody", multipart({{"image", binary()}}, {"image"})},
      {"responses",
       with_errors(
           {{"200", response("Prediction",
                             {{"type", "object"},
                              {"properties", {{"query", ref("Query")}, {"timings_ms", ref("Timings")}}}})}},
           {400, 413, 415, 422, 503})}};
  paths["/api/v1/items/{id}/similar"]["get"] = {
      {"summary", "More like this: search from a stored item's descriptor"},
      {"parameters",
       {path_param("id"), query_param("k", {{"type", "integer"}, {"minimum", 1}, {"maximum", 500}}),
        query_param("category", {{"type", "string"}}), query_param("color_weight", kColourWeight),
        query_param("collapse_duplicates", kCollapseDuplicates),
        query_param("price_min", {{"type", "number"}}), query_param("price_max", {{"type", "number"}}),
        query_param("attr.NAME",
                    {{"type", "string"},
                     {"description",
                      "only items whose attribute NAME equals the value: a JSON scalar (\"red\", 38, true), "
                      "or a plain string"}})}},
      {"responses",
       with_errors({{"200", response("Ranked results", ref("SearchResult"))}}, {400, 404, 503})}};
  paths["/api/v1/items/{id}/image"]["get"] = {
      {"summary", "The stored image of an item"},
      {"parameters", {path_param("id")}},
      {"responses", with_errors({{"200", {{"description", "The image"}}}}, {404})}};
  json bearer = json::array({{{"bearerAuth", json::array()}}});
  paths["/api/v1/items/{id}"] = {
      {"get",
       {{"summary", "One item"},
        {"parameters", {path_param("id")}},
        {"responses", with_errors({{"200", response("Item", ref("Item"))}}, {404})}}},
      {"patch",
       {{"summary", "Change metadata (admin)"},
        {"security", bearer},
        {"parameters", {path_param("id")}},
        {"requestBody", {{"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}}},
        {"responses", with_errors({{"200", response("Item", ref("Item"))}}, {400, 401, 404, 415})}}},
      {"delete",
       {{"summary", "Remove an item (admin)"},
        {"security", bearer},
        {"parameters", {path_param("id")}},
        {"responses", with_errors({{"200", response("Deleted", {{"type", "object"}})}}, {401, 404})}}}};
  paths["/api/v1/items"] = {
      {"get",
       {{"summary", "List items"},
        {"parameters",
         {query_param("category", {{"type", "string"}}), query_param("offset", {{"type", "integer"}}),
          query_param("limit", {{"type", "integer"}, {"maximum", 500}})}},
        {"responses", with_errors({{"200", response("A page of items",
                                                    {{"type", "object"},
                                                     {"properties",
                                                      {{"items", {{"type", "array"}, {"items", ref("Item")}}},
                                                       {"total", {{"type", "integer"}}}}}})}},
                                  {400})}}},
      {"post",
       {{"summary",
         "Add an item (admin): multipart 'image' + 'metadata' JSON {id, category, title, price, url, "
         "attributes}"},
        {"security", bearer},
        {"requestBody",
         multipart({{"image", binary()}, {"metadata", {{"type", "string"}}}}, {"image", "metadata"})},
        {"responses",
         with_errors({{"201", response("Created", ref("Item"))}}, {400, 401, 409, 413, 415, 422})}}}};
  paths["/api/v1/duplicates"]["get"] = {
      {"summary",
       "Groups of items whose photos are copies of one product shot (resized, re-compressed, slightly "
       "cropped or mirrored), found when items are imported or added"},
      {"parameters",
       {query_param("offset", {{"type", "integer"}}),
        query_param("limit", {{"type", "integer"}, {"maximum", 500}})}},
      {"responses",
       with_errors(
           {{"200",
             response("A page of groups",
                      {{"type", "object"},
                       {"properties",
                        {{"groups",
                          {{"type", "array"},
                           {"items",
                            {{"type", "object"},
                             {"properties", {{"items", {{"type", "array"}, {"items", ref("Item")}}}}}}}}},
                         {"total", {{"type", "integer"}, {"description", "groups"}}},
                         {"items_in_groups", {{"type", "integer"}}}}}})}},
           {400})}};
  paths["/api/v1/attributes"]["get"] = {
      {"summary",
       "What the catalog can be filtered by: its price range and each attribute's most common values"},
      {"responses",
       with_errors(
           {{"200",
             response(
                 "Facets",
                 {{"type", "object"},
                  {"properties",
                   {{"price",
                     {{"type", "object"},
                      {"nullable", true},
                      {"properties",
                       {{"min", {{"type", "number"}}},
                        {"max", {{"type", "number"}}},
                        {"items", {{"type", "integer"}}}}}}},
                    {"attributes",
                     {{"type", "array"},
                      {"items",
                       {{"type", "object"},
                        {"properties",
                         {{"name", {{"type", "string"}}},
                          {"items", {{"type", "integer"}}},
                          {"distinct", {{"type", "integer"}}},
                          {"values",
                           {{"type", "array"},
                            {"description", "at most 50, most common first"},
                            {"items",
                             {{"type", "object"},
                              {"properties",
                               {{"value", json::object()}, {"count", {{"type", "integer"}}}}}}}}}}}}}}}}}})}},
           {400})}};
  paths["/api/v1/categories"]["get"] = {
      {"summary", "Categories with item counts"},
      {"responses", {{"200", response("Categories", {{"type", "object"}})}}}};
  paths["/api/v1/stats"]["get"] = {
      {"summary",
       "Catalog size, training figures, the CNN's engine, precision and CPU instruction set, and "
       "what the long jobs on the catalog (import, train) are doing"},
      {"responses", {{"200", response("Stats", stats_schema())}}}};
  const json versions_schema{
      {"type", "object"},
      {"properties",
       {{"active", {{"type", "integer"}}},
        {"versions",
         {{"type", "array"},
          {"items",
           {{"type", "object"},
            {"properties",
             {{"version", {{"type", "integer"}}},
              {"active", {{"type", "boolean"}}},
              {"validation_accuracy", {{"type", "number"}}},
              {"frozen_validation_accuracy", {{"type", "number"}, {"nullable", true}}},
              {"frozen_blend_weight",
               {{"type", "number"},
                {"description", "weight of the frozen probe blended into the head's predictions"}}},
              {"blended_validation_accuracy", {{"type", "number"}}},
              {"auto_min_confidence", {{"type", "number"}}},
              {"evaluation", {{"type", "object"}, {"nullable", true}}}}}}}}}}}};
  paths["/api/v1/models"]["get"] = {
      {"summary", "Model versions (0 = frozen recipe) with their validation and evaluation figures"},
      {"responses", {{"200", response("Versions", versions_schema)}}}};
  paths["/api/v1/models/active"]["put"] = {
      {"summary", "Activate a model version (admin), as `lookalike model use`; body {\"version\": N}"},
      {"security", bearer},
      {"requestBody",
       {{"content",
         {{"application/json",
           {{"schema",
             {{"type", "object"},
              {"required", {"version"}},
              {"properties", {{"version", {{"type", "integer"}, {"minimum", 0}}}}}}}}}}}}},
      {"responses", with_errors({{"200", response("Versions", versions_schema)}}, {400, 401, 404, 415})}};
  paths["/api/v1/models/{version}"]["delete"] = {
      {"summary",
       "Remove an inactive trained version with its descriptors and index files (admin), as `lookalike "
       "model remove`"},
      {"security", bearer},
      {"parameters", {path_param("version")}},
      {"responses", with_errors({{"200", response("Versions", versions_schema)}}, {400, 401, 404, 409})}};
  paths["/healthz"]["get"] = {{"summary", "Liveness"}, {"responses", {{"200", {{"description", "Alive"}}}}}};
  paths["/readyz"]["get"] = {{"summary", "Readiness: catalog loaded and searchable"},
                             {"responses", with_errors({{"200", {{"description", "Ready"}}}}, {503})}};
  paths["/metrics"]["get"] = {{"summary", "Prometheus metrics"},
                              {"responses", {{"200", {{"description", "text/plain exposition"}}}}}};
  paths["/api/openapi.json"]["get"] = {{"summary", "This document"},
                                       {"responses", {{"200", {{"description", "OpenAPI 3"}}}}}};
  return {{"openapi", "3.0.3"},
          {"info",
           {{"title", "Lookalike API"},
            {"version", "1.0.0"},
            {"description", "Visually similar product search."}}},
          {"paths", paths},
          {"components",
           {{"schemas", schemas()},
            {"responses", {{"Error", response("Error", ref("Error"))}}},
            {"securitySchemes", {{"bearerAuth", {{"type", "http"}, {"scheme", "bearer"}}}}}}}};
}

}  // namespace lookalike
