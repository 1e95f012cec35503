//! Which pods of a joining site to ask for CassKop's `rebuild` pod operation next, which to ask
//! again after an `Error`, and whether the rebuild is done or failed: from the pods' labels and
//! the attempts recorded in `status.sites[].membership.rebuild.pods`.

use crate::api::PodOperationStatus;
use crate::labels::pod_operation::{DONE, ERROR, ONGOING, TO_DO};

/// CassKop's `operation-name` of a rebuild.
pub const REBUILD: &str = "rebuild";
/// Pods rebuilt at once when the policy names no number.
pub const DEFAULT_MAX_CONCURRENT: u32 = 1;
/// Times an `Error` pod is asked again when the policy names no number.
pub const DEFAULT_RETRIES: u32 = 2;

/// One pod of the joining site, as its labels describe it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodLabels {
    /// Pod name.
    pub pod: String,
    /// Running (CassKop only starts operations on running pods).
    pub running: bool,
    /// `operation-name`.
    pub operation: Option<String>,
    /// `operation-status`.
    pub status: Option<String>,
}

impl PodLabels {
    /// `operation-status` of a rebuild, `None` when the pod carries another operation or none.
    fn rebuild_status(&self) -> Option<&str> {
        (self.operation.as_deref() == Some(REBUILD))
            .then_some(self.status.as_deref())
            .flatten()
    }
}

/// Bounds of the rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Pods with a rebuild asked or running at once.
    pub max_concurrent: u32,
    /// Times a pod whose rebuild ended in `Error` is asked again.
    pub retries: u32,
}

/// Where the rebuild stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Pods are still to rebuild.
    Running {
        /// Pods rebuilt.
        done: u32,
        /// Pods to rebuild.
        total: u32,
        /// Pods asked or rebuilding now.
        active: u32,
    },
    /// Every pod is rebuilt.
    Done {
        /// Pods rebuilt.
        total: u32,
    },
    /// A pod failed more often than the policy allows.
    Failed {
        /// The pod.
        pod: String,
        /// Times it was asked.
        attempts: u32,
    },
}

/// What to do now.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Pods to label `operation-status=ToDo` now, in order.
    pub ask: Vec<String>,
    /// Of those, the pods asked again after an `Error`.
    pub retried: Vec<String>,
    /// Per pod attempts and status once `ask` is written (to record in status).
    pub records: Vec<PodOperationStatus>,
    /// Where the rebuild stands.
    pub outcome: Outcome,
}

/// Decides the next step of a rebuild. `pods` are the joining site's pods (any order),
/// `previous` what status recorded, `idle` whether every other site is ready and idle
/// (nothing new is asked otherwise).
pub fn plan(
    pods: &[PodLabels],
    previous: &[PodOperationStatus],
    limits: Limits,
    idle: bool,
) -> Plan {
    let mut pods: Vec<&PodLabels> = pods.iter().collect();
    pods.sort_by(|a, b| a.pod.cmp(&b.pod));
    let attempts = |pod: &str| {
        previous
            .iter()
            .find(|r| r.pod == pod)
            .map_or(0, |r| r.attempts)
    };
    let max_concurrent = limits.max_concurrent.max(1);
    let mut records = Vec::new();
    let mut active = 0u32;
    let mut done = 0u32;
    let mut failed = None;
    let mut retry = Vec::new();
    let mut fresh = Vec::new();
    for p in &pods {
        let mut tries = attempts(&p.pod);
        let status = p.rebuild_status();
        if tries == 0 && matches!(status, Some(TO_DO | ONGOING)) {
            // Asked by us before a status write that did not land: adopt it.
            tries = 1;
        }
        match (tries, status) {
            (0, _) => fresh.push(p.pod.clone()),
            (_, Some(DONE)) => done += 1,
            (_, Some(TO_DO | ONGOING)) => active += 1,
            (_, Some(ERROR)) if tries > limits.retries => {
                if failed.is_none() {
                    failed = Some((p.pod.clone(), tries));
                }
            }
            // An `Error` with retries left, or labels gone (pod replaced): ask again.
            _ => retry.push(p.pod.clone()),
        }
        records.push(PodOperationStatus {
            pod: p.pod.clone(),
            status: status.map(str::to_string),
            attempts: tries,
        });
    }
    let total = u32::try_from(pods.len()).unwrap_or(u32::MAX);
    if let Some((pod, attempts)) = failed {
        return Plan {
            ask: Vec::new(),
            retried: Vec::new(),
            records,
            outcome: Outcome::Failed { pod, attempts },
        };
    }
    let mut ask = Vec::new();
    let mut retried = Vec::new();
    if idle {
        let running = |name: &String| pods.iter().any(|p| &p.pod == name && p.running);
        let slots = max_concurrent.saturating_sub(active);
        let candidates = retry
            .iter()
            .map(|p| (p, true))
            .chain(fresh.iter().map(|p| (p, false)))
            .filter(|(p, _)| running(p))
            .take(usize::try_from(slots).unwrap_or(usize::MAX));
        for (pod, again) in candidates {
            ask.push(pod.clone());
            if again {
                retried.push(pod.clone());
            }
            if let Some(r) = records.iter_mut().find(|r| &r.pod == pod) {
                r.attempts += 1;
                r.status = Some(TO_DO.to_string());
            }
        }
    }
    let active = active + u32::try_from(ask.len()).unwrap_or(u32::MAX);
    let outcome = if done == total {
        Outcome::Done { total }
    } else {
        Outcome::Running {
            done,
            total,
            active,
        }
    };
    // Only pods asked at least once are recorded.
    records.retain(|r| r.attempts > 0);
    Plan {
        ask,
        retried,
        records,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pods from a compact code per pod: `-` no rebuild label, `T` ToDo, `O` Ongoing, `D` Done,
    /// `E` Error, `c` a cleanup label (another operation); lower-case `x` suffix: not running.
    fn pods(codes: &[&str]) -> Vec<PodLabels> {
        codes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let status = match c.chars().next() {
                    Some('T') => Some(TO_DO),
                    Some('O') => Some(ONGOING),
                    Some('D') => Some(DONE),
                    Some('E') => Some(ERROR),
                    Some('c') => Some(DONE),
                    _ => None,
                };
                PodLabels {
                    pod: format!("p{i}"),
                    running: !c.ends_with('x'),
                    operation: status.map(|_| {
                        if c.starts_with('c') {
                            "cleanup".to_string()
                        } else {
                            REBUILD.to_string()
                        }
                    }),
                    status: status.map(str::to_string),
                }
            })
            .collect()
    }

    fn attempts(list: &[u32]) -> Vec<PodOperationStatus> {
        list.iter()
            .enumerate()
            .filter(|(_, a)| **a > 0)
            .map(|(i, a)| PodOperationStatus {
                pod: format!("p{i}"),
                status: None,
                attempts: *a,
            })
            .collect()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pods_are_asked_within_the_limit_retried_then_failed() {
        let two = Limits {
            max_concurrent: 2,
            retries: 2,
        };
        let running = |done, total, active| Outcome::Running {
            done,
            total,
            active,
        };
        let cases: Vec<(
            &str,
            Vec<PodLabels>,
            Vec<PodOperationStatus>,
            Limits,
            bool,
            Vec<String>,
            Vec<String>,
            Outcome,
        )> = vec![
            (
                "start: the first two pods",
                pods(&["-", "-", "-"]),
                attempts(&[]),
                two,
                true,
                names(&["p0", "p1"]),
                vec![],
                running(0, 3, 2),
            ),
            (
                "busy ring: nothing asked",
                pods(&["-", "-", "-"]),
                attempts(&[]),
                two,
                false,
                vec![],
                vec![],
                running(0, 3, 0),
            ),
            (
                "two running: no slot",
                pods(&["O", "T", "-"]),
                attempts(&[1, 1]),
                two,
                true,
                vec![],
                vec![],
                running(0, 3, 2),
            ),
            (
                "one done: the third takes its slot",
                pods(&["D", "O", "-"]),
                attempts(&[1, 1]),
                two,
                true,
                names(&["p2"]),
                vec![],
                running(1, 3, 2),
            ),
            (
                "limit 1",
                pods(&["D", "-", "-"]),
                attempts(&[1]),
                Limits {
                    max_concurrent: 1,
                    retries: 2,
                },
                true,
                names(&["p1"]),
                vec![],
                running(1, 3, 1),
            ),
            (
                "old labels of another operation do not count",
                pods(&["c", "-"]),
                attempts(&[]),
                two,
                true,
                names(&["p0", "p1"]),
                vec![],
                running(0, 2, 2),
            ),
            (
                "old rebuild Done before we asked: asked anew",
                pods(&["D", "-"]),
                attempts(&[]),
                Limits {
                    max_concurrent: 1,
                    retries: 0,
                },
                true,
                names(&["p0"]),
                vec![],
                running(0, 2, 1),
            ),
            (
                "ours in flight but not recorded: adopted",
                pods(&["O", "-"]),
                attempts(&[]),
                Limits {
                    max_concurrent: 1,
                    retries: 0,
                },
                true,
                vec![],
                vec![],
                running(0, 2, 1),
            ),
            (
                "error with retries left: asked again first",
                pods(&["E", "-"]),
                attempts(&[1]),
                Limits {
                    max_concurrent: 1,
                    retries: 2,
                },
                true,
                names(&["p0"]),
                names(&["p0"]),
                running(0, 2, 1),
            ),
            (
                "error after 1 + retries attempts: failed",
                pods(&["E", "O"]),
                attempts(&[3, 1]),
                two,
                true,
                vec![],
                vec![],
                Outcome::Failed {
                    pod: "p0".into(),
                    attempts: 3,
                },
            ),
            (
                "no retries: the first error fails",
                pods(&["E"]),
                attempts(&[1]),
                Limits {
                    max_concurrent: 1,
                    retries: 0,
                },
                true,
                vec![],
                vec![],
                Outcome::Failed {
                    pod: "p0".into(),
                    attempts: 1,
                },
            ),
            (
                "labels lost (pod replaced): asked again",
                pods(&["-", "D"]),
                attempts(&[1, 1]),
                two,
                true,
                names(&["p0"]),
                names(&["p0"]),
                running(1, 2, 1),
            ),
            (
                "pods not running are not asked",
                pods(&["-x", "-"]),
                attempts(&[]),
                two,
                true,
                names(&["p1"]),
                vec![],
                running(0, 2, 1),
            ),
            (
                "all done",
                pods(&["D", "D", "D"]),
                attempts(&[1, 2, 1]),
                two,
                true,
                vec![],
                vec![],
                Outcome::Done { total: 3 },
            ),
            (
                "no pods: done",
                pods(&[]),
                attempts(&[]),
                two,
                true,
                vec![],
                vec![],
                Outcome::Done { total: 0 },
            ),
        ];
        for (name, pods, previous, limits, idle, ask, retried, outcome) in cases {
            let got = plan(&pods, &previous, limits, idle);
            assert_eq!(got.ask, ask, "{name}: asked");
            assert_eq!(got.retried, retried, "{name}: retried");
            assert_eq!(got.outcome, outcome, "{name}: outcome");
        }
    }

    #[test]
    fn attempts_are_counted_per_pod() {
        let limits = Limits {
            max_concurrent: 1,
            retries: 2,
        };
        let got = plan(&pods(&["E", "D"]), &attempts(&[2, 1]), limits, true);
        assert_eq!(
            got.records,
            vec![
                PodOperationStatus {
                    pod: "p0".into(),
                    status: Some(TO_DO.into()),
                    attempts: 3
                },
                PodOperationStatus {
                    pod: "p1".into(),
                    status: Some(DONE.into()),
                    attempts: 1
                },
            ]
        );
    }
}
