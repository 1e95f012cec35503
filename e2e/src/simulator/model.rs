//! The `CassandraCluster` status as CassKop writes it (exact JSON names), and CassKop's phase,
//! action and action-status strings. Unknown status fields (`initializingSubPhase`, ...) are kept
//! as they are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// CassKop's annotation: the JSON of the whole object it last acted on (kind, apiVersion,
/// metadata without annotations and resourceVersion, spec, `status: {}`).
pub const LAST_APPLIED_ANNOTATION: &str =
    "cassandraclusters.db.orange.com/last-applied-configuration";

/// `status.initializingSubPhase` and `cassandraRackStatus.*.initializingSubPhase` (newer CassKop).
pub const INITIALIZING_SUB_PHASE: &str = "initializingSubPhase";
/// Sub-phase until the first pod of each rack is ready.
pub const FIRST_POD_PER_RACK: &str = "FirstPodPerRack";
/// Sub-phase once the first pod of each rack is ready.
pub const NEXT_POD_PER_RACK: &str = "NextPodPerRack";

/// Cluster and rack phases.
pub mod phase {
    /// First deployment.
    pub const INITIALIZING: &str = "Initializing";
    /// Nothing in progress.
    pub const RUNNING: &str = "Running";
    /// An operation is in progress.
    pub const PENDING: &str = "Pending";
}

/// Action names (`lastClusterAction`, `cassandraLastAction.name`).
pub mod action {
    /// First deployment.
    pub const INITIALIZING: &str = "Initializing";
    /// `configMapName` or `config` changed.
    pub const UPDATE_CONFIG_MAP: &str = "UpdateConfigMap";
    /// An image changed.
    pub const UPDATE_DOCKER_IMAGE: &str = "UpdateDockerImage";
    /// `status.seedlist` differs from the StatefulSets' seeds.
    pub const UPDATE_SEED_LIST: &str = "UpdateSeedList";
    /// A rack's `rollingRestart` flag was set.
    pub const ROLLING_RESTART: &str = "RollingRestart";
    /// Resources changed.
    pub const UPDATE_RESOURCES: &str = "UpdateResources";
    /// Any other spec change.
    pub const UPDATE_STATEFUL_SET: &str = "UpdateStatefulSet";
    /// Nodes added.
    pub const SCALE_UP: &str = "ScaleUp";
    /// Nodes removed.
    pub const SCALE_DOWN: &str = "ScaleDown";
    /// A DC was removed from the topology.
    pub const DELETE_DC: &str = "ActionDeleteDC";
    /// A rack was removed from a DC.
    pub const DELETE_RACK: &str = "ActionDeleteRack";
    /// CassKop refused a spec change and wrote the previous values back.
    pub const CORRECT_CRD_CONFIG: &str = "CorrectCRDConfig";
}

/// Action statuses (`lastClusterActionStatus`, `cassandraLastAction.status`).
pub mod action_status {
    /// In progress.
    pub const ONGOING: &str = "Ongoing";
    /// Finished.
    pub const DONE: &str = "Done";
    /// Scheduled.
    pub const TODO: &str = "ToDo";
    /// Seed-list change waiting for every rack.
    pub const CONFIGURING: &str = "Configuring";
    /// Between Ongoing and Done.
    pub const FINALIZING: &str = "Finalizing";
    /// Failed.
    pub const ERROR: &str = "Error";

    /// Whether an action in this status still has to move.
    pub fn is_pending(status: &str) -> bool {
        matches!(status, ONGOING | TODO | CONFIGURING | FINALIZING)
    }
}

/// `status` of a `CassandraCluster`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// `Initializing`, `Running` or `Pending`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
    /// Last action at cluster level.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_cluster_action: String,
    /// Its status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_cluster_action_status: String,
    /// Seeds (lowercase JSON key).
    #[serde(default, rename = "seedlist", skip_serializing_if = "Option::is_none")]
    pub seedlist: Option<Vec<String>>,
    /// Per pod name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cassandra_node_status: BTreeMap<String, NodeStatus>,
    /// Per `<dc>-<rack>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cassandra_rack_status: BTreeMap<String, RackStatus>,
    /// Fields this simulator does not manage.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One Cassandra node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// Cassandra host id.
    #[serde(default)]
    pub host_id: String,
    /// Pod IP.
    #[serde(default)]
    pub node_ip: String,
    /// Fields this simulator does not manage.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One rack (one StatefulSet).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RackStatus {
    /// Rack phase.
    #[serde(default)]
    pub phase: String,
    /// Last action on the rack.
    #[serde(default)]
    pub cassandra_last_action: LastAction,
    /// Last pod operation (the simulator runs none, so `{}`).
    #[serde(default = "empty_object")]
    pub pod_last_operation: Value,
    /// Fields this simulator does not manage.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `cassandraLastAction` of a rack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastAction {
    /// Action name.
    #[serde(default)]
    pub name: String,
    /// Action status.
    #[serde(default)]
    pub status: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339, once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Fields this simulator does not manage (`updatedNodes`, ...).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl RackStatus {
    /// A new rack as CassKop's `InitCassandraRackStatus` makes it: `Initializing`, action
    /// `Initializing`/`Ongoing` without start time, sub-phase `FirstPodPerRack`.
    pub fn initializing() -> Self {
        let mut rack = Self {
            phase: phase::INITIALIZING.into(),
            cassandra_last_action: LastAction {
                name: action::INITIALIZING.into(),
                status: action_status::ONGOING.into(),
                ..LastAction::default()
            },
            pod_last_operation: empty_object(),
            other: Map::new(),
        };
        rack.other
            .insert(INITIALIZING_SUB_PHASE.into(), FIRST_POD_PER_RACK.into());
        rack
    }
}

impl ClusterStatus {
    /// Parses `status` of an object (`null` or missing is the empty status).
    pub fn from_value(value: Option<&Value>) -> Result<Self, serde_json::Error> {
        match value {
            None | Some(Value::Null) => Ok(Self::default()),
            Some(v) => serde_json::from_value(v.clone()),
        }
    }

    /// Whether the cluster-level action still has to move.
    pub fn is_pending(&self) -> bool {
        action_status::is_pending(&self.last_cluster_action_status)
    }
}

/// The current time as RFC 3339 with second precision (the CRD's `date-time` format).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_casskop_status_and_keeps_unknown_fields() {
        let status = json!({
            "phase": "Running",
            "lastClusterAction": "Initializing",
            "lastClusterActionStatus": "Done",
            "seedlist": ["a.b.c"],
            "initializingSubPhase": "NextPodPerRack",
            "cassandraNodeStatus": {"cc-dc1-rack1-0": {"hostId": "h", "nodeIp": "10.0.0.1"}},
            "cassandraRackStatus": {"dc1-rack1": {
                "phase": "Running",
                "cassandraLastAction": {"name": "Initializing", "status": "Done",
                    "startTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-01T00:00:01Z",
                    "updatedNodes": ["cc-dc1-rack1-0"]},
                "podLastOperation": {}
            }}
        });
        let parsed = ClusterStatus::from_value(Some(&status)).unwrap();
        assert_eq!(parsed.seedlist.as_deref(), Some(&["a.b.c".to_string()][..]));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), status);
    }

    #[test]
    fn missing_status_is_empty_and_odd_status_is_an_error() {
        assert_eq!(
            ClusterStatus::from_value(None).unwrap(),
            ClusterStatus::default()
        );
        assert!(ClusterStatus::from_value(Some(&json!({"phase": 5}))).is_err());
    }

    #[test]
    fn time_is_rfc3339_seconds() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z'));
    }
}
