//! Per site, a probe of its API server (`GET /version` with a short deadline): a site that hangs
//! is reported unreachable within seconds even when nothing is written there, and a site that
//! comes back is marked reachable again at once, so every ring waiting on it resumes without
//! needing any event at that site. A request that waits too long on a site asks for a probe at
//! once (see [`Stall`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use kube::Client;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::sites::Stall;
use crate::sites::health::{Health, Trigger, set_request};

/// Time between probes of a reachable site.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// Time between probes of an unreachable or failing site (how soon a returning site is noticed,
/// and how soon a failure is confirmed).
pub const PROBE_INTERVAL_DOWN: Duration = Duration::from_secs(1);
/// How long a probe may take before the site counts as unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Starts probing `site`.
pub fn spawn(
    site: &str,
    client: Client,
    health: Arc<Mutex<Health>>,
    stall: Arc<Stall>,
    triggers: UnboundedSender<Trigger>,
) -> JoinHandle<()> {
    let site = site.to_string();
    tokio::spawn(async move {
        loop {
            let (was_reachable, steady) = health
                .lock()
                .map(|h| (h.reachable, h.steady()))
                .unwrap_or((false, false));
            // While a failure waits for confirmation, probe again soon.
            let wait = if steady {
                PROBE_INTERVAL
            } else {
                PROBE_INTERVAL_DOWN
            };
            // A request that has waited too long asks for a probe now.
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stall.probe_requested() => {}
            }
            let outcome = tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await;
            let failure = match outcome {
                Ok(Ok(_)) => {
                    if !was_reachable {
                        info!(site, "site answers again");
                    }
                    stall.answered();
                    set_request(&health, &triggers, true, None);
                    continue;
                }
                Ok(Err(error)) => {
                    debug!(site, %error, "probe failed");
                    format!("API server probe failed: {error}")
                }
                Err(_) => format!(
                    "API server did not answer a probe within {} s (hung?)",
                    PROBE_TIMEOUT.as_secs()
                ),
            };
            stall.probe_failed(failure.clone());
            set_request(&health, &triggers, false, Some(failure));
        }
    })
}
