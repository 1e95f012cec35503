//! The sites: one Kubernetes client per site, a watch of the CassandraClusters we own there,
//! and what we know of each site's health. Sites can be added, replaced and removed while the
//! controller runs (Secret-held kubeconfigs), and one broken site never affects the others.

pub mod connect;
pub mod health;
mod probe;
pub mod registry;
pub mod secrets;
pub mod source;
pub mod watch;

pub use health::Trigger;
pub use registry::{SiteHandle, SiteRegistry};
pub use source::SiteSource;

use kube::core::{ApiResource, GroupVersionKind};

use crate::api::{CASSANDRA_CLUSTER_KIND, CASSANDRA_CLUSTER_PLURAL};

/// The CassandraCluster resource (`db.orange.com/v2`), for dynamic API access at sites.
pub fn cassandra_cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("db.orange.com", "v2", CASSANDRA_CLUSTER_KIND),
        CASSANDRA_CLUSTER_PLURAL,
    )
}
