//! `make test` on a machine without CassKop's CRDs or the recorded traces says exactly what is
//! missing, where it comes from and how to point at it (e2e/check-inputs.sh).

use std::process::Command;

fn check(env: &[(&str, &str)]) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/check-inputs.sh");
    let out = Command::new("bash")
        .arg(script)
        .envs(env.iter().copied())
        .output()
        .expect("bash runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_crds_and_traces_are_named_with_their_source_and_checksum() {
    let empty = std::env::temp_dir().join(format!("no-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("dir");
    let dir = empty.to_str().expect("utf-8");
    let (ok, message) = check(&[("CASSKOP_CRDS_DIR", dir), ("CASSKOP_TRACES_DIR", dir)]);
    assert!(!ok, "must fail without the inputs");
    for needle in [
        "missing: ",
        "casskop-cscetbon-cassandraclusters.yaml",
        "casskop-orange-v2.1.0-cassandraclusters.yaml",
        "sha256: f2a7f0378f4793c8b6558505d65364460fb8f874bfee00eac7640a3ef3801af8",
        "github.com/cscetbon/casskop",
        "trace-cc1.jsonl",
        "CASSKOP_CRDS_DIR=",
        "CASSKOP_TRACES_DIR=",
    ] {
        assert!(message.contains(needle), "lacks {needle:?}:\n{message}");
    }
}

#[test]
fn present_inputs_pass() {
    let (ok, message) = check(&[]);
    assert!(ok, "this workplace has the inputs:\n{message}");
}
