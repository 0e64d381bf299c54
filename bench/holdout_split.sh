#!/bin/bash
# Builds the held-out split that docs/quality.md reports on, as symlinks (no copies of the photos):
# in each category folder, photos sorted by their number; every 5th (index 4, 9, 14, ...) is a
# query, the rest is the catalog. With fashion6-dev: 3,834 catalog photos and 958 queries.
# A split built any other way (e.g. names sorted as text) is a different split whose figures
# cannot be compared with the documented ones.
#   bench/holdout_split.sh [DATASET] [OUT]   (defaults: ../shared/datasets/fashion6-dev /tmp/split)
set -euo pipefail
dataset=$(realpath "${1:-../shared/datasets/fashion6-dev}")
out=${2:-/tmp/split}
[ -d "$dataset" ] || { echo "holdout_split: no dataset at $dataset" >&2; exit 2; }
rm -rf "$out/catalog" "$out/queries"
for dir in "$dataset"/*/; do
  category=$(basename "$dir")
  mkdir -p "$out/catalog/$category" "$out/queries/$category"
  i=0
  while read -r name; do
    if [ $((i % 5)) -eq 4 ]; then part=queries; else part=catalog; fi
    ln -s "$dir$name" "$out/$part/$category/$name"
    i=$((i + 1))
  done < <(ls "$dir" | sort -n)
done
echo "holdout_split: $(find "$out/catalog" -type l | wc -l) catalog photos, $(find "$out/queries" -type l | wc -l) queries in $out"
