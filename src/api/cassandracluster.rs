//! The parts of CassKop's `CassandraCluster` that multi-casskop reads, as typed views.
//!
//! `spec.base` and `spec.override.<site>` are stored as free JSON so that every CassKop field
//! passes through untouched; these views give the CRD schema its documentation and let the core
//! read the merged result. Unknown fields are ignored here and preserved in the JSON.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// apiVersion written on every site's CassandraCluster when the base does not name one.
pub const CASSANDRA_CLUSTER_API_VERSION: &str = "db.orange.com/v2";
/// Kind of CassKop's resource.
pub const CASSANDRA_CLUSTER_KIND: &str = "CassandraCluster";
/// Plural resource name of CassKop's resource.
pub const CASSANDRA_CLUSTER_PLURAL: &str = "cassandraclusters";
/// The external-dns annotation whose hostname becomes the seed domain of a site.
pub const EXTERNAL_DNS_HOSTNAME_ANNOTATION: &str = "external-dns.alpha.kubernetes.io/hostname";

/// A CassandraCluster (CassKop, `db.orange.com/v2`), whole in `spec.base`, partial in
/// `spec.override.<site>`. Every CassKop field is accepted and passed on; the fields listed
/// here are the ones multi-casskop reads.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct CassandraClusterView {
    /// API version of the CassandraCluster; `db.orange.com/v2` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Always `CassandraCluster`; filled in when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name, namespace, labels and annotations of the CassandraCluster written at each site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataView>,
    /// CassKop's CassandraCluster spec. Overrides merge into the base key by key; lists
    /// (such as `topology.dc`) are replaced whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<SpecView>,
    /// Only `seedlist` is read: a hand-written seed list, as the Go Multi-CassKop required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusView>,
}

/// Metadata of the CassandraCluster written at each site. Other metadata fields are ignored.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetadataView {
    /// Name of the CassandraCluster at every site (base only; it names the pods and seeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub name: Option<String>,
    /// Namespace at the site: the override's, else the base's, else the MultiCasskop's. Only
    /// the MultiCasskop's own namespace, unless the controller's settings allow another
    /// (`tenancy.allowedNamespaces`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
    /// Labels copied onto the CassandraCluster (multi-casskop adds its own ownership labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations copied onto the CassandraCluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The CassandraCluster spec fields that multi-casskop reads; all others pass through.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct SpecView {
    /// Cassandra nodes per rack, for every DC that does not set its own `nodesPerRacks`
    /// (at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000))]
    pub nodes_per_racks: Option<i32>,
    /// Datacenters and racks run at this site. Each site's DCs must have names unique in the ring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<TopologyView>,
    /// Headless service settings; `annotations` may carry the external-dns hostname that
    /// makes the site's pods resolvable from the other sites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceView>,
    /// One-shot trigger that CassKop resets; multi-casskop never propagates it (see README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock_next_operation: Option<bool>,
    /// Must stay false: multi-casskop owns the seed list of every site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_update_seed_list: Option<bool>,
    /// At most this many pods of a rack may be down at once (CassKop turns 0 into 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pod_unavailable: Option<i32>,
}

/// `spec.topology`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct TopologyView {
    /// Datacenters of this site (at most 16). Without any, CassKop creates `dc1` with `rack1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub dc: Option<Vec<DcView>>,
}

/// One datacenter (`spec.topology.dc[]`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct DcView {
    /// DC name, unique across all sites; no `-` (CassKop's rule `^[^-]+$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub name: Option<String>,
    /// Nodes per rack in this DC; overrides `spec.nodesPerRacks`. 0 scales the DC down.
    /// At most 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000))]
    pub nodes_per_racks: Option<i32>,
    /// Racks of this DC (at most 16). Without any, CassKop uses one rack named `rack1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub rack: Option<Vec<RackView>>,
}

/// One rack (`spec.topology.dc[].rack[]`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct RackView {
    /// Rack name, no `-` (CassKop's rule `^[^-]+$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub name: Option<String>,
    /// One-shot trigger that CassKop resets; multi-casskop never propagates it (see README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_restart: Option<bool>,
}

/// `spec.service`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ServiceView {
    /// Annotations of the headless service, e.g.
    /// `external-dns.alpha.kubernetes.io/hostname: my.zone.example.` (gives the seed domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The CassandraCluster status fields that multi-casskop reads or writes.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct StatusView {
    /// Seed list. In `spec.base` (as written for the Go Multi-CassKop) it is a manual seed list
    /// used as is; prefer `spec.seeds.manual`, or leave both out to have seeds computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seedlist: Option<Vec<String>>,
    /// CassKop's phase: `Initializing`, `Running` or `Pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Name of the last cluster-wide action (`Initializing`, `UpdateDockerImage`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cluster_action: Option<String>,
    /// Status of that action (`Ongoing`, `Done`, `ToDo`, `Error`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cluster_action_status: Option<String>,
}
