//! The simulator's decisions, free of I/O: from a `CassandraCluster` as read, the one write that
//! CassKop would make next (one transition per write, so every state is visible to watchers).
//!
//! Order of precedence:
//! 1. no `status.phase` → creation: `Initializing`/`Ongoing`, racks, nodes, seed list;
//! 2. no annotations yet (object created with a status) → record them, no action;
//! 3. spec differs from the last-applied annotation → the action the change means (`Ongoing`);
//! 4. a rack's `rollingRestart` is true → `RollingRestart` `ToDo` on those racks, flag reset;
//! 5. `unlockNextOperation` is true → reset it;
//! 6. `status.seedlist` differs from the StatefulSets' seeds → `UpdateSeedList` `Configuring`;
//! 7. an action is pending → after the delay, `ToDo`/`Configuring` → `Ongoing` → `Done`
//!    (`Error` in error mode; stuck mode never leaves `Ongoing`).
//!
//! A new change supersedes an action still in progress (its racks join the new action).

use std::collections::BTreeMap;

use serde_json::Value;

use super::Mode;
use super::diff::{classify, normalize, reset_flags, unlock_requested};
use super::model::{
    ClusterStatus, LAST_APPLIED_ANNOTATION, LastAction, RackStatus, STATEFULSET_SEEDS_ANNOTATION,
    action, action_status, phase,
};
use super::topology::{SpecError, Topology, node_status};

/// The object as read, in the shape the decisions need.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// `metadata.name`.
    pub name: &'a str,
    /// `metadata.namespace`.
    pub namespace: &'a str,
    /// `metadata.uid` (salt of the made-up node identities).
    pub uid: &'a str,
    /// `spec`.
    pub spec: &'a Value,
    /// `status`.
    pub status: ClusterStatus,
    /// `metadata.annotations`.
    pub annotations: &'a BTreeMap<String, String>,
}

/// The simulator's settings at the time of the decision.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// Normal, stuck or error.
    pub mode: Mode,
    /// Whether the delay since the simulator's last write to this object has passed.
    pub due: bool,
    /// Current time, RFC 3339.
    pub now: String,
}

/// One write to make. In the status-subresource variant the status goes first (through
/// `/status`), then spec and annotations (main resource); otherwise all in one replace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Write {
    /// New status, if it changes.
    pub status: Option<ClusterStatus>,
    /// New spec, if it changes (flags reset).
    pub spec: Option<Value>,
    /// Annotations to set.
    pub annotations: BTreeMap<String, String>,
    /// What this write does, for the logs.
    pub what: String,
}

/// What to do with the object now.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Make this write.
    Write(Box<Write>),
    /// An action is pending but the delay has not passed.
    Wait,
    /// Stuck mode: the action stays `Ongoing`.
    Hold,
    /// Nothing to do until the object changes.
    Idle,
}

/// Decides the next write for `observed`.
pub fn decide(observed: &Observed<'_>, knobs: &Knobs) -> Result<Decision, SpecError> {
    let topology = Topology::from_spec(observed.spec)?;
    let normalized = normalize(observed.spec);
    let applied_json = normalized.to_string();
    let mut reset_spec = observed.spec.clone();
    let reset_spec = reset_flags(&mut reset_spec).then_some(reset_spec);
    let mut status = observed.status.clone();
    let now = knobs.now.as_str();

    // 1. creation
    if status.phase.is_empty() {
        let seeds = status
            .seedlist
            .clone()
            .unwrap_or_else(|| topology.seed_list(observed.name, observed.namespace));
        status.phase = phase::INITIALIZING.into();
        status.last_cluster_action = action::INITIALIZING.into();
        status.last_cluster_action_status = action_status::ONGOING.into();
        status.cassandra_rack_status = topology
            .racks
            .iter()
            .map(|r| {
                let rack = RackStatus::starting(
                    phase::INITIALIZING,
                    action::INITIALIZING,
                    action_status::ONGOING,
                    now,
                );
                (r.key(), rack)
            })
            .collect();
        status.cassandra_node_status = topology
            .pods(observed.name)
            .into_iter()
            .map(|pod| {
                let node = node_status(observed.uid, &pod);
                (pod, node)
            })
            .collect();
        let annotations = BTreeMap::from([
            (LAST_APPLIED_ANNOTATION.to_string(), applied_json),
            (STATEFULSET_SEEDS_ANNOTATION.to_string(), seeds_json(&seeds)),
        ]);
        status.seedlist = Some(seeds);
        return Ok(Decision::Write(Box::new(Write {
            status: Some(status),
            spec: reset_spec,
            annotations,
            what: "create: Initializing Ongoing".into(),
        })));
    }

    let applied: Option<Value> = observed
        .annotations
        .get(LAST_APPLIED_ANNOTATION)
        .and_then(|a| serde_json::from_str(a).ok());
    let sts_seeds: Option<Vec<String>> = observed
        .annotations
        .get(STATEFULSET_SEEDS_ANNOTATION)
        .and_then(|a| serde_json::from_str(a).ok());

    // 2. adopt an object that has a status but not our annotations
    let (Some(applied), Some(sts_seeds)) = (applied.clone(), sts_seeds.clone()) else {
        let mut annotations = BTreeMap::new();
        if applied.is_none() {
            annotations.insert(LAST_APPLIED_ANNOTATION.to_string(), applied_json);
        }
        if sts_seeds.is_none() {
            let seeds = status.seedlist.clone().unwrap_or_default();
            annotations.insert(STATEFULSET_SEEDS_ANNOTATION.to_string(), seeds_json(&seeds));
        }
        return Ok(Decision::Write(Box::new(Write {
            status: None,
            spec: reset_spec,
            annotations,
            what: "adopt: record last-applied spec and StatefulSet seeds".into(),
        })));
    };

    // 3. spec change
    if applied != normalized {
        // An unreadable recorded spec compares as the current topology (no scale, no removal).
        let old_topology = Topology::from_spec(&applied).unwrap_or_else(|_| topology.clone());
        let change = classify(&applied, &normalized, &old_topology, &topology).unwrap_or(
            super::diff::SpecChange {
                action: action::UPDATE_STATEFUL_SET,
                racks: topology.racks.iter().map(|r| r.key()).collect(),
            },
        );
        // CassKop's FixCassandraRackList: statuses of racks no longer in the topology go.
        status
            .cassandra_rack_status
            .retain(|key, _| topology.rack(key).is_some());
        start_action(
            &mut status,
            &topology,
            change.action,
            &change.racks,
            action_status::ONGOING,
            now,
        );
        return Ok(Decision::Write(Box::new(Write {
            status: Some(status),
            spec: reset_spec,
            annotations: BTreeMap::from([(LAST_APPLIED_ANNOTATION.to_string(), applied_json)]),
            what: format!("spec change: {} Ongoing", change.action),
        })));
    }

    // 4. rolling restart requested on racks
    let restart: Vec<String> = topology
        .racks
        .iter()
        .filter(|r| r.rolling_restart)
        .map(|r| r.key())
        .collect();
    if !restart.is_empty() {
        start_action(
            &mut status,
            &topology,
            action::ROLLING_RESTART,
            &restart,
            action_status::TODO,
            now,
        );
        return Ok(Decision::Write(Box::new(Write {
            status: Some(status),
            spec: reset_spec,
            annotations: BTreeMap::new(),
            what: format!("RollingRestart ToDo on {}", restart.join(",")),
        })));
    }

    // 5. unlockNextOperation
    if unlock_requested(observed.spec) {
        return Ok(Decision::Write(Box::new(Write {
            status: None,
            spec: reset_spec,
            annotations: BTreeMap::new(),
            what: "reset unlockNextOperation".into(),
        })));
    }

    // 6. seed list differs from the StatefulSets'
    if let Some(seeds) = &status.seedlist {
        let configuring = status.last_cluster_action == action::UPDATE_SEED_LIST
            && status.last_cluster_action_status == action_status::CONFIGURING;
        if *seeds != sts_seeds && !configuring {
            let all: Vec<String> = topology.racks.iter().map(|r| r.key()).collect();
            start_action(
                &mut status,
                &topology,
                action::UPDATE_SEED_LIST,
                &all,
                action_status::CONFIGURING,
                now,
            );
            return Ok(Decision::Write(Box::new(Write {
                status: Some(status),
                spec: None,
                annotations: BTreeMap::new(),
                what: "seed list change: UpdateSeedList Configuring".into(),
            })));
        }
    }

    // 7. move the pending action on
    if !status.is_pending() {
        return Ok(Decision::Idle);
    }
    let next = match status.last_cluster_action_status.as_str() {
        action_status::ONGOING => match knobs.mode {
            Mode::Stuck => return Ok(Decision::Hold),
            Mode::Normal => action_status::DONE,
            Mode::Error => action_status::ERROR,
        },
        _ => action_status::ONGOING,
    };
    if !knobs.due {
        return Ok(Decision::Wait);
    }
    let mut annotations = BTreeMap::new();
    if status.last_cluster_action == action::UPDATE_SEED_LIST && next == action_status::ONGOING {
        // The StatefulSets now roll out with the new seeds.
        let seeds = status.seedlist.clone().unwrap_or_default();
        annotations.insert(STATEFULSET_SEEDS_ANNOTATION.to_string(), seeds_json(&seeds));
    }
    advance(&mut status, next, now);
    if next == action_status::DONE {
        let pods = topology.pods(observed.name);
        status
            .cassandra_node_status
            .retain(|pod, _| pods.contains(pod));
        for pod in pods {
            let node = node_status(observed.uid, &pod);
            status.cassandra_node_status.entry(pod).or_insert(node);
        }
    }
    Ok(Decision::Write(Box::new(Write {
        what: format!("{} {next}", status.last_cluster_action),
        status: Some(status),
        spec: None,
        annotations,
    })))
}

/// Starts `name` in `step` status on `racks`; racks whose action was still pending join it,
/// racks missing from the status are added. Cluster phase: `Pending`.
fn start_action(
    status: &mut ClusterStatus,
    topology: &Topology,
    name: &str,
    racks: &[String],
    step: &str,
    now: &str,
) {
    let superseded: Vec<String> = status
        .cassandra_rack_status
        .iter()
        .filter(|(_, r)| action_status::is_pending(&r.cassandra_last_action.status))
        .map(|(k, _)| k.clone())
        .collect();
    let missing: Vec<String> = topology
        .racks
        .iter()
        .map(|r| r.key())
        .filter(|k| !status.cassandra_rack_status.contains_key(k))
        .collect();
    for key in racks.iter().chain(&superseded).chain(&missing) {
        let rack = status
            .cassandra_rack_status
            .entry(key.clone())
            .or_insert_with(|| RackStatus::starting(phase::INITIALIZING, name, step, now));
        if rack.phase != phase::INITIALIZING {
            rack.phase = phase::PENDING.into();
        }
        rack.cassandra_last_action = LastAction {
            name: name.into(),
            status: step.into(),
            start_time: Some(now.into()),
            end_time: None,
            other: serde_json::Map::new(),
        };
    }
    status.phase = phase::PENDING.into();
    status.last_cluster_action = name.into();
    status.last_cluster_action_status = step.into();
}

/// Moves the cluster action and its racks from their current step to `next`.
fn advance(status: &mut ClusterStatus, next: &str, now: &str) {
    let from = status.last_cluster_action_status.clone();
    let name = status.last_cluster_action.clone();
    for rack in status.cassandra_rack_status.values_mut() {
        let last = &mut rack.cassandra_last_action;
        if last.name != name || last.status != from {
            continue;
        }
        last.status = next.into();
        if next == action_status::DONE || next == action_status::ERROR {
            last.end_time = Some(now.into());
        }
        if next == action_status::DONE {
            rack.phase = phase::RUNNING.into();
        }
    }
    status.last_cluster_action_status = next.into();
    if next == action_status::DONE {
        status.phase = phase::RUNNING.into();
    }
}

fn seeds_json(seeds: &[String]) -> String {
    Value::from(seeds.to_vec()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: &str = "2030-01-02T03:04:05Z";

    /// A CassandraCluster held in memory, fed through `decide` like the reconciler does.
    struct Cc {
        spec: Value,
        status: ClusterStatus,
        annotations: BTreeMap<String, String>,
    }

    impl Cc {
        fn new(spec: Value) -> Self {
            Self {
                spec,
                status: ClusterStatus::default(),
                annotations: BTreeMap::new(),
            }
        }

        fn decide(&self, mode: Mode, due: bool) -> Decision {
            let observed = Observed {
                name: "cc",
                namespace: "ns",
                uid: "uid",
                spec: &self.spec,
                status: self.status.clone(),
                annotations: &self.annotations,
            };
            decide(
                &observed,
                &Knobs {
                    mode,
                    due,
                    now: NOW.into(),
                },
            )
            .unwrap()
        }

        /// Applies the next write; returns what it did, or panics if there is none.
        fn step(&mut self, mode: Mode) -> String {
            match self.decide(mode, true) {
                Decision::Write(w) => {
                    if let Some(s) = w.status {
                        self.status = s;
                    }
                    if let Some(s) = w.spec {
                        self.spec = s;
                    }
                    self.annotations.extend(w.annotations);
                    w.what
                }
                other => panic!("expected a write, got {other:?}"),
            }
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

        fn settle(&mut self) {
            while matches!(self.decide(Mode::Normal, true), Decision::Write(_)) {
                self.step(Mode::Normal);
            }
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
    fn creation_goes_initializing_ongoing_then_running_done() {
        let mut cc = Cc::new(two_racks());
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Initializing", "Initializing", "Ongoing"));
        assert_eq!(
            cc.rack("dc1-r1"),
            s("Initializing", "Initializing", "Ongoing")
        );
        let nodes: Vec<_> = cc.status.cassandra_node_status.keys().cloned().collect();
        assert_eq!(
            nodes,
            ["cc-dc1-r1-0", "cc-dc1-r1-1", "cc-dc1-r2-0", "cc-dc1-r2-1"]
        );
        assert_eq!(
            cc.status.seedlist.clone().unwrap(),
            [
                "cc-dc1-r1-0.cc.ns",
                "cc-dc1-r1-1.cc.ns",
                "cc-dc1-r2-0.cc.ns"
            ]
        );
        assert_eq!(
            serde_json::from_str::<Value>(&cc.annotations[LAST_APPLIED_ANNOTATION]).unwrap(),
            two_racks()
        );
        assert_eq!(
            cc.decide(Mode::Normal, false),
            Decision::Wait,
            "delay not passed"
        );
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Running", "Initializing", "Done"));
        assert_eq!(cc.rack("dc1-r2"), s("Running", "Initializing", "Done"));
        let last = &cc.status.cassandra_rack_status["dc1-r1"].cassandra_last_action;
        assert_eq!(
            (last.start_time.as_deref(), last.end_time.as_deref()),
            (Some(NOW), Some(NOW))
        );
        assert_eq!(cc.decide(Mode::Normal, true), Decision::Idle);
    }

    #[test]
    fn prefilled_seed_list_survives_creation() {
        let mut cc = Cc::new(two_racks());
        cc.status.seedlist = Some(vec!["x.example".into()]);
        cc.step(Mode::Normal);
        assert_eq!(cc.status.seedlist.clone().unwrap(), ["x.example"]);
        assert_eq!(
            cc.annotations[STATEFULSET_SEEDS_ANNOTATION],
            r#"["x.example"]"#
        );
        cc.settle();
        assert_eq!(
            cc.state(),
            s("Running", "Initializing", "Done"),
            "no seed-list action"
        );
    }

    #[test]
    fn image_change_is_update_docker_image() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.spec["cassandraImage"] = json!("cassandra:4.0.1");
        let what = cc.step(Mode::Normal);
        assert!(what.contains("UpdateDockerImage"), "{what}");
        assert_eq!(cc.state(), s("Pending", "UpdateDockerImage", "Ongoing"));
        assert_eq!(
            cc.rack("dc1-r1"),
            s("Pending", "UpdateDockerImage", "Ongoing")
        );
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Running", "UpdateDockerImage", "Done"));
        assert_eq!(cc.rack("dc1-r2"), s("Running", "UpdateDockerImage", "Done"));
    }

    #[test]
    fn scale_up_adds_nodes_when_done_and_scale_down_removes_them() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.spec["topology"]["dc"][0]["nodesPerRacks"] = json!(3);
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Pending", "ScaleUp", "Ongoing"));
        assert_eq!(
            cc.status.cassandra_node_status.len(),
            4,
            "new pods appear when done"
        );
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Running", "ScaleUp", "Done"));
        assert!(cc.status.cassandra_node_status.contains_key("cc-dc1-r2-2"));
        assert_eq!(cc.status.cassandra_node_status.len(), 6);
        cc.spec["topology"]["dc"][0]["nodesPerRacks"] = json!(1);
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Pending", "ScaleDown", "Ongoing"));
        cc.step(Mode::Normal);
        assert_eq!(cc.status.cassandra_node_status.len(), 2);
    }

    #[test]
    fn dc_removal_drops_its_racks_and_nodes() {
        let mut cc = Cc::new(
            json!({"nodesPerRacks": 1, "topology": {"dc": [{"name": "dc1"}, {"name": "dc2"}]}}),
        );
        cc.settle();
        assert_eq!(cc.status.cassandra_rack_status.len(), 2);
        cc.spec = json!({"nodesPerRacks": 1, "topology": {"dc": [{"name": "dc1"}]}});
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Pending", "ActionDeleteDC", "Ongoing"));
        assert_eq!(
            cc.status.cassandra_rack_status.keys().collect::<Vec<_>>(),
            ["dc1-rack1"]
        );
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Running", "ActionDeleteDC", "Done"));
        assert_eq!(
            cc.status.cassandra_node_status.keys().collect::<Vec<_>>(),
            ["cc-dc1-rack1-0"]
        );
    }

    #[test]
    fn seed_list_change_goes_configuring_ongoing_done() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.status.seedlist = Some(vec!["a.remote".into(), "b.remote".into()]);
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Pending", "UpdateSeedList", "Configuring"));
        assert_eq!(
            cc.rack("dc1-r1"),
            s("Pending", "UpdateSeedList", "Configuring")
        );
        assert_ne!(
            cc.annotations[STATEFULSET_SEEDS_ANNOTATION],
            r#"["a.remote","b.remote"]"#
        );
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Pending", "UpdateSeedList", "Ongoing"));
        assert_eq!(
            cc.annotations[STATEFULSET_SEEDS_ANNOTATION],
            r#"["a.remote","b.remote"]"#
        );
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Running", "UpdateSeedList", "Done"));
        assert_eq!(cc.decide(Mode::Normal, true), Decision::Idle);
    }

    #[test]
    fn rolling_restart_is_reset_and_runs_todo_ongoing_done() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.spec["topology"]["dc"][0]["rack"][1]["rollingRestart"] = json!(true);
        cc.step(Mode::Normal);
        assert_eq!(cc.spec, two_racks(), "flag removed from the spec");
        assert_eq!(cc.state(), s("Pending", "RollingRestart", "ToDo"));
        assert_eq!(cc.rack("dc1-r2"), s("Pending", "RollingRestart", "ToDo"));
        assert_eq!(
            cc.rack("dc1-r1"),
            s("Running", "Initializing", "Done"),
            "other rack untouched"
        );
        cc.step(Mode::Normal);
        assert_eq!(cc.rack("dc1-r2"), s("Pending", "RollingRestart", "Ongoing"));
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Running", "RollingRestart", "Done"));
        assert_eq!(cc.rack("dc1-r2"), s("Running", "RollingRestart", "Done"));
    }

    #[test]
    fn unlock_next_operation_is_reset_without_action() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.spec["unlockNextOperation"] = json!(true);
        cc.step(Mode::Normal);
        assert_eq!(cc.spec, two_racks());
        assert_eq!(cc.state(), s("Running", "Initializing", "Done"));
    }

    #[test]
    fn flags_set_with_a_spec_change_are_reset_in_the_same_write() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.spec["cassandraImage"] = json!("c:4");
        cc.spec["unlockNextOperation"] = json!(true);
        let Decision::Write(w) = cc.decide(Mode::Normal, true) else {
            panic!()
        };
        assert!(w.spec.unwrap().get("unlockNextOperation").is_none());
        let applied: Value = serde_json::from_str(&w.annotations[LAST_APPLIED_ANNOTATION]).unwrap();
        assert_eq!(applied["cassandraImage"], "c:4");
        assert!(applied.get("unlockNextOperation").is_none());
    }

    #[test]
    fn stuck_mode_holds_ongoing_and_error_mode_ends_in_error() {
        let mut cc = Cc::new(two_racks());
        cc.step(Mode::Stuck);
        assert_eq!(cc.decide(Mode::Stuck, true), Decision::Hold);
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Running", "Initializing", "Done"));

        cc.spec["cassandraImage"] = json!("c:4");
        cc.step(Mode::Error);
        cc.step(Mode::Error);
        assert_eq!(cc.state(), s("Pending", "UpdateDockerImage", "Error"));
        assert_eq!(
            cc.rack("dc1-r1"),
            s("Pending", "UpdateDockerImage", "Error")
        );
        assert_eq!(
            cc.decide(Mode::Normal, true),
            Decision::Idle,
            "an error waits for the next change"
        );
    }

    #[test]
    fn stuck_mode_still_moves_configuring_to_ongoing() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.status.seedlist = Some(vec!["z".into()]);
        cc.step(Mode::Stuck);
        cc.step(Mode::Stuck);
        assert_eq!(cc.state(), s("Pending", "UpdateSeedList", "Ongoing"));
        assert_eq!(cc.decide(Mode::Stuck, true), Decision::Hold);
    }

    #[test]
    fn a_new_change_supersedes_a_pending_action() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.spec["topology"]["dc"][0]["rack"][0]["rollingRestart"] = json!(true);
        cc.step(Mode::Normal);
        cc.spec["configMapName"] = json!("cm-2");
        cc.step(Mode::Normal);
        assert_eq!(cc.state(), s("Pending", "UpdateConfigMap", "Ongoing"));
        cc.settle();
        assert_eq!(cc.rack("dc1-r1"), s("Running", "UpdateConfigMap", "Done"));
        assert_eq!(cc.rack("dc1-r2"), s("Running", "UpdateConfigMap", "Done"));
    }

    #[test]
    fn object_created_with_a_status_is_adopted() {
        let mut cc = Cc::new(two_racks());
        cc.status.phase = "Running".into();
        cc.status.seedlist = Some(vec!["s".into()]);
        let what = cc.step(Mode::Normal);
        assert!(what.starts_with("adopt"), "{what}");
        assert_eq!(cc.annotations[STATEFULSET_SEEDS_ANNOTATION], r#"["s"]"#);
        assert_eq!(cc.decide(Mode::Normal, true), Decision::Idle);
    }

    #[test]
    fn unreadable_annotations_are_rewritten() {
        let mut cc = Cc::new(two_racks());
        cc.settle();
        cc.annotations
            .insert(LAST_APPLIED_ANNOTATION.into(), "{not json".into());
        let what = cc.step(Mode::Normal);
        assert!(what.starts_with("adopt"), "{what}");
        assert_eq!(cc.decide(Mode::Normal, true), Decision::Idle);
    }

    #[test]
    fn odd_spec_is_an_error() {
        let cc = Cc::new(json!({"topology": "x"}));
        let observed = Observed {
            name: "cc",
            namespace: "ns",
            uid: "u",
            spec: &cc.spec,
            status: ClusterStatus::default(),
            annotations: &cc.annotations,
        };
        let knobs = Knobs {
            mode: Mode::Normal,
            due: true,
            now: NOW.into(),
        };
        assert!(decide(&observed, &knobs).is_err());
    }
}
