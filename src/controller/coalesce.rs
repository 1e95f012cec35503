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
    /// resourceVersion and digests of this process's last status write.
    written: Option<(u64, Digests)>,
    /// That status, until the watch delivers a copy at least as new.
    status: Option<MultiCasskopStatus>,
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

/// Digests of a status and of its essentials (to compare with one this process wrote without
/// keeping it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digests {
    /// Of the whole status.
    pub full: u64,
    /// Of what is written at once ([`crate::core::status_urgency::essential`]).
    pub essential: u64,
}

fn hash(status: &MultiCasskopStatus) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(status)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

/// The digests of `status`.
pub fn digests(status: &MultiCasskopStatus) -> Digests {
    Digests {
        full: hash(status),
        essential: hash(&crate::core::status_urgency::essential(status)),
    }
}

impl StatusWrites {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Memory>> {
        self.rings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decides about `next` (digests `next`, `urgency` against the status read at
    /// resourceVersion `read_rv`).
    pub fn decide(
        &self,
        ring: &str,
        read_rv: Option<u64>,
        urgency: Urgency,
        next: Digests,
    ) -> Decision {
        self.decide_at(ring, read_rv, urgency, next, Instant::now())
    }

    fn decide_at(
        &self,
        ring: &str,
        read_rv: Option<u64>,
        urgency: Urgency,
        next: Digests,
        now: Instant,
    ) -> Decision {
        let mut rings = self.lock();
        let memory = rings.entry(ring.to_string()).or_default();
        let urgency = match memory.written {
            // The copy read predates our own last write: judge against what we wrote.
            Some((rv, written)) if read_rv.is_none_or(|read| read < rv) => {
                if written.full == next.full {
                    Urgency::Unchanged
                } else if written.essential == next.essential {
                    Urgency::MayWait
                } else {
                    Urgency::Now
                }
            }
            _ => urgency,
        };
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

    /// The status to start a reconcile from: the copy read at `read_rv`, or the newer one this
    /// process wrote (the watch can lag behind our own write; a reconcile from the older copy
    /// would recompute timestamps and rewrite). The kept copy is dropped once the watch caught up.
    pub fn newest(
        &self,
        ring: &str,
        read_rv: Option<u64>,
        read: Option<&MultiCasskopStatus>,
    ) -> Option<MultiCasskopStatus> {
        let mut rings = self.lock();
        let memory = rings.get_mut(ring)?;
        let (rv, _) = memory.written?;
        if read_rv.is_none_or(|read| read < rv) {
            memory.status.clone()
        } else {
            memory.status = None;
            read.cloned()
        }
    }

    /// Records a status write that produced resourceVersion `rv`.
    pub fn written(
        &self,
        ring: &str,
        rv: Option<u64>,
        digests: Digests,
        status: MultiCasskopStatus,
    ) {
        let mut rings = self.lock();
        let memory = rings.entry(ring.to_string()).or_default();
        memory.written = rv.map(|rv| (rv, digests));
        memory.status = Some(status);
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

    fn d(full: u64, essential: u64) -> Digests {
        Digests { full, essential }
    }

    #[test]
    fn decisions() {
        let w = StatusWrites::default();
        let t0 = Instant::now();
        let later = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::Unchanged, d(1, 1), t0),
            Decision::Skip
        );
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::Now, d(1, 1), t0),
            Decision::Write
        );
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::MayWait, d(1, 1), t0),
            Decision::Wait(STATUS_DEBOUNCE),
            "held back"
        );
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::MayWait, d(2, 1), later(1000)),
            Decision::Wait(STATUS_DEBOUNCE - Duration::from_secs(1)),
            "counted from the first change held back"
        );
        assert_eq!(
            w.decide_at(
                "r",
                Some(5),
                Urgency::MayWait,
                d(3, 1),
                t0 + STATUS_DEBOUNCE
            ),
            Decision::Write,
            "written once the debounce has passed"
        );
        let ours = MultiCasskopStatus {
            phase: Some("Progressing".into()),
            ..Default::default()
        };
        w.written("r", Some(9), d(3, 1), ours.clone());
        let old = MultiCasskopStatus::default();
        assert_eq!(
            w.newest("r", Some(5), Some(&old)),
            Some(ours.clone()),
            "an older copy: start from what we wrote"
        );
        assert_eq!(
            w.newest("r", Some(9), Some(&old)),
            Some(old.clone()),
            "the watch caught up"
        );
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::Now, d(3, 1), later(1)),
            Decision::Skip,
            "an older copy read after our write: what we wrote is not written again"
        );
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::Now, d(4, 1), later(1)),
            Decision::Wait(STATUS_DEBOUNCE),
            "an older copy: only detail differs from what we wrote, so it waits"
        );
        assert_eq!(
            w.decide_at("r", Some(5), Urgency::Unchanged, d(4, 2), later(1)),
            Decision::Write,
            "an older copy that equals the new status still differs from what we wrote"
        );
        w.written("r", Some(9), d(3, 1), ours);
        assert_eq!(
            w.decide_at("r", Some(9), Urgency::MayWait, d(4, 1), later(1)),
            Decision::Wait(STATUS_DEBOUNCE),
            "the debounce restarts after a write"
        );
        w.forget("r");
        assert_eq!(
            w.decide_at("r", None, Urgency::Now, d(3, 1), t0),
            Decision::Write
        );
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
