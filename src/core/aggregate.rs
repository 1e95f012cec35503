//! One status for the whole ring: the phase, `readySites`, and the `Ready`, `Progressing` and
//! `Degraded` conditions, from the state of every site.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::core::validate::Finding;

pub use crate::api::SiteState;

/// One site's state, whether it is past its progress deadline, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteOutcome {
    /// Site name.
    pub site: String,
    /// Its state.
    pub state: SiteState,
    /// Progressing for longer than the progress deadline.
    pub overdue: bool,
    /// Explanation.
    pub message: String,
}

/// A condition before timestamps are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionValue {
    /// `Ready`, `Progressing` or `Degraded`.
    pub type_: &'static str,
    /// True or false.
    pub status: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Sentence.
    pub message: String,
}

/// The ring's summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// `Ready`, `Progressing`, `Degraded`, `Invalid` or `Deleting`.
    pub phase: &'static str,
    /// e.g. `2/3`.
    pub ready_sites: String,
    /// Ready, Progressing, Degraded.
    pub conditions: Vec<ConditionValue>,
    /// Every ring site is ready and none is paused: the spec is fully rolled out.
    pub rolled_out: bool,
    /// The first site (in rollout order) that is being worked on or waits for the user.
    pub site_in_progress: Option<String>,
}

/// The first site that is moving or stuck: what `kubectl get multicasskop` shows as `Site`.
pub fn site_in_progress(outcomes: &[SiteOutcome]) -> Option<String> {
    outcomes
        .iter()
        .find(|o| {
            matches!(
                o.state,
                SiteState::Progressing
                    | SiteState::Blocked
                    | SiteState::Failed
                    | SiteState::Joining
                    | SiteState::AwaitingReplication
                    | SiteState::Rebuilding
                    | SiteState::Decommissioning
                    | SiteState::Deleting
                    | SiteState::RemovingNodes
            )
        })
        .map(|o| o.site.clone())
}

/// Summarises site outcomes. `invalid` holds the input errors when the spec cannot be rolled
/// out; `deleting` is set while the MultiCasskop is being deleted.
pub fn summarize(outcomes: &[SiteOutcome], invalid: &[Finding], deleting: bool) -> Summary {
    let in_ring: Vec<&SiteOutcome> = outcomes
        .iter()
        .filter(|o| !matches!(o.state, SiteState::Orphaned | SiteState::Decommissioning))
        .collect();
    let ready = in_ring
        .iter()
        .filter(|o| o.state == SiteState::Ready)
        .count();
    let ready_sites = format!("{ready}/{}", in_ring.len());
    let list = |pred: &dyn Fn(&SiteOutcome) -> bool| {
        outcomes
            .iter()
            .filter(|o| pred(o))
            .map(|o| o.site.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };

    let broken = list(&|o| {
        matches!(
            o.state,
            SiteState::Unreachable
                | SiteState::Invalid
                | SiteState::Failed
                | SiteState::Blocked
                | SiteState::Conflict
        )
    });
    let overdue = list(&|o| o.overdue);
    let moving = list(&|o| {
        matches!(
            o.state,
            SiteState::Queued
                | SiteState::Progressing
                | SiteState::Unknown
                | SiteState::Decommissioning
                | SiteState::Deleting
                | SiteState::Joining
                | SiteState::AwaitingReplication
                | SiteState::Rebuilding
                | SiteState::RemovingNodes
        )
    });
    let paused = list(&|o| o.state == SiteState::Paused);
    let all_ready = !in_ring.is_empty()
        && in_ring
            .iter()
            .all(|o| matches!(o.state, SiteState::Ready | SiteState::Paused))
        && ready > 0;

    let degraded = if !invalid.is_empty() {
        ConditionValue {
            type_: "Degraded",
            status: true,
            reason: "InvalidSpec",
            message: invalid
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        }
    } else if !broken.is_empty() {
        let detail = outcomes
            .iter()
            .filter(|o| {
                matches!(
                    o.state,
                    SiteState::Unreachable
                        | SiteState::Invalid
                        | SiteState::Failed
                        | SiteState::Blocked
                        | SiteState::Conflict
                )
            })
            .map(|o| format!("{} {}: {}", o.site, o.state.as_str(), o.message))
            .collect::<Vec<_>>()
            .join("; ");
        ConditionValue {
            type_: "Degraded",
            status: true,
            reason: "SiteFailing",
            message: detail,
        }
    } else if !overdue.is_empty() {
        ConditionValue {
            type_: "Degraded",
            status: true,
            reason: "ProgressDeadlineExceeded",
            message: format!(
                "not ready within the progress deadline: {overdue}; the rollout waits there"
            ),
        }
    } else {
        ConditionValue {
            type_: "Degraded",
            status: false,
            reason: "AllSitesHealthy",
            message: "no site reports a problem".into(),
        }
    };
    let progressing = if deleting {
        ConditionValue {
            type_: "Progressing",
            status: true,
            reason: "Deleting",
            message: format!("cleaning up sites: {}", list(&|_| true)),
        }
    } else if !moving.is_empty() {
        ConditionValue {
            type_: "Progressing",
            status: true,
            reason: "RollingOut",
            message: format!("sites not yet ready: {moving}"),
        }
    } else {
        ConditionValue {
            type_: "Progressing",
            status: false,
            reason: "RolloutIdle",
            message: "nothing in progress".into(),
        }
    };
    let ready_condition = if invalid.is_empty() && all_ready && !deleting {
        let message = if paused.is_empty() {
            format!("all {ready} sites ready")
        } else {
            format!("{ready} sites ready; paused: {paused}")
        };
        ConditionValue {
            type_: "Ready",
            status: true,
            reason: "AllSitesReady",
            message,
        }
    } else {
        ConditionValue {
            type_: "Ready",
            status: false,
            reason: if deleting {
                "Deleting"
            } else {
                "SitesNotReady"
            },
            message: format!("{ready_sites} sites ready"),
        }
    };

    let phase = if deleting {
        "Deleting"
    } else if !invalid.is_empty() {
        "Invalid"
    } else if degraded.status {
        "Degraded"
    } else if ready_condition.status {
        "Ready"
    } else {
        "Progressing"
    };
    let rolled_out = invalid.is_empty() && !deleting && all_ready && paused.is_empty();
    Summary {
        phase,
        ready_sites,
        conditions: vec![ready_condition, progressing, degraded],
        rolled_out,
        site_in_progress: site_in_progress(outcomes),
    }
}

/// Builds conditions, keeping `lastTransitionTime` from `previous` when the status is unchanged.
pub fn with_transition_times(
    previous: &[Condition],
    values: &[ConditionValue],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    values
        .iter()
        .map(|v| {
            let status = if v.status { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|c| c.type_ == v.type_ && c.status == status)
                .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
            Condition {
                type_: v.type_.to_string(),
                status: status.to_string(),
                reason: v.reason.to_string(),
                message: v.message.clone(),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use SiteState::*;

    fn outcomes(states: &[(SiteState, bool)]) -> Vec<SiteOutcome> {
        states
            .iter()
            .enumerate()
            .map(|(i, (s, overdue))| SiteOutcome {
                site: format!("s{i}"),
                state: *s,
                overdue: *overdue,
                message: "m".into(),
            })
            .collect()
    }

    fn condition(summary: &Summary, type_: &str) -> (bool, &'static str) {
        let c = summary
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .expect("condition present");
        (c.status, c.reason)
    }

    #[test]
    fn summary_table() {
        let bad = vec![Finding::new("spec.x", "wrong")];
        let cases: Vec<(
            &str,
            Vec<SiteOutcome>,
            &[Finding],
            bool,
            &str,
            &str,
            (bool, &str),
            (bool, &str),
            (bool, &str),
            bool,
        )> = vec![
            (
                "all ready",
                outcomes(&[(Ready, false), (Ready, false)]),
                &[],
                false,
                "Ready",
                "2/2",
                (true, "AllSitesReady"),
                (false, "RolloutIdle"),
                (false, "AllSitesHealthy"),
                true,
            ),
            (
                "rolling out",
                outcomes(&[(Ready, false), (Progressing, false), (Queued, false)]),
                &[],
                false,
                "Progressing",
                "1/3",
                (false, "SitesNotReady"),
                (true, "RollingOut"),
                (false, "AllSitesHealthy"),
                false,
            ),
            (
                "a site joining a Ready ring: not Ready until it is rebuilt",
                outcomes(&[
                    (Ready, false),
                    (Ready, false),
                    (Joining, false),
                    (AwaitingReplication, false),
                    (Rebuilding, false),
                ]),
                &[],
                false,
                "Progressing",
                "2/5",
                (false, "SitesNotReady"),
                (true, "RollingOut"),
                (false, "AllSitesHealthy"),
                false,
            ),
            (
                "a lost site's nodes being removed: still rolling out",
                outcomes(&[(Ready, false), (Ready, false), (RemovingNodes, false)]),
                &[],
                false,
                "Progressing",
                "2/3",
                (false, "SitesNotReady"),
                (true, "RollingOut"),
                (false, "AllSitesHealthy"),
                false,
            ),
            (
                "stuck past deadline",
                outcomes(&[(Ready, false), (Progressing, true)]),
                &[],
                false,
                "Degraded",
                "1/2",
                (false, "SitesNotReady"),
                (true, "RollingOut"),
                (true, "ProgressDeadlineExceeded"),
                false,
            ),
            (
                "unreachable site",
                outcomes(&[(Ready, false), (Unreachable, false)]),
                &[],
                false,
                "Degraded",
                "1/2",
                (false, "SitesNotReady"),
                (false, "RolloutIdle"),
                (true, "SiteFailing"),
                false,
            ),
            (
                "paused site: ready but not rolled out",
                outcomes(&[(Ready, false), (Paused, false)]),
                &[],
                false,
                "Ready",
                "1/2",
                (true, "AllSitesReady"),
                (false, "RolloutIdle"),
                (false, "AllSitesHealthy"),
                false,
            ),
            (
                "orphaned sites do not count",
                outcomes(&[(Ready, false), (Orphaned, false)]),
                &[],
                false,
                "Ready",
                "1/1",
                (true, "AllSitesReady"),
                (false, "RolloutIdle"),
                (false, "AllSitesHealthy"),
                true,
            ),
            (
                "invalid spec",
                outcomes(&[(Ready, false)]),
                &bad,
                false,
                "Invalid",
                "1/1",
                (false, "SitesNotReady"),
                (false, "RolloutIdle"),
                (true, "InvalidSpec"),
                false,
            ),
            (
                "deleting",
                outcomes(&[(Deleting, false)]),
                &[],
                true,
                "Deleting",
                "0/1",
                (false, "Deleting"),
                (true, "Deleting"),
                (false, "AllSitesHealthy"),
                false,
            ),
            (
                "no sites",
                vec![],
                &[],
                false,
                "Progressing",
                "0/0",
                (false, "SitesNotReady"),
                (false, "RolloutIdle"),
                (false, "AllSitesHealthy"),
                false,
            ),
        ];
        for (
            name,
            o,
            invalid,
            deleting,
            phase,
            ready_sites,
            ready,
            progressing,
            degraded,
            rolled_out,
        ) in cases
        {
            let s = summarize(&o, invalid, deleting);
            assert_eq!(s.phase, phase, "{name}: phase");
            assert_eq!(s.ready_sites, ready_sites, "{name}: readySites");
            assert_eq!(condition(&s, "Ready"), ready, "{name}: Ready");
            assert_eq!(
                condition(&s, "Progressing"),
                progressing,
                "{name}: Progressing"
            );
            assert_eq!(condition(&s, "Degraded"), degraded, "{name}: Degraded");
            assert_eq!(s.rolled_out, rolled_out, "{name}: rolled out");
        }
    }

    #[test]
    fn site_in_progress_is_the_first_moving_or_stuck_site() {
        let at = |states: &[SiteState]| -> Vec<SiteOutcome> {
            states
                .iter()
                .enumerate()
                .map(|(i, state)| SiteOutcome {
                    site: format!("s{i}"),
                    state: *state,
                    overdue: false,
                    message: String::new(),
                })
                .collect()
        };
        let cases: [(&[SiteState], Option<&str>); 6] = [
            (&[Ready, Ready], None),
            (&[Ready, Progressing, Queued], Some("s1")),
            (&[Paused, Queued, Blocked], Some("s2")),
            (&[Ready, AwaitingReplication], Some("s1")),
            (&[Orphaned, Unreachable, Decommissioning], Some("s2")),
            (&[Rebuilding, Failed], Some("s0")),
        ];
        for (states, want) in cases {
            assert_eq!(site_in_progress(&at(states)).as_deref(), want, "{states:?}");
        }
    }

    #[test]
    fn degraded_message_names_the_site_and_why() {
        let o = vec![SiteOutcome {
            site: "east".into(),
            state: Unreachable,
            overdue: false,
            message: "connection refused".into(),
        }];
        let s = summarize(&o, &[], false);
        let degraded = s
            .conditions
            .iter()
            .find(|c| c.type_ == "Degraded")
            .expect("present");
        assert_eq!(degraded.message, "east Unreachable: connection refused");
    }

    #[test]
    fn transition_time_kept_only_while_status_is_unchanged() {
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).expect("time"));
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000).expect("time"));
        let v = |status| {
            vec![ConditionValue {
                type_: "Ready",
                status,
                reason: "R",
                message: "m".into(),
            }]
        };
        let first = with_transition_times(&[], &v(false), Some(1), &t0);
        assert_eq!(first[0].last_transition_time, t0);
        let same = with_transition_times(&first, &v(false), Some(2), &t1);
        assert_eq!(
            same[0].last_transition_time, t0,
            "unchanged status keeps its time"
        );
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = with_transition_times(&same, &v(true), Some(2), &t1);
        assert_eq!(
            flipped[0].last_transition_time, t1,
            "a flip gets a new time"
        );
    }
}
