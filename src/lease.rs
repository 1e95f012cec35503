//! The Lease loop of leader election: acquire, renew and release a coordination.k8s.io Lease
//! with optimistic concurrency (every write names the resourceVersion it read), timed so that a
//! standby takes over a killed leader's Lease within its duration of the last renewal.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// What to hold.
#[derive(Clone, Debug)]
pub struct LeaseParams {
    /// Lease name.
    pub name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's identity (the holder it writes).
    pub identity: String,
    /// How long a Lease stays valid after its last renewal.
    pub duration: Duration,
    /// Field manager of the writes.
    pub field_manager: String,
}

/// The timings derived from the lease duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The holder renews this often.
    pub renew_every: Duration,
    /// The holder steps down when no renewal has succeeded for this long (counted from the
    /// start of the last successful one, so it stops before any standby may take over).
    pub renew_deadline: Duration,
    /// A standby reads the Lease this often (and once more at its expiry).
    pub poll: Duration,
}

impl Timing {
    /// Renew every third of the duration, step down after two thirds, poll every tenth
    /// (between 100 ms and 800 ms): a standby sees a renewal within a poll, and takes a Lease
    /// over at most a duration after the last renewal it saw, so within the duration and a
    /// request of a SIGKILL.
    pub fn of(duration: Duration) -> Self {
        let duration = duration.max(Duration::from_secs(1));
        Timing {
            renew_every: duration / 3,
            renew_deadline: duration * 2 / 3,
            poll: (duration / 10).clamp(Duration::from_millis(100), Duration::from_millis(800)),
        }
    }
}

/// The holder and renewal of a Lease as a standby last saw them, and since when (local time:
/// clocks of replicas are not compared).
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    holder: String,
    renewed: Option<String>,
    duration: Duration,
    since: Instant,
}

impl Seen {
    fn expired(&self, now: Instant) -> bool {
        now >= self.since + self.duration
    }
}

fn holder_of(lease: &Lease) -> String {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

fn renewed_of(lease: &Lease) -> Option<String> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0.to_string())
}

fn duration_of(lease: &Lease, default: Duration) -> Duration {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_duration_seconds)
        .and_then(|s| u64::try_from(s).ok())
        .map_or(default, Duration::from_secs)
}

/// The Lease as held by `params.identity` from now, written over `current` (or new).
fn held_by_me(params: &LeaseParams, current: Option<&Lease>) -> Lease {
    let now = MicroTime(Timestamp::now());
    let previous = current.and_then(|l| l.spec.clone()).unwrap_or_default();
    let mine = previous.holder_identity.as_deref() == Some(params.identity.as_str());
    Lease {
        metadata: ObjectMeta {
            name: Some(params.name.clone()),
            namespace: Some(params.namespace.clone()),
            resource_version: current.and_then(ResourceExt::resource_version),
            ..current.map(|l| l.metadata.clone()).unwrap_or_default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(params.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(params.duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: if mine {
                previous.acquire_time.clone()
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(
                previous.lease_transitions.unwrap_or(0) + i32::from(!mine && current.is_some()),
            ),
            ..previous
        }),
    }
}

/// Starts the Lease loop. The receiver says whether this replica holds the Lease; dropping
/// every receiver releases it (a standby then takes it at once) and ends the task.
pub fn spawn(
    client: Client,
    params: LeaseParams,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &params.namespace);
        let timing = Timing::of(params.duration);
        tokio::select! {
            _ = run(&api, &params, timing, &tx) => {}
            _ = tx.closed() => {}
        }
        if *tx.borrow() {
            release(&api, &params).await;
        }
    });
    (rx, task)
}

async fn run(api: &Api<Lease>, params: &LeaseParams, timing: Timing, tx: &watch::Sender<bool>) {
    loop {
        let held = acquire(api, params, timing).await;
        info!(identity = %params.identity, lease = %params.name, "acquired the leader Lease");
        let _ = tx.send(true);
        hold(api, params, timing, held).await;
        warn!(identity = %params.identity, lease = %params.name, "lost the leader Lease");
        let _ = tx.send(false);
    }
}

/// Waits as a standby until this replica holds the Lease; returns it as written.
async fn acquire(api: &Api<Lease>, params: &LeaseParams, timing: Timing) -> Lease {
    let mut seen: Option<Seen> = None;
    let mut previous_read: Option<Instant> = None;
    loop {
        let started = Instant::now();
        let read = tokio::time::timeout(timing.renew_every, api.get_opt(&params.name)).await;
        let wait = match read {
            Ok(Ok(None)) => {
                let lease = held_by_me(params, None);
                match api.create(&post_params(params), &lease).await {
                    Ok(l) => return l,
                    Err(error) => debug!(%error, "creating the Lease failed"),
                }
                timing.poll
            }
            Ok(Ok(Some(lease))) => {
                let holder = holder_of(&lease);
                let renewed = renewed_of(&lease);
                let changed = seen
                    .as_ref()
                    .is_none_or(|s| s.holder != holder || s.renewed != renewed);
                if changed {
                    // The renewal happened after the previous read: date it from there when that
                    // read is recent (a standby then waits no longer than the holder's lease).
                    let since = previous_read
                        .filter(|p| started.duration_since(*p) <= timing.poll * 2)
                        .unwrap_or(started);
                    seen = Some(Seen {
                        holder: holder.clone(),
                        renewed,
                        duration: duration_of(&lease, params.duration),
                        since,
                    });
                }
                let now = Instant::now();
                let free = holder.is_empty()
                    || holder == params.identity
                    || seen.as_ref().is_some_and(|s| s.expired(now));
                if free {
                    match api
                        .replace(
                            &params.name,
                            &post_params(params),
                            &held_by_me(params, Some(&lease)),
                        )
                        .await
                    {
                        Ok(l) => return l,
                        Err(error) => {
                            debug!(%error, "taking the Lease failed (another replica was first?)")
                        }
                    }
                    timing.poll
                } else {
                    let expiry = seen
                        .as_ref()
                        .map_or(now + timing.poll, |s| s.since + s.duration);
                    timing.poll.min(expiry.saturating_duration_since(now))
                }
            }
            Ok(Err(error)) => {
                debug!(%error, "reading the Lease failed");
                timing.poll
            }
            Err(_) => timing.poll,
        };
        previous_read = Some(started);
        tokio::time::sleep(wait).await;
    }
}

/// Renews the Lease while it is held; returns when it is lost (taken over, or not renewed within
/// the renew deadline).
async fn hold(api: &Api<Lease>, params: &LeaseParams, timing: Timing, mut lease: Lease) {
    let mut renewed_at = Instant::now();
    let mut next = renewed_at + timing.renew_every;
    loop {
        tokio::time::sleep_until(next).await;
        let started = Instant::now();
        if started.duration_since(renewed_at) >= timing.renew_deadline {
            return;
        }
        let left = timing.renew_deadline - started.duration_since(renewed_at);
        let (pp, renewal) = (post_params(params), held_by_me(params, Some(&lease)));
        match tokio::time::timeout(left, api.replace(&params.name, &pp, &renewal)).await {
            Ok(Ok(l)) => {
                lease = l;
                renewed_at = started;
                next = started + timing.renew_every;
            }
            Ok(Err(kube::Error::Api(e))) if e.code == 409 => {
                // Written by someone else since: still ours only if it names us.
                match api.get_opt(&params.name).await {
                    Ok(Some(current)) if holder_of(&current) == params.identity => {
                        lease = current;
                        next = Instant::now();
                    }
                    Ok(_) => return,
                    Err(_) => next = Instant::now() + timing.poll,
                }
            }
            Ok(Err(error)) => {
                debug!(%error, "renewing the Lease failed; retrying");
                next = Instant::now() + timing.poll;
            }
            Err(_) => return,
        }
    }
}

/// Gives the Lease up (holder cleared), so a standby takes it at its next read.
async fn release(api: &Api<Lease>, params: &LeaseParams) {
    let Ok(Some(lease)) = api.get_opt(&params.name).await else {
        return;
    };
    if holder_of(&lease) != params.identity {
        return;
    }
    let mut released = lease.clone();
    if let Some(spec) = released.spec.as_mut() {
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
    }
    if let Err(error) = api
        .replace(&params.name, &post_params(params), &released)
        .await
    {
        warn!(%error, "cannot release the leader Lease; a standby takes it when it expires");
    }
}

fn post_params(params: &LeaseParams) -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(params.field_manager.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_keep_the_holder_ahead_of_any_standby() {
        for secs in [1, 4, 15, 60] {
            let d = Duration::from_secs(secs);
            let t = Timing::of(d);
            assert!(
                t.renew_every < t.renew_deadline,
                "{secs}s: renews before its deadline"
            );
            // A standby dates a renewal at most two polls early; the holder must have stopped by
            // then: deadline + 2 polls < duration.
            assert!(t.renew_deadline + t.poll * 2 < d, "{secs}s: {t:?}");
            assert!(
                t.poll <= Duration::from_millis(800),
                "{secs}s: within a second of expiry"
            );
        }
    }

    #[test]
    fn a_lease_is_taken_over_with_a_new_transition_and_renewed_without() {
        let params = LeaseParams {
            name: "l".into(),
            namespace: "ns".into(),
            identity: "me".into(),
            duration: Duration::from_secs(4),
            field_manager: "fm".into(),
        };
        let other = Lease {
            metadata: ObjectMeta {
                resource_version: Some("7".into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some("other".into()),
                lease_transitions: Some(2),
                ..Default::default()
            }),
        };
        let taken = held_by_me(&params, Some(&other));
        let spec = taken.spec.clone().expect("spec");
        assert_eq!(
            taken.metadata.resource_version.as_deref(),
            Some("7"),
            "guarded by resourceVersion"
        );
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_transitions, Some(3));
        assert_eq!(spec.lease_duration_seconds, Some(4));
        assert!(spec.acquire_time.is_some());
        let renewed = held_by_me(&params, Some(&taken));
        let again = renewed.spec.expect("spec");
        assert_eq!(
            again.lease_transitions,
            Some(3),
            "a renewal is no transition"
        );
        assert_eq!(again.acquire_time, spec.acquire_time, "acquire time kept");
        let created = held_by_me(&params, None).spec.expect("spec");
        assert_eq!(created.lease_transitions, Some(0));
    }
}
