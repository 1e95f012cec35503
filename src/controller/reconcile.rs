//! Reconcile of one MultiCasskop, as a pipeline:
//! dereference (read each site from its watch store) → validate and build (pure core) →
//! apply (write the sites the rollout allows) → update status (one status write, only if changed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use tracing::{info, warn};

use crate::api::{MultiCasskop, SiteStatus, StatusView};
use crate::controller::cleanup;
use crate::controller::error::{Error, SiteError, findings_message};
use crate::controller::site_io;
use crate::controller::status::{self, EventKind};
use crate::controller::{Context, newest};
use crate::core::aggregate::{SiteOutcome, SiteState};
use crate::core::federation::{Federation, FederationInput, plan_federation};
use crate::core::readiness::{SiteReadiness, site_readiness};
use crate::core::rollout::{SiteFacts, Step, plan_rollout};
use crate::core::site_object::SiteCassandraCluster;
use crate::core::sync::{SyncState, casskop_took_in, seeds_differ, sync_state};
use crate::sites::{SiteHandle, cassandra_cluster_resource};

/// What one site looks like right now.
pub(crate) struct Observed {
    pub handle: Option<Arc<SiteHandle>>,
    pub reachable: bool,
    pub error: Option<String>,
    pub object: Option<DynamicObject>,
}

/// Reads a site's CassandraCluster `namespace/name` from its watch store (no API call).
pub(crate) fn observe(ctx: &Context, site: &str, namespace: &str, name: &str) -> Observed {
    let Some(handle) = ctx.sites.get(site) else {
        let known = ctx.sites.names().join(", ");
        return Observed {
            handle: None,
            reachable: false,
            error: Some(format!(
                "site {site} is not configured (known sites: {known})"
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
    let object = handle.store().and_then(|store| {
        let key = ObjectRef::new_with(name, cassandra_cluster_resource()).within(namespace);
        store.get(&key).map(|o| (*o).clone())
    });
    let written = ctx.last_write(site, namespace, name);
    let version = |o: &DynamicObject| o.resource_version().and_then(|v| v.parse::<u64>().ok());
    let store_caught_up =
        matches!((&object, &written), (Some(s), Some(w)) if version(s) >= version(w));
    if store_caught_up {
        // The watch has delivered our write (or something newer): the copy is no longer needed.
        ctx.forget_write(site, namespace, name);
    }
    let object = newest(object, written);
    ctx.metrics
        .site_reachable
        .get_or_create(&crate::metrics::SiteLabels { site: site.into() })
        .set(i64::from(reachable));
    Observed {
        handle: Some(handle),
        reachable,
        error,
        object,
    }
}

/// Readiness of a site for what we last wrote there (see [`site_readiness`]).
fn readiness_of(
    object: &DynamicObject,
    desired: &SiteCassandraCluster,
    site: Option<&SiteStatus>,
) -> SiteReadiness {
    let awaiting = site.and_then(|s| s.awaiting_resource_version.as_deref());
    let seed_change = site.is_some_and(|s| s.awaiting_seed_change);
    let taken_in = !seed_change && casskop_took_in(&object_json(object), desired);
    site_readiness(
        &object.resource_version().unwrap_or_default(),
        &status_view(object),
        awaiting,
        taken_in,
    )
}

fn status_view(object: &DynamicObject) -> StatusView {
    object
        .data
        .get("status")
        .cloned()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default()
}

fn object_json(object: &DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// Reconciles one MultiCasskop.
pub async fn reconcile(mc: Arc<MultiCasskop>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = mc.name_any();
    let namespace = mc
        .namespace()
        .ok_or_else(|| Error::NoNamespace(name.clone()))?;
    let started = std::time::Instant::now();
    let result = if mc.meta().deletion_timestamp.is_some() {
        cleanup::finalize(&mc, &ctx, &namespace).await
    } else if status::ensure_finalizer(&mc, &ctx, &namespace).await? {
        Ok(Action::await_change())
    } else {
        reconcile_ring(&mc, &ctx, &namespace).await
    };
    ctx.metrics_observe(&name, &namespace, started.elapsed(), result.is_ok());
    result
}

async fn reconcile_ring(
    mc: &MultiCasskop,
    ctx: &Context,
    namespace: &str,
) -> Result<Action, Error> {
    let name = mc.name_any();
    let mut previous: BTreeMap<String, SiteStatus> = mc
        .status
        .iter()
        .flat_map(|s| s.sites.iter())
        .map(|s| (s.site.clone(), s.clone()))
        .collect();
    // What this process wrote last is newer than a status the watch may not have delivered yet.
    let ring_key = format!("{namespace}/{name}");
    for site in mc.spec.overrides.keys() {
        if let Some((rv, seed_change)) = ctx.awaiting(&ring_key, site) {
            let entry = previous.entry(site.clone()).or_insert_with(|| SiteStatus {
                site: site.clone(),
                ..Default::default()
            });
            entry.awaiting_resource_version = Some(rv);
            entry.awaiting_seed_change = seed_change;
        }
    }
    let known = ctx.sites.names();
    let federation = match plan_federation(FederationInput {
        name: &name,
        namespace,
        spec: &mc.spec,
        known_sites: Some(&known),
    }) {
        Ok(f) => f,
        Err(findings) => {
            let message = findings_message(&findings);
            warn!(multicasskop = %name, namespace, %message, "invalid MultiCasskop: nothing written or deleted");
            let sites: Vec<(SiteStatus, SiteOutcome)> = previous
                .values()
                .map(|s| {
                    (
                        s.clone(),
                        SiteOutcome {
                            site: s.site.clone(),
                            state: state_from_str(&s.state),
                            overdue: false,
                            message: s.message.clone().unwrap_or_default(),
                        },
                    )
                })
                .collect();
            status::write(mc, ctx, namespace, sites, Vec::new(), &findings, false).await?;
            return Ok(Action::await_change());
        }
    };
    for warning in &federation.warnings {
        info!(multicasskop = %name, namespace, %warning, "warning");
    }

    // Dereference: every site of the ring, from the watch stores.
    let observed: Vec<Observed> = federation
        .sites
        .iter()
        .map(|s| observe(ctx, &s.site, &s.namespace, &s.name))
        .collect();
    let facts: Vec<SiteFacts> = federation
        .sites
        .iter()
        .zip(&observed)
        .map(|(desired, obs)| {
            let sync = sync_state(
                obs.object.as_ref().map(object_json).as_ref(),
                desired,
                &federation.seeds,
            );
            let ready = obs.object.as_ref().is_some_and(|o| {
                readiness_of(o, desired, previous.get(&desired.site)) == SiteReadiness::Ready
            });
            SiteFacts {
                site: desired.site.clone(),
                paused: federation.paused.contains(&desired.site),
                reachable: obs.reachable,
                in_sync: sync == SyncState::InSync,
                ready,
            }
        })
        .collect();
    let steps = plan_rollout(federation.strategy, &facts);

    // Apply what the rollout allows, and describe every site.
    let now = Timestamp::now();
    let mut sites = Vec::new();
    let mut retry: Option<Duration> = None;
    let mut blocker: Option<String> = None;
    for ((desired, obs), step) in federation.sites.iter().zip(observed).zip(steps) {
        let prev = previous.get(&desired.site);
        let (site_status, outcome, delay) = site_step(
            mc,
            ctx,
            &federation,
            desired,
            obs,
            step,
            prev,
            blocker.as_deref(),
            now,
        )
        .await;
        if matches!(step, Step::Apply | Step::Wait | Step::Unreachable) && blocker.is_none() {
            blocker = Some(desired.site.clone());
        }
        retry = min_delay(retry, delay);
        sites.push((site_status, outcome));
    }
    for (site_status, outcome, delay) in
        cleanup::leavers(mc, ctx, namespace, &federation, &previous).await
    {
        retry = min_delay(retry, delay);
        sites.push((site_status, outcome));
    }

    let deadline = deadline_delay(&sites, federation.progress_deadline, now);
    let rolled_out = status::write(
        mc,
        ctx,
        namespace,
        sites,
        federation.seeds.clone(),
        &[],
        false,
    )
    .await?;
    info!(multicasskop = %name, namespace, rolled_out, "reconciled");
    Ok(match min_delay(retry, deadline) {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn site_step(
    mc: &MultiCasskop,
    ctx: &Context,
    federation: &Federation,
    desired: &SiteCassandraCluster,
    obs: Observed,
    step: Step,
    prev: Option<&SiteStatus>,
    blocker: Option<&str>,
    now: Timestamp,
) -> (SiteStatus, SiteOutcome, Option<Duration>) {
    let site = desired.site.as_str();
    let mc_key = format!("{}/{}", mc.namespace().unwrap_or_default(), mc.name_any());
    let failure_key = format!("{mc_key}@{site}");
    let mut status = SiteStatus {
        site: site.into(),
        namespace: desired.namespace.clone(),
        name: desired.name.clone(),
        reachable: obs.reachable,
        awaiting_resource_version: prev.and_then(|p| p.awaiting_resource_version.clone()),
        awaiting_seed_change: prev.is_some_and(|p| p.awaiting_seed_change),
        progressing_since: prev.and_then(|p| p.progressing_since.clone()),
        ..Default::default()
    };
    let mut object = obs.object.clone();
    let mut delay = None;
    let (state, message) = match step {
        Step::Paused => (
            SiteState::Paused,
            "paused by spec.rollout.paused: nothing is written here".to_string(),
        ),
        Step::Unreachable => (
            SiteState::Unreachable,
            obs.error.clone().unwrap_or_else(|| "no answer".into()),
        ),
        Step::Queued => (
            SiteState::Queued,
            format!(
                "waiting for site {} to be ready first",
                blocker.unwrap_or("?")
            ),
        ),
        Step::Done => {
            status.awaiting_resource_version = None;
            status.awaiting_seed_change = false;
            ctx.set_awaiting(&mc_key, site, None);
            status.progressing_since = None;
            ctx.site_failures.succeed(&failure_key);
            (SiteState::Ready, "ready".to_string())
        }
        Step::Wait => {
            let readiness = object.as_ref().map_or(SiteReadiness::AwaitingCassKop, |o| {
                readiness_of(o, desired, Some(&status))
            });
            let state = if matches!(readiness, SiteReadiness::Failed { .. }) {
                SiteState::Failed
            } else {
                SiteState::Progressing
            };
            (state, readiness.describe(site))
        }
        Step::Apply => {
            let handle = obs.handle.clone();
            let before = object.as_ref().and_then(|o| o.resource_version());
            let existed = object.is_some();
            let result = match &handle {
                Some(h) => site_io::write_site(h, desired, &federation.seeds).await,
                None => Err(SiteError::Unreachable {
                    site: site.into(),
                    message: "not configured".into(),
                }),
            };
            ctx.metrics_write(site, result.is_ok());
            match result {
                Ok(stored) => {
                    ctx.site_failures.succeed(&failure_key);
                    let after = stored.resource_version();
                    if after != before {
                        status.awaiting_resource_version = after;
                        status.awaiting_seed_change = seeds_differ(
                            object.as_ref().map(object_json).as_ref(),
                            &federation.seeds,
                        );
                        let (reason, note) = if existed {
                            (
                                "Updated",
                                format!(
                                    "updated CassandraCluster {}/{} at site {site}",
                                    desired.namespace, desired.name
                                ),
                            )
                        } else {
                            (
                                "Created",
                                format!(
                                    "created CassandraCluster {}/{} at site {site}",
                                    desired.namespace, desired.name
                                ),
                            )
                        };
                        info!(multicasskop = %mc.name_any(), site, object = %format!("{}/{}", desired.namespace, desired.name), reason, "wrote site");
                        status::event(ctx, mc, EventKind::Normal, reason, note).await;
                    }
                    ctx.remember_write(site, stored.clone());
                    object = Some(stored);
                    (
                        SiteState::Progressing,
                        format!(
                            "wrote the spec and seed list; {}",
                            SiteReadiness::AwaitingCassKop.describe(site)
                        ),
                    )
                }
                Err(error) => {
                    let d = ctx.site_failures.fail(&failure_key);
                    delay = Some(d);
                    warn!(multicasskop = %mc.name_any(), site, %error, retry_in = ?d, "write failed");
                    let state = match &error {
                        SiteError::Unreachable { .. } => SiteState::Unreachable,
                        SiteError::Rejected { .. } => SiteState::Invalid,
                        SiteError::Api { .. } => SiteState::Failed,
                    };
                    status.reachable = !matches!(error, SiteError::Unreachable { .. });
                    if prev.and_then(|p| p.message.as_deref()) != Some(error.to_string().as_str()) {
                        status::event(
                            ctx,
                            mc,
                            EventKind::Warning,
                            if state == SiteState::Invalid {
                                "Rejected"
                            } else {
                                "WriteFailed"
                            },
                            error.to_string(),
                        )
                        .await;
                    }
                    (state, error.to_string())
                }
            }
        }
    };
    if matches!(state, SiteState::Progressing | SiteState::Failed)
        && status.progressing_since.is_none()
    {
        status.progressing_since = Some(now.to_string());
    }
    if state == SiteState::Ready && prev.is_some_and(|p| p.state != "Ready") {
        status::event(
            ctx,
            mc,
            EventKind::Normal,
            "SiteReady",
            format!("site {site} is ready"),
        )
        .await;
    }
    if let Some(o) = &object {
        let s = status_view(o);
        status.phase = s.phase;
        status.last_cluster_action = s.last_cluster_action;
        status.last_cluster_action_status = s.last_cluster_action_status;
        status.seedlist = s.seedlist.unwrap_or_default();
    }
    let overdue = status
        .progressing_since
        .as_deref()
        .and_then(|s| s.parse::<Timestamp>().ok())
        .is_some_and(|since| {
            now.duration_since(since).as_secs()
                >= i64::try_from(federation.progress_deadline.as_secs()).unwrap_or(i64::MAX)
        });
    status.state = state.as_str().into();
    status.message = Some(message.clone());
    (
        status,
        SiteOutcome {
            site: site.into(),
            state,
            overdue,
            message,
        },
        delay,
    )
}

/// How long until the first progressing site passes its deadline (to report Degraded on time).
fn deadline_delay(
    sites: &[(SiteStatus, SiteOutcome)],
    deadline: Duration,
    now: Timestamp,
) -> Option<Duration> {
    sites
        .iter()
        .filter(|(_, o)| !o.overdue && matches!(o.state, SiteState::Progressing))
        .filter_map(|(s, _)| s.progressing_since.as_deref()?.parse::<Timestamp>().ok())
        .map(|since| {
            let elapsed = Duration::from_secs(
                u64::try_from(now.duration_since(since).as_secs()).unwrap_or(0),
            );
            deadline.saturating_sub(elapsed) + Duration::from_secs(1)
        })
        .min()
}

fn min_delay(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses a state word written earlier.
pub(crate) fn state_from_str(s: &str) -> SiteState {
    match s {
        "Ready" => SiteState::Ready,
        "Paused" => SiteState::Paused,
        "Unreachable" => SiteState::Unreachable,
        "Invalid" => SiteState::Invalid,
        "Failed" => SiteState::Failed,
        "Orphaned" => SiteState::Orphaned,
        "Decommissioning" => SiteState::Decommissioning,
        "Deleting" => SiteState::Deleting,
        "Queued" => SiteState::Queued,
        _ => SiteState::Progressing,
    }
}
