//! CassKop's `cassandraclusters.db.orange.com/last-applied-configuration` annotation:
//! `ComputeLastAppliedConfiguration`, i.e. `json.Marshal` of the object CassKop acted on with
//! annotations and resourceVersion removed and `status: {}`.
//!
//! Keys of `kind`, `apiVersion`, `metadata` and the `managedFields` entries come in Go's struct
//! order, as in the traces (`{"kind":"CassandraCluster","apiVersion":"db.orange.com/v2",
//! "metadata":{"name":...,"namespace":...,"uid":...,"generation":2,"creationTimestamp":...,
//! "managedFields":[...]},"spec":{...},"status":{}}`); the spec's keys are sorted (Go follows its
//! struct order there; no reader depends on it).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

/// An object with keys in the given order (`None` values left out, like Go's `omitempty`).
fn ordered(fields: &[(&str, Option<Value>)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .filter_map(|(k, v)| {
            let v = v.as_ref()?;
            Some(format!("{}:{}", Value::from(*k), v))
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

fn val<T: Serialize>(v: &Option<T>) -> Option<Value> {
    v.as_ref().and_then(|v| serde_json::to_value(v).ok())
}

fn non_empty<T: Serialize>(v: &Option<T>) -> Option<Value> {
    val(v).filter(|v| match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    })
}

/// The annotation value for an object with metadata `meta` and `spec` (as CassKop holds it in
/// memory: defaults applied, corrections made).
pub fn compute(kind: &str, api_version: &str, meta: &ObjectMeta, spec: &Value) -> String {
    let managed: Vec<String> = meta
        .managed_fields
        .iter()
        .flatten()
        .map(|f| {
            ordered(&[
                ("manager", non_empty(&f.manager)),
                ("operation", non_empty(&f.operation)),
                ("apiVersion", non_empty(&f.api_version)),
                ("time", val(&f.time)),
                ("fieldsType", non_empty(&f.fields_type)),
                ("fieldsV1", val(&f.fields_v1)),
                ("subresource", non_empty(&f.subresource)),
            ])
        })
        .collect();
    let managed = (!managed.is_empty()).then(|| format!("[{}]", managed.join(",")));
    let metadata = ordered(&[
        ("name", non_empty(&meta.name)),
        ("generateName", non_empty(&meta.generate_name)),
        ("namespace", non_empty(&meta.namespace)),
        ("selfLink", non_empty(&meta.self_link)),
        ("uid", non_empty(&meta.uid)),
        ("generation", val(&meta.generation)),
        ("creationTimestamp", val(&meta.creation_timestamp)),
        ("deletionTimestamp", val(&meta.deletion_timestamp)),
        (
            "deletionGracePeriodSeconds",
            val(&meta.deletion_grace_period_seconds),
        ),
        ("labels", non_empty(&meta.labels)),
        ("ownerReferences", non_empty(&meta.owner_references)),
        ("finalizers", non_empty(&meta.finalizers)),
    ]);
    // managedFields come last; splice the pre-serialised list in.
    let metadata = match managed {
        Some(list) if metadata == "{}" => format!("{{\"managedFields\":{list}}}"),
        Some(list) => format!(
            "{},\"managedFields\":{list}}}",
            &metadata[..metadata.len() - 1]
        ),
        None => metadata,
    };
    format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{metadata},\"spec\":{spec},\"status\":{{}}}}",
        Value::from(kind),
        Value::from(api_version)
    )
}

/// The spec recorded in an annotation value; `None` if it is not CassKop's format (an object
/// with a `spec` object).
pub fn spec_of(annotation: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(annotation).ok()?;
    value.get("spec").filter(|s| s.is_object()).cloned()
}

/// `metadata.generation` recorded in an annotation value.
pub fn generation_of(annotation: &str) -> Option<i64> {
    let value: Value = serde_json::from_str(annotation).ok()?;
    value.pointer("/metadata/generation")?.as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_the_traced_layout() {
        let meta: ObjectMeta = serde_json::from_value(json!({
            "name": "cc1", "namespace": "demo", "uid": "u-1", "generation": 2,
            "resourceVersion": "235", "creationTimestamp": "2026-11-22T01:40:08Z",
            "annotations": {"x": "y"},
            "managedFields": [{"apiVersion": "db.orange.com/v2", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {}}, "manager": "casskop", "operation": "Update",
                "subresource": "status", "time": "2026-11-22T01:40:08Z"}]
        }))
        .unwrap();
        let text = compute(
            "CassandraCluster",
            "db.orange.com/v2",
            &meta,
            &json!({"b": 1, "a": 2}),
        );
        assert_eq!(
            text,
            r#"{"kind":"CassandraCluster","apiVersion":"db.orange.com/v2","metadata":{"name":"cc1","namespace":"demo","uid":"u-1","generation":2,"creationTimestamp":"2026-11-22T01:40:08Z","managedFields":[{"manager":"casskop","operation":"Update","apiVersion":"db.orange.com/v2","time":"2026-11-22T01:40:08Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{}},"subresource":"status"}]},"spec":{"a":2,"b":1},"status":{}}"#
        );
        assert_eq!(spec_of(&text), Some(json!({"a": 2, "b": 1})));
        assert_eq!(generation_of(&text), Some(2));
        assert_eq!(
            spec_of(r#"{"a": 1}"#),
            None,
            "the old simulator's bare spec"
        );
    }
}
