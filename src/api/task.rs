//! The `MultiCasskopTask` custom resource (`db.orange.com/v2`): one CassKop pod operation run
//! over the sites of a ring, site by site in rollout order (the shape of k8ssandra's K8ssandraTask).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::multicasskop::PodOperationStatus;

/// An operation CassKop runs pod by pod (its pod operation labels), run over every site of a
/// MultiCasskop one site after the other, in the ring's rollout order.
///
/// At each site, the pods of the ring's CassandraCluster are labelled
/// `operation-name=<operation>`, `operation-status=ToDo` at most `concurrency` at a time; a pod
/// that ends in `Error` is asked again up to `retries` times, then the task is `Failed` naming it.
/// A site starts only once the previous one is done and only while the ring reports it `Ready`.
#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "db.orange.com",
    version = "v2",
    kind = "MultiCasskopTask",
    plural = "multicasskoptasks",
    shortname = "mcasstask",
    namespaced,
    status = "MultiCasskopTaskStatus",
    printcolumn = r#"{"name":"Ring","type":"string","jsonPath":".spec.multiCasskop","description":"The MultiCasskop the task runs on"}"#,
    printcolumn = r#"{"name":"Operation","type":"string","jsonPath":".spec.operation","description":"CassKop pod operation"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase","description":"Pending, Running, Succeeded or Failed"}"#,
    printcolumn = r#"{"name":"Sites","type":"string","jsonPath":".status.sitesDone","description":"Sites done / sites to run"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MultiCasskopTaskSpec {
    /// Name of the MultiCasskop to run on, in the task's own namespace (a task never reaches
    /// a ring of another namespace).
    #[schemars(length(min = 1, max = 253))]
    pub multi_casskop: String,

    /// The pod operation: `cleanup`, `upgradesstables` or `rebuild` (needs `sourceDc`).
    pub operation: TaskOperation,

    /// `rebuild` only: the DC the pods stream from (`operation-argument`). Pods of that DC are
    /// not rebuilt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub source_dc: Option<String>,

    /// Only these sites (still in the ring's rollout order). Empty: every site of the ring.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 63)))]
    pub sites: Vec<String>,

    /// Pods of one site operated on at the same time, 1 to 16 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16))]
    pub concurrency: Option<u32>,

    /// How many times a pod whose operation ended in `Error` is asked again before the task is
    /// `Failed`, 0 to 10 (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub retries: Option<u32>,

    /// Seconds after the task finished (Succeeded or Failed) when it is deleted. Absent: kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 31536000))]
    pub ttl_seconds_after_finished: Option<u32>,
}

/// A CassKop pod operation a task can run.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TaskOperation {
    /// `nodetool cleanup`: drops data a node no longer owns (after a scale-up).
    #[default]
    Cleanup,
    /// `nodetool upgradesstables`: rewrites SSTables in the current format (after a major
    /// version change).
    Upgradesstables,
    /// `nodetool rebuild <sourceDc>`: streams the ring's data from `sourceDc`.
    Rebuild,
}

impl TaskOperation {
    /// The `operation-name` label value CassKop knows.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskOperation::Cleanup => "cleanup",
            TaskOperation::Upgradesstables => "upgradesstables",
            TaskOperation::Rebuild => "rebuild",
        }
    }
}

impl std::fmt::Display for TaskOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Observed progress of a task, written by multi-casskop. Everything needed to continue after
/// a restart is here.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MultiCasskopTaskStatus {
    /// `Pending` (not started), `Running`, `Succeeded` or `Failed`.
    #[serde(default)]
    pub phase: TaskPhase,
    /// When the first pod was asked (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When the task ended, Succeeded or Failed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Sites done over sites to run, e.g. `1/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites_done: Option<String>,
    /// What is happening or what went wrong, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `Complete` (True once Succeeded) and `Failed` (True once Failed), so that
    /// `kubectl wait --for=condition=Complete` works.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// One entry per site to run, in rollout order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<TaskSiteStatus>,
}

/// Phase of a task.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TaskPhase {
    /// Not started yet (waiting for the ring or its first site).
    #[default]
    Pending,
    /// Pods are being operated on.
    Running,
    /// Every pod of every site ended `Done`.
    Succeeded,
    /// A pod ended in `Error` more often than `retries` allows, or the task cannot run.
    Failed,
}

impl TaskPhase {
    /// Whether the task ended.
    pub fn finished(self) -> bool {
        matches!(self, TaskPhase::Succeeded | TaskPhase::Failed)
    }

    /// The word written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskPhase::Pending => "Pending",
            TaskPhase::Running => "Running",
            TaskPhase::Succeeded => "Succeeded",
            TaskPhase::Failed => "Failed",
        }
    }
}

/// Progress of a task at one site.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskSiteStatus {
    /// Site name.
    pub site: String,
    /// Where the site stands.
    #[serde(default)]
    pub state: TaskSiteState,
    /// Pods done over pods to operate on, e.g. `2/4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// The site's pods, fixed when the site starts, with what was asked and what CassKop reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodOperationStatus>,
}

/// State of a task at one site.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TaskSiteState {
    /// Waits for an earlier site, or for the ring to report this site Ready.
    #[default]
    Waiting,
    /// Its pods are being operated on.
    Running,
    /// Every pod ended `Done`.
    Done,
    /// A pod ended in `Error` after every retry.
    Failed,
}
