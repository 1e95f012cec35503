//! Cleaning up what we own at sites: sites that left `spec.override`, and every site when a
//! MultiCasskop is deleted. Nothing is ever deleted silently: with `deleteCassandraCluster`
//! unset or false, CassandraClusters are left running; with true, a leaving site is first
//! scaled to zero (CassKop decommissions its nodes) and only then deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use crate::api::{MultiCasskop, SiteStatus, StatusView};
use crate::controller::Context;
use crate::controller::error::Error;
use crate::controller::site_io;
use crate::controller::status::{self, EventKind};
use crate::core::aggregate::{SiteOutcome, SiteState};
use crate::core::federation::Federation;
use crate::core::readiness::{SiteReadiness, site_readiness};
use crate::labels::{ABANDON_SITES_ANNOTATION, SITE_LABEL};
use crate::sites::SiteHandle;
use crate::sites::watch::owner_of;

/// How often a deletion blocked by an unreachable site looks again (besides site events).
const BLOCKED_RETRY: Duration = Duration::from_secs(30);

/// Our CassandraClusters at a site that belong to `mc`, from the watch store.
fn owned_at(site: &SiteHandle, mc: &MultiCasskop) -> Vec<DynamicObject> {
    let me = (mc.name_any(), mc.namespace().unwrap_or_default());
    site.store()
        .map(|store| {
            store
                .state()
                .iter()
                .filter(|o| {
                    owner_of(o).is_some_and(|r| {
                        r.name == me.0 && r.namespace.as_deref() == Some(me.1.as_str())
                    })
                })
                .map(|o| (**o).clone())
                .collect()
        })
        .unwrap_or_default()
}

fn status_view(object: &DynamicObject) -> StatusView {
    object
        .data
        .get("status")
        .cloned()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default()
}

/// Sites given up by the operator through the abandon annotation.
pub fn abandoned_sites(mc: &MultiCasskop) -> BTreeSet<String> {
    mc.annotations()
        .get(ABANDON_SITES_ANNOTATION)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Handles CassandraClusters of ours at sites no longer in `spec.override`.
pub async fn leavers(
    mc: &MultiCasskop,
    ctx: &Context,
    _namespace: &str,
    federation: &Federation,
    previous: &BTreeMap<String, SiteStatus>,
) -> Vec<(SiteStatus, SiteOutcome, Option<Duration>)> {
    let in_ring: BTreeSet<&str> = federation.sites.iter().map(|s| s.site.as_str()).collect();
    let delete = mc.spec.delete_cassandra_cluster == Some(true);
    let mut out = Vec::new();
    for handle in ctx.sites.all() {
        if in_ring.contains(handle.name.as_str()) {
            continue;
        }
        for object in owned_at(&handle, mc) {
            if object
                .labels()
                .get(SITE_LABEL)
                .is_some_and(|s| s != &handle.name)
            {
                continue;
            }
            let prev = previous.get(&handle.name);
            out.push(leaver(mc, ctx, &handle, &object, prev, delete).await);
        }
    }
    out
}

async fn leaver(
    mc: &MultiCasskop,
    ctx: &Context,
    site: &SiteHandle,
    object: &DynamicObject,
    prev: Option<&SiteStatus>,
    delete: bool,
) -> (SiteStatus, SiteOutcome, Option<Duration>) {
    let (ns, name) = (object.namespace().unwrap_or_default(), object.name_any());
    let view = status_view(object);
    let mut status = SiteStatus {
        site: site.name.clone(),
        namespace: ns.clone(),
        name: name.clone(),
        reachable: site.health().reachable,
        phase: view.phase.clone(),
        last_cluster_action: view.last_cluster_action.clone(),
        last_cluster_action_status: view.last_cluster_action_status.clone(),
        seedlist: view.seedlist.clone().unwrap_or_default(),
        awaiting_resource_version: prev.and_then(|p| p.awaiting_resource_version.clone()),
        ..Default::default()
    };
    let mut delay = None;
    let (state, message) = if !delete {
        (SiteState::Orphaned, "left spec.override; its CassandraCluster is left running, unmanaged (deleteCassandraCluster is not true)".to_string())
    } else if object.meta().deletion_timestamp.is_some() {
        (
            SiteState::Deleting,
            "deleting; waiting for CassKop to finish".to_string(),
        )
    } else if !site_io::scaled_to_zero(object) {
        match site_io::scale_to_zero(site, object).await {
            Ok(stored) => {
                status.awaiting_resource_version = stored.resource_version();
                ctx.remember_write(&site.name, stored);
                let note = format!(
                    "site {} left spec.override: scaling its DCs to 0 nodes so CassKop decommissions them before deletion",
                    site.name
                );
                info!(multicasskop = %mc.name_any(), site = %site.name, "decommissioning");
                status::event(ctx, mc, EventKind::Normal, "Decommissioning", note.clone()).await;
                (SiteState::Decommissioning, note)
            }
            Err(e) => {
                delay = Some(
                    ctx.site_failures
                        .fail(&format!("{}@{}", mc.name_any(), site.name)),
                );
                (
                    SiteState::Decommissioning,
                    format!("cannot scale to zero: {e}"),
                )
            }
        }
    } else {
        match site_readiness(
            &object.resource_version().unwrap_or_default(),
            &view,
            status.awaiting_resource_version.as_deref(),
            false,
        ) {
            SiteReadiness::Ready => match site_io::delete(site, &ns, &name).await {
                Ok(()) => {
                    let note = format!(
                        "site {} decommissioned; deleted CassandraCluster {ns}/{name}",
                        site.name
                    );
                    info!(multicasskop = %mc.name_any(), site = %site.name, "deleted leaving site");
                    status::event(ctx, mc, EventKind::Normal, "Deleted", note.clone()).await;
                    (SiteState::Deleting, note)
                }
                Err(e) => {
                    delay = Some(ctx.site_failures.fail(&format!(
                        "{}@{}",
                        mc.name_any(),
                        site.name
                    )));
                    (SiteState::Decommissioning, format!("cannot delete: {e}"))
                }
            },
            other => (
                SiteState::Decommissioning,
                format!(
                    "waiting for the decommission: {}",
                    other.describe(&site.name)
                ),
            ),
        }
    };
    status.state = state.as_str().into();
    status.message = Some(message.clone());
    (
        status,
        SiteOutcome {
            site: site.name.clone(),
            state,
            overdue: false,
            message,
        },
        delay,
    )
}

/// Deletion of a MultiCasskop: clean every site up, then release it.
pub async fn finalize(mc: &MultiCasskop, ctx: &Context, namespace: &str) -> Result<Action, Error> {
    if !status::has_our_finalizer(mc) {
        return Ok(Action::await_change());
    }
    let delete = mc.spec.delete_cassandra_cluster == Some(true);
    let abandoned = abandoned_sites(mc);
    let mut concerned: BTreeSet<String> = mc.spec.overrides.keys().cloned().collect();
    concerned.extend(
        mc.status
            .iter()
            .flat_map(|s| s.sites.iter().map(|s| s.site.clone())),
    );
    let mut sites = Vec::new();
    let mut blocked = false;
    for site in &concerned {
        let handle = ctx.sites.get(site);
        let health = handle.as_ref().map(|h| h.health());
        let reachable = handle.as_ref().is_some_and(|h| h.client().is_ok())
            && health.as_ref().is_some_and(|h| h.synced && h.reachable);
        let give_up = abandoned.contains(site);
        let (state, message) = match (&handle, reachable) {
            (Some(handle), true) => {
                let owned = owned_at(handle, mc);
                let mut failure = None;
                for object in &owned {
                    let (ns, name) = (object.namespace().unwrap_or_default(), object.name_any());
                    let result = if delete {
                        if object.meta().deletion_timestamp.is_some() {
                            continue;
                        }
                        let r = site_io::delete(handle, &ns, &name).await;
                        if r.is_ok() {
                            status::event(
                                ctx,
                                mc,
                                EventKind::Normal,
                                "Deleted",
                                format!("deleted CassandraCluster {ns}/{name} at site {site}"),
                            )
                            .await;
                        }
                        r
                    } else {
                        site_io::release(handle, &ns, &name).await
                    };
                    if let Err(e) = result {
                        failure = Some(e.to_string());
                    }
                }
                match failure {
                    Some(e) if !give_up => {
                        blocked = true;
                        (SiteState::Deleting, e)
                    }
                    _ if delete && !owned.is_empty() && !give_up => {
                        blocked = true;
                        (
                            SiteState::Deleting,
                            format!(
                                "waiting for {} CassandraCluster(s) to disappear",
                                owned.len()
                            ),
                        )
                    }
                    _ => (SiteState::Deleting, "done".to_string()),
                }
            }
            _ if give_up => (
                SiteState::Deleting,
                "given up by annotation: anything left there stays".to_string(),
            ),
            _ if !delete => (
                SiteState::Deleting,
                "unreachable: its CassandraCluster keeps our labels (harmless); nothing else to do"
                    .to_string(),
            ),
            _ => {
                blocked = true;
                let why = health
                    .and_then(|h| h.error)
                    .unwrap_or_else(|| "not configured".into());
                (
                    SiteState::Unreachable,
                    format!(
                        "cannot confirm deletion at site {site}: {why}. To give this site up, run: kubectl annotate multicasskop {} -n {namespace} {ABANDON_SITES_ANNOTATION}={site}",
                        mc.name_any()
                    ),
                )
            }
        };
        let status = SiteStatus {
            site: site.clone(),
            state: state.as_str().into(),
            reachable,
            message: Some(message.clone()),
            ..Default::default()
        };
        sites.push((
            status,
            SiteOutcome {
                site: site.clone(),
                state,
                overdue: false,
                message,
            },
        ));
    }
    if blocked {
        warn!(multicasskop = %mc.name_any(), namespace, "deletion waits for sites");
        status::write(mc, ctx, namespace, sites, Vec::new(), &[], true).await?;
        return Ok(Action::requeue(BLOCKED_RETRY));
    }
    status::remove_finalizers(mc, ctx, namespace).await?;
    info!(multicasskop = %mc.name_any(), namespace, delete, "released after cleaning up every site");
    Ok(Action::await_change())
}
