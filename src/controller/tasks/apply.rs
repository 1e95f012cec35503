//! Asks CassKop for a pod operation: labels the chosen pods at a site
//! `operation-name=<op>`, `operation-status=ToDo` (and `operation-argument` for rebuild).

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::api::{MultiCasskopTaskSpec, SiteStatus, TaskOperation};
use crate::controller::Context;
use crate::controller::site_io::SITE_REQUEST_TIMEOUT;
use crate::controller::tasks::TaskError;
use crate::labels::TASK_FIELD_MANAGER;
use crate::labels::pod_operation::{ARGUMENT, NAME, STATUS, TO_DO};

/// Labels every pod of `pods` at the site of `status` for the task's operation (a merge patch
/// of those labels only). Stops at the first failure; pods labelled before it stay labelled
/// and are found in flight at the next step.
pub async fn ask_pods(
    ctx: &Context,
    spec: &MultiCasskopTaskSpec,
    status: &SiteStatus,
    pods: &[String],
) -> Result<(), TaskError> {
    let site_name = &status.site;
    let site = ctx
        .sites
        .get(site_name)
        .ok_or_else(|| TaskError::Site(format!("site {site_name} is not connected")))?;
    let client = site
        .client()
        .map_err(|e| TaskError::Site(format!("site {site_name}: {e}")))?;
    let api: Api<Pod> = Api::namespaced(client.clone(), &status.namespace);
    let mut labels = json!({ (NAME): spec.operation.as_str(), (STATUS): TO_DO });
    if spec.operation == TaskOperation::Rebuild {
        labels[ARGUMENT] = json!(spec.source_dc.clone().unwrap_or_default());
    }
    let patch = json!({ "metadata": { "labels": labels } });
    let params = PatchParams {
        field_manager: Some(TASK_FIELD_MANAGER.into()),
        ..Default::default()
    };
    for pod in pods {
        site.stall()
            .bounded(
                SITE_REQUEST_TIMEOUT,
                api.patch(pod, &params, &Patch::Merge(&patch)),
            )
            .await
            .map_err(|e| TaskError::Site(format!("site {site_name}: labelling pod {pod}: {e}")))?
            .map_err(|e| {
                TaskError::Site(format!(
                    "site {site_name}: label pod {}/{pod} for {}: {e}",
                    status.namespace, spec.operation
                ))
            })?;
    }
    Ok(())
}
