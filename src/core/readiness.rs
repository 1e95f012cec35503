//! Is a site ready for the spec and seeds we last wrote there?
//!
//! CassKop has no `observedGeneration`, so "Running and Done" alone could describe the state
//! *before* our write. But CassKop writes with optimistic concurrency (its updates carry the
//! resourceVersion it read), so any write it makes after ours was computed from our version.
//! We therefore remember the resourceVersion our last spec or seed write produced and call the
//! site ready only once the object has moved past it and CassKop reports `phase: Running` with
//! `lastClusterActionStatus: Done`.

use crate::api::StatusView;

/// CassKop's phase of a cluster with nothing left to do.
pub const PHASE_RUNNING: &str = "Running";
/// CassKop's status of a finished action.
pub const ACTION_DONE: &str = "Done";
/// CassKop's status of a failed action.
pub const ACTION_ERROR: &str = "Error";

/// How far a site is with our last write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteReadiness {
    /// CassKop took in our last write and finished.
    Ready,
    /// CassKop has not written the object since our last write.
    AwaitingCassKop,
    /// CassKop is working on it.
    Busy {
        /// `status.phase`.
        phase: String,
        /// `status.lastClusterAction`.
        action: String,
        /// `status.lastClusterActionStatus`.
        action_status: String,
    },
    /// CassKop reports the last action failed.
    Failed {
        /// The failed action.
        action: String,
    },
}

/// Readiness of a site from its stored resourceVersion and status, given the resourceVersion
/// our last write produced there (if CassKop may not have seen it yet).
///
/// `spec_taken_in` is the other proof that CassKop saw our spec: its last-applied-configuration
/// annotation already holds it (a hand edit restored before CassKop looked leaves nothing for
/// CassKop to do, so it never writes again). The caller only sets it when the awaited write did
/// not change the seed list, which the annotation does not cover.
pub fn site_readiness(
    observed_resource_version: &str,
    status: &StatusView,
    awaiting_resource_version: Option<&str>,
    spec_taken_in: bool,
) -> SiteReadiness {
    if awaiting_resource_version == Some(observed_resource_version) && !spec_taken_in {
        return SiteReadiness::AwaitingCassKop;
    }
    let phase = status.phase.clone().unwrap_or_default();
    let action = status.last_cluster_action.clone().unwrap_or_default();
    let action_status = status
        .last_cluster_action_status
        .clone()
        .unwrap_or_default();
    if action_status == ACTION_ERROR {
        return SiteReadiness::Failed { action };
    }
    if phase == PHASE_RUNNING && action_status == ACTION_DONE {
        return SiteReadiness::Ready;
    }
    if phase.is_empty() && action_status.is_empty() {
        return SiteReadiness::AwaitingCassKop;
    }
    SiteReadiness::Busy {
        phase,
        action,
        action_status,
    }
}

impl SiteReadiness {
    /// A sentence for the site's status message.
    pub fn describe(&self, site: &str) -> String {
        match self {
            SiteReadiness::Ready => "ready".into(),
            SiteReadiness::AwaitingCassKop => format!(
                "waiting for CassKop at site {site} to take in the change (is CassKop running there?)"
            ),
            SiteReadiness::Busy {
                phase,
                action,
                action_status,
            } => format!("CassKop is busy: phase {phase}, {action} {action_status}"),
            SiteReadiness::Failed { action } => format!(
                "CassKop reports {action} failed (lastClusterActionStatus Error); fix the cause at the site"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(phase: &str, action: &str, action_status: &str) -> StatusView {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        StatusView {
            phase: opt(phase),
            last_cluster_action: opt(action),
            last_cluster_action_status: opt(action_status),
            seedlist: None,
        }
    }

    #[test]
    fn readiness_table() {
        let busy = |p: &str, a: &str, s: &str| SiteReadiness::Busy {
            phase: p.into(),
            action: a.into(),
            action_status: s.into(),
        };
        let cases = [
            (
                "running and done, nothing pending",
                "5",
                status("Running", "Initializing", "Done"),
                None,
                SiteReadiness::Ready,
            ),
            (
                "running and done after our write",
                "6",
                status("Running", "UpdateDockerImage", "Done"),
                Some("5"),
                SiteReadiness::Ready,
            ),
            (
                "still our version: CassKop has not seen it, even if Done",
                "5",
                status("Running", "Initializing", "Done"),
                Some("5"),
                SiteReadiness::AwaitingCassKop,
            ),
            (
                "new object without status",
                "3",
                status("", "", ""),
                None,
                SiteReadiness::AwaitingCassKop,
            ),
            (
                "initializing",
                "6",
                status("Initializing", "Initializing", "Ongoing"),
                Some("5"),
                busy("Initializing", "Initializing", "Ongoing"),
            ),
            (
                "update ongoing",
                "7",
                status("Pending", "UpdateDockerImage", "Ongoing"),
                Some("5"),
                busy("Pending", "UpdateDockerImage", "Ongoing"),
            ),
            (
                "seed list configuring",
                "7",
                status("Running", "UpdateSeedList", "Configuring"),
                Some("5"),
                busy("Running", "UpdateSeedList", "Configuring"),
            ),
            (
                "pending phase even if done",
                "7",
                status("Pending", "ScaleUp", "Done"),
                None,
                busy("Pending", "ScaleUp", "Done"),
            ),
            (
                "error",
                "7",
                status("Running", "ScaleDown", "Error"),
                Some("5"),
                SiteReadiness::Failed {
                    action: "ScaleDown".into(),
                },
            ),
        ];
        for (name, rv, st, awaiting, want) in cases {
            assert_eq!(site_readiness(rv, &st, awaiting, false), want, "{name}");
        }
        assert_eq!(
            site_readiness(
                "5",
                &status("Running", "Initializing", "Done"),
                Some("5"),
                true
            ),
            SiteReadiness::Ready,
            "CassKop's last-applied spec already holds ours: nothing left for it to do"
        );
        assert_eq!(
            site_readiness(
                "5",
                &status("Pending", "UpdateDockerImage", "Ongoing"),
                Some("5"),
                true
            ),
            SiteReadiness::Busy {
                phase: "Pending".into(),
                action: "UpdateDockerImage".into(),
                action_status: "Ongoing".into()
            },
        );
    }
}
