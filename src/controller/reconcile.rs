//! Reconcile of one MultiCasskop, as a pipeline:
//! dereference (each site from its watch store, [`dereference`]) → validate and build (the pure
//! core: [`plan_federation`], ownership, readiness, [`plan_rollout`]) → apply (the sites the
//! rollout allows, [`apply`]; a site joining a Ready ring goes on in [`joining`]) → leaving
//! sites ([`leaving`]) → update status (one write, only if changed, [`status`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use crate::api::{MembershipStatus, MultiCasskop, SiteState, SiteStatus, WriteRecord};
use crate::controller::Context;
use crate::controller::apply::{self, SiteWrite};
use crate::controller::cleanup;
use crate::controller::copies;
use crate::controller::dereference::{self, SiteView, status_view};
use crate::controller::error::{Error, findings_message};
use crate::controller::joining;
use crate::controller::leaving;
use crate::controller::ledger::SiteKey;
use crate::controller::lost_site::Survivor;
use crate::controller::ownership::{self, Claim, Ownership};
use crate::controller::site_report::{
    deadline_delay, describe, fill_casskop_view, min_delay, outcome_of, waiting,
};
use crate::controller::status;
use crate::core::aggregate::SiteOutcome;
use crate::core::evidence::{CasskopEvidence, digest};
use crate::core::federation::{Federation, FederationInput, plan_federation_with};
use crate::core::lost_nodes::node_records;
use crate::core::readiness::{Observation, SiteReadiness};
use crate::core::rollout::{SiteFacts, Step, plan_rollout};
use crate::core::site_object::SiteCassandraCluster;
use crate::core::sync::{SyncState, sync_state};

/// How often copies (`spec.copyToSites`) are compared with their sources again.
const COPY_RESYNC: Duration = Duration::from_secs(10);

/// Reconciles one MultiCasskop.
pub async fn reconcile(mc: Arc<MultiCasskop>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = mc.name_any();
    let namespace = mc
        .namespace()
        .ok_or_else(|| Error::NoNamespace(name.clone()))?;
    let started = std::time::Instant::now();
    // Our own last status write is newer than a copy the watch has not caught up with yet.
    let read_rv = mc.resource_version().and_then(|rv| rv.parse::<u64>().ok());
    let ring = format!("{namespace}/{name}");
    let mc = match ctx.status_writes.newest(&ring, read_rv, mc.status.as_ref()) {
        Some(newest) if mc.status.as_ref() != Some(&newest) => {
            let mut newer = (*mc).clone();
            newer.status = Some(newest);
            Arc::new(newer)
        }
        _ => mc,
    };
    let result = if mc.meta().deletion_timestamp.is_some() {
        cleanup::finalize(&mc, &ctx, &namespace).await
    } else if let Some(with_finalizer) = status::ensure_finalizer(&mc, &ctx, &namespace).await? {
        // Go on with the object the patch returned: no round trip through the watch.
        reconcile_ring(&with_finalizer, &ctx, &namespace).await
    } else {
        reconcile_ring(&mc, &ctx, &namespace).await
    };
    ctx.metrics_observe(&name, &namespace, started.elapsed(), result.is_ok());
    result
}

/// One site of the ring with everything known about it before acting.
pub(crate) struct SitePlan<'a> {
    pub key: SiteKey,
    pub desired: &'a SiteCassandraCluster,
    pub previous: Option<SiteStatus>,
    pub view: SiteView,
    pub ownership: Ownership,
    pub awaited: Option<WriteRecord>,
    pub readiness: Option<SiteReadiness>,
    pub recheck: Option<Duration>,
    pub in_sync: bool,
    pub sync: SyncState,
    pub spec_digest: String,
    pub refused_spec: Option<String>,
    /// Joining a ring that was Ready without it, until the join is done.
    pub join: Option<MembershipStatus>,
}

impl SitePlan<'_> {
    /// The site's CassandraCluster, as the object an Event relates to.
    fn site_ref(&self) -> k8s_openapi::api::core::v1::ObjectReference {
        status::at_site(&self.key.site, &self.desired.namespace, &self.desired.name)
    }

    fn held(&self) -> bool {
        matches!(self.ownership, Ownership::Conflict(_))
            || self.refused_spec.as_deref() == Some(self.spec_digest.as_str())
    }

    /// Ready at CassKop with our spec, idle, and no join left to finish.
    fn idle(&self) -> bool {
        self.view.reachable
            && self.in_sync
            && self.readiness == Some(SiteReadiness::Ready)
            && self.join.is_none()
            && self.view.object.as_ref().is_some_and(|o| {
                status_view(o).last_cluster_action_status.as_deref() == Some("Done")
            })
    }
}

async fn reconcile_ring(
    mc: &MultiCasskop,
    ctx: &Context,
    namespace: &str,
) -> Result<Action, Error> {
    let name = mc.name_any();
    let previous: Vec<SiteStatus> = mc.status.iter().flat_map(|s| s.sites.clone()).collect();
    let known = ctx.sites.names();
    let input = FederationInput {
        name: &name,
        namespace,
        spec: &mc.spec,
        known_sites: Some(&known),
    };
    let federation = match plan_federation_with(input, &ctx.tenancy) {
        Ok(f) => f,
        Err(findings) => {
            let message = findings_message(&findings);
            warn!(multicasskop = %name, namespace, %message, "invalid MultiCasskop: nothing written or deleted");
            let sites = previous
                .iter()
                .map(|s| (s.clone(), outcome_of(s)))
                .collect();
            let written =
                status::write(mc, ctx, namespace, sites, Vec::new(), &findings, false).await?;
            return Ok(written
                .retry
                .map_or_else(Action::await_change, Action::requeue));
        }
    };
    for warning in &federation.warnings {
        info!(multicasskop = %name, namespace, %warning, "warning");
    }

    // Dereference, then judge every site (pure).
    let mut plans = Vec::new();
    for desired in &federation.sites {
        plans.push(plan_site(ctx, mc, namespace, &federation, desired, &previous).await);
    }
    let facts: Vec<SiteFacts> = plans
        .iter()
        .map(|p| SiteFacts {
            site: p.key.site.clone(),
            paused: federation.paused.contains(&p.key.site),
            reachable: p.view.reachable,
            held: p.held(),
            in_sync: p.in_sync,
            // A joining site is done only once its join is: it holds a sequential rollout.
            ready: p.readiness == Some(SiteReadiness::Ready) && p.join.is_none(),
        })
        .collect();
    let steps = plan_rollout(federation.strategy, federation.max_concurrent_sites, &facts);
    let busy = busy_sites(&plans, &previous, &federation);
    let ring = joining::Ring {
        federation: &federation,
        busy: &busy,
    };

    // Apply what the rollout allows, and describe every site.
    let now = Timestamp::now();
    let mut sites = Vec::new();
    let mut retry = None;
    let mut blocker: Option<String> = None;
    for (plan, step) in plans.into_iter().zip(steps) {
        let site = plan.key.site.clone();
        let (site_status, outcome, delay) =
            act(ctx, mc, &ring, plan, step, blocker.as_deref(), now).await;
        if step.holds_sequential_rollout() && blocker.is_none() {
            blocker = Some(site);
        }
        retry = min_delay(retry, delay);
        sites.push((site_status, outcome));
    }
    let desired: BTreeSet<(String, String, String)> = federation
        .sites
        .iter()
        .map(|s| (s.site.clone(), s.namespace.clone(), s.name.clone()))
        .collect();
    let remaining = federation.site_dcs();
    let survivors = sites
        .iter()
        .filter(|(s, o)| o.state == SiteState::Ready && s.reachable)
        .map(|(s, _)| Survivor {
            site: s.site.clone(),
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            dcs: remaining
                .iter()
                .filter(|r| r.site == s.site)
                .flat_map(|r| r.dcs.iter().map(|dc| dc.name.clone()))
                .collect(),
        })
        .collect();
    let ring = leaving::RingAfter {
        desired: &desired,
        remaining,
        survivors,
    };
    for (site_status, outcome, delay) in leaving::leavers(mc, ctx, &ring, &previous).await {
        retry = min_delay(retry, delay);
        sites.push((site_status, outcome));
    }

    let deadline = deadline_delay(&sites, federation.progress_deadline, now);
    let written = status::write(
        mc,
        ctx,
        namespace,
        sites,
        federation.seeds.clone(),
        &[],
        false,
    )
    .await?;
    let rolled_out = written.rolled_out;
    info!(multicasskop = %name, namespace, rolled_out, "reconciled");
    Ok(match min_delay(min_delay(retry, deadline), written.retry) {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

/// Sites that are not ready and idle: a joining site rebuilds only while every other site is.
/// Sites leaving the ring are busy while they are taken down.
fn busy_sites(
    plans: &[SitePlan<'_>],
    previous: &[SiteStatus],
    federation: &Federation,
) -> Vec<String> {
    let leaving = previous.iter().filter(|s| {
        !federation.sites.iter().any(|f| f.site == s.site)
            && matches!(
                s.state,
                SiteState::Decommissioning | SiteState::Deleting | SiteState::RemovingNodes
            )
    });
    plans
        .iter()
        .filter(|p| !p.idle())
        .map(|p| p.key.site.clone())
        .chain(leaving.map(|s| s.site.clone()))
        .collect()
}

/// Dereferences one site and judges it: ownership, sync, readiness.
async fn plan_site<'a>(
    ctx: &Context,
    mc: &MultiCasskop,
    namespace: &str,
    federation: &Federation,
    desired: &'a SiteCassandraCluster,
    previous: &[SiteStatus],
) -> SitePlan<'a> {
    let key = SiteKey::new(namespace, &mc.name_any(), &desired.site);
    let prev = previous
        .iter()
        .find(|s| {
            s.site == desired.site && s.namespace == desired.namespace && s.name == desired.name
        })
        .cloned();
    // Our own last write is newer proof than a status the watch may not have delivered yet.
    let recorded_uid = ctx
        .ledger
        .written_uid(&key)
        .or_else(|| prev.as_ref().and_then(|p| p.uid.clone()));
    let view = dereference::observe(ctx, &key, &desired.namespace, &desired.name).await;
    let adopt = ownership::may_adopt(&ownership::adopt_sites(mc.annotations()), &desired.site);
    let claim = Claim {
        ring_namespace: namespace,
        ring_name: &mc.name_any(),
        site: &desired.site,
        recorded_uid: recorded_uid.as_deref(),
        adopt,
    };
    let owner = ownership::ownership(&claim, view.object.as_ref());
    let spec_digest = spec_digest(desired, &federation.seeds);
    let ours = if owner == Ownership::Ours {
        view.object.as_ref()
    } else {
        None
    };
    let json = ours.map(|o| serde_json::to_value(o).unwrap_or_default());
    let sync = sync_state(json.as_ref(), desired, &federation.seeds);
    let in_sync = sync == SyncState::InSync;
    let awaited = ctx
        .ledger
        .awaited(&key, prev.as_ref().and_then(|p| p.last_write.as_ref()));
    let (readiness, recheck) = match (ours, &json) {
        (Some(object), Some(j)) => {
            let evidence = CasskopEvidence::from_object(j);
            let status = status_view(object);
            let obs = Observation {
                generation: object.metadata.generation.unwrap_or_default(),
                evidence: &evidence,
                status: &status,
                holds_our_spec: matches!(sync, SyncState::InSync | SyncState::MetadataDiffers),
            };
            let (r, recheck) = ctx.ledger.judge(&key, awaited.as_ref(), &obs);
            (Some(r), recheck)
        }
        _ => (None, None),
    };
    let mut refused_spec = prev
        .as_ref()
        .and_then(|p| p.refused_spec.clone())
        .filter(|r| *r == spec_digest);
    if readiness == Some(SiteReadiness::Refused) {
        refused_spec = awaited.as_ref().map(|a| a.spec_digest.clone());
    }
    let others: Vec<SiteState> = previous
        .iter()
        .filter(|s| s.site != desired.site && federation.sites.iter().any(|f| f.site == s.site))
        .map(|s| s.state)
        .collect();
    // New to the ring: no entry for the site under any name (a renamed cluster is no join).
    let new_site = !previous.iter().any(|s| s.site == desired.site);
    let join = joining::membership(ctx, mc, &key, prev.as_ref(), new_site, &others);
    SitePlan {
        key,
        desired,
        previous: prev,
        view,
        ownership: owner,
        awaited,
        readiness,
        recheck,
        in_sync,
        sync,
        spec_digest,
        refused_spec,
        join,
    }
}

/// Digest of what we write at a site (its object and the ring's seed list).
fn spec_digest(desired: &SiteCassandraCluster, seeds: &[String]) -> String {
    digest(&format!("{}|{}", desired.object, seeds.join(",")))
}

/// Acts on one site per its rollout step and describes it.
async fn act(
    ctx: &Context,
    mc: &MultiCasskop,
    ring: &joining::Ring<'_>,
    plan: SitePlan<'_>,
    step: Step,
    blocker: Option<&str>,
    now: Timestamp,
) -> (SiteStatus, SiteOutcome, Option<Duration>) {
    let federation = ring.federation;
    let site = plan.key.site.clone();
    let mut status = initial_status(&plan);
    let mut object = plan.view.object.clone();
    let mut delay = plan.recheck;
    // spec.copyToSites: synced wherever the ring may write, before its CassandraCluster.
    let mut copies_missing = None;
    if !matches!(step, Step::Paused | Step::Unreachable)
        && let Some(handle) = plan.view.handle.as_ref()
    {
        let synced =
            copies::sync_site(ctx, mc, handle, &plan.desired.namespace, &status.copies).await;
        if !synced.copies.is_empty() || mc.spec.copy_to_sites.is_some() {
            // Sources change without any event of ours: look again.
            delay = min_delay(delay, Some(COPY_RESYNC));
        }
        status.copies = synced.copies.clone();
        if !synced.complete() {
            copies_missing = Some(synced.problems.join("; "));
        }
    }
    let (state, message) = match step {
        Step::Apply if copies_missing.is_some() && plan.view.object.is_none() => (
            SiteState::Blocked,
            format!(
                "its CassandraCluster is not created until spec.copyToSites is copied: {}",
                copies_missing.clone().unwrap_or_default()
            ),
        ),
        Step::Paused => (
            SiteState::Paused,
            "paused by spec.rollout.paused: nothing is written here".to_string(),
        ),
        Step::Unreachable => (
            SiteState::Unreachable,
            plan.view
                .error
                .clone()
                .unwrap_or_else(|| "no answer".into()),
        ),
        Step::Queued => (
            SiteState::Queued,
            format!(
                "waiting for site {} to be ready first",
                blocker.unwrap_or("?")
            ),
        ),
        Step::Held => held(ctx, mc, &plan).await,
        Step::Done => {
            status.last_write = ctx.ledger.confirm(&plan.key, plan.awaited.as_ref());
            status.progressing_since = None;
            ctx.site_failures.succeed(&plan.key.to_string());
            (SiteState::Ready, "ready".to_string())
        }
        Step::Wait => waiting(plan.readiness.as_ref(), &site),
        Step::Apply => {
            let applied = apply_step(ctx, mc, federation, &plan).await;
            if let Some(stored) = &applied.object {
                status.uid = stored.uid();
                status.last_write = ctx.ledger.awaited(&plan.key, None).or(status.last_write);
                object = Some(stored.clone());
            }
            status.reachable = !applied.unreachable;
            delay = min_delay(delay, applied.retry);
            (applied.state, applied.message)
        }
    };
    let (state, message) = match plan.join.clone() {
        Some(join) => {
            let site = joining::JoiningSite {
                key: &plan.key,
                namespace: &plan.desired.namespace,
                name: &plan.desired.name,
                handle: plan.view.handle.clone(),
                ours: plan.ownership == Ownership::Ours,
                casskop_ready: plan.ownership == Ownership::Ours
                    && plan.in_sync
                    && plan.readiness == Some(SiteReadiness::Ready),
                awaited: plan.awaited.as_ref(),
                previous_message: plan.previous.as_ref().and_then(|p| p.message.as_deref()),
            };
            let (state, message, again) =
                joining::advance(ctx, mc, ring, &site, join, (state, message), &mut status).await;
            delay = min_delay(delay, again);
            (state, message)
        }
        None => (state, message),
    };
    let message = match &copies_missing {
        Some(problem) if !message.contains(problem.as_str()) => format!("{message}; {problem}"),
        _ => message,
    };
    if copies_missing.is_some() {
        let previous = plan.previous.as_ref().and_then(|p| p.message.as_deref());
        status::site_warning_once(ctx, mc, previous, "CopyRefused", &message, plan.site_ref())
            .await;
    }
    if let Some(o) = object
        .as_ref()
        .filter(|_| plan.ownership != Ownership::Absent || step == Step::Apply)
    {
        fill_casskop_view(&mut status, o);
    }
    // The nodes as CassKop reports them while the site is healthy; the last ones known otherwise
    // (what removing them needs if the site is lost).
    status.nodes = match object.as_ref().filter(|_| state == SiteState::Ready) {
        Some(o) => o.data.get("status").map(node_records).unwrap_or_default(),
        None => plan
            .previous
            .as_ref()
            .map(|p| p.nodes.clone())
            .unwrap_or_default(),
    };
    describe(status, state, message, delay, federation, now)
}

/// A site's status before acting: what is known of it and what the ring recorded there.
fn initial_status(plan: &SitePlan<'_>) -> SiteStatus {
    let previous = plan.previous.as_ref();
    let mut status = SiteStatus {
        site: plan.key.site.clone(),
        namespace: plan.desired.namespace.clone(),
        name: plan.desired.name.clone(),
        reachable: plan.view.reachable,
        uid: previous.and_then(|p| p.uid.clone()),
        last_write: plan.awaited.clone(),
        refused_spec: plan.refused_spec.clone(),
        progressing_since: previous.and_then(|p| p.progressing_since.clone()),
        copies: previous.map(|p| p.copies.clone()).unwrap_or_default(),
        ..Default::default()
    };
    if plan.ownership == Ownership::Ours {
        status.uid = plan.view.object.as_ref().and_then(ResourceExt::uid);
    }
    status
}

/// Writes a site the rollout allows.
async fn apply_step(
    ctx: &Context,
    mc: &MultiCasskop,
    federation: &Federation,
    plan: &SitePlan<'_>,
) -> apply::Applied {
    let Some(handle) = plan.view.handle.clone() else {
        return apply::Applied::not_written(
            SiteState::Unreachable,
            format!("site {} is not configured", plan.key.site),
            true,
        );
    };
    // The watch sees only labelled objects: before creating, make sure nothing unlabelled
    // already holds the name (it must not be overwritten).
    let mut before = plan.view.object.clone();
    if before.is_none() {
        match dereference::look_up(&handle, &plan.desired.namespace, &plan.desired.name).await {
            Ok(None) => {}
            Ok(Some(found)) => {
                let claim = Claim {
                    ring_namespace: &mc.namespace().unwrap_or_default(),
                    ring_name: &mc.name_any(),
                    site: &plan.key.site,
                    recorded_uid: None,
                    adopt: ownership::may_adopt(
                        &ownership::adopt_sites(mc.annotations()),
                        &plan.key.site,
                    ),
                };
                if let Ownership::Conflict(message) = ownership::ownership(&claim, Some(&found)) {
                    let site = plan.site_ref();
                    let previous = plan.previous.as_ref().and_then(|p| p.message.as_deref());
                    status::site_warning_once(ctx, mc, previous, "Conflict", &message, site).await;
                    return apply::Applied::not_written(SiteState::Conflict, message, false);
                }
                before = Some(found);
            }
            Err(e) => {
                return apply::Applied::not_written(SiteState::Unreachable, e.to_string(), true);
            }
        }
    }
    let write = SiteWrite {
        key: &plan.key,
        handle: &handle,
        before: before.as_ref(),
        desired: plan.desired,
        seeds: &federation.seeds,
        spec_digest: &plan.spec_digest,
        previous_message: plan.previous.as_ref().and_then(|p| p.message.as_deref()),
        metadata_only: plan.sync == SyncState::MetadataDiffers,
        awaited: plan.awaited.as_ref(),
    };
    apply::apply_site(ctx, mc, &write).await
}

/// A site the rollout must not write: someone else's object, or a spec CassKop refused.
async fn held(ctx: &Context, mc: &MultiCasskop, plan: &SitePlan<'_>) -> (SiteState, String) {
    let (state, message, reason) = match &plan.ownership {
        Ownership::Conflict(message) => (SiteState::Conflict, message.clone(), "Conflict"),
        _ => (
            SiteState::Blocked,
            SiteReadiness::Refused.describe(&plan.key.site),
            "Refused",
        ),
    };
    let previous = plan.previous.as_ref().and_then(|p| p.message.as_deref());
    status::site_warning_once(ctx, mc, previous, reason, &message, plan.site_ref()).await;
    (state, message)
}
