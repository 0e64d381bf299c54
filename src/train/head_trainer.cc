// The head trainer's front: the validation split, and train_head, which runs libtorch from a
// module of its own (torch_head_trainer.cc, built as liblookalike_torch.so).
//
// Why a module: Debian's libtorch registers thousands of operators and pulls in OpenCV's GUI,
// video and FFmpeg libraries as soon as it is linked, which cost every `lookalike` process
// about 0.6 s of start-up on 2 cores (measured: 0.76 s for an empty program linked like
// lookalike, 0.18 s without libtorch), although only `train` and the background training use
// it. Serving, searching, importing and the workers now start without it.
#include "train/head_trainer.h"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>

#include "common/error.h"

#ifndef LOOKALIKE_TORCH_MODULE_PATH
#define LOOKALIKE_TORCH_MODULE_PATH ""
#endif

namespace lookalike {
namespace {

constexpr const char* kModuleName = "liblookalike_torch.so";
using TrainHeadEntry = void (*)(const HeadTrainCall*, HeadTrainResult*);

std::vector<std::string> module_candidates() {
  if (const char* env = std::getenv("LOOKALIKE_TORCH_MODULE"); env && *env) return {env};
  std::vector<std::string> paths;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    paths.push_back((self.parent_path() / kModuleName).string());
    paths.push_back((self.parent_path().parent_path() / "lib/lookalike" / kModuleName).string());  // installed
  }
  if (*LOOKALIKE_TORCH_MODULE_PATH) paths.emplace_back(LOOKALIKE_TORCH_MODULE_PATH);
  return paths;
}

TrainHeadEntry load_entry() {
  std::string failures;
  for (const auto& path : module_candidates()) {
    if (!std::filesystem::exists(path)) {
      failures += "\n  " + path + ": no such file";
      continue;
    }
    // Kept loaded for the life of the process: libtorch cannot be unloaded cleanly.
    void* module = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!module) {
      failures += "\n  " + path + ": " + ::dlerror();
      continue;
    }
    if (auto* entry = reinterpret_cast<TrainHeadEntry>(::dlsym(module, "lookalike_train_head"))) return entry;
    failures += "\n  " + path + ": no lookalike_train_head in it";
  }
  throw Error(ErrorCode::kNotReady, std::string("cannot load the head trainer (") + kModuleName +
                                        ", built beside the lookalike binary; set LOOKALIKE_TORCH_MODULE "
                                        "to its path):" + failures);
}

TrainHeadEntry entry() {
  static std::mutex mutex;
  static TrainHeadEntry loaded = nullptr;
  std::lock_guard lock(mutex);
  if (!loaded) loaded = load_entry();  // a failure is retried on the next call
  return loaded;
}

}  // namespace

std::pair<std::vector<TrainSample>, std::vector<TrainSample>> split_validation(
    std::vector<TrainSample> samples, double fraction, uint32_t seed) {
  std::map<int, std::vector<TrainSample>> by_class;
  for (auto& s : samples) by_class[s.label].push_back(std::move(s));
  std::mt19937 rng(seed);
  std::vector<TrainSample> train, validation;
  for (auto& [label, group] : by_class) {
    std::shuffle(group.begin(), group.end(), rng);
    size_t take = 0;
    if (group.size() >= 2) {
      take =
          std::max<size_t>(1, static_cast<size_t>(std::lround(fraction * static_cast<double>(group.size()))));
      // At least 5 where the class can spare a quarter: on a small catalog a 5% split is one or
      // two photos per class, too few to pick an epoch or to compare recipes with.
      take = std::max(take, std::min<size_t>(5, group.size() / 4));
      take = std::min(take, group.size() - 1);
    }
    validation.insert(validation.end(), group.begin(), group.begin() + static_cast<std::ptrdiff_t>(take));
    train.insert(train.end(), group.begin() + static_cast<std::ptrdiff_t>(take), group.end());
  }
  return {std::move(train), std::move(validation)};
}

HeadTrainResult train_head(const FeatureCache& cache, const std::vector<TrainSample>& train,
                           const std::vector<TrainSample>& validation,
                           const std::vector<std::string>& classes, const HeadTrainOptions& options,
                           const HeadTrainCallbacks& callbacks) {
  const HeadTrainCall call{cache, train, validation, classes, options, callbacks};
  HeadTrainResult result;
  entry()(&call, &result);
  return result;
}

}  // namespace lookalike
