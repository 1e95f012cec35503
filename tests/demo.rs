//! The demo (`make demo`) reaches a Ready three-site ring and tears everything down.

use std::process::Command;

#[test]
fn demo_reaches_ready_and_cleans_up() {
    // `make test` builds the examples (`cargo build --examples`) next to the test binaries.
    let exe = std::env::current_exe().expect("test binary path");
    let demo = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples/demo"))
        .expect("target dir");
    assert!(
        demo.is_file(),
        "{} missing: run `cargo build --examples` first (as `make test` does)",
        demo.display()
    );
    let out = Command::new(&demo)
        .arg("--exit-when-ready")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("the ring is Ready"), "{stdout}");
    for site in ["eu-west", "us-east", "ap-south"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(site) && l.contains("Ready") && l.contains("Running")),
            "{site} row:\n{stdout}"
        );
    }
    let order: Vec<usize> = [
        "  eu-west  CassandraCluster",
        "  us-east  CassandraCluster",
        "  ap-south CassandraCluster",
    ]
    .iter()
    .map(|p| {
        stdout
            .find(p)
            .unwrap_or_else(|| panic!("{p} missing:\n{stdout}"))
    })
    .collect();
    assert!(
        order[0] < order[1] && order[1] < order[2],
        "sites appear in rollout order:\n{stdout}"
    );
    assert!(stdout.contains("done; nothing left running"));
}
