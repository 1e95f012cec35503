//! The MultiCasskopTask controller: runs one CassKop pod operation over a ring's sites, as a
//! pipeline: dereference (the ring, the pods of the site in progress) → plan (pure,
//! [`crate::core::task`]) → apply (label the pods asked now) → status (one write, only if
//! changed; Events). All progress lives in the task's status, so a restart continues where it was.

mod apply;
mod dereference;
mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use tracing::{error, warn};

use crate::api::MultiCasskopTask;
use crate::controller::Context;
use crate::core::task::{self, TaskPlan};

/// How often a running task looks at its pods again (CassKop reports through pod labels, which
/// nothing of ours watches).
pub const POLL: Duration = Duration::from_secs(2);
/// How often a task waiting for its ring looks again.
pub const WAIT: Duration = Duration::from_secs(5);

/// What failed in a task step.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The management cluster refused or did not answer.
    #[error("management cluster: {0}")]
    Management(String),
    /// A site could not be read or written (retried at the next step).
    #[error("{0}")]
    Site(String),
    /// The tenancy rule forbids the site namespace (the task fails).
    #[error("{0}")]
    Refused(String),
    /// The task has no namespace.
    #[error("MultiCasskopTask {0} has no namespace")]
    NoNamespace(String),
}

/// One step of a task.
pub async fn reconcile(
    task: Arc<MultiCasskopTask>,
    ctx: Arc<Context>,
) -> Result<Action, TaskError> {
    let name = task.name_any();
    let namespace = task
        .namespace()
        .ok_or_else(|| TaskError::NoNamespace(name.clone()))?;
    let previous = task.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    if previous.phase.finished() {
        return match task::ttl_left(&previous, task.spec.ttl_seconds_after_finished, now) {
            Some(0) => status::expire(&ctx, &task, &namespace)
                .await
                .map(|()| Action::await_change()),
            Some(left) => Ok(Action::requeue(Duration::from_secs(left))),
            None => Ok(Action::await_change()),
        };
    }
    let Some(ring) = dereference::ring(&ctx, &task, &namespace).await? else {
        let mut waiting = previous.clone();
        waiting.message = Some(format!(
            "waiting for MultiCasskop {namespace}/{} to exist and report its sites",
            task.spec.multi_casskop
        ));
        status::write(&ctx, &task, &namespace, &waiting).await?;
        return Ok(Action::requeue(WAIT));
    };
    // The pods of the site in progress (the first not done), once it is Ready.
    let order = match task::sites_to_run(&task.spec, &ring.sites) {
        Ok(order) => order,
        Err(message) => {
            let plan = task::fail_invalid(&previous, &message, now);
            return finish_step(&ctx, &task, &namespace, plan).await;
        }
    };
    let current = task::site_in_progress(&previous, &order);
    let site_status = current
        .as_ref()
        .and_then(|site| ring.statuses.iter().find(|s| &s.site == site));
    let ready = current
        .as_ref()
        .is_some_and(|site| ring.sites.iter().any(|r| &r.site == site && r.ready));
    let pods = match site_status {
        Some(s)
            if ready
                || previous
                    .sites
                    .iter()
                    .any(|p| p.site == s.site && !p.pods.is_empty()) =>
        {
            match dereference::pods(&ctx, &namespace, s).await {
                Ok(pods) => Some(pods),
                Err(TaskError::Refused(message)) => {
                    let plan = task::fail_invalid(&previous, &message, now);
                    return finish_step(&ctx, &task, &namespace, plan).await;
                }
                Err(e) => {
                    warn!(task = %name, error = %e, "cannot read the pods of the site in progress");
                    None
                }
            }
        }
        _ => Some(Vec::new()),
    };
    let mut plan = task::plan(&task.spec, &previous, &ring.sites, pods.as_deref(), now);
    if let Some((site, asked)) = &plan.ask
        && let Some(s) = ring.statuses.iter().find(|s| &s.site == site)
        && let Err(e) = apply::ask_pods(&ctx, &task.spec, s, asked).await
    {
        // Nothing counts as asked; pods labelled before the failure are found in flight next time.
        warn!(task = %name, error = %e, "cannot label pods");
        plan.status = previous.clone();
        plan.status.message = Some(e.to_string());
        plan.events.clear();
    }
    finish_step(&ctx, &task, &namespace, plan).await
}

async fn finish_step(
    ctx: &Context,
    task: &MultiCasskopTask,
    namespace: &str,
    plan: TaskPlan,
) -> Result<Action, TaskError> {
    status::write(ctx, task, namespace, &plan.status).await?;
    status::publish(ctx, task, &plan.events).await;
    if plan.status.phase.finished() {
        return Ok(
            match task::ttl_left(
                &plan.status,
                task.spec.ttl_seconds_after_finished,
                Timestamp::now(),
            ) {
                Some(left) => Action::requeue(Duration::from_secs(left.max(1))),
                None => Action::await_change(),
            },
        );
    }
    Ok(Action::requeue(POLL))
}

fn error_policy(task: Arc<MultiCasskopTask>, error: &TaskError, _ctx: Arc<Context>) -> Action {
    warn!(task = %task.name_any(), %error, "task step failed");
    Action::requeue(WAIT)
}

/// Runs the task controller until `shutdown` resolves. `namespace` limits it to one namespace.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<MultiCasskopTask> = match &namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(e) = result {
                match e {
                    kube::runtime::controller::Error::ObjectNotFound(_) => {}
                    other => error!(error = %other, "task controller error"),
                }
            }
            futures::future::ready(())
        })
        .await;
}
