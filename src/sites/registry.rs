//! The live set of sites. Each entry owns a client, a watch of our CassandraClusters there
//! (a reflector store, so reconciles read sites without API calls) and the site's health.
//! Every provider of sites (the settings, the site Secrets) feeds it through
//! [`SiteRegistry::connect`], with the site's [`SiteSource`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use kube::Client;
use kube::api::DynamicObject;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::sites::connect::{ConnectError, InsecureTls};
use crate::sites::health::{Health, Trigger, set_request};
use crate::sites::source::SiteSource;
use crate::sites::stall::Stall;
use crate::sites::{CachedCassandraCluster, cassandra_cluster_resource, probe, watch};

/// One site.
pub struct SiteHandle {
    /// Site name.
    pub name: String,
    /// Where its configuration came from and a fingerprint of it (to notice rotations).
    pub source: String,
    client: Result<Client, ConnectError>,
    store: Option<Store<CachedCassandraCluster>>,
    health: Arc<Mutex<Health>>,
    stall: Arc<Stall>,
    status_subresource: Mutex<Option<bool>>,
    watch_task: Option<JoinHandle<()>>,
    probe_task: Option<JoinHandle<()>>,
    triggers: UnboundedSender<Trigger>,
}

impl Drop for SiteHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.watch_task {
            task.abort();
        }
        if let Some(task) = &self.probe_task {
            task.abort();
        }
    }
}

impl SiteHandle {
    /// The site's client, or why there is none.
    pub fn client(&self) -> Result<&Client, &ConnectError> {
        self.client.as_ref()
    }

    /// Our CassandraCluster `namespace/name` at the site as last seen by the watch.
    pub fn stored(&self, namespace: &str, name: &str) -> Option<DynamicObject> {
        let object_ref = ObjectRef::new_with(name, cassandra_cluster_resource()).within(namespace);
        self.store
            .as_ref()
            .and_then(|store| store.get(&object_ref))
            .map(|cached| cached.object())
    }

    /// Current health.
    pub fn health(&self) -> Health {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Whether requests wait on the site or give up (see [`Stall`]).
    pub fn stall(&self) -> &Stall {
        &self.stall
    }

    /// Records a successful request.
    pub fn mark_reachable(&self) {
        self.stall.answered();
        set_request(&self.health, &self.triggers, true, None);
    }

    /// Records a failed request (the site did not answer).
    pub fn mark_unreachable(&self, error: String) {
        set_request(&self.health, &self.triggers, false, Some(error));
    }

    /// Whether the site's CassandraCluster CRD has a status subresource (cscetbon's CassKop
    /// does, Orange's v2.1.0 does not), read once from API discovery.
    pub async fn has_status_subresource(&self) -> Result<bool, kube::Error> {
        if let Some(known) = self.status_subresource.lock().ok().and_then(|g| *g) {
            return Ok(known);
        }
        let client = self
            .client
            .as_ref()
            .map_err(|e| kube::Error::Service(e.to_string().into()))?;
        let resources = client.list_api_group_resources("db.orange.com/v2").await?;
        let has = resources
            .resources
            .iter()
            .any(|r| r.name == "cassandraclusters/status");
        if let Ok(mut guard) = self.status_subresource.lock() {
            *guard = Some(has);
        }
        Ok(has)
    }
}

/// The sites, in configured order.
pub struct SiteRegistry {
    /// Where every site client counts its requests.
    pub metrics: Arc<Metrics>,
    sites: RwLock<BTreeMap<String, Arc<SiteHandle>>>,
    order: RwLock<Vec<String>>,
    triggers: UnboundedSender<Trigger>,
}

impl SiteRegistry {
    /// An empty registry and the stream of triggers its sites produce.
    pub fn new(metrics: Arc<Metrics>) -> (Arc<Self>, UnboundedReceiver<Trigger>) {
        let (tx, rx) = unbounded();
        (
            Arc::new(SiteRegistry {
                metrics,
                sites: RwLock::default(),
                order: RwLock::default(),
                triggers: tx,
            }),
            rx,
        )
    }

    /// Connects the site `name` from `source` and adds or replaces it ([`Self::upsert`]). A
    /// site that cannot be connected is kept with the reason, never fatal: the rings that use
    /// it report it, the others carry on. Its client counts its requests in [`Self::metrics`].
    pub async fn connect(
        &self,
        name: &str,
        source: &SiteSource,
        namespace: Option<String>,
        management: Option<&Client>,
        tls: InsecureTls,
    ) {
        let described = source.describe();
        let client = source
            .connect(name, management, Some((&self.metrics, name)), tls)
            .await;
        match &client {
            Ok(_) => info!(site = %name, source = %described, "site connected"),
            Err(error) => {
                warn!(site = %name, source = %described, %error, "site unusable; the others carry on")
            }
        }
        self.upsert(name, described, client, namespace);
    }

    /// Adds or replaces a site. With a client, a watch of our CassandraClusters there starts at once
    /// (it retries with backoff while the site is down). Replacing aborts the old watch.
    /// `namespace` limits the site's watch to one namespace (a site whose credentials only reach
    /// that namespace); `None` watches every namespace.
    pub fn upsert(
        &self,
        name: &str,
        source: String,
        client: Result<Client, ConnectError>,
        namespace: Option<String>,
    ) {
        let health = Arc::new(Mutex::new(Health {
            reachable: client.is_ok(),
            synced: false,
            error: client.as_ref().err().map(ToString::to_string),
            watch_failing: false,
            failing_since: None,
        }));
        let stall = Arc::new(Stall::default());
        let (store, watch_task, probe_task) = match &client {
            Ok(client) => {
                let (store, task) = watch::spawn(
                    name,
                    client.clone(),
                    namespace.as_deref(),
                    cassandra_cluster_resource(),
                    health.clone(),
                    self.triggers.clone(),
                );
                let probe = probe::spawn(
                    name,
                    client.clone(),
                    health.clone(),
                    stall.clone(),
                    self.triggers.clone(),
                );
                (Some(store), Some(task), Some(probe))
            }
            Err(_) => (None, None, None),
        };
        let handle = Arc::new(SiteHandle {
            name: name.to_string(),
            source,
            client,
            store,
            health,
            stall,
            status_subresource: Mutex::new(None),
            watch_task,
            probe_task,
            triggers: self.triggers.clone(),
        });
        if let Ok(mut sites) = self.sites.write() {
            sites.insert(name.to_string(), handle);
        }
        if let Ok(mut order) = self.order.write()
            && !order.iter().any(|n| n == name)
        {
            order.push(name.to_string());
        }
        let _ = self.triggers.unbounded_send(Trigger::All);
    }

    /// Removes a site (its watch stops). MultiCasskops naming it then report it as unknown.
    pub fn remove(&self, name: &str) {
        let removed = self.sites.write().ok().and_then(|mut s| s.remove(name));
        if let Ok(mut order) = self.order.write() {
            order.retain(|n| n != name);
        }
        if removed.is_some() {
            let _ = self.triggers.unbounded_send(Trigger::All);
        }
    }

    /// One site.
    pub fn get(&self, name: &str) -> Option<Arc<SiteHandle>> {
        self.sites.read().ok().and_then(|s| s.get(name).cloned())
    }

    /// Site names in configured order.
    pub fn names(&self) -> Vec<String> {
        self.order.read().map(|o| o.clone()).unwrap_or_default()
    }

    /// Every site, in configured order.
    pub fn all(&self) -> Vec<Arc<SiteHandle>> {
        self.names().iter().filter_map(|n| self.get(n)).collect()
    }
}
