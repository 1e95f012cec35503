//! The simulator's decisions, free of I/O: one CassKop reconcile of a `CassandraCluster` as read,
//! giving the spec, last-applied annotation and status CassKop would write, and its simulated
//! StatefulSets afterwards. It follows `Reconcile` of cscetbon/casskop
//! (`controllers/cassandracluster/`) and the recorded traces:
//!
//! 1. no `status.phase` → `SetDefaults`: spec defaults (written alone, no annotation), then
//!    status `Initializing`, racks `Initializing`/`Ongoing` without start time, sub-phase
//!    `FirstPodPerRack`, no cluster-level action, `seedlist` = CassKop's own list only if none;
//! 2. otherwise `CheckDefaults`, then `CheckNonAllowedChanges` when the annotation differs from
//!    the one CassKop would compute: a refused change writes the previous values back with
//!    `lastClusterAction: CorrectCRDConfig`; removing an empty DC is `ActionDeleteDC`;
//! 3. `ReconcileRack`, rack by rack in topology order: an `Ongoing` action whose time has come
//!    ends (`Done`; `Error` in error mode; stuck mode holds it); an `Initializing` rack first
//!    goes to sub-phase `NextPodPerRack`, then `Running`, `Initializing`/`Done`; a rack without
//!    a pending action compares its StatefulSet with the spec (`UpdateConfigMap`,
//!    `UpdateDockerImage`, `ScaleUp`/`ScaleDown`, `UpdateSeedList`, `RollingRestart`,
//!    `UpdateResources`: `ToDo`), then the StatefulSet is updated and the action goes `Ongoing`
//!    (any other difference: `UpdateStatefulSet`/`Ongoing`). With Jolokia down the StatefulSet
//!    is not touched: the action stays `ToDo` (and a change only `UpdateStatefulSet` would name
//!    shows nothing). The loop stops at the first rack that is busy, so racks roll one by one;
//! 4. `UpdateCassandraClusterStatusPhase`: the cluster action is the last rack's that is not
//!    `Done`; the phase is the first non-`Running` rack's, else `Running`;
//! 5. `updateCassandraStatus`: a main-resource write (spec and annotation) when either changed,
//!    then a status write when the status changed.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::Mode;
use super::diff::{
    Change, Refusal, RefusalFacts, StatefulSet, check_defaults, classify, go_marshal, racks_of,
    refusal, reset_rolling_restart, reset_unlock, set_defaults,
};
use super::lastapplied;
use super::model::{
    ClusterStatus, FIRST_POD_PER_RACK, INITIALIZING_SUB_PHASE, LAST_APPLIED_ANNOTATION, LastAction,
    NEXT_POD_PER_RACK, RackStatus, action, action_status, phase,
};
use super::topology::{Rack, SpecError, Topology, node_status};

/// Kind written into the last-applied annotation.
pub const KIND: &str = "CassandraCluster";
/// apiVersion written into the last-applied annotation.
pub const API_VERSION: &str = "db.orange.com/v2";

/// The simulated StatefulSets of one object, per rack key (`<dc>-<rack>`).
pub type StatefulSets = BTreeMap<String, StatefulSet>;

/// The object as read.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// `metadata` (name, namespace, uid, generation, managedFields, annotations, ...).
    pub meta: &'a ObjectMeta,
    /// `spec`.
    pub spec: &'a Value,
    /// `status`.
    pub status: ClusterStatus,
}

impl Observed<'_> {
    fn name(&self) -> &str {
        self.meta.name.as_deref().unwrap_or_default()
    }

    fn namespace(&self) -> &str {
        self.meta.namespace.as_deref().unwrap_or_default()
    }

    fn annotation(&self) -> Option<&String> {
        self.meta.annotations.as_ref()?.get(LAST_APPLIED_ANNOTATION)
    }
}

/// The simulator's settings at the time of the decision.
#[derive(Debug, Clone)]
pub struct Knobs<'a> {
    /// Normal, stuck or error.
    pub mode: Mode,
    /// Jolokia does not answer: StatefulSets are not updated, actions stay `ToDo`.
    pub jolokia_down: bool,
    /// DCs keyspaces replicate to (scaling them to 0 is refused).
    pub keyspaces: &'a BTreeSet<String>,
    /// Whether Jolokia's `HostIdMap` lists the pods (`cassandraNodeStatus` filled).
    pub host_ids: bool,
    /// Racks whose `Ongoing` action (or initialisation) has lasted the action duration.
    pub due: &'a BTreeSet<String>,
    /// Current time, RFC 3339.
    pub now: String,
}

/// What one reconcile does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// New spec for the main-resource write, if it changes.
    pub spec: Option<Value>,
    /// New last-applied annotation; set whenever there is a main-resource write.
    pub last_applied: Option<String>,
    /// New status, if it changes.
    pub status: Option<ClusterStatus>,
    /// The StatefulSets after this reconcile.
    pub statefulsets: StatefulSets,
    /// Racks whose action (or initialisation) went `Ongoing` now.
    pub started: Vec<String>,
    /// Whether an existing StatefulSet was updated (CassKop's first write comes ~1.1 s later).
    pub statefulset_updated: bool,
    /// What happened, for the logs.
    pub what: Vec<String>,
}

impl Plan {
    /// Whether anything is written.
    pub fn writes(&self) -> bool {
        self.last_applied.is_some() || self.spec.is_some() || self.status.is_some()
    }
}

/// One reconcile of `observed`; `statefulsets` is what the simulator knows of its StatefulSets
/// (`None` after a restart: assumed built from the last-applied spec).
pub fn decide(
    observed: &Observed<'_>,
    statefulsets: Option<&StatefulSets>,
    knobs: &Knobs<'_>,
) -> Result<Plan, SpecError> {
    if observed.status.phase.is_empty() {
        return create(observed);
    }
    let mut spec = observed.spec.clone();
    check_defaults(&mut spec);
    go_marshal(&mut spec);
    let mut what = Vec::new();
    if reset_unlock(&mut spec) {
        what.push("unlockNextOperation reset".to_string());
    }
    let mut status = observed.status.clone();
    let topology = Topology::from_spec(&spec)?;
    let mut sts = statefulsets
        .cloned()
        .unwrap_or_else(|| assumed(observed, &spec));

    // CheckNonAllowedChanges
    if let Some(stored) = observed.annotation()
        && *stored != last_applied(observed, &spec)
        && let Some(old) = lastapplied::spec_of(stored)
    {
        let has_pods = |dc: &str| {
            racks_of(&topology, dc)
                .first()
                .and_then(|k| sts.get(k))
                .is_some_and(|s| s.replicas > 0)
        };
        let facts = RefusalFacts {
            last_action: (
                &observed.status.last_cluster_action,
                &observed.status.last_cluster_action_status,
            ),
            jolokia_down: knobs.jolokia_down,
            keyspaces: knobs.keyspaces,
            has_pods: &has_pods,
        };
        if let Some(decision) = refusal(&mut spec, &old, facts) {
            match decision {
                Refusal::Corrected(why) => {
                    status.last_cluster_action = action::CORRECT_CRD_CONFIG.into();
                    what.push(format!("refused ({why}): CorrectCRDConfig"));
                }
                Refusal::DeleteDc(dc) => {
                    let after = Topology::from_spec(&spec)?;
                    status
                        .cassandra_rack_status
                        .retain(|k, _| after.rack(k).is_some());
                    sts.retain(|k, _| after.rack(k).is_some());
                    status.last_cluster_action = action::DELETE_DC.into();
                    what.push(format!("DC {dc} removed: ActionDeleteDC"));
                }
            }
            return Ok(finish(observed, spec, status, sts, Vec::new(), false, what));
        }
    }

    // ReconcileRack
    let seeds = status.seedlist.clone().unwrap_or_default();
    let now = knobs.now.as_str();
    let mut started = Vec::new();
    let mut updated = false;
    for rack in &topology.racks {
        let key = rack.key();
        let want = StatefulSet::desired(&spec, rack, &seeds);
        let Some(rs) = status.cassandra_rack_status.get_mut(&key) else {
            status
                .cassandra_rack_status
                .insert(key.clone(), RackStatus::initializing());
            what.push(format!("{key}: new rack Initializing"));
            started.push(key);
            continue;
        };
        // Pods are not ready before CassKop has reported `Initializing` at cluster level.
        let reported = !observed.status.last_cluster_action.is_empty();
        if rs.phase != phase::INITIALIZING || reported {
            end_action(rs, &mut status.other, knobs, &key, &mut what);
        }
        if rs.phase == phase::INITIALIZING {
            sts.insert(key, want);
            continue;
        }
        let last = &mut rs.cassandra_last_action;
        let busy = matches!(
            last.status.as_str(),
            action_status::ONGOING | action_status::TODO | action_status::FINALIZING
        );
        let current = sts.get(&key).cloned();
        if !busy
            && let Some(current) = &current
            && let Some(change) = classify(current, &want, rack.rolling_restart)
            && change != Change::Other
        {
            let step = if change == Change::SeedList {
                action_status::CONFIGURING
            } else {
                action_status::TODO
            };
            *last = LastAction {
                name: change.action().into(),
                status: step.into(),
                ..LastAction::default()
            };
            match change {
                Change::ScaleDown => {
                    // setDecommissionStatus
                    rs.phase = phase::PENDING.into();
                    last.start_time = Some(now.into());
                }
                Change::ScaleUp => rs.phase = phase::PENDING.into(),
                Change::RollingRestart => reset_rolling_restart(&mut spec, &rack.dc, &rack.rack),
                _ => {}
            }
            what.push(format!("{key}: {} {step}", change.action()));
        }
        if knobs.jolokia_down {
            // "cannot check if there are joining nodes": the StatefulSet is left as it is.
            if rs.phase != phase::RUNNING || pending(&rs.cassandra_last_action.status) {
                break;
            }
            continue;
        }
        let last = &mut rs.cassandra_last_action;
        match current {
            None => {
                sts.insert(key.clone(), want);
            }
            Some(current) => {
                let scheduled = matches!(
                    last.status.as_str(),
                    action_status::TODO | action_status::CONFIGURING
                );
                let differs = current != want;
                if differs {
                    sts.insert(key.clone(), want);
                    updated = true;
                }
                if scheduled {
                    last.status = action_status::ONGOING.into();
                    last.start_time = Some(now.into());
                    last.end_time = None;
                    what.push(format!("{key}: {} Ongoing", last.name));
                    started.push(key.clone());
                } else if differs && last.status != action_status::ONGOING {
                    // UpdateStatusIfStatefulSetChanged
                    *last = LastAction {
                        name: action::UPDATE_STATEFUL_SET.into(),
                        status: action_status::ONGOING.into(),
                        start_time: Some(now.into()),
                        ..LastAction::default()
                    };
                    what.push(format!("{key}: UpdateStatefulSet Ongoing"));
                    started.push(key.clone());
                }
            }
        }
        if rs.phase != phase::RUNNING
            || matches!(
                rs.cassandra_last_action.status.as_str(),
                action_status::ONGOING | action_status::FINALIZING
            )
        {
            break;
        }
    }
    if !knobs.jolokia_down && knobs.host_ids {
        update_nodes(observed, &topology, &sts, &mut status);
    }
    cluster_phase(&topology, &mut status);
    Ok(finish(observed, spec, status, sts, started, updated, what))
}

fn pending(status: &str) -> bool {
    matches!(
        status,
        action_status::TODO | action_status::ONGOING | action_status::CONFIGURING
    )
}

/// `UpdateStatusIfActionEnded` (and the end of initialisation) for a rack whose time has come.
fn end_action(
    rs: &mut RackStatus,
    cluster_other: &mut serde_json::Map<String, Value>,
    knobs: &Knobs<'_>,
    key: &str,
    what: &mut Vec<String>,
) {
    let last = &mut rs.cassandra_last_action;
    if last.status != action_status::ONGOING
        || !knobs.due.contains(key)
        || knobs.mode == Mode::Stuck
    {
        return;
    }
    let now = Some(knobs.now.clone());
    if rs.phase == phase::INITIALIZING {
        if rs.other.get(INITIALIZING_SUB_PHASE) == Some(&json!(FIRST_POD_PER_RACK)) {
            rs.other
                .insert(INITIALIZING_SUB_PHASE.into(), NEXT_POD_PER_RACK.into());
            cluster_other.insert(INITIALIZING_SUB_PHASE.into(), NEXT_POD_PER_RACK.into());
            what.push(format!("{key}: first pod ready (NextPodPerRack)"));
            return;
        }
        rs.other.remove(INITIALIZING_SUB_PHASE);
        last.status = action_status::DONE.into();
        last.end_time = now;
        rs.phase = phase::RUNNING.into();
        what.push(format!("{key}: Initializing Done"));
        return;
    }
    last.status = if knobs.mode == Mode::Error {
        action_status::ERROR
    } else {
        action_status::DONE
    }
    .into();
    last.end_time = now;
    rs.phase = phase::RUNNING.into();
    what.push(format!("{key}: {} {}", last.name, last.status));
}

/// `CheckPodsState`: node identities of the pods of racks that run (Jolokia's `HostIdMap`);
/// racks in the middle of a scale keep theirs until it ends.
fn update_nodes(
    observed: &Observed<'_>,
    topology: &Topology,
    sts: &StatefulSets,
    status: &mut ClusterStatus,
) {
    let name = observed.name();
    let uid = observed.meta.uid.as_deref().unwrap_or_default();
    let mut nodes = BTreeMap::new();
    for rack in &topology.racks {
        let key = rack.key();
        let Some(rs) = status.cassandra_rack_status.get(&key) else {
            continue;
        };
        if rs.phase == phase::INITIALIZING {
            continue;
        }
        let scaling = matches!(
            rs.cassandra_last_action.name.as_str(),
            action::SCALE_UP | action::SCALE_DOWN
        ) && pending(&rs.cassandra_last_action.status);
        if scaling {
            let prefix = format!("{name}-{key}-");
            for (pod, node) in &status.cassandra_node_status {
                if pod.starts_with(&prefix) {
                    nodes.insert(pod.clone(), node.clone());
                }
            }
            continue;
        }
        let replicas = sts.get(&key).map_or(rack.nodes, |s| s.replicas);
        let running = Rack {
            nodes: replicas,
            ..rack.clone()
        };
        for pod in running.pods(name) {
            let node = status
                .cassandra_node_status
                .get(&pod)
                .cloned()
                .unwrap_or_else(|| node_status(uid, &pod));
            nodes.insert(pod, node);
        }
    }
    status.cassandra_node_status = nodes;
}

/// `UpdateCassandraClusterStatusPhase`.
fn cluster_phase(topology: &Topology, status: &mut ClusterStatus) {
    let mut set = false;
    for rack in &topology.racks {
        let Some(rs) = status.cassandra_rack_status.get(&rack.key()) else {
            continue;
        };
        if rs.cassandra_last_action.status != action_status::DONE {
            status.last_cluster_action = rs.cassandra_last_action.name.clone();
            status.last_cluster_action_status = rs.cassandra_last_action.status.clone();
            set = true;
        }
        if rs.phase != phase::RUNNING {
            status.phase = rs.phase.clone();
            return;
        }
    }
    status.other.remove(INITIALIZING_SUB_PHASE);
    if !set && status.last_cluster_action_status != action_status::DONE {
        status.last_cluster_action_status = action_status::DONE.into();
        status.phase = phase::RUNNING.into();
    }
    if status.phase != phase::RUNNING && status.last_cluster_action_status == action_status::DONE {
        status.phase = phase::RUNNING.into();
    }
}

/// The annotation CassKop would compute for `observed` with `spec`.
pub fn last_applied(observed: &Observed<'_>, spec: &Value) -> String {
    lastapplied::compute(KIND, API_VERSION, observed.meta, spec)
}

/// `updateCassandraStatus`: what to write.
fn finish(
    observed: &Observed<'_>,
    spec: Value,
    status: ClusterStatus,
    statefulsets: StatefulSets,
    started: Vec<String>,
    statefulset_updated: bool,
    what: Vec<String>,
) -> Plan {
    let lac = last_applied(observed, &spec);
    let mut stored = observed.spec.clone();
    go_marshal(&mut stored);
    let spec_changed = stored != spec;
    let main = spec_changed || observed.annotation() != Some(&lac);
    Plan {
        spec: spec_changed.then_some(spec),
        last_applied: main.then_some(lac),
        status: (status != observed.status).then_some(status),
        statefulsets,
        started,
        statefulset_updated,
        what,
    }
}

/// First reconcile (`SetDefaults`).
fn create(observed: &Observed<'_>) -> Result<Plan, SpecError> {
    let mut spec = observed.spec.clone();
    set_defaults(&mut spec);
    go_marshal(&mut spec);
    let topology = Topology::from_spec(&spec)?;
    let mut status = observed.status.clone();
    status.phase = phase::INITIALIZING.into();
    status.cassandra_rack_status = topology
        .racks
        .iter()
        .map(|r| (r.key(), RackStatus::initializing()))
        .collect();
    status
        .other
        .insert(INITIALIZING_SUB_PHASE.into(), FIRST_POD_PER_RACK.into());
    if status.seedlist.is_none() {
        status.seedlist = Some(topology.seed_list(observed.name(), observed.namespace()));
    }
    let mut stored = observed.spec.clone();
    go_marshal(&mut stored);
    Ok(Plan {
        spec: (stored != spec).then_some(spec),
        last_applied: None,
        status: Some(status),
        statefulsets: StatefulSets::new(),
        started: topology.racks.iter().map(Rack::key).collect(),
        statefulset_updated: false,
        what: vec!["create: spec defaults, Initializing".into()],
    })
}

/// After a restart: StatefulSets as built from the last-applied spec and the current seed list,
/// except racks with a scheduled action (their StatefulSet still differs).
fn assumed(observed: &Observed<'_>, spec: &Value) -> StatefulSets {
    let base = observed
        .annotation()
        .and_then(|a| lastapplied::spec_of(a))
        .unwrap_or_else(|| spec.clone());
    let topology = Topology::from_spec(&base)
        .or_else(|_| Topology::from_spec(spec))
        .map(|t| t.racks)
        .unwrap_or_default();
    let seeds = observed.status.seedlist.clone().unwrap_or_default();
    let mut sts = StatefulSets::new();
    for rack in topology {
        let Some(rs) = observed.status.cassandra_rack_status.get(&rack.key()) else {
            continue;
        };
        let mut built = StatefulSet::desired(&base, &rack, &seeds);
        if matches!(
            rs.cassandra_last_action.status.as_str(),
            action_status::TODO | action_status::CONFIGURING
        ) {
            built.template = Value::Null;
        }
        sts.insert(rack.key(), built);
    }
    sts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: &str = "2030-01-02T03:04:05Z";

    /// A CassandraCluster held in memory, fed through `decide` like the reconciler does.
    struct Cc {
        meta: ObjectMeta,
        spec: Value,
        status: ClusterStatus,
        sts: Option<StatefulSets>,
        /// Racks whose action is due.
        due: BTreeSet<String>,
        jolokia_down: bool,
        keyspaces: BTreeSet<String>,
    }

    impl Cc {
        fn new(spec: Value) -> Self {
            Self {
                meta: serde_json::from_value(
                    json!({"name": "cc", "namespace": "ns", "uid": "uid", "generation": 1}),
                )
                .unwrap(),
                spec,
                status: ClusterStatus::default(),
                sts: None,
                due: BTreeSet::new(),
                jolokia_down: false,
                keyspaces: BTreeSet::new(),
            }
        }

        fn plan(&self, mode: Mode) -> Plan {
            let observed = Observed {
                meta: &self.meta,
                spec: &self.spec,
                status: self.status.clone(),
            };
            let knobs = Knobs {
                mode,
                jolokia_down: self.jolokia_down,
                keyspaces: &self.keyspaces,
                host_ids: true,
                due: &self.due,
                now: NOW.into(),
            };
            decide(&observed, self.sts.as_ref(), &knobs).unwrap()
        }

        /// One reconcile; returns the writes as `SPEC`, `ANNOTATION`, `STATUS` in order.
        fn step(&mut self, mode: Mode) -> Vec<&'static str> {
            let plan = self.plan(mode);
            let mut writes = Vec::new();
            if let Some(spec) = plan.spec {
                self.spec = spec;
                writes.push("SPEC");
            }
            if let Some(a) = plan.last_applied {
                self.meta
                    .annotations
                    .get_or_insert_default()
                    .insert(LAST_APPLIED_ANNOTATION.into(), a);
                writes.push("ANNOTATION");
            }
            if let Some(s) = plan.status {
                self.status = s;
                writes.push("STATUS");
            }
            self.sts = Some(plan.statefulsets);
            writes
        }

        /// Steps with every action due until nothing is written.
        fn settle(&mut self) {
            for _ in 0..20 {
                self.due = self.status.cassandra_rack_status.keys().cloned().collect();
                if self.step(Mode::Normal).is_empty() {
                    self.due.clear();
                    return;
                }
            }
            panic!("does not settle: {:?}", self.status);
        }

        fn state(&self) -> (String, String, String) {
            (
                self.status.phase.clone(),
                self.status.last_cluster_action.clone(),
                self.status.last_cluster_action_status.clone(),
            )
        }

        fn rack(&self, key: &str) -> (String, String, String) {
            let r = &self.status.cassandra_rack_status[key];
            (
                r.phase.clone(),
                r.cassandra_last_action.name.clone(),
                r.cassandra_last_action.status.clone(),
            )
        }
    }

    fn s(a: &str, b: &str, c: &str) -> (String, String, String) {
        (a.into(), b.into(), c.into())
    }

    fn two_racks() -> Value {
        json!({"nodesPerRacks": 2, "cassandraImage": "cassandra:3.11.10",
            "topology": {"dc": [{"name": "dc1", "rack": [{"name": "r1"}, {"name": "r2"}]}]}})
    }

    #[test]
    fn creation_follows_the_trace() {
        let mut cc = Cc::new(two_racks());
        // rv 234 + 235: defaults, then Initializing without cluster action
        assert_eq!(cc.step(Mode::Normal), ["SPEC", "STATUS"]);
        assert!(cc.meta.annotations.is_none());
        assert_eq!(cc.state(), s("Initializing", "", ""));
        assert_eq!(
            cc.rack("dc1-r1"),
            s("Initializing", "Initializing", "Ongoing")
        );
        assert_eq!(
            cc.status.cassandra_rack_status["dc1-r1"]
                .cassandra_last_action
                .start_time,
            None
        );
        assert_eq!(cc.status.other[INITIALIZING_SUB_PHASE], "FirstPodPerRack");
        assert_eq!(
            cc.status.seedlist.clone().unwrap(),
            [
                "cc-dc1-r1-0.cc.ns",
                "cc-dc1-r1-1.cc.ns",
                "cc-dc1-r2-0.cc.ns"
            ]
        );
        assert_eq!(cc.spec["imagePullSecret"], json!({}));
        assert!(
            cc.spec.get("bootstrapImage").is_none(),
            "CheckDefaults comes later"
        );
        // rv 244 + 246: annotation with CheckDefaults, then Initializing/Ongoing
        assert_eq!(cc.step(Mode::Normal), ["SPEC", "ANNOTATION", "STATUS"]);
        assert_eq!(cc.state(), s("Initializing", "Initializing", "Ongoing"));
        assert!(cc.spec.get("bootstrapImage").is_some());
        let annotation = &cc.meta.annotations.as_ref().unwrap()[LAST_APPLIED_ANNOTATION];
        assert_eq!(lastapplied::spec_of(annotation).unwrap(), cc.spec);
        assert!(cc.step(Mode::Normal).is_empty(), "nothing more until due");
        // rv 268, 270
        cc.due = ["dc1-r1", "dc1-r2"].map(String::from).into();
        assert_eq!(cc.step(Mode::Normal), ["STATUS"]);
        assert_eq!(cc.status.other[INITIALIZING_SUB_PHASE], "NextPodPerRack");
        assert_eq!(cc.step(Mode::Normal), ["STATUS"]);
        assert_eq!(cc.state(), s("Running", "Initializing", "Done"));
        assert!(cc.status.other.get(INITIALIZING_SUB_PHASE).is_none());
        let last = &cc.status.cassandra_rack_status["dc1-r1"].cassandra_last_action;
        assert_eq!(
            (last.start_time.as_deref(), last.end_time.as_deref()),
            (None, Some(NOW))
        );
        assert_eq!(cc.status.cassandra_node_status.len(), 4);
        assert!(cc.step(Mode::Normal).is_empty());
    }

    #[test]
    fn prefilled_seed_list_survives_creation() {
        let mut cc = Cc::new(two_racks());
        cc.status.seedlist = Some(vec!["x.example".into()]);
        cc.settle();
        assert_eq!(cc.status.seedlist.clone().unwrap(), ["x.example"]);
        assert_eq!(
            cc.state(),
            s("Running", "Initializing", "Done"),
            "no seed-list action"
        );
    }

    #[test]
    fn image_change_stays_running_and_rolls_rack_by_rack() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.spec["cassandraImage"] = json!("cassandra:4.0.1");
        // rv 303 + 304: annotation (old status), then Ongoing
        let plan = cc.plan(Mode::Normal);
        assert!(plan.statefulset_updated);
        assert_eq!(cc.step(Mode::Normal), ["ANNOTATION", "STATUS"]);
        assert_eq!(cc.state(), s("Running", "UpdateDockerImage", "Ongoing"));
        assert_eq!(
            cc.rack("dc1-r1"),
            s("Running", "UpdateDockerImage", "Ongoing")
        );
        assert_eq!(
            cc.rack("dc1-r2"),
            s("Running", "Initializing", "Done"),
            "one rack at a time"
        );
        let last = &cc.status.cassandra_rack_status["dc1-r1"].cassandra_last_action;
        assert_eq!(
            (last.start_time.as_deref(), last.end_time.as_deref()),
            (Some(NOW), None)
        );
        cc.due = ["dc1-r1".to_string()].into();
        assert_eq!(cc.step(Mode::Normal), ["STATUS"]);
        assert_eq!(cc.rack("dc1-r1"), s("Running", "UpdateDockerImage", "Done"));
        assert_eq!(
            cc.rack("dc1-r2"),
            s("Running", "UpdateDockerImage", "Ongoing")
        );
        assert_eq!(cc.state(), s("Running", "UpdateDockerImage", "Ongoing"));
        cc.settle();
        assert_eq!(cc.state(), s("Running", "UpdateDockerImage", "Done"));
    }

    #[test]
    fn config_change_is_update_stateful_set_and_configmap_is_update_config_map() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.spec["config"] = json!({"cassandra-yaml": {"num_tokens": 16}});
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Running", "UpdateStatefulSet", "Ongoing"));
        cc.settle();
        cc.spec["configMapName"] = json!("cm-2");
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Running", "UpdateConfigMap", "Ongoing"));
    }

    #[test]
    fn seed_list_change_goes_straight_to_ongoing() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.status.seedlist = Some(vec!["a.remote".into(), "b.remote".into()]);
        assert_eq!(cc.step(Mode::Normal), ["STATUS"]);
        assert_eq!(cc.state(), s("Running", "UpdateSeedList", "Ongoing"));
        assert_eq!(
            cc.sts.as_ref().unwrap()["dc1-r1"].seeds,
            ["a.remote", "b.remote"]
        );
        assert_ne!(
            cc.sts.as_ref().unwrap()["dc1-r2"].seeds,
            ["a.remote", "b.remote"]
        );
        cc.settle();
        assert_eq!(cc.state(), s("Running", "UpdateSeedList", "Done"));
        assert_eq!(
            cc.sts.as_ref().unwrap()["dc1-r2"].seeds,
            ["a.remote", "b.remote"]
        );
    }

    #[test]
    fn jolokia_down_holds_todo_then_resumes() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        let before = cc.sts.clone();
        cc.jolokia_down = true;
        cc.spec["cassandraImage"] = json!("c:2");
        assert_eq!(cc.step(Mode::Normal), ["ANNOTATION", "STATUS"]);
        assert_eq!(cc.state(), s("Running", "UpdateDockerImage", "ToDo"));
        assert_eq!(
            cc.status.cassandra_rack_status["dc1-r1"]
                .cassandra_last_action
                .start_time,
            None
        );
        assert_eq!(cc.sts, before, "StatefulSets untouched");
        cc.due = ["dc1-r1".to_string()].into();
        assert!(cc.step(Mode::Normal).is_empty(), "holds");
        // a config change alone shows nothing while Jolokia is down
        cc.jolokia_down = false;
        cc.settle();
        cc.jolokia_down = true;
        cc.spec["config"] = json!({"x": 1});
        assert_eq!(cc.step(Mode::Normal), ["ANNOTATION"]);
        assert_eq!(cc.state(), s("Running", "UpdateDockerImage", "Done"));
        cc.jolokia_down = false;
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Running", "UpdateStatefulSet", "Ongoing"));
    }

    #[test]
    fn jolokia_back_after_a_restart_resumes_todo() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.jolokia_down = true;
        cc.spec["cassandraImage"] = json!("c:2");
        cc.step(Mode::Normal);
        cc.sts = None;
        cc.jolokia_down = false;
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Running", "UpdateDockerImage", "Ongoing"));
    }

    #[test]
    fn scaling_goes_pending_and_changes_nodes_when_done() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.spec["topology"]["dc"][0]["nodesPerRacks"] = json!(3);
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Pending", "ScaleUp", "Ongoing"));
        assert_eq!(cc.status.cassandra_node_status.len(), 4);
        cc.settle();
        assert_eq!(cc.state(), s("Running", "ScaleUp", "Done"));
        assert_eq!(cc.status.cassandra_node_status.len(), 6);
        cc.spec["topology"]["dc"][0]["nodesPerRacks"] = json!(1);
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Pending", "ScaleDown", "Ongoing"));
        cc.settle();
        assert_eq!(cc.status.cassandra_node_status.len(), 2);
    }

    #[test]
    fn refused_changes_write_the_previous_spec_back_once() {
        let mut cc = Cc::new(
            json!({"nodesPerRacks": 1, "dataCapacity": "1Gi", "topology": {"dc": [
            {"name": "dc1", "rack": [{"name": "r1"}]}, {"name": "dc2", "rack": [{"name": "r1"}]}]}}),
        );
        cc.keyspaces = ["dc2".to_string()].into();
        cc.settle();
        let good = cc.spec.clone();
        cc.spec["topology"]["dc"][1]["nodesPerRacks"] = json!(0);
        assert_eq!(cc.step(Mode::Normal), ["SPEC", "ANNOTATION", "STATUS"]);
        assert_eq!(cc.spec, good);
        assert_eq!(cc.state(), s("Running", "CorrectCRDConfig", "Done"));
        assert!(cc.step(Mode::Normal).is_empty(), "no loop");
        // without keyspaces there: ScaleDown, then the empty DC may go
        cc.keyspaces.clear();
        cc.spec["topology"]["dc"][1]["nodesPerRacks"] = json!(0);
        cc.settle();
        assert_eq!(cc.state(), s("Running", "ScaleDown", "Done"));
        cc.spec["topology"]["dc"].as_array_mut().unwrap().pop();
        cc.settle();
        assert_eq!(cc.state(), s("Running", "ActionDeleteDC", "Done"));
        assert_eq!(
            cc.status.cassandra_rack_status.keys().collect::<Vec<_>>(),
            ["dc1-r1"]
        );
        assert_eq!(cc.status.cassandra_node_status.len(), 1);
        // removing a DC with nodes is refused
        cc.spec["topology"]["dc"].as_array_mut().unwrap().pop();
        cc.step(Mode::Normal);
        assert_eq!(cc.spec["topology"]["dc"].as_array().unwrap().len(), 1);
        assert_eq!(cc.state(), s("Running", "CorrectCRDConfig", "Done"));
    }

    #[test]
    fn rolling_restart_and_unlock_flags_are_reset() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.spec["topology"]["dc"][0]["rack"][1]["rollingRestart"] = json!(true);
        cc.spec["unlockNextOperation"] = json!(true);
        cc.step(Mode::Normal);
        assert!(
            cc.spec["topology"]["dc"][0]["rack"][1]
                .get("rollingRestart")
                .is_none()
        );
        assert!(cc.spec.get("unlockNextOperation").is_none());
        assert_eq!(cc.rack("dc1-r2"), s("Running", "RollingRestart", "Ongoing"));
        assert_eq!(cc.rack("dc1-r1"), s("Running", "Initializing", "Done"));
        cc.settle();
        assert_eq!(cc.state(), s("Running", "RollingRestart", "Done"));
    }

    #[test]
    fn stuck_holds_and_error_ends_in_error() {
        let mut cc = Cc::new(two_racks());
        cc.step(Mode::Stuck);
        cc.step(Mode::Stuck);
        cc.due = cc.status.cassandra_rack_status.keys().cloned().collect();
        assert!(cc.step(Mode::Stuck).is_empty());
        assert_eq!(cc.state(), s("Initializing", "Initializing", "Ongoing"));
        cc.settle();
        cc.spec["cassandraImage"] = json!("c:4");
        cc.step(Mode::Error);
        cc.due = cc.status.cassandra_rack_status.keys().cloned().collect();
        cc.step(Mode::Error);
        assert_eq!(
            cc.rack("dc1-r1"),
            s("Running", "UpdateDockerImage", "Error")
        );
        assert_eq!(
            cc.rack("dc1-r2"),
            s("Running", "UpdateDockerImage", "Ongoing")
        );
        cc.step(Mode::Error);
        assert_eq!(cc.state(), s("Running", "UpdateDockerImage", "Error"));
        assert!(
            cc.step(Mode::Normal).is_empty(),
            "an error waits for the next change"
        );
    }

    #[test]
    fn a_new_dc_initializes() {
        let mut cc =
            Cc::new(json!({"topology": {"dc": [{"name": "dc1", "rack": [{"name": "r1"}]}]}}));
        cc.settle();
        cc.spec["topology"]["dc"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "dc2", "rack": [{"name": "r1"}]}));
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Initializing", "Initializing", "Ongoing"));
        cc.settle();
        assert_eq!(cc.state(), s("Running", "Initializing", "Done"));
    }

    #[test]
    fn odd_spec_is_an_error() {
        let cc = Cc::new(json!({"topology": {"dc": [{"rack": []}]}}));
        let observed = Observed {
            meta: &cc.meta,
            spec: &cc.spec,
            status: ClusterStatus::default(),
        };
        let knobs = Knobs {
            mode: Mode::Normal,
            jolokia_down: false,
            keyspaces: &cc.keyspaces,
            host_ids: true,
            due: &cc.due,
            now: NOW.into(),
        };
        assert!(decide(&observed, None, &knobs).is_err());
    }
}
