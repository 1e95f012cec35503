//! The simulator's second backend: real objects at sites with workloads
//! ([`SimConfig::real_workloads`](super::SimConfig::real_workloads)). The decisions stay in
//! [`plan`](super::plan); this module turns the StatefulSets a plan wants into real ones, the way
//! CassKop builds them (`controllers/cassandracluster/generator.go`, `pkg/k8s/util.go`), and reads
//! back what the StatefulSet controller, the scheduler and kwok made of them:
//!
//! - one StatefulSet per rack, `<cc>-<dc>-<rack>`, `serviceName: <cc>`, owned by the
//!   CassandraCluster (controller reference, so the garbage collector deletes it), labels
//!   `app=cassandracluster`, `cassandracluster=<cc>`, `dc-rack=<dc>-<rack>`,
//!   `cassandraclusters.db.orange.com.dc`, `cassandraclusters.db.orange.com.rack` over the
//!   CassandraCluster's own labels; a `bootstrap` init container whose env `CASSANDRA_SEEDS` holds
//!   the seed list, a `cassandra` container with the image, the rack's and DC's `labels` as
//!   nodeSelector; what it was built from in an annotation (CassKop keeps a last-applied one);
//! - the headless Service `<cc>`;
//! - replicas move by at most one per step, and only once the StatefulSet is settled;
//! - a rack's action is due when its StatefulSet is settled: spec seen by the controller, every
//!   pod on the update revision and Ready (instead of a timer);
//! - `cassandraNodeStatus` lists the rack's Running pods with their real IPs (host IDs made up);
//! - pod operations (`operation-name` ∈ [`OPERATIONS`], `operation-status=ToDo`) go Ongoing, then
//!   Done (Error in the failure mode, or for `rebuild`/`remove` without `operation-argument`),
//!   with `operation-start`/`operation-end`, reported in the rack's `podLastOperation`, and only
//!   while `lastClusterActionStatus` is `Done`, as CassKop's `handlePodOperation` does.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet as KubeStatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde_json::{Map, Value, json};

use super::diff::StatefulSet as Built;
use super::model::{NodeStatus, RackStatus, action_status};
use super::topology::{Rack, node_status};

/// `app` label value of everything CassKop creates.
pub const APP: &str = "cassandracluster";
/// Label keys of CassKop's `LabelsForCassandraDCRack`.
pub mod label {
    /// `app=cassandracluster`.
    pub const APP: &str = "app";
    /// The CassandraCluster's name.
    pub const CLUSTER: &str = "cassandracluster";
    /// `<dc>-<rack>`.
    pub const DC_RACK: &str = "dc-rack";
    /// The DC's name.
    pub const DC: &str = "cassandraclusters.db.orange.com.dc";
    /// The rack's name.
    pub const RACK: &str = "cassandraclusters.db.orange.com.rack";
    /// Pod operation name.
    pub const OPERATION_NAME: &str = "operation-name";
    /// Pod operation status: `ToDo`, `Ongoing`, `Done`, `Error`.
    pub const OPERATION_STATUS: &str = "operation-status";
    /// `YYYYMMDDTHHMMSS` (UTC), when the operation started.
    pub const OPERATION_START: &str = "operation-start";
    /// `YYYYMMDDTHHMMSS` (UTC), when it ended (`""` while it runs).
    pub const OPERATION_END: &str = "operation-end";
    /// `rebuild`'s source DC, `remove`'s node.
    pub const OPERATION_ARGUMENT: &str = "operation-argument";
    /// The StatefulSet controller's revision label.
    pub const REVISION_HASH: &str = "controller-revision-hash";
}

/// Annotation of a real StatefulSet: the JSON of what it was built from ([`Built`]).
pub const BUILT_FROM_ANNOTATION: &str = "e2e.multicasskop.db.orange.com/built-from";
/// Pod template annotation: a hash of the template, resources and ConfigMap it was built from,
/// so that a change of any of them rolls the pods.
pub const TEMPLATE_HASH_ANNOTATION: &str = "e2e.multicasskop.db.orange.com/template-hash";
/// Image of the `cassandra` container when the spec names none.
pub const FALLBACK_IMAGE: &str = "cassandra:latest";
/// Pod operations CassKop honours.
pub const OPERATIONS: [&str; 5] = [
    "cleanup",
    "rebuild",
    "upgradesstables",
    "decommission",
    "remove",
];

/// The CassandraCluster that owns the objects.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// UID (for owner references).
    pub uid: String,
    /// Its labels (CassKop copies them onto StatefulSets and pods).
    pub labels: BTreeMap<String, String>,
}

impl Owner {
    /// CassKop's `AsOwner`: a controller reference without `blockOwnerDeletion`.
    pub fn reference(&self) -> Value {
        json!({
            "apiVersion": super::plan::API_VERSION,
            "kind": super::plan::KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": true,
        })
    }

    /// `LabelsForCassandra`: the selector of every pod of the cluster.
    pub fn selector(&self) -> String {
        format!("{}={APP},{}={}", label::APP, label::CLUSTER, self.name)
    }
}

/// `<cc>-<dc>-<rack>`.
pub fn statefulset_name(cluster: &str, rack: &Rack) -> String {
    format!("{cluster}-{}", rack.key())
}

/// The StatefulSet's selector: CassKop's five labels (not the CassandraCluster's own, which may
/// change while a selector may not).
pub fn selector_labels(cluster: &str, rack: &Rack) -> BTreeMap<String, String> {
    [
        (label::APP, APP.to_string()),
        (label::CLUSTER, cluster.to_string()),
        (label::DC_RACK, rack.key()),
        (label::DC, rack.dc.clone()),
        (label::RACK, rack.rack.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `LabelsForCassandraDCRack`: the CassandraCluster's labels, CassKop's over them.
pub fn pod_labels(owner: &Owner, rack: &Rack) -> BTreeMap<String, String> {
    let mut labels = owner.labels.clone();
    labels.extend(selector_labels(&owner.name, rack));
    labels
}

/// The `cassandra` container's image a [`Built`] renders to.
pub fn rendered_image(built: &Built) -> String {
    built.image.as_str().unwrap_or(FALLBACK_IMAGE).to_string()
}

/// `CASSANDRA_SEEDS` a [`Built`] renders to (`cc.SeedList`: comma-separated).
pub fn rendered_seeds(built: &Built) -> String {
    built.seeds.join(",")
}

fn template_hash(built: &Built) -> String {
    let text = json!([built.template, built.resources, built.config_map]).to_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Node selector: the DC's `labels`, then the rack's (CassKop's
/// `GetDCRackLabelsAndNodeSelectorForStatefulSet`).
fn node_selector(built: &Built) -> Map<String, Value> {
    let mut selector = Map::new();
    for level in ["dc", "rack"] {
        if let Some(labels) = built
            .template
            .get(level)
            .and_then(|l| l.get("labels"))
            .and_then(Value::as_object)
        {
            for (k, v) in labels {
                if let Some(v) = v.as_str() {
                    selector.insert(k.clone(), Value::String(v.to_string()));
                }
            }
        }
    }
    selector
}

/// The StatefulSet CassKop would write for `rack`, built from `built`, at `replicas`.
pub fn render(owner: &Owner, rack: &Rack, built: &Built, replicas: i32) -> KubeStatefulSet {
    let labels = pod_labels(owner, rack);
    let bootstrap = built
        .template
        .get("bootstrapImage")
        .and_then(Value::as_str)
        .unwrap_or(super::diff::defaults::BOOTSTRAP_IMAGE);
    let field = |key: &str| json!({"fieldRef": {"apiVersion": "v1", "fieldPath": format!("metadata.labels['{key}']")}});
    let mut pod_spec = json!({
        "initContainers": [{
            "name": "bootstrap",
            "image": bootstrap,
            "env": [
                {"name": "CASSANDRA_CLUSTER_NAME", "value": owner.name},
                {"name": "CASSANDRA_SEEDS", "value": rendered_seeds(built)},
                {"name": "CASSANDRA_DC", "valueFrom": field(label::DC)},
                {"name": "CASSANDRA_RACK", "valueFrom": field(label::RACK)},
            ],
        }],
        "containers": [{
            "name": "cassandra",
            "image": rendered_image(built),
            "ports": [
                {"name": "intra-node", "containerPort": 7000},
                {"name": "jmx-port", "containerPort": 7199},
                {"name": "cql", "containerPort": 9042},
            ],
        }],
    });
    let selector = node_selector(built);
    if !selector.is_empty() {
        pod_spec["nodeSelector"] = Value::Object(selector);
    }
    if let Some(config_map) = built.config_map.as_str() {
        pod_spec["volumes"] =
            json!([{"name": "cassandra-config", "configMap": {"name": config_map}}]);
    }
    let value = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": statefulset_name(&owner.name, rack),
            "namespace": owner.namespace,
            "labels": labels,
            "annotations": {
                BUILT_FROM_ANNOTATION: serde_json::to_string(built).unwrap_or_default(),
            },
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "serviceName": owner.name,
            "replicas": replicas,
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": selector_labels(&owner.name, rack)},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {TEMPLATE_HASH_ANNOTATION: template_hash(built)},
                },
                "spec": pod_spec,
            },
        },
    });
    serde_json::from_value(value).expect("a StatefulSet built from JSON of its own shape")
}

/// CassKop's headless Service `<cc>`.
pub fn service(owner: &Owner) -> k8s_openapi::api::core::v1::Service {
    let mut labels = owner.labels.clone();
    labels.insert(label::APP.into(), APP.into());
    labels.insert(label::CLUSTER.into(), owner.name.clone());
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": labels,
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": {label::APP: APP, label::CLUSTER: owner.name},
            "ports": [{"name": "cql", "port": 9042}, {"name": "jmx", "port": 7199}],
        },
    }))
    .expect("a Service built from JSON of its own shape")
}

/// What a real StatefulSet was built from, as it really is: the annotation, with the image and
/// `CASSANDRA_SEEDS` read from the template when someone changed them there.
pub fn built_of(sts: &KubeStatefulSet) -> Option<Built> {
    let mut built: Built =
        serde_json::from_str(sts.annotations().get(BUILT_FROM_ANNOTATION)?).ok()?;
    let pod = sts.spec.as_ref()?.template.spec.as_ref()?;
    if let Some(image) = pod
        .containers
        .iter()
        .find(|c| c.name == "cassandra")
        .and_then(|c| c.image.clone())
        && image != rendered_image(&built)
    {
        built.image = Value::String(image);
    }
    if let Some(seeds) = seeds_of(sts)
        && seeds != rendered_seeds(&built)
    {
        built.seeds = seeds
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
    }
    Some(built)
}

/// `CASSANDRA_SEEDS` of the StatefulSet's `bootstrap` init container.
pub fn seeds_of(sts: &KubeStatefulSet) -> Option<String> {
    let pod = sts.spec.as_ref()?.template.spec.as_ref()?;
    pod.init_containers
        .as_ref()?
        .iter()
        .find(|c| c.name == "bootstrap")?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == "CASSANDRA_SEEDS")?
        .value
        .clone()
}

/// Whether the StatefulSet has settled at `replicas`: its spec seen by the controller, every
/// pod on the update revision and Ready.
pub fn settled(sts: &KubeStatefulSet, replicas: i32) -> bool {
    let Some(status) = &sts.status else {
        return false;
    };
    sts.spec.as_ref().and_then(|s| s.replicas) == Some(replicas)
        && status.observed_generation.unwrap_or(0) >= sts.metadata.generation.unwrap_or(0)
        && status.replicas == replicas
        && status.ready_replicas.unwrap_or(0) == replicas
        && status.updated_replicas.unwrap_or(0) == replicas
        && status.current_revision == status.update_revision
}

/// Replicas to write now toward `target`: one more or one less than the current count once the
/// StatefulSet has settled there (a new one starts with one pod).
pub fn next_replicas(current: Option<&KubeStatefulSet>, target: i32) -> i32 {
    let Some(sts) = current else {
        return target.min(1);
    };
    let now = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if now == target || !settled(sts, now) {
        now
    } else {
        now + (target - now).signum()
    }
}

/// Whether `pod` is Running and not being deleted.
pub fn is_running(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// `cassandraNodeStatus` of a rack's pods: each Running pod with an IP, its host ID kept from
/// `previous` (else made up, as a `HostIdMap` would answer), its IP the pod's.
pub fn node_statuses<'a>(
    salt: &str,
    pods: impl IntoIterator<Item = &'a Pod>,
    previous: &BTreeMap<String, NodeStatus>,
) -> BTreeMap<String, NodeStatus> {
    let mut nodes = BTreeMap::new();
    for pod in pods {
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            continue;
        };
        if !is_running(pod) {
            continue;
        }
        let name = pod.name_any();
        let mut node = previous
            .get(&name)
            .cloned()
            .filter(|n| !n.host_id.is_empty())
            .unwrap_or_else(|| node_status(salt, &name));
        node.node_ip = ip;
        nodes.insert(name, node);
    }
    nodes
}

/// CassKop's label time (`k8s.LabelTime`): `YYYYMMDDTHHMMSS` in UTC.
pub fn label_time(at: jiff::Timestamp) -> String {
    at.strftime("%Y%m%dT%H%M%S").to_string()
}

fn parse_label_time(text: &str) -> Option<jiff::Timestamp> {
    jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S", text)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// One rack's pod operations at `now`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodOperations {
    /// Label changes to write, pod by pod, before the status.
    pub labels: Vec<(String, BTreeMap<String, String>)>,
    /// Whether an operation still runs (look again soon).
    pub busy: bool,
}

/// `handlePodOperation` for one rack whose cluster action is `Done`: pods labelled
/// `operation-status=ToDo` with a known `operation-name` go `Ongoing` (one operation name at a
/// time, like `podLastOperation`), `Ongoing` ones that ran `duration` end `Done` (`Error` when
/// `fail`, or for `rebuild`/`remove` without `operation-argument`), and the rack's
/// `podLastOperation` follows: `Ongoing` with `pods`, then `podsOK`/`podsKO`, `Done` once no pod
/// is left.
pub fn pod_operations(
    pods: &[&Pod],
    rack: &mut RackStatus,
    now: jiff::Timestamp,
    duration: Duration,
    fail: bool,
) -> PodOperations {
    let mut out = PodOperations::default();
    let stamp = label_time(now);
    let rfc3339 = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let known = |labels: &BTreeMap<String, String>| {
        labels
            .get(label::OPERATION_NAME)
            .is_some_and(|n| OPERATIONS.contains(&n.as_str()))
    };
    // Labels as they are once this reconcile's writes land.
    let mut labels: BTreeMap<String, BTreeMap<String, String>> = pods
        .iter()
        .map(|p| (p.name_any(), p.labels().clone()))
        .collect();
    let running: BTreeMap<String, bool> =
        pods.iter().map(|p| (p.name_any(), is_running(p))).collect();
    let mut plo = last_operation(rack);
    adopt_ongoing(&mut plo, &labels, &rfc3339);

    // Ongoing operations that ran long enough end.
    for (pod, l) in &mut labels {
        if !known(l)
            || l.get(label::OPERATION_STATUS).map(String::as_str) != Some(action_status::ONGOING)
        {
            continue;
        }
        let started = l
            .get(label::OPERATION_START)
            .and_then(|t| parse_label_time(t));
        let ran = started.map_or(Duration::MAX, |t| {
            Duration::try_from(now.duration_since(t)).unwrap_or(Duration::ZERO)
        });
        if ran < duration {
            out.busy = true;
            continue;
        }
        let name = l.get(label::OPERATION_NAME).cloned().unwrap_or_default();
        let needs_argument = matches!(name.as_str(), "rebuild" | "remove");
        let failed = fail || (needs_argument && !l.contains_key(label::OPERATION_ARGUMENT));
        let status = if failed {
            action_status::ERROR
        } else {
            action_status::DONE
        };
        let change: BTreeMap<String, String> = [
            (label::OPERATION_STATUS.to_string(), status.to_string()),
            (label::OPERATION_END.to_string(), stamp.clone()),
        ]
        .into();
        l.extend(change.clone());
        out.labels.push((pod.clone(), change));
    }

    let ongoing = plo.status == action_status::ONGOING;
    // ToDo pods of one operation start (not while another operation runs).
    let todo: Vec<(String, String)> = labels
        .iter()
        .filter(|(pod, l)| {
            known(l)
                && l.get(label::OPERATION_STATUS).map(String::as_str) == Some(action_status::TODO)
                && running.get(*pod).copied().unwrap_or(false)
        })
        .map(|(pod, l)| (pod.clone(), l[label::OPERATION_NAME].clone()))
        .collect();
    if let Some((_, name)) = todo.first()
        && (!ongoing || plo.name == *name)
    {
        let name = name.clone();
        if !ongoing {
            plo = LastOperation::started(&name, &rfc3339);
        }
        for (pod, _) in todo.iter().filter(|(_, n)| *n == name) {
            let change: BTreeMap<String, String> = [
                (
                    label::OPERATION_STATUS.to_string(),
                    action_status::ONGOING.to_string(),
                ),
                (label::OPERATION_START.to_string(), stamp.clone()),
                (label::OPERATION_END.to_string(), String::new()),
            ]
            .into();
            if let Some(l) = labels.get_mut(pod) {
                l.extend(change.clone());
            }
            out.labels.push((pod.clone(), change));
            out.busy = true;
        }
    } else if !todo.is_empty() {
        out.busy = true;
    }
    adopt_ongoing(&mut plo, &labels, &rfc3339);
    if plo.status == action_status::ONGOING {
        for pod in plo.pods.clone() {
            let status = labels
                .get(&pod)
                .and_then(|l| l.get(label::OPERATION_STATUS))
                .map(String::as_str);
            match status {
                Some(action_status::ONGOING) | Some(action_status::TODO) => continue,
                Some(action_status::DONE) => plo.pods_ok.push(pod.clone()),
                Some(action_status::ERROR) => plo.pods_ko.push(pod.clone()),
                _ => {}
            }
            plo.pods.retain(|p| *p != pod);
        }
        if plo.pods.is_empty() {
            plo.status = action_status::DONE.into();
            plo.end_time = Some(rfc3339);
        } else {
            out.busy = true;
        }
    }
    plo.write_into(rack);
    out
}

/// `podLastOperation` follows the labels, also after a status write that did not land: with
/// pods labelled `Ongoing` it is `Ongoing` (for their operation) and lists them in `pods`.
fn adopt_ongoing(
    plo: &mut LastOperation,
    labels: &BTreeMap<String, BTreeMap<String, String>>,
    now: &str,
) {
    let ongoing = |l: &BTreeMap<String, String>| {
        l.get(label::OPERATION_NAME)
            .is_some_and(|n| OPERATIONS.contains(&n.as_str()))
            && l.get(label::OPERATION_STATUS).map(String::as_str) == Some(action_status::ONGOING)
    };
    if plo.status != action_status::ONGOING
        && let Some(l) = labels.values().find(|l| ongoing(l))
    {
        *plo = LastOperation::started(&l[label::OPERATION_NAME], now);
    }
    if plo.status != action_status::ONGOING {
        return;
    }
    for (pod, l) in labels {
        if ongoing(l) && l.get(label::OPERATION_NAME) == Some(&plo.name) && !plo.pods.contains(pod)
        {
            plo.pods.push(pod.clone());
            plo.pods_ok.retain(|p| p != pod);
            plo.pods_ko.retain(|p| p != pod);
        }
    }
}

/// CassKop's `PodLastOperation`.
#[derive(Debug, Clone, Default, PartialEq)]
struct LastOperation {
    name: String,
    status: String,
    start_time: Option<String>,
    end_time: Option<String>,
    pods: Vec<String>,
    pods_ok: Vec<String>,
    pods_ko: Vec<String>,
    other: Map<String, Value>,
}

impl LastOperation {
    fn started(name: &str, now: &str) -> Self {
        Self {
            name: name.into(),
            status: action_status::ONGOING.into(),
            start_time: Some(now.into()),
            ..Self::default()
        }
    }

    fn write_into(self, rack: &mut RackStatus) {
        if self == last_operation(rack) {
            return;
        }
        let mut map = self.other;
        let mut set = |key: &str, value: Value| {
            map.insert(key.into(), value);
        };
        set("name", self.name.into());
        set("status", self.status.into());
        set(
            "startTime",
            self.start_time.map_or(Value::Null, Value::String),
        );
        set("endTime", self.end_time.map_or(Value::Null, Value::String));
        set("pods", json!(self.pods));
        set("podsOK", json!(self.pods_ok));
        set("podsKO", json!(self.pods_ko));
        map.retain(|_, v| !v.is_null());
        rack.pod_last_operation = Value::Object(map);
    }
}

fn last_operation(rack: &RackStatus) -> LastOperation {
    let mut other = rack
        .pod_last_operation
        .as_object()
        .cloned()
        .unwrap_or_default();
    let text = |other: &mut Map<String, Value>, key: &str| {
        other.remove(key).and_then(|v| v.as_str().map(String::from))
    };
    let list = |other: &mut Map<String, Value>, key: &str| -> Vec<String> {
        other
            .remove(key)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    };
    LastOperation {
        name: text(&mut other, "name").unwrap_or_default(),
        status: text(&mut other, "status").unwrap_or_default(),
        start_time: text(&mut other, "startTime"),
        end_time: text(&mut other, "endTime"),
        pods: list(&mut other, "pods"),
        pods_ok: list(&mut other, "podsOK"),
        pods_ko: list(&mut other, "podsKO"),
        other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rack() -> Rack {
        Rack {
            dc: "dc1".into(),
            rack: "r1".into(),
            nodes: 3,
            rolling_restart: false,
        }
    }

    fn owner() -> Owner {
        Owner {
            name: "cc".into(),
            namespace: "ns".into(),
            uid: "uid-1".into(),
            labels: [("app".to_string(), "demo".to_string())].into(),
        }
    }

    fn built() -> Built {
        Built::desired(
            &json!({"cassandraImage": "cassandra:4.1", "topology": {"dc": [{"name": "dc1",
                "labels": {"topology.kubernetes.io/region": "eu"},
                "rack": [{"name": "r1", "labels": {"topology.kubernetes.io/zone": "zone-1"}}]}]}}),
            &rack(),
            &[
                "cc-dc1-r1-0.cc.ns".to_string(),
                "cc-dc1-r1-1.cc.ns".to_string(),
            ],
        )
    }

    #[test]
    fn renders_casskop_statefulset_and_reads_it_back() {
        let sts = render(&owner(), &rack(), &built(), 1);
        assert_eq!(sts.name_any(), "cc-dc1-r1");
        let spec = sts.spec.clone().unwrap();
        assert_eq!(spec.service_name.as_deref(), Some("cc"));
        assert_eq!(spec.replicas, Some(1));
        let labels = spec.template.metadata.clone().unwrap().labels.unwrap();
        assert_eq!(labels["app"], "cassandracluster", "CassKop's labels win");
        assert_eq!(labels[label::DC_RACK], "dc1-r1");
        assert_eq!(labels[label::DC], "dc1");
        assert_eq!(labels[label::RACK], "r1");
        let pod = spec.template.spec.unwrap();
        assert_eq!(
            pod.node_selector.unwrap(),
            BTreeMap::from([
                (
                    "topology.kubernetes.io/region".to_string(),
                    "eu".to_string()
                ),
                (
                    "topology.kubernetes.io/zone".to_string(),
                    "zone-1".to_string()
                ),
            ])
        );
        assert_eq!(
            seeds_of(&sts).as_deref(),
            Some("cc-dc1-r1-0.cc.ns,cc-dc1-r1-1.cc.ns")
        );
        let owner_ref = &sts.owner_references()[0];
        assert_eq!(
            (
                owner_ref.kind.as_str(),
                owner_ref.uid.as_str(),
                owner_ref.controller
            ),
            ("CassandraCluster", "uid-1", Some(true))
        );
        assert_eq!(built_of(&sts), Some(built()));
    }

    #[test]
    fn seeds_edited_by_hand_show_in_what_was_built() {
        let mut sts = render(&owner(), &rack(), &built(), 1);
        let pod = sts.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
        pod.init_containers.as_mut().unwrap()[0]
            .env
            .as_mut()
            .unwrap()[1]
            .value = Some("x.example".into());
        assert_eq!(built_of(&sts).unwrap().seeds, ["x.example"]);
    }

    #[test]
    fn replicas_move_one_at_a_time_once_settled() {
        assert_eq!(next_replicas(None, 3), 1);
        let mut sts = render(&owner(), &rack(), &built(), 1);
        sts.metadata.generation = Some(1);
        assert_eq!(next_replicas(Some(&sts), 3), 1, "no status yet");
        sts.status = Some(
            serde_json::from_value(json!({"replicas": 1, "readyReplicas": 1,
                "updatedReplicas": 1, "observedGeneration": 1,
                "currentRevision": "a", "updateRevision": "a"}))
            .unwrap(),
        );
        assert!(settled(&sts, 1));
        assert_eq!(next_replicas(Some(&sts), 3), 2);
        assert_eq!(next_replicas(Some(&sts), 0), 0);
        sts.status.as_mut().unwrap().update_revision = Some("b".into());
        assert!(!settled(&sts, 1), "rolling");
        assert_eq!(next_replicas(Some(&sts), 3), 1);
    }

    fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}}))
        .unwrap()
    }

    fn apply(pods: &mut [Pod], ops: &PodOperations) {
        for (name, labels) in &ops.labels {
            let pod = pods.iter_mut().find(|p| p.name_any() == *name).unwrap();
            pod.labels_mut().extend(labels.clone());
        }
    }

    #[test]
    fn pod_operation_goes_todo_ongoing_done_and_is_reported() {
        let mut pods = vec![
            pod(
                "cc-dc1-r1-0",
                &[("operation-name", "cleanup"), ("operation-status", "ToDo")],
            ),
            pod("cc-dc1-r1-1", &[]),
        ];
        let mut rack = RackStatus::default();
        let t0: jiff::Timestamp = "2030-01-02T03:04:05Z".parse().unwrap();
        let ops = pod_operations(
            &pods.iter().collect::<Vec<_>>(),
            &mut rack,
            t0,
            Duration::from_secs(5),
            false,
        );
        assert_eq!(ops.labels.len(), 1);
        assert_eq!(ops.labels[0].1[label::OPERATION_STATUS], "Ongoing");
        assert_eq!(ops.labels[0].1[label::OPERATION_START], "20300102T030405");
        assert!(ops.busy);
        assert_eq!(rack.pod_last_operation["status"], "Ongoing");
        assert_eq!(rack.pod_last_operation["pods"], json!(["cc-dc1-r1-0"]));
        apply(&mut pods, &ops);
        let early = pod_operations(
            &pods.iter().collect::<Vec<_>>(),
            &mut rack,
            t0,
            Duration::from_secs(5),
            false,
        );
        assert!(
            early.labels.is_empty() && early.busy,
            "runs for the duration"
        );
        let t1 = t0 + jiff::SignedDuration::from_secs(5);
        let ops = pod_operations(
            &pods.iter().collect::<Vec<_>>(),
            &mut rack,
            t1,
            Duration::from_secs(5),
            false,
        );
        assert_eq!(ops.labels[0].1[label::OPERATION_STATUS], "Done");
        assert_eq!(ops.labels[0].1[label::OPERATION_END], "20300102T030410");
        assert!(!ops.busy);
        assert_eq!(
            rack.pod_last_operation,
            json!({"name": "cleanup", "status": "Done", "startTime": "2030-01-02T03:04:05Z",
                "endTime": "2030-01-02T03:04:10Z", "pods": [], "podsOK": ["cc-dc1-r1-0"], "podsKO": []})
        );
    }

    #[test]
    fn rebuild_without_argument_and_failure_mode_end_in_error() {
        let pods = [pod(
            "p0",
            &[
                ("operation-name", "rebuild"),
                ("operation-status", "Ongoing"),
            ],
        )];
        let mut rack = RackStatus::default();
        let now = jiff::Timestamp::now();
        let ops = pod_operations(
            &pods.iter().collect::<Vec<_>>(),
            &mut rack,
            now,
            Duration::ZERO,
            false,
        );
        assert_eq!(ops.labels[0].1[label::OPERATION_STATUS], "Error");
        assert_eq!(rack.pod_last_operation["podsKO"], json!(["p0"]));
        let pods = [pod(
            "p0",
            &[
                ("operation-name", "cleanup"),
                ("operation-status", "Ongoing"),
            ],
        )];
        let ops = pod_operations(
            &pods.iter().collect::<Vec<_>>(),
            &mut RackStatus::default(),
            now,
            Duration::ZERO,
            true,
        );
        assert_eq!(ops.labels[0].1[label::OPERATION_STATUS], "Error");
        let pods = [pod(
            "p0",
            &[("operation-name", "compact"), ("operation-status", "ToDo")],
        )];
        let ops = pod_operations(
            &pods.iter().collect::<Vec<_>>(),
            &mut RackStatus::default(),
            now,
            Duration::ZERO,
            false,
        );
        assert!(ops.labels.is_empty(), "unknown operations are left alone");
    }
}
