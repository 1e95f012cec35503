//! A site added to a ring that is already Ready, on sites with workloads and the simulator's real
//! backend: it goes Joining → AwaitingReplication (the statements in status, an Event, acknowledged
//! with the annotation as a user would, by running the command the status shows) → Rebuilding
//! (CassKop's `rebuild` pod operation through pod labels, at most `maxConcurrent` pods at once,
//! judged from the pods' own `operation-start`/`operation-end` labels) → Ready; a pod whose
//! rebuild keeps failing is asked `1 + retries` times and the site is `Failed` naming it; with
//! `rebuild.enabled: false` the site is Ready after the acknowledgement and no pod is labelled.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use multi_casskop::api::{MultiCasskop, SiteState};
use multi_casskop::labels::REPLICATION_ADDED_ANNOTATION;
use multi_casskop::labels::pod_operation::{ARGUMENT, END, NAME, START, STATUS};
use multi_casskop_e2e::controlplane::SiteConfig;
use multi_casskop_e2e::{SimConfig, shared};
use serde_json::{Value, json};

/// Pods start one by one and four sites share a small machine.
const PODS: Duration = Duration::from_secs(300);
/// The joining site.
const NEW: &str = "site-d";

/// The shared layout and a fourth site (Orange CRD), each with one kwok node.
fn four_sites() -> Vec<SiteConfig> {
    let mut layout = shared::casskop_layout();
    layout.push(SiteConfig::new(NEW).casskop_crd(multi_casskop_e2e::crds::CasskopCrd::Orange));
    layout.into_iter().map(|s| s.with_workloads(1)).collect()
}

/// Pod operations last 3 s: long enough for their label times (whole seconds) to show overlaps.
async fn env(prefix: &str) -> Env {
    multi_casskop_e2e::telemetry::init_for_tests();
    let sites = SitesRef::Shared(shared::sites(four_sites).await.expect("four sites start"));
    let sim = SimConfig::default()
        .real_workloads(true)
        .delay(Duration::from_secs(3));
    Env::build(prefix, sites, sim, |s| s).await
}

fn topology(dc: &str, nodes: u32) -> Value {
    json!({ "spec": { "topology": { "dc": [{ "name": dc, "nodesPerRacks": nodes, "rack": [{ "name": "rack1" }] }] } } })
}

/// A ring over `sites` (one DC of one node each: dc1 at site-a, dc2 at site-b...), with
/// `replication`.
fn small_ring(namespace: &str, sites: &[(&str, &str)], replication: Value) -> Value {
    let mut m = ring("ring", namespace);
    let overrides: serde_json::Map<String, Value> = sites
        .iter()
        .map(|(site, dc)| (site.to_string(), topology(dc, 1)))
        .collect();
    let domains: serde_json::Map<String, Value> = sites
        .iter()
        .map(|(site, _)| (site.to_string(), json!(format!("{site}.example"))))
        .collect();
    m["spec"]["override"] = Value::Object(overrides);
    m["spec"]["seeds"] = json!({ "domains": domains });
    m["spec"]["replication"] = replication;
    m
}

/// Adds site-d (dc4, `nodes` pods) to the ring.
async fn add_site_d(env: &Env, nodes: u32) {
    env.patch_spec(
        "ring",
        json!({ "override": { (NEW): topology("dc4", nodes) }, "seeds": { "domains": { (NEW): "site-d.example" } } }),
    )
    .await;
}

async fn wait_mc(env: &Env, what: &str, probe: impl Fn(&MultiCasskop) -> bool) -> MultiCasskop {
    let api = env.mcs();
    multi_casskop_e2e::wait::until(what, PODS, || {
        let api = api.clone();
        let probe = &probe;
        async move {
            match api.get("ring").await {
                Ok(mc) if probe(&mc) => Ok(mc),
                Ok(mc) => Err(format!("{:#?}", mc.status)),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn state_of(mc: &MultiCasskop, site: &str) -> Option<SiteState> {
    site_state(mc, site).map(|s| s.state)
}

/// Every state site-d showed in the MultiCasskop's status, in order, without repeats.
fn record_states(env: &Env) -> (Arc<Mutex<Vec<SiteState>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let api = env.mcs();
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let stream =
            watcher(api, watcher::Config::default().fields("metadata.name=ring")).default_backoff();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(watcher::Event::Apply(mc) | watcher::Event::InitApply(mc)) = event
                && let Some(state) = state_of(&mc, NEW)
            {
                let mut seen = out.lock().expect("lock");
                if seen.last() != Some(&state) {
                    seen.push(state);
                }
            }
        }
    });
    (seen, task)
}

fn pods_api(env: &Env, site: &str) -> Api<Pod> {
    Api::namespaced(env.clients[site].clone(), &env.namespace)
}

async fn pods_of(env: &Env, site: &str) -> Vec<Pod> {
    pods_api(env, site)
        .list(&ListParams::default().labels("cassandracluster=cass"))
        .await
        .expect("pods")
        .items
}

/// Events about the ring with `reason`, as `kubectl get events` lists them.
async fn events(env: &Env, reason: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(env.management.clone(), &env.namespace);
    api.list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(|e| e.message.unwrap_or_default())
        .collect()
}

/// Runs the acknowledgement command the status shows, with kubectl against the management
/// cluster (site-a), as a user would.
fn acknowledge(env: &Env, command: &str) {
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("kubectl"), "{command}");
    let kubeconfig = env.sites.get("site-a").expect("site-a").kubeconfig_path();
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(words)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CassKop's label time `YYYYMMDDTHHMMSS` as seconds since the epoch.
fn label_second(text: &str) -> i64 {
    let t = k8s_openapi::jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S", text)
        .unwrap_or_else(|e| panic!("label time {text:?}: {e}"));
    t.to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC)
        .expect("UTC")
        .timestamp()
        .as_second()
}

/// The most rebuilds running at once: at each start, the pods whose [start, end) holds it.
fn most_at_once(windows: &[(String, i64, i64)]) -> usize {
    windows
        .iter()
        .map(|(_, at, _)| windows.iter().filter(|(_, s, e)| s <= at && at < e).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn most_at_once_counts_overlaps_from_whole_seconds() {
    let w = |list: &[(i64, i64)]| -> Vec<(String, i64, i64)> {
        list.iter()
            .enumerate()
            .map(|(i, (s, e))| (format!("p{i}"), *s, *e))
            .collect()
    };
    assert_eq!(most_at_once(&w(&[(0, 3), (0, 3), (3, 6)])), 2);
    assert_eq!(most_at_once(&w(&[(0, 3), (1, 4), (2, 5)])), 3);
    assert_eq!(most_at_once(&w(&[(0, 3), (3, 6), (6, 9)])), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_site_joins_a_ready_ring_and_is_rebuilt_two_pods_at_a_time() {
    let mut env = env("join").await;
    let replication =
        json!({ "keyspaces": ["app"], "rebuild": { "maxConcurrent": 2, "retries": 1 } });
    env.create(small_ring(
        &env.namespace,
        &[("site-a", "dc1"), ("site-b", "dc2"), ("site-c", "dc3")],
        replication,
    ))
    .await;
    wait_mc(&env, "three-site ring Ready", is_ready).await;
    let (seen, recorder) = record_states(&env);

    add_site_d(&env, 3).await;
    let mc = wait_mc(&env, "site-d AwaitingReplication", |mc| {
        state_of(mc, NEW) == Some(SiteState::AwaitingReplication)
    })
    .await;
    // The gate: statements naming every DC of the ring after the join, the command, an Event,
    // `multi-casskop status`; the ring is not Ready and no pod is asked to rebuild yet.
    let join = site_state(&mc, NEW)
        .and_then(|s| s.membership.clone())
        .expect("membership of site-d");
    assert_eq!(join.statements.len(), 4, "{join:#?}");
    for statement in &join.statements {
        for dc in ["'dc1': 1", "'dc2': 1", "'dc3': 1", "'dc4': 3"] {
            assert!(statement.contains(dc), "{statement} names {dc}");
        }
    }
    assert!(
        join.statements[3].starts_with("ALTER KEYSPACE app "),
        "{join:#?}"
    );
    let command = join.acknowledge_with.clone().expect("acknowledge command");
    assert!(
        command.contains(&format!("{REPLICATION_ADDED_ANNOTATION}=site-d")),
        "{command}"
    );
    assert!(!is_ready(&mc), "not Ready while site-d awaits replication");
    let table = multi_casskop::status_table::sites(&mc);
    assert!(table.contains(&join.statements[0]), "{table}");
    let needed = events(&env, "ReplicationNeeded").await;
    assert!(
        needed
            .iter()
            .any(|m| m.contains(&join.statements[0]) && m.contains(&command)),
        "{needed:?}"
    );
    let early: Vec<String> = pods_of(&env, NEW)
        .await
        .iter()
        .filter(|p| p.labels().contains_key(NAME))
        .map(|p| p.name_any())
        .collect();
    assert!(
        early.is_empty(),
        "pods asked before the acknowledgement: {early:?}"
    );

    // The join lives in the ring's status: a restarted controller still waits for the
    // acknowledgement with the same statements.
    env.restart_controller(|s| s).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = env.mcs().get("ring").await.expect("ring");
    let kept = site_state(&after, NEW).cloned().expect("site-d");
    assert_eq!(kept.state, SiteState::AwaitingReplication, "{kept:#?}");
    assert_eq!(kept.membership.as_ref(), Some(&join), "{kept:#?}");

    acknowledge(&env, &command);
    let rebuilding = wait_mc(&env, "site-d Rebuilding", |mc| {
        state_of(mc, NEW) == Some(SiteState::Rebuilding)
    })
    .await;
    assert!(!is_ready(&rebuilding), "not Ready while site-d rebuilds");
    wait_mc(&env, "ring Ready with site-d", |mc| {
        is_ready(mc) && state_of(mc, NEW) == Some(SiteState::Ready)
    })
    .await;
    recorder.abort();
    let states = seen.lock().expect("lock").clone();
    let wanted = [
        SiteState::Joining,
        SiteState::AwaitingReplication,
        SiteState::Rebuilding,
        SiteState::Ready,
    ];
    let mut rest = states.iter();
    for want in wanted {
        assert!(
            rest.any(|s| *s == want),
            "site-d went through {wanted:?} in order: seen {states:?}"
        );
    }

    // Every pod rebuilt from dc1 (the first DC of the first site), never more than 2 at once.
    let pods = pods_of(&env, NEW).await;
    assert_eq!(pods.len(), 3, "three pods at site-d");
    let mut windows = Vec::new();
    for p in &pods {
        let l = p.labels();
        assert_eq!(
            l.get(NAME).map(String::as_str),
            Some("rebuild"),
            "{}: {l:?}",
            p.name_any()
        );
        assert_eq!(
            l.get(STATUS).map(String::as_str),
            Some("Done"),
            "{}: {l:?}",
            p.name_any()
        );
        assert_eq!(
            l.get(ARGUMENT).map(String::as_str),
            Some("dc1"),
            "{}: {l:?}",
            p.name_any()
        );
        windows.push((p.name_any(), label_second(&l[START]), label_second(&l[END])));
    }
    eprintln!("site-d states seen: {states:?}; rebuild windows (pod, start, end): {windows:?}");
    let most = most_at_once(&windows);
    assert_eq!(
        most, 2,
        "at most maxConcurrent=2 rebuilds at once, and 2 used: {windows:?}"
    );
    // Progress Events: started at 0/3, at least one step in between, finished at 3/3.
    let progress = events(&env, "Rebuilding").await;
    assert!(
        progress.iter().any(|m| m.contains("rebuilt 0/3 from dc1")),
        "{progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|m| m.contains("rebuilt 1/3") || m.contains("rebuilt 2/3")),
        "{progress:?}"
    );
    let rebuilt = events(&env, "Rebuilt").await;
    assert!(
        rebuilt.iter().any(|m| m.contains("rebuilt 3/3 from dc1")),
        "{rebuilt:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_rebuild_is_retried_then_the_site_fails_naming_the_pod() {
    let env = env("joinfail").await;
    env.simulators[NEW].set_pod_operations_fail(true);
    let replication = json!({ "rebuild": { "retries": 1 } });
    env.create(small_ring(
        &env.namespace,
        &[("site-a", "dc1")],
        replication,
    ))
    .await;
    wait_mc(&env, "one-site ring Ready", is_ready).await;
    add_site_d(&env, 1).await;
    let mc = wait_mc(&env, "site-d AwaitingReplication", |mc| {
        state_of(mc, NEW) == Some(SiteState::AwaitingReplication)
    })
    .await;
    let command = site_state(&mc, NEW)
        .and_then(|s| s.membership.clone())
        .and_then(|m| m.acknowledge_with)
        .expect("acknowledge command");
    acknowledge(&env, &command);
    let pod = "cass-dc4-rack1-0";
    let mc = wait_mc(&env, "site-d Failed", |mc| {
        state_of(mc, NEW) == Some(SiteState::Failed)
    })
    .await;
    let site = site_state(&mc, NEW).expect("site-d");
    let message = site.message.clone().unwrap_or_default();
    assert!(message.contains(pod), "{message}");
    let rebuild = site
        .membership
        .clone()
        .and_then(|m| m.rebuild)
        .expect("rebuild record");
    assert_eq!(rebuild.pods.len(), 1, "{rebuild:#?}");
    assert_eq!(rebuild.pods[0].pod, pod);
    assert_eq!(rebuild.pods[0].attempts, 2, "1 + retries: {rebuild:#?}");
    assert!(!is_ready(&mc));
    let labels = pods_api(&env, NEW)
        .get(pod)
        .await
        .expect("pod")
        .labels()
        .clone();
    assert_eq!(
        labels.get(STATUS).map(String::as_str),
        Some("Error"),
        "{labels:?}"
    );
    let retried = events(&env, "RebuildRetry").await;
    assert_eq!(retried.len(), 1, "{retried:?}");
    let failed = events(&env, "RebuildFailed").await;
    assert!(failed.iter().any(|m| m.contains(pod)), "{failed:?}");
    // Reported, not retried any more.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let again = env.mcs().get("ring").await.expect("ring");
    let attempts = site_state(&again, NEW)
        .and_then(|s| s.membership.clone())
        .and_then(|m| m.rebuild)
        .map(|r| r.pods[0].attempts);
    assert_eq!(attempts, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_rebuild_the_site_is_ready_after_the_acknowledgement_and_no_pod_is_labelled() {
    let env = env("joinnorebuild").await;
    let replication = json!({ "rebuild": { "enabled": false } });
    env.create(small_ring(
        &env.namespace,
        &[("site-a", "dc1")],
        replication,
    ))
    .await;
    wait_mc(&env, "one-site ring Ready", is_ready).await;
    add_site_d(&env, 1).await;
    let mc = wait_mc(&env, "site-d AwaitingReplication", |mc| {
        state_of(mc, NEW) == Some(SiteState::AwaitingReplication)
    })
    .await;
    let command = site_state(&mc, NEW)
        .and_then(|s| s.membership.clone())
        .and_then(|m| m.acknowledge_with)
        .expect("acknowledge command");
    // Still waiting without the acknowledgement.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = env.mcs().get("ring").await.expect("ring");
    assert_eq!(
        state_of(&waiting, NEW),
        Some(SiteState::AwaitingReplication)
    );
    assert!(!is_ready(&waiting));
    acknowledge(&env, &command);
    let mc = wait_mc(&env, "ring Ready with site-d", |mc| {
        is_ready(mc) && state_of(mc, NEW) == Some(SiteState::Ready)
    })
    .await;
    assert_eq!(
        site_state(&mc, NEW).and_then(|s| s.membership.clone()),
        None
    );
    let pods = pods_of(&env, NEW).await;
    assert_eq!(pods.len(), 1);
    for p in &pods {
        assert!(
            !p.labels().contains_key(NAME),
            "{} labelled: {:?}",
            p.name_any(),
            p.labels()
        );
    }
}
