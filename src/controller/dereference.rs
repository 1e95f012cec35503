//! Dereference: what each site of a ring holds right now, read from the site's watch store
//! (no API call), with the ledger's copy of our own last write when the store lags behind it.
//! [`look_up`] reads a name at the site itself, once, before creating it: the watch sees only
//! labelled objects, and an unlabelled one of the same name must not be overwritten.

use std::sync::Arc;

use kube::api::DynamicObject;

use crate::api::StatusView;
use crate::controller::Context;
use crate::controller::ledger::SiteKey;
use crate::controller::site_io;
use crate::sites::SiteHandle;

/// What one site looks like right now.
pub(crate) struct SiteView {
    /// The site, if configured.
    pub handle: Option<Arc<SiteHandle>>,
    /// Its API server answers and its watch has listed.
    pub reachable: bool,
    /// Why it is not reachable.
    pub error: Option<String>,
    /// The CassandraCluster at the ring's namespace/name, if any.
    pub object: Option<DynamicObject>,
}

/// Reads a site's CassandraCluster `namespace/name` from its watch store.
pub(crate) async fn observe(ctx: &Context, key: &SiteKey, namespace: &str, name: &str) -> SiteView {
    let Some(handle) = ctx.sites.get(&key.site) else {
        let known = ctx.sites.names().join(", ");
        return SiteView {
            handle: None,
            reachable: false,
            error: Some(format!(
                "site {} is not configured (known sites: {known})",
                key.site
            )),
            object: None,
        };
    };
    let health = handle.health();
    let (reachable, error) = match handle.client() {
        Err(e) => (false, Some(e.to_string())),
        Ok(_) if !health.synced => (
            false,
            Some(
                health
                    .error
                    .clone()
                    .unwrap_or_else(|| "connecting: the watch has not listed the site yet".into()),
            ),
        ),
        Ok(_) => (health.reachable, health.error.clone()),
    };
    let from_store = handle.stored(namespace, name);
    let object = ctx.ledger.newest_object(key, from_store);
    ctx.metrics
        .site_reachable
        .get_or_create(&crate::metrics::SiteLabels {
            site: key.site.clone(),
        })
        .set(i64::from(reachable));
    SiteView {
        handle: Some(handle),
        reachable,
        error,
        object,
    }
}

/// Reads `namespace/name` at the site itself (not from the store).
pub(crate) async fn look_up(
    handle: &SiteHandle,
    namespace: &str,
    name: &str,
) -> Result<Option<DynamicObject>, crate::controller::error::SiteError> {
    site_io::get(handle, namespace, name).await
}

/// CassKop's status of a site's object, as far as multi-casskop reads it.
pub(crate) fn status_view(object: &DynamicObject) -> StatusView {
    object
        .data
        .get("status")
        .cloned()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_view_reads_what_casskop_wrote_and_tolerates_garbage() {
        let object = |status| -> DynamicObject {
            serde_json::from_value(json!({"apiVersion": "db.orange.com/v2", "kind": "CassandraCluster", "metadata": {"name": "c"}, "status": status})).expect("object")
        };
        let view = status_view(&object(
            json!({"phase": "Running", "lastClusterAction": "UpdateSeedList", "lastClusterActionStatus": "Ongoing", "seedlist": ["s"]}),
        ));
        assert_eq!(view.phase.as_deref(), Some("Running"));
        assert_eq!(view.last_cluster_action_status.as_deref(), Some("Ongoing"));
        assert_eq!(view.seedlist, Some(vec!["s".to_string()]));
        assert_eq!(
            status_view(&object(json!("not an object"))),
            StatusView::default()
        );
    }
}
