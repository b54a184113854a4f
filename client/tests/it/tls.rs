//! HTTPS with a private CA: trusted through `$BAY_HOME/certs.d/<host>/ca.crt`,
//! and a clear error (no silent plain-HTTP fallback) when it is not.

use std::process::Command;

use crate::common::*;

fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certs(dir: &std::path::Path) -> bool {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=bay test CA",
                "-days",
                "2",
            ],
        ]
        .concat(),
    ) && openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "srv.key",
                "-out",
                "srv.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    ) && openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    )
}

#[test]
fn https_with_a_private_ca() {
    let certs = tempfile::tempdir().unwrap();
    if !make_certs(certs.path()) {
        eprintln!("SKIP: openssl could not make test certificates");
        return;
    }
    let (crt, key) = (certs.path().join("srv.crt"), certs.path().join("srv.key"));
    let Some(reg) = bay_registry_with(&[
        "--tls-cert",
        crt.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]) else {
        return;
    };
    let bay = Bay::new();
    let Some(rootfs) = busybox_rootfs(bay.root.path()) else {
        return;
    };
    bay.ok(&["import", rootfs.to_str().unwrap(), "bb:1"]);
    let remote = format!("{}/tls/bb:1", reg.addr);
    bay.ok(&["tag", "bb:1", &remote]);
    let home = bay.root.path().join("home");

    // Not trusted yet: a clear error naming where the CA goes.
    let o = bay
        .cmd(&["push", &remote])
        .env("BAY_HOME", &home)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("does not trust") && e.contains(&format!("certs.d/{}/ca.crt", reg.addr)),
        "{e}"
    );

    let hostdir = home.join("certs.d").join(&reg.addr);
    std::fs::create_dir_all(&hostdir).unwrap();
    std::fs::copy(certs.path().join("ca.crt"), hostdir.join("ca.crt")).unwrap();
    let o = bay
        .cmd(&["push", &remote])
        .env("BAY_HOME", &home)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "push over TLS: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let fresh = Bay::new();
    let o = fresh
        .cmd(&["pull", &remote])
        .env("BAY_HOME", &home)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pull over TLS: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
