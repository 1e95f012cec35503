//! `multi-casskop run`: connects to the management cluster and every site, then runs the
//! controller until shutdown. Also used in-process by the end-to-end tests and the demo.

use std::future::Future;
use std::sync::Arc;

use kube::Client;
use tracing::{info, warn};

use crate::config::{Settings, SiteConfig};
use crate::controller::{self, Context};
use crate::sites::{SiteRegistry, connect, secrets};

/// Connects one configured site; errors are kept as the site's state, never fatal.
async fn connect_site(site: &SiteConfig, management: &Client) -> (String, Result<Client, String>) {
    if site.local {
        return (
            "the management cluster's connection".into(),
            Ok(management.clone()),
        );
    }
    let result = match &site.kubeconfig {
        Some(path) => connect::from_file(path, site.context.as_deref()).await,
        None => match &site.context {
            // A context of the default kubeconfig (the Go version's fallback for `-r NAME`).
            Some(context) => match kube::config::Kubeconfig::read() {
                Ok(kc) => {
                    connect::from_yaml(
                        &serde_yaml::to_string(&kc).unwrap_or_default(),
                        Some(context),
                        "the default kubeconfig",
                    )
                    .await
                }
                Err(source) => Err(connect::ConnectError::ParseKubeconfig {
                    origin: "the default kubeconfig".into(),
                    source,
                }),
            },
            None => connect::default_client().await,
        },
    };
    let source = format!(
        "{} context {}",
        site.kubeconfig
            .as_ref()
            .map_or_else(|| "default kubeconfig".into(), |p| p.display().to_string()),
        site.context.as_deref().unwrap_or("(current)")
    );
    (source, result.map_err(|e| e.to_string()))
}

/// Builds the site registry from the settings, starts the Secret watch if configured, and runs
/// the controller until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    management: Client,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (ctx, triggers) = prepare(&settings, management).await;
    serve(settings, ctx, triggers, shutdown).await;
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl From<tokio::task::JoinHandle<()>> for AbortOnDrop {
    fn from(task: tokio::task::JoinHandle<()>) -> Self {
        AbortOnDrop(task)
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long [`Running::stop`] lets running reconciles finish.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A controller running in the background (tests, demo, benchmarks).
pub struct Running {
    /// Its shared state (site registry, counters).
    pub ctx: Arc<Context>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops: no new reconciles start, running ones may finish within [`STOP_GRACE`]; then
    /// whatever is left is aborted (every decision is recomputed from the clusters on start).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(STOP_GRACE, &mut self.task)
            .await
            .is_err()
        {
            warn!(grace = ?STOP_GRACE, "controller did not stop in time; aborting it");
            self.task.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the controller on the current runtime and returns at once.
pub async fn start(settings: Settings, management: Client) -> Running {
    let (ctx, triggers) = prepare(&settings, management).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(settings, ctx.clone(), triggers, async move {
        let _ = stopped.await;
    }));
    Running {
        ctx,
        stop: Some(stop),
        task,
    }
}

async fn prepare(
    settings: &Settings,
    management: Client,
) -> (
    Arc<Context>,
    futures::channel::mpsc::UnboundedReceiver<crate::sites::Trigger>,
) {
    let (registry, triggers) = SiteRegistry::new();
    for site in &settings.sites {
        let (source, client) = connect_site(site, &management).await;
        match &client {
            Ok(_) => info!(site = %site.name, %source, "site configured"),
            Err(error) => {
                warn!(site = %site.name, %source, %error, "site unusable; the others carry on")
            }
        }
        registry.upsert(&site.name, source, client);
    }
    let ctx = Arc::new(Context::new(
        management,
        registry,
        std::env::var("POD_NAME").ok(),
    ));
    (ctx, triggers)
}

async fn serve(
    settings: Settings,
    ctx: Arc<Context>,
    triggers: futures::channel::mpsc::UnboundedReceiver<crate::sites::Trigger>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let management = ctx.client.clone();
    let registry = ctx.sites.clone();
    // Aborted when this function ends or its task is aborted.
    let _secret_watch: Option<AbortOnDrop> = settings.secrets.namespace.clone().map(|ns| {
        tokio::spawn(secrets::watch(
            management.clone(),
            ns,
            settings.secrets.label_selector.clone(),
            registry.clone(),
        ))
        .into()
    });
    info!(namespace = settings.namespace.as_deref().unwrap_or("(all)"), sites = ?ctx.sites.names(), "controller starting");
    controller::run(ctx, triggers, settings.namespace.clone(), shutdown).await;
    info!("controller stopped");
}
