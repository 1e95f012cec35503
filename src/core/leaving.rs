//! Decides the next step of a CassandraCluster whose site left the ring (pure): wait for the
//! replication acknowledgement, scale to zero, stay Blocked on CassKop's refusal, follow the
//! decommission, delete.
//!
//! A refusal is remembered by the digest of the scale write CassKop refused. That digest holds
//! the user's acknowledgement (`replication-dropped`) and retry (`retry`) annotation values, so
//! the same write is never asked twice: only a new acknowledgement or retry value (the user
//! acted) asks again, once.

use crate::core::evidence::digest;

/// Prefix of the spec digest recorded for our scale-to-zero writes.
pub const SCALE_TO_ZERO: &str = "scale-to-zero";

/// The digest recorded for a scale-to-zero write asked under the given annotation values.
pub fn scale_digest(dropped_annotation: Option<&str>, retry_annotation: Option<&str>) -> String {
    format!(
        "{SCALE_TO_ZERO}@{}",
        digest(&format!(
            "{}|{}",
            dropped_annotation.unwrap_or_default(),
            retry_annotation.unwrap_or_default()
        ))
    )
}

/// Whether a recorded spec digest is one of our scale-to-zero writes.
pub fn is_scale_digest(spec_digest: &str) -> bool {
    spec_digest == SCALE_TO_ZERO || spec_digest.starts_with(&format!("{SCALE_TO_ZERO}@"))
}

/// What is known of a site that left the ring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaveFacts {
    /// `deleteCassandraCluster: true`.
    pub delete: bool,
    /// The object already has a deletion timestamp.
    pub deleting: bool,
    /// The ring held data with this site (it was Ready, or the removal already waited for the
    /// acknowledgement): the DC may be scaled to zero only once acknowledged.
    pub needs_acknowledgement: bool,
    /// The site is listed in the `replication-dropped` annotation.
    pub acknowledged: bool,
    /// Every DC of the object is scaled to zero (our write stands).
    pub holds_zero: bool,
    /// Digest of the scale write CassKop refused, if any.
    pub refused: Option<String>,
    /// Digest a scale write would be recorded with now ([`scale_digest`]).
    pub scale_digest: String,
    /// CassKop reports the scale-down done.
    pub decommissioned: bool,
}

/// What to do with a leaving site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveStep {
    /// Leave it running, unmanaged (`deleteCassandraCluster` is not true).
    Orphan,
    /// Its deletion is under way: wait.
    Deleting,
    /// Show the replication statements and wait for the acknowledgement; write nothing.
    AwaitReplication,
    /// CassKop refused this very scale write: write nothing until the user acts.
    Blocked,
    /// Scale every DC to zero.
    ScaleToZero,
    /// CassKop decommissions the nodes: wait.
    Decommissioning,
    /// Decommissioned: delete the object.
    Delete,
}

/// The next step of a leaving site.
pub fn leave_step(f: &LeaveFacts) -> LeaveStep {
    if !f.delete {
        LeaveStep::Orphan
    } else if f.deleting {
        LeaveStep::Deleting
    } else if f.holds_zero {
        if f.decommissioned {
            LeaveStep::Delete
        } else {
            LeaveStep::Decommissioning
        }
    } else if f.needs_acknowledgement && !f.acknowledged {
        LeaveStep::AwaitReplication
    } else if f.refused.as_deref() == Some(f.scale_digest.as_str()) {
        LeaveStep::Blocked
    } else {
        LeaveStep::ScaleToZero
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> LeaveFacts {
        LeaveFacts {
            delete: true,
            needs_acknowledgement: true,
            acknowledged: true,
            scale_digest: scale_digest(Some("c"), None),
            ..Default::default()
        }
    }

    #[test]
    fn steps_of_a_leaving_site() {
        let now = scale_digest(Some("c"), None);
        let cases: Vec<(&str, LeaveFacts, LeaveStep)> = vec![
            (
                "not deleting: orphan",
                LeaveFacts {
                    delete: false,
                    ..facts()
                },
                LeaveStep::Orphan,
            ),
            (
                "deletion under way",
                LeaveFacts {
                    deleting: true,
                    ..facts()
                },
                LeaveStep::Deleting,
            ),
            (
                "held data, not acknowledged: wait, write nothing",
                LeaveFacts {
                    acknowledged: false,
                    ..facts()
                },
                LeaveStep::AwaitReplication,
            ),
            (
                "held no data (never Ready): scale at once",
                LeaveFacts {
                    needs_acknowledgement: false,
                    acknowledged: false,
                    ..facts()
                },
                LeaveStep::ScaleToZero,
            ),
            ("acknowledged: scale", facts(), LeaveStep::ScaleToZero),
            (
                "this very write was refused: blocked",
                LeaveFacts {
                    refused: Some(now.clone()),
                    ..facts()
                },
                LeaveStep::Blocked,
            ),
            (
                "refused under other annotation values (the user acted): ask once more",
                LeaveFacts {
                    refused: Some(scale_digest(Some("c"), Some("1"))),
                    ..facts()
                },
                LeaveStep::ScaleToZero,
            ),
            (
                "refused, then the acknowledgement withdrawn: wait again",
                LeaveFacts {
                    refused: Some(now.clone()),
                    acknowledged: false,
                    ..facts()
                },
                LeaveStep::AwaitReplication,
            ),
            (
                "scaled: follow the decommission",
                LeaveFacts {
                    holds_zero: true,
                    ..facts()
                },
                LeaveStep::Decommissioning,
            ),
            (
                "scaled, even if the acknowledgement is withdrawn meanwhile",
                LeaveFacts {
                    holds_zero: true,
                    acknowledged: false,
                    ..facts()
                },
                LeaveStep::Decommissioning,
            ),
            (
                "decommissioned: delete",
                LeaveFacts {
                    holds_zero: true,
                    decommissioned: true,
                    ..facts()
                },
                LeaveStep::Delete,
            ),
        ];
        for (name, f, want) in cases {
            assert_eq!(leave_step(&f), want, "{name}");
        }
    }

    #[test]
    fn scale_digests_change_with_the_users_annotations() {
        let a = scale_digest(Some("c"), None);
        assert_eq!(a, scale_digest(Some("c"), Some("")));
        assert_ne!(a, scale_digest(Some("b,c"), None));
        assert_ne!(a, scale_digest(Some("c"), Some("2")));
        assert!(is_scale_digest(&a));
        assert!(
            is_scale_digest(SCALE_TO_ZERO),
            "written by an older version"
        );
        assert!(!is_scale_digest("abc"));
    }
}
