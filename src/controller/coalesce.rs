//! Coalesced status writes: per ring, what this process last wrote (status and finalizer; the
//! watch may still hold an older copy) and since when a change that may wait
//! ([`Urgency::MayWait`]) has been waiting.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::MultiCasskopStatus;
use crate::core::status_urgency::Urgency;

/// How long a change that may wait is held back at most: CassKop's intermediate detail reaches
/// the status within this delay, or sooner with the next change written at once.
pub const STATUS_DEBOUNCE: Duration = Duration::from_secs(10);

/// What to do with a computed status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to write (unchanged, or already written by this process).
    Skip,
    /// Write it now.
    Write,
    /// Hold it back; reconcile again after this delay.
    Wait(Duration),
}

#[derive(Debug, Default)]
struct Memory {
    /// resourceVersion and digest of this process's last status write.
    written: Option<(u64, u64)>,
    /// When a change that may wait was first held back.
    waiting_since: Option<Instant>,
    /// resourceVersion our finalizer patch produced.
    finalizer: Option<u64>,
}

/// Per ring (`namespace/name`) memory of status writes.
#[derive(Debug, Default)]
pub struct StatusWrites {
    rings: Mutex<HashMap<String, Memory>>,
}

/// A digest of a status (to recognise one this process already wrote).
pub fn digest(status: &MultiCasskopStatus) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(status)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

impl StatusWrites {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Memory>> {
        self.rings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decides about `next` (digest `next_digest`, `urgency` against the status read at
    /// resourceVersion `read_rv`).
    pub fn decide(
        &self,
        ring: &str,
        read_rv: Option<u64>,
        urgency: Urgency,
        next_digest: u64,
    ) -> Decision {
        self.decide_at(ring, read_rv, urgency, next_digest, Instant::now())
    }

    fn decide_at(
        &self,
        ring: &str,
        read_rv: Option<u64>,
        urgency: Urgency,
        next_digest: u64,
        now: Instant,
    ) -> Decision {
        let mut rings = self.lock();
        let memory = rings.entry(ring.to_string()).or_default();
        if let Some((rv, digest)) = memory.written
            && read_rv.is_none_or(|read| read < rv)
        {
            // The copy read predates our own last write: judge against what we wrote.
            if digest == next_digest {
                memory.waiting_since = None;
                return Decision::Skip;
            }
            if urgency == Urgency::Unchanged {
                return Decision::Write;
            }
        }
        match urgency {
            Urgency::Unchanged => {
                memory.waiting_since = None;
                Decision::Skip
            }
            Urgency::Now => Decision::Write,
            Urgency::MayWait => {
                let since = *memory.waiting_since.get_or_insert(now);
                let waited = now.duration_since(since);
                if waited >= STATUS_DEBOUNCE {
                    Decision::Write
                } else {
                    Decision::Wait(STATUS_DEBOUNCE - waited)
                }
            }
        }
    }

    /// Records a status write that produced resourceVersion `rv`.
    pub fn written(&self, ring: &str, rv: Option<u64>, digest: u64) {
        let mut rings = self.lock();
        let memory = rings.entry(ring.to_string()).or_default();
        memory.written = rv.map(|rv| (rv, digest));
        memory.waiting_since = None;
    }

    /// Records that our finalizer patch produced resourceVersion `rv`.
    pub fn finalizer_written(&self, ring: &str, rv: Option<u64>) {
        self.lock().entry(ring.to_string()).or_default().finalizer = rv;
    }

    /// Whether this process added the finalizer after the copy read at `read_rv` was taken.
    pub fn finalizer_added_after(&self, ring: &str, read_rv: Option<u64>) -> bool {
        self.lock()
            .get(ring)
            .and_then(|m| m.finalizer)
            .is_some_and(|added| read_rv.is_none_or(|read| read < added))
    }

    /// Forgets a ring (deleted).
    pub fn forget(&self, ring: &str) {
        self.lock().remove(ring);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let w = StatusWrites::default();
        let t0 = Instant::now();
        let later = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::Unchanged, 1, t0),
            Decision::Skip
        );
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::Now, 1, t0),
            Decision::Write
        );
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::MayWait, 1, t0),
            Decision::Wait(STATUS_DEBOUNCE),
            "held back"
        );
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::MayWait, 2, later(1000)),
            Decision::Wait(STATUS_DEBOUNCE - Duration::from_secs(1)),
            "counted from the first change held back"
        );
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::MayWait, 3, t0 + STATUS_DEBOUNCE),
            Decision::Write,
            "written once the debounce has passed"
        );
        w.written("r", Some(9), 3);
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::Now, 3, later(1)),
            Decision::Skip,
            "an older copy read after our write: what we wrote is not written again"
        );
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::Unchanged, 4, later(1)),
            Decision::Write,
            "an older copy that equals the new status still differs from what we wrote"
        );
        assert_eq!(
            w.decide_at("r", Some(9), Urgency::MayWait, 4, later(1)),
            Decision::Wait(STATUS_DEBOUNCE),
            "the debounce restarts after a write"
        );
        w.forget("r");
        assert_eq!(w.decide_at("r", None, Urgency::Now, 3, t0), Decision::Write);
    }

    #[test]
    fn a_finalizer_is_known_to_copies_older_than_our_patch() {
        let w = StatusWrites::default();
        assert!(!w.finalizer_added_after("r", Some(5)), "never added");
        w.finalizer_written("r", Some(9));
        assert!(w.finalizer_added_after("r", Some(5)), "older copy");
        assert!(
            !w.finalizer_added_after("r", Some(9)),
            "a copy that shows our patch"
        );
        assert!(
            !w.finalizer_added_after("r", Some(12)),
            "a newer copy without it: removed since"
        );
    }
}
