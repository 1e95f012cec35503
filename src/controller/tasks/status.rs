//! Writes a task's status (only when it changed), publishes its Events, and deletes finished
//! tasks whose TTL ran out.

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use crate::api::{MultiCasskopTask, MultiCasskopTaskStatus};
use crate::controller::Context;
use crate::controller::tasks::TaskError;
use crate::core::task::TaskEvent;
use crate::labels::TASK_STATUS_FIELD_MANAGER;

/// Server-side applies `status` unless the task already holds it.
pub async fn write(
    ctx: &Context,
    task: &MultiCasskopTask,
    namespace: &str,
    status: &MultiCasskopTaskStatus,
) -> Result<(), TaskError> {
    if task.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<MultiCasskopTask> = Api::namespaced(ctx.client.clone(), namespace);
    let body = json!({
        "apiVersion": MultiCasskopTask::api_version(&()),
        "kind": MultiCasskopTask::kind(&()),
        "status": status,
    });
    api.patch_status(
        &task.name_any(),
        &PatchParams::apply(TASK_STATUS_FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| {
        TaskError::Management(format!(
            "write status of MultiCasskopTask {namespace}/{}: {e}",
            task.name_any()
        ))
    })?;
    Ok(())
}

/// Publishes `events` on the task; failures are logged, never fatal.
pub async fn publish(ctx: &Context, task: &MultiCasskopTask, events: &[TaskEvent]) {
    for e in events {
        let event = Event {
            type_: if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: e.reason.into(),
            note: Some(e.note.chars().take(1000).collect()),
            action: "RunTask".into(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &task.object_ref(&())).await {
            warn!(task = %task.name_any(), %error, reason = e.reason, "cannot publish event");
        }
    }
}

/// Deletes a finished task whose `ttlSecondsAfterFinished` ran out.
pub async fn expire(
    ctx: &Context,
    task: &MultiCasskopTask,
    namespace: &str,
) -> Result<(), TaskError> {
    let api: Api<MultiCasskopTask> = Api::namespaced(ctx.client.clone(), namespace);
    match api
        .delete(&task.name_any(), &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(TaskError::Management(format!(
            "delete expired MultiCasskopTask {namespace}/{}: {e}",
            task.name_any()
        ))),
    }
}
