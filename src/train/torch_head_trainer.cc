// The libtorch half of train/head_trainer.h, built as a module of its own
// (liblookalike_torch.so) that only a training process loads: see head_trainer.cc for why.
#include "train/head_trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <map>
#include <numeric>
#include <random>
#include <thread>

#include "common/error.h"

namespace lookalike {
namespace {

namespace F = torch::nn::functional;
constexpr double kGemEps = 1e-6;

struct HeadNetImpl : torch::nn::Module {
  HeadNetImpl(int64_t in, int64_t channels, int64_t classes, const HeadTrainOptions& o, double bn_momentum)
      : conv(register_module("conv",
                             torch::nn::Conv2d(torch::nn::Conv2dOptions(in, channels, 1).bias(false)))),
        bn(register_module(
            "bn", torch::nn::BatchNorm2d(torch::nn::BatchNormOptions(channels).momentum(bn_momentum)))),
        p(register_parameter("p", torch::full({1}, 3.0))),
        bn1d(register_module(
            "bn1d", torch::nn::BatchNorm1d(torch::nn::BatchNormOptions(channels).momentum(bn_momentum)))),
        linear(register_module("linear", torch::nn::Linear(channels, classes))),
        map_dropout(o.map_dropout),
        dropout(o.dropout) {}

  // Returns {gem [N, channels], logits [N, classes]}.
  std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor x) {
    x = F::dropout2d(x, F::Dropout2dFuncOptions().p(map_dropout).training(is_training()));
    x = torch::relu(bn(conv(x)));
    const auto exponent = p.clamp_min(1.0);  // GeM below p = 1 is not a pooling any more
    // (x + eps)^p as exp(p log(x + eps)): the same values (the export writes Pow), but autograd
    // through a tensor exponent costs ~4x more than through exp and log (measured, 64x512x17x17).
    auto gem = ((x + kGemEps).log() * exponent).exp().mean({2, 3}).pow(exponent.reciprocal());
    auto z = F::dropout(bn1d(gem), F::DropoutFuncOptions().p(dropout).training(is_training()));
    return {gem, linear(z)};
  }

  torch::nn::Conv2d conv;
  torch::nn::BatchNorm2d bn;
  torch::Tensor p;
  torch::nn::BatchNorm1d bn1d;
  torch::nn::Linear linear;
  double map_dropout, dropout;
};
TORCH_MODULE(HeadNet);

using Clock = std::chrono::steady_clock;

// Batches of maps read from the cache; `flips` chooses each sample's orientation.
torch::Tensor load_maps(const FeatureCache& cache, const std::vector<TrainSample>& samples,
                        const std::vector<size_t>& order, size_t begin, size_t end,
                        const std::vector<bool>& flips) {
  const auto& s = cache.shape();
  auto batch = torch::empty({static_cast<int64_t>(end - begin), s[0], s[1], s[2]});
  float* out = batch.data_ptr<float>();
  for (size_t i = begin; i < end; ++i) {
    const TrainSample& sample = samples[order[i]];
    const bool flipped = !flips.empty() && flips[i];
    if (!cache.get(sample.sha256, flipped, out + (i - begin) * cache.values())) {
      throw Error(ErrorCode::kNotReady,
                  "feature map of photo " + sample.sha256 + " is missing from the cache");
    }
  }
  return batch;
}

// A random window of the batch's maps, each side at least `keep` of its length (1 = the whole
// maps). GeM pools over whatever window it gets, so a window of the maps is the head's view of a
// crop of the photo, the alteration a shopper's photo brings, without running the CNN again.
torch::Tensor random_crop(const torch::Tensor& maps, float keep, std::mt19937& rng) {
  if (keep >= 1.0f) return maps;
  const auto window = [&](int64_t length) {
    const auto least =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil(keep * static_cast<float>(length))));
    const int64_t size = std::uniform_int_distribution<int64_t>(least, length)(rng);
    const int64_t start = std::uniform_int_distribution<int64_t>(0, length - size)(rng);
    return std::pair{start, size};
  };
  const auto [top, height] = window(maps.size(2));
  const auto [left, width] = window(maps.size(3));
  return maps.slice(2, top, top + height).slice(3, left, left + width);
}

torch::Tensor labels_of(const std::vector<TrainSample>& samples, const std::vector<size_t>& order,
                        size_t begin, size_t end) {
  auto labels = torch::empty({static_cast<int64_t>(end - begin)}, torch::kLong);
  for (size_t i = begin; i < end; ++i) labels[static_cast<int64_t>(i - begin)] = samples[order[i]].label;
  return labels;
}

// PyTorch's OneCycleLR (cosine, 30% warm-up, from peak/25 to peak/25e4).
double one_cycle(double peak, size_t step, size_t total) {
  const double warm = 0.3 * static_cast<double>(total);
  const double start = peak / 25, end = start / 1e4;
  const auto cosine = [](double from, double to, double t) {
    return to + (from - to) * (1 + std::cos(M_PI * t)) / 2;
  };
  const double s = static_cast<double>(step);
  return s < warm ? cosine(start, peak, s / warm)
                  : cosine(peak, end, (s - warm) / std::max(1.0, total - warm));
}

struct Evaluation {
  double loss = 0, accuracy = 0;
  torch::Tensor logits, labels;
};

Evaluation evaluate(HeadNet& net, const FeatureCache& cache, const std::vector<TrainSample>& samples,
                    size_t batch_size) {
  torch::NoGradGuard no_grad;
  net->eval();
  std::vector<size_t> order(samples.size());
  std::iota(order.begin(), order.end(), 0);
  std::vector<torch::Tensor> logits, labels;
  for (size_t b = 0; b < samples.size(); b += batch_size) {
    const size_t e = std::min(samples.size(), b + batch_size);
    logits.push_back(net->forward(load_maps(cache, samples, order, b, e, {})).second);
    labels.push_back(labels_of(samples, order, b, e));
  }
  Evaluation r;
  r.logits = torch::cat(logits);
  r.labels = torch::cat(labels);
  r.loss = F::cross_entropy(r.logits, r.labels).item<double>();
  r.accuracy = r.logits.argmax(1).eq(r.labels).to(torch::kDouble).mean().item<double>();
  return r;
}

// Temperature minimising the validation negative log-likelihood (grid search is enough for one
// scalar and cannot diverge).
float fit_temperature(const torch::Tensor& logits, const torch::Tensor& labels) {
  float best = 1, best_nll = INFINITY;
  for (float t = 0.25f; t <= 4.0f; t += 0.05f) {
    const float nll = F::cross_entropy(logits / t, labels).item<float>();
    if (nll < best_nll) best_nll = nll, best = t;
  }
  return best;
}

std::vector<float> to_vector(const torch::Tensor& t) {
  const auto c = t.contiguous().to(torch::kFloat);
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

HeadWeights fold(HeadNet& net, const std::vector<std::string>& classes, size_t in_channels) {
  torch::NoGradGuard no_grad;
  HeadWeights w;
  w.in_channels = in_channels;
  w.channels = static_cast<size_t>(net->conv->weight.size(0));
  const auto bn_scale = net->bn->weight / (net->bn->running_var + net->bn->options.eps()).sqrt();
  w.conv_weight = to_vector(net->conv->weight.flatten(1) * bn_scale.unsqueeze(1));
  w.conv_bias = to_vector(net->bn->bias - net->bn->running_mean * bn_scale);
  w.gem_p = net->p.clamp_min(1.0).item<float>();
  w.gem_eps = static_cast<float>(kGemEps);
  const auto s1 = net->bn1d->weight / (net->bn1d->running_var + net->bn1d->options.eps()).sqrt();
  const auto shift1 = net->bn1d->bias - net->bn1d->running_mean * s1;
  w.linear_weight = to_vector(net->linear->weight * s1.unsqueeze(0));
  w.linear_bias = to_vector(net->linear->bias + net->linear->weight.matmul(shift1));
  w.classes = classes;
  return w;
}

HeadReference reference_outputs(HeadNet& net, const FeatureCache& cache,
                                const std::vector<TrainSample>& samples) {
  torch::NoGradGuard no_grad;
  net->eval();
  HeadReference r;
  r.n = std::min<size_t>(4, samples.size());
  std::vector<size_t> order(r.n);
  std::iota(order.begin(), order.end(), 0);
  const auto maps = load_maps(cache, samples, order, 0, r.n, {});
  const auto [gem, logits] = net->forward(maps);
  r.maps = to_vector(maps);
  r.gem = to_vector(gem);
  r.logits = to_vector(logits);
  return r;
}

// BatchNorm's running statistics start at mean 0, variance 1; with PyTorch's default momentum
// (0.1) a small catalog (a few batches per epoch) validates with statistics that are still
// mostly that prior, and predicts one class for everything. The momentum is raised so that
// one epoch's batches weigh 99% of the running statistics, never below the default.
double bn_momentum(size_t batches_per_epoch) {
  return std::max(0.1,
                  1.0 - std::pow(0.01, 1.0 / static_cast<double>(std::max<size_t>(1, batches_per_epoch))));
}

// Parameters and buffers, copied (to keep the best epoch).
std::vector<torch::Tensor> snapshot(HeadNet& net) {
  std::vector<torch::Tensor> s;
  for (const auto& t : net->parameters()) s.push_back(t.detach().clone());
  for (const auto& t : net->buffers()) s.push_back(t.detach().clone());
  return s;
}

void restore(HeadNet& net, const std::vector<torch::Tensor>& s) {
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (auto& t : net->parameters()) t.copy_(s[i++]);
  for (auto& t : net->buffers()) t.copy_(s[i++]);
}

}  // namespace

HeadTrainResult train_head_with_torch(const HeadTrainCall& call) {
  const auto& [cache, train, validation, classes, options, callbacks] = call;
  if (train.size() < 2 || validation.empty() || classes.size() < 2) {
    throw Error(ErrorCode::kNotReady,
                "training the head needs >= 2 categories, >= 2 training and >= 1 validation photo");
  }
  const int threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(std::max(1, threads));
  torch::manual_seed(options.seed);
  std::mt19937 rng(options.seed);
  const auto& shape = cache.shape();
  // A last batch of one sample would break BatchNorm's batch statistics: it is dropped.
  const size_t usable = train.size() % options.batch_size == 1 ? train.size() - 1 : train.size();
  const size_t batches = (usable + options.batch_size - 1) / options.batch_size;
  HeadNet net(shape[0], static_cast<int64_t>(options.channels), static_cast<int64_t>(classes.size()), options,
              bn_momentum(batches));
  torch::optim::AdamW optimizer(
      net->parameters(),
      torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay));

  const size_t total_steps = batches * static_cast<size_t>(options.max_epochs);
  HeadTrainResult result;
  std::vector<torch::Tensor> best;
  size_t step = 0;
  for (int epoch = 1; epoch <= options.max_epochs; ++epoch) {
    const auto started = Clock::now();
    net->train();
    std::vector<size_t> order(train.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<bool> flips(train.size());
    for (size_t i = 0; i < flips.size(); ++i) flips[i] = rng() & 1u;
    double loss_sum = 0, correct = 0;
    // The next batch is read while this one trains: the maps of a big catalog do not stay in the
    // page cache between epochs (measured: 27-80 s epochs instead of 16-21 s when every read
    // waited for the disk), so reading must overlap the compute.
    const auto read_batch = [&](size_t b) {
      const size_t begin = b * options.batch_size, end = std::min(usable, begin + options.batch_size);
      return load_maps(cache, train, order, begin, end, flips);
    };
    std::future<torch::Tensor> next = std::async(std::launch::async, read_batch, 0);
    for (size_t b = 0; b < batches; ++b) {
      const size_t begin = b * options.batch_size, end = std::min(usable, begin + options.batch_size);
      const auto maps = next.get();
      if (b + 1 < batches) next = std::async(std::launch::async, read_batch, b + 1);
      const auto labels = labels_of(train, order, begin, end);
      for (auto& group : optimizer.param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(group.options())
            .lr(one_cycle(options.learning_rate, step, total_steps));
      }
      ++step;
      optimizer.zero_grad();
      const auto logits = net->forward(random_crop(maps, options.map_crop, rng)).second;
      auto loss = F::cross_entropy(logits, labels,
                                   F::CrossEntropyFuncOptions().label_smoothing(options.label_smoothing));
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>() * static_cast<double>(end - begin);
      correct += logits.argmax(1).eq(labels).sum().item<double>();
      if (callbacks.on_batch)
        callbacks.on_batch({epoch, b + 1, batches, loss_sum / static_cast<double>(end)});
    }
    const auto val = evaluate(net, cache, validation, options.batch_size);
    EpochReport report{epoch,
                       options.max_epochs,
                       loss_sum / static_cast<double>(usable),
                       correct / static_cast<double>(usable),
                       val.loss,
                       val.accuracy,
                       std::chrono::duration<double>(Clock::now() - started).count(),
                       false};
    // Ties go to the lower validation loss: on small splits accuracy moves in coarse steps.
    report.best = result.best_epoch == 0 || val.accuracy > result.val_accuracy ||
                  (val.accuracy == result.val_accuracy && val.loss < result.val_loss);
    if (report.best) {
      result.best_epoch = epoch;
      result.val_accuracy = val.accuracy;
      result.val_loss = val.loss;
      best = snapshot(net);
    }
    result.epochs.push_back(report);
    if (callbacks.on_epoch) callbacks.on_epoch(report);
    if (epoch - result.best_epoch >= options.patience) break;
  }
  restore(net, best);
  const auto val = evaluate(net, cache, validation, options.batch_size);
  result.temperature = fit_temperature(val.logits, val.labels);
  result.weights = fold(net, classes, static_cast<size_t>(shape[0]));
  result.reference = reference_outputs(net, cache, validation);
  return result;
}

}  // namespace lookalike

// The module's one entry point, looked up by name with dlsym (train/head_trainer.cc).
extern "C" void lookalike_train_head(const lookalike::HeadTrainCall* call,
                                     lookalike::HeadTrainResult* result) {
  *result = lookalike::train_head_with_torch(*call);
}
