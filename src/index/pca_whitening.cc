#include "index/pca_whitening.h"

#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/error.h"
#include "common/vectors.h"

// BLAS and LAPACK, the ones FAISS links (Debian: OpenBLAS through alternatives).
extern "C" {
void ssyrk_(const char* uplo, const char* trans, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* beta, float* c, const int* ldc);
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n, double* a, const int* lda,
             const double* vl, const double* vu, const int* il, const int* iu, const double* abstol, int* m,
             double* w, double* z, const int* ldz, int* isuppz, double* work, const int* lwork, int* iwork,
             const int* liwork, int* info);
}

namespace lookalike {
using idx_t = faiss::Index::idx_t;

namespace {

struct TopEigen {
  std::vector<double> values;   // k, descending
  std::vector<double> vectors;  // k x m row-major, unit rows, in the order of `values`
};

// The k largest eigenpairs of the symmetric m x m matrix `a` (upper triangle, column-major;
// overwritten). FAISS's PCAMatrix asks LAPACK's dsyev for all m eigenvectors by QR iteration:
// 112 s at m = 4,792 on 2 cores, where the catalog keeps 512 of them. dsyevr (relatively robust
// representations) computes only the requested ones: 6 s. Returns an empty result when LAPACK
// reports a failure.
TopEigen top_eigenpairs(std::vector<double>& a, int m, int k) {
  const char jobz = 'V', range = 'I', uplo = 'U';
  const int il = m - k + 1, iu = m;
  const double unused = 0, abstol = 0;
  int found = 0, info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  std::vector<double> w(static_cast<size_t>(m)), z(static_cast<size_t>(m) * static_cast<size_t>(k));
  std::vector<int> isuppz(2 * static_cast<size_t>(k));
  dsyevr_(&jobz, &range, &uplo, &m, a.data(), &m, &unused, &unused, &il, &iu, &abstol, &found, w.data(),
          z.data(), &m, isuppz.data(), &work_query, &lwork, &iwork_query, &liwork, &info);
  if (info != 0) return {};
  lwork = static_cast<int>(work_query);
  liwork = iwork_query;
  std::vector<double> work(static_cast<size_t>(lwork));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  dsyevr_(&jobz, &range, &uplo, &m, a.data(), &m, &unused, &unused, &il, &iu, &abstol, &found, w.data(),
          z.data(), &m, isuppz.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
  if (info != 0 || found != k) return {};
  TopEigen top;  // LAPACK returns them ascending; PCA wants the strongest first
  for (int i = k - 1; i >= 0; --i) {
    top.values.push_back(w[static_cast<size_t>(i)]);
    top.vectors.insert(top.vectors.end(), z.begin() + static_cast<std::ptrdiff_t>(i) * m,
                       z.begin() + static_cast<std::ptrdiff_t>(i + 1) * m);
  }
  return top;
}

// Fills mean, PCAMat (d_out rows only), eigenvalues and the projection the way
// faiss::PCAMatrix::train does (the covariance when n >= d_in, else the Gram matrix of the
// centred samples), with only the d_out strongest eigenvectors computed. Returns false when
// LAPACK failed, leaving `pca` untrained.
bool learn_strongest_components(faiss::PCAMatrix& pca, size_t n, const float* x) {
  const size_t d = static_cast<size_t>(pca.d_in), k = static_cast<size_t>(pca.d_out);
  std::vector<double> sum(d, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) sum[j] += x[i * d + j];
  pca.mean.resize(d);
  for (size_t j = 0; j < d; ++j) pca.mean[j] = static_cast<float>(sum[j] / double(n));
  std::vector<float> centred(x, x + n * d);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) centred[i * d + j] -= pca.mean[j];

  const int d_in = pca.d_in, d_out = pca.d_out, ni = static_cast<int>(n);
  const bool covariance = ni >= d_in;
  const int m = covariance ? d_in : ni;
  std::vector<float> product(static_cast<size_t>(m) * static_cast<size_t>(m), 0.f);
  const float one = 1.f, zero = 0.f;
  // Row-major n x d_in is column-major d_in x n: "N" gives the d_in x d_in covariance, "T" the
  // n x n Gram matrix.
  ssyrk_("U", covariance ? "N" : "T", &m, covariance ? &ni : &d_in, &one, centred.data(), &d_in, &zero,
         product.data(), &m);
  std::vector<double> a(product.begin(), product.end());
  product = {};
  const TopEigen top = top_eigenpairs(a, m, d_out);
  if (top.values.empty()) return false;

  pca.eigenvalues.assign(d, 0.f);
  for (size_t i = 0; i < k; ++i) pca.eigenvalues[i] = static_cast<float>(top.values[i]);
  std::vector<float> vectors(top.vectors.begin(), top.vectors.end());
  if (covariance) {
    pca.PCAMat = std::move(vectors);
  } else {
    // Eigenvectors of the Gram matrix map to those of the covariance through the samples:
    // component = centred^T v, then unit length.
    pca.PCAMat.assign(k * d, 0.f);
    sgemm_("N", "N", &d_in, &d_out, &ni, &one, centred.data(), &d_in, vectors.data(), &ni, &zero,
           pca.PCAMat.data(), &d_in);
    for (size_t i = 0; i < k; ++i) l2_normalise(pca.PCAMat.data() + i * d, d);
  }
  pca.prepare_Ab();
  pca.is_trained = true;
  return true;
}

}  // namespace

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
  if (!learn_strongest_components(*pca, n, x)) {
    spdlog::warn("LAPACK's dsyevr failed on the PCA; computing every eigenvector instead (slower)");
    pca->train(static_cast<idx_t>(n), x);
  }
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
