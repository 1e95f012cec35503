//! Sites that left the ring: an object this ring recorded (`status.sites[]`) whose site, namespace
//! or name is no longer what the spec computes (the site left `spec.override`, or
//! `base.metadata.name` changed). Only objects proven ours (recorded UID) are touched: with
//! `deleteCassandraCluster` unset or false they are left running and reported `Orphaned`;
//! with true they are first scaled to zero (CassKop decommissions the nodes), then deleted.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::runtime::reflector::ObjectRef;
use tracing::{info, warn};

use crate::api::{MultiCasskop, SiteState, SiteStatus, WriteKind, WriteRecord};
use crate::controller::Context;
use crate::controller::copies;
use crate::controller::dereference::status_view;
use crate::controller::ledger::SiteKey;
use crate::controller::ownership::{self, Claim, Ownership};
use crate::controller::site_io;
use crate::controller::status::{self, EventKind};
use crate::core::aggregate::SiteOutcome;
use crate::core::evidence::CasskopEvidence;
use crate::core::readiness::{ACTION_CORRECT_CRD_CONFIG, Observation, SiteReadiness, acknowledged};
use crate::sites::{SiteHandle, cassandra_cluster_resource};

/// The spec digest recorded for our scale-to-zero write (a refusal of it is remembered too).
const SCALE_TO_ZERO: &str = "scale-to-zero";

/// Handles the objects of `previous` that are no longer `desired` (site, namespace, name).
pub(crate) async fn leavers(
    mc: &MultiCasskop,
    ctx: &Context,
    desired: &BTreeSet<(String, String, String)>,
    previous: &[SiteStatus],
) -> Vec<(SiteStatus, SiteOutcome, Option<Duration>)> {
    let delete = mc.spec.delete_cassandra_cluster == Some(true);
    let namespace = mc.namespace().unwrap_or_default();
    let mut out = Vec::new();
    for prev in previous {
        let id = (prev.site.clone(), prev.namespace.clone(), prev.name.clone());
        if desired.contains(&id) || prev.name.is_empty() {
            continue;
        }
        // Its own ledger key: after a rename the same site also holds the new object.
        let key = SiteKey::new(
            &namespace,
            &mc.name_any(),
            &format!("{}:{}/{}", prev.site, prev.namespace, prev.name),
        );
        let Some(handle) = ctx.sites.get(&prev.site) else {
            continue;
        };
        let object = stored(&handle, &prev.namespace, &prev.name);
        let object = ctx.ledger.newest_object(&key, object);
        let claim = Claim {
            ring_namespace: &namespace,
            ring_name: &mc.name_any(),
            site: &prev.site,
            recorded_uid: prev.uid.as_deref(),
            adopt: false,
        };
        if ownership::ownership(&claim, object.as_ref()) != Ownership::Ours {
            // Gone, or not ours: nothing to do and nothing to report any more, once the
            // Secrets and ConfigMaps copied for it are deleted (a deleted site's only).
            if object.is_none() && delete && !prev.copies.is_empty() {
                let left = copies::delete_all(&handle, &prev.namespace, &prev.copies).await;
                for problem in &left.problems {
                    warn!(multicasskop = %mc.name_any(), site = %prev.site, %problem, "cannot delete a copy");
                }
            }
            ctx.ledger.forget(&key);
            continue;
        }
        let Some(object) = object else { continue };
        out.push(leaver(mc, ctx, &key, &handle, &object, prev, delete).await);
    }
    out
}

/// The object `namespace/name` in a site's watch store.
pub(crate) fn stored(handle: &SiteHandle, namespace: &str, name: &str) -> Option<DynamicObject> {
    let object_ref = ObjectRef::new_with(name, cassandra_cluster_resource()).within(namespace);
    handle
        .store()
        .and_then(|s| s.get(&object_ref))
        .map(|o| (*o).clone())
}

async fn leaver(
    mc: &MultiCasskop,
    ctx: &Context,
    key: &SiteKey,
    site: &SiteHandle,
    object: &DynamicObject,
    prev: &SiteStatus,
    delete: bool,
) -> (SiteStatus, SiteOutcome, Option<Duration>) {
    let view = status_view(object);
    let mut status = SiteStatus {
        site: site.name.clone(),
        namespace: prev.namespace.clone(),
        name: prev.name.clone(),
        uid: object.uid(),
        reachable: site.health().reachable,
        phase: view.phase.clone(),
        last_cluster_action: view.last_cluster_action.clone(),
        last_cluster_action_status: view.last_cluster_action_status.clone(),
        seedlist: view.seedlist.clone().unwrap_or_default(),
        last_write: ctx.ledger.awaited(key, prev.last_write.as_ref()),
        refused_spec: prev.refused_spec.clone(),
        copies: prev.copies.clone(),
        ..Default::default()
    };
    let json = serde_json::to_value(object).unwrap_or_default();
    let evidence = CasskopEvidence::from_object(&json);
    let obs = Observation {
        generation: object.metadata.generation.unwrap_or_default(),
        evidence: &evidence,
        status: &view,
        holds_our_spec: site_io::scaled_to_zero(object),
    };
    let scaled_by_us = status
        .last_write
        .as_ref()
        .is_some_and(|w| w.spec_digest == SCALE_TO_ZERO);
    if scaled_by_us
        && !obs.holds_our_spec
        && view.last_cluster_action.as_deref() == Some(ACTION_CORRECT_CRD_CONFIG)
        && acknowledged(&obs, status.last_write.as_ref())
    {
        status.refused_spec = Some(SCALE_TO_ZERO.into());
    }
    let leaving = Leaving {
        mc,
        ctx,
        key,
        site,
        prev,
    };
    let mut delay = None;
    let (state, message) = if !delete {
        (SiteState::Orphaned, "left the ring; its CassandraCluster is left running, unmanaged (deleteCassandraCluster is not true)".to_string())
    } else if object.metadata.deletion_timestamp.is_some() {
        (
            SiteState::Deleting,
            "deleting; waiting for CassKop to finish".to_string(),
        )
    } else if status.refused_spec.as_deref() == Some(SCALE_TO_ZERO) {
        (
            SiteState::Blocked,
            format!(
                "CassKop at site {} refused to scale the DC to 0 (CorrectCRDConfig): drop the DC from every keyspace's replication first, then delete the CassandraCluster at the site or add the site back",
                site.name
            ),
        )
    } else if !site_io::scaled_to_zero(object) {
        scale_down(&leaving, object, &mut status, &mut delay).await
    } else {
        let (readiness, recheck) = ctx.ledger.judge(key, status.last_write.as_ref(), &obs);
        delay = recheck;
        match readiness {
            SiteReadiness::Ready => remove(&leaving, &mut delay).await,
            other => (
                SiteState::Decommissioning,
                format!(
                    "waiting for the decommission: {}",
                    other.describe(&site.name)
                ),
            ),
        }
    };
    status.state = state;
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

/// One leaving object and where it is.
struct Leaving<'a> {
    mc: &'a MultiCasskop,
    ctx: &'a Context,
    key: &'a SiteKey,
    site: &'a SiteHandle,
    prev: &'a SiteStatus,
}

/// Scales a leaving object's DCs to zero and records the write.
async fn scale_down(
    leaving: &Leaving<'_>,
    object: &DynamicObject,
    status: &mut SiteStatus,
    delay: &mut Option<Duration>,
) -> (SiteState, String) {
    let Leaving {
        mc,
        ctx,
        key,
        site,
        prev,
    } = *leaving;
    match site_io::scale_to_zero(site, object).await {
        Ok(stored) => {
            let record = WriteRecord {
                resource_version: stored.resource_version().unwrap_or_default(),
                generation: stored.metadata.generation.unwrap_or_default(),
                kind: WriteKind::Spec,
                annotation_digest: None,
                spec_digest: SCALE_TO_ZERO.into(),
                confirmed: false,
            };
            status.last_write = Some(record.clone());
            ctx.ledger.record(key, record, stored);
            let note = format!(
                "CassandraCluster {}/{} at site {} left the ring: scaling its DCs to 0 nodes so CassKop decommissions them before deletion",
                prev.namespace, prev.name, site.name
            );
            info!(multicasskop = %key.ring, site = %site.name, "decommissioning");
            status::site_event(
                ctx,
                mc,
                EventKind::Normal,
                "Decommissioning",
                note.clone(),
                Some(status::at_site(&site.name, &prev.namespace, &prev.name)),
            )
            .await;
            (SiteState::Decommissioning, note)
        }
        Err(e) => {
            *delay = Some(ctx.site_failures.fail(&key.to_string()));
            (
                SiteState::Decommissioning,
                format!("cannot scale to zero: {e}"),
            )
        }
    }
}

/// Deletes a decommissioned object.
async fn remove(leaving: &Leaving<'_>, delay: &mut Option<Duration>) -> (SiteState, String) {
    let Leaving {
        mc,
        ctx,
        key,
        site,
        prev,
    } = *leaving;
    match site_io::delete(site, &prev.namespace, &prev.name).await {
        Ok(()) => {
            let note = format!(
                "decommissioned; deleted CassandraCluster {}/{} at site {}",
                prev.namespace, prev.name, site.name
            );
            info!(multicasskop = %key.ring, site = %site.name, "deleted leaving site");
            status::site_event(
                ctx,
                mc,
                EventKind::Normal,
                "Deleted",
                note.clone(),
                Some(status::at_site(&site.name, &prev.namespace, &prev.name)),
            )
            .await;
            (SiteState::Deleting, note)
        }
        Err(e) => {
            *delay = Some(ctx.site_failures.fail(&key.to_string()));
            (SiteState::Decommissioning, format!("cannot delete: {e}"))
        }
    }
}
