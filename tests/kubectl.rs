//! multi-casskop as kubectl users meet it, with the real kubectl: the binary works as the
//! kubectl plugins `kubectl multicasskop` and `kubectl mcass` (a symlink on PATH), and
//! `kubectl wait --for=condition=Ready multicasskop/NAME` returns only once the ring is ready.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn kubectl() -> PathBuf {
    which("kubectl")
        .expect("kubectl is on PATH (Debian package kubernetes-client or the upstream binary)")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// A directory holding `kubectl-<plugin>` symlinks to the multi-casskop binary.
fn plugin_dir(plugins: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mcass-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("plugin dir");
    for plugin in plugins {
        let link = dir.join(format!("kubectl-{plugin}"));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_multi-casskop"), &link).expect("symlink");
    }
    dir
}

fn with_path(cmd: &mut Command, dir: &Path) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut all = vec![dir.to_path_buf()];
    all.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(all).expect("PATH"));
}

#[test]
fn the_binary_is_a_kubectl_plugin_under_both_names() {
    let dir = plugin_dir(&["multicasskop", "mcass"]);
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/multicasskop-three-regions.yaml"
    );
    for plugin in ["multicasskop", "mcass"] {
        let mut cmd = Command::new(kubectl());
        cmd.args([plugin, "render", "-f", sample]);
        with_path(&mut cmd, &dir);
        let out = cmd.output().expect("kubectl runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("kind: CassandraCluster"),
            "kubectl {plugin} render: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut list = Command::new(kubectl());
    list.args(["plugin", "list"]);
    with_path(&mut list, &dir);
    let out = list.output().expect("kubectl plugin list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("kubectl-multicasskop") && text.contains("kubectl-mcass"),
        "{text}"
    );
}

/// `kubectl wait --for=condition=Ready` is the promise users automate on: it returns only once
/// every site's CassKop reported the ring's spec done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_for_ready_returns_when_every_site_is_done() {
    let env = Env::with_sim(
        "kwait",
        multi_casskop_e2e::SimConfig::default().delay(std::time::Duration::from_secs(1)),
    )
    .await;
    env.create(ring("ring", &env.namespace)).await;
    let kubeconfig = env
        .sites
        .get("site-a")
        .expect("site-a")
        .kubeconfig_path()
        .to_path_buf();
    let namespace = env.namespace.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "wait",
                "--for=condition=Ready",
                "multicasskop/ring",
                "-n",
                &namespace,
            ])
            .args(["--timeout=90s"])
            .output()
            .expect("kubectl wait runs")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "kubectl wait: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The printer columns: ready sites, phase, the site in progress (none once Ready), age.
    let kubeconfig = env
        .sites
        .get("site-a")
        .expect("site-a")
        .kubeconfig_path()
        .to_path_buf();
    let get = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "multicasskop/ring", "-n", &env.namespace])
        .output()
        .expect("kubectl get runs");
    let table = String::from_utf8_lossy(&get.stdout);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.first().map(|r| r.as_slice()),
        Some(&["NAME", "READY", "PHASE", "SITE", "AGE"][..]),
        "{table}"
    );
    assert_eq!(
        rows.get(1).map(|r| &r[..3]),
        Some(&["ring", "3/3", "Ready"][..]),
        "{table}"
    );
    assert_eq!(rows[1].len(), 4, "no site in progress once Ready: {table}");
    // When kubectl returned, every site had finished: CassKop's own status says so.
    for site in SITES {
        let cc = env.ccs(site).get("cass").await.expect("exists");
        assert!(
            running_done(&cc),
            "{site} not done when kubectl wait returned: {:#?}",
            cc.data.get("status")
        );
        assert_eq!(seedlist(&cc), ring_seeds(), "{site}");
    }
}
