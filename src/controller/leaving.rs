//! Sites that left the ring: an object this ring recorded (`status.sites[]`) whose site, namespace
//! or name is no longer what the spec computes (the site left `spec.override`, or
//! `base.metadata.name` changed). Only objects proven ours (recorded UID) are touched: with
//! `deleteCassandraCluster` unset or false they are left running and reported `Orphaned`;
//! with true, a site of a ring that held data first waits for the user to drop its DCs from the
//! keyspaces' replication (`AwaitingReplication`, acknowledged with the `replication-dropped`
//! annotation), then is scaled to zero (CassKop decommissions the nodes), then deleted. A scale
//! CassKop refuses is `Blocked` and not written again until the user acts. A lost site
//! (unreachable, given up with the abandon annotation) has its nodes removed from a surviving
//! site instead ([`lost_site`]).

use std::collections::BTreeSet;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::DynamicObject;
use tracing::{info, warn};

use crate::api::{
    MembershipChange, MembershipStatus, MultiCasskop, SiteState, SiteStatus, WriteKind, WriteRecord,
};
use crate::controller::Context;
use crate::controller::copies;
use crate::controller::dereference::status_view;
use crate::controller::ledger::SiteKey;
use crate::controller::lost_site::{self, Survivor};
use crate::controller::ownership::{self, Claim, Ownership, sites_in_annotation};
use crate::controller::site_io;
use crate::controller::status::{self, EventKind};
use crate::core::aggregate::SiteOutcome;
use crate::core::evidence::CasskopEvidence;
use crate::core::leaving::{LeaveFacts, LeaveStep, is_scale_digest, leave_step, scale_digest};
use crate::core::lost_nodes::node_records;
use crate::core::readiness::{ACTION_CORRECT_CRD_CONFIG, Observation, SiteReadiness, acknowledged};
use crate::core::replication::{SiteDcs, acknowledge_command, statements};
use crate::labels::{ABANDON_SITES_ANNOTATION, REPLICATION_DROPPED_ANNOTATION, RETRY_ANNOTATION};
use crate::sites::SiteHandle;

/// The ring after the change, as the leaving sites need it.
pub(crate) struct RingAfter<'a> {
    /// `(site, namespace, name)` of every object the spec computes.
    pub desired: &'a BTreeSet<(String, String, String)>,
    /// The DCs of the sites that stay (for the replication statements).
    pub remaining: Vec<SiteDcs>,
    /// Sites that stay and are Ready and reachable, in rollout order (where a lost site's
    /// nodes are removed from).
    pub survivors: Vec<Survivor>,
}

/// Handles the objects of `previous` that are no longer desired (site, namespace, name).
pub(crate) async fn leavers(
    mc: &MultiCasskop,
    ctx: &Context,
    ring: &RingAfter<'_>,
    previous: &[SiteStatus],
) -> Vec<(SiteStatus, SiteOutcome, Option<Duration>)> {
    let delete = mc.spec.delete_cassandra_cluster == Some(true);
    let namespace = mc.namespace().unwrap_or_default();
    let abandoned = sites_in_annotation(mc.annotations(), ABANDON_SITES_ANNOTATION);
    let mut out = Vec::new();
    for prev in previous {
        let id = (prev.site.clone(), prev.namespace.clone(), prev.name.clone());
        if ring.desired.contains(&id) || prev.name.is_empty() {
            continue;
        }
        // Its own ledger key: after a rename the same site also holds the new object.
        let key = SiteKey::new(
            &namespace,
            &mc.name_any(),
            &format!("{}:{}/{}", prev.site, prev.namespace, prev.name),
        );
        let handle = ctx.sites.get(&prev.site);
        let reachable = handle.as_ref().is_some_and(|h| h.health().reachable);
        if !reachable && abandoned.contains(&prev.site) {
            // Lost and given up: never touched again; its nodes leave the ring from a
            // surviving site. `None`: every node is removed, the entry is dropped.
            match lost_site::remove_nodes(mc, ctx, prev, &ring.survivors).await {
                Some(entry) => out.push(entry),
                None => ctx.ledger.forget(&key),
            }
            continue;
        }
        let Some(handle) = handle else {
            continue;
        };
        let object = handle.stored(&prev.namespace, &prev.name);
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
        let leaving = Leaving {
            mc,
            ctx,
            key: &key,
            site: &handle,
            prev,
        };
        out.push(leaver(&leaving, &object, delete, &ring.remaining).await);
    }
    out
}

async fn leaver(
    leaving: &Leaving<'_>,
    object: &DynamicObject,
    delete: bool,
    remaining: &[SiteDcs],
) -> (SiteStatus, SiteOutcome, Option<Duration>) {
    let Leaving {
        mc,
        ctx,
        key,
        site,
        prev,
    } = *leaving;
    let view = status_view(object);
    let reachable = site.health().reachable;
    let mut status = SiteStatus {
        site: site.name.clone(),
        namespace: prev.namespace.clone(),
        name: prev.name.clone(),
        uid: object.uid(),
        reachable,
        phase: view.phase.clone(),
        last_cluster_action: view.last_cluster_action.clone(),
        last_cluster_action_status: view.last_cluster_action_status.clone(),
        seedlist: view.seedlist.clone().unwrap_or_default(),
        last_write: ctx.ledger.awaited(key, prev.last_write.as_ref()),
        refused_spec: prev.refused_spec.clone(),
        nodes: prev.nodes.clone(),
        copies: prev.copies.clone(),
        ..Default::default()
    };
    let observed_nodes = object
        .data
        .get("status")
        .map(node_records)
        .unwrap_or_default();
    if reachable {
        status.nodes = observed_nodes.clone();
    }
    let json = serde_json::to_value(object).unwrap_or_default();
    let evidence = CasskopEvidence::from_object(&json);
    let obs = Observation {
        generation: object.metadata.generation.unwrap_or_default(),
        evidence: &evidence,
        status: &view,
        holds_our_spec: site_io::scaled_to_zero(object),
    };
    if let Some(write) = status.last_write.as_ref().filter(|w| {
        is_scale_digest(&w.spec_digest)
            && !obs.holds_our_spec
            && view.last_cluster_action.as_deref() == Some(ACTION_CORRECT_CRD_CONFIG)
            && acknowledged(&obs, Some(w))
    }) {
        status.refused_spec = Some(write.spec_digest.clone());
    }
    let annotations = mc.annotations();
    let dropped = sites_in_annotation(annotations, REPLICATION_DROPPED_ANNOTATION);
    let site_stays = remaining.iter().any(|s| s.site == prev.site);
    let was_leaving = prev
        .membership
        .as_ref()
        .is_some_and(|m| m.change == MembershipChange::Leave);
    let mut facts = LeaveFacts {
        delete,
        deleting: object.metadata.deletion_timestamp.is_some(),
        // Only a site that leaves the ring drops DCs from the replication; an object replaced
        // by a renamed one at a site that stays (`base.metadata.name` changed) does not.
        needs_acknowledgement: !site_stays && (prev.state == SiteState::Ready || was_leaving),
        acknowledged: dropped.contains(&site.name),
        holds_zero: obs.holds_our_spec,
        refused: status.refused_spec.clone(),
        scale_digest: scale_digest(
            annotations
                .get(REPLICATION_DROPPED_ANNOTATION)
                .map(String::as_str),
            annotations.get(RETRY_ANNOTATION).map(String::as_str),
        ),
        decommissioned: false,
    };
    let mut delay = None;
    if facts.delete && facts.holds_zero && !facts.deleting {
        let (readiness, recheck) = ctx.ledger.judge(key, status.last_write.as_ref(), &obs);
        delay = recheck;
        facts.decommissioned = readiness == SiteReadiness::Ready;
        status.message = Some(readiness.describe(&site.name));
    }
    let step = leave_step(&facts);
    let statements = statements(
        remaining,
        &mc.spec
            .replication
            .as_ref()
            .map(|r| r.keyspaces.clone())
            .unwrap_or_default(),
        mc.spec
            .replication
            .as_ref()
            .and_then(|r| r.replication_factor),
    );
    if facts.delete && facts.needs_acknowledgement {
        status.membership = Some(MembershipStatus {
            change: MembershipChange::Leave,
            statements: statements.clone(),
            acknowledge_with: Some(acknowledge_command(
                &mc.namespace().unwrap_or_default(),
                &mc.name_any(),
                REPLICATION_DROPPED_ANNOTATION,
                &dropped,
                &site.name,
            )),
            acknowledged: facts.acknowledged,
            rebuild: None,
        });
    }
    let (state, message) = match step {
        LeaveStep::Orphan => (
            SiteState::Orphaned,
            "left the ring; its CassandraCluster is left running, unmanaged (deleteCassandraCluster is not true)".to_string(),
        ),
        LeaveStep::Deleting => (
            SiteState::Deleting,
            "deleting; waiting for CassKop to finish".to_string(),
        ),
        LeaveStep::AwaitReplication => await_replication(leaving, &status).await,
        LeaveStep::Blocked => blocked(leaving, &statements).await,
        LeaveStep::ScaleToZero if !reachable => (
            SiteState::Unreachable,
            format!(
                "left the ring but site {} does not answer: it is scaled to zero once it does. If it is lost for good, give it up with {ABANDON_SITES_ANNOTATION}={} so its nodes are removed from the ring from a surviving site",
                site.name, site.name
            ),
        ),
        LeaveStep::ScaleToZero => {
            scale_down(leaving, object, &facts.scale_digest, &mut status, &mut delay).await
        }
        LeaveStep::Decommissioning => (
            SiteState::Decommissioning,
            format!(
                "decommissioning: {} node(s) left ({})",
                observed_nodes.len(),
                status.message.clone().unwrap_or_default()
            ),
        ),
        LeaveStep::Delete => remove(leaving, &mut delay).await,
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

/// Shows the statements that drop the site's DCs and waits for the acknowledgement; announces
/// them once, in an Event.
async fn await_replication(leaving: &Leaving<'_>, status: &SiteStatus) -> (SiteState, String) {
    let Leaving {
        mc,
        ctx,
        site,
        prev,
        ..
    } = *leaving;
    let Some(membership) = status.membership.as_ref() else {
        return (SiteState::AwaitingReplication, String::new());
    };
    let command = membership.acknowledge_with.clone().unwrap_or_default();
    let message = format!(
        "left the ring: drop its DCs from every keyspace's replication (the statements in membership.statements, at any node of another site), then acknowledge with: {command}. Nothing is scaled down until then"
    );
    if prev.state != SiteState::AwaitingReplication {
        info!(multicasskop = %mc.name_any(), site = %site.name, "waiting for the replication to drop the site");
        status::site_event(
            ctx,
            mc,
            EventKind::Normal,
            "AwaitingReplication",
            format!(
                "site {} left the ring: run {} then acknowledge with: {command}",
                site.name,
                membership.statements.join(" ")
            ),
            Some(status::at_site(&site.name, &prev.namespace, &prev.name)),
        )
        .await;
    }
    (SiteState::AwaitingReplication, message)
}

/// CassKop refused the scale write asked under the current annotations: nothing is written
/// until the user acts; warned once.
async fn blocked(leaving: &Leaving<'_>, statements: &[String]) -> (SiteState, String) {
    let Leaving {
        mc,
        ctx,
        site,
        prev,
        ..
    } = *leaving;
    let message = format!(
        "CassKop at site {} refused to scale the DC to 0 (lastClusterAction CorrectCRDConfig: keyspaces still replicate to it). Run {} then ask again with: kubectl annotate multicasskop {} -n {} --overwrite {RETRY_ANNOTATION}=$(date +%s)",
        site.name,
        statements.join(" "),
        mc.name_any(),
        mc.namespace().unwrap_or_default()
    );
    let previous = prev.message.as_deref();
    let related = status::at_site(&site.name, &prev.namespace, &prev.name);
    status::site_warning_once(ctx, mc, previous, "Refused", &message, related).await;
    (SiteState::Blocked, message)
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
    spec_digest: &str,
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
                spec_digest: spec_digest.into(),
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
