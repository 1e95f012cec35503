//! What is known of each site's API server, and the triggers that make the controller look at
//! MultiCasskops again when that changes. Shared by the site's watch and its probe.

use std::sync::Mutex;

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
}

/// Records the outcome of a watch attempt (an event or a failure).
pub(crate) fn set_watch(
    health: &Mutex<Health>,
    triggers: &UnboundedSender<Trigger>,
    ok: bool,
    error: Option<String>,
) {
    if let Ok(mut h) = health.lock() {
        h.watch_failing = !ok;
    }
    set_health(health, triggers, ok, error);
}

/// Records the outcome of a request or probe: success only makes the site reachable again when
/// its watch is not failing.
pub(crate) fn set_request(
    health: &Mutex<Health>,
    triggers: &UnboundedSender<Trigger>,
    ok: bool,
    error: Option<String>,
) {
    let watch_failing = health.lock().map(|h| h.watch_failing).unwrap_or(false);
    if ok && watch_failing {
        return;
    }
    set_health(health, triggers, ok, error);
}

/// Sets reachability and the error; a change of reachability makes every ring look again.
fn set_health(
    health: &Mutex<Health>,
    triggers: &UnboundedSender<Trigger>,
    reachable: bool,
    error: Option<String>,
) {
    let changed = match health.lock() {
        Ok(mut h) => {
            let changed = h.reachable != reachable;
            h.reachable = reachable;
            h.error = error;
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
        set_watch(&health, &tx, true, None);
        assert_eq!(rx.try_recv().ok(), Some(Trigger::All), "came up");
        set_request(&health, &tx, false, Some("no answer".into()));
        assert!(!health.lock().expect("lock").reachable);
        assert_eq!(rx.try_recv().ok(), Some(Trigger::All), "went down");
        set_request(&health, &tx, true, None);
        assert!(
            health.lock().expect("lock").reachable,
            "recovered without any event at the site"
        );
        assert_eq!(rx.try_recv().ok(), Some(Trigger::All), "came back");
        set_watch(&health, &tx, false, Some("watch failed".into()));
        set_request(&health, &tx, true, None);
        assert!(
            !health.lock().expect("lock").reachable,
            "the watch still fails"
        );
        set_watch(&health, &tx, true, None);
        assert!(health.lock().expect("lock").reachable);
    }
}
