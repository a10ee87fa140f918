#!/usr/bin/env bash
# Prepares what scripts/gpu-run.sh needs on a GPU machine without network or Rust: run it here
# (a machine with the registries and the Rust toolchain), from the repository root.
#
#   scripts/gpu-pack.sh [ORT_VERSION]        (default 1.30.0, a CUDA 13 build)
#
# Writes four folders, each under the 64 MiB a device call may carry, ignored by git:
#   .gpu1 .gpu2 .gpu3   bundle.part0..2
#   .gpu                bundle.part3, bundle.sha256, our wheel (abi3), pages/ (if built)
# The bundle is `tar | xz` of ort/ (libonnxruntime.so.X, libonnxruntime_providers_cuda.so,
# libonnxruntime_providers_shared.so from the onnxruntime-gpu wheel for CPython 3.12) and
# models/ (the PP-OCR files of rapidocr_onnxruntime 1.4.4). Then, back to back (a machine
# stays warm 30 s after a call, and /tmp there survives only while it is warm):
#   run: bash scripts/gpu-run.sh stash .gpu1      carry [".gpu1"]
#   run: bash scripts/gpu-run.sh stash .gpu2      carry [".gpu2"]
#   run: bash scripts/gpu-run.sh stash .gpu3      carry [".gpu3"]
#   run: bash scripts/gpu-run.sh run $OUT .gpu    carry [".gpu"]
set -euo pipefail
cd "$(dirname "$0")/.."
ORT=${1:-1.30.0}
WORK=${GPU_PACK_DIR:-/tmp/vo-pack}
PY=${PYTHON:-python3}
mkdir -p "$WORK/bundle/ort" "$WORK/bundle/models"
grep -qx '/.gpu\*/' .git/info/exclude 2>/dev/null || echo '/.gpu*/' >> .git/info/exclude

echo "downloading onnxruntime-gpu==$ORT (cp312) and rapidocr_onnxruntime==1.4.4"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    -d "$WORK" "onnxruntime-gpu==$ORT" rapidocr_onnxruntime==1.4.4
unzip -o -j -q "$WORK"/onnxruntime_gpu-"$ORT"-*.whl \
    "onnxruntime/capi/libonnxruntime.so.$ORT" \
    onnxruntime/capi/libonnxruntime_providers_cuda.so \
    onnxruntime/capi/libonnxruntime_providers_shared.so \
    onnxruntime/capi/build_and_package_info.py -d "$WORK/bundle/ort"
unzip -o -j -q "$WORK"/rapidocr_onnxruntime-1.4.4-*.whl 'rapidocr_onnxruntime/models/*' \
    -d "$WORK/bundle/models"

echo "compressing (several minutes: the provider library is ~270 MB)"
tar -C "$WORK/bundle" -cf - ort models | xz -9 -T0 > "$WORK/bundle.tar.xz"
rm -rf .gpu .gpu1 .gpu2 .gpu3 "$WORK/parts"
mkdir -p "$WORK/parts" .gpu1 .gpu2 .gpu3 .gpu
split -b 50000000 -d -a 1 "$WORK/bundle.tar.xz" "$WORK/parts/bundle.part"
(cd "$WORK" && sha256sum bundle.tar.xz) > .gpu/bundle.sha256
mv "$WORK/parts/bundle.part0" .gpu1/
mv "$WORK/parts/bundle.part1" .gpu2/
mv "$WORK/parts/bundle.part2" .gpu3/
mv "$WORK"/parts/bundle.part* .gpu/

echo "building the wheel"
maturin build --release --out "$WORK/wheel" >/dev/null
cp "$(ls -t "$WORK"/wheel/vram_orchestrator-*.whl | head -1)" .gpu/
if [[ -d bench/.data/pages ]]; then
    mkdir -p .gpu/pages
    find bench/.data/pages -maxdepth 1 -name 'p[0-9][0-9][0-9].png' | sort | head -6 |
        xargs -r cp -t .gpu/pages/
fi
du -sh .gpu .gpu1 .gpu2 .gpu3
