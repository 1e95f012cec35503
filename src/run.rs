//! `multi-casskop run`: connects to the management cluster and every site, then runs the
//! controller until shutdown. Also used in-process by the end-to-end tests, the demo and the
//! benchmarks. Every client it builds counts its requests in the metrics.

use std::future::Future;
use std::sync::Arc;

use futures::channel::mpsc::UnboundedReceiver;
use kube::Client;
use tracing::{info, warn};

use crate::config::Settings;
use crate::controller::{self, Context};
use crate::metrics::Metrics;
use crate::sites::connect::{ConnectError, InsecureTls};
use crate::sites::{SiteRegistry, Trigger, secrets};

/// Site label of the management cluster's own client in metrics.
pub const MANAGEMENT: &str = "management";

/// How long [`Running::stop`] lets running reconciles finish.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The management cluster's client, from the settings (file and context, else the default).
/// The operator's own kubeconfig may turn TLS verification off.
pub async fn management_client(
    settings: &Settings,
    metrics: &Arc<Metrics>,
) -> Result<Client, ConnectError> {
    settings
        .management
        .source()
        .connect(
            MANAGEMENT,
            None,
            Some((metrics, MANAGEMENT)),
            InsecureTls::Allow,
        )
        .await
}

/// Whether sites' kubeconfigs may turn TLS verification off.
pub fn site_tls(settings: &Settings) -> InsecureTls {
    if settings.allow_insecure_skip_tls_verify {
        InsecureTls::Allow
    } else {
        InsecureTls::Refuse
    }
}

/// Connects everything described by `settings` and runs the controller until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), ConnectError> {
    let (ctx, triggers) = prepare(&settings).await?;
    serve(settings, ctx, triggers, shutdown).await;
    Ok(())
}

/// A controller running in the background (tests, demo, benchmarks).
pub struct Running {
    /// Its shared state (site registry, metrics).
    pub ctx: Arc<Context>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Whether the controller task is still running (it has not panicked or returned).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

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
pub async fn start(settings: Settings) -> Result<Running, ConnectError> {
    let (ctx, triggers) = prepare(&settings).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(settings, ctx.clone(), triggers, async move {
        let _ = stopped.await;
    }));
    Ok(Running {
        ctx,
        stop: Some(stop),
        task,
    })
}

async fn prepare(
    settings: &Settings,
) -> Result<(Arc<Context>, UnboundedReceiver<Trigger>), ConnectError> {
    let metrics = Arc::new(Metrics::default());
    let management = management_client(settings, &metrics).await?;
    let (registry, triggers) = SiteRegistry::new(metrics.clone());
    // The settings' sites: connected once (the Secret-held ones follow their Secrets, in serve).
    for site in &settings.sites {
        registry
            .connect(
                &site.name,
                &site.source,
                site.namespace.clone(),
                Some(&management),
                site_tls(settings),
            )
            .await;
    }
    let mut ctx = Context::new(
        management,
        registry,
        std::env::var("POD_NAME").ok(),
        metrics,
    );
    ctx.tenancy = settings.tenancy.clone();
    let ctx = Arc::new(ctx);
    Ok((ctx, triggers))
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn bind(
    addr: Option<&str>,
    ctx: &Arc<Context>,
    endpoints: crate::http::Endpoints,
) -> Option<AbortOnDrop> {
    match addr.map(str::parse::<std::net::SocketAddr>) {
        Some(Ok(addr)) => match crate::http::serve_on(addr, ctx.clone(), endpoints).await {
            Ok((_, task)) => Some(AbortOnDrop(task)),
            Err(error) => {
                warn!(%addr, %error, ?endpoints, "cannot serve HTTP");
                None
            }
        },
        Some(Err(error)) => {
            warn!(%error, "invalid http address");
            None
        }
        None => None,
    }
}

async fn serve(
    settings: Settings,
    ctx: Arc<Context>,
    triggers: UnboundedReceiver<Trigger>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    // Both are aborted when this function ends or its task is aborted.
    let _secret_watch = settings.secrets.namespace.clone().map(|ns| {
        AbortOnDrop(tokio::spawn(secrets::watch(
            ctx.client.clone(),
            ns,
            settings.secrets.label_selector.clone(),
            ctx.sites.clone(),
            site_tls(&settings),
        )))
    });
    let (health_endpoints, metrics_addr) = match settings.metrics_addr.as_deref() {
        Some(addr) => (crate::http::Endpoints::Health, Some(addr)),
        None => (crate::http::Endpoints::All, None),
    };
    let _http = bind(settings.http_addr.as_deref(), &ctx, health_endpoints).await;
    let _metrics = bind(metrics_addr, &ctx, crate::http::Endpoints::Metrics).await;
    info!(namespace = settings.namespace.as_deref().unwrap_or("(all)"), sites = ?ctx.sites.names(), "controller starting");
    if settings.leader_election.enabled {
        crate::leader::run_while_leading(&settings, ctx, triggers, shutdown).await;
    } else {
        controller::run(ctx, triggers, settings.namespace.clone(), shutdown).await;
    }
    info!("controller stopped");
}
