//! `casskop-sim`: runs the CassKop simulator against one site until SIGINT/SIGTERM.
//!
//! ```text
//! casskop-sim --kubeconfig kubeconfigs/site-1.kubeconfig [--context site-1] [--delay-ms 500]
//!     [--reaction-ms 1100] [--jolokia-down] [--keyspaces-in dc2] [--stuck | --error]
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
    /// Action duration: how long each action stays Ongoing, in milliseconds (traces: 20000).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Pause before the first write of a reconcile that updates a StatefulSet, in milliseconds
    /// (traces: 1100).
    #[arg(long, default_value_t = 0)]
    reaction_ms: u64,
    /// Jolokia does not answer: changes stay ToDo.
    #[arg(long)]
    jolokia_down: bool,
    /// Keyspaces replicate to this DC (scaling it to 0 is refused); repeatable.
    #[arg(long = "keyspaces-in")]
    keyspaces_in: Vec<String>,
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
        .delay(Duration::from_millis(args.delay_ms))
        .reaction(Duration::from_millis(args.reaction_ms))
        .jolokia_down(args.jolokia_down);
    sim_config.keyspaces = args.keyspaces_in.into_iter().collect();
    sim_config.namespace = args.namespace;
    let simulator = Simulator::spawn(client, sim_config);
    tracing::info!(kubeconfig = %args.kubeconfig.display(), context = ?args.context, ?mode, delay_ms = args.delay_ms, reaction_ms = args.reaction_ms, jolokia_down = args.jolokia_down, "casskop-sim running; Ctrl-C to stop");
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
