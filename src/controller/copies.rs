//! Copies the Secrets and ConfigMaps a MultiCasskop names in `spec.copyToSites` from its
//! namespace in the management cluster to a site's namespace (create, keep in sync, delete),
//! as [`crate::core::copies`] decides. Errors and Events name objects, never their content.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams, Preconditions};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

use crate::api::{CopiedObject, CopyKind, MultiCasskop};
use crate::controller::Context;
use crate::controller::site_io::SITE_REQUEST_TIMEOUT;
use crate::core::copies::{self, AtSite, CopyAction, Source};
use crate::core::evidence::digest;
use crate::labels::{
    COPY_FIELD_MANAGER, COPY_TO_SITES_LABEL, OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, SITE_LABEL,
};
use crate::sites::{NoAnswer, SiteHandle};

/// The copies this process made or kept, per ring and site (`namespace/name/site`): newer
/// proof than a ring status the watch has not delivered yet (a copy created by the previous
/// reconcile must not look like someone else's object to the next one).
#[derive(Debug, Default)]
pub struct CopyLedger(std::sync::Mutex<BTreeMap<String, Vec<CopiedObject>>>);

impl CopyLedger {
    fn recorded(&self, key: &str, from_status: &[CopiedObject]) -> Vec<CopiedObject> {
        let mut all = from_status.to_vec();
        if let Ok(map) = self.0.lock()
            && let Some(ours) = map.get(key)
        {
            all.extend(ours.iter().cloned());
        }
        all.sort();
        all.dedup();
        all
    }

    fn remember(&self, key: &str, copies: &[CopiedObject]) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key.to_string(), copies.to_vec());
        }
    }
}

/// What syncing one site's copies led to.
#[derive(Clone, Debug, Default)]
pub(crate) struct Synced {
    /// The copies the ring owns at the site now (recorded in its status).
    pub copies: Vec<CopiedObject>,
    /// Objects not copied or not deleted, and why (names only).
    pub problems: Vec<String>,
}

impl Synced {
    /// Every wanted object is at the site.
    pub fn complete(&self) -> bool {
        self.problems.is_empty()
    }
}

fn resource(kind: CopyKind) -> ApiResource {
    let (k, plural) = match kind {
        CopyKind::Secret => ("Secret", "secrets"),
        CopyKind::ConfigMap => ("ConfigMap", "configmaps"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", k), plural)
}

/// The fields that make the content: a Secret's `type` and `data`, a ConfigMap's `data` and
/// `binaryData`.
fn content(kind: CopyKind, object: &DynamicObject) -> BTreeMap<&'static str, Value> {
    let fields: &[&'static str] = match kind {
        CopyKind::Secret => &["type", "data"],
        CopyKind::ConfigMap => &["data", "binaryData"],
    };
    fields
        .iter()
        .filter_map(|f| object.data.get(*f).map(|v| (*f, v.clone())))
        .filter(|(_, v)| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()))
        .collect()
}

fn content_digest(kind: CopyKind, object: &DynamicObject) -> String {
    // serde_json maps compare and print in key order without `preserve_order`; sort anyway.
    let mut flat: BTreeMap<String, String> = BTreeMap::new();
    for (field, value) in content(kind, object) {
        match value.as_object() {
            Some(map) => {
                for (k, v) in map {
                    flat.insert(format!("{field}/{k}"), v.to_string());
                }
            }
            None => {
                flat.insert(field.to_string(), value.to_string());
            }
        }
    }
    digest(&format!("{flat:?}"))
}

async fn timed<T>(
    site: Option<&SiteHandle>,
    what: String,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    // A site's requests go through its stall signal; the management cluster's do not.
    let outcome = match site {
        Some(site) => site.stall().bounded(SITE_REQUEST_TIMEOUT, fut).await,
        None => tokio::time::timeout(SITE_REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| NoAnswer::TimedOut(SITE_REQUEST_TIMEOUT)),
    };
    match outcome {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(kube::Error::Api(s))) => Err(format!("{what}: {} ({})", s.reason, s.code)),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(no_answer) => Err(format!("{what}: {no_answer}")),
    }
}

/// Brings the copies at `site` (namespace `site_namespace`) in line with the MultiCasskop.
pub(crate) async fn sync_site(
    ctx: &Context,
    mc: &MultiCasskop,
    site: &SiteHandle,
    site_namespace: &str,
    recorded: &[CopiedObject],
) -> Synced {
    let ring_namespace = mc.namespace().unwrap_or_default();
    let key = format!("{ring_namespace}/{}/{}", mc.name_any(), site.name);
    let recorded = &ctx.copies.recorded(&key, recorded);
    let wanted = copies::wanted(mc.spec.copy_to_sites.as_ref());
    if wanted.is_empty() && recorded.is_empty() {
        return Synced::default();
    }
    let out = sync_recorded(ctx, mc, site, site_namespace, recorded, &wanted).await;
    ctx.copies.remember(&key, &out.copies);
    out
}

async fn sync_recorded(
    ctx: &Context,
    mc: &MultiCasskop,
    site: &SiteHandle,
    site_namespace: &str,
    recorded: &[CopiedObject],
    wanted: &[(CopyKind, String)],
) -> Synced {
    let mut out = Synced {
        copies: recorded.to_vec(),
        problems: Vec::new(),
    };
    let ring_namespace = mc.namespace().unwrap_or_default();
    let client = match site.client() {
        Ok(c) => c.clone(),
        Err(e) => {
            out.problems.push(format!("site {}: {e}", site.name));
            return out;
        }
    };
    // Sources (management) and what the site holds, for every object wanted or recorded.
    let mut sources: BTreeMap<(CopyKind, String), DynamicObject> = BTreeMap::new();
    for (kind, name) in wanted {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &ring_namespace, &resource(*kind));
        match timed(
            None,
            format!("read {kind} {ring_namespace}/{name}"),
            api.get_opt(name),
        )
        .await
        {
            Ok(Some(o)) => {
                sources.insert((*kind, name.clone()), o);
            }
            Ok(None) => {}
            Err(e) => {
                out.problems.push(e);
                return out;
            }
        }
    }
    let mut found: BTreeMap<(CopyKind, String), DynamicObject> = BTreeMap::new();
    let names = wanted
        .iter()
        .cloned()
        .chain(recorded.iter().map(|r| (r.kind, r.name.clone())));
    for (kind, name) in names {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), site_namespace, &resource(kind));
        match timed(
            Some(site),
            format!("site {}: read {kind} {site_namespace}/{name}", site.name),
            api.get_opt(&name),
        )
        .await
        {
            Ok(Some(o)) => {
                found.insert((kind, name), o);
            }
            Ok(None) => {}
            Err(e) => {
                out.problems.push(e);
                return out;
            }
        }
    }
    let steps = copies::plan_copies(
        wanted,
        recorded,
        |kind, name| {
            sources.get(&(kind, name.to_string())).map(|o| Source {
                uid: o.uid().unwrap_or_default(),
                opted_in: o.labels().get(COPY_TO_SITES_LABEL).map(String::as_str) == Some("true"),
                digest: content_digest(kind, o),
            })
        },
        |kind, name| {
            found.get(&(kind, name.to_string())).map(|o| AtSite {
                uid: o.uid().unwrap_or_default(),
                digest: content_digest(kind, o),
            })
        },
        &site.name,
    );
    let labels = json!({
        (OWNER_NAME_LABEL): mc.name_any(),
        (OWNER_NAMESPACE_LABEL): ring_namespace,
        (SITE_LABEL): site.name,
    });
    for step in steps {
        let key = (step.kind, step.name.clone());
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), site_namespace, &resource(step.kind));
        let what = format!(
            "site {}: {} {site_namespace}/{}",
            site.name, step.kind, step.name
        );
        match step.action {
            CopyAction::InSync => {}
            CopyAction::Refused(message) => out.problems.push(message),
            CopyAction::Create => {
                let Some(source) = sources.get(&key) else {
                    continue;
                };
                let mut body = json!({
                    "apiVersion": "v1",
                    "kind": step.kind.to_string(),
                    "metadata": { "name": step.name, "namespace": site_namespace, "labels": labels },
                });
                for (field, value) in content(step.kind, source) {
                    body[field] = value;
                }
                let object: DynamicObject = match serde_json::from_value(body) {
                    Ok(o) => o,
                    Err(e) => {
                        out.problems
                            .push(format!("{what}: cannot build the copy: {e}"));
                        continue;
                    }
                };
                let params = PostParams {
                    field_manager: Some(COPY_FIELD_MANAGER.into()),
                    ..Default::default()
                };
                // A create, never an apply: an object someone made meanwhile is not overwritten.
                match timed(
                    Some(site),
                    format!("create {what}"),
                    api.create(&params, &object),
                )
                .await
                {
                    Ok(created) => {
                        out.copies
                            .retain(|c| !(c.kind == step.kind && c.name == step.name));
                        out.copies.push(CopiedObject {
                            kind: step.kind,
                            name: step.name.clone(),
                            uid: created.uid().unwrap_or_default(),
                        });
                    }
                    Err(e) => out.problems.push(e),
                }
            }
            CopyAction::Update => {
                let (Some(source), Some(existing)) = (sources.get(&key), found.get(&key)) else {
                    continue;
                };
                // A replace at the version read: the UID and version we checked are the ones changed.
                let mut object = existing.clone();
                for field in ["type", "data", "binaryData", "stringData"] {
                    object.data.as_object_mut().map(|m| m.remove(field));
                }
                for (field, value) in content(step.kind, source) {
                    object.data[field] = value;
                }
                object.metadata.managed_fields = None;
                let params = PostParams {
                    field_manager: Some(COPY_FIELD_MANAGER.into()),
                    ..Default::default()
                };
                if let Err(e) = timed(
                    Some(site),
                    format!("update {what}"),
                    api.replace(&step.name, &params, &object),
                )
                .await
                {
                    out.problems.push(e);
                }
            }
            CopyAction::Delete => {
                let Some(existing) = found.get(&key) else {
                    continue;
                };
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: existing.uid(),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match timed(
                    Some(site),
                    format!("delete {what}"),
                    api.delete(&step.name, &params),
                )
                .await
                {
                    Ok(_) => out
                        .copies
                        .retain(|c| !(c.kind == step.kind && c.name == step.name)),
                    Err(e) => out.problems.push(e),
                }
            }
        }
    }
    // Recorded copies that are gone (or replaced by someone else's object) are no longer ours.
    out.copies.retain(|c| {
        found
            .get(&(c.kind, c.name.clone()))
            .is_some_and(|o| o.uid().as_deref() == Some(c.uid.as_str()))
            || !recorded.contains(c)
    });
    out.copies.sort();
    out
}

/// Deletes every copy the ring recorded at `site` (its CassandraCluster is gone, or the ring is).
/// Returns the copies still there (deletion failed) and the problems.
pub(crate) async fn delete_all(
    site: &SiteHandle,
    site_namespace: &str,
    recorded: &[CopiedObject],
) -> Synced {
    let mut out = Synced::default();
    let client = match site.client() {
        Ok(c) => c.clone(),
        Err(e) => {
            out.copies = recorded.to_vec();
            out.problems.push(format!("site {}: {e}", site.name));
            return out;
        }
    };
    for copy in recorded {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), site_namespace, &resource(copy.kind));
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(copy.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        let what = format!(
            "delete site {}: {} {site_namespace}/{}",
            site.name, copy.kind, copy.name
        );
        match site
            .stall()
            .bounded(SITE_REQUEST_TIMEOUT, api.delete(&copy.name, &params))
            .await
        {
            Ok(Ok(_)) => {}
            // Gone, or someone else's object now holds the name (UID precondition failed).
            Ok(Err(kube::Error::Api(s))) if s.code == 404 || s.code == 409 => {}
            Ok(Err(e)) => {
                out.copies.push(copy.clone());
                out.problems.push(format!("{what}: {e}"));
            }
            Err(no_answer) => {
                out.copies.push(copy.clone());
                out.problems.push(format!("{what}: {no_answer}"));
            }
        }
    }
    out
}
