//! The `MultiCasskop` custom resource (`db.orange.com/v2`): one Cassandra ring over several sites.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cassandracluster::CassandraClusterView;

/// Desired state of a Cassandra ring spread over several Kubernetes clusters ("sites").
///
/// For every site named in `override`, multi-casskop writes a CassandraCluster that is `base`
/// with `override.<site>` applied as a JSON merge patch, plus one seed list shared by all sites.
#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "db.orange.com",
    version = "v2",
    kind = "MultiCasskop",
    plural = "multicasskops",
    shortname = "mcass",
    namespaced,
    status = "MultiCasskopStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.readySites","description":"Sites ready / sites in the ring"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase","description":"Overall state of the ring"}"#,
    printcolumn = r#"{"name":"Site","type":"string","jsonPath":".status.siteInProgress","description":"The site being worked on, or waiting for you"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MultiCasskopSpec {
    /// Delete the CassandraCluster at every site when this MultiCasskop is deleted, and
    /// decommission then delete a site's CassandraCluster when the site leaves `override`.
    /// Absent or false: CassandraClusters are left running, unmanaged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_cassandra_cluster: Option<bool>,

    /// The CassandraCluster common to every site (apiVersion, kind, metadata, spec, and
    /// optionally `status.seedlist`). `metadata.name` names the CassandraCluster everywhere.
    #[schemars(with = "CassandraClusterView")]
    pub base: Value,

    /// Per site, a partial CassandraCluster merged into `base` as a JSON merge patch
    /// (RFC 7386): objects merge key by key, lists are replaced whole, `null` removes a key.
    /// Only sites named here get a CassandraCluster.
    #[serde(default, rename = "override")]
    #[schemars(with = "BTreeMap<String, CassandraClusterView>", extend("maxProperties" = 32))]
    pub overrides: BTreeMap<String, Value>,

    /// How the shared seed list is made. Absent: computed from every site's topology.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<SeedPolicy>,

    /// In which order and how sites are created and changed. Absent: one site at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutPolicy>,

    /// How a site joins or leaves a ring that already holds data: which keyspaces the
    /// replication statements name, and how the new DC is rebuilt. multi-casskop runs no CQL:
    /// it shows the statements to run and waits for the acknowledgement annotations
    /// `multicasskop.db.orange.com/replication-added` (join) and
    /// `multicasskop.db.orange.com/replication-dropped` (removal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationPolicy>,
}

/// Replication of the ring's keyspaces when sites join or leave a ring that is already Ready.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationPolicy {
    /// User keyspaces that must replicate to every DC, besides `system_auth`,
    /// `system_distributed` and `system_traces` (always named). At most 64 names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 64),
        inner(length(min = 1, max = 48), regex(pattern = r"^[A-Za-z0-9_]+$"))
    )]
    pub keyspaces: Vec<String>,

    /// Replication factor written for each DC in the statements, 1 to 9. Absent: 3, or the
    /// DC's node count when it has fewer nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 9))]
    pub replication_factor: Option<u8>,

    /// How a joining site's DCs are filled with the ring's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<RebuildPolicy>,
}

/// Rebuild of a joining site's DCs, through CassKop's `rebuild` pod operation.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RebuildPolicy {
    /// `false`: a joining site needs no rebuild (an empty DC is fine, e.g. a ring without
    /// data yet); it is Ready once the replication is acknowledged. Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,

    /// DC the new DC streams from (`operation-argument` of the `rebuild` pod operation).
    /// Absent: the first DC of the first site in rollout order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub source_dc: Option<String>,

    /// Pods rebuilt at the same time, 1 to 16 (default 1; CassKop advises at most 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16))]
    pub max_concurrent: Option<u32>,

    /// How many times a pod whose rebuild ended in `Error` is asked again before the site
    /// is `Failed`, 0 to 10 (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub retries: Option<u32>,
}

/// How the seed list shared by every site is made.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SeedPolicy {
    /// A fixed seed list used as is at every site instead of computed seeds, 1 to 64 DNS names.
    /// (`base.status.seedlist`, as written for the Go Multi-CassKop, is read the same way.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 253)))]
    pub manual: Option<Vec<String>>,

    /// DNS domain under which each site's pods resolve from the other sites, by site name.
    /// Used when the site has no external-dns hostname annotation in `spec.service.annotations`.
    /// Without either, seeds use the cluster-local `<cluster>.<namespace>` and may not resolve
    /// across sites.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32))]
    pub domains: BTreeMap<String, String>,

    /// Seeds per datacenter, 1 to 3 (default 3, CassKop's rule). `perDC` is read too by
    /// `multi-casskop render`; the API server only knows `perDc`.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "perDC")]
    #[schemars(range(min = 1, max = 3))]
    pub per_dc: Option<u8>,
}

/// How changes reach the sites.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPolicy {
    /// `Sequential` (default): one site at a time, each ready before the next is touched.
    /// `Canary`: the first site alone; once it is ready, the others `maxConcurrentSites` at a
    /// time. `Parallel`: every site at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RolloutStrategy>,

    /// With `Canary`, how many sites after the first may change at once (default: all of
    /// them). Every site still has to be ready before it counts as done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32))]
    pub max_concurrent_sites: Option<u32>,

    /// Order of the sites for creation and changes. Sites not listed follow, by name.
    /// Absent: the controller's configured site order (local site first, as the Go
    /// Multi-CassKop did), or by name when that is unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = 63)))]
    pub order: Vec<String>,

    /// Sites left untouched: no create, change or seed update is written there; they are
    /// skipped in the order and reported as `Paused`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = 63)))]
    pub paused: Vec<String>,

    /// How long a site may take to become ready before the MultiCasskop reports `Degraded`
    /// (the rollout keeps waiting). Default 600, at most 604800 (a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800))]
    pub progress_deadline_seconds: Option<u32>,
}

/// Rollout strategy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RolloutStrategy {
    /// One site at a time, in order; the next waits until the previous is ready.
    #[default]
    Sequential,
    /// All sites at once.
    Parallel,
    /// The first site alone, then the others `maxConcurrentSites` at a time.
    Canary,
}

/// Observed state of the ring, written by multi-casskop.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MultiCasskopStatus {
    /// The `metadata.generation` whose spec is rolled out to every site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One word for the whole ring: `Progressing`, `Ready`, `Degraded`, `Invalid` or `Deleting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Ready sites over sites in the ring, e.g. `2/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_sites: Option<String>,
    /// The first site, in rollout order, that is being worked on or waits for the user
    /// (progressing, blocked, failed, joining, leaving); absent when none is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_in_progress: Option<String>,
    /// `Ready`, `Progressing` and `Degraded`, in the standard condition shape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The seed list computed for (or given to) the whole ring.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seedlist: Vec<String>,
    /// One entry per site, in rollout order; sites that left `override` follow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteStatus>,
}

/// State of one site.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SiteStatus {
    /// Site name (key of `spec.override`).
    pub site: String,
    /// Namespace of the CassandraCluster at the site.
    #[serde(default)]
    pub namespace: String,
    /// Name of the CassandraCluster at the site.
    #[serde(default)]
    pub name: String,
    /// Where the site stands.
    #[serde(default)]
    pub state: SiteState,
    /// UID of the CassandraCluster this ring created (or adopted) at the site: the proof of
    /// ownership. Nothing is overwritten, scaled down or deleted without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Whether the site's API server answered the last request.
    #[serde(default)]
    pub reachable: bool,
    /// CassKop's `status.phase` at the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// CassKop's `status.lastClusterAction` at the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cluster_action: Option<String>,
    /// CassKop's `status.lastClusterActionStatus` at the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cluster_action_status: Option<String>,
    /// The seed list the site's CassandraCluster holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seedlist: Vec<String>,
    /// multi-casskop's last write at the site and what CassKop must show before the site
    /// counts as ready for it (kept here so a restarted or new leader knows it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_write: Option<WriteRecord>,
    /// Digest of the spec CassKop refused (it wrote its previous spec back with
    /// `lastClusterAction: CorrectCRDConfig`); that spec is not written again until the
    /// MultiCasskop asks for a different one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_spec: Option<String>,
    /// When the site last started moving towards a new spec (RFC 3339); used for the progress deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progressing_since: Option<String>,
    /// What is happening or what went wrong, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Joining or leaving a ring that holds data: the replication statements to run and the
    /// rebuild's progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership: Option<MembershipStatus>,
    /// The site's Cassandra nodes as CassKop last reported them while the site was healthy
    /// (`status.cassandraNodeStatus`): what is needed to remove them from the ring if the
    /// site is lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeRecord>,
}

/// A site joining or leaving a ring that already holds data.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MembershipStatus {
    /// `Join` or `Leave`.
    pub change: MembershipChange,
    /// The CQL statements to run (once, at any node) before acknowledging with the
    /// annotation named in `acknowledgeWith`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<String>,
    /// The command that acknowledges the statements were run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge_with: Option<String>,
    /// The acknowledgement was seen.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub acknowledged: bool,
    /// Rebuild of the joining DCs, pod by pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<RebuildStatus>,
}

/// Whether a site joins or leaves.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MembershipChange {
    /// The site joins a ring that was Ready without it.
    #[default]
    Join,
    /// The site leaves the ring (`deleteCassandraCluster: true`).
    Leave,
}

/// Progress of a joining site's rebuild.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RebuildStatus {
    /// DC the data streams from.
    pub source_dc: String,
    /// Pods rebuilt.
    pub done: u32,
    /// Pods to rebuild.
    pub total: u32,
    /// One entry per pod asked to rebuild.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodOperationStatus>,
}

/// One pod's pod operation as multi-casskop asked for it and CassKop reported it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodOperationStatus {
    /// Pod name.
    pub pod: String,
    /// The pod's `operation-status` label: `ToDo`, `Ongoing`, `Done` or `Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// How many times the operation was asked for.
    #[serde(default)]
    pub attempts: u32,
}

/// One Cassandra node of a site, from CassKop's `status.cassandraNodeStatus`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NodeRecord {
    /// Pod name.
    pub pod: String,
    /// The node's IP address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// Cassandra's host ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_id: String,
    /// Removed from the ring (by a `remove` pod operation at a surviving site) after the site
    /// was lost.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    /// How many times a `remove` of this node was asked at a surviving site (the site was lost).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One write of multi-casskop at a site, as the API server answered it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WriteRecord {
    /// resourceVersion the write produced.
    pub resource_version: String,
    /// `metadata.generation` after the write; CassKop's last-applied annotation must record
    /// at least this generation before its status can describe our spec.
    pub generation: i64,
    /// What the write changed: `Spec` (CassKop must act on a new generation), `Status` (the
    /// seed list through `/status`: CassKop must rewrite its annotation after it), both
    /// (`SpecAndStatus`), or `Metadata` (labels only: nothing for CassKop to do).
    pub kind: WriteKind,
    /// Digest of CassKop's last-applied annotation as the write returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_digest: Option<String>,
    /// Digest of the spec and seed list written.
    #[serde(default)]
    pub spec_digest: String,
    /// The site was seen ready for this write. While the object keeps this generation its
    /// status needs no further proof of being current (a restarted controller does not make a
    /// Ready ring wait again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmed: bool,
}

/// What one of our writes changed, so readiness knows what CassKop must show for it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WriteKind {
    /// A new generation (spec, or status on a CRD without a status subresource).
    #[default]
    Spec,
    /// Only `/status` (the seed list on cscetbon's CRD); the generation did not move.
    Status,
    /// A new generation and then `/status` (spec and seed list on cscetbon's CRD).
    SpecAndStatus,
    /// Only metadata (labels); CassKop has nothing to act on.
    Metadata,
}

/// State of one site, as shown in `status.sites[].state`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SiteState {
    /// Waits for an earlier site.
    #[default]
    Queued,
    /// Being created or changed.
    Progressing,
    /// Holds our spec and CassKop reports it done.
    Ready,
    /// Skipped on request (`spec.rollout.paused`).
    Paused,
    /// Its API server does not answer.
    Unreachable,
    /// Its API server refused our object.
    Invalid,
    /// CassKop cannot act on the change yet (`ToDo`) or refused it (`CorrectCRDConfig`).
    Blocked,
    /// CassKop reports an error.
    Failed,
    /// A CassandraCluster this ring did not create holds the name at the site.
    Conflict,
    /// Left `spec.override`; its CassandraCluster is left running, unmanaged.
    Orphaned,
    /// Left `spec.override`; its DCs are being scaled to zero before deletion.
    Decommissioning,
    /// Its CassandraCluster is being deleted.
    Deleting,
    /// Joins a ring that was Ready without it: its DCs are being created.
    Joining,
    /// Waits for the user to run the replication statements in `membership` and acknowledge.
    AwaitingReplication,
    /// Its DCs stream the ring's data (`rebuild` pod operation), pod by pod.
    Rebuilding,
    /// Lost: its nodes are being removed from the ring from a surviving site.
    RemovingNodes,
    /// A word this version does not know (written by another version).
    #[serde(other)]
    Unknown,
}

impl SiteState {
    /// The word written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteState::Queued => "Queued",
            SiteState::Progressing => "Progressing",
            SiteState::Ready => "Ready",
            SiteState::Paused => "Paused",
            SiteState::Unreachable => "Unreachable",
            SiteState::Invalid => "Invalid",
            SiteState::Blocked => "Blocked",
            SiteState::Failed => "Failed",
            SiteState::Conflict => "Conflict",
            SiteState::Orphaned => "Orphaned",
            SiteState::Decommissioning => "Decommissioning",
            SiteState::Deleting => "Deleting",
            SiteState::Joining => "Joining",
            SiteState::AwaitingReplication => "AwaitingReplication",
            SiteState::Rebuilding => "Rebuilding",
            SiteState::RemovingNodes => "RemovingNodes",
            SiteState::Unknown => "Unknown",
        }
    }
}

impl PartialEq<&str> for SiteState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for SiteState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
