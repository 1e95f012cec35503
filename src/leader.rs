//! Leader election: with several replicas, only the holder of a Lease in the management cluster
//! reconciles. Losing the lease drops the controller at once (no reconcile outlives it); the
//! replica then waits to lead again. The Lease is acquired, renewed and released by
//! [`crate::lease`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use futures::channel::mpsc::UnboundedReceiver;
use tracing::{info, warn};

use crate::config::Settings;
use crate::controller::{self, Context};
use crate::lease::{self, LeaseParams};
use crate::sites::Trigger;

/// Field manager of the Lease.
pub const LEASE_FIELD_MANAGER: &str = "multi-casskop/leader";

/// This replica's identity: `$POD_NAME`, else host and process id.
pub fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        format!(
            "{host}-{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        )
    })
}

/// Runs the controller whenever this replica leads, until `shutdown` resolves.
pub async fn run_while_leading(
    settings: &Settings,
    ctx: Arc<Context>,
    triggers: UnboundedReceiver<Trigger>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let election = &settings.leader_election;
    let namespace = election
        .namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "default".into());
    let identity = identity();
    ctx.leading.store(false, Relaxed);
    let (mut leading, lease_task) = lease::spawn(
        ctx.client.clone(),
        LeaseParams {
            name: election.lease_name.clone(),
            namespace: namespace.clone(),
            identity: identity.clone(),
            duration: std::time::Duration::from_secs(election.lease_duration_seconds),
            field_manager: LEASE_FIELD_MANAGER.into(),
        },
    );
    let triggers = Arc::new(tokio::sync::Mutex::new(triggers));
    futures::pin_mut!(shutdown);
    loop {
        // Wait to lead.
        while !*leading.borrow_and_update() {
            tokio::select! {
                _ = &mut shutdown => { lease_task.abort(); return; }
                changed = leading.changed() => if changed.is_err() { warn!("leader election stopped"); shutdown.await; return; },
            }
        }
        info!(identity, lease = %election.lease_name, namespace, "leading: reconciling");
        ctx.leading.store(true, Relaxed);
        let mut lost = leading.clone();
        let run = {
            let ctx = ctx.clone();
            let triggers = triggers.clone();
            let watch_namespace = settings.namespace.clone();
            async move {
                let mut triggers = triggers.lock().await;
                let (forward, forwarded) = futures::channel::mpsc::unbounded();
                // Feed this term's controller from the shared trigger stream.
                let pump = async {
                    use futures::StreamExt;
                    while let Some(t) = triggers.next().await {
                        if forward.unbounded_send(t).is_err() {
                            break;
                        }
                    }
                };
                tokio::select! {
                    _ = pump => {},
                    _ = controller::run(ctx, forwarded, watch_namespace, futures::future::pending()) => {},
                }
            }
        };
        let stop = tokio::select! {
            _ = run => false,
            _ = async { while *lost.borrow_and_update() { if lost.changed().await.is_err() { break; } } } => {
                warn!(identity, "lost the lease: stopped reconciling");
                false
            }
            _ = &mut shutdown => true,
        };
        if stop {
            ctx.leading.store(false, Relaxed);
            // Closing every receiver makes the lease task release the Lease for a standby.
            drop(lost);
            drop(leading);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), lease_task).await;
            return;
        }
        ctx.leading.store(false, Relaxed);
        ctx.management_synced.store(false, Relaxed);
    }
}
