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
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tracing::{error, warn};

use crate::api::MultiCasskop;
use crate::controller::backoff::Failures;
use crate::controller::error::Error;
use crate::metrics::Metrics;
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
    /// Per MultiCasskop and site, the resourceVersion of our last unacknowledged write and whether
    /// it changed the seed list. The same is in the MultiCasskop's status, but the watch may not
    /// have delivered that status yet when the next reconcile runs.
    awaiting: Mutex<HashMap<(String, String), (String, bool)>>,
    /// The newest object each of our writes returned, per site/namespace/name, so a reconcile
    /// right after a write does not mistake a lagging watch store for drift.
    last_writes: Mutex<HashMap<(String, String, String), DynamicObject>>,
    /// Prometheus metrics (also read by tests and benchmarks).
    pub metrics: Arc<Metrics>,
    /// The MultiCasskop watch has listed once.
    pub management_synced: std::sync::atomic::AtomicBool,
    /// This replica holds the lease (always true without leader election).
    pub leading: std::sync::atomic::AtomicBool,
}

impl Context {
    /// A context for the management `client` and `sites`.
    pub fn new(
        client: Client,
        sites: Arc<SiteRegistry>,
        instance: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
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
            awaiting: Mutex::default(),
            metrics,
            management_synced: std::sync::atomic::AtomicBool::new(false),
            leading: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Ready when the MultiCasskop watch has listed once and, on the leader, every site's watch
    /// has listed or failed (a broken site is reported, not waited for).
    pub fn readiness(&self) -> Result<(), String> {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.leading.load(Relaxed) {
            // A standby is ready to take over; reporting it unready would stall rolling updates.
            return Ok(());
        }
        if !self.management_synced.load(Relaxed) {
            return Err("the MultiCasskop watch has not listed yet".into());
        }
        let pending: Vec<String> = self
            .sites
            .all()
            .iter()
            .filter(|s| s.client().is_ok() && !s.health().synced && s.health().error.is_none())
            .map(|s| s.name.clone())
            .collect();
        if pending.is_empty() {
            Ok(())
        } else {
            Err(format!("sites still connecting: {}", pending.join(", ")))
        }
    }

    /// Records (or with `None` clears) the write a site must acknowledge.
    pub(crate) fn set_awaiting(&self, ring: &str, site: &str, awaiting: Option<(String, bool)>) {
        if let Ok(mut map) = self.awaiting.lock() {
            match awaiting {
                Some(a) => map.insert((ring.into(), site.into()), a),
                None => map.remove(&(ring.to_string(), site.to_string())),
            };
        }
    }

    /// The write a site must acknowledge, as last recorded by this process.
    pub(crate) fn awaiting(&self, ring: &str, site: &str) -> Option<(String, bool)> {
        self.awaiting
            .lock()
            .ok()
            .and_then(|m| m.get(&(ring.to_string(), site.to_string())).cloned())
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

    pub(crate) fn forget_write(&self, site: &str, namespace: &str, name: &str) {
        if let Ok(mut map) = self.last_writes.lock() {
            map.remove(&(site.to_string(), namespace.to_string(), name.to_string()));
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

    pub(crate) fn metrics_observe(&self, name: &str, namespace: &str, took: Duration, ok: bool) {
        self.metrics.reconciled(namespace, name, took, ok);
    }

    pub(crate) fn metrics_write(&self, site: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.metrics
            .site_writes
            .get_or_create(&crate::metrics::SiteResultLabels {
                site: site.into(),
                result: result.into(),
            })
            .inc();
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
///
/// MultiCasskops are read through [`GuardedMultiCasskop`](crate::api::guarded::GuardedMultiCasskop):
/// one that cannot be decoded is reported on itself ([`crate::poison`]) and skipped, and never
/// breaks the list every other ring arrives in. A deleted MultiCasskop's metric series are dropped.
pub async fn run(
    ctx: Arc<Context>,
    triggers: UnboundedReceiver<Trigger>,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    use crate::api::guarded::GuardedMultiCasskop;
    use kube::runtime::reflector::ObjectRef;
    let api: Api<GuardedMultiCasskop> = match &namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let (one_tx, one_rx) = unbounded();
    let (all_tx, all_rx) = unbounded();
    tokio::spawn(async move {
        futures::pin_mut!(triggers);
        while let Some(trigger) = triggers.next().await {
            let sent = match trigger {
                Trigger::One(r) => {
                    let mut guarded = ObjectRef::<GuardedMultiCasskop>::new(&r.name);
                    guarded.namespace = r.namespace;
                    one_tx.unbounded_send(guarded).is_ok()
                }
                Trigger::All => all_tx.unbounded_send(()).is_ok(),
            };
            if !sent {
                break;
            }
        }
    });
    // Our own reflector, so the first complete listing can mark the controller ready.
    let (reader, writer) = kube::runtime::reflector::store();
    let reported = Arc::new(crate::poison::Reported::default());
    let synced_ctx = ctx.clone();
    let forget = reported.clone();
    let counted_store = reader.clone();
    let count_ctx = ctx.clone();
    let watch = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|mc| mc.managed_fields_mut().clear())
        .inspect(move |event| match event {
            Ok(watcher::Event::InitDone) => {
                synced_ctx
                    .management_synced
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(watcher::Event::Delete(mc)) => {
                synced_ctx
                    .metrics
                    .forget_ring(&mc.namespace().unwrap_or_default(), &mc.name_any());
                forget.forget(&mc.uid().unwrap_or_default());
            }
            Ok(watcher::Event::Apply(mc)) if mc.decoded().is_some() => {
                forget.forget(&mc.uid().unwrap_or_default());
            }
            _ => {}
        })
        .reflect(writer)
        .inspect(move |_| {
            let undecodable = counted_store
                .state()
                .iter()
                .filter(|g| g.decoded().is_none())
                .count();
            count_ctx
                .metrics
                .undecodable_objects
                .set(i64::try_from(undecodable).unwrap_or(i64::MAX));
        })
        .applied_objects();
    let live = reader.clone();
    let controller = Controller::for_stream(watch, reader);
    controller
        .reconcile_on(one_rx)
        .reconcile_all_on(all_rx)
        .graceful_shutdown_on(shutdown)
        .run(
            move |guarded, ctx| {
                let reported = reported.clone();
                let live = live.clone();
                async move {
                    match &*guarded {
                        GuardedMultiCasskop::Decoded(mc) => {
                            let key =
                                format!("{}/{}", mc.namespace().unwrap_or_default(), mc.name_any());
                            let result =
                                reconcile::reconcile(Arc::new((**mc).clone()), ctx.clone()).await;
                            if result.is_ok() {
                                ctx.failures.succeed(&key);
                            }
                            // A reconcile that ends after the watch reported the deletion must
                            // not bring the ring's metric series back.
                            if live.get(&ObjectRef::from_obj(&*guarded)).is_none() {
                                ctx.metrics.forget_ring(
                                    &mc.namespace().unwrap_or_default(),
                                    &mc.name_any(),
                                );
                            }
                            result
                        }
                        GuardedMultiCasskop::Undecodable { metadata, error } => {
                            crate::poison::report(&ctx, &reported, metadata, error).await;
                            Ok(Action::await_change())
                        }
                    }
                }
            },
            |guarded, error, ctx| match &*guarded {
                GuardedMultiCasskop::Decoded(mc) => {
                    error_policy(Arc::new((**mc).clone()), error, ctx)
                }
                GuardedMultiCasskop::Undecodable { .. } => Action::await_change(),
            },
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
