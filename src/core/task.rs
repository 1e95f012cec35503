//! Planning of a MultiCasskopTask: from the task's status, the ring's sites and the pods of the
//! site in progress, which pods to ask next and what the status becomes (no I/O).
//!
//! Sites run one after the other in the ring's rollout order; a site starts only once the one
//! before it is done, and new pods are asked only while the ring reports the site `Ready`. A
//! site's pods are fixed when it starts. A pod is asked at most `concurrency` at a time with
//! others; one that ends in `Error` is asked again while it has retries left, then the task is
//! `Failed` naming it. Everything the plan needs next time is in the status it returns.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::api::{
    MultiCasskopTaskSpec, MultiCasskopTaskStatus, PodOperationStatus, TaskOperation, TaskPhase,
    TaskSiteState, TaskSiteStatus,
};
use crate::labels::pod_operation::{DONE, ERROR, ONGOING, TO_DO};

/// Pods asked at the same time at one site, by default.
pub const DEFAULT_CONCURRENCY: u32 = 1;
/// Retries of a pod whose operation ended in `Error`, by default.
pub const DEFAULT_RETRIES: u32 = 2;
/// `status` of a pod that disappeared after its site started (scaled down): not waited for.
pub const GONE: &str = "Gone";
/// Condition type, True once the task Succeeded.
pub const COMPLETE_CONDITION: &str = "Complete";
/// Condition type, True once the task Failed.
pub const FAILED_CONDITION: &str = "Failed";

/// One site of the ring, in rollout order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingSite {
    /// Site name.
    pub site: String,
    /// The ring reports the site `Ready` (our spec, CassKop done, not busy) and the
    /// CassandraCluster there is proven ours.
    pub ready: bool,
}

/// One pod of the site in progress, as its labels say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// Pod name.
    pub name: String,
    /// The pod's DC (CassKop's DC label).
    pub dc: Option<String>,
    /// Its `operation-name` label.
    pub operation: Option<String>,
    /// Its `operation-status` label.
    pub status: Option<String>,
}

/// Something worth an Event on the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEvent {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// Short CamelCase reason.
    pub reason: &'static str,
    /// What happened, in words.
    pub note: String,
}

/// What to do now.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskPlan {
    /// The status to write (unchanged if nothing moved).
    pub status: MultiCasskopTaskStatus,
    /// The site whose pods are asked, and the pods to label `ToDo` now.
    pub ask: Option<(String, Vec<String>)>,
    /// The site whose pods the next plan needs (the first site not done), if any.
    pub next_site: Option<String>,
    /// Events to publish.
    pub events: Vec<TaskEvent>,
}

/// Checks the spec against the ring; returns the sites to run, in rollout order.
pub fn sites_to_run(spec: &MultiCasskopTaskSpec, ring: &[RingSite]) -> Result<Vec<String>, String> {
    match (spec.operation, spec.source_dc.as_deref()) {
        (TaskOperation::Rebuild, None) => {
            return Err("operation rebuild needs spec.sourceDc: the DC to stream from".into());
        }
        (op, Some(_)) if op != TaskOperation::Rebuild => {
            return Err(format!(
                "spec.sourceDc is only for rebuild, not {op}: remove it"
            ));
        }
        _ => {}
    }
    let unknown: Vec<&str> = spec
        .sites
        .iter()
        .filter(|s| !ring.iter().any(|r| &r.site == *s))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = ring.iter().map(|r| r.site.as_str()).collect();
        return Err(format!(
            "spec.sites names {} not in MultiCasskop {}'s sites ({}): fix spec.sites",
            unknown.join(", "),
            spec.multi_casskop,
            known.join(", ")
        ));
    }
    Ok(ring
        .iter()
        .filter(|r| spec.sites.is_empty() || spec.sites.contains(&r.site))
        .map(|r| r.site.clone())
        .collect())
}

/// The first site of `order` not done yet in `status`: the one whose pods the plan needs.
pub fn site_in_progress(status: &MultiCasskopTaskStatus, order: &[String]) -> Option<String> {
    order
        .iter()
        .find(|site| {
            !status
                .sites
                .iter()
                .any(|s| &s.site == *site && s.state == TaskSiteState::Done)
        })
        .cloned()
}

/// A task that cannot run: Failed with `message`.
pub fn fail_invalid(previous: &MultiCasskopTaskStatus, message: &str, now: Timestamp) -> TaskPlan {
    let mut status = previous.clone();
    let mut events = Vec::new();
    if !status.phase.finished() {
        events.push(TaskEvent {
            warning: true,
            reason: "TaskFailed",
            note: message.to_string(),
        });
        finish(&mut status, TaskPhase::Failed, message.to_string(), now);
    }
    TaskPlan {
        status,
        ask: None,
        next_site: None,
        events,
    }
}

/// Plans one step. `ring` is the ring's sites in rollout order; `pods` are the pods of the site
/// [`site_in_progress`] names (`None` when they could not be read: nothing is asked).
pub fn plan(
    spec: &MultiCasskopTaskSpec,
    previous: &MultiCasskopTaskStatus,
    ring: &[RingSite],
    pods: Option<&[PodFacts]>,
    now: Timestamp,
) -> TaskPlan {
    let mut status = previous.clone();
    let mut events = Vec::new();
    if status.phase.finished() {
        return TaskPlan {
            status,
            ask: None,
            next_site: None,
            events,
        };
    }
    let order = match sites_to_run(spec, ring) {
        Ok(order) => order,
        Err(message) => return fail_invalid(previous, &message, now),
    };
    // One entry per site to run, in order, keeping what is known.
    status.sites = order
        .iter()
        .map(|site| {
            previous
                .sites
                .iter()
                .find(|s| &s.site == site)
                .cloned()
                .unwrap_or_else(|| TaskSiteStatus {
                    site: site.clone(),
                    ..Default::default()
                })
        })
        .collect();
    let mut ask = None;
    if let Some(index) = status
        .sites
        .iter()
        .position(|s| s.state != TaskSiteState::Done)
    {
        let ready = ring
            .iter()
            .any(|r| r.site == status.sites[index].site && r.ready);
        let outcome = step_site(spec, &mut status.sites[index], ready, pods, &mut events);
        let site = status.sites[index].site.clone();
        match outcome {
            SiteOutcome::Waiting(message) => {
                status.message = Some(message);
            }
            SiteOutcome::Asking(pods) => {
                status.message = Some(format!(
                    "{} at site {site}: {}",
                    spec.operation,
                    status.sites[index].progress.clone().unwrap_or_default()
                ));
                if !pods.is_empty() {
                    ask = Some((site, pods));
                }
            }
            SiteOutcome::Failed(message) => {
                events.push(TaskEvent {
                    warning: true,
                    reason: "TaskFailed",
                    note: message.clone(),
                });
                finish(&mut status, TaskPhase::Failed, message, now);
            }
            SiteOutcome::Done => {
                events.push(TaskEvent {
                    warning: false,
                    reason: "SiteDone",
                    note: format!(
                        "{} done at site {site} ({} pods)",
                        spec.operation,
                        status.sites[index].progress.clone().unwrap_or_default()
                    ),
                });
            }
        }
    }
    let done = status
        .sites
        .iter()
        .filter(|s| s.state == TaskSiteState::Done)
        .count();
    status.sites_done = Some(format!("{done}/{}", status.sites.len()));
    if !status.phase.finished() {
        let started = status
            .sites
            .iter()
            .any(|s| s.state != TaskSiteState::Waiting);
        if started && status.start_time.is_none() {
            status.start_time = Some(now.to_string());
        }
        if done == status.sites.len() {
            let message = format!(
                "{} done at every site ({})",
                spec.operation,
                status.sites_done.clone().unwrap_or_default()
            );
            events.push(TaskEvent {
                warning: false,
                reason: "TaskSucceeded",
                note: message.clone(),
            });
            finish(&mut status, TaskPhase::Succeeded, message, now);
        } else {
            status.phase = if started {
                TaskPhase::Running
            } else {
                TaskPhase::Pending
            };
            status.conditions = conditions(&previous.conditions, false, false, now);
        }
    }
    let next_site = if status.phase.finished() {
        None
    } else {
        site_in_progress(&status, &order)
    };
    TaskPlan {
        status,
        ask,
        next_site,
        events,
    }
}

enum SiteOutcome {
    Waiting(String),
    Asking(Vec<String>),
    Failed(String),
    Done,
}

fn step_site(
    spec: &MultiCasskopTaskSpec,
    site: &mut TaskSiteStatus,
    ready: bool,
    pods: Option<&[PodFacts]>,
    events: &mut Vec<TaskEvent>,
) -> SiteOutcome {
    let name = site.site.clone();
    let Some(pods) = pods else {
        return SiteOutcome::Waiting(format!("cannot read the pods at site {name} yet"));
    };
    if site.state == TaskSiteState::Waiting {
        if !ready {
            return SiteOutcome::Waiting(format!(
                "waiting for site {name} to be Ready in the MultiCasskop before starting"
            ));
        }
        // The site's pods, fixed now; a rebuild leaves the source DC's own pods alone.
        let mut names: Vec<&PodFacts> = pods
            .iter()
            .filter(|p| {
                spec.operation != TaskOperation::Rebuild
                    || p.dc.is_none()
                    || p.dc.as_deref() != spec.source_dc.as_deref()
            })
            .collect();
        names.sort_by(|a, b| a.name.cmp(&b.name));
        site.pods = names
            .into_iter()
            .map(|p| PodOperationStatus {
                pod: p.name.clone(),
                status: None,
                attempts: 0,
            })
            .collect();
        site.state = TaskSiteState::Running;
        events.push(TaskEvent {
            warning: false,
            reason: "SiteStarted",
            note: format!(
                "{} started at site {name} ({} pods)",
                spec.operation,
                site.pods.len()
            ),
        });
    }
    let concurrency = spec.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1) as usize;
    let retries = spec.retries.unwrap_or(DEFAULT_RETRIES);
    let mut in_flight = 0usize;
    let mut candidates: Vec<usize> = Vec::new();
    let mut failed: Option<String> = None;
    for (i, pod) in site.pods.iter_mut().enumerate() {
        if pod.status.as_deref() == Some(DONE) || pod.status.as_deref() == Some(GONE) {
            continue;
        }
        let Some(live) = pods.iter().find(|p| p.name == pod.pod) else {
            pod.status = Some(GONE.into());
            continue;
        };
        let ours = live.operation.as_deref() == Some(spec.operation.as_str());
        let label = if ours { live.status.as_deref() } else { None };
        match (pod.attempts, label) {
            // In flight: ours, or the same operation asked by someone else before we started.
            (_, Some(TO_DO | ONGOING)) => {
                pod.attempts = pod.attempts.max(1);
                pod.status = label.map(String::from);
                in_flight += 1;
            }
            (attempts, Some(DONE)) if attempts > 0 => pod.status = Some(DONE.into()),
            (attempts, Some(ERROR)) if attempts > 0 => {
                pod.status = Some(ERROR.into());
                if attempts > retries {
                    failed.get_or_insert(format!(
                        "pod {} at site {name}: {} ended in Error {attempts} time(s) ({retries} retries allowed); see its CassKop logs, then create a new task",
                        pod.pod, spec.operation
                    ));
                } else {
                    candidates.push(i);
                }
            }
            // Not asked yet (a Done or Error left by an earlier operation, CassKop's `Manual`
            // suggestion, or no label): ask.
            _ => candidates.push(i),
        }
    }
    let total = site
        .pods
        .iter()
        .filter(|p| p.status.as_deref() != Some(GONE))
        .count();
    let done = site
        .pods
        .iter()
        .filter(|p| p.status.as_deref() == Some(DONE))
        .count();
    site.progress = Some(format!("{done}/{total}"));
    if let Some(message) = failed {
        site.state = TaskSiteState::Failed;
        return SiteOutcome::Failed(message);
    }
    if in_flight == 0 && candidates.is_empty() {
        site.state = TaskSiteState::Done;
        return SiteOutcome::Done;
    }
    if !ready {
        return SiteOutcome::Waiting(format!(
            "{} at site {name}: {done}/{total}; waiting for the site to be Ready again before asking more pods",
            spec.operation
        ));
    }
    let mut asked = Vec::new();
    for i in candidates
        .into_iter()
        .take(concurrency.saturating_sub(in_flight))
    {
        let pod = &mut site.pods[i];
        if pod.attempts > 0 {
            events.push(TaskEvent {
                warning: true,
                reason: "PodRetried",
                note: format!(
                    "pod {} at site {name}: {} ended in Error; asking again (attempt {})",
                    pod.pod,
                    spec.operation,
                    pod.attempts + 1
                ),
            });
        }
        pod.attempts += 1;
        pod.status = Some(TO_DO.into());
        asked.push(pod.pod.clone());
    }
    SiteOutcome::Asking(asked)
}

fn finish(status: &mut MultiCasskopTaskStatus, phase: TaskPhase, message: String, now: Timestamp) {
    let previous = status.conditions.clone();
    status.phase = phase;
    status.message = Some(message);
    status.completion_time = Some(now.to_string());
    status.conditions = conditions(
        &previous,
        phase == TaskPhase::Succeeded,
        phase == TaskPhase::Failed,
        now,
    );
}

/// `Complete` and `Failed`, keeping a condition's transition time while its status holds.
fn conditions(
    previous: &[Condition],
    complete: bool,
    failed: bool,
    now: Timestamp,
) -> Vec<Condition> {
    [
        (
            COMPLETE_CONDITION,
            complete,
            "Succeeded",
            "every pod of every site is done",
        ),
        (
            FAILED_CONDITION,
            failed,
            "PodFailed",
            "a pod failed after every retry, or the task cannot run",
        ),
    ]
    .into_iter()
    .map(|(type_, on, reason, message)| {
        let status = if on { "True" } else { "False" };
        let since = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map_or(Time(now), |c| c.last_transition_time.clone());
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: if on { reason.into() } else { "NotYet".into() },
            message: if on { message.into() } else { String::new() },
            observed_generation: None,
            last_transition_time: since,
        }
    })
    .collect()
}

/// Seconds left before a finished task with `ttl` is deleted (`None`: keep it; 0: delete now).
pub fn ttl_left(status: &MultiCasskopTaskStatus, ttl: Option<u32>, now: Timestamp) -> Option<u64> {
    let ttl = ttl?;
    if !status.phase.finished() {
        return None;
    }
    let done: Timestamp = status.completion_time.as_deref()?.parse().ok()?;
    let elapsed = now.as_second().saturating_sub(done.as_second()).max(0);
    Some(u64::from(ttl).saturating_sub(elapsed.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(op: TaskOperation, concurrency: u32, retries: u32) -> MultiCasskopTaskSpec {
        MultiCasskopTaskSpec {
            multi_casskop: "ring".into(),
            operation: op,
            source_dc: (op == TaskOperation::Rebuild).then(|| "dc1".into()),
            concurrency: Some(concurrency),
            retries: Some(retries),
            ..Default::default()
        }
    }

    fn ring(ready: &[bool]) -> Vec<RingSite> {
        ["a", "b", "c"]
            .iter()
            .zip(ready)
            .map(|(s, r)| RingSite {
                site: (*s).into(),
                ready: *r,
            })
            .collect()
    }

    fn pod(name: &str, dc: &str, op: Option<&str>, status: Option<&str>) -> PodFacts {
        PodFacts {
            name: name.into(),
            dc: Some(dc.into()),
            operation: op.map(String::from),
            status: status.map(String::from),
        }
    }

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().expect("timestamp")
    }

    fn site(
        name: &str,
        state: TaskSiteState,
        pods: &[(&str, Option<&str>, u32)],
    ) -> TaskSiteStatus {
        TaskSiteStatus {
            site: name.into(),
            state,
            progress: None,
            pods: pods
                .iter()
                .map(|(p, s, a)| PodOperationStatus {
                    pod: (*p).into(),
                    status: s.map(String::from),
                    attempts: *a,
                })
                .collect(),
        }
    }

    fn running(sites: Vec<TaskSiteStatus>) -> MultiCasskopTaskStatus {
        MultiCasskopTaskStatus {
            phase: TaskPhase::Running,
            sites,
            ..Default::default()
        }
    }

    #[test]
    fn validation() {
        let mut bad_sites = spec(TaskOperation::Cleanup, 1, 2);
        bad_sites.sites = vec!["x".into()];
        let mut no_source = spec(TaskOperation::Rebuild, 1, 2);
        no_source.source_dc = None;
        let mut stray_source = spec(TaskOperation::Cleanup, 1, 2);
        stray_source.source_dc = Some("dc1".into());
        let mut subset = spec(TaskOperation::Cleanup, 1, 2);
        subset.sites = vec!["c".into(), "a".into()];
        let cases: Vec<(&str, MultiCasskopTaskSpec, Result<Vec<&str>, &str>)> = vec![
            (
                "every site in ring order",
                spec(TaskOperation::Cleanup, 1, 2),
                Ok(vec!["a", "b", "c"]),
            ),
            (
                "a subset keeps the ring's order",
                subset,
                Ok(vec!["a", "c"]),
            ),
            ("unknown site", bad_sites, Err("spec.sites names x")),
            (
                "rebuild without source",
                no_source,
                Err("needs spec.sourceDc"),
            ),
            (
                "source without rebuild",
                stray_source,
                Err("only for rebuild"),
            ),
        ];
        for (name, spec, want) in cases {
            let got = sites_to_run(&spec, &ring(&[true, true, true]));
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{name}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{name}: {got}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// One step at a time: what is asked, the site states and the phase.
    #[test]
    fn steps() {
        let cleanup = spec(TaskOperation::Cleanup, 2, 1);
        let three = |a: Option<&str>, b: Option<&str>, c: Option<&str>| {
            vec![
                pod("p0", "dc1", a.map(|_| "cleanup"), a),
                pod("p1", "dc1", b.map(|_| "cleanup"), b),
                pod("p2", "dc1", c.map(|_| "cleanup"), c),
            ]
        };
        let w = TaskSiteState::Waiting;
        let r = TaskSiteState::Running;
        let d = TaskSiteState::Done;
        let cases: Vec<(
            &str,
            MultiCasskopTaskSpec,
            MultiCasskopTaskStatus,
            Vec<bool>,
            Vec<PodFacts>,
            Option<(&str, Vec<&str>)>,
            Vec<TaskSiteState>,
            TaskPhase,
        )> = vec![
            (
                "first site not ready: nothing starts",
                cleanup.clone(),
                MultiCasskopTaskStatus::default(),
                vec![false, true, true],
                three(None, None, None),
                None,
                vec![w, w, w],
                TaskPhase::Pending,
            ),
            (
                "first site starts, two of three pods asked (concurrency 2)",
                cleanup.clone(),
                MultiCasskopTaskStatus::default(),
                vec![true, true, true],
                three(None, None, None),
                Some(("a", vec!["p0", "p1"])),
                vec![r, w, w],
                TaskPhase::Running,
            ),
            (
                "CassKop's Manual cleanup suggestion and an earlier Done are asked too",
                cleanup.clone(),
                MultiCasskopTaskStatus::default(),
                vec![true, true, true],
                three(Some("Manual"), Some("Done"), None),
                Some(("a", vec!["p0", "p1"])),
                vec![r, w, w],
                TaskPhase::Running,
            ),
            (
                "two in flight: the third waits",
                cleanup.clone(),
                running(vec![site(
                    "a",
                    r,
                    &[
                        ("p0", Some("ToDo"), 1),
                        ("p1", Some("ToDo"), 1),
                        ("p2", None, 0),
                    ],
                )]),
                vec![true, true, true],
                three(Some("Ongoing"), Some("ToDo"), None),
                None,
                vec![r, w, w],
                TaskPhase::Running,
            ),
            (
                "one done: the third is asked",
                cleanup.clone(),
                running(vec![site(
                    "a",
                    r,
                    &[
                        ("p0", Some("Ongoing"), 1),
                        ("p1", Some("ToDo"), 1),
                        ("p2", None, 0),
                    ],
                )]),
                vec![true, true, true],
                three(Some("Done"), Some("Ongoing"), None),
                Some(("a", vec!["p2"])),
                vec![r, w, w],
                TaskPhase::Running,
            ),
            (
                "all done: the site is done, the next one is not touched in the same step",
                cleanup.clone(),
                running(vec![site(
                    "a",
                    r,
                    &[
                        ("p0", Some("Done"), 1),
                        ("p1", Some("Ongoing"), 1),
                        ("p2", Some("ToDo"), 1),
                    ],
                )]),
                vec![true, true, true],
                three(Some("Done"), Some("Done"), Some("Done")),
                None,
                vec![d, w, w],
                TaskPhase::Running,
            ),
            (
                "the site in progress is not ready: nothing new asked",
                cleanup.clone(),
                running(vec![site(
                    "a",
                    r,
                    &[("p0", Some("ToDo"), 1), ("p1", None, 0), ("p2", None, 0)],
                )]),
                vec![false, true, true],
                three(Some("Done"), None, None),
                None,
                vec![r, w, w],
                TaskPhase::Running,
            ),
            (
                "an Error with retries left is asked again",
                cleanup.clone(),
                running(vec![site(
                    "a",
                    r,
                    &[
                        ("p0", Some("Ongoing"), 1),
                        ("p1", Some("Done"), 1),
                        ("p2", Some("Done"), 1),
                    ],
                )]),
                vec![true, true, true],
                three(Some("Error"), Some("Done"), Some("Done")),
                Some(("a", vec!["p0"])),
                vec![r, w, w],
                TaskPhase::Running,
            ),
            (
                "an Error after every retry fails the task",
                cleanup.clone(),
                running(vec![site(
                    "a",
                    r,
                    &[
                        ("p0", Some("ToDo"), 2),
                        ("p1", Some("Done"), 1),
                        ("p2", Some("Done"), 1),
                    ],
                )]),
                vec![true, true, true],
                three(Some("Error"), Some("Done"), Some("Done")),
                None,
                vec![TaskSiteState::Failed, w, w],
                TaskPhase::Failed,
            ),
            (
                "a pod that went away is not waited for",
                cleanup.clone(),
                running(vec![site(
                    "a",
                    r,
                    &[
                        ("p0", Some("Done"), 1),
                        ("p1", Some("Done"), 1),
                        ("p2", Some("ToDo"), 1),
                        ("p3", Some("ToDo"), 1),
                    ],
                )]),
                vec![true, true, true],
                three(Some("Done"), Some("Done"), Some("Done")),
                None,
                vec![d, w, w],
                TaskPhase::Running,
            ),
            (
                "last site done: Succeeded",
                cleanup.clone(),
                running(vec![
                    site("a", d, &[("p0", Some("Done"), 1)]),
                    site("b", d, &[("p0", Some("Done"), 1)]),
                    site("c", r, &[("p0", Some("Ongoing"), 1)]),
                ]),
                vec![true, true, true],
                vec![pod("p0", "dc3", Some("cleanup"), Some("Done"))],
                None,
                vec![d, d, d],
                TaskPhase::Succeeded,
            ),
            (
                "rebuild leaves the source DC's pods alone and names no other pod twice",
                spec(TaskOperation::Rebuild, 4, 0),
                MultiCasskopTaskStatus::default(),
                vec![true, true, true],
                vec![pod("x0", "dc1", None, None), pod("y0", "dc2", None, None)],
                Some(("a", vec!["y0"])),
                vec![r, w, w],
                TaskPhase::Running,
            ),
            (
                "a pod of another operation in flight is asked for ours",
                cleanup.clone(),
                running(vec![site(
                    "a",
                    r,
                    &[
                        ("p0", None, 0),
                        ("p1", Some("Done"), 1),
                        ("p2", Some("Done"), 1),
                    ],
                )]),
                vec![true, true, true],
                vec![
                    pod("p0", "dc1", Some("upgradesstables"), Some("Ongoing")),
                    pod("p1", "dc1", Some("cleanup"), Some("Done")),
                    pod("p2", "dc1", Some("cleanup"), Some("Done")),
                ],
                Some(("a", vec!["p0"])),
                vec![r, w, w],
                TaskPhase::Running,
            ),
        ];
        for (name, spec, previous, ready, pods, want_ask, want_states, want_phase) in cases {
            let got = plan(&spec, &previous, &ring(&ready), Some(&pods), now());
            let ask = got
                .ask
                .as_ref()
                .map(|(s, p)| (s.as_str(), p.iter().map(String::as_str).collect::<Vec<_>>()));
            assert_eq!(ask, want_ask, "{name}");
            let states: Vec<TaskSiteState> = got.status.sites.iter().map(|s| s.state).collect();
            assert_eq!(states, want_states, "{name}");
            assert_eq!(
                got.status.phase, want_phase,
                "{name}: {:?}",
                got.status.message
            );
        }
    }

    #[test]
    fn failure_names_the_pod_and_sets_conditions() {
        let spec = spec(TaskOperation::Cleanup, 1, 1);
        let previous = running(vec![site(
            "a",
            TaskSiteState::Running,
            &[("p0", Some("ToDo"), 2)],
        )]);
        let pods = [pod("p0", "dc1", Some("cleanup"), Some("Error"))];
        let got = plan(
            &spec,
            &previous,
            &ring(&[true, true, true]),
            Some(&pods),
            now(),
        );
        let message = got.status.message.clone().unwrap_or_default();
        assert!(message.contains("pod p0 at site a"), "{message}");
        assert!(message.contains("2 time(s)"), "{message}");
        let conditions: Vec<(&str, &str)> = got
            .status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(conditions, vec![("Complete", "False"), ("Failed", "True")]);
        assert!(got.status.completion_time.is_some());
        assert!(
            got.events
                .iter()
                .any(|e| e.warning && e.reason == "TaskFailed")
        );
        // Finished tasks do not move.
        let again = plan(
            &spec,
            &got.status,
            &ring(&[true, true, true]),
            Some(&pods),
            now(),
        );
        assert_eq!(again.status, got.status);
        assert!(again.events.is_empty() && again.ask.is_none());
    }

    #[test]
    fn success_sets_complete_and_counts() {
        let spec = spec(TaskOperation::Cleanup, 1, 1);
        let mut previous = running(vec![
            site("a", TaskSiteState::Done, &[("p0", Some("Done"), 1)]),
            site("b", TaskSiteState::Done, &[("p0", Some("Done"), 1)]),
            site("c", TaskSiteState::Running, &[("p0", Some("Ongoing"), 1)]),
        ]);
        previous.start_time = Some("2025-12-31T23:00:00Z".into());
        let pods = [pod("p0", "dc3", Some("cleanup"), Some("Done"))];
        let got = plan(
            &spec,
            &previous,
            &ring(&[true, true, true]),
            Some(&pods),
            now(),
        );
        assert_eq!(got.status.sites_done.as_deref(), Some("3/3"));
        assert_eq!(got.status.start_time, previous.start_time, "kept");
        assert!(
            got.status
                .conditions
                .iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        );
        assert_eq!(got.next_site, None);
    }

    #[test]
    fn next_site_and_restart_adoption() {
        let spec = spec(TaskOperation::Cleanup, 1, 2);
        // Labelled before a restart, status not written: the in-flight pod is adopted, not asked twice.
        let previous = running(vec![site(
            "a",
            TaskSiteState::Running,
            &[("p0", None, 0), ("p1", None, 0)],
        )]);
        let pods = [
            pod("p0", "dc1", Some("cleanup"), Some("ToDo")),
            pod("p1", "dc1", None, None),
        ];
        let got = plan(
            &spec,
            &previous,
            &ring(&[true, true, true]),
            Some(&pods),
            now(),
        );
        assert_eq!(got.ask, None, "concurrency 1, p0 in flight");
        assert_eq!(got.status.sites[0].pods[0].attempts, 1);
        assert_eq!(got.next_site.as_deref(), Some("a"));
        let done = running(vec![site(
            "a",
            TaskSiteState::Done,
            &[("p0", Some("Done"), 1)],
        )]);
        assert_eq!(
            site_in_progress(&done, &["a".into(), "b".into()]).as_deref(),
            Some("b")
        );
    }

    #[test]
    fn ttl() {
        let mut status = MultiCasskopTaskStatus {
            phase: TaskPhase::Succeeded,
            completion_time: Some("2025-12-31T23:59:00Z".into()),
            ..Default::default()
        };
        let cases = [(None, None), (Some(100), Some(40)), (Some(10), Some(0))];
        for (ttl, want) in cases {
            assert_eq!(ttl_left(&status, ttl, now()), want, "{ttl:?}");
        }
        status.phase = TaskPhase::Running;
        assert_eq!(
            ttl_left(&status, Some(0), now()),
            None,
            "running tasks stay"
        );
    }
}
