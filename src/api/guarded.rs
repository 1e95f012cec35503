//! A MultiCasskop as read from the API server, or why it could not be read: one object that
//! fails to decode must never break the list (and so every ring) it arrives in.
//!
//! kube's `DeserializeGuard` buffers each object through the outer parser, so an object nested
//! deeper than serde_json's recursion limit (128) still fails the whole list. Here each object
//! is first captured as raw JSON (`RawValue`, which serde_json skips over without recursion),
//! then decoded on its own: a failure (too deep, a number out of range, a wrong type the
//! schema let through) is kept with the object's metadata and reported on that object only.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::MultiCasskop;

/// Longest decode error kept (an error may quote a long string of the object).
pub const MAX_ERROR_CHARS: usize = 300;

/// A MultiCasskop, or the metadata of one that could not be decoded and why.
#[derive(Clone, Debug)]
pub enum GuardedMultiCasskop {
    /// Decoded (and kept compact until a reconcile needs it).
    Decoded(Box<CompactMultiCasskop>),
    /// Could not be decoded.
    Undecodable {
        /// Its metadata (always decodable: the API server validates it).
        metadata: Box<ObjectMeta>,
        /// Why, with the field path, capped at [`MAX_ERROR_CHARS`].
        error: String,
    },
}

/// A decoded MultiCasskop as the controller's store keeps it: metadata typed, spec and status
/// as JSON text. A `serde_json::Value` tree (`spec.base`, `spec.override`) costs several times
/// its text, and the store holds every ring; each reconcile decodes its own copy anyway.
#[derive(Clone, Debug)]
pub struct CompactMultiCasskop {
    /// Its metadata.
    pub metadata: ObjectMeta,
    /// `{"spec": …, "status": …}` as JSON text.
    body: Box<str>,
}

/// The part of a MultiCasskop kept as text.
#[derive(serde::Serialize, Deserialize)]
struct Body<S, T> {
    spec: S,
    status: T,
}

impl CompactMultiCasskop {
    /// Compacts a decoded MultiCasskop.
    pub fn new(mc: MultiCasskop) -> Self {
        let MultiCasskop {
            metadata,
            spec,
            status,
        } = mc;
        CompactMultiCasskop {
            metadata,
            // A typed value whose maps have string keys: serialising it cannot fail.
            body: serde_json::to_string(&Body { spec, status })
                .unwrap_or_default()
                .into(),
        }
    }

    /// The MultiCasskop again (text written by [`CompactMultiCasskop::new`] from a decoded
    /// object decodes; an error here is reported on the object like any undecodable one).
    pub fn decode(&self) -> Result<MultiCasskop, String> {
        let body: Body<_, _> = serde_json::from_str(&self.body)
            .map_err(|e| format!("the cached copy no longer decodes: {e}"))?;
        Ok(MultiCasskop {
            metadata: self.metadata.clone(),
            spec: body.spec,
            status: body.status,
        })
    }
}

#[derive(Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: MetadataLite,
}

/// The metadata fields the controller uses. Not `ObjectMeta`: its `managedFields` mirror the
/// object's structure, so they are as deep as the spec that could not be decoded; unknown
/// fields here are skipped without recursion.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct MetadataLite {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    creation_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    deletion_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    finalizers: Option<Vec<String>>,
    labels: Option<std::collections::BTreeMap<String, String>>,
    annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl From<MetadataLite> for ObjectMeta {
    fn from(m: MetadataLite) -> Self {
        ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            resource_version: m.resource_version,
            generation: m.generation,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            finalizers: m.finalizers,
            labels: m.labels,
            annotations: m.annotations,
            ..Default::default()
        }
    }
}

/// Decodes one object's JSON text.
pub fn decode(text: &str) -> GuardedMultiCasskop {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, MultiCasskop>(&mut deserializer) {
        Ok(mc) => GuardedMultiCasskop::Decoded(Box::new(CompactMultiCasskop::new(mc))),
        Err(e) => {
            let inner = e.inner();
            let mut error = if inner.to_string().starts_with("recursion limit exceeded") {
                format!(
                    "the object nests deeper than {} levels (at {}); multi-casskop cannot read it: flatten spec.base/spec.override (e.g. spec.config)",
                    128,
                    e.path()
                )
            } else {
                format!("{}: {inner}", e.path())
            };
            if error.chars().count() > MAX_ERROR_CHARS {
                error = error.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
            }
            let metadata = serde_json::from_str::<MetadataOnly>(text)
                .map(|m| Box::new(m.metadata.into()))
                .unwrap_or_default();
            GuardedMultiCasskop::Undecodable { metadata, error }
        }
    }
}

impl<'de> Deserialize<'de> for GuardedMultiCasskop {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(decode(raw.get()))
    }
}

impl GuardedMultiCasskop {
    /// The MultiCasskop (a fresh copy), when it decoded.
    pub fn decoded(&self) -> Option<MultiCasskop> {
        match self {
            GuardedMultiCasskop::Decoded(mc) => mc.decode().ok(),
            GuardedMultiCasskop::Undecodable { .. } => None,
        }
    }

    /// Whether it decoded.
    pub fn is_decoded(&self) -> bool {
        matches!(self, GuardedMultiCasskop::Decoded(_))
    }
}

impl Resource for GuardedMultiCasskop {
    type DynamicType = ();
    type Scope = <MultiCasskop as Resource>::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        MultiCasskop::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        MultiCasskop::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        MultiCasskop::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        MultiCasskop::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        match self {
            GuardedMultiCasskop::Decoded(mc) => &mc.metadata,
            GuardedMultiCasskop::Undecodable { metadata, .. } => metadata,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            GuardedMultiCasskop::Decoded(mc) => &mut mc.metadata,
            GuardedMultiCasskop::Undecodable { metadata, .. } => metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;
    use serde_json::json;

    fn object(name: &str, spec: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "db.orange.com/v2", "kind": "MultiCasskop",
               "metadata": {"name": name, "namespace": "ns"}, "spec": spec})
    }

    fn deep(levels: usize) -> String {
        format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels))
    }

    #[test]
    fn one_bad_object_does_not_break_the_list() {
        let good = object("good", json!({"base": {"metadata": {"name": "c"}}}));
        let overflow = object(
            "overflow",
            json!({"base": {}, "rollout": {"progressDeadlineSeconds": 4294967296u64}}),
        );
        let wrong = object("wrong", json!({"base": {}, "override": ["a"]}));
        let depth = |n| {
            format!(
                r#"{{"apiVersion":"db.orange.com/v2","kind":"MultiCasskop","metadata":{{"name":"deep{n}","namespace":"ns"}},"spec":{{"base":{{"spec":{{"config":{}}}}}}}}}"#,
                deep(n)
            )
        };
        let list = format!(
            r#"{{"apiVersion":"v1","kind":"List","metadata":{{}},"items":[{good},{overflow},{},{wrong},{}]}}"#,
            depth(130),
            depth(1000)
        );
        let parsed: kube::core::ObjectList<GuardedMultiCasskop> =
            serde_json::from_str(&list).expect("the list decodes whatever its items hold");
        let got: Vec<(String, Option<String>)> = parsed
            .items
            .iter()
            .map(|g| {
                (
                    g.name_any(),
                    match g {
                        GuardedMultiCasskop::Decoded(_) => None,
                        GuardedMultiCasskop::Undecodable { error, .. } => Some(error.clone()),
                    },
                )
            })
            .collect();
        assert_eq!(got[0], ("good".into(), None));
        assert_eq!(got[1].0, "overflow");
        assert!(
            got[1].1.as_deref().is_some_and(|e| e.starts_with(
                "spec.rollout.progressDeadlineSeconds: invalid value: integer `4294967296`, expected u32"
            )),
            "{:?}",
            got[1]
        );
        for (i, name) in [(2, "deep130"), (4, "deep1000")] {
            assert_eq!(got[i].0, name);
            assert!(
                got[i]
                    .1
                    .as_deref()
                    .is_some_and(|e| e.contains("nests deeper than 128 levels")),
                "{:?}",
                got[i]
            );
        }
        assert!(
            got[3]
                .1
                .as_deref()
                .is_some_and(|e| e.starts_with("spec.override: invalid type: sequence")),
            "{:?}",
            got[3]
        );
    }

    #[test]
    fn a_compact_object_decodes_to_the_same_multicasskop() {
        let mut text = object(
            "ring",
            json!({"base": {"spec": {"nodesPerRacks": 3, "config": {"a": {"b": [1, "2"]}}}},
                   "override": {"site-a": {"spec": {"topology": {"dc": [{"name": "dc1"}]}}}}}),
        );
        text["metadata"]["labels"] = json!({"team": "a"});
        text["status"] = json!({"phase": "Ready", "sites": [{"site": "site-a", "name": "cass",
            "namespace": "ns", "state": "Ready", "reachable": true}]});
        let whole: MultiCasskop = serde_json::from_value(text.clone()).expect("typed");
        let GuardedMultiCasskop::Decoded(compact) = decode(&text.to_string()) else {
            panic!("decodes");
        };
        let as_json = |mc: &MultiCasskop| serde_json::to_value(mc).expect("json");
        assert_eq!(compact.decode().map(|mc| as_json(&mc)), Ok(as_json(&whole)));
        assert!(as_json(&whole)["status"]["sites"][0]["state"] == "Ready");
    }

    #[test]
    fn deep_managed_fields_do_not_hide_the_name() {
        let text = format!(
            r#"{{"apiVersion":"db.orange.com/v2","kind":"MultiCasskop","metadata":{{"name":"deep","namespace":"ns","uid":"u","managedFields":[{{"manager":"kubectl","fieldsV1":{}}}]}},"spec":{{"base":{{"spec":{{"config":{}}}}}}}}}"#,
            deep(1000),
            deep(1000)
        );
        match decode(&text) {
            GuardedMultiCasskop::Undecodable { metadata, error } => {
                assert_eq!(metadata.name.as_deref(), Some("deep"), "{error}");
                assert_eq!(metadata.uid.as_deref(), Some("u"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_are_capped() {
        let text = object(
            "long",
            json!({"base": {}, "deleteCassandraCluster": "x".repeat(5000)}),
        )
        .to_string();
        match decode(&text) {
            GuardedMultiCasskop::Undecodable { error, metadata } => {
                assert!(
                    error.chars().count() <= MAX_ERROR_CHARS + 1,
                    "{}",
                    error.len()
                );
                assert_eq!(metadata.name.as_deref(), Some("long"));
            }
            other => panic!("{other:?}"),
        }
    }
}
