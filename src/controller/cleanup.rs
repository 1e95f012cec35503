//! Deletion of a MultiCasskop: every CassandraCluster this ring created (recorded in its
//! status with its UID) is deleted (`deleteCassandraCluster: true`) or released (our labels
//! removed), then the finalizer goes. Nothing the ring cannot prove it created is touched, and a
//! site where nothing was ever written needs no cleanup (and no give-up annotation).

use std::collections::BTreeSet;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::{info, warn};

use crate::api::{MultiCasskop, SiteState, SiteStatus};
use crate::controller::Context;
use crate::controller::copies;
use crate::controller::error::Error;
use crate::controller::ownership::{self, Claim, Ownership};
use crate::controller::site_io;
use crate::controller::status::{self, EventKind};
use crate::core::aggregate::SiteOutcome;
use crate::labels::ABANDON_SITES_ANNOTATION;

/// How often a deletion blocked by an unreachable site looks again (besides site events).
const BLOCKED_RETRY: Duration = Duration::from_secs(30);

/// Sites given up by the operator through the abandon annotation.
pub fn abandoned_sites(mc: &MultiCasskop) -> BTreeSet<String> {
    ownership::sites_in_annotation(mc.annotations(), ABANDON_SITES_ANNOTATION)
}

/// States in which an earlier version may have written the object without recording its UID.
fn maybe_written(entry: &SiteStatus) -> bool {
    entry.uid.is_some()
        || !matches!(
            entry.state,
            SiteState::Queued | SiteState::Invalid | SiteState::Conflict | SiteState::Paused
        )
}

/// Deletion of a MultiCasskop: clean every site up, then release it.
pub async fn finalize(mc: &MultiCasskop, ctx: &Context, namespace: &str) -> Result<Action, Error> {
    if !status::has_our_finalizer(mc) {
        return Ok(Action::await_change());
    }
    let entries: Vec<SiteStatus> = mc
        .status
        .iter()
        .flat_map(|s| s.sites.iter())
        .filter(|e| maybe_written(e) && !e.name.is_empty())
        .cloned()
        .collect();
    let mut sites = Vec::new();
    let mut blocked = false;
    for entry in &entries {
        let (state, mut message, mut waits) = clean_site(mc, ctx, namespace, entry).await;
        // The Secrets and ConfigMaps copied there go with the ring's deleted CassandraClusters
        // (ours by UID only); a released CassandraCluster keeps them.
        let mut copies_left = Vec::new();
        if mc.spec.delete_cassandra_cluster == Some(true)
            && !entry.copies.is_empty()
            && !abandoned_sites(mc).contains(&entry.site)
        {
            match ctx.sites.get(&entry.site) {
                Some(handle) => {
                    let left = copies::delete_all(&handle, &entry.namespace, &entry.copies).await;
                    if !left.complete() {
                        waits = true;
                        message = format!("{message}; {}", left.problems.join("; "));
                    }
                    copies_left = left.copies;
                }
                None => {
                    waits = true;
                    copies_left = entry.copies.clone();
                }
            }
        }
        blocked |= waits;
        let status = SiteStatus {
            site: entry.site.clone(),
            namespace: entry.namespace.clone(),
            name: entry.name.clone(),
            uid: entry.uid.clone(),
            state,
            reachable: state != SiteState::Unreachable,
            message: Some(message.clone()),
            copies: copies_left,
            ..Default::default()
        };
        let outcome = SiteOutcome {
            site: entry.site.clone(),
            state,
            overdue: false,
            message,
        };
        sites.push((status, outcome));
    }
    if blocked {
        warn!(multicasskop = %mc.name_any(), namespace, "deletion waits for sites");
        status::write(mc, ctx, namespace, sites, Vec::new(), &[], true).await?;
        return Ok(Action::requeue(BLOCKED_RETRY));
    }
    status::remove_finalizers(mc, ctx, namespace).await?;
    ctx.ledger
        .forget_ring(&format!("{namespace}/{}", mc.name_any()));
    ctx.status_writes
        .forget(&format!("{namespace}/{}", mc.name_any()));
    ctx.metrics.forget_ring(namespace, &mc.name_any());
    info!(multicasskop = %mc.name_any(), namespace, "released after cleaning up every site");
    Ok(Action::await_change())
}

/// Cleans one recorded object up; returns its state, a message and whether deletion must wait.
async fn clean_site(
    mc: &MultiCasskop,
    ctx: &Context,
    namespace: &str,
    entry: &SiteStatus,
) -> (SiteState, String, bool) {
    let delete = mc.spec.delete_cassandra_cluster == Some(true);
    let give_up = abandoned_sites(mc).contains(&entry.site);
    let site = entry.site.as_str();
    let handle = ctx.sites.get(site);
    let health = handle.as_ref().map(|h| h.health());
    let reachable = handle.as_ref().is_some_and(|h| h.client().is_ok())
        && health.as_ref().is_some_and(|h| h.synced && h.reachable);
    let Some(handle) = handle.filter(|_| reachable) else {
        if give_up {
            return (
                SiteState::Deleting,
                "given up by annotation: anything left there stays".into(),
                false,
            );
        }
        if !delete {
            return (
                SiteState::Deleting,
                "unreachable: its CassandraCluster keeps our labels (harmless); nothing else to do"
                    .into(),
                false,
            );
        }
        let why = health
            .and_then(|h| h.error)
            .unwrap_or_else(|| "not configured".into());
        return (
            SiteState::Unreachable,
            format!(
                "cannot confirm deletion at site {site}: {why}. To give this site up, run: kubectl annotate multicasskop {} -n {namespace} {ABANDON_SITES_ANNOTATION}={site}",
                mc.name_any()
            ),
            true,
        );
    };
    let object = handle.stored(&entry.namespace, &entry.name);
    let claim = Claim {
        ring_namespace: namespace,
        ring_name: &mc.name_any(),
        site,
        recorded_uid: entry.uid.as_deref(),
        adopt: false,
    };
    let Some(object) = object.filter(|o| ownership::ownership(&claim, Some(o)) == Ownership::Ours)
    else {
        return (
            SiteState::Deleting,
            "done: nothing of this ring is left there".into(),
            false,
        );
    };
    let (ns, name) = (entry.namespace.as_str(), entry.name.as_str());
    if !delete {
        return match site_io::release(&handle, ns, name).await {
            Ok(()) => (
                SiteState::Deleting,
                format!("released CassandraCluster {ns}/{name}: left running, unmanaged"),
                false,
            ),
            Err(e) => (SiteState::Deleting, e.to_string(), !give_up),
        };
    }
    if object.metadata.deletion_timestamp.is_none() {
        match site_io::delete(&handle, ns, name).await {
            Ok(()) => {
                let note = format!("deleted CassandraCluster {ns}/{name} at site {site}");
                status::site_event(
                    ctx,
                    mc,
                    EventKind::Normal,
                    "Deleted",
                    note,
                    Some(status::at_site(site, ns, name)),
                )
                .await;
            }
            Err(e) => return (SiteState::Deleting, e.to_string(), !give_up),
        }
    }
    (
        SiteState::Deleting,
        format!("waiting for CassandraCluster {ns}/{name} to disappear"),
        !give_up,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sites_that_may_hold_our_object_need_cleaning() {
        let entry = |state, uid: Option<&str>| SiteStatus {
            site: "a".into(),
            state,
            uid: uid.map(str::to_string),
            ..Default::default()
        };
        let cases = [
            (SiteState::Ready, None, true),
            (SiteState::Progressing, None, true),
            (SiteState::Unreachable, None, true),
            (SiteState::Queued, None, false),
            (SiteState::Invalid, None, false),
            (SiteState::Conflict, None, false),
            (SiteState::Paused, None, false),
            (SiteState::Conflict, Some("u1"), true),
        ];
        for (state, uid, want) in cases {
            assert_eq!(maybe_written(&entry(state, uid)), want, "{state:?} {uid:?}");
        }
    }
}
