//! Apply: the write of one site's CassandraCluster and seed list, recorded in the ledger with
//! what CassKop must show for it (and logged; Events are kept for what needs attention).

use std::time::Duration;

use kube::ResourceExt;
use kube::api::DynamicObject;
use tracing::{info, warn};

use crate::api::{MultiCasskop, SiteState, WriteKind, WriteRecord};
use crate::controller::Context;
use crate::controller::error::SiteError;
use crate::controller::ledger::SiteKey;
use crate::controller::site_io::{self, Written};
use crate::controller::status;
use crate::core::evidence::CasskopEvidence;
use crate::core::site_object::SiteCassandraCluster;
use crate::sites::SiteHandle;

/// What applying a site led to.
pub(crate) struct Applied {
    /// The site's state after the write.
    pub state: SiteState,
    /// Why.
    pub message: String,
    /// The stored object (when the write succeeded).
    pub object: Option<DynamicObject>,
    /// When to try again after a failure.
    pub retry: Option<Duration>,
    /// The site did not answer.
    pub unreachable: bool,
}

impl Applied {
    /// Nothing was written, for `message`.
    pub(crate) fn not_written(state: SiteState, message: String, unreachable: bool) -> Self {
        Applied {
            state,
            message,
            object: None,
            retry: None,
            unreachable,
        }
    }
}

/// What a write changed, from the generation before and after and whether `/status` was written.
pub(crate) fn write_kind(before: Option<i64>, written: &Written) -> WriteKind {
    let new_generation = before != Some(written.generation);
    match (new_generation, written.status_written) {
        (true, false) => WriteKind::Spec,
        (true, true) => WriteKind::SpecAndStatus,
        (false, true) => WriteKind::Status,
        (false, false) => WriteKind::Metadata,
    }
}

/// One write to make at a site.
pub(crate) struct SiteWrite<'a> {
    /// The ring and site.
    pub key: &'a SiteKey,
    /// The site.
    pub handle: &'a SiteHandle,
    /// The object as it stands (`None`: it is created).
    pub before: Option<&'a DynamicObject>,
    /// What the site must hold.
    pub desired: &'a SiteCassandraCluster,
    /// The ring's seed list.
    pub seeds: &'a [String],
    /// Digest of `desired` and `seeds` (remembered if CassKop refuses it).
    pub spec_digest: &'a str,
    /// The site's previous status message (a repeated failure is not announced again).
    pub previous_message: Option<&'a str>,
    /// Only labels or annotations differ: write those alone.
    pub metadata_only: bool,
    /// The write the site still has to acknowledge, if any (a labels-only write does not
    /// replace it: CassKop must still act on it).
    pub awaited: Option<&'a WriteRecord>,
}

/// Writes the desired object and seeds at the site and records the write in the ledger.
pub(crate) async fn apply_site(ctx: &Context, mc: &MultiCasskop, write: &SiteWrite<'_>) -> Applied {
    let SiteWrite {
        key,
        handle,
        before,
        desired,
        seeds,
        spec_digest,
        previous_message,
        metadata_only,
        awaited,
    } = *write;
    let result = if metadata_only && before.is_some() {
        site_io::write_metadata(handle, desired).await
    } else {
        site_io::write_site(handle, desired, seeds).await
    };
    ctx.metrics_write(&key.site, result.is_ok());
    match result {
        Ok(written) => {
            ctx.site_failures.succeed(&key.to_string());
            let before_rv = before.and_then(ResourceExt::resource_version);
            let changed = written.object.resource_version() != before_rv;
            if changed {
                let kind = write_kind(before.and_then(|o| o.metadata.generation), &written);
                let record = match awaited {
                    Some(pending) if kind == WriteKind::Metadata && !pending.confirmed => {
                        pending.clone()
                    }
                    _ => WriteRecord {
                        resource_version: written.object.resource_version().unwrap_or_default(),
                        generation: written.generation,
                        kind,
                        annotation_digest: CasskopEvidence::from_object(
                            &serde_json::to_value(&written.object).unwrap_or_default(),
                        )
                        .annotation_digest,
                        spec_digest: spec_digest.to_string(),
                        confirmed: false,
                    },
                };
                ctx.ledger.record(key, record, written.object.clone());
                let reason = if before.is_some() {
                    "Updated"
                } else {
                    "Created"
                };
                let object = format!("{}/{}", desired.namespace, desired.name);
                info!(multicasskop = %key.ring, site = %key.site, %object, reason, generation = written.generation, "wrote site");
            }
            Applied {
                state: SiteState::Progressing,
                message: format!(
                    "wrote the spec and seed list (generation {}); waiting for CassKop at site {} to act on it",
                    written.generation, key.site
                ),
                object: Some(written.object),
                retry: None,
                unreachable: false,
            }
        }
        Err(error) => {
            let delay = ctx.site_failures.fail(&key.to_string());
            warn!(multicasskop = %key.ring, site = %key.site, %error, retry_in = ?delay, "write failed");
            let state = match &error {
                SiteError::Unreachable { .. } => SiteState::Unreachable,
                SiteError::Rejected { .. } => SiteState::Invalid,
                SiteError::Api { .. } | SiteError::Pods { .. } => SiteState::Failed,
            };
            let message = error.to_string();
            let reason = if state == SiteState::Invalid {
                "Rejected"
            } else {
                "WriteFailed"
            };
            let site = status::at_site(&key.site, &desired.namespace, &desired.name);
            status::site_warning_once(ctx, mc, previous_message, reason, &message, site).await;
            Applied {
                state,
                message,
                object: None,
                retry: Some(delay),
                unreachable: matches!(error, SiteError::Unreachable { .. }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written(generation: i64, status_written: bool) -> Written {
        Written {
            object: serde_json::from_value(json!({"apiVersion": "db.orange.com/v2", "kind": "CassandraCluster", "metadata": {"name": "c"}})).expect("object"),
            generation,
            status_written,
        }
    }

    #[test]
    fn write_kind_table() {
        let cases = [
            ("create", None, written(1, false), WriteKind::Spec),
            (
                "create with seeds through /status",
                None,
                written(1, true),
                WriteKind::SpecAndStatus,
            ),
            ("image change", Some(3), written(4, false), WriteKind::Spec),
            (
                "seed list only",
                Some(4),
                written(4, true),
                WriteKind::Status,
            ),
            (
                "labels only",
                Some(4),
                written(4, false),
                WriteKind::Metadata,
            ),
        ];
        for (name, before, w, want) in cases {
            assert_eq!(write_kind(before, &w), want, "{name}");
        }
    }
}
