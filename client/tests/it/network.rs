//! `bay run -p` end to end: a busybox httpd in a container on the bay0
//! bridge answers on the host's loopback through the published port, and
//! stopping `bay run` (SIGTERM, forwarded to the container) leaves no
//! lease and no rule behind. Needs root; traffic stays on loopback and the
//! bridge.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::*;

fn http_get(port: u16) -> std::io::Result<String> {
    let mut s =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

fn iptables_save() -> String {
    let o = std::process::Command::new("iptables-save")
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn leases() -> String {
    std::fs::read_to_string("/run/bay/network/bay0/leases.json").unwrap_or_default()
}

#[test]
fn run_publishes_a_port_on_the_hosts_loopback_and_cleans_up() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: bay run -p needs root (namespaces, bridge, iptables)");
        return;
    }
    if !have("iptables") && !std::path::Path::new("/usr/sbin/iptables").exists() {
        eprintln!("SKIP: iptables is not installed");
        return;
    }
    let bay = Bay::new();
    let Some(rootfs) = busybox_rootfs(bay.root.path()) else {
        return;
    };
    bay.ok(&["import", rootfs.to_str().unwrap(), "bb:1"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    // pid 1 ignores signals it has no handler for: the shell traps TERM.
    let script = "trap 'exit 0' TERM; bb=/bin/busybox; $bb mkdir /www; \
        echo served-by-bay > /www/index.html; $bb httpd -f -p 80 -h /www & wait";
    let mut child = bay
        .cmd(&[
            "run", "--rm", "-p", &publish, "bb:1", "/bin/sh", "-c", script,
        ])
        .spawn()
        .unwrap();
    /// On a failure: TERM, then KILL after 5 s, so the test never hangs.
    struct Reap<'a>(&'a mut std::process::Child);
    impl Drop for Reap<'_> {
        fn drop(&mut self) {
            let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let until = Instant::now() + Duration::from_secs(5);
            while self.0.try_wait().ok().flatten().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let guard = Reap(&mut child);

    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        match http_get(port) {
            Ok(b) if b.contains("200 OK") => break b,
            other if Instant::now() > deadline => {
                panic!("no answer on 127.0.0.1:{port}: {other:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert!(body.ends_with("\r\n\r\nserved-by-bay\n"), "{body}");
    // ps and port show the mapping while the container runs.
    let mapping = format!("127.0.0.1:{port}->80/tcp");
    let ps = bay.ok(&["ps"]);
    assert!(ps.contains("PORTS") && ps.contains(&mapping), "{ps}");
    let id = bay.ok(&["ps", "-q"]);
    let id = id.trim();
    assert_eq!(
        bay.ok(&["port", id]),
        format!("80/tcp -> 127.0.0.1:{port}\n")
    );
    assert_eq!(bay.ok(&["port", id, "80"]), format!("127.0.0.1:{port}\n"));
    let ip = bay.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", id]);
    assert!(ip.starts_with("172."), "{ip}");
    let ports = bay.ok(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", id]);
    assert_eq!(
        ports.trim(),
        format!("{{\"80/tcp\":[{{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"{port}\"}}]}}")
    );
    let e = bay.fails(&["port", id, "81/udp"], 1);
    assert!(e.contains("No public port '81/udp' published for"), "{e}");
    let dport = format!("--dport {port} ");
    assert!(
        iptables_save().contains(&dport),
        "the DNAT rule is installed"
    );
    assert!(
        leases().contains(&format!("\"host_port\": {port}")),
        "{}",
        leases()
    );

    // SIGTERM to bay is forwarded; the container's shell traps it and exits.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(guard.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = guard.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "bay run did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(!iptables_save().contains(&dport), "the DNAT rule is gone");
    assert!(
        !leases().contains(&format!("\"host_port\": {port}")),
        "{}",
        leases()
    );
    assert!(
        http_get(port).is_err(),
        "nothing answers after the container is gone"
    );
}
