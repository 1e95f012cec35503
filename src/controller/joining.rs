//! A site joining a ring that was Ready without it, driven from the reconcile: the replication
//! gate (statements in status and an Event, then the acknowledgement annotation) and the
//! rebuild (CassKop's `rebuild` pod operation through pod labels, [`site_io`]), around the pure
//! decisions of [`crate::core::joining`] and [`crate::core::rebuild`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::api::{MembershipStatus, MultiCasskop, SiteState, SiteStatus, WriteRecord};
use crate::controller::Context;
use crate::controller::ledger::SiteKey;
use crate::controller::ownership::sites_in_annotation;
use crate::controller::site_io;
use crate::controller::status::{self, EventKind};
use crate::core::federation::Federation;
use crate::core::joining::{self, JoinStep};
use crate::core::rebuild::{self, Outcome, PodLabels, REBUILD};
use crate::core::replication::{SiteDcs, acknowledge_command};
use crate::core::seeds::effective_topology;
use crate::labels::REPLICATION_ADDED_ANNOTATION;
use crate::labels::pod_operation::{ARGUMENT, NAME, STATUS, TO_DO};

/// How often a rebuilding site is looked at again (pod labels are not watched).
pub const REBUILD_POLL: Duration = Duration::from_secs(2);

/// How often a site whose rebuild failed is looked at again.
pub const FAILED_POLL: Duration = Duration::from_secs(30);

/// The join records this process wrote last, per site of a ring: newer than a MultiCasskop read
/// from the watch that predates our own status write (attempts must not be counted twice).
/// `None`: the join finished.
#[derive(Debug, Default)]
pub struct JoinBook {
    entries: Mutex<HashMap<SiteKey, (String, Option<MembershipStatus>)>>,
}

impl JoinBook {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SiteKey, (String, Option<MembershipStatus>)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What this process last recorded for the site of the ring with UID `uid`.
    fn get(&self, key: &SiteKey, uid: &str) -> Option<Option<MembershipStatus>> {
        self.lock()
            .get(key)
            .filter(|(u, _)| u == uid)
            .map(|(_, m)| m.clone())
    }

    fn record(&self, key: &SiteKey, uid: &str, membership: Option<MembershipStatus>) {
        self.lock()
            .insert(key.clone(), (uid.to_string(), membership));
    }
}

/// The join in progress at a site, if any: the newest of this process's record and the
/// ring's status; a new one when the site is new to a ring whose other sites are all Ready
/// (`new_site`: the status has no entry for the site under any name).
pub(crate) fn membership(
    ctx: &Context,
    mc: &MultiCasskop,
    key: &SiteKey,
    previous: Option<&SiteStatus>,
    new_site: bool,
    others: &[SiteState],
) -> Option<MembershipStatus> {
    let uid = mc.uid().unwrap_or_default();
    let remembered = ctx.joins.get(key, &uid);
    let joins = |m: &MembershipStatus| m.change == crate::api::MembershipChange::Join;
    match previous {
        Some(p) => match remembered {
            Some(m) => m,
            None => p.membership.clone().filter(joins),
        },
        None if joining::is_joining(!new_site, others) => {
            Some(remembered.flatten().unwrap_or_else(joining::started))
        }
        None => remembered.flatten(),
    }
}

/// The joining site as the reconcile judged it.
pub(crate) struct JoiningSite<'a> {
    /// Ring and site.
    pub key: &'a SiteKey,
    /// Namespace of its CassandraCluster.
    pub namespace: &'a str,
    /// Name of its CassandraCluster.
    pub name: &'a str,
    /// The site's client, if configured.
    pub handle: Option<std::sync::Arc<crate::sites::SiteHandle>>,
    /// Its CassandraCluster is proven ours: only then are its pods read or labelled.
    pub ours: bool,
    /// It holds our spec and CassKop finished.
    pub casskop_ready: bool,
    /// Our write CassKop took in (confirmed once ready).
    pub awaited: Option<&'a WriteRecord>,
    /// The site's message in the ring's status (for warnings announced once).
    pub previous_message: Option<&'a str>,
}

/// Everything the join step needs from the ring.
pub(crate) struct Ring<'a> {
    /// The ring's plan.
    pub federation: &'a Federation,
    /// Sites that are not ready and idle (CassKop busy, not reachable, joining, leaving).
    pub busy: &'a [String],
}

/// Moves a joining site on and describes it. `state`/`message` are what the usual path
/// reported; a site that is not simply progressing (paused, unreachable, held, failed...)
/// is reported as it is and its join waits.
pub(crate) async fn advance(
    ctx: &Context,
    mc: &MultiCasskop,
    ring: &Ring<'_>,
    plan: &JoiningSite<'_>,
    mut membership: MembershipStatus,
    (state, message): (SiteState, String),
    status: &mut SiteStatus,
) -> (SiteState, String, Option<Duration>) {
    let casskop_ready = plan.casskop_ready;
    if casskop_ready {
        status.last_write = ctx.ledger.confirm(plan.key, plan.awaited);
        ctx.site_failures.succeed(&plan.key.to_string());
    }
    let uid = mc.uid().unwrap_or_default();
    let outcome = if state == SiteState::Progressing {
        step(ctx, mc, ring, plan, &mut membership, casskop_ready, message).await
    } else {
        (state, message, None)
    };
    let finished = outcome.0 == SiteState::Ready;
    let kept = (!finished).then_some(membership);
    ctx.joins.record(plan.key, &uid, kept.clone());
    status.membership = kept;
    if finished {
        status.progressing_since = None;
    }
    outcome
}

async fn step(
    ctx: &Context,
    mc: &MultiCasskop,
    ring: &Ring<'_>,
    plan: &JoiningSite<'_>,
    membership: &mut MembershipStatus,
    casskop_ready: bool,
    message: String,
) -> (SiteState, String, Option<Duration>) {
    let site = plan.key.site.as_str();
    let acknowledged = sites_in_annotation(mc.annotations(), REPLICATION_ADDED_ANNOTATION);
    let policy = joining::rebuild_policy(mc.spec.replication.as_ref());
    let next = joining::step(
        membership,
        casskop_ready,
        acknowledged.contains(site),
        policy.enabled,
    );
    if next == JoinStep::Create {
        return (
            SiteState::Joining,
            format!("joining a Ready ring: {message}"),
            None,
        );
    }
    let dcs = ring_dcs(ring.federation);
    ask_for_replication(ctx, mc, plan, membership, &dcs, &acknowledged).await;
    if next == JoinStep::AwaitReplication {
        let command = membership.acknowledge_with.clone().unwrap_or_default();
        return (
            SiteState::AwaitingReplication,
            format!(
                "run the {} statements of status.sites[{site}].membership.statements (also in `multi-casskop status`) once at any node, then acknowledge: {command}",
                membership.statements.len()
            ),
            None,
        );
    }
    if !membership.acknowledged {
        membership.acknowledged = true;
        status::site_event(
            ctx,
            mc,
            EventKind::Normal,
            "ReplicationAcknowledged",
            format!("site {site}: replication acknowledged ({REPLICATION_ADDED_ANNOTATION})"),
            Some(plan_ref(plan)),
        )
        .await;
    }
    if next == JoinStep::Ready {
        return (SiteState::Ready, "ready".into(), None);
    }
    rebuild_step(ctx, mc, ring, plan, membership, casskop_ready, &dcs).await
}

/// Every site's DCs, in rollout order.
fn ring_dcs(federation: &Federation) -> Vec<SiteDcs> {
    federation
        .sites
        .iter()
        .map(|s| SiteDcs {
            site: s.site.clone(),
            dcs: effective_topology(&s.view.spec.clone().unwrap_or_default()),
        })
        .collect()
}

fn plan_ref(plan: &JoiningSite<'_>) -> k8s_openapi::api::core::v1::ObjectReference {
    status::at_site(&plan.key.site, plan.namespace, plan.name)
}

/// Fills the statements and the acknowledgement command; announces them when they are new.
async fn ask_for_replication(
    ctx: &Context,
    mc: &MultiCasskop,
    plan: &JoiningSite<'_>,
    membership: &mut MembershipStatus,
    dcs: &[SiteDcs],
    acknowledged: &std::collections::BTreeSet<String>,
) {
    let site = plan.key.site.as_str();
    let statements = joining::join_statements(mc.spec.replication.as_ref(), dcs);
    let command = acknowledge_command(
        &mc.namespace().unwrap_or_default(),
        &mc.name_any(),
        REPLICATION_ADDED_ANNOTATION,
        acknowledged,
        site,
    );
    if membership.statements == statements {
        if membership.acknowledge_with.is_none() {
            membership.acknowledge_with = Some(command);
        }
        return;
    }
    membership.statements = statements;
    membership.acknowledge_with = Some(command.clone());
    if membership.acknowledged {
        return;
    }
    status::site_event(
        ctx,
        mc,
        EventKind::Normal,
        "ReplicationNeeded",
        format!(
            "site {site} joins the ring: run once at any node: {} then acknowledge: {command}",
            membership.statements.join(" ")
        ),
        Some(plan_ref(plan)),
    )
    .await;
}

fn labels_of(pod: &Pod) -> PodLabels {
    let labels = pod.labels();
    let running = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Running")
        && pod.metadata.deletion_timestamp.is_none();
    PodLabels {
        pod: pod.name_any(),
        running,
        operation: labels.get(NAME).cloned(),
        status: labels.get(STATUS).cloned(),
    }
}

async fn rebuild_step(
    ctx: &Context,
    mc: &MultiCasskop,
    ring: &Ring<'_>,
    plan: &JoiningSite<'_>,
    membership: &mut MembershipStatus,
    casskop_ready: bool,
    dcs: &[SiteDcs],
) -> (SiteState, String, Option<Duration>) {
    let site = plan.key.site.as_str();
    let policy = joining::rebuild_policy(mc.spec.replication.as_ref());
    let source = match joining::source_dc(
        mc.spec
            .replication
            .as_ref()
            .and_then(|r| r.rebuild.as_ref()),
        dcs,
        site,
    ) {
        Ok(dc) => dc,
        Err(message) => {
            let previous = plan.previous_message;
            status::site_warning_once(ctx, mc, previous, "RebuildSource", &message, plan_ref(plan))
                .await;
            return (SiteState::Blocked, message, None);
        }
    };
    let started = membership.rebuild.is_some();
    let mut record = membership.rebuild.clone().unwrap_or_default();
    record.source_dc = source.clone();
    // Only pods of an object proven ours are read or labelled.
    let handle = match (&plan.handle, plan.ours) {
        (Some(h), true) => h.clone(),
        _ => {
            membership.rebuild = Some(record);
            return (
                SiteState::Rebuilding,
                format!(
                    "rebuild from {source} waits: the CassandraCluster at site {site} is not proven ours"
                ),
                Some(REBUILD_POLL),
            );
        }
    };
    let (namespace, cluster) = (plan.namespace, plan.name);
    let pods = match site_io::list_cluster_pods(&handle, namespace, cluster).await {
        Ok(pods) => pods,
        Err(e) => {
            membership.rebuild = Some(record);
            return (
                SiteState::Rebuilding,
                format!("rebuild from {source} waits: {e}"),
                Some(REBUILD_POLL),
            );
        }
    };
    let pods: Vec<PodLabels> = pods.iter().map(labels_of).collect();
    let others_busy: Vec<&str> = ring
        .busy
        .iter()
        .map(String::as_str)
        .filter(|s| *s != site)
        .collect();
    let idle = casskop_ready && others_busy.is_empty();
    let mut next = rebuild::plan(&pods, &record.pods, policy.limits, idle);
    let mut failed_write = None;
    for (i, pod) in next.ask.iter().enumerate() {
        let labels: BTreeMap<String, Option<String>> = [
            (NAME.to_string(), Some(REBUILD.to_string())),
            (STATUS.to_string(), Some(TO_DO.to_string())),
            (ARGUMENT.to_string(), Some(source.clone())),
        ]
        .into();
        if let Err(e) = site_io::label_pod_operation(&handle, namespace, pod, None, &labels).await {
            failed_write = Some((i, e));
            break;
        }
    }
    if let Some((i, _)) = &failed_write {
        // Not asked: not an attempt.
        let unasked: Vec<String> = next.ask.split_off(*i);
        for r in next.records.iter_mut().filter(|r| unasked.contains(&r.pod)) {
            r.attempts -= 1;
            r.status = pods
                .iter()
                .find(|p| p.pod == r.pod)
                .and_then(|p| p.status.clone());
        }
        next.records.retain(|r| r.attempts > 0);
        next.retried.retain(|p| !unasked.contains(p));
    }
    let previous_done = record.done;
    record.pods = next.records.clone();
    for pod in &next.retried {
        let attempt = record
            .pods
            .iter()
            .find(|r| &r.pod == pod)
            .map_or(0, |r| r.attempts);
        status::site_event(
            ctx,
            mc,
            EventKind::Warning,
            "RebuildRetry",
            format!(
                "site {site}: the rebuild of pod {pod} ended in Error; asked again (attempt {attempt} of {})",
                policy.limits.retries + 1
            ),
            Some(plan_ref(plan)),
        )
        .await;
    }
    let reply = match &next.outcome {
        Outcome::Failed { pod, attempts } => {
            let message = format!(
                "the rebuild of pod {pod} from {source} ended in Error {attempts} times (spec.replication.rebuild.retries: {}); see CassKop's podLastOperation and the pod's logs, then label it {STATUS}={TO_DO} to try again",
                policy.limits.retries
            );
            let previous = plan.previous_message;
            status::site_warning_once(ctx, mc, previous, "RebuildFailed", &message, plan_ref(plan))
                .await;
            // Looked at now and then: a pod relabelled `ToDo` by hand resumes the rebuild.
            (SiteState::Failed, message, Some(FAILED_POLL))
        }
        Outcome::Done { total } => {
            record.done = *total;
            record.total = *total;
            if casskop_ready {
                status::site_event(
                    ctx,
                    mc,
                    EventKind::Normal,
                    "Rebuilt",
                    format!("site {site}: rebuilt {total}/{total} from {source}"),
                    Some(plan_ref(plan)),
                )
                .await;
                (SiteState::Ready, "ready".into(), None)
            } else {
                (
                    SiteState::Rebuilding,
                    format!("rebuilt {total}/{total} from {source}; waiting for CassKop"),
                    Some(REBUILD_POLL),
                )
            }
        }
        Outcome::Running {
            done,
            total,
            active,
        } => {
            record.done = *done;
            record.total = *total;
            if !started || *done != previous_done {
                status::site_step_event(
                    ctx,
                    mc,
                    ("Rebuilding", &format!("Rebuilt{done}Of{total}")),
                    format!("site {site}: rebuilt {done}/{total} from {source}"),
                    plan_ref(plan),
                )
                .await;
            }
            let mut message = format!(
                "rebuilding from {source}: rebuilt {done}/{total}, {active} in progress (at most {})",
                policy.limits.max_concurrent
            );
            if !idle {
                let waiting = if casskop_ready {
                    format!("sites busy: {}", others_busy.join(", "))
                } else {
                    format!("CassKop at site {site} is busy")
                };
                message.push_str(&format!("; waiting before asking more ({waiting})"));
            }
            if let Some((_, e)) = &failed_write {
                message.push_str(&format!("; {e}"));
            }
            (SiteState::Rebuilding, message, Some(REBUILD_POLL))
        }
    };
    membership.rebuild = Some(record);
    reply
}
