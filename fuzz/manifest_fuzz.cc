// libFuzzer target: CSV and JSONL import manifests. Malformed input must end in
// lookalike::Error (a clear message), never a crash or another exception type.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "service/import_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool jsonl = data[0] & 1;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const auto entries = lookalike::parse_manifest(text, jsonl, "/base", "fuzz");
    for (const auto& e : entries) {
      if (!lookalike::valid_item_id(e.id)) __builtin_trap();
    }
  } catch (const lookalike::Error&) {
  }
  return 0;
}
