//! Writes to the MultiCasskop in the management cluster: its status (server-side apply, only
//! when something changed, so a converged ring costs no writes; detail that may wait is
//! coalesced, see [`crate::core::status_urgency`]), its finalizers (merge patches guarded by
//! resourceVersion, other finalizers kept), and Kubernetes Events.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use crate::api::{MultiCasskop, MultiCasskopStatus, SiteStatus};
use crate::controller::Context;
use crate::controller::coalesce::{self, Decision};
use crate::controller::error::{Error, findings_message};
use crate::core::aggregate::{SiteOutcome, summarize, with_transition_times};
use crate::core::status_urgency::urgency;
use crate::core::validate::Finding;
use crate::labels::{FINALIZER, FINALIZER_FIELD_MANAGER, LEGACY_FINALIZER, STATUS_FIELD_MANAGER};

/// Event severity.
#[derive(Clone, Copy, Debug)]
pub enum EventKind {
    /// Something happened as planned.
    Normal,
    /// Something needs attention.
    Warning,
}

/// The CassandraCluster at a site that an Event is about (its `related` object). Events are
/// grouped into series by reason and related object, so without it the Events of different
/// sites would merge into one series naming only the first site.
pub fn at_site(site: &str, namespace: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("db.orange.com/v2".into()),
        kind: Some(crate::api::CASSANDRA_CLUSTER_KIND.into()),
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        field_path: Some(format!("site {site}")),
        ..Default::default()
    }
}

/// Publishes an Event about `mc`, related to `site` when it concerns one; failures are
/// logged, never fatal.
pub async fn site_event(
    ctx: &Context,
    mc: &MultiCasskop,
    kind: EventKind,
    reason: &str,
    note: String,
    site: Option<ObjectReference>,
) {
    publish(ctx, mc, kind, reason, note, site).await;
}

/// Publishes an Event about a site for one step of a longer action (e.g. `Rebuilt2Of3`): Events
/// of one reason and action form one series that keeps its first note, so each step names its
/// own action to be seen with its own note.
pub async fn site_step_event(
    ctx: &Context,
    mc: &MultiCasskop,
    (reason, action): (&str, &str),
    note: String,
    site: ObjectReference,
) {
    publish_as(
        ctx,
        mc,
        EventKind::Normal,
        (reason, action),
        note,
        Some(site),
    )
    .await;
}

/// Publishes a Warning about a site, once: not again while the site's status already says
/// `message` (a repeated failure or hold is not announced at every reconcile).
pub async fn site_warning_once(
    ctx: &Context,
    mc: &MultiCasskop,
    previous_message: Option<&str>,
    reason: &str,
    message: &str,
    site: ObjectReference,
) {
    if previous_message != Some(message) {
        warn!(multicasskop = %mc.name_any(), site = site.field_path.as_deref().unwrap_or_default(), reason, %message, "site needs attention");
        publish(
            ctx,
            mc,
            EventKind::Warning,
            reason,
            message.to_string(),
            Some(site),
        )
        .await;
    }
}

/// Publishes an Event about `mc` as a whole; failures are logged, never fatal.
pub async fn event(ctx: &Context, mc: &MultiCasskop, kind: EventKind, reason: &str, note: String) {
    publish(ctx, mc, kind, reason, note, None).await;
}

async fn publish(
    ctx: &Context,
    mc: &MultiCasskop,
    kind: EventKind,
    reason: &str,
    note: String,
    secondary: Option<ObjectReference>,
) {
    publish_as(ctx, mc, kind, (reason, "Reconcile"), note, secondary).await;
}

async fn publish_as(
    ctx: &Context,
    mc: &MultiCasskop,
    kind: EventKind,
    (reason, action): (&str, &str),
    note: String,
    secondary: Option<ObjectReference>,
) {
    let event = Event {
        type_: match kind {
            EventKind::Normal => EventType::Normal,
            EventKind::Warning => EventType::Warning,
        },
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary,
    };
    if let Err(error) = ctx.recorder.publish(&event, &mc.object_ref(&())).await {
        warn!(multicasskop = %mc.name_any(), %error, reason, "cannot publish event");
    }
}

fn api(ctx: &Context, namespace: &str) -> Api<MultiCasskop> {
    Api::namespaced(ctx.client.clone(), namespace)
}

/// Whether the MultiCasskop carries our finalizer (or the Go version's).
pub fn has_our_finalizer(mc: &MultiCasskop) -> bool {
    mc.finalizers()
        .iter()
        .any(|f| f == FINALIZER || f == LEGACY_FINALIZER)
}

/// Adds our finalizer, keeping the others. Returns the patched object when it wrote; nothing
/// when the finalizer is there, or when this process added it after the copy read was taken
/// (a watch copy that lags behind our own patch must not patch again with its stale version).
pub async fn ensure_finalizer(
    mc: &MultiCasskop,
    ctx: &Context,
    namespace: &str,
) -> Result<Option<MultiCasskop>, Error> {
    if mc.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(None);
    }
    let ring = format!("{namespace}/{}", mc.name_any());
    let read_rv = mc.resource_version().and_then(|rv| rv.parse::<u64>().ok());
    if ctx.status_writes.finalizer_added_after(&ring, read_rv) {
        return Ok(None);
    }
    let mut finalizers = mc.finalizers().to_vec();
    finalizers.push(FINALIZER.into());
    let patched = patch_finalizers(mc, ctx, namespace, finalizers, "add finalizer to").await?;
    let rv = patched
        .resource_version()
        .and_then(|rv| rv.parse::<u64>().ok());
    ctx.status_writes.finalizer_written(&ring, rv);
    Ok(Some(patched))
}

/// Removes our finalizer and the Go version's, keeping the others.
pub async fn remove_finalizers(
    mc: &MultiCasskop,
    ctx: &Context,
    namespace: &str,
) -> Result<(), Error> {
    let finalizers: Vec<String> = mc
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER && *f != LEGACY_FINALIZER)
        .cloned()
        .collect();
    patch_finalizers(mc, ctx, namespace, finalizers, "remove finalizers from")
        .await
        .map(|_| ())
}

async fn patch_finalizers(
    mc: &MultiCasskop,
    ctx: &Context,
    namespace: &str,
    finalizers: Vec<String>,
    action: &'static str,
) -> Result<MultiCasskop, Error> {
    let patch = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": mc.resource_version() } });
    api(ctx, namespace)
        .patch(
            &mc.name_any(),
            &PatchParams {
                field_manager: Some(FINALIZER_FIELD_MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|source| Error::Management {
            action,
            namespace: namespace.into(),
            name: mc.name_any(),
            source,
        })
}

/// What [`write`] found and did.
#[derive(Clone, Copy, Debug)]
pub struct Written {
    /// The spec is fully rolled out.
    pub rolled_out: bool,
    /// A change was held back (coalesced): reconcile again after this delay to write it.
    pub retry: Option<std::time::Duration>,
}

/// Computes the ring's status from its sites and writes it if it changed: at once when the
/// change matters to users or to a new leader, else within [`coalesce::STATUS_DEBOUNCE`] (the next
/// write at once carries it sooner). `invalid` holds input errors (then `seeds` is empty and
/// the previous seed list is kept).
pub async fn write(
    mc: &MultiCasskop,
    ctx: &Context,
    namespace: &str,
    sites: Vec<(SiteStatus, SiteOutcome)>,
    seeds: Vec<String>,
    invalid: &[Finding],
    deleting: bool,
) -> Result<Written, Error> {
    let previous = mc.status.clone().unwrap_or_default();
    let outcomes: Vec<SiteOutcome> = sites.iter().map(|(_, o)| o.clone()).collect();
    let summary = summarize(&outcomes, invalid, deleting);
    let ready: i64 = summary
        .ready_sites
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let ring = crate::metrics::RingLabels {
        namespace: namespace.into(),
        multicasskop: mc.name_any(),
    };
    ctx.metrics.ready_sites.get_or_create(&ring).set(ready);
    let generation = mc.metadata.generation;
    let now = Time(Timestamp::now());
    let status = MultiCasskopStatus {
        observed_generation: if summary.rolled_out {
            generation
        } else {
            previous.observed_generation
        },
        phase: Some(summary.phase.to_string()),
        ready_sites: Some(summary.ready_sites.clone()),
        site_in_progress: summary.site_in_progress.clone(),
        conditions: with_transition_times(
            &previous.conditions,
            &summary.conditions,
            generation,
            &now,
        ),
        seedlist: if invalid.is_empty() && !deleting {
            seeds
        } else {
            previous.seedlist.clone()
        },
        sites: sites.into_iter().map(|(s, _)| s).collect(),
    };
    if !invalid.is_empty() {
        let message = findings_message(invalid);
        let was = previous
            .conditions
            .iter()
            .find(|c| c.type_ == "Degraded")
            .map(|c| c.message.as_str());
        if was != Some(message.as_str()) {
            event(
                ctx,
                mc,
                EventKind::Warning,
                "InvalidSpec",
                format!("nothing written or deleted: {message}"),
            )
            .await;
        }
    }
    let ring_key = format!("{namespace}/{}", mc.name_any());
    let next = coalesce::digests(&status);
    let read_rv = mc.resource_version().and_then(|rv| rv.parse::<u64>().ok());
    let decision = ctx
        .status_writes
        .decide(&ring_key, read_rv, urgency(&previous, &status), next);
    let retry = match decision {
        Decision::Skip => None,
        Decision::Wait(delay) => Some(delay),
        Decision::Write => {
            let body = json!({ "apiVersion": MultiCasskop::api_version(&()), "kind": MultiCasskop::kind(&()), "status": status });
            let stored = api(ctx, namespace)
                .patch_status(
                    &mc.name_any(),
                    &PatchParams::apply(STATUS_FIELD_MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await
                .map_err(|source| Error::Management {
                    action: "update status of",
                    namespace: namespace.into(),
                    name: mc.name_any(),
                    source,
                })?;
            let rv = stored
                .resource_version()
                .and_then(|rv| rv.parse::<u64>().ok());
            ctx.status_writes.written(&ring_key, rv, next, status);
            None
        }
    };
    Ok(Written {
        rolled_out: summary.rolled_out,
        retry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_different_sites_relate_to_different_objects() {
        let a = at_site("site-a", "ns", "cass");
        let b = at_site("site-b", "ns", "cass");
        assert_ne!(a, b, "one Event series per site");
        assert_eq!(a.kind.as_deref(), Some("CassandraCluster"));
        assert_eq!(a.field_path.as_deref(), Some("site site-a"));
    }
}
