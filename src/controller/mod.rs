//! The federation controller: watches MultiCasskops in the management cluster and, through
//! triggers from every site's watch, reconciles each one whenever anything it owns changes.

mod apply;
pub mod backoff;
mod cleanup;
mod coalesce;
mod context;
mod copies;
mod dereference;
pub mod error;
mod joining;
mod leaving;
pub mod ledger;
mod lost_site;
mod ownership;
mod poison;
pub mod reconcile;
pub mod site_io;
mod site_report;
pub mod status;
pub mod tasks;

pub use context::{CONTROLLER_NAME, Context};

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, unbounded};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use tracing::{error, warn};

use crate::api::MultiCasskop;
use crate::controller::error::Error;
use crate::sites::Trigger;

/// Reconciles running at once. The API servers, not the controller, limit throughput; without
/// a bound, a slow or flapping site makes every ring's reconcile wait at once, each holding its
/// plans and copies (peak memory grows with the number of rings).
pub const RECONCILE_CONCURRENCY: u16 = 32;

fn error_policy(mc: Arc<MultiCasskop>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!("{}/{}", mc.namespace().unwrap_or_default(), mc.name_any());
    let delay = ctx.failures.fail(&key);
    warn!(multicasskop = %key, error = %error, kind = error.label(), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Runs the controllers (MultiCasskops, and MultiCasskopTasks: [`tasks`]) until `shutdown` resolves. `namespace` limits it to one namespace.
///
/// MultiCasskops are read through [`GuardedMultiCasskop`](crate::api::guarded::GuardedMultiCasskop):
/// one that cannot be decoded is reported on itself ([`poison`]) and skipped, and never
/// breaks the list every other ring arrives in. A deleted MultiCasskop's metric series are dropped.
pub async fn run(
    ctx: Arc<Context>,
    triggers: UnboundedReceiver<Trigger>,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    use futures::FutureExt;
    let shutdown = shutdown.shared();
    futures::join!(
        rings(ctx.clone(), triggers, namespace.clone(), shutdown.clone()),
        tasks::run(ctx, namespace, shutdown),
    );
}

/// The MultiCasskop controller.
async fn rings(
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
    let reported = Arc::new(poison::Reported::default());
    let synced_ctx = ctx.clone();
    let forget = reported.clone();
    let counted_store = reader.clone();
    let count_ctx = ctx.clone();
    let watch = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|mc| {
            // Kept in memory for every ring, never read: managedFields and kubectl's copy of
            // the spec.
            mc.managed_fields_mut().clear();
            mc.annotations_mut()
                .remove(crate::labels::KUBECTL_LAST_APPLIED_ANNOTATION);
        })
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
                synced_ctx.status_writes.forget(&format!(
                    "{}/{}",
                    mc.namespace().unwrap_or_default(),
                    mc.name_any()
                ));
                forget.forget(&mc.uid().unwrap_or_default());
            }
            Ok(watcher::Event::Apply(mc)) if mc.is_decoded() => {
                forget.forget(&mc.uid().unwrap_or_default());
            }
            _ => {}
        })
        .reflect(writer)
        .inspect(move |_| {
            let undecodable = counted_store
                .state()
                .iter()
                .filter(|g| !g.is_decoded())
                .count();
            count_ctx
                .metrics
                .undecodable_objects
                .set(i64::try_from(undecodable).unwrap_or(i64::MAX));
        })
        .applied_objects();
    let live = reader.clone();
    let controller = Controller::for_stream(watch, reader).with_config(
        kube::runtime::controller::Config::default().concurrency(RECONCILE_CONCURRENCY),
    );
    controller
        .reconcile_on(one_rx)
        .reconcile_all_on(all_rx)
        .graceful_shutdown_on(shutdown)
        .run(
            move |guarded, ctx| {
                let reported = reported.clone();
                let live = live.clone();
                async move {
                    let decoded = match &*guarded {
                        GuardedMultiCasskop::Decoded(compact) => {
                            compact.decode().map_err(|e| (&compact.metadata, e))
                        }
                        GuardedMultiCasskop::Undecodable { metadata, error } => {
                            Err((&**metadata, error.clone()))
                        }
                    };
                    match decoded {
                        Ok(mc) => {
                            let (namespace, name) =
                                (mc.namespace().unwrap_or_default(), mc.name_any());
                            let key = format!("{namespace}/{name}");
                            let result = reconcile::reconcile(Arc::new(mc), ctx.clone()).await;
                            if result.is_ok() {
                                ctx.failures.succeed(&key);
                            }
                            // A reconcile that ends after the watch reported the deletion must
                            // not bring the ring's metric series back.
                            if live.get(&ObjectRef::from_obj(&*guarded)).is_none() {
                                ctx.metrics.forget_ring(&namespace, &name);
                            }
                            result
                        }
                        Err((metadata, error)) => {
                            poison::report(&ctx, &reported, metadata, &error).await;
                            Ok(Action::await_change())
                        }
                    }
                }
            },
            |guarded, error, ctx| match guarded.decoded() {
                Some(mc) => error_policy(Arc::new(mc), error, ctx),
                None => Action::await_change(),
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
