//! Control-plane lifecycle against real `kube-controlplane` processes: outage and recovery on the
//! same state, pause/resume, merged kubeconfig, and teardown that leaves no process, port or
//! directory behind (also when the parent process is killed).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use multi_casskop_e2e::controlplane::{ports, process};
use multi_casskop_e2e::namespace::create_namespace;
use multi_casskop_e2e::{SiteConfig, Sites, kubeconfig, telemetry, wait};

type TestResult = anyhow::Result<()>;

async fn namespace_exists(client: &kube::Client, name: &str) -> Result<bool, kube::Error> {
    Ok(Api::<Namespace>::all(client.clone())
        .get_opt(name)
        .await?
        .is_some())
}

#[tokio::test]
async fn outage_and_recovery_on_the_same_state_and_pause() -> TestResult {
    telemetry::init_for_tests();
    let kubeconfigs = tempfile::tempdir()?;
    let path = kubeconfigs.path().join("paris.kubeconfig");
    let sites = Sites::start(vec![SiteConfig::new("paris").kubeconfig(&path)]).await?;
    let site = sites.get("paris").expect("paris");
    assert_eq!(site.kubeconfig_path(), path);
    let client = site.client().await?;
    create_namespace(&client, "survivor").await?;
    let (pid, port) = (site.pid().expect("running"), site.ports().api);

    site.stop().await?;
    assert!(!site.is_running());
    assert!(!process::is_alive(pid), "process {pid} gone");
    assert!(!ports::is_listening(port), "port {port} closed");
    assert!(
        namespace_exists(&client, "survivor").await.is_err(),
        "requests fail during the outage"
    );

    site.start().await?;
    assert_eq!(site.ports().api, port, "same port after restart");
    // The old client (and kubeconfig) keep working: same CA, token and etcd data.
    let back = wait::until(
        "the old client to reconnect",
        Duration::from_secs(60),
        || async {
            namespace_exists(&client, "survivor")
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await?;
    assert!(back, "namespace kept across the restart");

    site.pause()?;
    let paused = tokio::time::timeout(
        Duration::from_secs(2),
        namespace_exists(&client, "survivor"),
    )
    .await;
    assert!(paused.is_err(), "a paused control plane does not answer");
    site.resume()?;
    let fresh = site.client().await?;
    wait::until("answers after resume", Duration::from_secs(60), || async {
        namespace_exists(&fresh, "survivor")
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn teardown_leaves_no_process_port_or_directory() -> TestResult {
    telemetry::init_for_tests();
    let sites = Sites::start(vec![SiteConfig::new("north"), SiteConfig::new("south")]).await?;
    println!("two sites started in {:?}", sites.started_in());

    let out = tempfile::tempdir()?;
    let merged = out.path().join("all.kubeconfig");
    sites.write_merged_kubeconfig(&merged)?;
    for site in &sites {
        let client = kubeconfig::client_for(&merged, site.name()).await?;
        create_namespace(&client, &format!("from-merged-{}", site.name())).await?;
        assert!(
            namespace_exists(
                &site.client().await?,
                &format!("from-merged-{}", site.name())
            )
            .await?
        );
    }

    let pids: Vec<u32> = sites.iter().map(|s| s.pid().expect("running")).collect();
    let ports: Vec<u16> = sites.iter().flat_map(|s| s.ports().all()).collect();
    let dirs: Vec<_> = sites.iter().map(|s| s.state_dir().to_path_buf()).collect();
    assert!(pids.iter().all(|p| process::is_alive(*p)));
    assert!(dirs.iter().all(|d| d.is_dir()));
    let api_ports: Vec<u16> = sites.iter().map(|s| s.ports().api).collect();
    assert!(api_ports.iter().all(|p| ports::is_listening(*p)));

    drop(sites);

    for pid in &pids {
        assert!(!process::is_alive(*pid), "control plane {pid} still runs");
    }
    for port in &ports {
        assert!(!ports::is_listening(*port), "port {port} still listens");
    }
    for dir in &dirs {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
    Ok(())
}

/// `e2e-sites` is SIGKILLed: its control plane dies with it (parent-death signal).
#[tokio::test]
async fn killed_parent_takes_its_control_planes_along() -> TestResult {
    telemetry::init_for_tests();
    // Make sure the binary is built (and cached) before starting the child, which looks it up too.
    let binary =
        tokio::task::spawn_blocking(multi_casskop_e2e::controlplane::binary::locate).await??;
    let work = tempfile::tempdir()?;
    let mut parent = Command::new(env!("CARGO_BIN_EXE_e2e-sites"))
        .args(["--site", "orphan=none", "--kubeconfig-dir"])
        .arg(work.path().join("kubeconfigs"))
        .arg("--state-dir")
        .arg(work.path().join("state"))
        .env("KUBE_CONTROLPLANE_BIN", &binary)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = parent.stdout.take().expect("piped stdout");
    let site_line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("SITE ").map(str::to_string))
    })
    .await?
    .expect("e2e-sites printed a SITE line");
    let site: serde_json::Value = serde_json::from_str(&site_line)?;
    let pid = u32::try_from(site["pid"].as_u64().expect("pid"))?;
    let port: u16 = site["server"]
        .as_str()
        .and_then(|s| s.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("port in server URL");
    assert!(process::is_alive(pid));

    parent.kill()?; // SIGKILL: no destructor, no signal handler runs in the parent
    parent.wait()?;

    wait::until(
        "the orphaned control plane to die",
        Duration::from_secs(30),
        || async {
            if process::is_alive(pid) || ports::is_listening(port) {
                Err(format!(
                    "pid {pid} alive: {}, port {port} open",
                    process::is_alive(pid)
                ))
            } else {
                Ok(())
            }
        },
    )
    .await?;
    Ok(())
}
