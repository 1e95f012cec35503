//! Per site, a watch of the CassandraClusters we own (by label) that keeps a reflector store
//! and turns every change into a trigger for the owning MultiCasskop. Each site's watch has
//! its own backoff, so a site that is down only delays itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::api::MultiCasskop;
use crate::core::evidence::{CasskopEvidence, EVIDENCE_CACHE_ANNOTATION};
use crate::labels::{CASSKOP_LAST_APPLIED_ANNOTATION, OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL};
use crate::sites::cached::CachedCassandraCluster;
use crate::sites::health::{Health, Trigger, set_watch};

/// The MultiCasskop that owns a CassandraCluster, from its labels.
pub fn owner_of(object: &impl ResourceExt) -> Option<ObjectRef<MultiCasskop>> {
    let labels = object.labels();
    let name = labels.get(OWNER_NAME_LABEL)?;
    let namespace = labels.get(OWNER_NAMESPACE_LABEL)?;
    Some(ObjectRef::new(name).within(namespace))
}

/// Status fields of CassKop's that the controller never reads: per-rack detail.
pub const UNREAD_STATUS_FIELDS: [&str; 1] = ["cassandraRackStatus"];
/// CassKop's per-pod status: kept, condensed to each pod's `nodeIp` and `hostId` (the node
/// records a lost site's removal needs).
pub const NODE_STATUS_FIELD: &str = "cassandraNodeStatus";
/// The fields of a `cassandraNodeStatus` entry that are kept.
const NODE_STATUS_KEPT: [&str; 2] = ["nodeIp", "hostId"];

/// Drops from a cached CassandraCluster what the controller never reads (managedFields,
/// CassKop's last-applied annotation, per-rack status; per-pod status is condensed to IP and
/// host ID): they are most of its size
/// on a large ring. What readiness needs from the first two is kept, condensed, as
/// [`CasskopEvidence`] under a cache-only annotation.
pub fn slim(object: &mut DynamicObject) {
    let evidence =
        CasskopEvidence::from_object(&serde_json::to_value(&*object).unwrap_or_default());
    object.managed_fields_mut().clear();
    let annotations = object.annotations_mut();
    annotations.remove(CASSKOP_LAST_APPLIED_ANNOTATION);
    if let Ok(text) = serde_json::to_string(&evidence) {
        annotations.insert(EVIDENCE_CACHE_ANNOTATION.into(), text);
    }
    if let Some(status) = object
        .data
        .get_mut("status")
        .and_then(serde_json::Value::as_object_mut)
    {
        for field in UNREAD_STATUS_FIELDS {
            status.remove(field);
        }
        if let Some(nodes) = status
            .get_mut(NODE_STATUS_FIELD)
            .and_then(serde_json::Value::as_object_mut)
        {
            for node in nodes.values_mut() {
                if let Some(fields) = node.as_object_mut() {
                    fields.retain(|k, _| NODE_STATUS_KEPT.contains(&k.as_str()));
                }
            }
        }
    }
}

/// Turns a watch event's object into its compact stored form.
fn compact(event: watcher::Event<DynamicObject>) -> watcher::Event<CachedCassandraCluster> {
    use watcher::Event;
    match event {
        Event::Apply(o) => Event::Apply(CachedCassandraCluster::compact(o)),
        Event::Delete(o) => Event::Delete(CachedCassandraCluster::compact(o)),
        Event::InitApply(o) => Event::InitApply(CachedCassandraCluster::compact(o)),
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
    }
}

/// Watch retry delays: 200 ms doubling up to 3 s, so a site that comes back is watched again
/// within seconds (kube's default backoff grows to 30 s, too slow to resume a rollout).
#[derive(Debug, Clone, Copy)]
pub struct QuickBackoff {
    next: Duration,
}

impl QuickBackoff {
    const MIN: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(3);
}

impl Default for QuickBackoff {
    fn default() -> Self {
        Self { next: Self::MIN }
    }
}

impl Iterator for QuickBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let current = self.next;
        self.next = (current * 2).min(Self::MAX);
        Some(current)
    }
}

impl kube::runtime::utils::Backoff for QuickBackoff {
    fn reset(&mut self) {
        self.next = Self::MIN;
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
) -> (Store<CachedCassandraCluster>, JoinHandle<()>) {
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
            .backoff(QuickBackoff::default())
            .modify(slim)
            .map_ok(compact)
            .reflect(writer);
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(
                    watcher::Event::Apply(obj)
                    | watcher::Event::Delete(obj)
                    | watcher::Event::InitApply(obj),
                ) => {
                    set_watch(&health, &triggers, true, None);
                    if let Some(owner) = owner_of(&obj) {
                        debug!(site, object = %obj.name_any(), owner = %owner, "CassandraCluster changed");
                        let _ = triggers.unbounded_send(Trigger::One(owner));
                    }
                }
                // Sent before the (re)list is even requested: no news of the site. Counting it
                // as a success would reset every failing watch's count at each retry (and flap
                // the site between reachable and not).
                Ok(watcher::Event::Init) => {}
                Ok(watcher::Event::InitDone) => {
                    if let Ok(mut h) = health.lock() {
                        h.synced = true;
                    }
                    set_watch(&health, &triggers, true, None);
                    let _ = triggers.unbounded_send(Trigger::All);
                }
                Err(error) => {
                    warn!(site, %error, "watch of CassandraClusters failed; retrying with backoff");
                    set_watch(
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
        let applied = json!({"metadata": {"generation": 4}}).to_string();
        let mut o: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
            "metadata": { "name": "c", "managedFields": [{ "manager": "x" }], "annotations": { "a": "b", CASSKOP_LAST_APPLIED_ANNOTATION: applied } },
            "spec": { "nodesPerRacks": 1 },
            "status": { "phase": "Running", "seedlist": ["s"], "cassandraRackStatus": { "dc1-rack1": {} }, "cassandraNodeStatus": { "p": { "nodeIp": "10.0.0.1", "hostId": "h", "extra": 1 } } }
        }))
        .expect("object");
        slim(&mut o);
        assert!(o.metadata.managed_fields.as_ref().is_none_or(Vec::is_empty));
        assert_eq!(
            o.data["status"],
            json!({ "phase": "Running", "seedlist": ["s"], "cassandraNodeStatus": { "p": { "nodeIp": "10.0.0.1", "hostId": "h" } } })
        );
        assert_eq!(o.data["spec"], json!({ "nodesPerRacks": 1 }));
        let annotations = o.annotations();
        assert_eq!(annotations.get("a").map(String::as_str), Some("b"));
        assert!(!annotations.contains_key(CASSKOP_LAST_APPLIED_ANNOTATION));
        let kept = CasskopEvidence::from_object(&serde_json::to_value(&o).expect("json"));
        assert_eq!(
            kept.applied_generation,
            Some(4),
            "readiness evidence survives slimming"
        );
    }
}
