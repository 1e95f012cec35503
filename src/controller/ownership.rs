//! Whose object is it? Labels say which ring a CassandraCluster belongs to, but anyone who may
//! create CassandraClusters at a site can forge them. So multi-casskop acts on an object (writes
//! over it, scales it down, deletes it) only when it can prove it created it: its UID is the
//! one recorded in the ring's status when we created it. Pure: the reconcile path asks, then acts.

use std::collections::BTreeSet;

use kube::ResourceExt;
use kube::api::DynamicObject;

use crate::core::evidence::CasskopEvidence;
use crate::labels::{ADOPT_SITES_ANNOTATION, OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, SITE_LABEL};

/// The ring asking and what it recorded.
#[derive(Clone, Copy, Debug)]
pub struct Claim<'a> {
    /// MultiCasskop namespace.
    pub ring_namespace: &'a str,
    /// MultiCasskop name.
    pub ring_name: &'a str,
    /// Site.
    pub site: &'a str,
    /// UID recorded in `status.sites[].uid` when the ring created the object.
    pub recorded_uid: Option<&'a str>,
    /// The MultiCasskop allows taking over an existing object at this site.
    pub adopt: bool,
}

/// What the ring may do with the object at its computed namespace/name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Nothing holds the name: the ring may create it.
    Absent,
    /// The ring's own object (or one it was told to adopt).
    Ours,
    /// Someone else's: never written, scaled or deleted.
    Conflict(String),
}

/// Decides ownership of `object` (the CassandraCluster found at the ring's namespace/name).
pub fn ownership(claim: &Claim<'_>, object: Option<&DynamicObject>) -> Ownership {
    let Some(object) = object else {
        return Ownership::Absent;
    };
    let uid = object.uid();
    if uid.is_some() && uid.as_deref() == claim.recorded_uid {
        return Ownership::Ours;
    }
    if claim.adopt {
        return Ownership::Ours;
    }
    let labels = object.labels();
    let labelled_for_us = labels.get(OWNER_NAME_LABEL).map(String::as_str) == Some(claim.ring_name)
        && labels.get(OWNER_NAMESPACE_LABEL).map(String::as_str) == Some(claim.ring_namespace)
        && labels.get(SITE_LABEL).map(String::as_str) == Some(claim.site);
    let applied_by_us =
        CasskopEvidence::from_object(&serde_json::to_value(object).unwrap_or_default())
            .applied_by_multicasskop;
    let where_ = format!(
        "CassandraCluster {}/{} at site {}",
        object.namespace().unwrap_or_default(),
        object.name_any(),
        claim.site
    );
    if claim.recorded_uid.is_some() {
        return Ownership::Conflict(format!(
            "{where_} was replaced by an object this ring did not create (uid {}); it is left alone. To take it over, annotate the MultiCasskop {ADOPT_SITES_ANNOTATION}={}",
            uid.unwrap_or_default(),
            claim.site
        ));
    }
    if labelled_for_us && applied_by_us {
        // Created by multi-casskop for this ring before its UID reached the status (an
        // earlier version, or a crash between the write and the status write).
        return Ownership::Ours;
    }
    let owner = match (
        labels.get(OWNER_NAMESPACE_LABEL),
        labels.get(OWNER_NAME_LABEL),
    ) {
        (Some(ns), Some(name)) if !labelled_for_us => {
            format!(" (its labels name MultiCasskop {ns}/{name})")
        }
        _ => String::new(),
    };
    Ownership::Conflict(format!(
        "{where_} already exists and was not created by this ring{owner}; it is left alone. To take it over, annotate the MultiCasskop {ADOPT_SITES_ANNOTATION}={}",
        claim.site
    ))
}

/// The comma-separated site names of annotation `key` (the adopt and abandon annotations).
pub fn sites_in_annotation(
    annotations: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> BTreeSet<String> {
    annotations
        .get(key)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Sites where the MultiCasskop allows adopting an existing object (`*` for all).
pub fn adopt_sites(annotations: &std::collections::BTreeMap<String, String>) -> BTreeSet<String> {
    sites_in_annotation(annotations, ADOPT_SITES_ANNOTATION)
}

/// Whether `site` is in the adopt list.
pub fn may_adopt(sites: &BTreeSet<String>, site: &str) -> bool {
    sites.contains(site) || sites.contains("*")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(uid: &str, labels: serde_json::Value, applied: bool) -> DynamicObject {
        let managed = if applied {
            json!([{"manager": crate::labels::SITE_FIELD_MANAGER, "operation": "Apply"}])
        } else {
            json!([{"manager": "kubectl", "operation": "Update"}])
        };
        serde_json::from_value(json!({
            "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
            "metadata": {"name": "orders", "namespace": "team-b", "uid": uid, "labels": labels, "managedFields": managed}
        }))
        .expect("object")
    }

    fn ours() -> serde_json::Value {
        json!({OWNER_NAME_LABEL: "orders", OWNER_NAMESPACE_LABEL: "team-b", SITE_LABEL: "a"})
    }

    #[test]
    fn ownership_table() {
        let claim = |uid: Option<&'static str>, adopt: bool| Claim {
            ring_namespace: "team-b",
            ring_name: "orders",
            site: "a",
            recorded_uid: uid,
            adopt,
        };
        let conflict = |o: &Ownership| matches!(o, Ownership::Conflict(_));
        let cases: Vec<(
            &str,
            Claim<'_>,
            Option<DynamicObject>,
            fn(&Ownership) -> bool,
        )> = vec![
            ("nothing there", claim(None, false), None, |o| {
                *o == Ownership::Absent
            }),
            (
                "the object we created",
                claim(Some("u1"), false),
                Some(object("u1", ours(), true)),
                |o| *o == Ownership::Ours,
            ),
            (
                "recreated by someone else with our labels",
                claim(Some("u1"), false),
                Some(object("u2", ours(), true)),
                conflict,
            ),
            (
                "pre-existing, unlabelled",
                claim(None, false),
                Some(object("u3", json!({}), false)),
                conflict,
            ),
            (
                "labels forged, not applied by us",
                claim(None, false),
                Some(object("u4", ours(), false)),
                conflict,
            ),
            (
                "another ring's object",
                claim(None, false),
                Some(object(
                    "u5",
                    json!({OWNER_NAME_LABEL: "x", OWNER_NAMESPACE_LABEL: "team-a", SITE_LABEL: "a"}),
                    true,
                )),
                conflict,
            ),
            (
                "created by an earlier version for this ring",
                claim(None, false),
                Some(object("u6", ours(), true)),
                |o| *o == Ownership::Ours,
            ),
            (
                "adopt on request",
                claim(None, true),
                Some(object("u3", json!({}), false)),
                |o| *o == Ownership::Ours,
            ),
        ];
        for (name, c, obj, check) in cases {
            let got = ownership(&c, obj.as_ref());
            assert!(check(&got), "{name}: {got:?}");
        }
        let Ownership::Conflict(message) = ownership(
            &claim(None, false),
            Some(&object(
                "u5",
                json!({OWNER_NAME_LABEL: "x", OWNER_NAMESPACE_LABEL: "team-a"}),
                true,
            )),
        ) else {
            panic!("conflict expected");
        };
        assert!(
            message.contains("team-b/orders")
                && message.contains("team-a/x")
                && message.contains(ADOPT_SITES_ANNOTATION),
            "{message}"
        );
    }

    #[test]
    fn adopt_list() {
        let mut a = std::collections::BTreeMap::new();
        a.insert(ADOPT_SITES_ANNOTATION.to_string(), " a, b ,".to_string());
        let sites = adopt_sites(&a);
        assert!(may_adopt(&sites, "a") && may_adopt(&sites, "b") && !may_adopt(&sites, "c"));
        a.insert(ADOPT_SITES_ANNOTATION.to_string(), "*".to_string());
        assert!(may_adopt(&adopt_sites(&a), "z"));
    }
}
