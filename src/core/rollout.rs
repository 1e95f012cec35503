//! Which site to write next. Sequential rollouts take sites one at a time in order and move on
//! only when the current one is ready; canary rollouts take the first site alone, then the
//! others up to N at a time; parallel rollouts take every site at once.
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

/// Decides the step of every site; `facts` are in rollout order. `max_concurrent` bounds the
/// sites in flight after a canary (`None`: no bound).
pub fn plan_rollout(
    strategy: RolloutStrategy,
    max_concurrent: Option<usize>,
    facts: &[SiteFacts],
) -> Vec<Step> {
    let canary = facts.iter().position(|f| !f.paused);
    let canary_done = canary.is_none_or(|i| {
        let f = &facts[i];
        f.reachable && !f.held && f.in_sync && f.ready
    });
    let mut blocked = false;
    let mut in_flight = 0usize;
    facts
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if strategy == RolloutStrategy::Canary {
                blocked = (Some(i) != canary && !canary_done)
                    || max_concurrent.is_some_and(|n| in_flight >= n);
            }
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
            if step.holds_sequential_rollout() {
                in_flight += 1;
                if strategy == RolloutStrategy::Sequential {
                    blocked = true;
                }
            }
            step
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use RolloutStrategy::{Canary, Parallel, Sequential};

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
    fn canary_batches_are_bounded() {
        use Step::*;
        let f = facts(&["sr", "r", "r", "r", "r"]);
        assert_eq!(
            plan_rollout(Canary, Some(2), &f),
            [Done, Apply, Apply, Queued, Queued]
        );
        let f = facts(&["sr", "sr", "s", "r", "r"]);
        assert_eq!(
            plan_rollout(Canary, Some(2), &f),
            [Done, Done, Wait, Apply, Queued],
            "a slot frees when a site is done"
        );
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
            (
                "canary: the first site alone",
                Canary,
                &["r", "r", "r", "r"],
                &[Apply, Queued, Queued, Queued],
            ),
            (
                "canary: the others wait until the first is ready",
                Canary,
                &["s", "r", "r", "r"],
                &[Wait, Queued, Queued, Queued],
            ),
            (
                "canary ready: every other site at once",
                Canary,
                &["sr", "r", "", "s"],
                &[Done, Apply, Apply, Wait],
            ),
            (
                "canary: a paused first site hands the canary to the next",
                Canary,
                &["p", "r", "r"],
                &[Paused, Apply, Queued],
            ),
            (
                "canary: an unreachable first site holds everything",
                Canary,
                &["u", "r", "r"],
                &[Unreachable, Queued, Queued],
            ),
            ("no sites", Sequential, &[], &[]),
        ];
        for (name, strategy, codes, want) in cases {
            assert_eq!(
                plan_rollout(*strategy, None, &facts(codes)),
                want.to_vec(),
                "{name}"
            );
        }
    }
}
