// libFuzzer target: the model manifest (model/*.json next to the ONNX file). ModelManifest::load
// reads a path, so each input is written to an in-memory file (memfd) and loaded through
// /proc/self/fd. Any input must give a manifest whose checked fields are in range, or
// lookalike::Error (never a crash, another exception type or undefined behaviour).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "model/model_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("manifest.json", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) __builtin_trap();
  if (size > 0 && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) __builtin_trap();
  try {
    const auto m = lookalike::ModelManifest::load(path);
    if (m.width < 8 || m.width > 4096 || m.height < 8 || m.height > 4096) __builtin_trap();
    if (m.outputs.empty() || !(m.gem_p >= 1.f && m.gem_p <= 16.f)) __builtin_trap();
    for (float s : m.std) {
      if (!(s > 0)) __builtin_trap();
    }
  } catch (const lookalike::Error&) {
  }
  return 0;
}
