//! Builds the CassandraCluster one site must hold: `base` merged with the site's override,
//! with its name, namespace and ownership labels settled and one-shot triggers removed.
//!
//! One-shot triggers (`spec.unlockNextOperation`, `spec.topology.dc[].rack[].rollingRestart`)
//! are never written: CassKop resets them after acting, so re-applying them would restart the
//! racks again and again. They are reported as warnings; trigger them at the site instead
//! (`kubectl casskop restart`), where multi-casskop does not own those fields and leaves them be.
//!
//! Fields the MultiCasskop author cannot set, because propagating them would let a ring fight
//! CassKop, the site's API server or another ring:
//! - labels and annotations under `db.orange.com` (CassKop's `cassandraclusters.db.orange.com/*`,
//!   such as its `last-applied-configuration`, and our own `multicasskop.db.orange.com/*`
//!   ownership labels) are refused: the MultiCasskop is invalid and nothing is written;
//! - any other `metadata` field (`ownerReferences`, `finalizers`, `resourceVersion`, `uid`,
//!   `generation`, `managedFields`, `creationTimestamp`, `deletionTimestamp`, ...), any other
//!   top-level field, and `status` other than the legacy `status.seedlist` are dropped with a
//!   warning: only `apiVersion`, `kind`, `metadata.{name,namespace,labels,annotations}` and
//!   `spec` are ever written.

use serde_json::{Map, Value, json};

use crate::api::{CASSANDRA_CLUSTER_API_VERSION, CASSANDRA_CLUSTER_KIND, CassandraClusterView};
use crate::core::merge::merge_override;
use crate::core::validate::Finding;
use crate::labels::{OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, SITE_LABEL};

/// The MultiCasskop a site object belongs to.
#[derive(Clone, Copy, Debug)]
pub struct Owner<'a> {
    /// MultiCasskop name.
    pub name: &'a str,
    /// MultiCasskop namespace.
    pub namespace: &'a str,
}

/// The CassandraCluster a site must hold.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteCassandraCluster {
    /// Site name.
    pub site: String,
    /// CassandraCluster name (from `base.metadata.name`).
    pub name: String,
    /// Namespace at the site.
    pub namespace: String,
    /// What multi-casskop server-side applies: apiVersion, kind, metadata (name, namespace,
    /// labels, annotations) and spec. No status: the seed list is written separately.
    pub object: Value,
    /// Typed view of the merged object (for seeds and validation).
    pub view: CassandraClusterView,
    /// `status.seedlist` of the merged object, if any (a hand-written seed list).
    pub manual_seeds: Option<Vec<String>>,
    /// Non-fatal findings (one-shot triggers dropped, unknown fields).
    pub warnings: Vec<Finding>,
}

/// How findings about a site are prefixed.
pub fn site_path(site: &str) -> String {
    format!("site {site} (spec.base + spec.override.{site}):")
}

/// Merges `base` with `override_patch` for `site` and settles the object to write there.
pub fn build_site_object(
    owner: Owner<'_>,
    base: &Value,
    override_patch: &Value,
    site: &str,
) -> Result<SiteCassandraCluster, Vec<Finding>> {
    let path = site_path(site);
    let merged = merge_override(base, override_patch);
    let view: CassandraClusterView = serde_path_to_error::deserialize(&merged).map_err(|e| {
        vec![Finding::new(
            format!("{path} {}", e.path()),
            format!(
                "{}; fix the value in spec.base or spec.override.{site}",
                e.inner()
            ),
        )]
    })?;

    let mut errors = reserved_metadata(&path, &merged);
    let base_name = base
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if base_name.is_empty() {
        errors.push(Finding::new(
            "spec.base.metadata.name",
            "is required: it names the CassandraCluster at every site",
        ));
    }
    if let Some(other) = override_patch
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        && other != base_name
    {
        errors.push(Finding::new(
            format!("spec.override.{site}.metadata.name"),
            format!("{other:?} differs from spec.base.metadata.name {base_name:?}; the CassandraCluster has the same name at every site: remove it"),
        ));
    }
    for (key, value) in [
        ("apiVersion", view.api_version.as_deref()),
        ("kind", view.kind.as_deref()),
    ] {
        let ok = match key {
            "kind" => value.is_none_or(|v| v == CASSANDRA_CLUSTER_KIND),
            _ => value.is_none_or(|v| v.starts_with("db.orange.com/")),
        };
        if !ok {
            errors.push(Finding::new(format!("{path} {key}"), format!("{:?} is not a CassKop CassandraCluster; use apiVersion db.orange.com/v2, kind CassandraCluster", value.unwrap_or_default())));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let metadata = view.metadata.clone().unwrap_or_default();
    let namespace = metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| owner.namespace.to_string());
    let mut labels = metadata.labels.clone().unwrap_or_default();
    labels.insert(OWNER_NAME_LABEL.into(), owner.name.into());
    labels.insert(OWNER_NAMESPACE_LABEL.into(), owner.namespace.into());
    labels.insert(SITE_LABEL.into(), site.into());

    let mut spec = merged
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut warnings = dropped_fields(&path, &merged);
    warnings.extend(drop_one_shot_triggers(&path, &mut spec));
    warnings.extend(crate::core::validate::spec_warnings(&path, &spec));

    let mut meta = json!({ "name": base_name, "namespace": namespace, "labels": labels });
    if let Some(annotations) = metadata.annotations.filter(|a| !a.is_empty()) {
        meta["annotations"] = json!(annotations);
    }
    let object = json!({
        "apiVersion": view.api_version.clone().unwrap_or_else(|| CASSANDRA_CLUSTER_API_VERSION.into()),
        "kind": CASSANDRA_CLUSTER_KIND,
        "metadata": meta,
        "spec": spec,
    });
    let manual_seeds = view.status.as_ref().and_then(|s| s.seedlist.clone());
    Ok(SiteCassandraCluster {
        site: site.into(),
        name: base_name.into(),
        namespace,
        object,
        view,
        manual_seeds,
        warnings,
    })
}

/// The label and annotation domain that belongs to CassKop (`cassandraclusters.db.orange.com`)
/// and to multi-casskop (`multicasskop.db.orange.com`).
pub const RESERVED_DOMAIN: &str = "db.orange.com";

/// Whether a label or annotation key is under [`RESERVED_DOMAIN`] (or a subdomain of it).
pub fn is_reserved_key(key: &str) -> bool {
    key.split_once('/').is_some_and(|(prefix, _)| {
        let prefix = prefix.to_ascii_lowercase();
        prefix == RESERVED_DOMAIN || prefix.ends_with(&format!(".{RESERVED_DOMAIN}"))
    })
}

/// Refuses labels and annotations the author may not set (see the module doc).
fn reserved_metadata(path: &str, merged: &Value) -> Vec<Finding> {
    let mut errors = Vec::new();
    for field in ["labels", "annotations"] {
        let keys = merged
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.keys());
        for key in keys.filter(|k| is_reserved_key(k)) {
            errors.push(Finding::new(
                format!("{path} metadata.{field}[{key:?}]"),
                format!("keys under {RESERVED_DOMAIN} belong to CassKop (cassandraclusters.db.orange.com/*) and multi-casskop (multicasskop.db.orange.com/*); setting them would make the ring fight CassKop or another ring: remove it"),
            ));
        }
    }
    errors
}

/// Warns about fields that are never written (see the module doc).
fn dropped_fields(path: &str, merged: &Value) -> Vec<Finding> {
    let mut warnings = Vec::new();
    let top = merged.as_object().into_iter().flat_map(|m| m.keys());
    for key in
        top.filter(|k| !["apiVersion", "kind", "metadata", "spec", "status"].contains(&k.as_str()))
    {
        warnings.push(Finding::new(
            format!("{path} {key}"),
            "not propagated: only apiVersion, kind, metadata (name, namespace, labels, annotations) and spec are written",
        ));
    }
    let metadata = merged
        .get("metadata")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys());
    for key in
        metadata.filter(|k| !["name", "namespace", "labels", "annotations"].contains(&k.as_str()))
    {
        warnings.push(Finding::new(
            format!("{path} metadata.{key}"),
            "not propagated: the site's API server and CassKop own it; only name, namespace, labels and annotations are written",
        ));
    }
    let status = merged
        .get("status")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys());
    for key in status.filter(|k| k.as_str() != "seedlist") {
        warnings.push(Finding::new(
            format!("{path} status.{key}"),
            "not propagated: CassKop owns the status; only status.seedlist (a hand-written seed list) is read",
        ));
    }
    warnings
}

/// Removes CassKop's one-shot triggers from `spec`, warning about any that were set to true.
fn drop_one_shot_triggers(path: &str, spec: &mut Map<String, Value>) -> Vec<Finding> {
    let mut warnings = Vec::new();
    if spec.remove("unlockNextOperation") == Some(Value::Bool(true)) {
        warnings.push(Finding::new(
            format!("{path} spec.unlockNextOperation"),
            "one-shot trigger not propagated (CassKop resets it, so re-applying would loop); set it on the site's CassandraCluster directly",
        ));
    }
    let dcs = spec
        .get_mut("topology")
        .and_then(|t| t.get_mut("dc"))
        .and_then(Value::as_array_mut);
    for (i, dc) in dcs.into_iter().flatten().enumerate() {
        let racks = dc.get_mut("rack").and_then(Value::as_array_mut);
        for (j, rack) in racks.into_iter().flatten().enumerate() {
            if let Some(rack) = rack.as_object_mut()
                && rack.remove("rollingRestart") == Some(Value::Bool(true))
            {
                warnings.push(Finding::new(
                    format!("{path} spec.topology.dc[{i}].rack[{j}].rollingRestart"),
                    "one-shot trigger not propagated (CassKop resets it, so re-applying would restart the rack forever); use `kubectl casskop restart` at the site",
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const OWNER: Owner<'static> = Owner {
        name: "ring",
        namespace: "mc-ns",
    };

    fn labels(site: &str, extra: &[(&str, &str)]) -> Value {
        let mut l = Map::new();
        for (k, v) in extra {
            l.insert((*k).into(), json!(v));
        }
        l.insert(OWNER_NAME_LABEL.into(), json!("ring"));
        l.insert(OWNER_NAMESPACE_LABEL.into(), json!("mc-ns"));
        l.insert(SITE_LABEL.into(), json!(site));
        Value::Object(l)
    }

    #[test]
    fn namespace_comes_from_override_then_base_then_multicasskop() {
        let cases = [
            (
                "override wins",
                json!({"metadata":{"name":"c","namespace":"base-ns"}}),
                json!({"metadata":{"namespace":"ovr-ns"}}),
                "ovr-ns",
            ),
            (
                "base next",
                json!({"metadata":{"name":"c","namespace":"base-ns"}}),
                json!({}),
                "base-ns",
            ),
            (
                "MultiCasskop's namespace last (the Go version failed here)",
                json!({"metadata":{"name":"c"}}),
                json!({}),
                "mc-ns",
            ),
            (
                "empty string counts as absent",
                json!({"metadata":{"name":"c","namespace":""}}),
                json!({}),
                "mc-ns",
            ),
        ];
        for (name, base, ovr, want) in cases {
            let built = build_site_object(OWNER, &base, &ovr, "s1").expect(name);
            assert_eq!(built.namespace, want, "{name}");
            assert_eq!(built.object["metadata"]["namespace"], json!(want), "{name}");
        }
    }

    #[test]
    fn object_holds_only_owned_fields_with_ownership_labels() {
        let base = json!({
            "apiVersion": "db.orange.com/v2",
            "kind": "CassandraCluster",
            "metadata": {"name": "cass", "labels": {"cluster": "casskop"}, "resourceVersion": "7", "finalizers": ["x"], "annotations": {"a": "b"}},
            "spec": {"nodesPerRacks": 1, "cassandraImage": "cassandra:3.11"},
            "status": {"seedlist": ["s1"], "phase": "Running"}
        });
        let built = build_site_object(OWNER, &base, &json!({"spec":{"nodesPerRacks":2}}), "east")
            .expect("valid");
        assert_eq!(
            built.object,
            json!({
                "apiVersion": "db.orange.com/v2",
                "kind": "CassandraCluster",
                "metadata": {"name": "cass", "namespace": "mc-ns", "labels": labels("east", &[("cluster", "casskop")]), "annotations": {"a": "b"}},
                "spec": {"nodesPerRacks": 2, "cassandraImage": "cassandra:3.11"}
            })
        );
        assert_eq!(built.manual_seeds, Some(vec!["s1".to_string()]));
        assert_eq!(built.name, "cass");
        let warned: Vec<_> = built.warnings.iter().map(|w| w.path.clone()).collect();
        assert_eq!(
            warned,
            vec![
                "site east (spec.base + spec.override.east): metadata.finalizers",
                "site east (spec.base + spec.override.east): metadata.resourceVersion",
                "site east (spec.base + spec.override.east): status.phase",
            ]
        );
    }

    #[test]
    fn api_version_and_kind_are_filled_in() {
        let built = build_site_object(OWNER, &json!({"metadata":{"name":"c"}}), &json!({}), "s")
            .expect("valid");
        assert_eq!(built.object["apiVersion"], json!("db.orange.com/v2"));
        assert_eq!(built.object["kind"], json!("CassandraCluster"));
        assert_eq!(built.object["spec"], json!({}));
    }

    #[test]
    fn reserved_labels_and_annotations_are_refused() {
        let cases = [
            (
                "our ownership label in base",
                json!({"metadata":{"name":"c","labels":{(OWNER_NAME_LABEL):"other"}}}),
                json!({}),
                "metadata.labels[\"multicasskop.db.orange.com/name\"]",
            ),
            (
                "our site label in an override",
                json!({"metadata":{"name":"c"}}),
                json!({"metadata":{"labels":{(SITE_LABEL):"x"}}}),
                "metadata.labels[\"multicasskop.db.orange.com/site\"]",
            ),
            (
                "CassKop's last-applied annotation",
                json!({"metadata":{"name":"c","annotations":{(crate::labels::CASSKOP_LAST_APPLIED_ANNOTATION):"{}"}}}),
                json!({}),
                "metadata.annotations[\"cassandraclusters.db.orange.com/last-applied-configuration\"]",
            ),
            (
                "any key of the domain, any case",
                json!({"metadata":{"name":"c","annotations":{"DB.Orange.com/x":"1"}}}),
                json!({}),
                "metadata.annotations[\"DB.Orange.com/x\"]",
            ),
            (
                "our abandon annotation",
                json!({"metadata":{"name":"c","annotations":{(crate::labels::ABANDON_SITES_ANNOTATION):"s"}}}),
                json!({}),
                "metadata.annotations[\"multicasskop.db.orange.com/abandon-sites\"]",
            ),
        ];
        for (name, base, ovr, want) in cases {
            let errors = build_site_object(OWNER, &base, &ovr, "s").expect_err(name);
            assert!(errors[0].path.ends_with(want), "{name}: {}", errors[0]);
            assert!(errors[0].message.contains("fight CassKop"), "{name}");
        }
        for fine in [
            "orange.com/x",
            "example.com/db.orange.com",
            "app",
            "notdb.orange.com/x",
        ] {
            let base =
                json!({"metadata":{"name":"c","labels":{(fine):"v"},"annotations":{(fine):"v"}}});
            build_site_object(OWNER, &base, &json!({}), "s")
                .unwrap_or_else(|e| panic!("{fine}: {e:?}"));
        }
    }

    #[test]
    fn fields_that_would_fight_are_dropped_with_warnings() {
        let base = json!({
            "metadata": {"name": "c", "ownerReferences": [{"uid": "u"}], "uid": "u", "generation": 3, "managedFields": [], "finalizers": ["f"], "resourceVersion": "1", "deletionTimestamp": "2020-01-01T00:00:00Z"},
            "status": {"seedlist": ["c-dc1-rack1-0"], "phase": "Running", "cassandraRackStatus": {}},
            "extra": 1,
        });
        let built = build_site_object(OWNER, &base, &json!({}), "s").expect("valid");
        assert_eq!(
            built.object["metadata"],
            json!({"name": "c", "namespace": "mc-ns", "labels": labels("s", &[])})
        );
        assert!(built.object.get("status").is_none() && built.object.get("extra").is_none());
        let mut warned: Vec<_> = built
            .warnings
            .iter()
            .map(|w| {
                w.path
                    .trim_start_matches("site s (spec.base + spec.override.s): ")
                    .to_string()
            })
            .collect();
        warned.sort();
        assert_eq!(
            warned,
            vec![
                "extra",
                "metadata.deletionTimestamp",
                "metadata.finalizers",
                "metadata.generation",
                "metadata.managedFields",
                "metadata.ownerReferences",
                "metadata.resourceVersion",
                "metadata.uid",
                "status.cassandraRackStatus",
                "status.phase",
            ]
        );
    }

    #[test]
    fn one_shot_triggers_are_dropped_with_warnings() {
        let base = json!({"metadata":{"name":"c"},"spec":{"unlockNextOperation":true,"topology":{"dc":[{"name":"d","rack":[{"name":"r","rollingRestart":true},{"name":"q","rollingRestart":false}]}]}}});
        let built = build_site_object(OWNER, &base, &json!({}), "s").expect("valid");
        assert_eq!(
            built.object["spec"],
            json!({"topology":{"dc":[{"name":"d","rack":[{"name":"r"},{"name":"q"}]}]}})
        );
        let paths: Vec<_> = built.warnings.iter().map(|w| w.path.clone()).collect();
        assert_eq!(
            paths,
            vec![
                "site s (spec.base + spec.override.s): spec.unlockNextOperation",
                "site s (spec.base + spec.override.s): spec.topology.dc[0].rack[0].rollingRestart"
            ]
        );
    }

    #[test]
    fn input_errors_name_the_field() {
        let cases = [
            (
                "missing name",
                json!({"spec":{}}),
                json!({}),
                "spec.base.metadata.name: is required",
            ),
            (
                "override renames",
                json!({"metadata":{"name":"c"}}),
                json!({"metadata":{"name":"d"}}),
                "spec.override.s.metadata.name: \"d\" differs",
            ),
            (
                "wrong kind",
                json!({"kind":"Pod","metadata":{"name":"c"}}),
                json!({}),
                "site s (spec.base + spec.override.s): kind: \"Pod\" is not a CassKop CassandraCluster",
            ),
            (
                "wrong group",
                json!({"apiVersion":"v1","metadata":{"name":"c"}}),
                json!({}),
                "site s (spec.base + spec.override.s): apiVersion: \"v1\" is not",
            ),
            (
                "wrong type deep in the topology",
                json!({"metadata":{"name":"c"}}),
                json!({"spec":{"topology":{"dc":[{"name":"d","nodesPerRacks":"three"}]}}}),
                "site s (spec.base + spec.override.s): spec.topology.dc[0].nodesPerRacks: invalid type: string \"three\", expected i32",
            ),
        ];
        for (name, base, ovr, want) in cases {
            let errors = build_site_object(OWNER, &base, &ovr, "s").expect_err(name);
            assert!(
                errors[0].to_string().starts_with(want),
                "{name}: {}",
                errors[0]
            );
        }
    }

    #[test]
    fn unknown_spec_fields_pass_through_with_a_warning() {
        let built = build_site_object(
            OWNER,
            &json!({"metadata":{"name":"c"},"spec":{"futureField":{"a":1}}}),
            &json!({}),
            "s",
        )
        .expect("valid");
        assert_eq!(built.object["spec"], json!({"futureField":{"a":1}}));
        assert_eq!(built.warnings.len(), 1);
    }
}
