//! The `multi-casskop` binary.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use multi_casskop::cli::{Cli, Command};
use multi_casskop::sites::SiteSource;
use multi_casskop::sites::connect::InsecureTls;
use multi_casskop::{config, crd, render, run, sites, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match crd::multicasskop_crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("cannot serialise the CRD: {e}")),
        },
        Command::Run(args) => run_controller(args),
        Command::Site {
            action,
            management_kubeconfig,
            management_context,
            secrets_namespace,
        } => site(
            action,
            management_kubeconfig,
            management_context,
            secrets_namespace,
        ),
        Command::Status {
            name,
            namespace,
            kubeconfig,
            context,
        } => show_status(name, namespace, kubeconfig, context),
        Command::Op {
            operation,
            ring,
            namespace,
            sites,
            source_dc,
            concurrency,
            retries,
            ttl,
            kubeconfig,
            context,
        } => {
            let request = multi_casskop::op::OpRequest {
                operation,
                ring,
                namespace,
                sites,
                source_dc,
                concurrency,
                retries,
                ttl,
            };
            op(request, kubeconfig, context)
        }
        Command::Render { file, sites } => {
            let name = file.display().to_string();
            let manifest = if name == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).map(|_| s)
            } else {
                std::fs::read_to_string(&file)
            };
            let manifest = match manifest {
                Ok(m) => m,
                Err(e) => return fail(&format!("cannot read {name}: {e}")),
            };
            match render::render(&name, &manifest, &sites) {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
    }
}

fn run_controller(args: multi_casskop::cli::RunArgs) -> ExitCode {
    let settings = match config::load(args.config.as_deref()) {
        Ok(s) => args.apply(s),
        Err(e) => return fail(&e.to_string()),
    };
    if let Err(e) = settings.validate() {
        return fail(&e.to_string());
    }
    if args.print_settings {
        return match serde_yaml::to_string(&settings) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("cannot print the settings: {e}")),
        };
    }
    telemetry::init(settings.log_format);
    for var in config::env::unrecognised(config::env::process_vars()) {
        tracing::warn!(%var, "environment variable sets no setting (see the README's settings table); ignored");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async move {
        match run::run(settings, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("cannot reach the management cluster: {e}")),
        }
    })
}

/// A client of the cluster that `kubeconfig` and `context` name (default: the default
/// connection), for the commands run by a person: their kubeconfig may skip TLS verification.
async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client, sites::connect::ConnectError> {
    SiteSource::kubeconfig(kubeconfig, context)
        .connect("management", None, None, InsecureTls::Allow)
        .await
}

fn site(
    action: multi_casskop::cli::SiteCommand,
    kubeconfig: Option<std::path::PathBuf>,
    context: Option<String>,
    secrets_namespace: String,
) -> ExitCode {
    use multi_casskop::cli::SiteCommand;
    use multi_casskop::site_admin;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async move {
        let management = match connect(kubeconfig.as_deref(), context.as_deref()).await {
            Ok(c) => c,
            Err(e) => return fail(&format!("cannot reach the management cluster: {e}")),
        };
        let result = match action {
            SiteCommand::Add { name, context, kubeconfig, namespace, token_hours, copy_secrets } => {
                let options = site_admin::AddOptions { site: name.clone(), kubeconfig, context, namespace, secrets_namespace: secrets_namespace.clone(), token_lifetime: std::time::Duration::from_secs(token_hours * 3600), copy_objects: copy_secrets };
                site_admin::add(&options, &management).await.map(|_| println!("site {name} added: Secret {secrets_namespace}/{} (a running controller picks it up now)", site_admin::secret_name(&name)))
            }
            SiteCommand::List => site_admin::list(&management, &secrets_namespace).await.map(|rows| print!("{}", site_admin::table(&rows))),
            SiteCommand::Remove { name, revoke, context, kubeconfig, namespace } => {
                let remote = match (revoke, &context) {
                    (true, Some(ctx)) => match connect(kubeconfig.as_deref(), Some(ctx)).await {
                        Ok(c) => Some(c),
                        Err(e) => return fail(&e.to_string()),
                    },
                    _ => None,
                };
                site_admin::remove(&management, &secrets_namespace, &name, remote.as_ref().map(|c| (c, namespace.as_str()))).await.map(|()| println!("site {name} removed"))
            }
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e.to_string()),
        }
    })
}

fn show_status(
    name: Option<String>,
    namespace: Option<String>,
    kubeconfig: Option<std::path::PathBuf>,
    context: Option<String>,
) -> ExitCode {
    use kube::Api;
    use multi_casskop::api::MultiCasskop;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async move {
        let client = match connect(kubeconfig.as_deref(), context.as_deref()).await {
            Ok(c) => c,
            Err(e) => return fail(&format!("cannot reach the management cluster: {e}")),
        };
        let api: Api<MultiCasskop> = match &namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        let list = match api.list(&Default::default()).await {
            Ok(l) => l.items,
            Err(e) => return fail(&format!("cannot list MultiCasskops: {e}")),
        };
        let selected: Vec<MultiCasskop> = list
            .into_iter()
            .filter(|mc| {
                name.as_ref()
                    .is_none_or(|n| mc.metadata.name.as_ref() == Some(n))
            })
            .collect();
        if selected.is_empty() {
            return fail("no MultiCasskop found");
        }
        print!("{}", multi_casskop::status_table::rings(&selected));
        for mc in &selected {
            println!(
                "\n{}/{}:",
                mc.metadata.namespace.clone().unwrap_or_default(),
                mc.metadata.name.clone().unwrap_or_default()
            );
            print!("{}", multi_casskop::status_table::sites(mc));
        }
        ExitCode::SUCCESS
    })
}

fn op(
    request: multi_casskop::op::OpRequest,
    kubeconfig: Option<std::path::PathBuf>,
    context: Option<String>,
) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async move {
        let client = match connect(kubeconfig.as_deref(), context.as_deref()).await {
            Ok(c) => c,
            Err(e) => return fail(&format!("cannot reach the management cluster: {e}")),
        };
        match multi_casskop::op::create(&client, &request).await {
            Ok(name) => {
                println!("{name}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        }
    })
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}

fn fail(message: &str) -> ExitCode {
    eprintln!("multi-casskop: {message}");
    ExitCode::FAILURE
}
