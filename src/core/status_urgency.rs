//! Which status changes are written at once and which may wait for a later write (coalescing).
//!
//! A status write costs the management API server a write and every watcher an event; while a
//! rollout moves, most changes are CassKop's intermediate detail that the next reconcile
//! overwrites. They may wait a short debounce. Everything a user or a new leader acts on is
//! written at once: a condition, the phase, the observed generation, the seed list, a site's
//! state, ownership (uid), the write it awaits (`lastWrite`, what a new leader needs to judge
//! readiness), the progress deadline's start, and any field this module does not know.

use crate::api::{MultiCasskopStatus, SiteStatus};

/// How a computed status relates to the one last written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// Nothing changed: no write.
    Unchanged,
    /// Only detail that may wait: CassKop's phase and action per site, messages, the ready
    /// count, the confirmation of a write already recorded.
    MayWait,
    /// A change users or a new leader act on: written now.
    Now,
}

/// Compares the status about to be written with the previous one.
pub fn urgency(previous: &MultiCasskopStatus, next: &MultiCasskopStatus) -> Urgency {
    if previous == next {
        return Urgency::Unchanged;
    }
    if essential(previous) == essential(next) {
        Urgency::MayWait
    } else {
        Urgency::Now
    }
}

/// The status without what may wait (two statuses with equal essentials differ only in
/// [`Urgency::MayWait`] detail).
pub fn essential(status: &MultiCasskopStatus) -> MultiCasskopStatus {
    MultiCasskopStatus {
        ready_sites: None,
        conditions: status
            .conditions
            .iter()
            .map(
                |c| k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                    message: String::new(),
                    ..c.clone()
                },
            )
            .collect(),
        sites: status.sites.iter().map(essential_site).collect(),
        ..status.clone()
    }
}

fn essential_site(site: &SiteStatus) -> SiteStatus {
    SiteStatus {
        phase: None,
        last_cluster_action: None,
        last_cluster_action_status: None,
        seedlist: Vec::new(),
        message: None,
        last_write: site.last_write.clone().map(|mut w| {
            w.confirmed = false;
            w
        }),
        ..site.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{SiteState, WriteKind, WriteRecord};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: Some(1),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        }
    }

    fn record(rv: &str, confirmed: bool) -> WriteRecord {
        WriteRecord {
            resource_version: rv.into(),
            generation: 1,
            kind: WriteKind::Spec,
            annotation_digest: None,
            spec_digest: "d".into(),
            confirmed,
        }
    }

    fn site(state: SiteState) -> SiteStatus {
        SiteStatus {
            site: "a".into(),
            state,
            reachable: true,
            uid: Some("u".into()),
            phase: Some("Initializing".into()),
            last_cluster_action: Some("Initializing".into()),
            last_cluster_action_status: Some("Ongoing".into()),
            last_write: Some(record("10", false)),
            progressing_since: Some("2026-01-01T00:00:00Z".into()),
            message: Some("CassKop is working".into()),
            ..Default::default()
        }
    }

    fn ring(site: SiteStatus) -> MultiCasskopStatus {
        MultiCasskopStatus {
            observed_generation: None,
            phase: Some("Progressing".into()),
            ready_sites: Some("0/1".into()),
            conditions: vec![condition(
                "Ready",
                "False",
                "Progressing",
                "site a: working",
            )],
            seedlist: vec!["s".into()],
            sites: vec![site],
            site_in_progress: Some("a".into()),
        }
    }

    #[test]
    fn what_waits_and_what_does_not() {
        let before = ring(site(SiteState::Progressing));
        type Change = fn(&mut MultiCasskopStatus);
        let cases: Vec<(&str, Change, Urgency)> = vec![
            ("nothing", |_| {}, Urgency::Unchanged),
            (
                "CassKop's phase",
                |s| s.sites[0].phase = Some("Running".into()),
                Urgency::MayWait,
            ),
            (
                "CassKop's action status",
                |s| s.sites[0].last_cluster_action_status = Some("Done".into()),
                Urgency::MayWait,
            ),
            (
                "the site's message",
                |s| s.sites[0].message = Some("settling".into()),
                Urgency::MayWait,
            ),
            (
                "a condition's message",
                |s| s.conditions[0].message = "site a: settling".into(),
                Urgency::MayWait,
            ),
            (
                "the ready count",
                |s| s.ready_sites = Some("1/1".into()),
                Urgency::MayWait,
            ),
            (
                "the awaited write confirmed",
                |s| s.sites[0].last_write = Some(record("10", true)),
                Urgency::MayWait,
            ),
            (
                "a new awaited write",
                |s| s.sites[0].last_write = Some(record("11", false)),
                Urgency::Now,
            ),
            (
                "a site's state",
                |s| s.sites[0].state = SiteState::Ready,
                Urgency::Now,
            ),
            (
                "a site becomes Failed",
                |s| s.sites[0].state = SiteState::Failed,
                Urgency::Now,
            ),
            (
                "ownership",
                |s| s.sites[0].uid = Some("v".into()),
                Urgency::Now,
            ),
            (
                "reachability",
                |s| s.sites[0].reachable = false,
                Urgency::Now,
            ),
            (
                "progress deadline start",
                |s| s.sites[0].progressing_since = None,
                Urgency::Now,
            ),
            (
                "a condition's status",
                |s| s.conditions[0].status = "True".into(),
                Urgency::Now,
            ),
            (
                "a condition's reason",
                |s| s.conditions[0].reason = "Ready".into(),
                Urgency::Now,
            ),
            (
                "the phase",
                |s| s.phase = Some("Ready".into()),
                Urgency::Now,
            ),
            (
                "observed generation",
                |s| s.observed_generation = Some(1),
                Urgency::Now,
            ),
            (
                "the ring's seed list",
                |s| s.seedlist.push("t".into()),
                Urgency::Now,
            ),
            (
                "a new site",
                |s| s.sites.push(site(SiteState::Queued)),
                Urgency::Now,
            ),
            (
                "a refused spec",
                |s| s.sites[0].refused_spec = Some("d".into()),
                Urgency::Now,
            ),
        ];
        for (name, change, want) in cases {
            let mut after = before.clone();
            change(&mut after);
            assert_eq!(urgency(&before, &after), want, "{name}");
        }
    }

    #[test]
    fn a_first_status_is_written_at_once() {
        assert_eq!(
            urgency(
                &MultiCasskopStatus::default(),
                &ring(site(SiteState::Progressing))
            ),
            Urgency::Now
        );
    }
}
