#!/usr/bin/env python3
"""bay-registry's trust API vs Debian's notary-server, side by side (issue 4).

In one run, on 127.0.0.1 only:
  * starts bay-registry (release build, temp data dir) and notary-server
    (memory storage, local ed25519 signing, plain HTTP, as
    registry/tests/it/trust.rs::start_notary_server does);
  * publishes the same repository to both with the notary CLI: per round and
    server a new GUN, `notary init -p`, `notary add` x100 (staged locally),
    then ONE `notary publish` (GET root/timestamp/snapshot/targets, then one
    multipart POST with the 100 new targets); the publish is timed. A second
    bay with its data dir on tmpfs is timed too (notary-server's memory
    storage never touches a disk; bay fsyncs SQLite on every upload);
  * wrk -t2 -c32 GET timestamp.json and GET targets.json (100 tags) on the
    first round's GUN, several interleaved rounds, and GET /_notary_server/health
    (an empty handler on both servers: the ceiling wrk and loopback allow);
  * full verification of 1,000 signed tags with bay_signer, pinned to one
    core (`cargo bench -p bay-signer --bench verify`, taskset -c 0).
Prints medians and bay/notary ratios. Usage: bench/trust.sh [--rounds N] [--secs S] [--publish-rounds N]
Needs: wrk, notary, notary-server (Debian `notary`), taskset (util-linux), cargo.
"""
import argparse, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BAY = os.path.join(TARGET, "release/bay-registry")
TAGS = 100
ENV = {**os.environ,
       "NOTARY_ROOT_PASSPHRASE": "bench-root", "NOTARY_TARGETS_PASSPHRASE": "bench-targets",
       "NOTARY_SNAPSHOT_PASSPHRASE": "bench-snapshot", "NOTARY_DELEGATION_PASSPHRASE": "bench-deleg"}


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def notary(url, trust, *args):
    return sh(["notary", "-s", url, "-d", trust, *args], env=ENV)


def publish_100(url, host, trust, work, name):
    """init -p, add x100, then one timed publish; returns (gun, add secs, publish secs)."""
    gun = f"{host}/bench/{name}"
    payload = os.path.join(work, "payload.txt")
    notary(url, trust, "init", "-p", gun)
    t = time.perf_counter()
    for i in range(TAGS):
        with open(payload, "w") as f:
            f.write(f"image {name} {i}\n")
        notary(url, trust, "add", gun, f"v{i}", payload)
    added = time.perf_counter() - t
    t = time.perf_counter()
    notary(url, trust, "publish", gun)
    published = time.perf_counter() - t
    listed = [l for l in notary(url, trust, "list", gun).splitlines() if l.startswith("v")]
    if len(listed) != TAGS:
        raise SystemExit(f"{url}: {gun} lists {len(listed)} targets, not {TAGS}")
    return gun, added, published


def wrk(url, secs):
    out = sh(["wrk", "-t2", "-c32", f"-d{secs}s", "--latency", url])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out) or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors against {url}:\n{out}")
    return rps, p99ms


def verify_bench():
    """Median ms of full verification of 1,000 signed tags, on CPU 0."""
    out = subprocess.run(["taskset", "-c", "0", "cargo", "bench", "-q", "-p", "bay-signer", "--bench", "verify"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    m = re.search(r"median ([\d.]+) ms", out)
    if not m:
        raise SystemExit(f"cannot read the verify bench output:\n{out}")
    return float(m.group(1)), out.strip().splitlines()[-1]


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=int, default=4)
    ap.add_argument("--publish-rounds", type=int, default=9)
    a = ap.parse_args()
    for tool in ["wrk", "notary", "notary-server", "taskset", "cargo"]:
        if not shutil.which(tool):
            raise SystemExit(f"missing {tool}")
    if not os.path.exists(BAY):
        sh(["cargo", "build", "--release", "-p", "bay-registry"], cwd=ROOT)
    work = tempfile.mkdtemp(prefix="bay-trust-bench-")
    shm = None
    procs = []
    try:
        bay_port, shm_port, ns_port = free_port(), free_port(), free_port()
        # bay keeps trust data in SQLite and fsyncs each upload; notary-server's
        # memory storage keeps nothing. A second bay on tmpfs shows the publish
        # cost without the disk (it is used for the publish measurement only).
        shm = tempfile.mkdtemp(prefix="bay-trust-bench-", dir="/dev/shm") if os.path.isdir("/dev/shm") else f"{work}/shm"
        for port, root in [(bay_port, f"{work}/bay"), (shm_port, f"{shm}/bay")]:
            procs.append(subprocess.Popen([BAY, "serve", "--addr", f"127.0.0.1:{port}", "--root", root],
                                          env={**os.environ, "RUST_LOG": "warn"},
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with open(f"{work}/notary-server.json", "w") as f:
            json.dump({"server": {"http_addr": f"127.0.0.1:{ns_port}"}, "trust_service": {"type": "local"},
                       "logging": {"level": "error"}, "storage": {"backend": "memory"}}, f)
        ns = subprocess.Popen(["notary-server", "-config", f"{work}/notary-server.json", "-logf", "logfmt"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ns)
        publishers = {"bay": f"127.0.0.1:{bay_port}", "bay-tmpfs": f"127.0.0.1:{shm_port}",
                      "notary": f"127.0.0.1:{ns_port}"}
        servers = {k: publishers[k] for k in ["bay", "notary"]}
        for host in publishers.values():
            wait_up(f"http://{host}/_notary_server/health")

        res = {k: {"add": [], "publish": [], "timestamp": [], "targets": [], "health": []} for k in publishers}
        guns = {}
        # Publishing: interleaved rounds, a fresh GUN and trust dir each time.
        for r in range(a.publish_rounds):
            for k, host in (publishers.items() if r % 2 == 0 else reversed(list(publishers.items()))):
                trust = f"{work}/trust-{k}-{r}"
                gun, added, published = publish_100(f"http://{host}", host, trust, work, f"app{r}")
                guns.setdefault(k, gun)
                res[k]["add"].append(added)
                res[k]["publish"].append(published)
                print(f"round {r + 1} {k}: add x{TAGS} {added:.2f} s, publish {published * 1000:.0f} ms", file=sys.stderr)
        # Reads of the first round's repository (100 tags).
        for r in range(a.rounds):
            for k, host in (servers.items() if r % 2 == 0 else reversed(list(servers.items()))):
                base = f"http://{host}/v2/{guns[k]}/_trust/tuf"
                urls = {"timestamp": f"{base}/timestamp.json", "targets": f"{base}/targets.json",
                        "health": f"http://{host}/_notary_server/health"}
                for role, url in urls.items():
                    rps, p99 = wrk(url, a.secs)
                    res[k][role].append((rps, p99))
                    print(f"round {r + 1} {k}: GET {role} {rps:.0f} req/s p99 {p99:.2f} ms", file=sys.stderr)
        size = len(urllib.request.urlopen(f"http://{servers['bay']}/v2/{guns['bay']}/_trust/tuf/targets.json").read())
        verify_ms, verify_line = verify_bench()

        def rps(k, role):
            return med([x[0] for x in res[k][role]])

        def p99(k, role):
            return med([x[1] for x in res[k][role]])

        print()
        print(f"Trust API, bay-registry vs notary-server 0.7 (medians of {a.rounds} interleaved rounds, wrk -t2 -c32 -d{a.secs}s)")
        print(f"{'measure':<44} {'bay':>12} {'notary':>12} {'bay/notary':>11}")
        for role in ["timestamp", "targets"]:
            label = f"GET {role}.json req/s" + (f" ({size} B, {TAGS} tags)" if role == "targets" else "")
            print(f"{label:<44} {rps('bay', role):>12.0f} {rps('notary', role):>12.0f} {rps('bay', role) / rps('notary', role):>10.2f}x")
            print(f"{'  p99 latency ms':<44} {p99('bay', role):>12.2f} {p99('notary', role):>12.2f}")
        hb, hn = rps("bay", "health"), rps("notary", "health")
        print(f"{'GET /_notary_server/health req/s (ceiling)':<44} {hb:>12.0f} {hn:>12.0f} {hb / hn:>10.2f}x")
        print("  (an empty handler on both: what wrk and loopback allow on this machine; bay's")
        print(f"  empty handler is {hb / rps('notary', 'targets'):.2f}x notary's targets.json rate)")
        pb, ps, pn = (med(res[k]["publish"]) for k in ["bay", "bay-tmpfs", "notary"])
        print(f"{'publish 100 new tags (notary publish), ms':<44} {pb * 1000:>12.0f} {pn * 1000:>12.0f} {pn / pb:>10.2f}x")
        print(f"{'  bay with its data dir on tmpfs, ms':<44} {ps * 1000:>12.0f} {'':>12} {pn / ps:>10.2f}x")
        ab, an = med(res["bay"]["add"]), med(res["notary"]["add"])
        print(f"{'  (notary add x100 before it, local, s)':<44} {ab:>12.2f} {an:>12.2f}")
        mins = {k: min(res[k]["publish"]) * 1000 for k in publishers}
        print(f"  publish medians of {a.publish_rounds} rounds (fastest: bay {mins['bay']:.0f}, bay-tmpfs {mins['bay-tmpfs']:.0f},"
              f" notary {mins['notary']:.0f} ms); ratio = notary time / bay time (>1: bay faster)")
        print(f"{'verify 1,000 signed tags, bay_signer, 1 core':<44} {verify_ms:>9.2f} ms {'-':>12} {'(< 50 ms)':>11}")
        print(f"  {verify_line}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)
        if shm:
            shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
