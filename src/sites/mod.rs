//! The sites: one Kubernetes client per site, a watch of the CassandraClusters we own there,
//! and what we know of each site's health. Sites can be added, replaced and removed while the
//! controller runs (Secret-held kubeconfigs), and one broken site never affects the others.
//!
//! - `connect`: kubeconfig text to a client, with errors that never quote a credential.
//! - `source`: [`SiteSource`], every way to reach a site, and connecting it.
//! - `registry`: the live sites ([`SiteRegistry`]); every provider feeds it.
//! - `secrets`: the provider of Secret-held sites (a watch of labelled Secrets).
//! - `watch`, `probe`, `health`: each site's watch of our CassandraClusters, its API server
//!   probe, and what both know of the site (they never import the registry).

mod cached;
pub mod connect;
mod health;
mod probe;
mod registry;
pub(crate) mod secrets;
pub mod source;
mod stall;
mod watch;

pub use cached::CachedCassandraCluster;
pub use health::{Health, Trigger};
pub use registry::{SiteHandle, SiteRegistry};
pub use source::SiteSource;
pub use stall::{ASK_PROBE_AFTER, NoAnswer, Stall};
pub use watch::slim;

use kube::core::{ApiResource, GroupVersionKind};

use crate::api::{CASSANDRA_CLUSTER_KIND, CASSANDRA_CLUSTER_PLURAL};

/// The CassandraCluster resource (`db.orange.com/v2`), for dynamic API access at sites.
pub fn cassandra_cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("db.orange.com", "v2", CASSANDRA_CLUSTER_KIND),
        CASSANDRA_CLUSTER_PLURAL,
    )
}
