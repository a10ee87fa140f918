#!/usr/bin/env bash
# The GPU proof on a GPU machine without a Rust toolchain or network, from carried files.
#
#   scripts/gpu-run.sh stash DIR          keep the parts carried in DIR in $GPU_RUN_TMP/parts
#   scripts/gpu-run.sh run OUT [DIR] [--rehearse] [-- gpu-check args...]
#
# `run` takes the parts stashed before plus those in DIR (default .gpu), as scripts/gpu-pack.sh
# wrote them: `bundle.part*` (a split `tar | xz` of ort/ = ONNX Runtime's core library, its
# provider libraries and build info, and models/<set>/ = the model sets' files),
# `bundle.sha256`, our wheel (`vram_orchestrator-*.whl`, abi3) and optionally `pages/*.png`.
# Steps, each logged by name and written under OUT as it goes:
#   1 reassemble   parts -> bundle, sha256 checked, unpacked
#   2 wheel        our wheel unpacked (no pip), executables made executable again
#   3 environment  versions, nvidia-smi [GPU], the provider library's unresolved dependencies
#   4 doctor       `vram-orchestrator info`: would CUDA start, and why not   -> info.json
#   5 cli          one OCR through the CLI on cuda:0 [GPU; cpu when rehearsing] -> cli.json
#   6 gpu-check    scripts/gpu-check [GPU; fake NVML when rehearsing]      -> summary.md ...
#   7 gpu-tests    tests/test_gpu.py [GPU only]
# --rehearse runs the same steps on a CPU machine; a step that needs a GPU says
# "skipped: no GPU" and what it would run.
set -uo pipefail
cd "$(dirname "$0")/.."

TMP=${GPU_RUN_TMP:-/tmp/vo}
PARTS=$TMP/parts
WORK=$TMP/work
PY=${PYTHON:-python3}

stash() {
    mkdir -p "$PARTS"
    cp -f "$1"/* "$PARTS"/ && ls -l "$PARTS"
}

log() { echo "[gpu-run $(date +%T)] $*"; }

FAILED=()
# note STEP EXIT [DETAIL]: logs a step's exit status and remembers the failures.
note() {
    log "$1 exit $2${3:+: $3}"
    [[ $2 == 0 ]] || FAILED+=("$1")
}

run() {
    local out=$1 dir=${2:-.gpu} rehearse=0
    shift 2 || shift $#
    if [[ ${1:-} == --rehearse ]]; then rehearse=1; shift; fi
    [[ ${1:-} == -- ]] && shift
    mkdir -p "$out" "$PARTS" "$WORK"
    exec > >(tee -a "$out/run.log") 2>&1

    local gpu="GPU" && [[ $rehearse == 1 ]] && gpu="rehearsal on CPU"
    log "run ($gpu): reassemble, wheel, environment, doctor, cli, gpu-check ${*:-(defaults)}, gpu-tests"

    log "step reassemble"
    cp -f "$dir"/bundle.part* "$dir"/bundle.sha256 "$PARTS"/ 2>/dev/null
    (cd "$PARTS" && cat $(ls bundle.part* | sort) > "$WORK/bundle.tar.xz") || return 1
    (cd "$WORK" && sha256sum -c <(sed 's/ .*/  bundle.tar.xz/' "$PARTS/bundle.sha256")) || {
        log "bundle checksum mismatch: parts missing or damaged"; ls -l "$PARTS"; return 1; }
    rm -rf "$WORK/ort" "$WORK/models" "$WORK/site" "$WORK/cache"
    tar -C "$WORK" -xJf "$WORK/bundle.tar.xz" || return 1
    rm -f "$WORK/bundle.tar.xz"

    log "step wheel"
    local wheel
    wheel=$(ls "$dir"/vram_orchestrator-*.whl | head -1)
    "$PY" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
        "$wheel" "$WORK/site" || return 1
    chmod +x "$WORK"/site/vram_orchestrator/bin/* # zipfile drops the exec bit

    local ort
    ort=$(ls "$WORK"/ort/libonnxruntime.so.* | head -1)
    export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
    export VRAM_ORCH_ORT_DYLIB=$ort
    # The model sets sit where the package looks first, so every set can be chosen.
    mkdir -p "$WORK/cache/vram-orchestrator"
    mv "$WORK/models" "$WORK/cache/vram-orchestrator/models"
    export XDG_CACHE_HOME=$WORK/cache
    unset VRAM_ORCH_MODEL_DIR
    export PYTHONUNBUFFERED=1
    # libcuda and libnvidia-ml live with the driver, not always on the loader's path.
    [[ -d /usr/local/nvidia/lib64 ]] &&
        export LD_LIBRARY_PATH=/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

    log "step environment"
    {
        date -u; uname -a; ldd --version | head -1; "$PY" --version
        if [[ $rehearse == 0 ]]; then nvidia-smi; else echo "nvidia-smi: skipped: no GPU"; fi
        "$PY" -c "import vram_orchestrator as v; print(v.__version__, v.__file__)"
        cat "$WORK/ort/build_and_package_info.py"
        ls "$WORK/cache/vram-orchestrator/models"
        if [[ -f $WORK/ort/libonnxruntime_providers_cuda.so ]]; then
            echo "--- provider library: unresolved dependencies (none expected)"
            LD_LIBRARY_PATH=$WORK/ort:$("$PY" -c "from vram_orchestrator import resources as r; print(':'.join(r.library_dirs(r.ort_dylib(None))))"):${LD_LIBRARY_PATH:-} \
                ldd "$WORK/ort/libonnxruntime_providers_cuda.so" | grep -i "not found" || echo "all found"
        else
            echo "provider library: not carried (CPU rehearsal)"
        fi
    } > "$out/env.txt" 2>&1
    cat "$out/env.txt"

    log "step doctor"
    timeout 120 "$PY" -m vram_orchestrator info > "$out/info.json" 2> "$WORK/info.log"
    note doctor $? "$(tail -n 1 "$WORK/info.log")"

    local device=cuda:0 check_args=("$@")
    [[ $rehearse == 1 ]] && { device=cpu; check_args+=(--rehearse); }
    log "step cli on $device"
    VRAM_ORCH_DEVICE=$device VRAM_ORCH_WORKER_LOG=info timeout 120 \
        "$PY" -m vram_orchestrator ocr --json tests/data/ocrset/02_line_pangram.png \
        > "$out/cli.json" 2> "$WORK/cli.log"
    note cli $? "$(head -c 600 "$out/cli.json")"; tail -n 20 "$WORK/cli.log"

    local pages=()
    [[ -d $dir/pages ]] && pages=(--pages "$dir/pages")
    log "step gpu-check ${check_args[*]}"
    timeout "${GPU_CHECK_TIMEOUT_S:-330}" "$PY" scripts/gpu-check --out "$WORK/check" \
        "${pages[@]}" "${check_args[@]}"
    note gpu-check $?
    for f in summary.md results.json timeline.csv timeline.png; do
        cp -f "$WORK/check/$f" "$out/" 2>/dev/null
    done

    if [[ $rehearse == 1 ]]; then
        log "step gpu-tests: skipped: no GPU (would run pytest tests/test_gpu.py)"
    else
        log "step gpu-tests"
        timeout "${GPU_TESTS_TIMEOUT_S:-150}" "$PY" -m pytest -q -p no:cacheprovider \
            -o addopts="-ra" tests/test_gpu.py
        note gpu-tests $?
    fi
    log "done; failed steps: ${FAILED[*]:-none}"
    [[ ${#FAILED[@]} == 0 ]]
}

case ${1:-} in
stash) stash "$2" ;;
run) shift; run "$@" ;;
*) sed -n 2,20p "$0"; exit 2 ;;
esac
