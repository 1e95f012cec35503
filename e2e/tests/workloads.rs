//! Sites with workloads: the real StatefulSet controller, garbage collector and scheduler from
//! kube-controller-manager/kube-scheduler 1.35, and kwok's fake nodes, beside the site's API
//! server. Everything is judged from object state (owner references, UIDs, revision hashes,
//! conditions), never from timing.
//!
//! `E2E_WORKLOADS_CONTROLLERS=statefulset,disruption,nodelifecycle` runs the first test without
//! the garbage collector: it must then fail at the deletion check, showing the orphaned pods.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use multi_casskop_e2e::controlplane::workloads::{NODE_SITE_LABEL, NOT_READY_TAINT, ZONE_LABEL};
use multi_casskop_e2e::controlplane::{Component, Site, Workloads, ports, process};
use multi_casskop_e2e::namespace::{create_namespace, unique_name};
use multi_casskop_e2e::{SiteConfig, Sites, telemetry, wait};

type TestResult = anyhow::Result<()>;

/// Generous: pods start one by one (OrderedReady), on a machine shared with compilers.
const TIMEOUT: Duration = Duration::from_secs(180);

const APP_LABEL: &str = "app";
const HASH_LABEL: &str = "controller-revision-hash";

fn service(name: &str) -> anyhow::Result<Service> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "clusterIP": "None",
            "selector": {APP_LABEL: name},
            "ports": [{"name": "cql", "port": 9042}],
        },
    }))?)
}

/// A StatefulSet shaped like CassKop's: headless service, one pod per zone at most skew 1.
fn statefulset(name: &str, replicas: i32, image: &str) -> anyhow::Result<StatefulSet> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "selector": {"matchLabels": {APP_LABEL: name}},
            "template": {
                "metadata": {"labels": {APP_LABEL: name}},
                "spec": {
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": ZONE_LABEL,
                        "whenUnsatisfiable": "DoNotSchedule",
                        "labelSelector": {"matchLabels": {APP_LABEL: name}},
                    }],
                    "containers": [{"name": "cassandra", "image": image}],
                },
            },
        },
    }))?)
}

/// One pod as the checks see it.
#[derive(Debug, Clone)]
struct PodView {
    name: String,
    uid: String,
    owner: Option<(String, String, bool)>,
    node: Option<String>,
    phase: String,
    ready: bool,
    ip: Option<String>,
    hash: Option<String>,
    deleting: bool,
}

impl PodView {
    fn of(pod: &Pod) -> Self {
        let status = pod.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        Self {
            name: pod.name_any(),
            uid: pod.uid().unwrap_or_default(),
            owner: pod
                .owner_references()
                .first()
                .map(|o| (o.kind.clone(), o.uid.clone(), o.controller == Some(true))),
            node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            phase: status.phase.unwrap_or_default(),
            ready,
            ip: status.pod_ip,
            hash: pod.labels().get(HASH_LABEL).cloned(),
            deleting: pod.metadata.deletion_timestamp.is_some(),
        }
    }

    fn line(&self) -> String {
        format!(
            "{} uid={} owner={:?} node={:?} phase={} ready={} ip={:?} hash={:?}{}",
            self.name,
            self.uid.get(..8).unwrap_or(&self.uid),
            self.owner.as_ref().map(|(k, u, c)| format!(
                "{k}/{}{}",
                u.get(..8).unwrap_or(u),
                if *c { "" } else { "(not controller)" }
            )),
            self.node,
            self.phase,
            self.ready,
            self.ip,
            self.hash,
            if self.deleting { " (terminating)" } else { "" }
        )
    }
}

fn describe(pods: &[PodView]) -> String {
    if pods.is_empty() {
        return "no pods".to_string();
    }
    pods.iter()
        .map(PodView::line)
        .collect::<Vec<_>>()
        .join(" | ")
}

async fn pods_of(api: &Api<Pod>, app: &str) -> Result<Vec<PodView>, String> {
    let list = api
        .list(&ListParams::default().labels(&format!("{APP_LABEL}={app}")))
        .await
        .map_err(|e| format!("listing pods: {e}"))?;
    let mut pods: Vec<PodView> = list.items.iter().map(PodView::of).collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(pods)
}

/// The site's fake nodes and their zones.
async fn site_nodes(client: &Client, site: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default().labels(&format!("{NODE_SITE_LABEL}={site}")))
        .await?;
    Ok(list
        .items
        .iter()
        .map(|n| {
            (
                n.name_any(),
                n.labels().get(ZONE_LABEL).cloned().unwrap_or_default(),
            )
        })
        .collect())
}

/// What the pods of StatefulSet `sts` must look like once it has settled.
struct Expect<'a> {
    sts: &'a StatefulSet,
    replicas: usize,
    nodes: &'a BTreeMap<String, String>,
}

/// Waits until StatefulSet `name` has settled at `replicas` replicas on its current revision:
/// exactly `name-0..name-(replicas-1)`, each created by the StatefulSet controller (controller
/// owner reference to the StatefulSet's UID), scheduled onto one of the site's kwok nodes,
/// Running, Ready, with a pod IP and the StatefulSet's update revision as its hash.
async fn settled(
    pods: &Api<Pod>,
    statefulsets: &Api<StatefulSet>,
    expect: Expect<'_>,
) -> anyhow::Result<(StatefulSet, Vec<PodView>)> {
    let name = expect.sts.name_any();
    let uid = expect.sts.uid().unwrap_or_default();
    let found = wait::until(
        format!("{} Ready pods of StatefulSet {name}", expect.replicas),
        TIMEOUT,
        || async {
            let sts = statefulsets
                .get(&name)
                .await
                .map_err(|e| format!("reading the StatefulSet: {e}"))?;
            let status = sts.status.clone().unwrap_or_default();
            let update = status.update_revision.clone().unwrap_or_default();
            let views = pods_of(pods, &name).await?;
            let seen = || {
                format!(
                    "StatefulSet ready={:?} updated={:?} current={:?} update={:?}; pods: {}",
                    status.ready_replicas,
                    status.updated_replicas,
                    status.current_revision,
                    status.update_revision,
                    describe(&views)
                )
            };
            let names: Vec<String> = views.iter().map(|p| p.name.clone()).collect();
            let wanted: Vec<String> = (0..expect.replicas)
                .map(|i| format!("{name}-{i}"))
                .collect();
            let good = |p: &PodView| {
                p.owner.as_ref() == Some(&("StatefulSet".to_string(), uid.clone(), true))
                    && p.node
                        .as_ref()
                        .is_some_and(|n| expect.nodes.contains_key(n))
                    && p.phase == "Running"
                    && p.ready
                    && p.ip.is_some()
                    && p.hash.as_deref() == Some(update.as_str())
                    && !p.deleting
            };
            if names == wanted
                && views.iter().all(good)
                && status.ready_replicas == Some(i32::try_from(expect.replicas).unwrap_or(0))
                && status.current_revision.as_deref() == Some(update.as_str())
            {
                Ok((sts, views))
            } else {
                Err(seen())
            }
        },
    )
    .await?;
    Ok(found)
}

fn controllers_from_env() -> Workloads {
    let workloads = Workloads::new(3);
    match std::env::var("E2E_WORKLOADS_CONTROLLERS") {
        Ok(list) if !list.trim().is_empty() => {
            workloads.controllers(list.split(',').map(str::trim).filter(|c| !c.is_empty()))
        }
        _ => workloads,
    }
}

fn print_costs(label: &str, site: &Site) {
    let components: Vec<String> = site
        .component_rss_kib()
        .iter()
        .map(|(c, rss)| format!("{c} {} MiB", rss / 1024))
        .collect();
    println!(
        "{label}: API server ready in {:?}, workloads ready {:?} later; RSS: API server {} MiB, {}; total {} MiB",
        site.last_start_duration().unwrap_or_default(),
        site.last_workloads_start_duration(),
        site.rss_kib().unwrap_or_default() / 1024,
        if components.is_empty() {
            "no components".to_string()
        } else {
            components.join(", ")
        },
        site.total_rss_kib().unwrap_or_default() / 1024,
    );
}

#[tokio::test]
async fn statefulset_pods_are_created_scheduled_rolled_and_collected() -> TestResult {
    telemetry::init_for_tests();
    let sites = Sites::start(vec![
        SiteConfig::new("pods").workloads(controllers_from_env()),
    ])
    .await?;
    let site = sites.get("pods").expect("pods");
    print_costs("site with workloads (3 nodes)", site);
    let client = site.client().await?;

    // Three kwok nodes, Ready, schedulable, one zone each.
    let nodes = site_nodes(&client, "pods").await?;
    let zones: BTreeSet<&String> = nodes.values().collect();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert_eq!(zones.len(), 3, "one zone per node: {nodes:?}");
    for node in Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
    {
        let taints = node
            .spec
            .clone()
            .unwrap_or_default()
            .taints
            .unwrap_or_default();
        assert!(
            taints.iter().all(|t| t.key != NOT_READY_TAINT),
            "{} still tainted: {taints:?}",
            node.name_any()
        );
    }

    let ns = unique_name("sts");
    create_namespace(&client, &ns).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let revisions: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
    let name = "cass";
    services
        .create(&PostParams::default(), &service(name)?)
        .await?;
    let sts = statefulsets
        .create(
            &PostParams::default(),
            &statefulset(name, 3, "cassandra:4.1.4")?,
        )
        .await?;
    let sts_uid = sts.uid().expect("uid");

    // Created by the real StatefulSet controller, spread over the three zones by the scheduler,
    // Running and Ready through kwok.
    let (sts, first) = settled(
        &pods,
        &statefulsets,
        Expect {
            sts: &sts,
            replicas: 3,
            nodes: &nodes,
        },
    )
    .await?;
    println!("3 replicas: {}", describe(&first));
    let used_zones: BTreeSet<&String> = first
        .iter()
        .filter_map(|p| p.node.as_ref().and_then(|n| nodes.get(n)))
        .collect();
    assert_eq!(
        used_zones.len(),
        3,
        "one pod per zone: {}",
        describe(&first)
    );
    let revision_1 = sts
        .status
        .clone()
        .unwrap_or_default()
        .update_revision
        .expect("revision");

    // Scale 3 -> 4: one pod more, the others untouched.
    statefulsets
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 4}})),
        )
        .await?;
    let (_, scaled) = settled(
        &pods,
        &statefulsets,
        Expect {
            sts: &sts,
            replicas: 4,
            nodes: &nodes,
        },
    )
    .await?;
    println!("4 replicas: {}", describe(&scaled));
    for (before, after) in first.iter().zip(&scaled) {
        assert_eq!(before.uid, after.uid, "scaling up kept {}", before.name);
    }
    let before: BTreeSet<String> = scaled.iter().map(|p| p.uid.clone()).collect();

    // A template change rolls every pod: new UIDs, new revision hash.
    statefulsets
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Strategic(serde_json::json!({"spec": {"template": {"spec": {
                "containers": [{"name": "cassandra", "image": "cassandra:4.1.5"}]}}}})),
        )
        .await?;
    let rolled = wait::until("a new update revision", TIMEOUT, || async {
        let sts = statefulsets.get(name).await.map_err(|e| e.to_string())?;
        let update = sts.status.clone().unwrap_or_default().update_revision;
        match update {
            Some(rev) if rev != revision_1 => Ok(sts),
            other => Err(format!("update revision {other:?}")),
        }
    })
    .await?;
    let (rolled, after) = settled(
        &pods,
        &statefulsets,
        Expect {
            sts: &rolled,
            replicas: 4,
            nodes: &nodes,
        },
    )
    .await?;
    println!("rolled: {}", describe(&after));
    let revision_2 = rolled
        .status
        .clone()
        .unwrap_or_default()
        .update_revision
        .expect("revision");
    assert_ne!(revision_1, revision_2);
    for pod in &after {
        assert!(
            !before.contains(&pod.uid),
            "{} was not replaced: {}",
            pod.name,
            describe(&after)
        );
        assert_eq!(pod.hash.as_deref(), Some(revision_2.as_str()));
    }
    let owned_revisions = revisions.list(&ListParams::default()).await?.items;
    assert!(
        owned_revisions
            .iter()
            .filter(|r| r.owner_references().iter().any(|o| o.uid == sts_uid))
            .count()
            >= 2,
        "both revisions recorded and owned by the StatefulSet"
    );

    // Deleting the StatefulSet (background propagation, the API default) leaves its pods and
    // revisions to the garbage collector.
    statefulsets
        .delete(name, &DeleteParams::background())
        .await?;
    wait::until(
        "the garbage collector to delete the StatefulSet's pods and revisions",
        TIMEOUT,
        || async {
            let gone = statefulsets
                .get_opt(name)
                .await
                .map_err(|e| e.to_string())?
                .is_none();
            let left = pods_of(&pods, name).await?;
            let revs: Vec<String> = revisions
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .iter()
                .filter(|r| r.owner_references().iter().any(|o| o.uid == sts_uid))
                .map(ResourceExt::name_any)
                .collect();
            if gone && left.is_empty() && revs.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "StatefulSet gone: {gone}; pods: {}; revisions: {revs:?}",
                    describe(&left)
                ))
            }
        },
    )
    .await?;
    Ok(())
}

/// The state letter of a process (`T` when stopped), from `/proc/<pid>/stat`.
fn proc_state(pid: u32) -> Option<char> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()?
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

#[tokio::test]
async fn components_follow_the_site_through_pause_stop_start_and_drop() -> TestResult {
    telemetry::init_for_tests();
    let sites = Sites::start(vec![SiteConfig::new("pods-life").with_workloads(1)]).await?;
    let site = sites.get("pods-life").expect("site");
    let client = site.client().await?;
    let nodes = site_nodes(&client, "pods-life").await?;
    let components = site.component_pids();
    let kinds: Vec<Component> = components.iter().map(|(c, _)| *c).collect();
    assert_eq!(kinds, Component::ALL, "all three components run");
    let health = site.workload_ports().expect("workload ports");
    assert!(ports::is_listening(health.controller_manager));
    assert!(ports::is_listening(health.scheduler));

    let ns = unique_name("life");
    create_namespace(&client, &ns).await?;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    Api::<Service>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &service("one")?)
        .await?;
    let sts = statefulsets
        .create(
            &PostParams::default(),
            &statefulset("one", 1, "cassandra:4.1.4")?,
        )
        .await?;
    let (_, before) = settled(
        &pods,
        &statefulsets,
        Expect {
            sts: &sts,
            replicas: 1,
            nodes: &nodes,
        },
    )
    .await?;

    // Pause freezes the API server and every component; resume thaws them.
    site.pause()?;
    let mut all: Vec<u32> = components.iter().map(|(_, pid)| *pid).collect();
    all.push(site.pid().expect("running"));
    // Signals are delivered asynchronously: wait for the kernel to show every process stopped.
    let states = |all: &[u32]| -> Vec<(u32, Option<char>)> {
        all.iter().map(|pid| (*pid, proc_state(*pid))).collect()
    };
    wait::until(
        "every process stopped (T)",
        Duration::from_secs(20),
        || async {
            let now = states(&all);
            if now.iter().all(|(_, s)| *s == Some('T')) {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        },
    )
    .await?;
    site.resume()?;
    wait::until(
        "every process running again",
        Duration::from_secs(20),
        || async {
            let now = states(&all);
            if now.iter().all(|(_, s)| s.is_some_and(|s| s != 'T')) {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        },
    )
    .await?;

    // Stop takes the components down with the API server; start brings all back in place.
    site.stop().await?;
    for pid in &all {
        assert!(!process::is_alive(*pid), "pid {pid} gone after stop");
    }
    assert!(site.component_pids().is_empty());
    assert!(!ports::is_listening(health.controller_manager));
    site.start().await?;
    assert_eq!(
        site.workload_ports(),
        Some(health),
        "same health ports after restart"
    );
    let restarted = site.component_pids();
    assert_eq!(restarted.len(), 3, "{restarted:?}");
    // The pod survived in etcd, and the restarted controllers still act on the StatefulSet.
    statefulsets
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})),
        )
        .await?;
    let (_, after) = settled(
        &pods,
        &statefulsets,
        Expect {
            sts: &sts,
            replicas: 2,
            nodes: &nodes,
        },
    )
    .await?;
    assert_eq!(after[0].uid, before[0].uid, "one-0 kept across the restart");

    let pids: Vec<u32> = restarted
        .iter()
        .map(|(_, pid)| *pid)
        .chain(site.pid())
        .collect();
    drop(sites);
    for pid in pids {
        assert!(!process::is_alive(pid), "pid {pid} gone after drop");
    }
    Ok(())
}
