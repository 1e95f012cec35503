//! A site joining a ring that was Ready without it: when a site counts as joining, the step it
//! is at (its DCs created → replication acknowledged → rebuilt → Ready), the source DC of its
//! rebuild and the statements the user must run.

use crate::api::{MembershipChange, MembershipStatus, RebuildPolicy, ReplicationPolicy, SiteState};
use crate::core::rebuild::{DEFAULT_MAX_CONCURRENT, DEFAULT_RETRIES, Limits};
use crate::core::replication::{SiteDcs, statements};
use crate::core::validate::Finding;

/// Whether a site of the spec joins a ring that was Ready without it: the ring's status has no
/// entry for it yet, and has entries for other sites of the ring, all `Ready`. At the ring's
/// creation (no entry at all) nothing is gated.
pub fn is_joining(has_entry: bool, others: &[SiteState]) -> bool {
    !has_entry && !others.is_empty() && others.iter().all(|s| *s == SiteState::Ready)
}

/// A fresh join record.
pub fn started() -> MembershipStatus {
    MembershipStatus {
        change: MembershipChange::Join,
        ..MembershipStatus::default()
    }
}

/// Where a joining site is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinStep {
    /// Its CassandraCluster is being created (usual readiness); reported `Joining`.
    Create,
    /// Ready at CassKop: the user must run the statements and acknowledge.
    AwaitReplication,
    /// Acknowledged: its pods are being rebuilt.
    Rebuild,
    /// Nothing left to do: the site is an ordinary member.
    Ready,
}

impl JoinStep {
    /// The state reported for the step.
    pub fn state(self) -> SiteState {
        match self {
            JoinStep::Create => SiteState::Joining,
            JoinStep::AwaitReplication => SiteState::AwaitingReplication,
            JoinStep::Rebuild => SiteState::Rebuilding,
            JoinStep::Ready => SiteState::Ready,
        }
    }
}

/// The step of a joining site. `casskop_ready`: the site holds our spec and CassKop finished;
/// `acknowledged`: the site is listed in the acknowledgement annotation (or was once: see
/// `membership.acknowledged`); `rebuild_enabled`: the policy wants a rebuild.
pub fn step(
    membership: &MembershipStatus,
    casskop_ready: bool,
    acknowledged: bool,
    rebuild_enabled: bool,
) -> JoinStep {
    if membership.rebuild.is_some() {
        return JoinStep::Rebuild;
    }
    let acknowledged = acknowledged || membership.acknowledged;
    let asked = !membership.statements.is_empty();
    if !casskop_ready && !asked {
        return JoinStep::Create;
    }
    if !acknowledged {
        return JoinStep::AwaitReplication;
    }
    if rebuild_enabled {
        // The rebuild itself waits until the site and the ring are idle.
        return JoinStep::Rebuild;
    }
    if casskop_ready {
        JoinStep::Ready
    } else {
        JoinStep::Create
    }
}

/// The rebuild policy with its defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuild {
    /// Rebuild at all.
    pub enabled: bool,
    /// Bounds.
    pub limits: Limits,
}

/// The rebuild policy of `replication`, defaults filled in.
pub fn rebuild_policy(replication: Option<&ReplicationPolicy>) -> Rebuild {
    let policy = replication
        .and_then(|r| r.rebuild.clone())
        .unwrap_or_default();
    Rebuild {
        enabled: policy.enabled.unwrap_or(true),
        limits: Limits {
            max_concurrent: policy.max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT),
            retries: policy.retries.unwrap_or(DEFAULT_RETRIES),
        },
    }
}

/// The DC a joining site streams from: `rebuild.sourceDc`, else the first DC of the first
/// other site in rollout order. `ring` is every site in rollout order, the joining one included.
pub fn source_dc(
    policy: Option<&RebuildPolicy>,
    ring: &[SiteDcs],
    joining: &str,
) -> Result<String, String> {
    let others = ring.iter().filter(|s| s.site != joining);
    match policy.and_then(|p| p.source_dc.as_deref()) {
        Some(dc) => {
            if others.clone().flat_map(|s| &s.dcs).any(|d| d.name == dc) {
                Ok(dc.to_string())
            } else {
                Err(format!(
                    "spec.replication.rebuild.sourceDc {dc:?} is not a DC of another site of the ring (DCs: {})",
                    others
                        .flat_map(|s| &s.dcs)
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        None => others
            .flat_map(|s| &s.dcs)
            .map(|d| d.name.clone())
            .next()
            .ok_or_else(|| format!("site {joining} has no other site to rebuild from")),
    }
}

/// `spec.replication.rebuild.sourceDc` must name a DC of the ring.
pub fn validate_source_dc(
    replication: Option<&ReplicationPolicy>,
    ring: &[SiteDcs],
) -> Vec<Finding> {
    let Some(dc) = replication
        .and_then(|r| r.rebuild.as_ref())
        .and_then(|r| r.source_dc.as_deref())
    else {
        return Vec::new();
    };
    if ring.iter().flat_map(|s| &s.dcs).any(|d| d.name == dc) {
        return Vec::new();
    }
    vec![Finding::new(
        "spec.replication.rebuild.sourceDc",
        format!(
            "{dc:?} is not a DC of the ring (DCs: {}): a joining site rebuilds from a DC of another site",
            ring.iter()
                .flat_map(|s| &s.dcs)
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )]
}

/// The statements that add the joining site's DCs: every keyspace replicates to every DC of
/// the ring after the join (`ring` includes the joining site).
pub fn join_statements(replication: Option<&ReplicationPolicy>, ring: &[SiteDcs]) -> Vec<String> {
    let policy = replication.cloned().unwrap_or_default();
    statements(ring, &policy.keyspaces, policy.replication_factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RebuildStatus;
    use crate::core::seeds::{DcNodes, RackNodes};
    use SiteState::*;

    #[test]
    fn a_site_joins_only_a_ring_that_was_ready_without_it() {
        let cases: [(&str, bool, &[SiteState], bool); 5] = [
            ("ring creation: no entries", false, &[], false),
            ("added to a Ready ring", false, &[Ready, Ready], true),
            (
                "added while another site moves",
                false,
                &[Ready, Progressing],
                false,
            ),
            ("already recorded", true, &[Ready, Ready], false),
            (
                "added to a ring with a Failed site",
                false,
                &[Failed],
                false,
            ),
        ];
        for (name, has_entry, others, want) in cases {
            assert_eq!(is_joining(has_entry, others), want, "{name}");
        }
    }

    #[test]
    fn steps_follow_readiness_acknowledgement_and_rebuild() {
        let fresh = started();
        let asked = MembershipStatus {
            statements: vec!["ALTER ...".into()],
            ..started()
        };
        let acked = MembershipStatus {
            acknowledged: true,
            ..asked.clone()
        };
        let rebuilding = MembershipStatus {
            rebuild: Some(RebuildStatus::default()),
            ..acked.clone()
        };
        let cases = [
            (
                "being created",
                &fresh,
                false,
                false,
                true,
                JoinStep::Create,
            ),
            (
                "ready: gate",
                &fresh,
                true,
                false,
                true,
                JoinStep::AwaitReplication,
            ),
            (
                "gate stays while CassKop works again",
                &asked,
                false,
                false,
                true,
                JoinStep::AwaitReplication,
            ),
            (
                "acknowledged: rebuild",
                &asked,
                true,
                true,
                true,
                JoinStep::Rebuild,
            ),
            (
                "acknowledged once is enough",
                &acked,
                true,
                false,
                true,
                JoinStep::Rebuild,
            ),
            (
                "acknowledged, no rebuild wanted",
                &asked,
                true,
                true,
                false,
                JoinStep::Ready,
            ),
            (
                "acknowledged, no rebuild, CassKop busy",
                &asked,
                false,
                true,
                false,
                JoinStep::Create,
            ),
            (
                "acknowledged before the DC exists: wait",
                &fresh,
                false,
                true,
                true,
                JoinStep::Create,
            ),
            (
                "acknowledged before: rebuild once ready",
                &fresh,
                true,
                true,
                true,
                JoinStep::Rebuild,
            ),
            (
                "rebuild started: stays",
                &rebuilding,
                false,
                false,
                true,
                JoinStep::Rebuild,
            ),
        ];
        for (name, m, ready, ack, enabled, want) in cases {
            assert_eq!(step(m, ready, ack, enabled), want, "{name}");
        }
        assert_eq!(JoinStep::AwaitReplication.state(), AwaitingReplication);
    }

    fn ring() -> Vec<SiteDcs> {
        let dc = |n: &str| DcNodes {
            name: n.into(),
            racks: vec![RackNodes {
                name: "rack1".into(),
                nodes: 1,
            }],
        };
        vec![
            SiteDcs {
                site: "a".into(),
                dcs: vec![dc("dc1"), dc("dc1b")],
            },
            SiteDcs {
                site: "b".into(),
                dcs: vec![dc("dc2")],
            },
            SiteDcs {
                site: "d".into(),
                dcs: vec![dc("dc4")],
            },
        ]
    }

    #[test]
    fn source_dc_defaults_to_the_first_other_site_and_must_be_elsewhere() {
        let with = |dc: &str| RebuildPolicy {
            source_dc: Some(dc.into()),
            ..RebuildPolicy::default()
        };
        let ring = ring();
        assert_eq!(source_dc(None, &ring, "d"), Ok("dc1".into()));
        assert_eq!(source_dc(None, &ring, "a"), Ok("dc2".into()));
        assert_eq!(source_dc(Some(&with("dc2")), &ring, "d"), Ok("dc2".into()));
        let own = source_dc(Some(&with("dc4")), &ring, "d").expect_err("own DC");
        assert!(own.contains("not a DC of another site"), "{own}");
        assert!(source_dc(None, &ring[2..], "d").is_err());
        let policy = |dc: &str| ReplicationPolicy {
            rebuild: Some(with(dc)),
            ..ReplicationPolicy::default()
        };
        assert!(validate_source_dc(Some(&policy("dc2")), &ring).is_empty());
        let findings = validate_source_dc(Some(&policy("dc9")), &ring);
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].to_string().contains("sourceDc"),
            "{}",
            findings[0]
        );
        assert!(validate_source_dc(None, &ring).is_empty());
    }

    #[test]
    fn policy_defaults() {
        let p = rebuild_policy(None);
        assert!(p.enabled);
        assert_eq!(
            p.limits,
            Limits {
                max_concurrent: 1,
                retries: 2
            }
        );
        let statements = join_statements(None, &ring());
        assert_eq!(statements.len(), 3);
        assert!(statements[0].contains("'dc4': 1"), "{}", statements[0]);
    }
}
