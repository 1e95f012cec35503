//! The controller's CassandraClusters at three sites with workloads (kube-controller-manager,
//! kube-scheduler, kwok nodes), the CassKop simulator writing real objects
//! (`SimConfig::real_workloads`): CassKop's StatefulSets and headless Service, pods created by the
//! real StatefulSet controller and made Ready by kwok, a scale-up adding one pod per rack, an image
//! change rolling every pod, the seed list in `CASSANDRA_SEEDS`, pod operations driven through pod
//! labels, and deletion through the garbage collector. Judged from object state only.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use multi_casskop_e2e::SimConfig;
use multi_casskop_e2e::simulator::workloads::label;
use serde_json::{Value, json};

/// Pods start one by one (OrderedReady), sites roll out one at a time, on a shared machine.
const PODS: Duration = Duration::from_secs(240);

/// The racks of [`ring`] per site.
const RACKS: [(&str, &[(&str, &str)]); 3] = [
    ("site-a", &[("dc1", "rack1")]),
    ("site-b", &[("dc2", "rack1")]),
    ("site-c", &[("dc3", "rack1"), ("dc3", "rack2")]),
];

/// One pod as the checks see it.
#[derive(Debug, Clone)]
struct PodView {
    name: String,
    uid: String,
    owner_uid: Option<String>,
    node: String,
    ready: bool,
    running: bool,
    ip: String,
    hash: String,
    image: String,
    seeds: Option<String>,
    labels: BTreeMap<String, String>,
}

impl PodView {
    fn of(pod: &Pod) -> Self {
        let status = pod.status.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        Self {
            name: pod.name_any(),
            uid: pod.uid().unwrap_or_default(),
            owner_uid: pod
                .owner_references()
                .iter()
                .find(|o| o.kind == "StatefulSet" && o.controller == Some(true))
                .map(|o| o.uid.clone()),
            node: spec.node_name.clone().unwrap_or_default(),
            ready: status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True"),
            running: status.phase.as_deref() == Some("Running")
                && pod.metadata.deletion_timestamp.is_none(),
            ip: status.pod_ip.unwrap_or_default(),
            hash: pod
                .labels()
                .get(label::REVISION_HASH)
                .cloned()
                .unwrap_or_default(),
            image: spec
                .containers
                .iter()
                .find(|c| c.name == "cassandra")
                .and_then(|c| c.image.clone())
                .unwrap_or_default(),
            seeds: spec
                .init_containers
                .unwrap_or_default()
                .iter()
                .find(|c| c.name == "bootstrap")
                .and_then(|c| c.env.clone())
                .unwrap_or_default()
                .iter()
                .find(|e| e.name == "CASSANDRA_SEEDS")
                .and_then(|e| e.value.clone()),
            labels: pod.labels().clone(),
        }
    }
}

/// A rack's StatefulSet and pods once settled.
#[derive(Debug, Clone)]
struct RackView {
    sts: StatefulSet,
    pods: Vec<PodView>,
}

fn statefulset_seeds(sts: &StatefulSet) -> Option<String> {
    multi_casskop_e2e::simulator::workloads::seeds_of(sts)
}

/// What a settled rack must look like.
struct Expect<'a> {
    site: &'a str,
    dc: &'a str,
    rack: &'a str,
    replicas: usize,
    image: &'a str,
    seeds: &'a str,
}

/// Waits until rack `dc`/`rack` of `cass` at `site` has settled: StatefulSet `cass-<dc>-<rack>`
/// owned by the CassandraCluster, CassKop's labels, `serviceName: cass`, the seed list in the
/// `bootstrap` init container; exactly pods `-0..-(replicas-1)`, created by the StatefulSet
/// controller, scheduled onto the site's kwok nodes, Running, Ready, with an IP, the image, the
/// seed list and the StatefulSet's update revision.
async fn settled_rack(client: &Client, ns: &str, e: Expect<'_>) -> RackView {
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let ccs = multi_casskop_e2e::cassandra::api(client, ns);
    let name = format!("cass-{}-{}", e.dc, e.rack);
    let dc_rack = format!("{}-{}", e.dc, e.rack);
    let what = format!(
        "{}: StatefulSet {name} settled at {} Ready pods of {} with seeds {}",
        e.site, e.replicas, e.image, e.seeds
    );
    multi_casskop_e2e::wait::until(what, PODS, || async {
        let cc = ccs
            .get("cass")
            .await
            .map_err(|e| format!("CassandraCluster: {e}"))?;
        let sts = statefulsets
            .get_opt(&name)
            .await
            .map_err(|e| format!("StatefulSet: {e}"))?
            .ok_or("no StatefulSet yet")?;
        let list = pods
            .list(&ListParams::default().labels(&format!("{}={dc_rack}", label::DC_RACK)))
            .await
            .map_err(|e| format!("pods: {e}"))?;
        let views: Vec<PodView> = list.items.iter().map(PodView::of).collect();
        let spec = sts.spec.clone().unwrap_or_default();
        let status = sts.status.clone().unwrap_or_default();
        let seen = || {
            format!(
                "StatefulSet replicas={:?} ready={:?} updated={:?} current={:?} update={:?} seeds={:?}; pods: {:#?}",
                spec.replicas,
                status.ready_replicas,
                status.updated_replicas,
                status.current_revision,
                status.update_revision,
                statefulset_seeds(&sts),
                views
            )
        };
        // The StatefulSet as CassKop writes it.
        let owner = sts
            .owner_references()
            .iter()
            .find(|o| o.kind == "CassandraCluster" && o.controller == Some(true))
            .map(|o| o.uid.clone());
        if owner != cc.uid() {
            return Err(format!(
                "StatefulSet owned by {owner:?}, CassandraCluster is {:?}",
                cc.uid()
            ));
        }
        let expected_labels = [
            (label::APP, "cassandracluster"),
            (label::CLUSTER, "cass"),
            (label::DC_RACK, dc_rack.as_str()),
            (label::DC, e.dc),
            (label::RACK, e.rack),
        ];
        for (k, v) in expected_labels {
            if sts.labels().get(k).map(String::as_str) != Some(v) {
                return Err(format!("StatefulSet label {k} is not {v}: {:?}", sts.labels()));
            }
        }
        if spec.service_name.as_deref() != Some("cass") {
            return Err(format!("serviceName {:?}", spec.service_name));
        }
        if statefulset_seeds(&sts).as_deref() != Some(e.seeds) {
            return Err(format!("CASSANDRA_SEEDS: {}", seen()));
        }
        // Its pods.
        let update = status.update_revision.clone().unwrap_or_default();
        let names: Vec<&str> = views.iter().map(|p| p.name.as_str()).collect();
        let wanted: Vec<String> = (0..e.replicas).map(|i| format!("{name}-{i}")).collect();
        if names != wanted.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(format!("pods are not {wanted:?}: {}", seen()));
        }
        for p in &views {
            let ok = p.owner_uid == sts.uid()
                && p.node.starts_with(&format!("{}-node-", e.site))
                && p.running
                && p.ready
                && !p.ip.is_empty()
                && p.hash == update
                && p.image == e.image
                && p.seeds.as_deref() == Some(e.seeds)
                && expected_labels
                    .iter()
                    .all(|(k, v)| p.labels.get(*k).map(String::as_str) == Some(*v));
            if !ok {
                return Err(format!("pod {} not settled: {}", p.name, seen()));
            }
        }
        Ok(RackView {
            sts: sts.clone(),
            pods: views,
        })
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until `cass` at `site` is Running with `action` Done and its `cassandraNodeStatus` lists
/// exactly `pods` with their IPs.
async fn cc_reports(env: &Env, site: &str, action: &str, pods: &[PodView]) -> Value {
    let want: BTreeMap<String, String> = pods
        .iter()
        .map(|p| (p.name.clone(), p.ip.clone()))
        .collect();
    let api = env.ccs(site);
    multi_casskop_e2e::wait::until(
        format!("{site}: cass Running, {action} Done, node statuses {want:?}"),
        PODS,
        || async {
            let cc = api.get("cass").await.map_err(|e| e.to_string())?;
            let status = cc.data.get("status").cloned().unwrap_or(Value::Null);
            let nodes: BTreeMap<String, String> = status["cassandraNodeStatus"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v["nodeIp"].as_str().unwrap_or("").into()))
                        .collect()
                })
                .unwrap_or_default();
            let host_ids = status["cassandraNodeStatus"].as_object().is_some_and(|m| {
                m.values()
                    .all(|v| v["hostId"].as_str().is_some_and(|h| !h.is_empty()))
            });
            if status["phase"] == "Running"
                && status["lastClusterAction"] == action
                && status["lastClusterActionStatus"] == "Done"
                && nodes == want
                && host_ids
            {
                Ok(status)
            } else {
                Err(format!("{status:#}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Every rack at every site settled; returns them per site.
async fn all_settled(
    env: &Env,
    replicas: usize,
    image: &str,
    seeds: &str,
) -> BTreeMap<String, Vec<RackView>> {
    let mut out = BTreeMap::new();
    for (site, racks) in RACKS {
        let mut views = Vec::new();
        for (dc, rack) in racks {
            let expect = Expect {
                site,
                dc,
                rack,
                replicas,
                image,
                seeds,
            };
            views.push(settled_rack(&env.clients[site], &env.namespace, expect).await);
        }
        out.insert(site.to_string(), views);
    }
    out
}

fn pods_of_site(racks: &[RackView]) -> Vec<PodView> {
    racks.iter().flat_map(|r| r.pods.clone()).collect()
}

async fn wait_mc_ready(env: &Env) {
    let api = env.mcs();
    multi_casskop_e2e::wait::until("MultiCasskop ring Ready", PODS, || async {
        match api.get("ring").await {
            Ok(mc) if is_ready(&mc) => Ok(()),
            Ok(mc) => Err(format!("{:#?}", mc.status)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Labels pod `pod` at `site` for operation `name` (`ToDo`), and waits until its labels say
/// `status` with start and end times and the rack's `podLastOperation` reports it.
async fn pod_operation(
    env: &Env,
    site: &str,
    (pod, rack): (&str, &str),
    (name, argument): (&str, Option<&str>),
    status: &str,
) {
    let pods: Api<Pod> = Api::namespaced(env.clients[site].clone(), &env.namespace);
    let mut labels = json!({
        label::OPERATION_NAME: name,
        label::OPERATION_STATUS: "ToDo",
    });
    if let Some(argument) = argument {
        labels[label::OPERATION_ARGUMENT] = json!(argument);
    }
    pods.patch(
        pod,
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "labels": labels } })),
    )
    .await
    .expect("pod labelled");
    let ccs = env.ccs(site);
    multi_casskop_e2e::wait::until(
        format!("{site}: {name} on {pod} ends {status} and podLastOperation of {rack} says so"),
        PODS,
        || async {
            let p = pods.get(pod).await.map_err(|e| e.to_string())?;
            let l = p.labels();
            let cc = ccs.get("cass").await.map_err(|e| e.to_string())?;
            let plo = cc
                .data
                .pointer(&format!(
                    "/status/cassandraRackStatus/{rack}/podLastOperation"
                ))
                .cloned()
                .unwrap_or(Value::Null);
            let list = if status == "Done" { "podsOK" } else { "podsKO" };
            let labels_ok = l.get(label::OPERATION_STATUS).map(String::as_str) == Some(status)
                && l.get(label::OPERATION_START).is_some_and(|t| t.len() == 15)
                && l.get(label::OPERATION_END).is_some_and(|t| t.len() == 15);
            let status_ok = plo["name"] == name
                && plo["status"] == "Done"
                && plo["startTime"].is_string()
                && plo["endTime"].is_string()
                && plo[list] == json!([pod])
                && plo["pods"] == json!([]);
            if labels_ok && status_ok {
                Ok(())
            } else {
                Err(format!("labels {l:?}; podLastOperation {plo:#}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casskop_objects_follow_the_controller_at_sites_with_workloads() {
    let sites = own_sites_with_workloads(3).await;
    let env = Env::build(
        "pods",
        sites,
        SimConfig::default().real_workloads(true),
        |s| s,
    )
    .await;
    let mut manifest = deleting_ring("ring", &env.namespace);
    manifest["spec"]["base"]["spec"]["nodesPerRacks"] = json!(2);
    // Two seeds per DC, so the scale-up leaves the seed list (and the first pods) as they are.
    manifest["spec"]["seeds"]["perDc"] = json!(2);
    env.create(manifest).await;
    wait_mc_ready(&env).await;
    let mc = env.mcs().get("ring").await.expect("MultiCasskop");
    let seeds = mc.status.expect("status").seedlist.join(",");
    assert!(!seeds.is_empty(), "the controller wrote a seed list");

    // Created: StatefulSets, Service, two Ready pods per rack, node statuses with pod IPs.
    let created = all_settled(&env, 2, "cassandra:3.11.9", &seeds).await;
    for (site, racks) in &created {
        let services: Api<Service> = Api::namespaced(env.clients[site].clone(), &env.namespace);
        let service = services.get("cass").await.expect("headless Service cass");
        assert_eq!(
            service.spec.and_then(|s| s.cluster_ip).as_deref(),
            Some("None"),
            "{site}: headless"
        );
        cc_reports(&env, site, "Initializing", &pods_of_site(racks)).await;
    }

    // Scale-up 2 → 3: one new pod per rack, the others untouched.
    env.patch_spec(
        "ring",
        json!({ "base": { "spec": { "nodesPerRacks": 3 } } }),
    )
    .await;
    let scaled = all_settled(&env, 3, "cassandra:3.11.9", &seeds).await;
    for (site, racks) in &scaled {
        for (before, after) in created[site].iter().zip(racks) {
            for (old, new) in before.pods.iter().zip(&after.pods) {
                assert_eq!(old.uid, new.uid, "{site}: {} kept", old.name);
            }
            assert_eq!(
                after.pods.len(),
                before.pods.len() + 1,
                "{site}: one more pod"
            );
        }
        cc_reports(&env, site, "ScaleUp", &pods_of_site(racks)).await;
    }

    // Image change: every pod replaced, on a new revision.
    env.patch_spec(
        "ring",
        json!({ "base": { "spec": { "cassandraImage": "cassandra:3.11.10" } } }),
    )
    .await;
    let rolled = all_settled(&env, 3, "cassandra:3.11.10", &seeds).await;
    for (site, racks) in &rolled {
        for (before, after) in scaled[site].iter().zip(racks) {
            assert_ne!(
                before
                    .sts
                    .status
                    .as_ref()
                    .and_then(|s| s.update_revision.clone()),
                after
                    .sts
                    .status
                    .as_ref()
                    .and_then(|s| s.update_revision.clone()),
                "{site}: new revision"
            );
            for (old, new) in before.pods.iter().zip(&after.pods) {
                assert_ne!(old.uid, new.uid, "{site}: {} replaced", old.name);
                assert_ne!(old.hash, new.hash, "{site}: {} on a new revision", old.name);
            }
        }
        cc_reports(&env, site, "UpdateDockerImage", &pods_of_site(racks)).await;
    }
    wait_mc_ready(&env).await;

    // Pod operations through labels: ToDo → Ongoing → Done (Error without a needed argument).
    pod_operation(
        &env,
        "site-a",
        ("cass-dc1-rack1-1", "dc1-rack1"),
        ("cleanup", None),
        "Done",
    )
    .await;
    pod_operation(
        &env,
        "site-c",
        ("cass-dc3-rack2-0", "dc3-rack2"),
        ("rebuild", Some("dc1")),
        "Done",
    )
    .await;
    pod_operation(
        &env,
        "site-b",
        ("cass-dc2-rack1-2", "dc2-rack1"),
        ("remove", None),
        "Error",
    )
    .await;

    // Deletion (deleteCassandraCluster): the CassandraClusters go, the garbage collector takes
    // their StatefulSets, pods and Service.
    env.mcs()
        .delete("ring", &DeleteParams::default())
        .await
        .expect("delete");
    for (site, _) in RACKS {
        env.wait_cc(site, "deleted", |o| o.is_none()).await;
        let client = env.clients[site].clone();
        let ns = env.namespace.clone();
        multi_casskop_e2e::wait::until(
            format!("{site}: StatefulSets, pods and Service of cass garbage-collected"),
            PODS,
            || async {
                let selector = ListParams::default().labels("cassandracluster=cass");
                let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
                let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
                let services: Api<Service> = Api::namespaced(client.clone(), &ns);
                let sts = sts.list(&selector).await.map_err(|e| e.to_string())?;
                let pods = pods.list(&selector).await.map_err(|e| e.to_string())?;
                let service = services.get_opt("cass").await.map_err(|e| e.to_string())?;
                if sts.items.is_empty() && pods.items.is_empty() && service.is_none() {
                    Ok(())
                } else {
                    Err(format!(
                        "StatefulSets {:?}, pods {:?}, Service {}",
                        names_of(&sts.items),
                        names_of(&pods.items),
                        service.is_some()
                    ))
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

fn names_of<K: ResourceExt>(items: &[K]) -> Vec<String> {
    items.iter().map(ResourceExt::name_any).collect()
}
