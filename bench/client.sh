#!/usr/bin/env bash
# bay pull/push vs skopeo copy, same registry (bay-registry), same run.
# Image: 8 layers × 32 MiB of random data (gzip -1). Needs hyperfine, skopeo,
# python3, curl. BAY_REGISTRY_BIN=path skips building bay-registry. Targets (issue 5): pull ≤ 0.7× skopeo, push ≤ 0.8× skopeo.
#
#   bench/client.sh [RUNS]         (default 5)
#
# Each push run starts from an empty registry, so neither tool can skip or
# cross-mount blobs; each pull run starts from an empty local store/directory.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
TARGET=${CARGO_TARGET_DIR:-target}
if [ -n "${BAY_REGISTRY_BIN:-}" ]; then
  cargo build --release -p bay >&2
  REG=$(realpath "$BAY_REGISTRY_BIN")
else
  cargo build --release -p bay -p bay-registry >&2
  REG=$(realpath "$TARGET/release/bay-registry")
fi
BAY=$(realpath "$TARGET/release/bay")
W=$(mktemp -d /tmp/bay-bench-client.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
trap 'stop_registry; rm -rf "$W"' EXIT

start_registry() {
  rm -rf "$W/reg"
  "$REG" serve --addr "$HOST" --root "$W/reg" >"$W/reg.log" 2>&1 &
  echo $! >"$W/reg.pid"
  for _ in $(seq 100); do curl -sf "http://$HOST/v2/" >/dev/null && return; sleep 0.05; done
  echo "bay-registry did not start; see $W/reg.log" >&2; exit 1
}
stop_registry() {
  if [ -f "$W/reg.pid" ]; then kill "$(cat "$W/reg.pid")" 2>/dev/null || true; wait "$(cat "$W/reg.pid")" 2>/dev/null || true; rm -f "$W/reg.pid"; fi
}
export -f start_registry stop_registry
export W REG HOST BAY

echo "building the 8×32 MiB image…" >&2
python3 bench/make-oci-image.py "$W/layout" 8 32 1 >/dev/null
tar -C "$W/layout" -cf "$W/layout.tar" .
"$BAY" --data-root "$W/pusher" load -q -i "$W/layout.tar"
ID=$("$BAY" --data-root "$W/pusher" images -q --no-trunc | head -1)
"$BAY" --data-root "$W/pusher" tag "$ID" "$HOST/bench/bay:1"

# Pull: one registry holding the image.
start_registry
skopeo copy -q --dest-tls-verify=false "oci:$W/layout:1" "docker://$HOST/bench/img:1"
hyperfine --shell bash --runs "$RUNS" --warmup 1 --export-json "$W/pull.json" \
  -n "skopeo pull" --prepare "rm -rf $W/sk" "skopeo copy -q --src-tls-verify=false docker://$HOST/bench/img:1 oci:$W/sk:1" \
  -n "bay pull" --prepare "rm -rf $W/puller" "$BAY --data-root $W/puller pull -q $HOST/bench/img:1"
stop_registry

# Push: a fresh registry before every run.
hyperfine --shell bash --runs "$RUNS" --warmup 1 --export-json "$W/push.json" \
  -n "skopeo push" --prepare "stop_registry; start_registry" "skopeo copy -q --dest-tls-verify=false oci:$W/layout:1 docker://$HOST/bench/img:1" \
  -n "bay push" --prepare "stop_registry; start_registry" "$BAY --data-root $W/pusher push -q $HOST/bench/bay:1"

python3 - "$W/pull.json" "$W/push.json" <<'PY'
import json, sys
for path, target in zip(sys.argv[1:], (0.7, 0.8)):
    r = {x["command"]: x for x in json.load(open(path))["results"]}
    (sk,), (bay,) = [[v for k, v in r.items() if k.startswith(p)] for p in ("skopeo", "bay")]
    ratio = bay["mean"] / sk["mean"]
    verb = bay["command"].split()[1]
    print(f"{verb}: bay {bay['mean']:.3f}±{bay['stddev']:.3f}s  skopeo {sk['mean']:.3f}±{sk['stddev']:.3f}s  "
          f"ratio {ratio:.2f} (target ≤ {target}) {'OK' if ratio <= target else 'MISSED'}")
PY
