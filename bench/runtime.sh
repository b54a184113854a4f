#!/usr/bin/env bash
# Start-up latency of `/bin/true` with docker's default isolation:
# bay-runtime (runtime/examples/run.rs: overlay mount, cgroup, 14 caps,
# docker's seccomp profile, masked/ro paths, pid/mnt/uts/ipc/net/cgroup
# namespaces, --rm) against `crun run` and `runc run` on a bundle with the
# very same config.json (printed by our spec builder). Needs root, hyperfine,
# crun, runc and busybox-static.
#
# crun refuses hybrid cgroup hosts, so (as in runtime-facts.md §4) all three
# run in one private mount namespace with /sys/fs/cgroup/unified unmounted.
#
# Usage: bench/runtime.sh [RUNS]   (default 200; prints medians in ms)
set -euo pipefail
RUNS=${1:-200}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HERE/target}
cargo build --release -q -p bay-runtime --example run --manifest-path "$HERE/Cargo.toml"
BIN=$CARGO_TARGET_DIR/release/examples/run
WORK=$(mktemp -d /var/tmp/bay-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/state
# Like `bay run --rm`: the container's upper/work dirs go to a tmpfs run dir
# (/run/bay in production; /dev/shm here, where /run is on disk).
RUN=$(mktemp -d /dev/shm/bay-bench-run.XXXXXX)
trap 'rm -rf "$WORK" "$RUN"' EXIT
export BAY_RUN_DIR=$RUN
"$BIN" --prepare "$ROOT" /bin/true   # unpack busybox once, warm the seccomp cache

# An equivalent bundle for crun and runc: the same spec, the same files.
B=$WORK/bundle
mkdir -p "$B"
cp -a "$ROOT"/layers/sha256/*/fs "$B/rootfs"
"$BIN" --print-spec "$ROOT" /bin/true | python3 -c '
import json, sys
s = json.load(sys.stdin)
s["root"]["path"] = "rootfs"
s["linux"]["cgroupsPath"] = "/bay-bench/" + sys.argv[1]
json.dump(s, open(sys.argv[2], "w"), indent=1)' oci "$B/config.json"

cat > "$WORK/inner.sh" <<INNER
set -e
umount /sys/fs/cgroup/unified 2>/dev/null || true
hyperfine -N --warmup 10 --runs $RUNS --export-json $WORK/result.json \
  -n bay    "$BIN $ROOT /bin/true" \
  -n crun   "crun --root $WORK/crun-state run --bundle $B bench-crun" \
  -n runc   "runc --root $WORK/runc-state run --bundle $B bench-runc"
INNER
unshare -m --propagation private bash "$WORK/inner.sh"
python3 - "$WORK/result.json" <<'PY'
import json, sys, statistics
r = {x["command"]: statistics.median(x["times"]) * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for k, v in r.items():
    print(f"{k:5} median {v:6.2f} ms")
print(f"crun/bay {r['crun']/r['bay']:.1f}x   runc/bay {r['runc']/r['bay']:.1f}x   (target: bay <= 5 ms)")
PY

# The per-container monitor behind `bay run -d` (target: <= 2 MiB RSS): one
# detached container, its monitor's resident set read from /proc while the
# container runs and after it has written some log lines.
cargo build --release -q -p bay --manifest-path "$HERE/Cargo.toml"
BAY=$CARGO_TARGET_DIR/release/bay
export BAY_DATA_ROOT=$WORK/bay-data
mkdir -p "$WORK/bb/bin"
cp /usr/bin/busybox "$WORK/bb/bin/busybox"
ln -s busybox "$WORK/bb/bin/sh"
tar -C "$WORK/bb" -cf "$WORK/bb.tar" .
"$BAY" import "$WORK/bb.tar" bench-bb:1 >/dev/null
CID=$("$BAY" run -d bench-bb:1 sh -c 'i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; exec busybox sleep 30')
sleep 1
MON=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["monitor_pid"])' "$BAY_DATA_ROOT/runtime/containers/$CID/state.json")
echo "monitor pid $MON:"
grep -E '^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem)' "/proc/$MON/status" | sed 's/^/  /'
"$BAY" rm -f "$CID" >/dev/null
