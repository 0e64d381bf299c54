// PCA-whitening learned from the catalog's own descriptors (FAISS PCAMatrix, LAPACK inside):
// projects onto the top `output_dimension` components, scales each by eigenvalue^power
// (-0.5 = full whitening) and L2-normalises the result.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace faiss {
struct PCAMatrix;
}

namespace lookalike {

class PcaWhitening {
 public:
  // x: n x input_dimension row-major (caller-owned). output_dimension is capped at n / 4.
  static PcaWhitening train(size_t n, size_t input_dimension, const float* x, size_t output_dimension,
                            float eigen_power = -0.5f);
  static PcaWhitening deserialize(const std::string& bytes);  // throws Error(kCorruptStore)

  PcaWhitening(PcaWhitening&&) noexcept;
  PcaWhitening& operator=(PcaWhitening&&) noexcept;
  ~PcaWhitening();

  size_t input_dimension() const;
  size_t output_dimension() const;
  // n x input_dimension -> n x output_dimension, each row unit length. Thread-safe.
  std::vector<float> apply(size_t n, const float* x) const;
  std::string serialize() const;

 private:
  explicit PcaWhitening(std::unique_ptr<faiss::PCAMatrix> pca);
  std::unique_ptr<faiss::PCAMatrix> pca_;
};

}  // namespace lookalike
