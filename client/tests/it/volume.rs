//! Named volumes (`bay volume …`, `bay run -v NAME:/path`) and the storage
//! flags of `bay run` (`--mount`, `--tmpfs`, `--ulimit`, `--shm-size`,
//! `--env-file`), end to end through the `bay` binary. Needs root.

use crate::common::*;

fn busybox_bay() -> Option<Bay> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: bay run needs root (namespaces, cgroups, overlayfs)");
        return None;
    }
    let bay = Bay::new();
    let rootfs = busybox_rootfs(bay.root.path())?;
    bay.ok(&["import", rootfs.to_str().unwrap(), "bb:1"]);
    Some(bay)
}

#[test]
fn volume_verbs_without_containers() {
    let bay = Bay::new();
    assert_eq!(bay.ok(&["volume", "ls", "-q"]), "");
    assert_eq!(bay.ok(&["volume", "create", "v1"]), "v1\n");
    assert_eq!(bay.ok(&["volume", "create", "v1"]), "v1\n", "idempotent");
    let anon = bay.ok(&["volume", "create"]);
    assert_eq!(anon.trim().len(), 64, "{anon}");
    let ls = bay.ok(&["volume", "ls"]);
    let mut lines = ls.lines();
    assert!(lines.next().unwrap().starts_with("DRIVER"), "{ls}");
    assert!(ls.contains("local") && ls.contains("v1"), "{ls}");
    let json: serde_json::Value =
        serde_json::from_str(&bay.ok(&["volume", "inspect", "v1"])).unwrap();
    assert_eq!(json[0]["Name"], "v1");
    assert_eq!(json[0]["Driver"], "local");
    let mp = json[0]["Mountpoint"].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&mp).is_dir(), "{mp}");
    assert_eq!(
        bay.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "v1"])
            .trim(),
        mp
    );
    let e = bay.fails(&["volume", "inspect", "nosuch"], 1);
    assert!(e.contains("No such volume: nosuch"), "{e}");
    let e = bay.fails(&["volume", "create", "/bad"], 1);
    assert!(
        e.contains("includes invalid characters for a local volume name"),
        "{e}"
    );
    let e = bay.fails(&["volume", "rm", "nosuch"], 1);
    assert!(e.contains("get nosuch: no such volume"), "{e}");
    bay.ok(&["volume", "rm", "-f", "nosuch"]);
    // prune: anonymous only, then -a for the rest.
    let out = bay.ok(&["volume", "prune", "-f"]);
    assert!(out.contains(anon.trim()) && !out.contains("v1\n"), "{out}");
    let out = bay.ok(&["volume", "prune", "-a", "-f"]);
    assert!(out.contains("v1"), "{out}");
    assert_eq!(bay.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn named_volumes_are_filled_from_the_image_persist_and_are_kept_while_used() {
    let Some(bay) = busybox_bay() else { return };
    // First use creates the volume and copies the image's /bin into it.
    let out = bay.ok(&[
        "run",
        "--rm",
        "-v",
        "tools:/bin",
        "bb:1",
        "sh",
        "-c",
        "echo kept > /bin/note; ls /bin",
    ]);
    assert!(out.contains("busybox") && out.contains("note"), "{out}");
    assert!(
        bay.ok(&["volume", "ls", "-q"])
            .lines()
            .any(|l| l == "tools")
    );
    // Elsewhere in another container: the data stayed, no second copy-up.
    let out = bay.ok(&[
        "run",
        "--rm",
        "-v",
        "tools:/mnt/t:ro",
        "bb:1",
        "sh",
        "-c",
        "cat /mnt/t/note; ls /mnt/t | grep -c busybox; echo x > /mnt/t/y || echo ro",
    ]);
    assert_eq!(out, "kept\n1\nro\n");
    // nocopy leaves a new volume empty; an anonymous one appears for -v /path.
    let out = bay.ok(&[
        "run",
        "--rm",
        "-v",
        "empty:/bin2:nocopy",
        "-v",
        "/scratch",
        "bb:1",
        "sh",
        "-c",
        "ls /bin2 | wc -l; touch /scratch/ok && echo anon",
    ]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "anon"]);
    // --rm took the anonymous volume with the container; named ones stay.
    let names = bay.ok(&["volume", "ls", "-q"]);
    assert_eq!(names.lines().collect::<Vec<_>>(), ["empty", "tools"]);
    // Without --rm the anonymous volume stays (for volume prune).
    bay.ok(&["run", "-v", "/keep", "bb:1", "true"]);
    assert_eq!(bay.ok(&["volume", "ls", "-q"]).lines().count(), 3);
    let leftover: Vec<String> = std::fs::read_dir(bay.data_root().join("runtime/containers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    bay.ok(&["rm", &leftover[0]]);
    let out = bay.ok(&["volume", "prune", "-f"]);
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    assert_eq!(bay.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    // rm -v takes the container's anonymous volumes, never a named one.
    bay.ok(&[
        "run", "--name", "withvols", "-v", "/gone", "-v", "tools:/t", "bb:1", "true",
    ]);
    assert_eq!(bay.ok(&["volume", "ls", "-q"]).lines().count(), 3);
    bay.ok(&["rm", "-v", "withvols"]);
    let names = bay.ok(&["volume", "ls", "-q"]);
    assert_eq!(names.lines().collect::<Vec<_>>(), ["empty", "tools"]);

    // A container (even a stopped one) keeps its volume from rm, -f too.
    bay.ok(&["run", "-v", "tools:/t", "bb:1", "true"]);
    let ids: Vec<String> = std::fs::read_dir(bay.data_root().join("runtime/containers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    for args in [
        vec!["volume", "rm", "tools"],
        vec!["volume", "rm", "-f", "tools"],
    ] {
        let e = bay.fails(&args, 1);
        assert!(
            e.contains(&format!("remove tools: volume is in use - [{}]", ids[0])),
            "{e}"
        );
    }
    let out = bay.ok(&["volume", "prune", "-a", "-f"]);
    assert!(!out.contains("tools"), "prune keeps used volumes: {out}");
    bay.ok(&["rm", &ids[0]]);
    assert_eq!(bay.ok(&["volume", "rm", "tools"]), "tools\n");
}

#[test]
fn run_storage_and_env_flags_reach_the_container() {
    let Some(bay) = busybox_bay() else { return };
    let dir = bay.root.path().join("host");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("f"), "host file\n").unwrap();
    let env_file = bay.root.path().join("env.list");
    std::fs::write(
        &env_file,
        "# settings\nA=from file\nB=file\nPASSED\nMISSING\n",
    )
    .unwrap();
    let bind = format!("type=bind,source={},target=/h,readonly", dir.display());
    let script = "echo \"$A|$B|$PASSED|${MISSING-unset}\"; cat /h/f; touch /h/x 2>/dev/null || echo ro; \
                  grep ' /run ' /proc/self/mounts | cut -d' ' -f3,4 | cut -d, -f1-2; \
                  grep ' /dev/shm ' /proc/self/mounts | grep -o 'size=[0-9]*k'; ulimit -n";
    let out = bay
        .cmd(&[
            "run",
            "--rm",
            "--env-file",
            env_file.to_str().unwrap(),
            "-e",
            "B=flag",
            "--mount",
            &bind,
            "--tmpfs",
            "/run:size=1m",
            "--shm-size",
            "8m",
            "--ulimit",
            "nofile=256:512",
            "bb:1",
            "sh",
            "-c",
            script,
        ])
        .env("PASSED", "through")
        .env_remove("MISSING")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from file|flag|through|unset\nhost file\nro\ntmpfs rw,nosuid\nsize=8192k\n256\n"
    );
    // -v creates a missing host directory, as docker does.
    let fresh = bay.root.path().join("made/by/run");
    bay.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", fresh.display()),
        "bb:1",
        "true",
    ]);
    assert!(fresh.is_dir());
    let e = bay.fails(
        &[
            "run",
            "--rm",
            "--mount",
            "type=bind,source=/no/such,target=/x",
            "bb:1",
            "true",
        ],
        125,
    );
    assert!(
        e.contains("bind source path does not exist: /no/such"),
        "{e}"
    );
}
