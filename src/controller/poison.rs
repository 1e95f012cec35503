//! Reports a MultiCasskop that cannot be decoded on that object, and nowhere else: a minimal
//! status (phase `Invalid`, conditions `Ready=False` and `Degraded=True` with reason
//! `Undecodable`), a Warning Event, a log line and the `multicasskop_undecodable_objects` gauge.
//! Nothing is written at any site and every other ring carries on.
//!
//! The status is written by server-side apply with the status field manager, so the regular
//! status replaces it once the object is fixed. The response is not decoded (the object in it
//! is the one that cannot be decoded).

use std::collections::BTreeSet;
use std::sync::Mutex;

use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use serde_json::json;
use tracing::warn;

use crate::api::MultiCasskop;
use crate::controller::context::Context;
use crate::labels::STATUS_FIELD_MANAGER;

/// Condition reason (and Event reason) of an undecodable MultiCasskop.
pub const REASON: &str = "Undecodable";

/// Which (uid, generation) pairs were reported already: the status write triggers the watch
/// again, and must not loop.
#[derive(Default)]
pub struct Reported(Mutex<BTreeSet<(String, i64)>>);

impl Reported {
    fn first_time(&self, key: (String, i64)) -> bool {
        self.0.lock().map(|mut s| s.insert(key)).unwrap_or(false)
    }

    /// Forgets an object (deleted, or decodable again).
    pub fn forget(&self, uid: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.retain(|(u, _)| u != uid);
        }
    }
}

/// The message users see.
pub fn message(error: &str) -> String {
    format!(
        "this MultiCasskop cannot be read by multi-casskop and is skipped (nothing is written or deleted at any site; other rings carry on): {error}; fix the spec"
    )
}

/// Reports an undecodable MultiCasskop once per generation.
pub async fn report(
    ctx: &Context,
    reported: &Reported,
    metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    error: &str,
) {
    let name = metadata.name.clone().unwrap_or_default();
    let namespace = metadata.namespace.clone().unwrap_or_default();
    let generation = metadata.generation.unwrap_or_default();
    if !reported.first_time((metadata.uid.clone().unwrap_or_default(), generation)) {
        return;
    }
    let message = message(error);
    warn!(multicasskop = %format!("{namespace}/{name}"), %error, "MultiCasskop cannot be decoded: skipped");
    let now = Timestamp::now().to_string();
    let condition = |type_: &str, status: &str| {
        json!({"type": type_, "status": status, "reason": REASON, "message": message,
               "lastTransitionTime": now, "observedGeneration": generation})
    };
    let body = json!({
        "apiVersion": MultiCasskop::api_version(&()),
        "kind": MultiCasskop::kind(&()),
        "metadata": {"name": name, "namespace": namespace},
        "status": {
            "phase": "Invalid",
            "conditions": [condition("Ready", "False"), condition("Progressing", "False"), condition("Degraded", "True")],
        },
    });
    let params = PatchParams::apply(STATUS_FIELD_MANAGER).force();
    let request = kube::core::Request::new(MultiCasskop::url_path(&(), Some(&namespace)))
        .patch_subresource("status", &name, &params, &Patch::Apply(&body));
    match request {
        Ok(request) => {
            if let Err(error) = ctx.client.request_text(request).await {
                warn!(multicasskop = %format!("{namespace}/{name}"), %error, "cannot write the status of an undecodable MultiCasskop");
            }
        }
        Err(error) => warn!(%error, "cannot build the status request"),
    }
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(MultiCasskop::api_version(&()).into()),
        kind: Some(MultiCasskop::kind(&()).into()),
        name: metadata.name.clone(),
        namespace: metadata.namespace.clone(),
        uid: metadata.uid.clone(),
        resource_version: metadata.resource_version.clone(),
        ..Default::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: REASON.into(),
        note: Some(message.chars().take(1000).collect()),
        action: "Decode".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &reference).await {
        warn!(%error, "cannot publish the Event of an undecodable MultiCasskop");
    }
}
