//! Does a site's CassandraCluster already hold what we want? Decides whether a write is needed,
//! so that a converged ring causes no writes at all and a hand-edited one is restored.
//!
//! CassKop rewrites the whole object from its Go types, so the stored form of a value may
//! differ from what we wrote without the meaning changing: zero values (`false`, `0`, `""`,
//! empty lists and maps) disappear (`omitempty`) and quantities are canonicalised
//! (`2000m` becomes `2`). Both count as equal here; anything else is drift.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::core::site_object::SiteCassandraCluster;

/// What a site's CassandraCluster lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// It holds our metadata, spec and seed list.
    InSync,
    /// Only labels or annotations differ: a metadata-only write, which gives CassKop nothing
    /// to do (no new generation).
    MetadataDiffers,
    /// The spec differs (or the object is missing).
    SpecDiffers,
    /// Only `status.seedlist` differs.
    SeedsDiffer,
}

/// Compares the stored object at a site with what it must hold.
pub fn sync_state(
    observed: Option<&Value>,
    desired: &SiteCassandraCluster,
    seeds: &[String],
) -> SyncState {
    let Some(observed) = observed else {
        return SyncState::SpecDiffers;
    };
    let held = |key: &str| {
        holds(
            observed.get(key).unwrap_or(&Value::Null),
            &desired.object[key],
        )
    };
    if !held("spec") {
        return SyncState::SpecDiffers;
    }
    let stored_seeds: Vec<&str> = observed
        .pointer("/status/seedlist")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if stored_seeds != seeds {
        SyncState::SeedsDiffer
    } else if !held("metadata") {
        SyncState::MetadataDiffers
    } else {
        SyncState::InSync
    }
}

/// The spec CassKop last reconciled, from its last-applied-configuration annotation (real CassKop
/// stores the whole object there, the simulator the spec alone).
pub fn casskop_last_applied_spec(observed: &Value) -> Option<Value> {
    let text = observed
        .pointer("/metadata/annotations")?
        .get(crate::labels::CASSKOP_LAST_APPLIED_ANNOTATION)?
        .as_str()?;
    let applied: Value = serde_json::from_str(text).ok()?;
    Some(match applied.get("spec") {
        Some(spec) if applied.get("kind").is_some() || applied.get("metadata").is_some() => {
            spec.clone()
        }
        _ => applied,
    })
}

/// Whether CassKop's last-applied spec holds the spec we want at the site.
pub fn casskop_took_in(observed: &Value, desired: &SiteCassandraCluster) -> bool {
    casskop_last_applied_spec(observed)
        .is_some_and(|applied| holds(&applied, &desired.object["spec"]))
}

/// Whether the stored seed list differs from `seeds`.
pub fn seeds_differ(observed: Option<&Value>, seeds: &[String]) -> bool {
    let stored: Vec<&str> = observed
        .and_then(|o| o.pointer("/status/seedlist"))
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    stored != seeds
}

/// Whether `observed` holds every value of `desired` (extra observed keys are ignored).
pub fn holds(observed: &Value, desired: &Value) -> bool {
    match desired {
        Value::Object(want) => {
            let empty = serde_json::Map::new();
            let have = match observed {
                Value::Object(have) => have,
                Value::Null => &empty,
                _ => return false,
            };
            want.iter().all(|(k, v)| match have.get(k) {
                Some(o) => holds(o, v),
                None => is_zero(v),
            })
        }
        Value::Array(want) => match observed {
            Value::Array(have) => {
                have.len() == want.len() && have.iter().zip(want).all(|(o, d)| holds(o, d))
            }
            Value::Null => want.is_empty(),
            _ => false,
        },
        Value::String(want) => match observed {
            Value::String(have) => have == want || quantities_equal(have, want),
            Value::Null => want.is_empty(),
            _ => false,
        },
        Value::Number(want) => match observed {
            Value::Number(have) => have == want || have.as_f64() == want.as_f64(),
            Value::Null => want.as_f64() == Some(0.0),
            _ => false,
        },
        Value::Bool(want) => match observed {
            Value::Bool(have) => have == want,
            Value::Null => !want,
            _ => false,
        },
        Value::Null => observed.is_null(),
    }
}

/// Whether Go's `omitempty` would drop this value.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?[0-9]+))?$").expect("valid regex")
});

/// The value of a Kubernetes quantity such as `2`, `2000m`, `4Gi` or `1e3`.
pub fn quantity_value(s: &str) -> Option<f64> {
    let caps = QUANTITY.captures(s.trim())?;
    let number: f64 = caps.get(1)?.as_str().parse().ok()?;
    let scale = match caps.get(2).map(|m| m.as_str()) {
        Some("Ki") => 1024f64,
        Some("Mi") => 1024f64.powi(2),
        Some("Gi") => 1024f64.powi(3),
        Some("Ti") => 1024f64.powi(4),
        Some("Pi") => 1024f64.powi(5),
        Some("Ei") => 1024f64.powi(6),
        Some("n") => 1e-9,
        Some("u") => 1e-6,
        Some("m") => 1e-3,
        Some("k") => 1e3,
        Some("M") => 1e6,
        Some("G") => 1e9,
        Some("T") => 1e12,
        Some("P") => 1e15,
        Some("E") => 1e18,
        _ => match caps.get(3) {
            Some(exp) => 10f64.powi(exp.as_str().parse().ok()?),
            None => 1.0,
        },
    };
    Some(number * scale)
}

fn quantities_equal(a: &str, b: &str) -> bool {
    match (quantity_value(a), quantity_value(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()) * 4.0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::site_object::{Owner, build_site_object};
    use serde_json::json;

    #[test]
    fn holds_table() {
        let cases = [
            (
                "identical",
                json!({"a":1,"b":"x"}),
                json!({"a":1,"b":"x"}),
                true,
            ),
            (
                "extra observed keys (defaults) are fine",
                json!({"a":1,"runAsUser":999}),
                json!({"a":1}),
                true,
            ),
            (
                "changed value is drift",
                json!({"a":2}),
                json!({"a":1}),
                false,
            ),
            (
                "missing non-zero value is drift",
                json!({}),
                json!({"a":1}),
                false,
            ),
            (
                "missing false is omitempty",
                json!({}),
                json!({"hardAntiAffinity":false}),
                true,
            ),
            ("missing 0 is omitempty", json!({}), json!({"n":0}), true),
            (
                "missing empty string is omitempty",
                json!({}),
                json!({"s":""}),
                true,
            ),
            (
                "missing empty map is omitempty",
                json!({}),
                json!({"m":{}}),
                true,
            ),
            (
                "missing empty list is omitempty",
                json!({}),
                json!({"l":[]}),
                true,
            ),
            (
                "canonical quantity",
                json!({"cpu":"2"}),
                json!({"cpu":"2000m"}),
                true,
            ),
            (
                "binary quantity",
                json!({"memory":"4Gi"}),
                json!({"memory":"4096Mi"}),
                true,
            ),
            (
                "different quantity",
                json!({"cpu":"1"}),
                json!({"cpu":"2000m"}),
                false,
            ),
            ("integer vs float", json!({"n":2.0}), json!({"n":2}), true),
            (
                "list length differs",
                json!({"l":[1,2]}),
                json!({"l":[1]}),
                false,
            ),
            (
                "list element differs",
                json!({"l":[{"name":"a"}]}),
                json!({"l":[{"name":"b"}]}),
                false,
            ),
            (
                "list elements with defaults",
                json!({"l":[{"name":"a","x":1}]}),
                json!({"l":[{"name":"a"}]}),
                true,
            ),
            ("type changed", json!({"a":"1"}), json!({"a":1}), false),
            (
                "image tag is not a quantity",
                json!({"i":"c:3.11"}),
                json!({"i":"c:3.11.0"}),
                false,
            ),
            ("true vs missing", json!({}), json!({"b":true}), false),
            (
                "nested drift",
                json!({"spec":{"topology":{"dc":[{"name":"d","nodesPerRacks":3}]}}}),
                json!({"spec":{"topology":{"dc":[{"name":"d","nodesPerRacks":2}]}}}),
                false,
            ),
        ];
        for (name, observed, desired, want) in cases {
            assert_eq!(holds(&observed, &desired), want, "{name}");
        }
    }

    #[test]
    fn last_applied_annotation() {
        let site = build_site_object(
            Owner {
                name: "r",
                namespace: "ns",
            },
            &json!({"metadata":{"name":"c"},"spec":{"nodesPerRacks":2}}),
            &json!({}),
            "s",
        )
        .expect("valid");
        let with = |text: &str| json!({"metadata": {"annotations": {(crate::labels::CASSKOP_LAST_APPLIED_ANNOTATION): text}}});
        assert!(
            casskop_took_in(&with(r#"{"nodesPerRacks":2,"runAsUser":999}"#), &site),
            "spec-only form"
        );
        assert!(
            casskop_took_in(
                &with(
                    r#"{"kind":"CassandraCluster","metadata":{"name":"c"},"spec":{"nodesPerRacks":2}}"#
                ),
                &site
            ),
            "whole-object form"
        );
        assert!(
            !casskop_took_in(&with(r#"{"nodesPerRacks":1}"#), &site),
            "older spec"
        );
        assert!(!casskop_took_in(&with("not json"), &site));
        assert!(!casskop_took_in(&json!({}), &site), "no annotation");
        assert!(seeds_differ(
            Some(&json!({"status":{"seedlist":["a"]}})),
            &["b".to_string()]
        ));
        assert!(!seeds_differ(
            Some(&json!({"status":{"seedlist":["a"]}})),
            &["a".to_string()]
        ));
        assert!(seeds_differ(None, &["a".to_string()]));
    }

    #[test]
    fn quantities() {
        let cases = [
            ("2", Some(2.0)),
            ("2000m", Some(2.0)),
            ("1Ki", Some(1024.0)),
            ("1e3", Some(1000.0)),
            ("1.5G", Some(1.5e9)),
            (".5", Some(0.5)),
            ("abc", None),
            ("3.11.9", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(quantity_value(s), want, "{s}");
        }
    }

    #[test]
    fn sync_state_table() {
        let site = build_site_object(
            Owner {
                name: "r",
                namespace: "ns",
            },
            &json!({"metadata":{"name":"c"},"spec":{"nodesPerRacks":2}}),
            &json!({}),
            "s",
        )
        .expect("valid");
        let seeds = vec!["c-dc1-rack1-0.c.ns".to_string()];
        let mut stored = site.object.clone();
        stored["metadata"]["resourceVersion"] = json!("5");
        stored["spec"]["runAsUser"] = json!(999);
        stored["status"] = json!({"seedlist": seeds, "phase": "Running"});
        assert_eq!(sync_state(Some(&stored), &site, &seeds), SyncState::InSync);
        assert_eq!(sync_state(None, &site, &seeds), SyncState::SpecDiffers);
        let mut edited = stored.clone();
        edited["spec"]["nodesPerRacks"] = json!(5);
        assert_eq!(
            sync_state(Some(&edited), &site, &seeds),
            SyncState::SpecDiffers
        );
        let mut unlabeled = stored.clone();
        unlabeled["metadata"]["labels"] = json!({});
        assert_eq!(
            sync_state(Some(&unlabeled), &site, &seeds),
            SyncState::MetadataDiffers
        );
        let mut unlabeled_and_edited = unlabeled.clone();
        unlabeled_and_edited["spec"]["nodesPerRacks"] = json!(5);
        assert_eq!(
            sync_state(Some(&unlabeled_and_edited), &site, &seeds),
            SyncState::SpecDiffers
        );
        let mut reseeded = stored.clone();
        reseeded["status"]["seedlist"] = json!(["x"]);
        assert_eq!(
            sync_state(Some(&reseeded), &site, &seeds),
            SyncState::SeedsDiffer
        );
        let mut no_status = stored;
        no_status.as_object_mut().expect("object").remove("status");
        assert_eq!(
            sync_state(Some(&no_status), &site, &seeds),
            SyncState::SeedsDiffer
        );
    }
}
