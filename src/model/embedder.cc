#include "model/embedder.h"

#include <condition_variable>
#include <mutex>

#include "common/vectors.h"
#include "model/gem.h"

namespace lookalike {

GemEmbedder::GemEmbedder(const ModelManifest& manifest) : network_(manifest) {
  // One forward on a blank image tells the descriptor size and warms the network up, so the
  // first real request does not pay for lazy allocation.
  const cv::Mat blank(manifest.height, manifest.width, CV_8UC3, cv::Scalar(128, 128, 128));
  dimension_ = static_cast<size_t>(embed({blank}).cols);
}

std::string GemEmbedder::model_id() const {
  const auto& m = network_.manifest();
  std::string id = m.name + ":gem" + std::to_string(static_cast<int>(m.gem_p));
  for (const auto& out : m.outputs) id += ":" + out;
  return id;
}

cv::Mat GemEmbedder::embed(const std::vector<cv::Mat>& rgb) {
  std::vector<cv::Mat> inputs;
  inputs.reserve(rgb.size());
  for (const auto& image : rgb) inputs.push_back(preprocess_image(image, network_.manifest()));
  return embed_blob(network_.make_blob(inputs));
}

cv::Mat GemEmbedder::embed_blob(const cv::Mat& blob) {
  const auto& m = network_.manifest();
  const std::vector<cv::Mat> maps = network_.forward(blob, m.outputs);
  const int n = blob.size[0];
  int total = 0;
  for (const auto& map : maps) total += map.size[1];
  cv::Mat descriptors(n, total, CV_32F);
  for (int i = 0; i < n; ++i) {
    float* row = descriptors.ptr<float>(i);
    for (const auto& map : maps) {
      const size_t channels = static_cast<size_t>(map.size[1]);
      const size_t spatial = map.total() / (static_cast<size_t>(n) * channels);
      gem_pool(map.ptr<float>(i), channels, spatial, m.gem_p, row);
      l2_normalise(row, channels);
      row += channels;
    }
  }
  return descriptors;
}

struct EmbedderPool::State {
  std::vector<std::unique_ptr<GemEmbedder>> all;
  std::vector<ImageEmbedder*> free;
  // Tickets hand out embedders in arrival order, so under load a request waits for the ones
  // queued before it rather than for luck (tail latency).
  uint64_t next_ticket = 0;
  uint64_t now_serving = 0;
  std::mutex mutex;
  std::condition_variable available;
};

EmbedderPool::EmbedderPool(const ModelManifest& manifest, size_t size) : state_(std::make_unique<State>()) {
  for (size_t i = 0; i < std::max<size_t>(1, size); ++i) {
    state_->all.push_back(std::make_unique<GemEmbedder>(manifest));
    state_->free.push_back(state_->all.back().get());
  }
}

EmbedderPool::~EmbedderPool() = default;

EmbedderPool::Lease EmbedderPool::lease() {
  std::unique_lock lock(state_->mutex);
  const uint64_t ticket = state_->next_ticket++;
  state_->available.wait(lock, [&] { return ticket == state_->now_serving && !state_->free.empty(); });
  ++state_->now_serving;
  ImageEmbedder* e = state_->free.back();
  state_->free.pop_back();
  lock.unlock();
  state_->available.notify_all();  // the next ticket may be servable too
  return Lease(this, e);
}

EmbedderPool::Lease::~Lease() {
  if (!pool_) return;
  {
    std::lock_guard lock(pool_->state_->mutex);
    pool_->state_->free.push_back(embedder_);
  }
  pool_->state_->available.notify_all();
}

size_t EmbedderPool::dimension() const {
  return state_->all.front()->dimension();
}
std::string EmbedderPool::model_id() const {
  return state_->all.front()->model_id();
}
size_t EmbedderPool::size() const {
  return state_->all.size();
}

}  // namespace lookalike
