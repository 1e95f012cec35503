//! How a site's state is reported: its state and message while it waits, CassKop's view copied
//! into its status entry, its outcome for the ring's summary, and when the progress deadline
//! next needs a look.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;

use crate::api::{SiteState, SiteStatus};
use crate::controller::dereference::status_view;
use crate::core::aggregate::SiteOutcome;
use crate::core::federation::Federation;
use crate::core::readiness::SiteReadiness;

/// The state of a site that holds our spec while CassKop works on it (at work, blocked or
/// failed), with its message.
pub(crate) fn waiting(readiness: Option<&SiteReadiness>, site: &str) -> (SiteState, String) {
    match readiness {
        None => (
            SiteState::Progressing,
            format!("waiting for the CassandraCluster at site {site} to appear"),
        ),
        Some(r @ SiteReadiness::Failed { .. }) => (SiteState::Failed, r.describe(site)),
        Some(r @ (SiteReadiness::Blocked { .. } | SiteReadiness::Refused)) => {
            (SiteState::Blocked, r.describe(site))
        }
        Some(r) => (SiteState::Progressing, r.describe(site)),
    }
}

/// Copies CassKop's phase, last action and seed list into the site's status entry.
pub(crate) fn fill_casskop_view(status: &mut SiteStatus, object: &DynamicObject) {
    let s = status_view(object);
    status.phase = s.phase;
    status.last_cluster_action = s.last_cluster_action;
    status.last_cluster_action_status = s.last_cluster_action_status;
    status.seedlist = s.seedlist.unwrap_or_default();
}

/// Completes a site's status with its state, message and progress deadline.
pub(crate) fn describe(
    mut status: SiteStatus,
    state: SiteState,
    message: String,
    delay: Option<Duration>,
    federation: &Federation,
    now: Timestamp,
) -> (SiteStatus, SiteOutcome, Option<Duration>) {
    if matches!(
        state,
        SiteState::Progressing | SiteState::Failed | SiteState::Blocked
    ) && status.progressing_since.is_none()
    {
        status.progressing_since = Some(now.to_string());
    }
    let overdue = status
        .progressing_since
        .as_deref()
        .and_then(|s| s.parse::<Timestamp>().ok())
        .is_some_and(|since| {
            now.duration_since(since).as_secs()
                >= i64::try_from(federation.progress_deadline.as_secs()).unwrap_or(i64::MAX)
        });
    status.state = state;
    status.message = Some(message.clone());
    let outcome = SiteOutcome {
        site: status.site.clone(),
        state,
        overdue,
        message,
    };
    (status, outcome, delay)
}

/// The outcome a status entry describes (used when the spec is invalid and nothing is done).
pub(crate) fn outcome_of(status: &SiteStatus) -> SiteOutcome {
    SiteOutcome {
        site: status.site.clone(),
        state: status.state,
        overdue: false,
        message: status.message.clone().unwrap_or_default(),
    }
}

/// How long until the first progressing site passes its deadline (to report Degraded on time).
pub(crate) fn deadline_delay(
    sites: &[(SiteStatus, SiteOutcome)],
    deadline: Duration,
    now: Timestamp,
) -> Option<Duration> {
    sites
        .iter()
        .filter(|(_, o)| !o.overdue && matches!(o.state, SiteState::Progressing))
        .filter_map(|(s, _)| s.progressing_since.as_deref()?.parse::<Timestamp>().ok())
        .map(|since| {
            let elapsed = Duration::from_secs(
                u64::try_from(now.duration_since(since).as_secs()).unwrap_or(0),
            );
            deadline.saturating_sub(elapsed) + Duration::from_secs(1)
        })
        .min()
}

/// The sooner of two optional delays.
pub(crate) fn min_delay(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(state: SiteState, since: Option<&str>) -> (SiteStatus, SiteOutcome) {
        let status = SiteStatus {
            site: "a".into(),
            state,
            progressing_since: since.map(str::to_string),
            ..Default::default()
        };
        let outcome = outcome_of(&status);
        (status, outcome)
    }

    #[test]
    fn deadline_delay_counts_from_the_oldest_progressing_site() {
        let now: Timestamp = "2026-11-22T04:00:00Z".parse().expect("time");
        let deadline = Duration::from_secs(600);
        let cases = [
            (
                "nothing progressing",
                vec![site(SiteState::Ready, None)],
                None,
            ),
            (
                "started 100 s ago",
                vec![site(SiteState::Progressing, Some("2026-11-22T03:58:20Z"))],
                Some(Duration::from_secs(501)),
            ),
            (
                "the earliest wins",
                vec![
                    site(SiteState::Progressing, Some("2026-11-22T03:58:20Z")),
                    site(SiteState::Progressing, Some("2026-11-22T03:51:40Z")),
                ],
                Some(Duration::from_secs(101)),
            ),
            (
                "past the deadline: at least a second",
                vec![site(SiteState::Progressing, Some("2026-11-22T03:00:00Z"))],
                Some(Duration::from_secs(1)),
            ),
        ];
        for (name, sites, want) in cases {
            assert_eq!(deadline_delay(&sites, deadline, now), want, "{name}");
        }
    }

    #[test]
    fn waiting_states() {
        let cases = [
            (None, SiteState::Progressing),
            (Some(SiteReadiness::Settling), SiteState::Progressing),
            (
                Some(SiteReadiness::Blocked {
                    action: "UpdateDockerImage".into(),
                }),
                SiteState::Blocked,
            ),
            (Some(SiteReadiness::Refused), SiteState::Blocked),
            (
                Some(SiteReadiness::Failed {
                    action: "ScaleUp".into(),
                }),
                SiteState::Failed,
            ),
        ];
        for (readiness, want) in cases {
            assert_eq!(waiting(readiness.as_ref(), "a").0, want, "{readiness:?}");
        }
        assert_eq!(
            min_delay(Some(Duration::from_secs(2)), Some(Duration::from_secs(1))),
            Some(Duration::from_secs(1))
        );
        assert_eq!(min_delay(None, None), None);
    }
}
