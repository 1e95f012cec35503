//! MultiCasskopTask end to end, on three sites with workloads (real StatefulSets and pods, the
//! CassKop simulator running pod operations from pod labels): a cleanup task created with the CLI
//! verb `multi-casskop op` runs site by site in the ring's rollout order, never more than
//! `--concurrency` pods at a time per site, picks up a pod CassKop left `Manual`, and ends
//! `Complete`; a pod whose operation keeps failing is retried, then the task is `Failed` naming it.
//! Order and throttling are judged from the pods' own `operation-start`/`operation-end` labels.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use multi_casskop::api::{MultiCasskopTask, TaskPhase};
use multi_casskop_e2e::SimConfig;
use serde_json::json;

/// Pods start one by one, sites roll out one at a time, pod operations run one site after the
/// other, on a shared machine.
const SLOW: Duration = Duration::from_secs(300);
/// How long the simulated CassKop keeps a pod operation `Ongoing`: long enough that operations
/// running at the same time overlap by whole seconds in the labels' one-second resolution.
const OPERATION: Duration = Duration::from_secs(2);

/// One pod's operation as its labels tell it.
#[derive(Debug, Clone)]
struct Ran {
    pod: String,
    name: String,
    status: String,
    start: String,
    end: String,
}

async fn operations(env: &Env, site: &str) -> Vec<Ran> {
    let pods: Api<Pod> = Api::namespaced(env.clients[site].clone(), &env.namespace);
    let list = pods
        .list(&ListParams::default().labels("cassandracluster=cass"))
        .await
        .expect("pods");
    let get = |p: &Pod, k: &str| p.labels().get(k).cloned().unwrap_or_default();
    list.items
        .iter()
        .map(|p| Ran {
            pod: p.name_any(),
            name: get(p, "operation-name"),
            status: get(p, "operation-status"),
            start: get(p, "operation-start"),
            end: get(p, "operation-end"),
        })
        .collect()
}

/// Most operations running at once: at every start, those started and not yet ended
/// (`YYYYMMDDTHHMMSS` compares as text).
fn most_at_once(ran: &[Ran]) -> usize {
    ran.iter()
        .map(|r| {
            ran.iter()
                .filter(|o| o.start <= r.start && r.start < o.end)
                .count()
        })
        .max()
        .unwrap_or(0)
}

async fn wait_task(env: &Env, name: &str, phase: TaskPhase) -> MultiCasskopTask {
    let api: Api<MultiCasskopTask> = Api::namespaced(env.management.clone(), &env.namespace);
    multi_casskop_e2e::wait::until(format!("task {name} {}", phase.as_str()), SLOW, || async {
        let task = api.get(name).await.map_err(|e| e.to_string())?;
        match &task.status {
            Some(s) if s.phase == phase => Ok(task),
            other => Err(format!("{other:#?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn condition(task: &MultiCasskopTask, type_: &str) -> Option<String> {
    task.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_task_runs_site_by_site_throttled_and_names_a_failed_pod() {
    let sites = own_sites_with_workloads(3).await;
    let sim = SimConfig::default().real_workloads(true).delay(OPERATION);
    let env = Env::build("tasks", sites, sim, |s| s).await;
    let mut manifest = deleting_ring("ring", &env.namespace);
    manifest["spec"]["base"]["spec"]["nodesPerRacks"] = json!(2);
    env.create(manifest).await;
    let api = env.mcs();
    let mc = multi_casskop_e2e::wait::until("ring Ready", SLOW, || async {
        match api.get("ring").await {
            Ok(mc) if is_ready(&mc) => Ok(mc),
            Ok(mc) => Err(format!("{:#?}", mc.status)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let order: Vec<String> = mc
        .status
        .expect("status")
        .sites
        .iter()
        .map(|s| s.site.clone())
        .collect();
    assert_eq!(order, SITES, "the ring's rollout order");
    // Every pod exists and is Ready before the task (two per rack: 2, 2 and 4 pods).
    let counts = [("site-a", 2), ("site-b", 2), ("site-c", 4)];
    for (site, n) in counts {
        let pods: Api<Pod> = Api::namespaced(env.clients[site].clone(), &env.namespace);
        multi_casskop_e2e::wait::until(format!("{site}: {n} Ready pods"), SLOW, || async {
            let list = pods
                .list(&ListParams::default().labels("cassandracluster=cass"))
                .await
                .map_err(|e| e.to_string())?;
            let ready = list
                .items
                .iter()
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .count();
            if ready == n {
                Ok(())
            } else {
                Err(format!("{ready} Ready"))
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    // CassKop without autoPilot suggests a cleanup with `operation-status=Manual`.
    let site_c_pods: Api<Pod> = Api::namespaced(env.clients["site-c"].clone(), &env.namespace);
    site_c_pods
        .patch(
            "cass-dc3-rack2-1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": {
                "operation-name": "cleanup", "operation-status": "Manual" } } })),
        )
        .await
        .expect("Manual label");

    // The CLI verb creates the task.
    let kubeconfig = env
        .sites
        .get("site-a")
        .expect("site-a")
        .kubeconfig_path()
        .to_path_buf();
    let out = Command::new(env!("CARGO_BIN_EXE_multi-casskop"))
        .args([
            "op",
            "cleanup",
            "ring",
            "-n",
            &env.namespace,
            "--concurrency",
            "2",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .output()
        .expect("multi-casskop runs");
    assert!(
        out.status.success(),
        "multi-casskop op: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        name.starts_with("ring-cleanup-"),
        "printed the task name: {name:?}"
    );

    let task = wait_task(&env, &name, TaskPhase::Succeeded).await;
    assert_eq!(condition(&task, "Complete").as_deref(), Some("True"));
    assert_eq!(condition(&task, "Failed").as_deref(), Some("False"));
    // From the pods' own labels: every pod cleaned up; every pod of a site ended before any
    // pod of the next site started; never more than two at once at a site.
    let mut ran: BTreeMap<String, Vec<Ran>> = BTreeMap::new();
    for site in SITES {
        let ops = operations(&env, site).await;
        for r in &ops {
            assert!(
                r.name == "cleanup"
                    && r.status == "Done"
                    && r.start.len() == 15
                    && r.end.len() == 15,
                "{site}: {r:?}"
            );
        }
        let most = most_at_once(&ops);
        assert!(most <= 2, "{site}: {most} cleanups at once: {ops:#?}");
        ran.insert(site.to_string(), ops);
    }
    assert_eq!(
        most_at_once(&ran["site-c"]),
        2,
        "site-c's four pods ran two at a time (the limit was used): {:#?}",
        ran["site-c"]
    );
    for pair in SITES.windows(2) {
        let last_end = ran[pair[0]]
            .iter()
            .map(|r| r.end.clone())
            .max()
            .unwrap_or_default();
        let first_start = ran[pair[1]]
            .iter()
            .map(|r| r.start.clone())
            .min()
            .unwrap_or_default();
        assert!(
            last_end <= first_start,
            "{} ended at {last_end}, {} started at {first_start}: {ran:#?}",
            pair[0],
            pair[1]
        );
    }

    // The status says the same.
    let status = task.status.clone().expect("status");
    assert_eq!(status.sites_done.as_deref(), Some("3/3"));
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    let progress: Vec<(String, Option<String>)> = status
        .sites
        .iter()
        .map(|s| (s.site.clone(), s.progress.clone()))
        .collect();
    assert_eq!(
        progress,
        counts
            .iter()
            .map(|(s, n)| (s.to_string(), Some(format!("{n}/{n}"))))
            .collect::<Vec<_>>()
    );

    // A pod whose cleanup keeps failing: asked, retried once, then the task fails naming it.
    env.simulators["site-b"].set_pod_operations_fail(true);
    let tasks: Api<MultiCasskopTask> = Api::namespaced(env.management.clone(), &env.namespace);
    let failing: MultiCasskopTask = serde_json::from_value(json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "MultiCasskopTask",
        "metadata": { "name": "failing" },
        "spec": { "multiCasskop": "ring", "operation": "cleanup", "sites": ["site-b"], "retries": 1 }
    }))
    .expect("task");
    tasks
        .create(&PostParams::default(), &failing)
        .await
        .expect("task created");
    let failed = wait_task(&env, "failing", TaskPhase::Failed).await;
    assert_eq!(condition(&failed, "Failed").as_deref(), Some("True"));
    assert_eq!(condition(&failed, "Complete").as_deref(), Some("False"));
    let status = failed.status.clone().expect("status");
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains("pod cass-dc2-rack1-0 at site site-b"),
        "the message names the pod: {message}"
    );
    let pods: Vec<(String, Option<String>, u32)> = status.sites[0]
        .pods
        .iter()
        .map(|p| (p.pod.clone(), p.status.clone(), p.attempts))
        .collect();
    assert_eq!(
        pods,
        vec![
            ("cass-dc2-rack1-0".to_string(), Some("Error".to_string()), 2),
            ("cass-dc2-rack1-1".to_string(), None, 0),
        ],
        "asked twice (one retry), the next pod never asked"
    );
    let site_b = operations(&env, "site-b").await;
    let first = site_b
        .iter()
        .find(|r| r.pod == "cass-dc2-rack1-0")
        .expect("pod");
    assert_eq!(first.status, "Error", "CassKop's own verdict: {first:?}");
    // The retry and the failure were announced on the task.
    let events: Api<Event> = Api::namespaced(env.management.clone(), &env.namespace);
    let reasons: Vec<String> = multi_casskop_e2e::wait::until("task Events", SLOW, || async {
        let list = events
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let reasons: Vec<String> = list
            .items
            .iter()
            .filter(|e| e.involved_object.name.as_deref() == Some("failing"))
            .filter_map(|e| e.reason.clone())
            .collect();
        if reasons.iter().any(|r| r == "TaskFailed") {
            Ok(reasons)
        } else {
            Err(format!("{reasons:?}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(reasons.iter().any(|r| r == "PodRetried"), "{reasons:?}");
}
