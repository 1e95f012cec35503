//! The `multi-casskop` binary.

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;
use multi_casskop::cli::{Cli, Command};
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
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let mut settings = settings.with_flag_sites(args.local.as_deref(), &args.remotes, &args.sites);
    if let Err(e) = settings.validate() {
        return fail(&e.to_string());
    }
    settings.namespace = args.namespace.or(settings.namespace);
    settings.secrets.namespace = args.secrets_namespace.or(settings.secrets.namespace);
    settings.management.kubeconfig = args.kubeconfig.or(settings.management.kubeconfig);
    settings.management.context = args.context.or(settings.management.context);
    settings.leader_election.enabled |= args.leader_elect;
    settings.leader_election.namespace = args
        .leader_election_namespace
        .or(settings.leader_election.namespace);
    settings.http_addr = settings.http_addr.or(Some(args.http_addr));
    settings.metrics_addr = args.metrics_addr.or(settings.metrics_addr);
    settings.allow_insecure_skip_tls_verify |= args.allow_insecure_skip_tls_verify;
    let settings = settings.with_allowed_namespaces(&args.allow_namespaces);
    telemetry::init(args.log_format.unwrap_or(settings.log_format));
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
        let management = match &kubeconfig {
            Some(path) => sites::connect::from_file(path, context.as_deref(), None, sites::connect::InsecureTls::Allow).await,
            None => sites::connect::default_client(None).await,
        };
        let management = match management {
            Ok(c) => c,
            Err(e) => return fail(&format!("cannot reach the management cluster: {e}")),
        };
        let result = match action {
            SiteCommand::Add { name, context, kubeconfig, namespace, token_hours } => {
                let options = site_admin::AddOptions { site: name.clone(), kubeconfig, context, namespace, secrets_namespace: secrets_namespace.clone(), token_lifetime: std::time::Duration::from_secs(token_hours * 3600) };
                site_admin::add(&options, &management).await.map(|_| println!("site {name} added: Secret {secrets_namespace}/{} (a running controller picks it up now)", site_admin::secret_name(&name)))
            }
            SiteCommand::List => site_admin::list(&management, &secrets_namespace).await.map(|rows| print!("{}", site_admin::table(&rows))),
            SiteCommand::Remove { name, revoke, context, kubeconfig, namespace } => {
                let remote = match (revoke, &context) {
                    (true, Some(ctx)) => {
                        let client = match &kubeconfig {
                            Some(path) => sites::connect::from_file(path, Some(ctx), None, sites::connect::InsecureTls::Allow).await,
                            None => match kube::config::Kubeconfig::read() {
                                Ok(kc) => sites::connect::from_yaml(&serde_yaml::to_string(&kc).unwrap_or_default(), Some(ctx), "the default kubeconfig", None, sites::connect::InsecureTls::Allow).await,
                                Err(e) => return fail(&format!("cannot read the default kubeconfig: {e}")),
                            },
                        };
                        match client {
                            Ok(c) => Some(c),
                            Err(e) => return fail(&e.to_string()),
                        }
                    }
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
        let client = match &kubeconfig {
            Some(path) => {
                sites::connect::from_file(
                    path,
                    context.as_deref(),
                    None,
                    sites::connect::InsecureTls::Allow,
                )
                .await
            }
            None => sites::connect::default_client(None).await,
        };
        let client = match client {
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
