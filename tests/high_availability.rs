//! High availability: two `multi-casskop run` processes with leader election against real
//! control planes. Only the leader writes; killing it (SIGKILL, no lease release) mid-rollout
//! lets the standby take over within the lease time and finish without rewriting what was done.
//! Also checks /metrics, /healthz and /readyz of a real process.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use multi_casskop_e2e::SimConfig;

const LEASE_SECONDS: u64 = 4;

struct Replica {
    name: String,
    port: u16,
    child: Child,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn replica(env: &Env, name: &str) -> Replica {
    let port = free_port();
    let kubeconfig = |site: &str| {
        env.sites
            .get(site)
            .expect("site")
            .kubeconfig_path()
            .display()
            .to_string()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_multi-casskop"))
        .args([
            "run",
            "--kubeconfig",
            &kubeconfig("site-a"),
            "--context",
            "site-a",
            "-n",
            &env.namespace,
            "-l",
            "site-a",
        ])
        .args([
            "--site",
            &format!("site-b={}:site-b", kubeconfig("site-b")),
            "--site",
            &format!("site-c={}:site-c", kubeconfig("site-c")),
        ])
        .args([
            "--leader-elect",
            "--leader-election-namespace",
            &env.namespace,
            "--http-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .env("POD_NAME", name)
        .env(
            "MULTICASSKOP_LEADER_ELECTION__LEASE_DURATION_SECONDS",
            LEASE_SECONDS.to_string(),
        )
        .env("RUST_LOG", "info,kube=warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("replica starts");
    Replica {
        name: name.into(),
        port,
        child,
    }
}

async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    let code = text.split(' ').nth(1)?.parse().ok()?;
    Some((
        code,
        text.split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string(),
    ))
}

/// Write requests (patch, create, update, delete) a replica sent to `site`, from its /metrics.
async fn writes_to(port: u16, site: &str) -> u64 {
    let (_, body) = get(port, "/metrics").await.expect("metrics answer");
    body.lines()
        .filter(|l| {
            l.starts_with("multicasskop_api_requests_total{")
                && l.contains(&format!("site=\"{site}\""))
        })
        .filter(|l| {
            ["patch", "create", "update", "delete"]
                .iter()
                .any(|v| l.contains(&format!("verb=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn holder(env: &Env) -> Option<String> {
    multi_casskop_e2e::lease::holder(&env.management, &env.namespace, "multi-casskop").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_from_a_killed_leader_without_duplicate_writes() {
    let mut env = Env::with_sim("ha", SimConfig::default().delay(Duration::from_secs(2))).await;
    // This test runs its own controller processes.
    if let Some(c) = env.controller.take() {
        c.stop().await;
    }
    let mut replicas = vec![replica(&env, "replica-1"), replica(&env, "replica-2")];
    let leader = multi_casskop_e2e::wait::until("a leader", CONVERGE, || async {
        holder(&env)
            .await
            .filter(|h| h.starts_with("replica-"))
            .ok_or_else(|| "no holder yet".to_string())
    })
    .await
    .expect("a replica leads");
    let (leader_index, standby_index) = if replicas[0].name == leader {
        (0, 1)
    } else {
        (1, 0)
    };
    for r in &replicas {
        multi_casskop_e2e::wait::until(format!("{} ready", r.name), CONVERGE, || async {
            match get(r.port, "/readyz").await {
                Some((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await
        .expect("readyz");
        assert_eq!(get(r.port, "/healthz").await.map(|(c, _)| c), Some(200));
    }

    env.create(ring("ring", &env.namespace)).await;
    env.wait_cc("site-b", "site-b created by the leader", |o| o.is_some())
        .await;
    let standby_port = replicas[standby_index].port;
    for site in ["site-a", "site-b", "site-c"] {
        assert_eq!(
            writes_to(standby_port, site).await,
            0,
            "the standby wrote to {site}"
        );
    }
    let killed_at = Instant::now();
    let mut dead = replicas.remove(leader_index);
    dead.child.kill().expect("SIGKILL the leader");
    let _ = dead.child.wait();
    let standby = &replicas[0];
    multi_casskop_e2e::wait::until("standby leads", CONVERGE, || async {
        holder(&env)
            .await
            .filter(|h| *h == standby.name)
            .ok_or_else(|| "not yet".to_string())
    })
    .await
    .expect("takeover");
    let took = killed_at.elapsed();
    println!("takeover after SIGKILL of the leader: {took:?} (lease {LEASE_SECONDS}s)");
    // The standby takes the Lease at most a lease duration after the last renewal it saw
    // (src/lease.rs), so within the duration of the kill; the bound leaves room for a loaded
    // machine, and still fails a loop that waits a second duration (the former crate's 13 s).
    assert!(
        took < Duration::from_secs(LEASE_SECONDS * 2),
        "takeover took {took:?} with a {LEASE_SECONDS}s lease"
    );
    env.wait_ready("ring").await;
    assert_eq!(
        writes_to(standby.port, "site-a").await,
        0,
        "site-a was done before the kill: not rewritten"
    );
    assert!(
        writes_to(standby.port, "site-c").await >= 1,
        "the new leader finished the rollout"
    );
    let (code, metrics) = get(standby.port, "/metrics").await.expect("metrics");
    assert_eq!(code, 200);
    for name in [
        "multicasskop_reconciles_total",
        "multicasskop_reconcile_duration_seconds_bucket",
        "multicasskop_site_writes_total",
        "multicasskop_ready_sites",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}
