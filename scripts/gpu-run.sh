#!/usr/bin/env bash
# The GPU proof on a GPU machine without a Rust toolchain or network, from carried files.
#
#   scripts/gpu-run.sh stash DIR          keep the parts carried in DIR in /tmp/vo-parts
#   scripts/gpu-run.sh run OUT [DIR] [--rehearse] [-- gpu-check args...]
#
# `run` takes the parts stashed before plus those in DIR (default .gpu): `bundle.part*`
# (a split `tar | xz` of ort/ = libonnxruntime.so.1.30.0 + CUDA provider libraries of the
# onnxruntime-gpu wheel, and models/ = the PP-OCR .onnx files), `bundle.sha256`, our wheel
# (`vram_orchestrator-*.whl`, abi3) and optionally `pages/*.png`. It reassembles and checks
# the bundle, unpacks the wheel (no pip needed), points the package at ONNX Runtime and the
# models, records the environment, then runs a CLI smoke test, scripts/gpu-check and the
# GPU-only tests (tests/test_gpu.py), writing every result under OUT as it goes.
# --rehearse runs the same steps on a CPU machine: gpu-check with a fake NVML, the GPU tests
# skipped, no nvidia-smi.
set -uo pipefail
cd "$(dirname "$0")/.."

PARTS=/tmp/vo-parts
WORK=/tmp/vo
PY=${PYTHON:-python3}

stash() {
    mkdir -p "$PARTS"
    cp -f "$1"/* "$PARTS"/ && ls -l "$PARTS"
}

log() { echo "[gpu-run $(date +%T)] $*"; }

run() {
    local out=$1 dir=${2:-.gpu} rehearse=0
    shift 2 || shift $#
    if [[ ${1:-} == --rehearse ]]; then rehearse=1; shift; fi
    [[ ${1:-} == -- ]] && shift
    mkdir -p "$out" "$PARTS" "$WORK"
    exec > >(tee -a "$out/run.log") 2>&1

    log "reassembling the bundle"
    cp -f "$dir"/bundle.part* "$dir"/bundle.sha256 "$PARTS"/ 2>/dev/null
    (cd "$PARTS" && cat $(ls bundle.part* | sort) > "$WORK/bundle.tar.xz") || return 1
    (cd "$WORK" && sha256sum -c <(sed 's/ .*/  bundle.tar.xz/' "$PARTS/bundle.sha256")) || {
        log "bundle checksum mismatch: parts missing or damaged"; ls -l "$PARTS"; return 1; }
    rm -rf "$WORK/ort" "$WORK/models" "$WORK/site"
    tar -C "$WORK" -xJf "$WORK/bundle.tar.xz" || return 1

    log "unpacking the wheel"
    local wheel
    wheel=$(ls "$dir"/vram_orchestrator-*.whl | head -1)
    "$PY" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
        "$wheel" "$WORK/site" || return 1
    chmod +x "$WORK"/site/vram_orchestrator/bin/* # zipfile drops the exec bit

    export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
    export VRAM_ORCH_ORT_DYLIB=$WORK/ort/libonnxruntime.so.1.30.0
    export VRAM_ORCH_MODEL_DIR=$WORK/models
    export XDG_CACHE_HOME=$WORK/cache
    export PYTHONUNBUFFERED=1
    # libcuda and libnvidia-ml live with the driver, not always on the loader's path.
    [[ -d /usr/local/nvidia/lib64 ]] &&
        export LD_LIBRARY_PATH=/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

    log "environment"
    {
        date -u; uname -a; ldd --version | head -1; "$PY" --version
        [[ $rehearse == 0 ]] && nvidia-smi
        "$PY" -c "import vram_orchestrator as v, json; print(v.__version__); print(json.dumps(v.gpu_report(), indent=1))"
        cat "$WORK/ort/build_and_package_info.py"
        echo "--- provider library: unresolved dependencies (none expected but libcudnn, opened later)"
        LD_LIBRARY_PATH=$WORK/ort:$("$PY" -c "from vram_orchestrator import resources as r; print(':'.join(r.library_dirs(r.ort_dylib(None))))"):${LD_LIBRARY_PATH:-} \
            ldd "$WORK/ort/libonnxruntime_providers_cuda.so" | grep -i "not found" || echo "all found"
    } > "$out/env.txt" 2>&1
    cat "$out/env.txt"

    local device=cuda:0 check_args=("$@")
    [[ $rehearse == 1 ]] && { device=cpu; check_args+=(--rehearse); }
    log "CLI smoke test on $device"
    VRAM_ORCH_DEVICE=$device VRAM_ORCH_WORKER_LOG=info timeout 120 \
        "$PY" -m vram_orchestrator ocr --json tests/data/ocrset/02_line_pangram.png \
        > "$out/cli.json" 2> "$WORK/cli.log"
    log "cli exit $?: $(head -c 600 "$out/cli.json")"; tail -n 20 "$WORK/cli.log"

    local pages=()
    [[ -d $dir/pages ]] && pages=(--pages "$dir/pages")
    log "gpu-check ${check_args[*]}"
    timeout "${GPU_CHECK_TIMEOUT_S:-330}" "$PY" scripts/gpu-check --out "$WORK/check" \
        "${pages[@]}" "${check_args[@]}"
    log "gpu-check exit $?"
    for f in summary.md results.json timeline.csv timeline.png; do
        cp -f "$WORK/check/$f" "$out/" 2>/dev/null
    done

    log "GPU-only tests"
    timeout "${GPU_TESTS_TIMEOUT_S:-150}" "$PY" -m pytest -q -p no:cacheprovider \
        -o addopts="-ra" tests/test_gpu.py
    log "tests exit $?"
}

case ${1:-} in
stash) stash "$2" ;;
run) shift; run "$@" ;;
*) sed -n 2,16p "$0"; exit 2 ;;
esac
