//! What is known of each site's API server, and the triggers that make the controller look at
//! MultiCasskops again when that changes. Shared by the site's watch and its probe.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::ObjectRef;

use crate::api::MultiCasskop;

/// What makes the controller look at MultiCasskops again.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// One MultiCasskop (a CassandraCluster it owns changed at a site).
    One(ObjectRef<MultiCasskop>),
    /// All of them (a site was added, removed, went down or came back).
    All,
}

/// How long a site must keep failing (requests, probes or its watch, with no success in between)
/// before it counts as unreachable: one request that timed out on an overloaded API server must
/// not flip the site in every ring's status (a status write per ring, on a server that is
/// already behind).
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(3);

/// What we know of a site's API server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// The last request, probe or watch event succeeded.
    pub reachable: bool,
    /// The watch of our CassandraClusters has listed them at least once.
    pub synced: bool,
    /// The last error, in words.
    pub error: Option<String>,
    /// The watch's last attempt failed (a probe that succeeds meanwhile does not hide that the
    /// store is not being kept up to date).
    pub watch_failing: bool,
    /// Since when every request, probe and watch attempt has failed (none since a success).
    pub failing_since: Option<Instant>,
}

impl Health {
    /// Reachable and nothing failing: probes can take their time.
    pub fn steady(&self) -> bool {
        self.reachable && self.failing_since.is_none()
    }
}

/// Records the outcome of a watch attempt (an event or a failure).
pub(crate) fn set_watch(
    health: &Mutex<Health>,
    triggers: &UnboundedSender<Trigger>,
    ok: bool,
    error: Option<String>,
) {
    set_watch_at(health, triggers, ok, error, Instant::now());
}

fn set_watch_at(
    health: &Mutex<Health>,
    triggers: &UnboundedSender<Trigger>,
    ok: bool,
    error: Option<String>,
    now: Instant,
) {
    if let Ok(mut h) = health.lock() {
        h.watch_failing = !ok;
    }
    set_health(health, triggers, ok, error, now);
}

/// Records the outcome of a request or probe: success only makes the site reachable again when
/// its watch is not failing.
pub(crate) fn set_request(
    health: &Mutex<Health>,
    triggers: &UnboundedSender<Trigger>,
    ok: bool,
    error: Option<String>,
) {
    set_request_at(health, triggers, ok, error, Instant::now());
}

fn set_request_at(
    health: &Mutex<Health>,
    triggers: &UnboundedSender<Trigger>,
    ok: bool,
    error: Option<String>,
    now: Instant,
) {
    let watch_failing = health.lock().map(|h| h.watch_failing).unwrap_or(false);
    if ok && watch_failing {
        return;
    }
    set_health(health, triggers, ok, error, now);
}

/// Sets reachability and the error; a change of reachability makes every ring look again. A
/// reachable site becomes unreachable only once it has been failing for [`UNREACHABLE_AFTER`];
/// one success makes it reachable again.
fn set_health(
    health: &Mutex<Health>,
    triggers: &UnboundedSender<Trigger>,
    ok: bool,
    error: Option<String>,
    now: Instant,
) {
    let changed = match health.lock() {
        Ok(mut h) => {
            let reachable = if ok {
                h.failing_since = None;
                true
            } else {
                let since = *h.failing_since.get_or_insert(now);
                h.reachable && now.duration_since(since) < UNREACHABLE_AFTER
            };
            let changed = h.reachable != reachable;
            h.reachable = reachable;
            if ok || !reachable {
                h.error = error;
            }
            changed
        }
        Err(_) => false,
    };
    if changed {
        let _ = triggers.unbounded_send(Trigger::All);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc::unbounded;

    #[test]
    fn a_probe_does_not_hide_a_failing_watch_and_changes_trigger_every_ring() {
        let health = Mutex::new(Health::default());
        let (tx, mut rx) = unbounded();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        set_watch_at(&health, &tx, true, None, at(0));
        assert_eq!(rx.try_recv().ok(), Some(Trigger::All), "came up");
        set_request_at(&health, &tx, false, Some("no answer".into()), at(10));
        assert!(
            health.lock().expect("lock").reachable,
            "one failure is not yet a site down"
        );
        assert!(rx.try_recv().is_err(), "nothing to look at again yet");
        set_request_at(&health, &tx, false, Some("no answer".into()), at(13));
        assert!(!health.lock().expect("lock").reachable, "failing for 3 s");
        assert_eq!(
            health.lock().expect("lock").error.as_deref(),
            Some("no answer")
        );
        assert_eq!(rx.try_recv().ok(), Some(Trigger::All), "went down");
        set_request_at(&health, &tx, true, None, at(14));
        assert!(
            health.lock().expect("lock").reachable,
            "recovered without any event at the site"
        );
        assert_eq!(rx.try_recv().ok(), Some(Trigger::All), "came back");
        set_watch_at(&health, &tx, false, Some("watch failed".into()), at(20));
        set_watch_at(&health, &tx, false, Some("watch failed".into()), at(24));
        set_request_at(&health, &tx, true, None, at(25));
        assert!(
            !health.lock().expect("lock").reachable,
            "the watch still fails"
        );
        set_watch_at(&health, &tx, true, None, at(26));
        assert!(health.lock().expect("lock").reachable);
    }

    #[test]
    fn failures_with_a_success_between_never_add_up() {
        let health = Mutex::new(Health::default());
        let (tx, _rx) = unbounded();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        set_request_at(&health, &tx, true, None, at(0));
        for step in 0..10 {
            set_request_at(&health, &tx, false, Some("timeout".into()), at(step * 2000));
            set_request_at(&health, &tx, true, None, at(step * 2000 + 1000));
        }
        let h = health.lock().expect("lock").clone();
        assert!(h.reachable && h.error.is_none(), "{h:?}");
    }

    #[test]
    fn a_site_never_reached_stays_unreachable_from_its_first_failure() {
        let health = Mutex::new(Health::default());
        let (tx, _rx) = unbounded();
        set_request_at(&health, &tx, false, Some("refused".into()), Instant::now());
        let h = health.lock().expect("lock").clone();
        assert!(
            !h.reachable && h.error.as_deref() == Some("refused"),
            "{h:?}"
        );
    }
}
