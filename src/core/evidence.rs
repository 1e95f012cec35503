//! What CassKop's own writes prove about a `CassandraCluster`: which generation it last acted on
//! and whether its status was written after that. Read from the object alone (its
//! last-applied annotation and `metadata.managedFields`), so it holds after a restart, a
//! failover or a stale watch.
//!
//! From the recorded traces of the real CassKop (`../shared/casskop-traces/`):
//! - every reconcile ends with an `Update` of the object whose annotation
//!   `cassandraclusters.db.orange.com/last-applied-configuration` holds the whole object it acted
//!   on, `metadata.generation` included (trace-cc1 rv 303: annotation generation 4 = ours);
//! - with a status subresource (cscetbon's CRD) the new status follows in a separate
//!   `Status().Update` 1–25 ms later (rv 303 → 304, 339 → 340, 244 → 246, 269 → 270), so the
//!   first write after ours still carries the status from *before* our change;
//! - without one (Orange's v2.1.0 CRD) one `Update` carries annotation and status together.
//!
//! The API server stamps each manager's managedFields entry with the time (whole seconds) of
//! its last write, separately for the main resource and for `/status`. So "the status entry is
//! newer than the annotation entry" proves the status was written after the annotation.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::labels::{CASSKOP_LAST_APPLIED_ANNOTATION, SITE_FIELD_MANAGER};

/// The facts about CassKop's last writes that readiness needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CasskopEvidence {
    /// `metadata.generation` of the object CassKop last acted on (from its annotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_generation: Option<i64>,
    /// A digest of the annotation's text: it changes each time CassKop rewrites the annotation,
    /// which it does after any write to the object (ours included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_digest: Option<String>,
    /// Unix second of the last main-resource write by the manager that owns the annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_written: Option<i64>,
    /// Unix second of that manager's last `/status` write; `None` when it writes status with
    /// the main resource (no status subresource) or has not written status yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_written: Option<i64>,
    /// The object's CRD has a status subresource (some manager wrote through `/status`), so
    /// CassKop's status lands in a write of its own after the annotation.
    #[serde(default)]
    pub separate_status: bool,
    /// multi-casskop's site field manager has server-side applied this object (it was
    /// created by multi-casskop, possibly before UIDs were recorded in the ring's status).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub applied_by_multicasskop: bool,
}

/// Annotation under which the watch cache keeps [`CasskopEvidence`] of a slimmed object (never
/// written to any cluster: the cached copy drops managedFields and the large annotation).
pub const EVIDENCE_CACHE_ANNOTATION: &str = "multicasskop.db.orange.com/cached-casskop-evidence";

impl CasskopEvidence {
    /// The evidence held by a whole object as the API server returns it.
    pub fn from_object(object: &Value) -> Self {
        if let Some(cached) = object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(EVIDENCE_CACHE_ANNOTATION))
            .and_then(Value::as_str)
            .and_then(|text| serde_json::from_str(text).ok())
        {
            return cached;
        }
        let annotation = object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(CASSKOP_LAST_APPLIED_ANNOTATION))
            .and_then(Value::as_str);
        let applied_generation = annotation
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .and_then(|applied| {
                applied
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
            });
        let annotation_digest = annotation.map(digest);
        let entries: Vec<&Value> = object
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let separate_status = entries.iter().any(|e| subresource(e) == "status");
        let owner = entries
            .iter()
            .find(|e| subresource(e).is_empty() && owns_annotation(e));
        let manager = owner.and_then(|e| e.get("manager")).and_then(Value::as_str);
        let annotation_written = owner.and_then(|e| entry_time(e));
        let status_written = manager.and_then(|m| {
            entries
                .iter()
                .find(|e| {
                    subresource(e) == "status"
                        && e.get("manager").and_then(Value::as_str) == Some(m)
                })
                .and_then(|e| entry_time(e))
        });
        let applied_by_multicasskop = entries.iter().any(|e| {
            e.get("manager").and_then(Value::as_str) == Some(SITE_FIELD_MANAGER)
                && e.get("operation").and_then(Value::as_str) == Some("Apply")
        });
        CasskopEvidence {
            applied_generation,
            annotation_digest,
            annotation_written,
            status_written,
            separate_status,
            applied_by_multicasskop,
        }
    }

    /// Whether the object shows CassKop's status written after its latest annotation write
    /// (always, when both go in one write).
    pub fn status_follows_annotation(&self) -> bool {
        if !self.separate_status {
            return true;
        }
        matches!((self.status_written, self.annotation_written), (Some(s), Some(a)) if s > a)
    }
}

fn subresource(entry: &Value) -> &str {
    entry
        .get("subresource")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn owns_annotation(entry: &Value) -> bool {
    entry
        .pointer("/fieldsV1/f:metadata/f:annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(&format!("f:{CASSKOP_LAST_APPLIED_ANNOTATION}")))
}

fn entry_time(entry: &Value) -> Option<i64> {
    entry
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|t| t.as_second())
}

/// A short digest of a text.
pub fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(manager: &str, sub: &str, time: &str, annotation: bool) -> Value {
        let fields = if annotation {
            json!({"f:metadata": {"f:annotations": {"f:cassandraclusters.db.orange.com/last-applied-configuration": {}}}})
        } else {
            json!({"f:spec": {"f:cassandraImage": {}}})
        };
        let mut e = json!({"manager": manager, "operation": "Update", "time": time, "fieldsType": "FieldsV1", "fieldsV1": fields});
        if !sub.is_empty() {
            e["subresource"] = json!(sub);
        }
        e
    }

    fn object(generation: Option<i64>, entries: Vec<Value>) -> Value {
        let mut annotations = json!({});
        if let Some(g) = generation {
            annotations[CASSKOP_LAST_APPLIED_ANNOTATION] =
                json!(json!({"metadata": {"generation": g}, "spec": {}, "status": {}}).to_string());
        }
        json!({"metadata": {"generation": 4, "annotations": annotations, "managedFields": entries}})
    }

    #[test]
    fn evidence_table() {
        // Shapes taken from trace-cc1.jsonl (times as recorded there).
        let cases = [
            (
                "rv 303: annotation for generation 4 written, status still from 01:40:59",
                object(
                    Some(4),
                    vec![
                        entry("casskop", "status", "2026-11-22T01:40:59Z", false),
                        entry("kubectl-patch", "", "2026-11-22T01:42:05Z", false),
                        entry("casskop", "", "2026-11-22T01:42:06Z", true),
                    ],
                ),
                Some(4),
                true,
                false,
            ),
            (
                "rv 308: status Done written at 01:42:25 after the annotation of 01:42:06",
                object(
                    Some(4),
                    vec![
                        entry("casskop", "", "2026-11-22T01:42:06Z", true),
                        entry("casskop", "status", "2026-11-22T01:42:25Z", false),
                    ],
                ),
                Some(4),
                true,
                true,
            ),
            (
                "same second: not proven (only the ledger's settle time can tell)",
                object(
                    Some(4),
                    vec![
                        entry("casskop", "", "2026-11-22T01:42:06Z", true),
                        entry("casskop", "status", "2026-11-22T01:42:06Z", false),
                    ],
                ),
                Some(4),
                true,
                false,
            ),
            (
                "a status write by someone else (our seed list) is not CassKop's",
                object(
                    Some(4),
                    vec![
                        entry("casskop", "", "2026-11-22T01:42:06Z", true),
                        entry(
                            "multi-casskop/site",
                            "status",
                            "2026-11-22T01:42:55Z",
                            false,
                        ),
                    ],
                ),
                Some(4),
                true,
                false,
            ),
            (
                "Orange CRD: one write carries annotation and status",
                object(
                    Some(7),
                    vec![entry("casskop", "", "2026-11-22T01:42:06Z", true)],
                ),
                Some(7),
                false,
                true,
            ),
            (
                "no annotation yet (create, rv 234/235)",
                object(
                    None,
                    vec![entry("casskop", "status", "2026-11-22T01:40:08Z", false)],
                ),
                None,
                true,
                false,
            ),
        ];
        for (name, obj, generation, separate, follows) in cases {
            let e = CasskopEvidence::from_object(&obj);
            assert_eq!(e.applied_generation, generation, "{name}");
            assert_eq!(e.separate_status, separate, "{name}");
            assert_eq!(e.status_follows_annotation(), follows, "{name}");
        }
    }

    #[test]
    fn cached_evidence_wins_and_digest_tracks_rewrites() {
        let a = object(Some(3), vec![]);
        let b = object(Some(4), vec![]);
        let (ea, eb) = (
            CasskopEvidence::from_object(&a),
            CasskopEvidence::from_object(&b),
        );
        assert_ne!(ea.annotation_digest, eb.annotation_digest);
        let cached = json!({"metadata": {"annotations": {
            EVIDENCE_CACHE_ANNOTATION: serde_json::to_string(&eb).expect("json")
        }}});
        assert_eq!(CasskopEvidence::from_object(&cached), eb);
    }
}
