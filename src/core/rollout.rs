//! Which site to write next. Sequential rollouts take sites one at a time in order and move on
//! only when the current one is ready; parallel rollouts take every site at once.
//! Paused sites are skipped; an unreachable site holds a sequential rollout where it stands.

use crate::api::RolloutStrategy;

/// What is known of one site, in rollout order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteFacts {
    /// Site name.
    pub site: String,
    /// Listed in `spec.rollout.paused`.
    pub paused: bool,
    /// Its API server answers.
    pub reachable: bool,
    /// Must not be written: the object there is not ours, or CassKop refused this spec.
    pub held: bool,
    /// It already holds our spec and seeds (no write needed).
    pub in_sync: bool,
    /// CassKop took in our last write and finished.
    pub ready: bool,
}

/// The decision for one site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Holds our spec and is ready.
    Done,
    /// Write our spec and/or seeds now.
    Apply,
    /// Holds our spec; wait for CassKop.
    Wait,
    /// Waits for an earlier site (sequential only).
    Queued,
    /// Skipped on request.
    Paused,
    /// Cannot be reached; a sequential rollout waits here.
    Unreachable,
    /// Must not be written (a conflict or a refusal); a sequential rollout waits here.
    Held,
}

impl Step {
    /// Whether a sequential rollout stops at this site.
    pub fn holds_sequential_rollout(self) -> bool {
        matches!(
            self,
            Step::Unreachable | Step::Apply | Step::Wait | Step::Held
        )
    }
}

/// Decides the step of every site; `facts` are in rollout order.
pub fn plan_rollout(strategy: RolloutStrategy, facts: &[SiteFacts]) -> Vec<Step> {
    let mut blocked = false;
    facts
        .iter()
        .map(|f| {
            let step = if f.paused {
                Step::Paused
            } else if !f.reachable {
                Step::Unreachable
            } else if f.held {
                Step::Held
            } else if f.in_sync && f.ready {
                Step::Done
            } else if blocked {
                Step::Queued
            } else if !f.in_sync {
                Step::Apply
            } else {
                Step::Wait
            };
            if strategy == RolloutStrategy::Sequential && step.holds_sequential_rollout() {
                blocked = true;
            }
            step
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use RolloutStrategy::{Parallel, Sequential};

    /// Site facts from a compact code: p = paused, u = unreachable, h = held, s = in sync,
    /// r = ready.
    fn facts(codes: &[&str]) -> Vec<SiteFacts> {
        codes
            .iter()
            .enumerate()
            .map(|(i, c)| SiteFacts {
                site: format!("s{i}"),
                paused: c.contains('p'),
                reachable: !c.contains('u'),
                held: c.contains('h'),
                in_sync: c.contains('s'),
                ready: c.contains('r'),
            })
            .collect()
    }

    #[test]
    fn rollout_table() {
        use Step::*;
        let cases: &[(&str, RolloutStrategy, &[&str], &[Step])] = &[
            (
                "fresh ring: create the first site only",
                Sequential,
                &["", "", ""],
                &[Apply, Queued, Queued],
            ),
            (
                "first written, not ready: wait, second not created",
                Sequential,
                &["s", "", ""],
                &[Wait, Queued, Queued],
            ),
            (
                "first ready: create the second",
                Sequential,
                &["sr", "", ""],
                &[Done, Apply, Queued],
            ),
            (
                "all ready",
                Sequential,
                &["sr", "sr", "sr"],
                &[Done, Done, Done],
            ),
            (
                "change reaches the first site first",
                Sequential,
                &["r", "r", "r"],
                &[Apply, Queued, Queued],
            ),
            (
                "stuck site holds the rollout",
                Sequential,
                &["sr", "s", "r"],
                &[Done, Wait, Queued],
            ),
            (
                "paused site is skipped",
                Sequential,
                &["sr", "p", ""],
                &[Done, Paused, Apply],
            ),
            (
                "unreachable site holds the rollout",
                Sequential,
                &["sr", "u", ""],
                &[Done, Unreachable, Queued],
            ),
            (
                "later site already in sync and ready stays done behind a hold",
                Sequential,
                &["s", "sr", ""],
                &[Wait, Done, Queued],
            ),
            (
                "drift at a ready site is applied",
                Sequential,
                &["r", "sr"],
                &[Apply, Done],
            ),
            (
                "parallel applies everywhere at once",
                Parallel,
                &["", "s", "sr", "u", "p"],
                &[Apply, Wait, Done, Unreachable, Paused],
            ),
            (
                "a conflict or refusal holds the rollout and is never written",
                Sequential,
                &["sr", "h", ""],
                &[Done, Held, Queued],
            ),
            (
                "held beats drift",
                Parallel,
                &["h", "hsr", ""],
                &[Held, Held, Apply],
            ),
            ("no sites", Sequential, &[], &[]),
        ];
        for (name, strategy, codes, want) in cases {
            assert_eq!(
                plan_rollout(*strategy, &facts(codes)),
                want.to_vec(),
                "{name}"
            );
        }
    }
}
