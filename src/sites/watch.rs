//! Per site, a watch of the CassandraClusters we own (by label) that keeps a reflector store
//! and turns every change into a trigger for the owning MultiCasskop. Each site's watch has
//! its own backoff, so a site that is down only delays itself.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::channel::mpsc::UnboundedSender;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::api::MultiCasskop;
use crate::labels::{OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL};
use crate::sites::registry::{Health, Trigger, set_health};

/// The MultiCasskop that owns a CassandraCluster, from its labels.
pub fn owner_of(object: &DynamicObject) -> Option<ObjectRef<MultiCasskop>> {
    let labels = object.labels();
    let name = labels.get(OWNER_NAME_LABEL)?;
    let namespace = labels.get(OWNER_NAMESPACE_LABEL)?;
    Some(ObjectRef::new(name).within(namespace))
}

/// Status fields of CassKop's that the controller never reads: per-rack and per-pod detail.
pub const UNREAD_STATUS_FIELDS: [&str; 2] = ["cassandraRackStatus", "cassandraNodeStatus"];

/// Drops from a cached CassandraCluster what the controller never reads (managedFields, per-rack
/// and per-pod status): they are most of its size on a large ring.
pub fn slim(object: &mut DynamicObject) {
    object.managed_fields_mut().clear();
    if let Some(status) = object
        .data
        .get_mut("status")
        .and_then(serde_json::Value::as_object_mut)
    {
        for field in UNREAD_STATUS_FIELDS {
            status.remove(field);
        }
    }
}

/// Starts the watch of `site`; returns its store and task.
pub fn spawn(
    site: &str,
    client: Client,
    namespace: Option<&str>,
    resource: ApiResource,
    health: Arc<Mutex<Health>>,
    triggers: UnboundedSender<Trigger>,
) -> (Store<DynamicObject>, JoinHandle<()>) {
    let writer = reflector::store::Writer::new(resource.clone());
    let store = writer.as_reader();
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client, ns, &resource),
        None => Api::all_with(client, &resource),
    };
    // Only what we own: objects carrying our owner label.
    let config = watcher::Config::default().labels(OWNER_NAME_LABEL);
    let site = site.to_string();
    let task = tokio::spawn(async move {
        let stream = watcher(api, config)
            .default_backoff()
            .modify(slim)
            .reflect(writer);
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(
                    watcher::Event::Apply(obj)
                    | watcher::Event::Delete(obj)
                    | watcher::Event::InitApply(obj),
                ) => {
                    set_health(&health, &triggers, true, None);
                    if let Some(owner) = owner_of(&obj) {
                        debug!(site, object = %obj.name_any(), owner = %owner, "CassandraCluster changed");
                        let _ = triggers.unbounded_send(Trigger::One(owner));
                    }
                }
                Ok(watcher::Event::Init) => set_health(&health, &triggers, true, None),
                Ok(watcher::Event::InitDone) => {
                    if let Ok(mut h) = health.lock() {
                        h.synced = true;
                    }
                    set_health(&health, &triggers, true, None);
                    let _ = triggers.unbounded_send(Trigger::All);
                }
                Err(error) => {
                    warn!(site, %error, "watch of CassandraClusters failed; retrying with backoff");
                    set_health(
                        &health,
                        &triggers,
                        false,
                        Some(format!("watch of CassandraClusters failed: {error}")),
                    );
                }
            }
        }
    });
    (store, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slim_keeps_what_the_controller_reads() {
        let mut o: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
            "metadata": { "name": "c", "managedFields": [{ "manager": "x" }], "annotations": { "a": "b" } },
            "spec": { "nodesPerRacks": 1 },
            "status": { "phase": "Running", "seedlist": ["s"], "cassandraRackStatus": { "dc1-rack1": {} }, "cassandraNodeStatus": { "p": {} } }
        }))
        .expect("object");
        slim(&mut o);
        assert!(o.metadata.managed_fields.as_ref().is_none_or(Vec::is_empty));
        assert_eq!(
            o.data["status"],
            json!({ "phase": "Running", "seedlist": ["s"] })
        );
        assert_eq!(o.data["spec"], json!({ "nodesPerRacks": 1 }));
        assert_eq!(o.metadata.annotations.as_ref().map(|a| a.len()), Some(1));
    }
}
