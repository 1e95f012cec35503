//! A CassandraCluster as kept in a site's watch store: metadata typed, everything else (spec,
//! status) as compact JSON text, turned back into an object only when a reconcile looks at it.
//! A `serde_json::Value` tree costs several times its text (every small map is a B-tree
//! node), and the stores hold one object per ring per site; at 1,000 rings they were most of
//! the controller's memory.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{ApiResource, DynamicObject, TypeMeta};
use kube::core::DynamicResourceScope;
use serde_json::Value;

/// One stored CassandraCluster (already slimmed, see [`super::slim`]).
#[derive(Clone, Debug)]
pub struct CachedCassandraCluster {
    /// Its metadata (labels, annotations, uid, generation: what ownership and readiness read).
    pub metadata: ObjectMeta,
    /// `apiVersion` and `kind` as the site sent them.
    types: Option<TypeMeta>,
    /// Every field but `apiVersion`, `kind` and `metadata`, as JSON text.
    body: Box<str>,
}

impl CachedCassandraCluster {
    /// Compacts `object` for the store.
    pub fn compact(object: DynamicObject) -> Self {
        let DynamicObject {
            types,
            metadata,
            data,
        } = object;
        CachedCassandraCluster {
            metadata,
            types,
            // Serialising a Value cannot fail (its keys are strings).
            body: serde_json::to_string(&data).unwrap_or_default().into(),
        }
    }

    /// The object as the site sent it (minus what [`super::slim`] dropped).
    pub fn object(&self) -> DynamicObject {
        DynamicObject {
            types: self.types.clone(),
            metadata: self.metadata.clone(),
            // Text we wrote ourselves from a Value: it parses back to the same Value.
            data: serde_json::from_str(&self.body)
                .unwrap_or_else(|_| Value::Object(Default::default())),
        }
    }
}

impl Resource for CachedCassandraCluster {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::kind(dt)
    }
    fn group(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::group(dt)
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::version(dt)
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::api_version(dt)
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_comes_back_as_it_went_in() {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
            "metadata": { "name": "cass", "namespace": "ns", "uid": "u1", "generation": 3,
                          "labels": { "a": "b" } },
            "spec": { "nodesPerRacks": 1, "topology": { "dc": [{ "name": "dc1" }] },
                      "resources": { "limits": { "cpu": "2000m" } } },
            "status": { "seedlist": ["a"], "lastClusterActionStatus": "Done" }
        }))
        .expect("object");
        let cached = CachedCassandraCluster::compact(object.clone());
        let back = cached.object();
        assert_eq!(
            serde_json::to_value(&back).expect("json"),
            serde_json::to_value(&object).expect("json")
        );
        assert!(
            cached.body.len() < 200,
            "kept as text, not a tree: {}",
            cached.body
        );
    }
}
