#!/usr/bin/env bash
# The whole RQ deployment on one machine, with docling-serve's API unmodified: Redis, the API
# in RQ mode (from a Python that has docling-serve 1.38), and one vram-orchestrator rq-worker
# (from a Python that has this package with the rq extra); then one PDF posted to the API.
#
#   examples/rq/try-with-docling-serve.sh SERVE_PYTHON [PDF]
#
# SERVE_PYTHON: e.g. a venv made with `pip install docling-serve==1.38.2`. Redis: redis-server
# on the PATH or scripts/get-redis.sh's. Prints the HTTP status, the task status and the start
# of the Markdown; everything runs on loopback ports and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
SERVE_PY=${1:?usage: $0 SERVE_PYTHON [PDF]}
PDF=${2:-tests/data/documents/d01_storage_report.pdf}
PY=${PYTHON:-python3}
REDIS=$(bash scripts/get-redis.sh)
WORK=$(mktemp -d)
pids=()
trap 'kill -INT "${pids[@]}" 2>/dev/null; sleep 2; kill "${pids[@]}" 2>/dev/null; rm -rf "$WORK"' EXIT
port() { "$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
rport=$(port) aport=$(port)
export DOCLING_SERVE_ENG_RQ_REDIS_URL=redis://127.0.0.1:$rport/0

"$REDIS" --port "$rport" --bind 127.0.0.1 --save '' --appendonly no > "$WORK/redis.log" 2>&1 &
pids+=($!)
DOCLING_SERVE_ENG_KIND=rq "$SERVE_PY" -m docling_serve run --host 127.0.0.1 --port "$aport" \
    > "$WORK/api.log" 2>&1 &
pids+=($!)
"$PY" -m vram_orchestrator -v rq-worker --name vram-0 > "$WORK/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$aport/health" > /dev/null && break; sleep 1; done

code=$(curl -s -X POST -F "files=@$PDF" "http://127.0.0.1:$aport/v1/convert/file" \
    -o "$WORK/response.json" -w '%{http_code}')
echo "HTTP $code"
"$PY" - "$WORK/response.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
print("status:", d.get("status"), "errors:", d.get("errors"), "seconds:", round(d.get("processing_time", 0), 2))
print(d["document"]["md_content"][:400])
PYEOF
echo "--- our worker's log"
grep -E "converting|done|failed" "$WORK/worker.log" || true
