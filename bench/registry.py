#!/usr/bin/env python3
"""bay-registry vs CNCF Distribution (Debian docker-registry), side by side.

Runs both servers on loopback with filesystem storage, seeds the same image,
then for several interleaved rounds measures:
  * small requests: wrk GET manifest by tag, wrk GET tags/list, ab -i -k HEAD blob
    (32 connections; req/s and p99),
  * push: 4 x 64 MiB monolithic uploads in parallel (curl), MB/s,
  * pull: 8 x 64 MiB x 3 in parallel (curl to /dev/null), MB/s, against the
    same client pulling the same files from busybox httpd (static file ceiling),
  * idle RSS of each server.
Prints medians and the bay/Distribution ratios. Needs: wrk, ab (apache2-utils),
curl, docker-registry, busybox. Usage: bench/registry.sh [--rounds N] [--quick]
"""
import argparse, hashlib, json, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BAY = os.path.join(ROOT, "target/release/bay-registry")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout

def wait_up(url, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(url + "/v2/", timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

AUTH = {}  # base URL -> extra headers (the auth-on bay instance)

def req(method, url, data=None, headers=None):
    headers = dict(headers or {})
    for base, h in AUTH.items():
        if url.startswith(base):
            headers.update(h)
    r = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(r) as resp:
        return resp.status, resp.headers, resp.read()

def push_blob(base, repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    _, h, _ = req("POST", f"{base}/v2/{repo}/blobs/uploads/")
    loc = h["Location"]
    if loc.startswith("/"):
        loc = base + loc
    sep = "&" if "?" in loc else "?"
    req("PUT", f"{loc}{sep}digest={d}", data, {"Content-Type": "application/octet-stream"})
    return d

def seed(base, repo):
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = os.urandom(4096)
    cd, ld = push_blob(base, repo, config), push_blob(base, repo, layer)
    m = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cd, "size": len(config)},
                    "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": ld, "size": len(layer)}]}).encode()
    for t in ["latest"] + [f"v{i}" for i in range(50)]:
        req("PUT", f"{base}/v2/{repo}/manifests/{t}", m, {"Content-Type": DOCKER_MANIFEST})
    return ld

def auth_args(url, flag):
    return [x for base, h in AUTH.items() if url.startswith(base) for k, v in h.items() for x in (flag, f"{k}: {v}")]

def wrk(url, secs, conns=32):
    out = sh(["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "--latency", "-H", f"Accept: {DOCKER_MANIFEST}", *auth_args(url, "-H"), url])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errs:
        raise SystemExit(f"wrk saw errors against {url}:\n{out}")
    return rps, p99ms

def ab_head(url, n, conns=32):
    out = sh(["ab", "-i", "-k", "-q", f"-c{conns}", f"-n{n}", *auth_args(url, "-H"), url])
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    p99 = float(re.search(r"\s99%\s+(\d+)", out).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    if failed or non2xx:
        raise SystemExit(f"ab saw errors against {url}:\n{out}")
    return rps, p99

def curl_push(base, repo, path, digest):
    # POST then PUT with the whole body (both servers support it).
    h = sh(["curl", "-sS", "-D-", "-o/dev/null", "-XPOST", *auth_args(base, "-H"), f"{base}/v2/{repo}/blobs/uploads/"])
    loc = re.search(r"(?im)^location:\s*(\S+)", h).group(1)
    if loc.startswith("/"):
        loc = base + loc
    sep = "&" if "?" in loc else "?"
    # -T streams the file (--data-binary would first read all of it into
    # curl's memory, making the client the bottleneck).
    code = sh(["curl", "-sS", "-o/dev/null", "-w%{http_code}", *auth_args(base, "-H"), "-H", "Content-Type: application/octet-stream",
               "-T", path, f"{loc}{sep}digest={digest}"])
    if code != "201":
        raise SystemExit(f"push to {base} got {code}")

def par(fn, items, workers):
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(fn, items))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="1 round, short runs")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.secs = 1, 3
    a.pull_rounds = 1 if a.quick else 3
    for tool in ["wrk", "ab", "curl", "docker-registry", "busybox"]:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is required (see .ci/run for the packages)")
    if not os.path.exists(BAY):
        sh(["cargo", "build", "--release", "-p", "bay-registry"], cwd=ROOT)
    work = tempfile.mkdtemp(prefix="bay-bench-")
    procs = []
    try:
        bay_port, dist_port, httpd_port = 15100, 15101, 15102
        bay = subprocess.Popen([BAY, "serve", "--addr", f"127.0.0.1:{bay_port}", "--root", f"{work}/bay"],
                               env={**os.environ, "RUST_LOG": "warn"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(bay)
        with open(f"{work}/dist.yml", "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {work}/dist\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{dist_port}\n")
        dist = subprocess.Popen(["docker-registry", "serve", f"{work}/dist.yml"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(dist)
        # A second bay instance with auth on: one admin, a long-lived token.
        auth_port = 15103
        subprocess.run([BAY, "user", "add", "bench", "--admin", "--password-stdin", "--root", f"{work}/bay-auth"],
                       input="bench-password\n", text=True, check=True, capture_output=True)
        bay_auth = subprocess.Popen([BAY, "serve", "--addr", f"127.0.0.1:{auth_port}", "--root", f"{work}/bay-auth"],
                                    env={**os.environ, "RUST_LOG": "warn", "BAY_REGISTRY__AUTH__TOKEN_TTL_SECS": "7200"},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(bay_auth)
        servers = {"bay": (f"http://127.0.0.1:{bay_port}", bay), "distribution": (f"http://127.0.0.1:{dist_port}", dist),
                   "bay-auth": (f"http://127.0.0.1:{auth_port}", bay_auth)}
        for url, _ in servers.values():
            wait_up(url)
        import base64
        auth_url = f"http://127.0.0.1:{auth_port}"
        scope = "&".join(f"scope=repository:{r}:pull,push" for r in ["bench/app", "bench/pull"] + [f"bench/push{i}" for i in range(16)])
        treq = urllib.request.Request(f"{auth_url}/token?service=bay-registry&{scope}",
                                      headers={"Authorization": "Basic " + base64.b64encode(b"bench:bench-password").decode()})
        tok = json.loads(urllib.request.urlopen(treq).read())["token"]
        AUTH[auth_url] = {"Authorization": f"Bearer {tok}"}
        time.sleep(1)
        idle = {k: rss_kib(p.pid) for k, (_, p) in servers.items()}
        layer = {k: seed(url, "bench/app") for k, (url, _) in servers.items()}

        # Blobs for push/pull, also served by busybox httpd from tmpfs (RAM).
        shm = tempfile.mkdtemp(prefix="bay-bench-", dir="/dev/shm")
        files = []
        for i in range(8):
            p = f"{shm}/blob{i}"
            data = os.urandom(64 * 1024 * 1024)
            with open(p, "wb") as f:
                f.write(data)
            files.append((p, "sha256:" + hashlib.sha256(data).hexdigest()))
        httpd = subprocess.Popen(["busybox", "httpd", "-f", "-p", f"127.0.0.1:{httpd_port}", "-h", shm])
        procs.append(httpd)
        for k, (url, _) in servers.items():  # pull sources
            if k != "bay-auth":
                par(lambda f: curl_push(url, "bench/pull", f[0], f[1]), files, 4)

        res = {k: {"manifest": [], "tags": [], "head": [], "push": [], "pull": []} for k in servers}
        res["httpd"] = {"pull": []}
        for rnd in range(a.rounds):
            order = list(servers.items()) if rnd % 2 == 0 else list(reversed(servers.items()))
            for k, (url, _) in order:
                res[k]["manifest"].append(wrk(f"{url}/v2/bench/app/manifests/latest", a.secs))
                res[k]["tags"].append(wrk(f"{url}/v2/bench/app/tags/list", a.secs))
                res[k]["head"].append(ab_head(f"{url}/v2/bench/app/blobs/{layer[k]}", 20000 if a.quick else 60000))
                if k == "bay-auth":
                    continue  # auth costs nothing per byte: measure small requests only
                # push 4 x 64 MiB into a fresh repo (no dedup across rounds: new repo, same content is fine
                # for bay only if it dedups; to be fair push new random content each round)
                fresh = []
                for i in range(4):
                    p = f"{shm}/push{i}"
                    data = os.urandom(64 * 1024 * 1024)
                    with open(p, "wb") as f:
                        f.write(data)
                    fresh.append((p, "sha256:" + hashlib.sha256(data).hexdigest()))
                t = time.time()
                par(lambda f: curl_push(url, f"bench/push{rnd}", f[0], f[1]), fresh, 4)
                res[k]["push"].append(4 * 64 / (time.time() - t))
                for p, _ in fresh:
                    os.remove(p)
                urls = [f"{url}/v2/bench/pull/blobs/{d}" for _, d in files] * 3
                t = time.time()
                par(lambda u: sh(["curl", "-sS", "-o/dev/null", u]), urls, 8)
                res[k]["pull"].append(len(urls) * 64 / (time.time() - t))
            urls = [f"http://127.0.0.1:{httpd_port}/{os.path.basename(p)}" for p, _ in files] * 3
            t = time.time()
            par(lambda u: sh(["curl", "-sS", "-o/dev/null", u]), urls, 8)
            res["httpd"]["pull"].append(len(urls) * 64 / (time.time() - t))

        med = lambda xs: statistics.median(xs)
        print(f"\n== bay-registry vs CNCF Distribution 2.8.2, {a.rounds} interleaved rounds, medians ==")
        print(f"{'measurement':34} {'bay':>12} {'distribution':>14} {'ratio':>8}")
        for key, label in [("manifest", "GET manifest (req/s)"), ("tags", "GET tags/list (req/s)"), ("head", "HEAD blob (req/s, ab -k)")]:
            b, d = med([r[0] for r in res["bay"][key]]), med([r[0] for r in res["distribution"][key]])
            bp, dp = med([r[1] for r in res["bay"][key]]), med([r[1] for r in res["distribution"][key]])
            print(f"{label:34} {b:12.0f} {d:14.0f} {b/d:7.2f}x")
            print(f"{'  p99 latency (ms)':34} {bp:12.2f} {dp:14.2f}")
        for key, label in [("manifest", "GET manifest"), ("tags", "GET tags/list"), ("head", "HEAD blob")]:
            b, ba = med([r[0] for r in res["bay"][key]]), med([r[0] for r in res["bay-auth"][key]])
            print(f"{'auth on/off: ' + label:34} {ba:12.0f} {b:14.0f} {ba/b:7.2f}x")
        b, d = med(res["bay"]["push"]), med(res["distribution"]["push"])
        print(f"{'push 4x64 MiB parallel (MB/s)':34} {b:12.0f} {d:14.0f} {b/d:7.2f}x")
        b, d, h = med(res["bay"]["pull"]), med(res["distribution"]["pull"]), med(res["httpd"]["pull"])
        print(f"{'pull 8x64 MiB x3, 8 par (MB/s)':34} {b:12.0f} {d:14.0f} {b/d:7.2f}x")
        print(f"{'  static file ceiling (httpd)':34} {h:12.0f}   bay = {100*b/h:.0f}% of ceiling")
        print(f"{'idle RSS (MiB)':34} {idle['bay']/1024:12.1f} {idle['distribution']/1024:14.1f}")
        print("raw:", json.dumps(res))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except Exception:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)
        for d in os.listdir("/dev/shm"):
            if d.startswith("bay-bench-"):
                shutil.rmtree(f"/dev/shm/{d}", ignore_errors=True)

if __name__ == "__main__":
    main()
