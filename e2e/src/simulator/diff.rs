//! The spec as CassKop handles it: the defaults it fills in, the shape Go's `encoding/json` gives
//! it on every write, what each rack's StatefulSet is built from, which difference between a
//! StatefulSet and the spec names which action, and the changes CassKop refuses.
//!
//! - [`set_defaults`] is `SetDefaults` (first reconcile only), [`check_defaults`] is
//!   `CheckDefaults` (every reconcile; written with the next main-resource `Update`).
//! - [`go_marshal`] reproduces what CassKop's typed `Update` does to the spec: `omitempty` zero
//!   values dropped (`autoUpdateSeedList: false`, `rollingRestart: false`, ...), struct-typed
//!   fields always present (`resources: {}`, `imagePullSecret: {}`, DC `resources: {}`).
//!   Trace `trace-cc1.jsonl` rv 233 → 234 and, in `two-sites/`, every controller write followed
//!   by CassKop's `SPEC+ANNOTATION` write.
//! - [`refusal`] is `CheckNonAllowedChanges` of `controllers/cassandracluster/reconcile.go`.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::model::action;
use super::topology::{DEFAULT_DC, DEFAULT_RACK, Rack, Topology};

/// CassKop's defaults as the traces show them (cscetbon/casskop 40f5dfa9, rv 244 of `trace-cc1`).
pub mod defaults {
    /// `cassandraImage`.
    pub const CASSANDRA_IMAGE: &str = "cassandra:3.11.10";
    /// `imagepullpolicy`.
    pub const IMAGE_PULL_POLICY: &str = "Always";
    /// `bootstrapImage`.
    pub const BOOTSTRAP_IMAGE: &str = "ghcr.io/cscetbon/casskop-bootstrap:0.1.21";
    /// `configBuilderImage`.
    pub const CONFIG_BUILDER_IMAGE: &str = "datastax/cass-config-builder:1.0.4";
    /// `serviceAccountName`.
    pub const SERVICE_ACCOUNT_NAME: &str = "cassandra-cluster-node";
    /// `backRestSidecar.image`.
    pub const BACKREST_IMAGE: &str = "ghcr.io/cscetbon/instaclustr-icarus:1.1.3";
}

/// Spec fields that are Go pointers (or raw JSON): a zero value is kept, not dropped.
const KEEP_ZERO: &[&str] = &[
    "readOnlyRootFilesystem",
    "livenessInitialDelaySeconds",
    "livenessHealthCheckTimeout",
    "livenessHealthCheckPeriod",
    "livenessFailureThreshold",
    "livenessSuccessThreshold",
    "readinessInitialDelaySeconds",
    "readinessHealthCheckTimeout",
    "readinessHealthCheckPeriod",
    "readinessFailureThreshold",
    "readinessSuccessThreshold",
    "shareProcessNamespace",
    "config",
];

/// Spec fields that are Go structs (not pointers): always written, `{}` when empty.
const ALWAYS_OBJECTS: &[&str] = &[
    "resources",
    "imagePullSecret",
    "imageJolokiaSecret",
    "topology",
];

/// `SetDefaults`: `nodesPerRacks` and `maxPodUnavailable` 0 → 1, resource limits from the
/// requests, and the `dc1`/`rack1` topology when none is declared (`initTopology`).
pub fn set_defaults(spec: &mut Value) {
    let Some(obj) = spec.as_object_mut() else {
        return;
    };
    for key in ["nodesPerRacks", "maxPodUnavailable"] {
        if obj.get(key).and_then(Value::as_i64).unwrap_or(0) == 0 {
            obj.insert(key.into(), json!(1));
        }
    }
    if let Some(resources) = obj.get_mut("resources").and_then(Value::as_object_mut)
        && resources.get("limits").is_none_or(Value::is_null)
        && let Some(requests) = resources.get("requests").cloned()
    {
        resources.insert("limits".into(), requests);
    }
    let no_dc = obj
        .get("topology")
        .and_then(|t| t.get("dc"))
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_dc {
        obj.insert(
            "topology".into(),
            json!({"dc": [{"name": DEFAULT_DC, "rack": [{"name": DEFAULT_RACK}]}]}),
        );
    }
}

/// `CheckDefaults`: images, pull policy, service account, probes, read-only root filesystem and
/// the backup sidecar, when missing.
pub fn check_defaults(spec: &mut Value) {
    let Some(obj) = spec.as_object_mut() else {
        return;
    };
    let mut default = |key: &str, value: Value| {
        let missing = match obj.get(key) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if missing {
            obj.insert(key.into(), value);
        }
    };
    default("cassandraImage", json!(defaults::CASSANDRA_IMAGE));
    default("imagepullpolicy", json!(defaults::IMAGE_PULL_POLICY));
    default("bootstrapImage", json!(defaults::BOOTSTRAP_IMAGE));
    default("configBuilderImage", json!(defaults::CONFIG_BUILDER_IMAGE));
    default("serviceAccountName", json!(defaults::SERVICE_ACCOUNT_NAME));
    default("readOnlyRootFilesystem", json!(true));
    default("livenessInitialDelaySeconds", json!(120));
    default("livenessHealthCheckTimeout", json!(20));
    default("livenessHealthCheckPeriod", json!(10));
    default("readinessInitialDelaySeconds", json!(60));
    default("readinessHealthCheckTimeout", json!(10));
    default("readinessHealthCheckPeriod", json!(10));
    match obj.get_mut("backRestSidecar") {
        Some(Value::Object(sidecar)) => {
            if sidecar
                .get("image")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                sidecar.insert("image".into(), json!(defaults::BACKREST_IMAGE));
            }
        }
        _ => {
            obj.insert(
                "backRestSidecar".into(),
                json!({"enabled": true, "image": defaults::BACKREST_IMAGE}),
            );
        }
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(_) => false,
    }
}

fn drop_zero(obj: &mut Map<String, Value>, keep: &[&str]) {
    obj.retain(|k, v| keep.contains(&k.as_str()) || !is_zero(v));
    obj.retain(|k, v| {
        keep.contains(&k.as_str())
            || !matches!((k.as_str(), v), ("labels", Value::Object(m)) if m.is_empty())
    });
}

fn marshal_resources(value: &mut Value) {
    if let Some(obj) = value.as_object_mut() {
        obj.retain(|_, v| !is_zero(v) && !matches!(v, Value::Object(m) if m.is_empty()));
    } else {
        *value = json!({});
    }
}

/// The spec as CassKop's Go client sends it (see the module docs).
pub fn go_marshal(spec: &mut Value) {
    let Some(obj) = spec.as_object_mut() else {
        return;
    };
    drop_zero(obj, KEEP_ZERO);
    for key in ALWAYS_OBJECTS {
        let value = obj.entry(key.to_string()).or_insert_with(|| json!({}));
        if !value.is_object() {
            *value = json!({});
        }
    }
    for key in ["imagePullSecret", "imageJolokiaSecret"] {
        if let Some(reference) = obj.get_mut(key).and_then(Value::as_object_mut) {
            reference.retain(|_, v| !is_zero(v));
        }
    }
    if let Some(resources) = obj.get_mut("resources") {
        marshal_resources(resources);
    }
    let Some(topology) = obj.get_mut("topology").and_then(Value::as_object_mut) else {
        return;
    };
    topology.retain(|_, v| !is_zero(v));
    for dc in topology
        .get_mut("dc")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(dc) = dc.as_object_mut() else {
            continue;
        };
        drop_zero(dc, &["nodesPerRacks", "config"]);
        marshal_resources(dc.entry("resources").or_insert_with(|| json!({})));
        for rack in dc
            .get_mut("rack")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            drop_zero(rack, &["config"]);
        }
    }
}

/// Resets `unlockNextOperation` (CassKop sets it to false, which Go then omits); returns whether
/// it was set.
pub fn reset_unlock(spec: &mut Value) -> bool {
    spec.as_object_mut()
        .and_then(|o| o.remove("unlockNextOperation"))
        .is_some_and(|v| v == Value::Bool(true))
}

/// Resets `rollingRestart` of the rack at `dc`/`rack` (names).
pub fn reset_rolling_restart(spec: &mut Value, dc: &str, rack: &str) {
    let dcs = spec
        .get_mut("topology")
        .and_then(|t| t.get_mut("dc"))
        .and_then(Value::as_array_mut);
    for d in dcs.into_iter().flatten() {
        if d.get("name").and_then(Value::as_str) != Some(dc) {
            continue;
        }
        let racks = d.get_mut("rack").and_then(Value::as_array_mut);
        for r in racks.into_iter().flatten().filter_map(Value::as_object_mut) {
            if r.get("name").and_then(Value::as_str) == Some(rack) {
                r.remove("rollingRestart");
            }
        }
    }
}

/// Spec fields that do not shape the StatefulSets (PDB, operator flags, refused fields).
const NOT_IN_STATEFULSET: &[&str] = &[
    "topology",
    "nodesPerRacks",
    "cassandraImage",
    "configMapName",
    "resources",
    "unlockNextOperation",
    "autoUpdateSeedList",
    "autoPilot",
    "maxPodUnavailable",
    "deletePVC",
    "noCheckStsAreEqual",
    "restartCountBeforePodDeletion",
    "keyspaceCleanupThreads",
    "dataCapacity",
    "dataStorageClass",
];

/// What one rack's StatefulSet was built from: the simulator keeps this in memory, or, with real
/// workloads, in an annotation of the real StatefulSet (as CassKop keeps its last-applied one).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatefulSet {
    /// Replicas.
    pub replicas: u32,
    /// The `cassandra` container's image.
    pub image: Value,
    /// The `cassandra-config` volume's ConfigMap.
    pub config_map: Value,
    /// `CASSANDRA_SEEDS` of the `bootstrap` init container.
    pub seeds: Vec<String>,
    /// Spec- and DC-level resources.
    pub resources: Value,
    /// Everything else in the pod template.
    pub template: Value,
}

impl StatefulSet {
    /// The StatefulSet CassKop would build for `rack` from `spec` (defaults applied) and `seeds`.
    pub fn desired(spec: &Value, rack: &Rack, seeds: &[String]) -> Self {
        let dc = dcs(spec)
            .iter()
            .find(|d| d.get("name").and_then(Value::as_str) == Some(&rack.dc));
        let rack_spec = dc
            .and_then(|d| d.get("rack"))
            .and_then(Value::as_array)
            .and_then(|racks| {
                racks
                    .iter()
                    .find(|r| r.get("name").and_then(Value::as_str) == Some(&rack.rack))
            });
        let mut template = spec.as_object().cloned().unwrap_or_default();
        template.retain(|k, _| !NOT_IN_STATEFULSET.contains(&k.as_str()));
        // The Orange CRD prunes `enabled` (a newer field); it only ever is the default `true`.
        if let Some(sidecar) = template
            .get_mut("backRestSidecar")
            .and_then(Value::as_object_mut)
        {
            sidecar.remove("enabled");
        }
        let pick = |v: Option<&Value>, key: &str| v.and_then(|v| v.get(key)).cloned();
        template.insert(
            "dc".into(),
            json!({"config": pick(dc, "config"), "labels": pick(dc, "labels")}),
        );
        template.insert(
            "rack".into(),
            json!({"config": pick(rack_spec, "config"), "labels": pick(rack_spec, "labels")}),
        );
        let empty = |v: Option<Value>| v.filter(|v| !is_zero(v) && v != &json!({}));
        Self {
            replicas: rack.nodes,
            image: spec.get("cassandraImage").cloned().unwrap_or(Value::Null),
            config_map: spec.get("configMapName").cloned().unwrap_or(Value::Null),
            seeds: seeds.to_vec(),
            resources: json!({
                "spec": empty(spec.get("resources").cloned()),
                "dc": empty(pick(dc, "resources")),
            }),
            template: Value::Object(template),
        }
    }
}

/// A difference between a StatefulSet and the spec, in the order CassKop's
/// `getNextCassandraClusterStatus` looks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `configMapName` → `UpdateConfigMap`.
    ConfigMap,
    /// `cassandraImage` → `UpdateDockerImage`.
    Image,
    /// More replicas → `ScaleUp`.
    ScaleUp,
    /// Fewer replicas → `ScaleDown`.
    ScaleDown,
    /// `status.seedlist` → `UpdateSeedList`.
    SeedList,
    /// `rollingRestart: true` → `RollingRestart`.
    RollingRestart,
    /// Resources → `UpdateResources`.
    Resources,
    /// Anything else (`config`, probes, other images, ...) → `UpdateStatefulSet`, which CassKop
    /// only sees once the StatefulSet has been updated (its revisions differ).
    Other,
}

impl Change {
    /// The action name.
    pub fn action(self) -> &'static str {
        match self {
            Change::ConfigMap => action::UPDATE_CONFIG_MAP,
            Change::Image => action::UPDATE_DOCKER_IMAGE,
            Change::ScaleUp => action::SCALE_UP,
            Change::ScaleDown => action::SCALE_DOWN,
            Change::SeedList => action::UPDATE_SEED_LIST,
            Change::RollingRestart => action::ROLLING_RESTART,
            Change::Resources => action::UPDATE_RESOURCES,
            Change::Other => action::UPDATE_STATEFUL_SET,
        }
    }
}

/// The first difference between `current` and `desired` (and the rack's restart flag).
pub fn classify(
    current: &StatefulSet,
    desired: &StatefulSet,
    rolling_restart: bool,
) -> Option<Change> {
    if current.config_map != desired.config_map {
        Some(Change::ConfigMap)
    } else if current.image != desired.image {
        Some(Change::Image)
    } else if current.replicas < desired.replicas {
        Some(Change::ScaleUp)
    } else if current.replicas > desired.replicas {
        Some(Change::ScaleDown)
    } else if current.seeds != desired.seeds {
        Some(Change::SeedList)
    } else if rolling_restart {
        Some(Change::RollingRestart)
    } else if current.resources != desired.resources {
        Some(Change::Resources)
    } else if current.template != desired.template {
        Some(Change::Other)
    } else {
        None
    }
}

fn dcs(spec: &Value) -> &[Value] {
    spec.get("topology")
        .and_then(|t| t.get("dc"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn dc_names(spec: &Value) -> Vec<String> {
    dcs(spec)
        .iter()
        .filter_map(|d| d.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn rack_names(spec: &Value, dc: &str) -> Vec<String> {
    dcs(spec)
        .iter()
        .find(|d| d.get("name").and_then(Value::as_str) == Some(dc))
        .and_then(|d| d.get("rack"))
        .and_then(Value::as_array)
        .map(|racks| {
            racks
                .iter()
                .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn str_at<'a>(v: Option<&'a Value>, key: &str) -> &'a str {
    v.and_then(|v| v.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `GetDataCapacityForDC` / `GetDataStorageClassForDC`: the DC's value, else the spec's (Go
/// picks the DC's storage class only when the DC sets a capacity; copied as is).
fn per_dc(spec: &Value, dc: &str, key: &str) -> String {
    let d = dcs(spec)
        .iter()
        .find(|d| d.get("name").and_then(Value::as_str) == Some(dc));
    if !str_at(d, "dataCapacity").is_empty() {
        return str_at(d, key).to_string();
    }
    str_at(Some(spec), key).to_string()
}

/// Nodes per rack of DC `name` (`getDCNodesPerRacksFromIndex`).
fn dc_nodes(spec: &Value, name: &str) -> i64 {
    let spec_nodes = spec
        .get("nodesPerRacks")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    dcs(spec)
        .iter()
        .find(|d| d.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|d| d.get("nodesPerRacks"))
        .and_then(Value::as_i64)
        .unwrap_or(spec_nodes)
}

/// What `CheckNonAllowedChanges` decided about a spec that differs from the last-applied one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Refused: the spec was corrected (previous values back); `lastClusterAction:
    /// CorrectCRDConfig`, `lastClusterActionStatus` untouched. The string says why (CassKop's log).
    Corrected(String),
    /// Accepted removal of an empty DC: `lastClusterAction: ActionDeleteDC`, its racks leave
    /// the status and their StatefulSets are deleted.
    DeleteDc(String),
}

/// Facts `CheckNonAllowedChanges` asks Kubernetes and Jolokia about.
#[derive(Clone, Copy)]
pub struct RefusalFacts<'a> {
    /// Status: cluster action and its status (a DC may only go once `ScaleDown` is `Done`).
    pub last_action: (&'a str, &'a str),
    /// Whether Jolokia answers (`NonLocalKeyspacesInDC`).
    pub jolokia_down: bool,
    /// DCs some keyspace still replicates to (Jolokia's answer).
    pub keyspaces: &'a BTreeSet<String>,
    /// Whether pods exist in the first rack of `dc` (its StatefulSet has replicas).
    pub has_pods: &'a dyn Fn(&str) -> bool,
}

/// CassKop's `CheckNonAllowedChanges` between `old` (the last-applied spec) and `spec`; corrects
/// `spec` in place when it refuses. `None`: the change is allowed.
pub fn refusal(spec: &mut Value, old: &Value, facts: RefusalFacts<'_>) -> Option<Refusal> {
    let mut reasons = Vec::new();
    // Global scaleDown to 0 is forbidden.
    if spec
        .get("nodesPerRacks")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        == 0
    {
        spec["nodesPerRacks"] = old.get("nodesPerRacks").cloned().unwrap_or(json!(1));
        reasons.push("NodesPerRack=0".to_string());
    }
    // DataCapacity and DataStorageClass changes are forbidden.
    for dc in dc_names(spec) {
        for key in ["dataCapacity", "dataStorageClass"] {
            if per_dc(spec, &dc, key) == per_dc(old, &dc, key) {
                continue;
            }
            restore(spec, old, key);
            let old_dc = dcs(old)
                .iter()
                .find(|d| d.get("name").and_then(Value::as_str) == Some(&dc))
                .and_then(|d| d.get(key))
                .cloned();
            if let Some(d) = spec
                .get_mut("topology")
                .and_then(|t| t.get_mut("dc"))
                .and_then(Value::as_array_mut)
                .and_then(|dcs| {
                    dcs.iter_mut()
                        .find(|d| d.get("name").and_then(Value::as_str) == Some(&dc))
                })
                .and_then(Value::as_object_mut)
            {
                match old_dc {
                    Some(v) => d.insert(key.into(), v),
                    None => d.remove(key),
                };
            }
            reasons.push(format!("{key} of {dc}"));
        }
    }
    if !reasons.is_empty() {
        return Some(Refusal::Corrected(reasons.join(", ")));
    }

    // CheckTopologyChanges
    let (old_dcs, new_dcs) = (dc_names(old), dc_names(spec));
    let removed: Vec<&String> = old_dcs.iter().filter(|d| !new_dcs.contains(d)).collect();
    let added = new_dcs.iter().any(|d| !old_dcs.contains(d));
    let racks_changed = new_dcs
        .iter()
        .filter(|d| old_dcs.contains(d))
        .any(|d| rack_names(old, d) != rack_names(spec, d));
    let refuse_topology = |spec: &mut Value, why: &str| {
        spec["topology"] = old.get("topology").cloned().unwrap_or(json!({}));
        Some(Refusal::Corrected(why.to_string()))
    };
    if racks_changed || (added && !removed.is_empty()) {
        return refuse_topology(spec, "No change other than adding/removing a DC can happen");
    }
    if removed.len() > 1 {
        return refuse_topology(spec, "You can only remove 1 DC at a time");
    }
    if let Some(dc) = removed.first() {
        if facts.last_action.0 == action::SCALE_DOWN
            && facts.last_action.1 != super::model::action_status::DONE
        {
            return refuse_topology(
                spec,
                "You must wait to the end of ScaleDown to 0 before deleting a DC",
            );
        }
        if dc_nodes(old, dc) > 0 {
            return refuse_topology(
                spec,
                &format!("You must scale down the DC {dc} to 0 before deleting it"),
            );
        }
        return Some(Refusal::DeleteDc((*dc).clone()));
    }

    // CheckNonAllowedScaleDown: scaling a DC to 0 while keyspaces still replicate there.
    if let Some(dc) = new_dcs.iter().find(|d| dc_nodes(spec, d) == 0)
        && (facts.has_pods)(dc)
    {
        if facts.jolokia_down {
            return refuse_topology(spec, "ScaleDown refused (NonLocalKeyspacesInDC failed)");
        }
        if facts.keyspaces.contains(dc) {
            return refuse_topology(
                spec,
                &format!("ScaleDown refused: keyspaces still have data in {dc}"),
            );
        }
    }
    None
}

fn restore(spec: &mut Value, old: &Value, key: &str) {
    let Some(obj) = spec.as_object_mut() else {
        return;
    };
    match old.get(key) {
        Some(v) => obj.insert(key.into(), v.clone()),
        None => obj.remove(key),
    };
}

/// The rack keys of `topology` that belong to DC `dc`.
pub fn racks_of(topology: &Topology, dc: &str) -> Vec<String> {
    topology
        .racks
        .iter()
        .filter(|r| r.dc == dc)
        .map(Rack::key)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `trace-cc1.jsonl` rv 233 (kubectl's create) and rv 234 (CassKop's first write).
    #[test]
    fn create_defaults_match_the_trace() {
        let mut spec = json!({"autoUpdateSeedList": false, "cassandraImage": "cassandra:4.1.5",
            "fsGroup": 1, "nodesPerRacks": 1,
            "resources": {"limits": {"cpu": "100m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}},
            "runAsUser": 999, "serverType": "cassandra",
            "topology": {"dc": [{"name": "dc1", "rack": [{"name": "rack1"}]}]}});
        set_defaults(&mut spec);
        go_marshal(&mut spec);
        assert_eq!(
            spec,
            json!({"cassandraImage": "cassandra:4.1.5", "fsGroup": 1, "imageJolokiaSecret": {},
                "imagePullSecret": {}, "maxPodUnavailable": 1, "nodesPerRacks": 1,
                "resources": {"limits": {"cpu": "100m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}},
                "runAsUser": 999, "serverType": "cassandra",
                "topology": {"dc": [{"name": "dc1", "rack": [{"name": "rack1"}], "resources": {}}]}})
        );
        // rv 244: CheckDefaults, written with the annotation.
        check_defaults(&mut spec);
        for (key, value) in [
            ("bootstrapImage", json!(defaults::BOOTSTRAP_IMAGE)),
            ("imagepullpolicy", json!("Always")),
            ("serviceAccountName", json!("cassandra-cluster-node")),
            ("livenessInitialDelaySeconds", json!(120)),
            ("readinessHealthCheckTimeout", json!(10)),
            ("readOnlyRootFilesystem", json!(true)),
            (
                "backRestSidecar",
                json!({"enabled": true, "image": defaults::BACKREST_IMAGE}),
            ),
        ] {
            assert_eq!(spec[key], value, "{key}");
        }
    }

    #[test]
    fn marshal_keeps_pointers_and_stored_defaults_compare_equal() {
        let mut spec = json!({"readOnlyRootFilesystem": false, "hardAntiAffinity": false,
            "imagePullSecret": {"name": ""}, "topology": {"dc": [{"name": "dc1", "nodesPerRacks": 0,
            "rack": [{"name": "r1", "rollingRestart": false}]}]}});
        go_marshal(&mut spec);
        assert_eq!(spec["readOnlyRootFilesystem"], json!(false));
        assert!(spec.get("hardAntiAffinity").is_none());
        assert_eq!(spec["imagePullSecret"], json!({}));
        assert_eq!(spec["topology"]["dc"][0]["nodesPerRacks"], json!(0));
        assert_eq!(spec["topology"]["dc"][0]["rack"][0], json!({"name": "r1"}));
    }

    fn rack(dc: &str, name: &str, nodes: u32) -> Rack {
        Rack {
            dc: dc.into(),
            rack: name.into(),
            nodes,
            rolling_restart: false,
        }
    }

    #[test]
    fn classifies_in_casskop_order() {
        let spec = json!({"cassandraImage": "c:1", "configMapName": "cm", "config": {"a": 1},
            "resources": {"requests": {"cpu": "1"}}});
        let base = StatefulSet::desired(&spec, &rack("dc1", "r1", 2), &["s".into()]);
        let with = |edit: &dyn Fn(&mut Value), nodes: u32, seeds: &[&str]| {
            let mut s = spec.clone();
            edit(&mut s);
            let seeds: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
            classify(
                &base,
                &StatefulSet::desired(&s, &rack("dc1", "r1", nodes), &seeds),
                false,
            )
        };
        assert_eq!(with(&|_| {}, 2, &["s"]), None);
        assert_eq!(
            with(&|s| s["configMapName"] = json!("x"), 2, &["s"]),
            Some(Change::ConfigMap)
        );
        assert_eq!(
            with(&|s| s["cassandraImage"] = json!("c:2"), 3, &["s"]),
            Some(Change::Image)
        );
        assert_eq!(with(&|_| {}, 3, &["s"]), Some(Change::ScaleUp));
        assert_eq!(with(&|_| {}, 1, &["s"]), Some(Change::ScaleDown));
        assert_eq!(with(&|_| {}, 2, &["t"]), Some(Change::SeedList));
        assert_eq!(
            with(
                &|s| s["resources"] = json!({"requests": {"cpu": "2"}}),
                2,
                &["s"]
            ),
            Some(Change::Resources)
        );
        assert_eq!(
            with(&|s| s["config"] = json!({"a": 2}), 2, &["s"]),
            Some(Change::Other)
        );
        assert_eq!(
            with(&|s| s["maxPodUnavailable"] = json!(2), 2, &["s"]),
            None,
            "PDB only"
        );
        assert_eq!(Change::Other.action(), "UpdateStatefulSet");
    }

    fn facts<'a>(
        keyspaces: &'a BTreeSet<String>,
        pods: &'a dyn Fn(&str) -> bool,
    ) -> RefusalFacts<'a> {
        RefusalFacts {
            last_action: ("Initializing", "Done"),
            jolokia_down: false,
            keyspaces,
            has_pods: pods,
        }
    }

    fn two_dcs() -> Value {
        json!({"nodesPerRacks": 1, "dataCapacity": "1Gi", "topology": {"dc": [
            {"name": "dc1", "rack": [{"name": "r1"}]}, {"name": "dc2", "rack": [{"name": "r1"}]}]}})
    }

    #[test]
    fn refuses_like_check_non_allowed_changes() {
        let none = BTreeSet::new();
        let pods = |_: &str| true;
        let refused = |edit: &dyn Fn(&mut Value), ks: &BTreeSet<String>| {
            let mut spec = two_dcs();
            edit(&mut spec);
            let r = refusal(&mut spec, &two_dcs(), facts(ks, &pods));
            (r, spec)
        };
        // capacity change: restored
        let (r, spec) = refused(&|s| s["dataCapacity"] = json!("2Gi"), &none);
        assert!(matches!(r, Some(Refusal::Corrected(_))), "{r:?}");
        assert_eq!(spec, two_dcs());
        // an image change is allowed
        assert_eq!(
            refused(&|s| s["cassandraImage"] = json!("x"), &none).0,
            None
        );
        // removing a DC that still has nodes: topology restored
        let (r, spec) = refused(
            &|s| {
                s["topology"]["dc"].as_array_mut().unwrap().pop();
            },
            &none,
        );
        assert!(matches!(r, Some(Refusal::Corrected(_))), "{r:?}");
        assert_eq!(spec, two_dcs());
        // adding a rack to a DC: refused
        let (r, _) = refused(
            &|s| {
                s["topology"]["dc"][0]["rack"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "r2"}))
            },
            &none,
        );
        assert!(matches!(r, Some(Refusal::Corrected(_))));
        // adding a DC: allowed
        let (r, _) = refused(
            &|s| {
                s["topology"]["dc"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "dc3"}))
            },
            &none,
        );
        assert_eq!(r, None);
        // scale dc2 to 0: allowed unless keyspaces replicate to it
        let to_zero = |s: &mut Value| s["topology"]["dc"][1]["nodesPerRacks"] = json!(0);
        assert_eq!(refused(&to_zero, &none).0, None);
        let ks = BTreeSet::from(["dc2".to_string()]);
        let (r, spec) = refused(&to_zero, &ks);
        assert!(matches!(r, Some(Refusal::Corrected(_))));
        assert_eq!(spec, two_dcs());
        // global 0
        let (r, spec) = refused(&|s| s["nodesPerRacks"] = json!(0), &none);
        assert!(matches!(r, Some(Refusal::Corrected(_))));
        assert_eq!(spec["nodesPerRacks"], json!(1));
    }

    #[test]
    fn an_empty_dc_can_be_removed() {
        let mut old = two_dcs();
        old["topology"]["dc"][1]["nodesPerRacks"] = json!(0);
        let mut spec = old.clone();
        spec["topology"]["dc"].as_array_mut().unwrap().pop();
        let none = BTreeSet::new();
        let pods = |_: &str| false;
        assert_eq!(
            refusal(&mut spec, &old, facts(&none, &pods)),
            Some(Refusal::DeleteDc("dc2".into()))
        );
    }
}
