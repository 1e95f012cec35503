//! A lost site (left the ring or listed in the abandon annotation, unreachable, given up): its
//! recorded nodes are removed from the ring one at a time through CassKop's `remove` pod
//! operation at a surviving, reachable, Ready site; nothing is ever written at the lost site.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;
use tracing::info;

use crate::api::{MultiCasskop, SiteState, SiteStatus};
use crate::controller::Context;
use crate::controller::site_io;
use crate::controller::status::{self, EventKind};
use crate::core::aggregate::SiteOutcome;
use crate::core::lost_nodes::{
    LostNaming, REMOVE, REMOVE_RETRIES, RemovalStep, SurvivorPod, next_removal, progress,
};
use crate::labels::pod_operation;

/// How soon a removal in progress is looked at again (pods are not watched).
const POLL: Duration = Duration::from_secs(2);

/// A site that stays in the ring, is reachable and Ready.
#[derive(Debug, Clone)]
pub(crate) struct Survivor {
    /// Site name.
    pub site: String,
    /// Namespace of its CassandraCluster.
    pub namespace: String,
    /// Name of its CassandraCluster (CassKop's `cassandracluster` pod label).
    pub name: String,
    /// Its DC names (a lost node named like one of their pods is refused).
    pub dcs: Vec<String>,
}

/// One step of removing `prev`'s nodes. `None` once every node is removed (reported in an Event;
/// the site is no longer tracked).
pub(crate) async fn remove_nodes(
    mc: &MultiCasskop,
    ctx: &Context,
    prev: &SiteStatus,
    survivors: &[Survivor],
) -> Option<(SiteStatus, SiteOutcome, Option<Duration>)> {
    let mut status = SiteStatus {
        reachable: false,
        ..prev.clone()
    };
    let lost = at(prev);
    let Some(survivor) = survivors.first() else {
        let message = format!(
            "lost and given up: {}; waiting for a Ready, reachable site of the ring to remove its nodes from",
            progress(&status.nodes)
        );
        return Some(report(
            status,
            SiteState::RemovingNodes,
            message,
            Some(POLL),
        ));
    };
    let Some(handle) = ctx.sites.get(&survivor.site) else {
        return Some(report(
            status,
            SiteState::RemovingNodes,
            format!("site {} is not configured", survivor.site),
            Some(POLL),
        ));
    };
    let pods = match site_io::list_cluster_pods(&handle, &survivor.namespace, &survivor.name).await
    {
        Ok(pods) => pods,
        Err(e) => {
            let message = format!("lost and given up: {}; {e}", progress(&status.nodes));
            return Some(report(
                status,
                SiteState::RemovingNodes,
                message,
                Some(POLL),
            ));
        }
    };
    let pods: Vec<(SurvivorPod, Option<String>)> = pods
        .iter()
        .map(|p| {
            let running = p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            (
                SurvivorPod {
                    name: p.name_any(),
                    running,
                    labels: p.labels().clone(),
                },
                p.resource_version(),
            )
        })
        .collect();
    let views: Vec<SurvivorPod> = pods.iter().map(|(p, _)| p.clone()).collect();
    let from = format!("site {}", survivor.site);
    let naming = LostNaming {
        lost_cluster: &prev.name,
        survivor_cluster: &survivor.name,
        survivor_dcs: &survivor.dcs,
    };
    match next_removal(&status.nodes, &views, naming, REMOVE_RETRIES) {
        RemovalStep::Finished => {
            let note = format!(
                "lost site {}: {} from the ring through {from}; stopped tracking it. Its CassandraCluster {}/{} is left behind at site {} (delete it there if the site comes back)",
                prev.site,
                progress(&status.nodes),
                prev.namespace,
                prev.name,
                prev.site
            );
            info!(multicasskop = %mc.name_any(), site = %prev.site, "lost site's nodes removed");
            status::site_event(ctx, mc, EventKind::Normal, "LostSiteRemoved", note, lost).await;
            None
        }
        RemovalStep::Removed { node, pod } => {
            if let Some(n) = status.nodes.get_mut(node) {
                n.removed = true;
            }
            let removed = status.nodes.get(node).cloned().unwrap_or_default();
            let note = format!(
                "lost site {}: {} (node {} {} removed by pod {pod} at {from})",
                prev.site,
                progress(&status.nodes),
                removed.pod,
                removed.ip
            );
            let about = about_node(prev, &removed.pod);
            status::site_event(
                ctx,
                mc,
                EventKind::Normal,
                "NodeRemoved",
                note.clone(),
                about,
            )
            .await;
            Some(report(
                status,
                SiteState::RemovingNodes,
                note,
                Some(Duration::from_millis(500)),
            ))
        }
        RemovalStep::Label {
            node,
            pod,
            argument,
            attempt,
        } => {
            let version = pods
                .iter()
                .find(|(p, _)| p.name == pod)
                .and_then(|(_, v)| v.as_deref());
            let labels: BTreeMap<String, Option<String>> = [
                (pod_operation::NAME, Some(REMOVE.to_string())),
                (
                    pod_operation::STATUS,
                    Some(pod_operation::TO_DO.to_string()),
                ),
                (pod_operation::ARGUMENT, Some(argument.clone())),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            match site_io::label_pod_operation(&handle, &survivor.namespace, &pod, version, &labels)
                .await
            {
                Ok(_) => {
                    if let Some(n) = status.nodes.get_mut(node) {
                        n.attempts = attempt;
                    }
                    let note = format!(
                        "lost site {}: {}; asked pod {pod} at {from} to remove {argument} (attempt {attempt})",
                        prev.site,
                        progress(&status.nodes)
                    );
                    info!(multicasskop = %mc.name_any(), site = %prev.site, %pod, %argument, "remove asked");
                    let lost_pod = status
                        .nodes
                        .get(node)
                        .map(|n| n.pod.clone())
                        .unwrap_or_default();
                    let about = about_node(prev, &lost_pod);
                    status::site_event(
                        ctx,
                        mc,
                        EventKind::Normal,
                        "RemovingNode",
                        note.clone(),
                        about,
                    )
                    .await;
                    Some(report(status, SiteState::RemovingNodes, note, Some(POLL)))
                }
                Err(e) => {
                    let message =
                        format!("lost site {}: {}; {e}", prev.site, progress(&status.nodes));
                    Some(report(
                        status,
                        SiteState::RemovingNodes,
                        message,
                        Some(POLL),
                    ))
                }
            }
        }
        RemovalStep::Wait { why, .. } => {
            let message = format!(
                "lost site {}: {} through {from}; {why}",
                prev.site,
                progress(&status.nodes)
            );
            Some(report(
                status,
                SiteState::RemovingNodes,
                message,
                Some(POLL),
            ))
        }
        RemovalStep::Failed { why, .. } => {
            let message = format!(
                "lost site {}: {} through {from}; {why}. Fix the cause, then remove the node by hand (label a pod there operation-name=remove, operation-status=ToDo, operation-argument=<pod>_<ip>)",
                prev.site,
                progress(&status.nodes)
            );
            status::site_warning_once(
                ctx,
                mc,
                prev.message.as_deref(),
                "RemoveFailed",
                &message,
                at(prev).unwrap_or_default(),
            )
            .await;
            Some(report(status, SiteState::Failed, message, None))
        }
    }
}

fn at(prev: &SiteStatus) -> Option<k8s_openapi::api::core::v1::ObjectReference> {
    Some(status::at_site(&prev.site, &prev.namespace, &prev.name))
}

/// The lost site's CassandraCluster, for an Event about one of its nodes: one Event series per
/// node (Events with the same reason and related object merge into one series, which would
/// hide the later progress).
fn about_node(prev: &SiteStatus, pod: &str) -> Option<k8s_openapi::api::core::v1::ObjectReference> {
    let mut reference = status::at_site(&prev.site, &prev.namespace, &prev.name);
    reference.field_path = Some(format!("site {}, node {pod}", prev.site));
    Some(reference)
}

fn report(
    mut status: SiteStatus,
    state: SiteState,
    message: String,
    delay: Option<Duration>,
) -> (SiteStatus, SiteOutcome, Option<Duration>) {
    status.state = state;
    status.message = Some(message.clone());
    let outcome = SiteOutcome {
        site: status.site.clone(),
        state,
        overdue: false,
        message,
    };
    (status, outcome, delay)
}
