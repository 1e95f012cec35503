//! A site leaves a ring that holds data, on sites with workloads and the CassKop simulator's real
//! backend: nothing is scaled down before the user acknowledges the replication change, a
//! scale-to-zero CassKop refuses stays Blocked without further writes until the user acts, then
//! the DC is decommissioned pod by pod and deleted. And a lost site (API server stopped, given up
//! with the abandon annotation) has its nodes removed one at a time by CassKop's `remove` pod
//! operation at a surviving site. Judged from object state (resourceVersions, managedFields,
//! pod operation labels) and the controller's own request counters.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use multi_casskop::api::{MembershipChange, MultiCasskop, SiteState};
use multi_casskop::labels::{
    ABANDON_SITES_ANNOTATION, POD_OPERATION_FIELD_MANAGER, RELEASE_FIELD_MANAGER,
    REPLICATION_DROPPED_ANNOTATION, RETRY_ANNOTATION, pod_operation,
};
use multi_casskop_e2e::SimConfig;
use serde_json::{Value, json};

/// Pods start one by one and sites roll out one at a time, on a shared machine.
const PODS: Duration = Duration::from_secs(240);

async fn annotate(env: &Env, key: &str, value: &str) {
    env.mcs()
        .patch(
            "ring",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { key: value } } })),
        )
        .await
        .expect("MultiCasskop annotated");
}

/// Write requests of the running controller to `site`.
fn writes_at(env: &Env, site: &str) -> u64 {
    env.controller.as_ref().map_or(0, |c| {
        c.ctx
            .metrics
            .requests_where(|s, verb| s == site && !multi_casskop::metrics::is_read(verb))
    })
}

/// Reconciles of the ring by the running controller.
fn reconciles(env: &Env) -> u64 {
    let text = env
        .controller
        .as_ref()
        .map(|c| c.ctx.metrics.encode())
        .unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.starts_with("multicasskop_reconciles_total{") && l.contains("multicasskop=\"ring\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Makes the controller reconcile the ring `n` more times (an unrelated annotation changes), and
/// waits until each reconcile has run.
async fn poke(env: &Env, n: usize) {
    for i in 0..n {
        let before = reconciles(env);
        annotate(env, "e2e.test/poke", &format!("{i}-{before}")).await;
        multi_casskop_e2e::wait::until("the controller reconciled the poke", CONVERGE, || async {
            if reconciles(env) > before {
                Ok(())
            } else {
                Err(format!("reconciles still {before}"))
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

async fn wait_site(
    env: &Env,
    what: &str,
    timeout: Duration,
    probe: impl Fn(&MultiCasskop) -> bool,
) -> MultiCasskop {
    let api = env.mcs();
    multi_casskop_e2e::wait::until(what, timeout, || {
        let api = api.clone();
        let probe = &probe;
        async move {
            match api.get("ring").await {
                Ok(mc) if probe(&mc) => Ok(mc),
                Ok(mc) => Err(format!("{:#?}", mc.status.map(|s| s.sites))),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn state_is(mc: &MultiCasskop, site: &str, state: SiteState) -> bool {
    site_state(mc, site).is_some_and(|s| s.state == state)
}

/// Whether every DC of a stored CassandraCluster asks for 0 nodes.
fn zero(o: &DynamicObject) -> bool {
    o.data
        .pointer("/spec/topology/dc")
        .and_then(Value::as_array)
        .is_some_and(|dcs| dcs.iter().all(|dc| dc["nodesPerRacks"] == json!(0)))
}

fn node_count(o: &DynamicObject) -> usize {
    o.data
        .pointer("/status/cassandraNodeStatus")
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len)
}

/// Notes of the Events about the ring with `reason`.
async fn event_notes(env: &Env, reason: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(env.management.clone(), &env.namespace);
    let mut list = events
        .list(&ListParams::default())
        .await
        .expect("Events")
        .items;
    list.sort_by_key(|e| e.metadata.creation_timestamp.clone());
    list.into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.message)
        .collect()
}

fn scenario_sim() -> SimConfig {
    SimConfig::default().real_workloads(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_removal_stays_blocked_with_bounded_writes_then_completes_after_acknowledgement()
{
    let sites = own_sites_with_workloads(1).await;
    // Keyspaces replicate to dc3 (site-c): CassKop refuses to scale it to 0.
    let env = Env::build(
        "leave",
        sites,
        scenario_sim().keyspaces_replicate_to("dc3"),
        |s| s,
    )
    .await;
    let mut manifest = deleting_ring("ring", &env.namespace);
    manifest["spec"]["replication"] = json!({ "keyspaces": ["app"] });
    env.create(manifest).await;
    wait_site(
        &env,
        "ring Ready with site-c's nodes recorded",
        PODS,
        |mc| is_ready(mc) && site_state(mc, "site-c").is_some_and(|s| s.nodes.len() == 2),
    )
    .await;
    let recorder = env.record();

    // The site leaves: the statements over the remaining DCs, one Event, and nothing written.
    env.patch_spec(
        "ring",
        json!({ "override": { "site-c": null }, "seeds": { "domains": { "site-c": null } } }),
    )
    .await;
    let mc = wait_site(&env, "site-c AwaitingReplication", CONVERGE, |mc| {
        state_is(mc, "site-c", SiteState::AwaitingReplication)
    })
    .await;
    let membership = site_state(&mc, "site-c")
        .and_then(|s| s.membership.clone())
        .expect("membership of site-c");
    assert_eq!(membership.change, MembershipChange::Leave);
    let replication = "{'class': 'NetworkTopologyStrategy', 'dc1': 1, 'dc2': 1}";
    assert_eq!(
        membership.statements,
        ["system_auth", "system_distributed", "system_traces", "app"]
            .iter()
            .map(|k| format!("ALTER KEYSPACE {k} WITH replication = {replication};"))
            .collect::<Vec<_>>(),
        "statements name the remaining DCs only"
    );
    let ack = format!(
        "kubectl annotate multicasskop ring -n {} --overwrite {REPLICATION_DROPPED_ANNOTATION}=site-c",
        env.namespace
    );
    assert_eq!(membership.acknowledge_with.as_deref(), Some(ack.as_str()));
    assert!(!membership.acknowledged);
    let writes = writes_at(&env, "site-c");
    poke(&env, 3).await;
    let notes = event_notes(&env, "AwaitingReplication").await;
    assert_eq!(notes.len(), 1, "one Event with the command: {notes:?}");
    assert!(notes[0].contains(&ack), "{notes:?}");
    let cc = env.ccs("site-c").get("cass").await.expect("site-c's cass");
    assert!(
        !zero(&cc) && !managers(&cc).contains(&RELEASE_FIELD_MANAGER.to_string()),
        "nothing scaled before the acknowledgement: {:?} {:?}",
        cc.data.get("spec"),
        managers(&cc)
    );
    assert_eq!(
        writes_at(&env, "site-c"),
        writes,
        "no write at site-c while waiting"
    );

    // Acknowledged without running the ALTER: CassKop refuses, the site is Blocked.
    annotate(&env, REPLICATION_DROPPED_ANNOTATION, "site-c").await;
    let mc = wait_site(&env, "site-c Blocked by CassKop's refusal", PODS, |mc| {
        state_is(mc, "site-c", SiteState::Blocked)
    })
    .await;
    let message = site_state(&mc, "site-c")
        .and_then(|s| s.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("CorrectCRDConfig")
            && message.contains(&format!(
                "ALTER KEYSPACE app WITH replication = {replication};"
            ))
            && message.contains(RETRY_ANNOTATION),
        "CassKop's reason, the statements and how to ask again: {message}"
    );
    env.wait_cc("site-c", "the old topology written back", |o| {
        o.is_some_and(|o| {
            !zero(o)
                && o.data.pointer("/status/lastClusterAction") == Some(&json!("CorrectCRDConfig"))
        })
    })
    .await;
    // Bounded writes: a few more reconciles, no request to any site, one zero version only.
    let zero_versions = |rec: &Recorder| -> BTreeSet<String> {
        rec.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| s.site == "site-c" && zero(&s.object))
            .filter_map(|s| s.object.resource_version())
            .collect()
    };
    let writes = env.site_writes();
    let writes_c = writes_at(&env, "site-c");
    poke(&env, 4).await;
    let mc = env.mcs().get("ring").await.expect("ring");
    assert!(
        state_is(&mc, "site-c", SiteState::Blocked),
        "{:#?}",
        mc.status
    );
    assert_eq!(
        writes_at(&env, "site-c"),
        writes_c,
        "no write at site-c while Blocked"
    );
    assert_eq!(
        env.site_writes(),
        writes,
        "no write at any site while Blocked"
    );
    assert_eq!(
        zero_versions(&recorder).len(),
        1,
        "one scale-to-zero version at site-c, not one per reconcile"
    );

    // The user runs the ALTER (CassKop now accepts) and asks again: decommission, then delete.
    env.simulators["site-c"].set_keyspaces(Vec::<String>::new());
    annotate(&env, RETRY_ANNOTATION, "1").await;
    env.wait_cc("site-c", "deleted", |o| o.is_none()).await;
    wait_site(&env, "site-c no longer tracked, ring Ready", PODS, |mc| {
        site_state(mc, "site-c").is_none() && is_ready(mc)
    })
    .await;
    // Pod by pod: the accepted scale went 2 → 1 → 0 nodes.
    let counts: Vec<usize> = recorder
        .seen
        .lock()
        .expect("lock")
        .iter()
        .filter(|s| s.site == "site-c" && zero(&s.object))
        .map(|s| node_count(&s.object))
        .collect();
    assert!(
        counts.contains(&1),
        "CassKop decommissioned one node at a time: node counts of the zero versions {counts:?}"
    );
}

/// One version of a pod: (site, pod, labels).
type PodVersion = (String, String, BTreeMap<String, String>);
/// A finished `remove`: (site, pod, argument, start, end).
type RemoveRow = (String, String, String, String, String);

/// Every version of the pods at some sites.
#[derive(Clone, Default)]
struct PodLog(Arc<Mutex<Vec<PodVersion>>>);

impl PodLog {
    fn start(env: &Env, sites: &[&str]) -> (Self, Vec<tokio::task::JoinHandle<()>>) {
        let log = PodLog::default();
        let tasks = sites
            .iter()
            .map(|site| {
                let api: Api<Pod> = Api::namespaced(env.clients[*site].clone(), &env.namespace);
                let log = log.clone();
                let site = site.to_string();
                tokio::spawn(async move {
                    // With a backoff: once the sites stop (a failed assertion tears them
                    // down) a watcher without one retries in a loop that never yields, and the
                    // test runtime can then never shut down: a hang instead of a failure.
                    let stream = watcher(api, watcher::Config::default()).default_backoff();
                    futures::pin_mut!(stream);
                    while let Some(event) = stream.next().await {
                        if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = event {
                            log.0.lock().expect("lock").push((
                                site.clone(),
                                p.name_any(),
                                p.labels().clone(),
                            ));
                        }
                    }
                })
            })
            .collect();
        (log, tasks)
    }

    /// Finished `remove` operations: (site, pod, argument, start, end), once each.
    fn removes(&self) -> Vec<RemoveRow> {
        let mut out: Vec<RemoveRow> = Vec::new();
        for (site, pod, l) in self.0.lock().expect("lock").iter() {
            let get = |k: &str| l.get(k).cloned().unwrap_or_default();
            if get(pod_operation::NAME) != "remove" || get(pod_operation::STATUS) != "Done" {
                continue;
            }
            let row = (
                site.clone(),
                pod.clone(),
                get(pod_operation::ARGUMENT),
                get(pod_operation::START),
                get(pod_operation::END),
            );
            if !out.contains(&row) {
                out.push(row);
            }
        }
        out
    }
}

async fn pods_of(client: &Client, ns: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels("cassandracluster=cass"))
        .await
        .expect("pods")
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_sites_nodes_are_removed_one_by_one_from_a_surviving_site() {
    let sites = own_sites_with_workloads(1).await;
    let env = Env::build("lost", sites, scenario_sim(), |s| s).await;
    env.create(ring("ring", &env.namespace)).await;
    let mc = wait_site(
        &env,
        "ring Ready with site-c's nodes recorded",
        PODS,
        |mc| {
            is_ready(mc)
                && site_state(mc, "site-c").is_some_and(|s| {
                    s.nodes.len() == 2
                        && s.nodes
                            .iter()
                            .all(|n| !n.ip.is_empty() && !n.host_id.is_empty())
                })
        },
    )
    .await;
    // The record is CassKop's own (pods and IPs at site-c).
    let lost: Vec<(String, String)> = site_state(&mc, "site-c")
        .expect("site-c")
        .nodes
        .iter()
        .map(|n| (n.pod.clone(), n.ip.clone()))
        .collect();
    let mut at_site_c: Vec<(String, String)> = pods_of(&env.clients["site-c"], &env.namespace)
        .await
        .iter()
        .map(|p| {
            (
                p.name_any(),
                p.status
                    .as_ref()
                    .and_then(|s| s.pod_ip.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    at_site_c.sort();
    assert_eq!(lost, at_site_c, "nodes recorded from CassKop's node status");
    // Operations take 2 s, so two at once would overlap in their own start/end labels.
    for site in ["site-a", "site-b"] {
        env.simulators[site].set_delay(Duration::from_secs(2));
    }
    let (log, _tasks) = PodLog::start(&env, &["site-a", "site-b"]);

    // site-c is lost; the user takes it out of the ring and gives it up.
    env.stop_site("site-c").await;
    wait_site(&env, "site-c Unreachable", CONVERGE, |mc| {
        state_is(mc, "site-c", SiteState::Unreachable)
    })
    .await;
    env.mcs()
        .patch(
            "ring",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": { "annotations": { ABANDON_SITES_ANNOTATION: "site-c" } },
                "spec": { "override": { "site-c": null }, "seeds": { "domains": { "site-c": null } } }
            })),
        )
        .await
        .expect("site-c given up");
    wait_site(&env, "site-c RemovingNodes", CONVERGE, |mc| {
        state_is(mc, "site-c", SiteState::RemovingNodes)
    })
    .await;
    wait_site(
        &env,
        "site-c's nodes removed and no longer tracked",
        PODS,
        |mc| site_state(mc, "site-c").is_none(),
    )
    .await;

    // Each node removed by a `remove` at the first surviving site, with CassKop's argument,
    // one after the other (from the pods' own operation labels).
    let removes = log.removes();
    let want: Vec<String> = lost.iter().map(|(p, ip)| format!("{p}_{ip}")).collect();
    assert_eq!(
        removes.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
        want,
        "one remove per lost node, in order: {removes:?}"
    );
    let site_a_pods: Vec<String> = pods_of(&env.clients["site-a"], &env.namespace)
        .await
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    for (site, pod, _, start, end) in &removes {
        assert!(
            site == "site-a" && site_a_pods.contains(pod) && start.len() == 15 && end.len() == 15,
            "ran on a surviving pod with CassKop's start/end labels: {removes:?}"
        );
    }
    for pair in removes.windows(2) {
        assert!(
            pair[1].3 >= pair[0].4,
            "the next remove started only after the previous ended: {removes:?}"
        );
    }
    // The labels were ours, merged into the pod's labels only.
    let pod = Api::<Pod>::namespaced(env.clients["site-a"].clone(), &env.namespace)
        .get(&removes[0].1)
        .await
        .expect("pod");
    assert!(
        pod.metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|f| f.manager.as_deref() == Some(POD_OPERATION_FIELD_MANAGER)),
        "labelled by our field manager"
    );
    // Progress reported.
    let removed = event_notes(&env, "NodeRemoved").await;
    assert!(
        removed.iter().any(|n| n.contains("removed 1/2 nodes"))
            && removed.iter().any(|n| n.contains("removed 2/2 nodes")),
        "progress in Events: {removed:?}"
    );
    let done = event_notes(&env, "LostSiteRemoved").await;
    assert!(
        done.iter()
            .any(|n| n.contains("removed 2/2 nodes") && n.contains("left behind at site site-c")),
        "{done:?}"
    );
}
