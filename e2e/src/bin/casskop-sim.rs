//! `casskop-sim`: runs the CassKop simulator against one site until SIGINT/SIGTERM.
//!
//! ```text
//! casskop-sim --kubeconfig kubeconfigs/site-1.kubeconfig [--context site-1] [--delay-ms 500] [--stuck | --error]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use kube::config::{KubeConfigOptions, Kubeconfig};
use multi_casskop_e2e::{Mode, SimConfig, Simulator, telemetry};

/// Simulates CassKop on one Kubernetes cluster: drives CassandraCluster status.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Kubeconfig of the site.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// Context to use (default: the kubeconfig's current context).
    #[arg(long)]
    context: Option<String>,
    /// Only this namespace (default: all namespaces).
    #[arg(long)]
    namespace: Option<String>,
    /// Delay before each status transition, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Never finish actions (they stay Ongoing).
    #[arg(long, conflicts_with = "error")]
    stuck: bool,
    /// End every action with status Error.
    #[arg(long)]
    error: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let args = Args::parse();
    multi_casskop_e2e::kubeconfig::install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", args.kubeconfig.display()))?;
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .with_context(|| {
            format!(
                "using context {:?} of {}",
                args.context,
                args.kubeconfig.display()
            )
        })?;
    let client = kube::Client::try_from(config).context("building the Kubernetes client")?;
    let mode = if args.stuck {
        Mode::Stuck
    } else if args.error {
        Mode::Error
    } else {
        Mode::Normal
    };
    let mut sim_config = SimConfig::default()
        .mode(mode)
        .delay(Duration::from_millis(args.delay_ms));
    sim_config.namespace = args.namespace;
    let simulator = Simulator::spawn(client, sim_config);
    tracing::info!(kubeconfig = %args.kubeconfig.display(), context = ?args.context, ?mode, delay_ms = args.delay_ms, "casskop-sim running; Ctrl-C to stop");
    multi_casskop_e2e::wait::shutdown_signal()
        .await
        .context("waiting for Ctrl-C or SIGTERM")?;
    drop(simulator);
    tracing::info!("casskop-sim stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }
}
