//! Is a site ready for what we last wrote there? The rule, from the real CassKop's traces
//! (`../shared/casskop-traces/`, see [`crate::core::evidence`]):
//!
//! 1. **CassKop acted on our write.** CassKop has no `observedGeneration`, but its
//!    last-applied annotation records the `metadata.generation` it acted on. A site is never
//!    ready before that generation reaches the one our write produced (trace-cc1: our image
//!    change at rv 281 is generation 4; CassKop's annotation says 4 from rv 303, 1.1 s later).
//!    A write that only changed `/status` (the seed list on cscetbon's CRD) does not move the
//!    generation; then CassKop must have rewritten its annotation after our write (rv 317 ours,
//!    rv 339 CassKop's): it does so after every write, and with optimistic concurrency, so a
//!    rewrite after ours was computed from ours. A labels-only write needs nothing from CassKop.
//! 2. **Its status is from after that.** cscetbon's CassKop writes the annotation first and the
//!    status 1–25 ms later, so at rv 303 the status still says `Running`, `Initializing/Done`
//!    from before our change. The status counts once CassKop's `/status` managedFields entry is
//!    newer than its annotation entry, or once the acknowledgement has been seen for
//!    [`STATUS_SETTLE`] (the status write then either happened or was a no-op: CassKop had
//!    nothing to do). Orange's CRD has no status subresource: both go in one write.
//! 3. **It says done.** `phase: Running` and `lastClusterActionStatus: Done`. `ToDo` is a change
//!    CassKop cannot act on yet (trace-cc2: Jolokia unreachable) and holds the rollout;
//!    `Error` is a failure; `CorrectCRDConfig` is a refusal (CassKop wrote its previous spec
//!    back); anything else is work in progress (phase stays `Running` during changes).

use std::time::Duration;

use crate::api::{StatusView, WriteKind, WriteRecord};
use crate::core::evidence::CasskopEvidence;

/// CassKop's phase of a cluster with nothing left to do.
pub const PHASE_RUNNING: &str = "Running";
/// CassKop's status of a finished action.
pub const ACTION_DONE: &str = "Done";
/// CassKop's status of a failed action.
pub const ACTION_ERROR: &str = "Error";
/// CassKop's status of an action it cannot start yet.
pub const ACTION_TODO: &str = "ToDo";
/// CassKop's action when it refuses a change and writes its previous spec back.
pub const ACTION_CORRECT_CRD_CONFIG: &str = "CorrectCRDConfig";

/// How long after first seeing CassKop's annotation for our write its status is taken as
/// final when the managedFields times (whole seconds) cannot order the two writes. The traces
/// show the status write 1–25 ms after the annotation (rv 303→304: 1 ms, 339→340: 8 ms,
/// 244→246: 16 ms, 269→270: 18 ms); one second is 40 times the longest. It only delays
/// changes CassKop has nothing to do for: a real action stays `Ongoing` for ≥ 20 s and ends
/// with a status write in a later second than the annotation.
pub const STATUS_SETTLE: Duration = Duration::from_secs(1);

/// How far a site is with our last write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteReadiness {
    /// CassKop took in our last write and finished.
    Ready,
    /// CassKop has not acted on our last write yet.
    AwaitingCassKop {
        /// The generation CassKop must record.
        wanted_generation: i64,
        /// The generation its annotation records, if any.
        applied_generation: Option<i64>,
    },
    /// CassKop acted on our write; its status for it may still be on the way.
    Settling,
    /// CassKop is working on it.
    Busy {
        /// `status.phase`.
        phase: String,
        /// `status.lastClusterAction`.
        action: String,
        /// `status.lastClusterActionStatus`.
        action_status: String,
    },
    /// CassKop has the change queued but cannot start it (`ToDo`).
    Blocked {
        /// The action waiting.
        action: String,
    },
    /// CassKop refused the change and wrote its previous spec back.
    Refused,
    /// CassKop reports the last action failed.
    Failed {
        /// The failed action.
        action: String,
    },
}

/// What is known of a site's object when judging readiness.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// The object's `metadata.generation`.
    pub generation: i64,
    /// What CassKop's writes prove.
    pub evidence: &'a CasskopEvidence,
    /// CassKop's status.
    pub status: &'a StatusView,
    /// The object holds the spec and seeds we want (a refusal writes something else back).
    pub holds_our_spec: bool,
}

/// Whether CassKop has acted on `record` (rule 1). Without a record, on the object's own
/// generation.
pub fn acknowledged(obs: &Observation<'_>, record: Option<&WriteRecord>) -> bool {
    let Some(applied) = obs.evidence.applied_generation else {
        return false;
    };
    if applied < wanted_generation(obs, record) {
        return false;
    }
    match record {
        Some(r) if matches!(r.kind, WriteKind::Status | WriteKind::SpecAndStatus) => {
            obs.evidence.annotation_digest.is_some()
                && obs.evidence.annotation_digest != r.annotation_digest
        }
        _ => true,
    }
}

fn wanted_generation(obs: &Observation<'_>, record: Option<&WriteRecord>) -> i64 {
    let written = record.map(|r| r.generation);
    if obs.evidence.separate_status {
        // CassKop's status writes do not move the generation: the object's own is the floor.
        written.unwrap_or(0).max(obs.generation)
    } else {
        // Without a status subresource CassKop's status writes move the generation too, so
        // only the generation we wrote is a target it must reach.
        written.unwrap_or(obs.generation)
    }
}

/// Readiness of a site for `record` (our last write, `None` if we never wrote or forgot),
/// given for how long the acknowledgement has been seen (`None`: not seen before now).
pub fn site_readiness(
    obs: &Observation<'_>,
    record: Option<&WriteRecord>,
    acknowledged_for: Option<Duration>,
) -> SiteReadiness {
    let metadata_only = record.is_some_and(|r| r.kind == WriteKind::Metadata);
    if !metadata_only && !acknowledged(obs, record) {
        return SiteReadiness::AwaitingCassKop {
            wanted_generation: wanted_generation(obs, record),
            applied_generation: obs.evidence.applied_generation,
        };
    }
    let settled = acknowledged_for.is_some_and(|d| d >= STATUS_SETTLE);
    // A status not proven to be from after CassKop saw our write may say anything about work in
    // progress, but never that our change is done or refused.
    // Without a write of ours pending (a labels-only one, or one already confirmed at this
    // generation) there is no change of ours for the status to predate. No record at all is
    // not proof of that: a controller that died between a site write and the status write
    // that records it leaves none, so the status must still be shown to be current.
    let nothing_pending = record.is_some_and(|r| {
        r.kind == WriteKind::Metadata || (r.confirmed && r.generation == obs.generation)
    });
    let fresh = obs.evidence.status_follows_annotation() || settled || nothing_pending;
    let status = obs.status;
    let phase = status.phase.clone().unwrap_or_default();
    let action = status.last_cluster_action.clone().unwrap_or_default();
    let action_status = status
        .last_cluster_action_status
        .clone()
        .unwrap_or_default();
    if action == ACTION_CORRECT_CRD_CONFIG && !obs.holds_our_spec {
        return if fresh {
            SiteReadiness::Refused
        } else {
            SiteReadiness::Settling
        };
    }
    if action_status == ACTION_ERROR {
        return SiteReadiness::Failed { action };
    }
    if action_status == ACTION_TODO {
        return SiteReadiness::Blocked { action };
    }
    if phase == PHASE_RUNNING && action_status == ACTION_DONE {
        return if fresh {
            SiteReadiness::Ready
        } else {
            SiteReadiness::Settling
        };
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
            SiteReadiness::AwaitingCassKop {
                wanted_generation,
                applied_generation,
            } => format!(
                "waiting for CassKop at site {site} to act on generation {wanted_generation} (its last-applied annotation records {}); is CassKop running there?",
                applied_generation.map_or_else(|| "none".to_string(), |g| g.to_string())
            ),
            SiteReadiness::Settling => {
                format!("CassKop at site {site} acted on the change; waiting for its status")
            }
            SiteReadiness::Busy {
                phase,
                action,
                action_status,
            } => format!(
                "CassKop is working: {} {}, phase {}",
                or_none(action),
                or_none(action_status),
                or_none(phase)
            ),
            SiteReadiness::Blocked { action } => format!(
                "CassKop at site {site} holds {action} at ToDo: it cannot start it yet (it does so when it cannot reach Cassandra's Jolokia, for example); the rollout waits here"
            ),
            SiteReadiness::Refused => format!(
                "CassKop at site {site} refused the change (CorrectCRDConfig: it wrote its previous spec back); not written again until the MultiCasskop changes; see CassKop's log at the site for the reason"
            ),
            SiteReadiness::Failed { action } => format!(
                "CassKop reports {action} failed (lastClusterActionStatus Error); fix the cause at the site"
            ),
        }
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
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

    fn evidence(applied: Option<i64>, digest: &str, ann: i64, st: Option<i64>) -> CasskopEvidence {
        CasskopEvidence {
            applied_generation: applied,
            annotation_digest: (!digest.is_empty()).then(|| digest.to_string()),
            annotation_written: Some(ann),
            status_written: st,
            separate_status: st.is_some(),
            applied_by_multicasskop: true,
        }
    }

    fn record(generation: i64, kind: WriteKind, digest: &str) -> WriteRecord {
        WriteRecord {
            resource_version: "281".into(),
            generation,
            kind,
            annotation_digest: (!digest.is_empty()).then(|| digest.to_string()),
            spec_digest: "d".into(),
            confirmed: false,
        }
    }

    #[test]
    fn readiness_follows_the_traces() {
        let busy = |p: &str, a: &str, s: &str| SiteReadiness::Busy {
            phase: p.into(),
            action: a.into(),
            action_status: s.into(),
        };
        let awaiting = |w: i64, a: Option<i64>| SiteReadiness::AwaitingCassKop {
            wanted_generation: w,
            applied_generation: a,
        };
        let spec4 = record(4, WriteKind::Spec, "a3");
        let seeds = record(4, WriteKind::Status, "a4");
        let labels = record(4, WriteKind::Metadata, "a4");
        let both = record(4, WriteKind::SpecAndStatus, "a4");
        let create = record(1, WriteKind::Spec, "");
        let confirmed = WriteRecord {
            confirmed: true,
            ..spec4.clone()
        };
        // (name, generation, evidence, status, record, acknowledged for, holds our spec, want)
        let cases: Vec<(
            &str,
            i64,
            CasskopEvidence,
            StatusView,
            Option<&WriteRecord>,
            Option<u64>,
            bool,
            SiteReadiness,
        )> = vec![
            (
                "rv 281: our write, CassKop's annotation still says 3",
                4,
                evidence(Some(3), "a3", 100, Some(100)),
                status("Running", "Initializing", "Done"),
                Some(&spec4),
                None,
                true,
                awaiting(4, Some(3)),
            ),
            (
                "a lagging watch: the store still shows generation 3 but our write made 4",
                3,
                evidence(Some(3), "a3", 100, Some(100)),
                status("Running", "Initializing", "Done"),
                Some(&spec4),
                None,
                true,
                awaiting(4, Some(3)),
            ),
            (
                "rv 303: annotation for 4, status from before (Initializing/Done)",
                4,
                evidence(Some(4), "a4", 166, Some(99)),
                status("Running", "Initializing", "Done"),
                Some(&spec4),
                None,
                true,
                SiteReadiness::Settling,
            ),
            (
                "rv 303 after a restart: acknowledgement first seen just now",
                4,
                evidence(Some(4), "a4", 166, Some(99)),
                status("Running", "Initializing", "Done"),
                Some(&spec4),
                Some(0),
                true,
                SiteReadiness::Settling,
            ),
            (
                "rv 304: UpdateDockerImage/Ongoing, same second as the annotation",
                4,
                evidence(Some(4), "a4", 166, Some(166)),
                status("Running", "UpdateDockerImage", "Ongoing"),
                Some(&spec4),
                Some(0),
                true,
                busy("Running", "UpdateDockerImage", "Ongoing"),
            ),
            (
                "rv 308: UpdateDockerImage/Done, 19 s after the annotation",
                4,
                evidence(Some(4), "a4", 166, Some(185)),
                status("Running", "UpdateDockerImage", "Done"),
                Some(&spec4),
                Some(19),
                true,
                SiteReadiness::Ready,
            ),
            (
                "a change CassKop has nothing to do for: ready once settled",
                4,
                evidence(Some(4), "a4", 166, Some(99)),
                status("Running", "Initializing", "Done"),
                Some(&spec4),
                Some(1),
                true,
                SiteReadiness::Ready,
            ),
            (
                "rv 317: our seed list through /status; annotation not rewritten yet",
                4,
                evidence(Some(4), "a4", 166, Some(185)),
                status("Running", "UpdateDockerImage", "Done"),
                Some(&seeds),
                None,
                true,
                awaiting(4, Some(4)),
            ),
            (
                "rv 339: annotation rewritten after our seed write; status still the old Done",
                4,
                evidence(Some(4), "a5", 216, Some(185)),
                status("Running", "UpdateDockerImage", "Done"),
                Some(&seeds),
                None,
                true,
                SiteReadiness::Settling,
            ),
            (
                "rv 340: UpdateSeedList/Ongoing",
                4,
                evidence(Some(4), "a5", 216, Some(216)),
                status("Running", "UpdateSeedList", "Ongoing"),
                Some(&seeds),
                Some(0),
                true,
                busy("Running", "UpdateSeedList", "Ongoing"),
            ),
            (
                "rv 345: UpdateSeedList/Done",
                4,
                evidence(Some(4), "a6", 216, Some(236)),
                status("Running", "UpdateSeedList", "Done"),
                Some(&seeds),
                Some(20),
                true,
                SiteReadiness::Ready,
            ),
            (
                "spec and seeds: generation 4 recorded but the annotation predates our status write",
                4,
                evidence(Some(4), "a4", 166, Some(185)),
                status("Running", "UpdateDockerImage", "Done"),
                Some(&both),
                None,
                true,
                awaiting(4, Some(4)),
            ),
            (
                "labels only: nothing for CassKop to do, even if it is down",
                4,
                evidence(Some(4), "a4", 166, Some(185)),
                status("Running", "UpdateDockerImage", "Done"),
                Some(&labels),
                None,
                true,
                SiteReadiness::Ready,
            ),
            (
                "trace-cc2: Jolokia down, UpdateDockerImage/ToDo",
                4,
                evidence(Some(4), "a4", 166, Some(167)),
                status("Running", "UpdateDockerImage", "ToDo"),
                Some(&spec4),
                Some(60),
                true,
                SiteReadiness::Blocked {
                    action: "UpdateDockerImage".into(),
                },
            ),
            (
                "create: defaults written, no annotation yet (rv 234)",
                2,
                evidence(None, "", 100, Some(100)),
                status("", "", ""),
                Some(&create),
                None,
                true,
                awaiting(2, None),
            ),
            (
                "create: Initializing without a cluster action (rv 246)",
                2,
                evidence(Some(2), "a2", 100, Some(100)),
                status("Initializing", "", ""),
                Some(&create),
                Some(0),
                true,
                busy("Initializing", "", ""),
            ),
            (
                "create: Running, Initializing/Done (rv 270)",
                2,
                evidence(Some(2), "a2", 150, Some(150)),
                status("Running", "Initializing", "Done"),
                Some(&create),
                Some(50),
                true,
                SiteReadiness::Ready,
            ),
            (
                "refused: CassKop wrote its previous spec back",
                5,
                evidence(Some(5), "a5", 170, Some(171)),
                status("Running", "CorrectCRDConfig", "Done"),
                Some(&spec4),
                Some(5),
                false,
                SiteReadiness::Refused,
            ),
            (
                "an old CorrectCRDConfig on a spec that holds ours is not a refusal",
                5,
                evidence(Some(5), "a5", 170, Some(171)),
                status("Running", "CorrectCRDConfig", "Done"),
                Some(&spec4),
                Some(5),
                true,
                SiteReadiness::Ready,
            ),
            (
                "error",
                4,
                evidence(Some(4), "a4", 166, Some(170)),
                status("Running", "ScaleDown", "Error"),
                Some(&spec4),
                Some(5),
                true,
                SiteReadiness::Failed {
                    action: "ScaleDown".into(),
                },
            ),
            (
                "Orange CRD: annotation and status in one write, generation moved past ours",
                5,
                evidence(Some(4), "a4", 166, None),
                status("Running", "UpdateDockerImage", "Ongoing"),
                Some(&spec4),
                None,
                true,
                busy("Running", "UpdateDockerImage", "Ongoing"),
            ),
            (
                "Orange CRD: done",
                6,
                evidence(Some(5), "a5", 190, None),
                status("Running", "UpdateDockerImage", "Done"),
                Some(&spec4),
                None,
                true,
                SiteReadiness::Ready,
            ),
            (
                "a confirmed write at this generation: a restart does not make a Ready site wait",
                4,
                evidence(Some(4), "a4", 190, Some(185)),
                status("Running", "UpdateDockerImage", "Done"),
                Some(&confirmed),
                Some(0),
                true,
                SiteReadiness::Ready,
            ),
            (
                "confirmed at an older generation: someone changed the spec since",
                5,
                evidence(Some(5), "a5", 190, Some(185)),
                status("Running", "UpdateDockerImage", "Done"),
                Some(&confirmed),
                Some(0),
                true,
                SiteReadiness::Settling,
            ),
            (
                "nothing recorded (a write may have been lost with the status): a status from before the annotation is not proof",
                4,
                evidence(Some(4), "a4", 190, Some(185)),
                status("Running", "UpdateDockerImage", "Done"),
                None,
                Some(0),
                true,
                SiteReadiness::Settling,
            ),
            (
                "nothing recorded: a status written after CassKop's annotation is",
                4,
                evidence(Some(4), "a4", 190, Some(191)),
                status("Running", "UpdateDockerImage", "Done"),
                None,
                Some(0),
                true,
                SiteReadiness::Ready,
            ),
            (
                "nothing recorded: or one that settled",
                4,
                evidence(Some(4), "a4", 190, Some(185)),
                status("Running", "UpdateDockerImage", "Done"),
                None,
                Some(1),
                true,
                SiteReadiness::Ready,
            ),
            (
                "no record (status lost): the object's own generation must be acted on",
                4,
                evidence(Some(3), "a3", 100, Some(101)),
                status("Running", "Initializing", "Done"),
                None,
                None,
                true,
                awaiting(4, Some(3)),
            ),
        ];
        for (name, generation, ev, st, rec, ack_for, holds, want) in cases {
            let obs = Observation {
                generation,
                evidence: &ev,
                status: &st,
                holds_our_spec: holds,
            };
            let got = site_readiness(&obs, rec, ack_for.map(Duration::from_secs));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn every_state_has_words() {
        let blocked = SiteReadiness::Blocked {
            action: "UpdateDockerImage".into(),
        };
        assert!(blocked.describe("b").contains("ToDo"));
        assert!(
            SiteReadiness::Refused
                .describe("b")
                .contains("CorrectCRDConfig")
        );
    }
}
