//! Requests to sites: server-side apply of a site's CassandraCluster and its seed list, a
//! look-up before creating, scaling a leaving site to zero, deleting, releasing objects we
//! stop managing, and listing and labelling CassKop's pods for pod operations. Every request has a short deadline, so a hung site never freezes a reconcile
//! or leaves the ring's status stale: it is reported `Unreachable` instead.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::controller::error::SiteError;
use crate::core::seeds::effective_topology;
use crate::core::site_object::SiteCassandraCluster;
use crate::labels::{
    OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, POD_OPERATION_FIELD_MANAGER, RELEASE_FIELD_MANAGER,
    SITE_FIELD_MANAGER, SITE_LABEL, pod_operation,
};
use crate::sites::{SiteHandle, cassandra_cluster_resource};

fn api(site: &SiteHandle, namespace: &str) -> Result<Api<DynamicObject>, SiteError> {
    let client = site.client().map_err(|e| SiteError::Unreachable {
        site: site.name.clone(),
        message: e.to_string(),
    })?;
    Ok(Api::namespaced_with(
        client.clone(),
        namespace,
        &cassandra_cluster_resource(),
    ))
}

/// How long one request to a site may take. A healthy API server answers a write in
/// milliseconds; ten seconds covers a loaded one and still reports a hung site quickly.
pub const SITE_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one request to `site` with [`SITE_REQUEST_TIMEOUT`], through the site's
/// [`Stall`](crate::sites::Stall) (a hung site is not waited on for the whole deadline).
async fn deadline<T>(
    site: &SiteHandle,
    request: impl Future<Output = Result<T, SiteError>>,
) -> Result<T, SiteError> {
    site.stall()
        .bounded(SITE_REQUEST_TIMEOUT, request)
        .await
        .unwrap_or_else(|no_answer| {
            Err(SiteError::Unreachable {
                site: site.name.clone(),
                message: no_answer.to_string(),
            })
        })
}

/// What a write stored at a site.
#[derive(Clone, Debug)]
pub struct Written {
    /// The object as stored after our last request.
    pub object: DynamicObject,
    /// `metadata.generation` after the main apply.
    pub generation: i64,
    /// The seed list was written through `/status`.
    pub status_written: bool,
}

/// Writes only the labels and annotations of `desired` (a JSON merge patch: other fields,
/// and the spec fields CassKop defaulted inside lists we own, are left as they are, so the
/// generation does not move and CassKop has nothing to act on).
pub async fn write_metadata(
    site: &SiteHandle,
    desired: &SiteCassandraCluster,
) -> Result<Written, SiteError> {
    let (ns, name) = (desired.namespace.as_str(), desired.name.as_str());
    // Only the maps we set: a `null` map in a merge patch would delete every label or
    // annotation, CassKop's last-applied annotation included.
    let mut metadata = serde_json::Map::new();
    for key in ["labels", "annotations"] {
        if let Some(map) = desired.object["metadata"]
            .get(key)
            .filter(|v| v.is_object())
        {
            metadata.insert(key.into(), map.clone());
        }
    }
    let patch = json!({ "metadata": metadata });
    let result = deadline(site, async {
        let api = api(site, ns)?;
        let params = PatchParams {
            field_manager: Some(SITE_FIELD_MANAGER.into()),
            ..Default::default()
        };
        let stored = api
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| SiteError::from_kube(&site.name, "patch labels of", ns, name, e))?;
        Ok(Written {
            generation: stored.metadata.generation.unwrap_or_default(),
            object: stored,
            status_written: false,
        })
    })
    .await;
    note(site, &result);
    result
}

/// Reads `namespace/name` at a site (`None` if it does not exist).
pub async fn get(
    site: &SiteHandle,
    namespace: &str,
    name: &str,
) -> Result<Option<DynamicObject>, SiteError> {
    let result = deadline(site, async {
        let api = api(site, namespace)?;
        api.get_opt(name)
            .await
            .map_err(|e| SiteError::from_kube(&site.name, "read", namespace, name, e))
    })
    .await;
    note(site, &result);
    result
}

fn note<T>(site: &SiteHandle, result: &Result<T, SiteError>) {
    match result {
        Err(SiteError::Unreachable { message, .. }) => site.mark_unreachable(message.clone()),
        _ => site.mark_reachable(),
    }
}

/// Server-side applies `desired` with `seeds` at its site and returns what was stored.
/// Without a status subresource the seed list goes in the same apply; with one, it is applied
/// to `/status` afterwards (only if it differs).
pub async fn write_site(
    site: &SiteHandle,
    desired: &SiteCassandraCluster,
    seeds: &[String],
) -> Result<Written, SiteError> {
    let result = deadline(site, write_site_inner(site, desired, seeds)).await;
    note(site, &result);
    result
}

async fn write_site_inner(
    site: &SiteHandle,
    desired: &SiteCassandraCluster,
    seeds: &[String],
) -> Result<Written, SiteError> {
    let (ns, name) = (desired.namespace.as_str(), desired.name.as_str());
    let err = |action, e| SiteError::from_kube(&site.name, action, ns, name, e);
    let subresource = site
        .has_status_subresource()
        .await
        .map_err(|e| err("discover", e))?;
    let api = api(site, ns)?;
    let params = PatchParams::apply(SITE_FIELD_MANAGER).force();
    let mut body = desired.object.clone();
    if !subresource {
        body["status"] = json!({ "seedlist": seeds });
    }
    let stored = api
        .patch(name, &params, &Patch::Apply(&body))
        .await
        .map_err(|e| err("apply", e))?;
    let generation = stored.metadata.generation.unwrap_or_default();
    if !subresource || stored_seeds(&stored) == seeds {
        return Ok(Written {
            object: stored,
            generation,
            status_written: false,
        });
    }
    let status = json!({ "apiVersion": desired.object["apiVersion"], "kind": desired.object["kind"], "status": { "seedlist": seeds } });
    let stored = api
        .patch_status(name, &params, &Patch::Apply(&status))
        .await
        .map_err(|e| err("apply status of", e))?;
    Ok(Written {
        object: stored,
        generation,
        status_written: true,
    })
}

fn stored_seeds(object: &DynamicObject) -> Vec<String> {
    object
        .data
        .pointer("/status/seedlist")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// Whether every DC of a stored CassandraCluster is scaled to zero.
pub fn scaled_to_zero(object: &DynamicObject) -> bool {
    let spec = object
        .data
        .get("spec")
        .cloned()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default();
    effective_topology(&spec)
        .iter()
        .all(|dc| dc.racks.iter().all(|r| r.nodes == 0))
}

/// Scales every DC of a CassandraCluster that left the ring to zero nodes (CassKop then
/// decommissions them), keeping everything else as it is.
pub async fn scale_to_zero(
    site: &SiteHandle,
    object: &DynamicObject,
) -> Result<DynamicObject, SiteError> {
    let (ns, name) = (
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    );
    let mut dcs = object
        .data
        .pointer("/spec/topology/dc")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if dcs.is_empty() {
        // CassKop's implicit dc1/rack1 must be spelled out to be scaled.
        dcs.push(json!({ "name": crate::core::seeds::DEFAULT_DC, "rack": [{ "name": crate::core::seeds::DEFAULT_RACK }] }));
    }
    for dc in &mut dcs {
        dc["nodesPerRacks"] = json!(0);
    }
    let patch = json!({ "spec": { "topology": { "dc": dcs } } });
    let result = deadline(site, async {
        match api(site, &ns) {
            Ok(api) => api
                .patch(
                    &name,
                    &PatchParams {
                        field_manager: Some(RELEASE_FIELD_MANAGER.into()),
                        ..Default::default()
                    },
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(|e| SiteError::from_kube(&site.name, "scale to zero", &ns, &name, e)),
            Err(e) => Err(e),
        }
    })
    .await;
    note(site, &result);
    result
}

/// Deletes a CassandraCluster at a site (CassKop's own finalizer then cleans up its volumes).
/// Background propagation: the object has no dependents of ours, and foreground deletion would
/// wait on a garbage collector some clusters do not run.
pub async fn delete(site: &SiteHandle, namespace: &str, name: &str) -> Result<(), SiteError> {
    let result = deadline(site, async {
        match api(site, namespace) {
            Ok(api) => match api.delete(name, &DeleteParams::background()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(e) => Err(SiteError::from_kube(
                    &site.name, "delete", namespace, name, e,
                )),
            },
            Err(e) => Err(e),
        }
    })
    .await;
    note(site, &result);
    result
}

/// Removes our ownership labels from a CassandraCluster we stop managing, so nothing of
/// ours finds it again; the cluster itself is untouched.
pub async fn release(site: &SiteHandle, namespace: &str, name: &str) -> Result<(), SiteError> {
    let patch = json!({ "metadata": { "labels": { (OWNER_NAME_LABEL): null, (OWNER_NAMESPACE_LABEL): null, (SITE_LABEL): null } } });
    let result = deadline(site, async {
        match api(site, namespace) {
            Ok(api) => match api
                .patch(
                    name,
                    &PatchParams {
                        field_manager: Some(RELEASE_FIELD_MANAGER.into()),
                        ..Default::default()
                    },
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(e) => Err(SiteError::from_kube(
                    &site.name, "release", namespace, name, e,
                )),
            },
            Err(e) => Err(e),
        }
    })
    .await;
    note(site, &result);
    result
}

/// Lists the pods of CassandraCluster `cluster` at a site (CassKop's `cassandracluster` label).
pub async fn list_cluster_pods(
    site: &SiteHandle,
    namespace: &str,
    cluster: &str,
) -> Result<Vec<Pod>, SiteError> {
    let what = format!("pods of {cluster}");
    let result = deadline(site, async {
        let client = site.client().map_err(|e| SiteError::Unreachable {
            site: site.name.clone(),
            message: e.to_string(),
        })?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let selector = format!("{}={cluster}", pod_operation::CLUSTER);
        pods.list(&ListParams::default().labels(&selector))
            .await
            .map(|l| l.items)
            .map_err(|e| SiteError::from_kube_pods(&site.name, "list", namespace, &what, e))
    })
    .await;
    note(site, &result);
    result
}

/// Sets (`Some`) or removes (`None`) labels of pod `namespace/pod` at a site, to ask CassKop for
/// a pod operation (`operation-name`, `operation-status=ToDo`, `operation-argument`, ...). A JSON
/// merge patch of `metadata.labels` only, with our field manager: nothing else of the pod is
/// touched. The pod's resourceVersion, when given, guards against labelling a pod that changed
/// since it was read.
pub async fn label_pod_operation(
    site: &SiteHandle,
    namespace: &str,
    pod: &str,
    resource_version: Option<&str>,
    labels: &BTreeMap<String, Option<String>>,
) -> Result<Pod, SiteError> {
    let what = format!("pod {pod}");
    let mut metadata = json!({ "labels": labels });
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv);
    }
    let patch = json!({ "metadata": metadata });
    let result = deadline(site, async {
        let client = site.client().map_err(|e| SiteError::Unreachable {
            site: site.name.clone(),
            message: e.to_string(),
        })?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let params = PatchParams {
            field_manager: Some(POD_OPERATION_FIELD_MANAGER.into()),
            ..Default::default()
        };
        pods.patch(pod, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| SiteError::from_kube_pods(&site.name, "label", namespace, &what, e))
    })
    .await;
    note(site, &result);
    result
}
