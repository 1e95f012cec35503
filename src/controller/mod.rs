//! The federation controller: watches MultiCasskops in the management cluster and, through
//! triggers from every site's watch, reconciles each one whenever anything it owns changes.

pub mod backoff;
pub mod cleanup;
pub mod error;
pub mod reconcile;
pub mod site_io;
pub mod status;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, unbounded};
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tracing::{error, warn};

use crate::api::MultiCasskop;
use crate::controller::backoff::Failures;
use crate::controller::error::Error;
use crate::sites::{SiteRegistry, Trigger};

/// Name under which Events are reported.
pub const CONTROLLER_NAME: &str = "multi-casskop";

/// Shared state of the controller.
pub struct Context {
    /// Management cluster client.
    pub client: Client,
    /// The sites.
    pub sites: Arc<SiteRegistry>,
    /// Publishes Events on MultiCasskops.
    pub recorder: Recorder,
    /// Failure counts per MultiCasskop (whole-reconcile errors).
    pub failures: Failures,
    /// Failure counts per MultiCasskop and site.
    pub site_failures: Failures,
    /// The newest object each of our writes returned, per site/namespace/name, so a reconcile
    /// right after a write does not mistake a lagging watch store for drift.
    last_writes: Mutex<HashMap<(String, String, String), DynamicObject>>,
    /// Counters for metrics and benchmarks.
    pub counters: Counters,
}

/// Plain counters of what the controller did.
#[derive(Default)]
pub struct Counters {
    /// Reconciles run.
    pub reconciles: std::sync::atomic::AtomicU64,
    /// Reconciles that failed.
    pub reconcile_errors: std::sync::atomic::AtomicU64,
    /// Writes of site CassandraClusters.
    pub site_writes: std::sync::atomic::AtomicU64,
    /// Failed writes of site CassandraClusters.
    pub site_write_errors: std::sync::atomic::AtomicU64,
    /// Writes to the management cluster (status, finalizers, events).
    pub management_writes: std::sync::atomic::AtomicU64,
}

impl Context {
    /// A context for the management `client` and `sites`.
    pub fn new(client: Client, sites: Arc<SiteRegistry>, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.into(),
            instance,
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            sites,
            failures: Failures::default(),
            site_failures: Failures::default(),
            last_writes: Mutex::default(),
            counters: Counters::default(),
        }
    }

    pub(crate) fn remember_write(&self, site: &str, object: DynamicObject) {
        let key = (
            site.to_string(),
            object.namespace().unwrap_or_default(),
            object.name_any(),
        );
        if let Ok(mut map) = self.last_writes.lock() {
            map.insert(key, object);
        }
    }

    pub(crate) fn last_write(
        &self,
        site: &str,
        namespace: &str,
        name: &str,
    ) -> Option<DynamicObject> {
        let key = (site.to_string(), namespace.to_string(), name.to_string());
        self.last_writes
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
    }

    pub(crate) fn metrics_observe(&self, _name: &str, _namespace: &str, _took: Duration, ok: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.counters.reconciles.fetch_add(1, Relaxed);
        if !ok {
            self.counters.reconcile_errors.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn metrics_write(&self, _site: &str, ok: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.counters.site_writes.fetch_add(1, Relaxed);
        if !ok {
            self.counters.site_write_errors.fetch_add(1, Relaxed);
        }
    }
}

/// The newer of two versions of an object, by resourceVersion. resourceVersions are opaque in
/// general, but they are etcd revisions (integers) on every API server built on etcd; when
/// one does not parse, the watch store's copy wins.
pub fn newest(
    from_store: Option<DynamicObject>,
    from_write: Option<DynamicObject>,
) -> Option<DynamicObject> {
    let rv = |o: &DynamicObject| o.resource_version().and_then(|v| v.parse::<u64>().ok());
    match (from_store, from_write) {
        (Some(s), Some(w)) => match (rv(&s), rv(&w)) {
            (Some(a), Some(b)) if b > a => Some(w),
            _ => Some(s),
        },
        (s, _) => s,
    }
}

fn error_policy(mc: Arc<MultiCasskop>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!("{}/{}", mc.namespace().unwrap_or_default(), mc.name_any());
    let delay = ctx.failures.fail(&key);
    warn!(multicasskop = %key, error = %error, kind = error.label(), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Runs the controller until `shutdown` resolves. `namespace` limits it to one namespace.
pub async fn run(
    ctx: Arc<Context>,
    triggers: UnboundedReceiver<Trigger>,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<MultiCasskop> = match &namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let (one_tx, one_rx) = unbounded();
    let (all_tx, all_rx) = unbounded();
    tokio::spawn(async move {
        futures::pin_mut!(triggers);
        while let Some(trigger) = triggers.next().await {
            let sent = match trigger {
                Trigger::One(r) => one_tx.unbounded_send(r).is_ok(),
                Trigger::All => all_tx.unbounded_send(()).is_ok(),
            };
            if !sent {
                break;
            }
        }
    });
    Controller::new(api, watcher::Config::default())
        .reconcile_on(one_rx)
        .reconcile_all_on(all_rx)
        .graceful_shutdown_on(shutdown)
        .run(
            |mc, ctx| async move {
                let key = format!("{}/{}", mc.namespace().unwrap_or_default(), mc.name_any());
                let result = reconcile::reconcile(mc, ctx.clone()).await;
                if result.is_ok() {
                    ctx.failures.succeed(&key);
                }
                result
            },
            error_policy,
            ctx,
        )
        .for_each(|result| {
            if let Err(e) = result {
                match e {
                    kube::runtime::controller::Error::ObjectNotFound(_) => {}
                    other => error!(error = %other, "controller error"),
                }
            }
            futures::future::ready(())
        })
        .await;
}
