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
# Also timed: `bay run --rm IMAGE /bin/true` end to end (the CLI reading its
# image store, building the spec, starting, waiting, removing), with
# --network none and with the default bridge network.
#
# Two passes: back to back (hyperfine's default), and "cold", with 50 ms of
# sleep before each run. The gap matters on cgroup v1, where the first move
# into a cgroup after a quiet spell waits for an RCU grace period (5–10 ms)
# and moves within the next grace period do not: back to back, every
# runtime inherits a warm lock from the previous run. bay starts that wait
# early and in the background (`CgroupManager::prewarm`); the bay-noprewarm
# rows turn that off (BAY_CGROUP_PREWARM=0) to show what it saves.
#
# Usage: bench/runtime.sh [RUNS]   (default 200; prints medians in ms)
set -euo pipefail
RUNS=${1:-200}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HERE/target}
cargo build --release -q -p bay-runtime --example run --manifest-path "$HERE/Cargo.toml"
cargo build --release -q -p bay --bin bay --manifest-path "$HERE/Cargo.toml"
BIN=$CARGO_TARGET_DIR/release/examples/run
BAYBIN=$CARGO_TARGET_DIR/release/bay
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

# The same busybox for `bay run`, imported once (a local image: no pull,
# no verification).
DATA=$WORK/bay-e2e
mkdir -p "$WORK/e2e/bin"
cp /usr/bin/busybox "$WORK/e2e/bin/busybox"
ln -s busybox "$WORK/e2e/bin/true"
tar -C "$WORK/e2e" -cf "$WORK/e2e.tar" .
"$BAYBIN" --data-root "$DATA" import "$WORK/e2e.tar" bench-e2e:1 >/dev/null
E2E="$BAYBIN --data-root $DATA run --rm"

cat > "$WORK/inner.sh" <<INNER
set -e
umount /sys/fs/cgroup/unified 2>/dev/null || true
pass() {
  out=\$1; shift
  hyperfine -N --warmup 10 --runs $RUNS --export-json "\$out" "\$@" \
    -n bay    "$BIN $ROOT /bin/true" \
    -n crun   "crun --root $WORK/crun-state run --bundle $B bench-crun" \
    -n runc   "runc --root $WORK/runc-state run --bundle $B bench-runc" \
    -n bay-run-none   "$E2E --network none bench-e2e:1 /bin/true" \
    -n bay-run-bridge "$E2E bench-e2e:1 /bin/true"
  BAY_CGROUP_PREWARM=0 hyperfine -N --warmup 10 --runs $RUNS --export-json "\$out.noprewarm" "\$@" \
    -n bay-noprewarm  "$BIN $ROOT /bin/true" \
    -n bay-run-none-noprewarm "$E2E --network none bench-e2e:1 /bin/true"
}
pass $WORK/warm.json
pass $WORK/cold.json --prepare "sleep 0.05"
INNER
unshare -m --propagation private bash "$WORK/inner.sh"
python3 - "$WORK" <<'PY'
import json, sys, statistics
for name in ("warm", "cold"):
    r = {}
    for f in (f"{sys.argv[1]}/{name}.json", f"{sys.argv[1]}/{name}.json.noprewarm"):
        for x in json.load(open(f))["results"]:
            r[x["command"]] = statistics.median(x["times"]) * 1000
    print(f"{name} ({'back to back' if name == 'warm' else '50 ms apart'}):")
    for k, v in r.items():
        print(f"  {k:24} median {v:6.2f} ms")
    print(f"  crun/bay {r['crun']/r['bay']:.1f}x   runc/bay {r['runc']/r['bay']:.1f}x   "
          f"(targets: bay <= 5 ms, bay run <= 20 ms)")
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
