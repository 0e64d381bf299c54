#include "index/pca_whitening.h"

#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <algorithm>

#include "common/error.h"
#include "common/vectors.h"

namespace lookalike {
using idx_t = faiss::Index::idx_t;

PcaWhitening::PcaWhitening(std::unique_ptr<faiss::PCAMatrix> pca) : pca_(std::move(pca)) {}
PcaWhitening::PcaWhitening(PcaWhitening&&) noexcept = default;
PcaWhitening& PcaWhitening::operator=(PcaWhitening&&) noexcept = default;
PcaWhitening::~PcaWhitening() = default;

PcaWhitening PcaWhitening::train(size_t n, size_t input_dimension, const float* x, size_t output_dimension,
                                 float eigen_power) {
  if (n < 8)
    throw Error(ErrorCode::kInvalidArgument, "PCA needs at least 8 descriptors, got " + std::to_string(n));
  // Full whitening of n samples into ~n dimensions makes them equidistant (nothing left to
  // generalise from); keeping n/4 components leaves each at least a few samples of support.
  const size_t d_out = std::max<size_t>(2, std::min({output_dimension, n / 4, input_dimension}));
  auto pca = std::make_unique<faiss::PCAMatrix>(static_cast<int>(input_dimension), static_cast<int>(d_out),
                                                eigen_power, false);
  // Keeps whitening finite on the weakest kept components of small catalogs.
  pca->epsilon = 1e-6f;
  pca->max_points_per_d = 1000;
  pca->train(static_cast<idx_t>(n), x);
  // Applying needs only the projection (A, b). The full eigenvector matrix is d_in x d_in
  // (127 MB at 5,632-d) and would make every stored recipe, and so every start-up, ten times
  // heavier.
  pca->PCAMat = {};
  return PcaWhitening(std::move(pca));
}

PcaWhitening PcaWhitening::deserialize(const std::string& bytes) {
  faiss::VectorIOReader reader;
  reader.data.assign(bytes.begin(), bytes.end());
  std::unique_ptr<faiss::VectorTransform> vt;
  try {
    vt.reset(faiss::read_VectorTransform(&reader));
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorCode::kCorruptStore, std::string("stored PCA is corrupt: ") + e.what());
  }
  auto* pca = dynamic_cast<faiss::PCAMatrix*>(vt.get());
  if (!pca) throw Error(ErrorCode::kCorruptStore, "stored PCA is not a PCA matrix");
  vt.release();
  pca->PCAMat = {};  // recipes stored before it was dropped at training still carry it
  return PcaWhitening(std::unique_ptr<faiss::PCAMatrix>(pca));
}

size_t PcaWhitening::input_dimension() const {
  return static_cast<size_t>(pca_->d_in);
}
size_t PcaWhitening::output_dimension() const {
  return static_cast<size_t>(pca_->d_out);
}

std::vector<float> PcaWhitening::apply(size_t n, const float* x) const {
  std::vector<float> out(n * output_dimension());
  pca_->apply_noalloc(static_cast<idx_t>(n), x, out.data());
  for (size_t i = 0; i < n; ++i) l2_normalise(out.data() + i * output_dimension(), output_dimension());
  return out;
}

std::string PcaWhitening::serialize() const {
  faiss::VectorIOWriter writer;
  faiss::write_VectorTransform(pca_.get(), &writer);
  return std::string(writer.data.begin(), writer.data.end());
}

}  // namespace lookalike
