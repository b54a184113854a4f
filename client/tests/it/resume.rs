//! Crash and resume: a pull and a push are SIGKILLed halfway; the next run
//! resumes without re-sending finished layers. A counting TCP proxy between
//! bay and the registry measures the bytes each run moves.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

const LAYER: usize = 4 << 20;
const LAYERS: usize = 4;

struct Proxy {
    addr: String,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    delay_us: Arc<AtomicU64>,
    log: Arc<Mutex<String>>,
    /// When non-zero: cut the connection once this direction's count passes it (once).
    cut_up: Arc<AtomicU64>,
    cut_down: Arc<AtomicU64>,
}

struct Pump {
    counter: Arc<AtomicU64>,
    delay: Arc<AtomicU64>,
    cut: Arc<AtomicU64>,
    log: Option<Arc<Mutex<String>>>,
}

fn pump(mut from: TcpStream, mut to: TcpStream, p: Pump) {
    let Pump {
        counter,
        delay,
        cut,
        log,
    } = p;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(l) = &log {
            // Keep request heads (text) for assertions; bodies are random bytes.
            let text = String::from_utf8_lossy(&buf[..n]);
            let mut l = l.lock().unwrap();
            for line in text.split("\r\n") {
                if line.starts_with("GET ")
                    || line.starts_with("PATCH ")
                    || line.starts_with("PUT ")
                    || line.starts_with("HEAD ")
                    || line.starts_with("POST ")
                    || line.to_ascii_lowercase().starts_with("range:")
                {
                    l.push_str(line);
                    l.push('\n');
                }
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        let now = counter.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        let at = cut.load(Ordering::SeqCst);
        if at > 0
            && now >= at
            && cut
                .compare_exchange(at, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
        let d = delay.load(Ordering::SeqCst);
        if d > 0 {
            std::thread::sleep(Duration::from_micros(d));
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Proxy {
    fn start(target: &str) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let p = Proxy {
            addr,
            up: Arc::default(),
            down: Arc::default(),
            delay_us: Arc::default(),
            log: Arc::default(),
            cut_up: Arc::default(),
            cut_down: Arc::default(),
        };
        let (up, down, delay, log) = (
            p.up.clone(),
            p.down.clone(),
            p.delay_us.clone(),
            p.log.clone(),
        );
        let (cut_up, cut_down, target) = (p.cut_up.clone(), p.cut_down.clone(), target.to_owned());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(client) = c else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let to_server = Pump {
                    counter: up.clone(),
                    delay: delay.clone(),
                    cut: cut_up.clone(),
                    log: Some(log.clone()),
                };
                let to_client = Pump {
                    counter: down.clone(),
                    delay: delay.clone(),
                    cut: cut_down.clone(),
                    log: None,
                };
                std::thread::spawn(move || pump(client, server, to_server));
                std::thread::spawn(move || pump(s2, c2, to_client));
            }
        });
        p
    }

    fn reset(&self) {
        self.up.store(0, Ordering::SeqCst);
        self.down.store(0, Ordering::SeqCst);
        self.log.lock().unwrap().clear();
    }

    /// 64 KiB per `us` microseconds in each direction.
    fn throttle(&self, us: u64) {
        self.delay_us.store(us, Ordering::SeqCst);
    }
}

fn big_image(bay: &Bay, name: &str) {
    let layout = bay.root.path().join("big");
    let layers: Vec<Vec<u8>> = (0..LAYERS)
        .map(|i| random_layer_tar(&format!("big{i}"), LAYER, 100 + i as u64))
        .collect();
    oci_layout(&layout, &layers, "1");
    let tarball = bay.root.path().join("big.tar");
    tar_dir(&layout, &tarball);
    let out = bay.ok(&["load", "-i", tarball.to_str().unwrap()]);
    let id = out.trim().rsplit(' ').next().unwrap().to_owned();
    bay.ok(&["tag", &id, name]);
}

/// Starts `bay args` and SIGKILLs it once `counter` passes `at` bytes.
fn run_and_kill(bay: &Bay, args: &[&str], counter: &AtomicU64, at: u64) {
    let mut child = bay
        .cmd(args)
        .env("BAY_MAX_CONCURRENT_TRANSFERS", "1")
        .env("BAY_PUSH_CHUNK_SIZE", (1 << 20).to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter.load(Ordering::SeqCst) < at {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("bay {args:?} finished ({st}) before it could be killed");
        }
        assert!(
            Instant::now() < deadline,
            "transfer never reached {at} bytes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn layer_blobs_present(bay: &Bay) -> usize {
    // Layer blobs are the only blobs of about LAYER bytes.
    std::fs::read_dir(bay.data_root().join("image/blobs/sha256"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().metadata().unwrap().len() > (LAYER as u64) / 2)
        .count()
}

fn crash_and_resume(reg: &Registry) {
    eprintln!("== crash/resume against {}", reg.name);
    let proxy = Proxy::start(&reg.addr);
    let name = format!("{}/res/img:1", proxy.addr);
    let total = (LAYER * LAYERS) as u64;

    // Push, killed after about 2.5 layers went up.
    let pusher = Bay::new();
    big_image(&pusher, &name);
    proxy.throttle(8_000); // ~8 MiB/s
    run_and_kill(&pusher, &["push", &name], &proxy.up, total * 5 / 8);
    let first = proxy.up.load(Ordering::SeqCst);
    proxy.throttle(0);
    proxy.reset();
    let env = [
        ("BAY_MAX_CONCURRENT_TRANSFERS", "1"),
        ("BAY_PUSH_CHUNK_SIZE", "1048576"),
    ];
    let o = pusher.cmd(&["push", &name]).envs(env).output().unwrap();
    assert!(
        o.status.success(),
        "resumed push: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let second = proxy.up.load(Ordering::SeqCst);
    let log = proxy.log.lock().unwrap().clone();
    eprintln!("push: killed after {first} bytes, resumed run sent {second} of {total}");
    // The finished layers are not sent again: at most the remaining layers plus
    // one layer that a registry may have dropped when its PATCH was cut.
    assert!(second + first >= total, "everything arrived");
    assert!(
        second <= total - first + LAYER as u64 + (256 << 10),
        "resumed push re-sent finished layers: {second} bytes after {first}\n{log}"
    );
    assert!(
        second < total * 3 / 4,
        "resumed push sent {second} of {total}"
    );

    // Pull, killed after about 2.5 layers came down.
    let puller = Bay::new();
    proxy.reset();
    proxy.throttle(8_000);
    run_and_kill(&puller, &["pull", &name], &proxy.down, total * 5 / 8);
    let first = proxy.down.load(Ordering::SeqCst);
    let done = layer_blobs_present(&puller);
    assert!(done >= 1, "at least one layer finished before the kill");
    proxy.throttle(0);
    proxy.reset();
    let out = puller.ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    let second = proxy.down.load(Ordering::SeqCst);
    let log = proxy.log.lock().unwrap().clone();
    eprintln!(
        "pull: killed after {first} bytes ({done} layers done), resumed run fetched {second} of {total}"
    );
    let remaining = total - (done * LAYER) as u64;
    assert!(
        second <= remaining + (64 << 10),
        "finished layers fetched again: {second} > {remaining}\n{log}"
    );
    assert!(
        second < remaining,
        "the partial layer resumed with a Range request: {second} vs {remaining}\n{log}"
    );
    assert!(log.to_ascii_lowercase().contains("range: bytes="), "{log}");
    assert_eq!(layer_blobs_present(&puller), LAYERS);
    assert_eq!(
        puller.ok(&["inspect", "-f", "{{.Id}}", &name]),
        pusher.ok(&["inspect", "-f", "{{.Id}}", &name])
    );
}

/// One run each of push and pull whose connection is cut halfway: the same
/// process recovers (Range request / upload status) without starting over.
fn cut_connections(reg: &Registry) {
    eprintln!("== cut connections against {}", reg.name);
    let proxy = Proxy::start(&reg.addr);
    let name = format!("{}/cut/img:1", proxy.addr);
    let total = (LAYER * LAYERS) as u64;
    let env = [
        ("BAY_MAX_CONCURRENT_TRANSFERS", "1"),
        ("BAY_PUSH_CHUNK_SIZE", "1048576"),
    ];

    let pusher = Bay::new();
    big_image(&pusher, &name);
    proxy.cut_up.store(total / 2 + 12345, Ordering::SeqCst);
    let o = pusher.cmd(&["push", &name]).envs(env).output().unwrap();
    assert!(
        o.status.success(),
        "push with a cut connection: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        proxy.cut_up.load(Ordering::SeqCst),
        0,
        "the connection was cut"
    );
    let sent = proxy.up.load(Ordering::SeqCst);
    eprintln!("push with one cut sent {sent} of {total}");
    // At worst the interrupted layer starts over (a registry may drop a cut upload).
    assert!(sent <= total + LAYER as u64 + (256 << 10), "{sent}");

    proxy.reset();
    let puller = Bay::new();
    proxy.cut_down.store(total / 2 + 54321, Ordering::SeqCst);
    let o = puller.cmd(&["pull", &name]).envs(env).output().unwrap();
    assert!(
        o.status.success(),
        "pull with a cut connection: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        proxy.cut_down.load(Ordering::SeqCst),
        0,
        "the connection was cut"
    );
    let got = proxy.down.load(Ordering::SeqCst);
    let log = proxy.log.lock().unwrap().clone();
    eprintln!("pull with one cut fetched {got} of {total}");
    assert!(
        got <= total + (256 << 10),
        "the cut layer resumed rather than restarted: {got}\n{log}"
    );
    assert!(log.to_ascii_lowercase().contains("range: bytes="), "{log}");
    assert_eq!(
        puller.ok(&["inspect", "-f", "{{.Id}}", &name]),
        pusher.ok(&["inspect", "-f", "{{.Id}}", &name])
    );
}

#[test]
fn cut_connections_distribution() {
    if let Some(r) = distribution() {
        cut_connections(&r);
    }
}

#[test]
fn cut_connections_bay_registry() {
    if let Some(r) = bay_registry() {
        cut_connections(&r);
    }
}

#[test]
fn crash_and_resume_distribution() {
    if let Some(r) = distribution() {
        crash_and_resume(&r);
    }
}

#[test]
fn crash_and_resume_bay_registry() {
    if let Some(r) = bay_registry() {
        crash_and_resume(&r);
    }
}
