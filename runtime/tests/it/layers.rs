use bay_runtime::layers::Compression;
use bay_runtime::spec::RunOptions;
use bay_runtime::{Stdio, StdioConfig};

use crate::support::{env, new_id, require_env, sh, spec};

#[test]
fn writes_are_copy_on_write_and_commit_round_trips() {
    require_env!("writes_are_copy_on_write_and_commit_round_trips");
    let mut env = env();
    let id = new_id();
    let sp = spec(
        &env,
        &id,
        &RunOptions {
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo c1 > /etc/hello; echo new > /root/added; rm /bin/vi".into(),
            ],
            ..Default::default()
        },
    );
    let mut c1 = env.rt.create(id.clone(), &sp, &env.image).unwrap();
    c1.start(StdioConfig {
        stdin: Stdio::Null,
        stdout: Stdio::Null,
        stderr: Stdio::Inherit,
    })
    .unwrap();
    assert_eq!(c1.wait().unwrap().code, 0);

    // A second container from the same image sees none of it.
    let out = sh(
        &env,
        "cat /etc/hello; ls /root; ls /bin/vi",
        RunOptions::default(),
    );
    assert_eq!(out.stdout, "from the image\n/bin/vi\n", "{}", out.stderr);
    // And the image layer itself is untouched.
    let base = env.rt.layer_paths(&env.image).unwrap();
    assert_eq!(
        std::fs::read_to_string(base[0].join("etc/hello")).unwrap(),
        "from the image\n"
    );

    let lines: Vec<String> = c1.diff().unwrap().iter().map(ToString::to_string).collect();
    for want in [
        "C /etc/hello",
        "A /root/added",
        "D /bin/vi",
        "C /etc",
        "C /root",
        "C /bin",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "{want} missing from {lines:?}"
        );
    }
    let mut blob = Vec::new();
    let info = c1.commit(&mut blob, Compression::Gzip).unwrap();
    c1.delete(false).unwrap();
    env.rt.layers().unpack(&info.digest, &blob[..]).unwrap();
    env.image.push(info.digest.clone());
    let out = sh(
        &env,
        "cat /etc/hello /root/added; ls /bin/vi 2>&1",
        RunOptions::default(),
    );
    assert_eq!(
        out.stdout.lines().take(2).collect::<Vec<_>>(),
        ["c1", "new"]
    );
    assert!(
        out.stdout.contains("No such file"),
        "the whiteout hides vi: {}",
        out.stdout
    );
}
