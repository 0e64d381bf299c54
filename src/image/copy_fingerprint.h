// Tells a copy of a product shot (the same file resized, re-compressed, slightly cropped or
// mirrored, as shops and aggregators re-publish it) from a different product photographed the
// same way. The CNN descriptors cannot (docs/quality.md, "Near-duplicates"): a copy at half size
// drifts further from its original than two black dresses in the same pose are from each other.
//
// The fingerprint is a small L*a*b* thumbnail of the whole photo. Two are compared in three steps:
//  1. Align to whole pixels: a crop is a shift and a small zoom, so every zoom of kCopyZooms is
//     tried in both directions, plain and mirrored, and cv::matchTemplate finds the shift.
//  2. Refine to a fraction of a pixel (cv::findTransformECC, affine): half a pixel of shift at a
//     dark garment's edge on a white backdrop differs by tens of CIE76 units.
//  3. Measure the structured difference: the aligned residual, blurred, at its largest. A copy
//     differs a little everywhere (compression and resampling noise cancels in the blur); a
//     different product a lot somewhere (a pocket, a logo, a strap only one photo has).
#pragma once

#include <opencv2/core.hpp>

namespace lookalike {

// Thumbnail side in pixels; catalog photos are about 125 pixels wide, so 48 keeps the detail a
// pocket or a print makes while a half-size copy (about 62 pixels) still fills it.
inline constexpr int kCopyThumbnailSide = 48;

// Owns its pixels; about 55 KB, so keep one per photo being compared, not per catalog item.
struct CopyFingerprint {
  cv::Mat lab;                 // kCopyThumbnailSide square, CV_32FC3 L*a*b*
  cv::Mat mirrored;            // the same, flipped left to right
  cv::Mat lightness;           // L* of `lab`, CV_32FC1 (the whole-pixel alignment uses it alone)
  cv::Mat mirrored_lightness;  // L* of `mirrored`
};

// RGB CV_8UC3 of any size; smaller than 8 x 8 pixels or another type throws std::invalid_argument.
CopyFingerprint copy_fingerprint(const cv::Mat& rgb);

struct CopyComparison {
  float correlation = -1;  // normalised cross-correlation of the aligned thumbnails, -1..1
  float structure = 1e9f;  // largest CIE76 value of the blurred aligned residual (1e9: not aligned)
  bool mirrored = false;   // one photo lines up with the other's mirror image
};

// Compares two fingerprints; pairs that do not even roughly line up return early (most
// look-alikes), so a comparison costs about 0.5-2 ms.
CopyComparison compare_copies(const CopyFingerprint& a, const CopyFingerprint& b);

// The decision, calibrated in bench/bench_duplicates on variants of catalog photos (resize, JPEG
// quality 50-95, 5% crop, mirror) against the look-alikes the index returns (docs/quality.md).
inline constexpr float kCopyMinCorrelation = 0.96f;
inline constexpr float kCopyMaxStructure = 5.0f;
inline bool is_copy(const CopyComparison& c) {
  return c.correlation >= kCopyMinCorrelation && c.structure <= kCopyMaxStructure;
}

}  // namespace lookalike
