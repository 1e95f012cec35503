//! The one record of what multi-casskop wrote at each site and what it awaits there: the only
//! place where apply and readiness meet.
//!
//! Per (ring, site) it keeps the [`WriteRecord`] of our last write, the object that write
//! returned (a watch store can lag behind our own write by a few milliseconds, and a reconcile
//! right after the write must not mistake the older copy for drift or for readiness), and
//! when CassKop's acknowledgement of the write was first seen (for
//! [`crate::core::readiness::STATUS_SETTLE`]). The same record is written to
//! `status.sites[].lastWrite`, so a restarted or new leader knows it; but the MultiCasskop read
//! from the watch may predate our own status write, so the newer of the two always wins.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::DynamicObject;

use crate::api::WriteRecord;
use crate::core::readiness::{Observation, SiteReadiness, acknowledged, site_readiness};

/// Identifies one site of one ring.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteKey {
    /// `namespace/name` of the MultiCasskop.
    pub ring: String,
    /// Site name.
    pub site: String,
}

impl SiteKey {
    /// The key of `site` in the ring `namespace/name`.
    pub fn new(namespace: &str, name: &str, site: &str) -> Self {
        SiteKey {
            ring: format!("{namespace}/{name}"),
            site: site.to_string(),
        }
    }
}

impl std::fmt::Display for SiteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.ring, self.site)
    }
}

#[derive(Clone, Debug)]
struct Entry {
    record: WriteRecord,
    written: Option<DynamicObject>,
    /// UID of the object our last write produced (kept after the copy is dropped): proof of
    /// ownership before the ring's status, which records it too, comes back from the watch.
    uid: Option<String>,
    acknowledged_at: Option<Instant>,
}

/// The ledger of writes.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: Mutex<HashMap<SiteKey, Entry>>,
}

/// resourceVersions are etcd revisions (integers) on every API server built on etcd.
fn revision(rv: &str) -> Option<u64> {
    rv.parse().ok()
}

fn object_revision(o: &DynamicObject) -> Option<u64> {
    o.resource_version().as_deref().and_then(revision)
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SiteKey, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a write and the object it returned (slimmed like the watch stores' copies, which
    /// it stands in for).
    pub fn record(&self, key: &SiteKey, record: WriteRecord, mut written: DynamicObject) {
        crate::sites::slim(&mut written);
        self.lock().insert(
            key.clone(),
            Entry {
                record,
                uid: written.uid(),
                written: Some(written),
                acknowledged_at: None,
            },
        );
    }

    /// UID of the object this process's last write at the site produced.
    pub fn written_uid(&self, key: &SiteKey) -> Option<String> {
        self.lock().get(key).and_then(|e| e.uid.clone())
    }

    /// The write the site must acknowledge: the newer of this process's record and the one
    /// read from the MultiCasskop's status (`persisted`, possibly stale).
    pub fn awaited(&self, key: &SiteKey, persisted: Option<&WriteRecord>) -> Option<WriteRecord> {
        let mine = self.lock().get(key).map(|e| e.record.clone());
        match (mine, persisted) {
            (Some(m), Some(p)) => {
                if revision(&p.resource_version) > revision(&m.resource_version) {
                    Some(p.clone())
                } else if p.resource_version == m.resource_version {
                    Some(WriteRecord {
                        confirmed: m.confirmed || p.confirmed,
                        ..m
                    })
                } else {
                    Some(m)
                }
            }
            (m, p) => m.or_else(|| p.cloned()),
        }
    }

    /// Marks the awaited write as seen ready (kept, so the site does not wait again) and
    /// returns it as it is to be persisted.
    pub fn confirm(&self, key: &SiteKey, awaited: Option<&WriteRecord>) -> Option<WriteRecord> {
        let record = WriteRecord {
            confirmed: true,
            ..awaited?.clone()
        };
        let mut entries = self.lock();
        match entries.get_mut(key) {
            Some(entry) if entry.record.resource_version == record.resource_version => {
                entry.record.confirmed = true;
            }
            _ => {
                entries.insert(
                    key.clone(),
                    Entry {
                        record: record.clone(),
                        written: None,
                        uid: None,
                        acknowledged_at: None,
                    },
                );
            }
        }
        Some(record)
    }

    /// The newest copy of a site's object: the watch store's, or the one our last write returned
    /// if the store has not caught up with it yet (then the copy is dropped once it has).
    pub fn newest_object(
        &self,
        key: &SiteKey,
        from_store: Option<DynamicObject>,
    ) -> Option<DynamicObject> {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(key) else {
            return from_store;
        };
        let Some(written) = &entry.written else {
            return from_store;
        };
        match &from_store {
            Some(s) if object_revision(s) >= object_revision(written) => {
                entry.written = None;
                from_store
            }
            Some(s) if s.uid() != written.uid() => from_store,
            _ => Some(written.clone()),
        }
    }

    /// Judges readiness of a site for its awaited write (see [`site_readiness`]), remembering
    /// when CassKop's acknowledgement was first seen. Returns the readiness and, while its
    /// status is settling, when to look again (no event may come if CassKop had nothing to do).
    pub fn judge(
        &self,
        key: &SiteKey,
        awaited: Option<&WriteRecord>,
        obs: &Observation<'_>,
    ) -> (SiteReadiness, Option<Duration>) {
        let now = Instant::now();
        let acknowledged_for = if acknowledged(obs, awaited) {
            let mut entries = self.lock();
            match entries.get_mut(key) {
                Some(entry)
                    if awaited
                        .is_none_or(|a| a.resource_version == entry.record.resource_version) =>
                {
                    let since = *entry.acknowledged_at.get_or_insert(now);
                    Some(now.duration_since(since))
                }
                // A record this process did not make (read from status after a restart):
                // adopt it so the settle time counts from now.
                _ => {
                    if let Some(a) = awaited {
                        entries.insert(
                            key.clone(),
                            Entry {
                                record: a.clone(),
                                written: None,
                                uid: None,
                                acknowledged_at: Some(now),
                            },
                        );
                    }
                    Some(Duration::ZERO)
                }
            }
        } else {
            None
        };
        let readiness = site_readiness(obs, awaited, acknowledged_for);
        let recheck = (readiness == SiteReadiness::Settling).then(|| {
            crate::core::readiness::STATUS_SETTLE
                .saturating_sub(acknowledged_for.unwrap_or_default())
                + Duration::from_millis(50)
        });
        (readiness, recheck)
    }

    /// Forgets a site of a ring (it left, or the ring is gone).
    pub fn forget(&self, key: &SiteKey) {
        self.lock().remove(key);
    }

    /// Forgets every site of a ring.
    pub fn forget_ring(&self, ring: &str) {
        self.lock().retain(|k, _| k.ring != ring);
    }

    /// How many (ring, site) entries are held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{StatusView, WriteKind};
    use crate::core::evidence::CasskopEvidence;
    use serde_json::json;

    fn record(rv: &str, generation: i64) -> WriteRecord {
        WriteRecord {
            resource_version: rv.into(),
            generation,
            kind: WriteKind::Spec,
            annotation_digest: None,
            spec_digest: format!("spec-{generation}"),
            confirmed: false,
        }
    }

    fn object(rv: &str, uid: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
            "metadata": {"name": "c", "namespace": "n", "resourceVersion": rv, "uid": uid}
        }))
        .expect("object")
    }

    fn done() -> StatusView {
        StatusView {
            phase: Some("Running".into()),
            last_cluster_action: Some("Initializing".into()),
            last_cluster_action_status: Some("Done".into()),
            seedlist: None,
        }
    }

    #[test]
    fn a_stale_status_never_hides_our_last_write() {
        // The MultiCasskop from the watch still carries the record of generation 3; this
        // process has since written generation 4. The store's object shows CassKop Done on 3.
        let ledger = Ledger::default();
        let key = SiteKey::new("ns", "ring", "a");
        ledger.record(&key, record("281", 4), object("281", "u"));
        let stale = record("200", 3);
        let awaited = ledger.awaited(&key, Some(&stale));
        assert_eq!(awaited, Some(record("281", 4)));
        let evidence = CasskopEvidence {
            applied_generation: Some(3),
            annotation_digest: Some("a".into()),
            annotation_written: Some(10),
            status_written: Some(11),
            separate_status: true,
            applied_by_multicasskop: true,
        };
        let status = done();
        let obs = Observation {
            generation: 3,
            evidence: &evidence,
            status: &status,
            holds_our_spec: true,
        };
        let (readiness, _) = ledger.judge(&key, awaited.as_ref(), &obs);
        assert!(
            matches!(readiness, SiteReadiness::AwaitingCassKop { .. }),
            "{readiness:?}"
        );
        // Bypassing the ledger (the stale status alone) would have called it ready.
        let (bypassed, _) = Ledger::default().judge(&key, Some(&stale), &obs);
        assert_eq!(bypassed, SiteReadiness::Ready);
    }

    #[test]
    fn a_newer_persisted_record_wins_after_failover() {
        let ledger = Ledger::default();
        let key = SiteKey::new("ns", "ring", "a");
        ledger.record(&key, record("100", 2), object("100", "u"));
        assert_eq!(
            ledger.awaited(&key, Some(&record("300", 5))),
            Some(record("300", 5))
        );
        assert_eq!(
            ledger.awaited(&SiteKey::new("ns", "other", "a"), None),
            None
        );
    }

    #[test]
    fn our_write_is_newer_than_a_lagging_store_until_it_catches_up() {
        let ledger = Ledger::default();
        let key = SiteKey::new("ns", "ring", "a");
        ledger.record(&key, record("281", 4), object("281", "u"));
        let got = ledger.newest_object(&key, Some(object("270", "u")));
        assert_eq!(got.and_then(|o| o.resource_version()), Some("281".into()));
        let got = ledger.newest_object(&key, Some(object("303", "u")));
        assert_eq!(got.and_then(|o| o.resource_version()), Some("303".into()));
        // Caught up: the copy is gone, the store's version is used from now on.
        let got = ledger.newest_object(&key, Some(object("290", "u")));
        assert_eq!(got.and_then(|o| o.resource_version()), Some("290".into()));
        // A store without the object (not listed yet) gets our copy.
        ledger.record(&key, record("400", 5), object("400", "u"));
        assert!(ledger.newest_object(&key, None).is_some());
        // A different object with the same name (recreated by someone) is not ours.
        let got = ledger.newest_object(&key, Some(object("10", "other")));
        assert_eq!(got.map(|o| o.uid()), Some(Some("other".into())));
        // The UID of what we wrote stays known after the copy is gone.
        assert_eq!(ledger.written_uid(&key), Some("u".into()));
    }

    #[test]
    fn settle_time_counts_from_the_first_acknowledgement() {
        let ledger = Ledger::default();
        let key = SiteKey::new("ns", "ring", "a");
        ledger.record(&key, record("281", 4), object("281", "u"));
        let evidence = CasskopEvidence {
            applied_generation: Some(4),
            annotation_digest: Some("a".into()),
            annotation_written: Some(20),
            status_written: Some(11),
            separate_status: true,
            applied_by_multicasskop: true,
        };
        let status = done();
        let obs = Observation {
            generation: 4,
            evidence: &evidence,
            status: &status,
            holds_our_spec: true,
        };
        let awaited = ledger.awaited(&key, None);
        let (first, recheck) = ledger.judge(&key, awaited.as_ref(), &obs);
        assert_eq!(first, SiteReadiness::Settling);
        assert!(recheck.is_some_and(|d| d <= Duration::from_millis(1100)));
        std::thread::sleep(crate::core::readiness::STATUS_SETTLE);
        let (later, _) = ledger.judge(&key, awaited.as_ref(), &obs);
        assert_eq!(later, SiteReadiness::Ready);
        ledger.forget_ring("ns/ring");
        assert!(ledger.is_empty());
    }
}
