//! `make demo`: three local sites on embedded test control planes, the CassKop simulator at
//! each, the controller, and the three-region sample, shown as it rolls out. Ctrl-C tears it
//! all down. `--exit-when-ready` ends the demo once the ring is Ready (used by the tests).
//! `--workloads` (`make demo DEMO_ARGS=--workloads`) gives every site kube-controller-manager,
//! kube-scheduler and three kwok nodes, and the simulator writes CassKop's real StatefulSets:
//! a line per rack shows its pods ready/desired as they appear.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use multi_casskop::api::MultiCasskop;
use multi_casskop::config::Settings;
use multi_casskop_e2e::{CasskopCrd, SimConfig, Simulator, SiteConfig, Sites, crds, namespace};

const SITES: [(&str, CasskopCrd); 3] = [
    ("eu-west", CasskopCrd::Orange),
    ("us-east", CasskopCrd::Cscetbon),
    ("ap-south", CasskopCrd::Orange),
];
const NAMESPACE: &str = "demo";
const SAMPLE: &str = "samples/multicasskop-three-regions.yaml";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn say(start: Instant, line: impl AsRef<str>) {
    println!(
        "[{:>6.1}s] {}",
        start.elapsed().as_secs_f64(),
        line.as_ref()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let exit_when_ready = std::env::args().any(|a| a == "--exit-when-ready");
    let workloads = std::env::args().any(|a| a == "--workloads");
    let start = Instant::now();
    say(
        start,
        "locating the test control-plane binary (kube-apiserver + etcd; the first build takes several minutes and reports progress)",
    );
    let configs = SITES
        .iter()
        .map(|(name, crd)| {
            let site = SiteConfig::new(*name)
                .kubeconfig(repo().join(format!("kubeconfigs/{name}.kubeconfig")))
                .casskop_crd(*crd);
            if workloads {
                site.with_workloads(3)
            } else {
                site
            }
        })
        .collect();
    if workloads {
        say(
            start,
            "with workloads: kube-controller-manager, kube-scheduler and 3 kwok nodes per site (kube-sitectl and kwok are built on first use)",
        );
    }
    let sites = Sites::start(configs).await?;
    say(
        start,
        format!(
            "three sites up in {:.1}s: {}",
            sites.started_in().as_secs_f64(),
            SITES.map(|s| s.0).join(", ")
        ),
    );
    sites.install_casskop_crds().await?;
    let mut clients = BTreeMap::new();
    let mut simulators = Vec::new();
    for (name, crd) in SITES {
        let client = sites
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("site {name} missing"))?
            .client()
            .await?;
        namespace::create_namespace(&client, NAMESPACE).await?;
        simulators.push(Simulator::spawn(
            client.clone(),
            SimConfig::default()
                .delay(Duration::from_millis(700))
                .real_workloads(workloads),
        ));
        say(
            start,
            format!(
                "{name}: CassKop CRD {crd:?} installed, CassKop simulator running, namespace {NAMESPACE} created"
            ),
        );
        clients.insert(name, client);
    }
    let management = clients["eu-west"].clone();
    crds::install_crds(&management, &[repo().join("crds/multicasskop.yaml")]).await?;
    say(
        start,
        "eu-west is also the management cluster: MultiCasskop CRD installed",
    );

    let mut kubeconfigs = Vec::new();
    for (name, _) in SITES {
        let site = sites
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("site {name} missing"))?;
        kubeconfigs.push((name, site.kubeconfig_path().to_path_buf()));
    }
    let settings = Settings::for_site_kubeconfigs(&kubeconfigs);
    let controller = multi_casskop::run::start(settings).await?;
    say(start, "multi-casskop controller running");

    let mut watchers: Vec<_> = SITES
        .iter()
        .map(|(name, _)| tokio::spawn(show_site(start, name, clients[name].clone())))
        .collect();
    if workloads {
        watchers.extend(
            SITES
                .iter()
                .map(|(name, _)| tokio::spawn(show_pods(start, name, clients[name].clone()))),
        );
    }
    let manifest: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join(SAMPLE))?)?;
    let mcs: Api<MultiCasskop> = Api::namespaced(management.clone(), NAMESPACE);
    mcs.patch(
        "orders",
        &PatchParams::apply("demo").force(),
        &Patch::Apply(&manifest),
    )
    .await?;
    say(
        start,
        format!(
            "applied {SAMPLE}: MultiCasskop demo/orders over eu-west, us-east, ap-south (rollout in that order)"
        ),
    );

    let ready_shown = follow(start, mcs, exit_when_ready).await;
    say(
        start,
        "stopping: controller, simulators, then the three control planes",
    );
    for w in watchers {
        w.abort();
    }
    controller.stop().await;
    drop(simulators);
    drop(clients);
    drop(management);
    sites.shutdown_blocking(Duration::from_secs(30));
    say(start, "done; nothing left running");
    if !ready_shown {
        anyhow::bail!("stopped before the ring was Ready");
    }
    Ok(())
}

/// Shows the ring's progress until Ctrl-C (or until Ready with `exit_when_ready`); returns whether it got Ready.
async fn follow(start: Instant, mcs: Api<MultiCasskop>, exit_when_ready: bool) -> bool {
    let mut ready_shown = false;
    let stream = watcher(mcs, watcher::Config::default());
    futures::pin_mut!(stream);
    let mut last_phase = String::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = stream.next() => {
                let Some(Ok(watcher::Event::Apply(mc) | watcher::Event::InitApply(mc))) = event else { continue };
                let status = mc.status.clone().unwrap_or_default();
                let phase = format!("{} {}", status.phase.clone().unwrap_or_default(), status.ready_sites.clone().unwrap_or_default());
                if phase != last_phase && status.phase.is_some() {
                    say(start, format!("MultiCasskop orders: {phase}"));
                    last_phase = phase;
                }
                if !ready_shown && status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True") && status.observed_generation == mc.metadata.generation {
                    ready_shown = true;
                    say(start, format!("the ring is Ready. Shared seed list ({} seeds, the same at every site):", status.seedlist.len()));
                    for seed in &status.seedlist {
                        println!("           {seed}");
                    }
                    println!("\n{}", multi_casskop::status_table::rings(std::slice::from_ref(&mc)));
                    println!("{}", multi_casskop::status_table::sites(&mc));
                    print_help();
                    if exit_when_ready {
                        break;
                    }
                }
            }
        }
    }
    ready_shown
}

/// Prints every change of the demo CassandraCluster at one site.
async fn show_site(start: Instant, site: &'static str, client: Client) {
    let api: Api<DynamicObject> = multi_casskop_e2e::cassandra::api(&client, NAMESPACE);
    let stream = watcher(api, watcher::Config::default());
    futures::pin_mut!(stream);
    let mut last = String::new();
    while let Some(event) = stream.next().await {
        if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = event {
            let get = |p: &str| {
                o.data
                    .pointer(p)
                    .and_then(|v| v.as_str())
                    .unwrap_or("-")
                    .to_string()
            };
            let seeds = o
                .data
                .pointer("/status/seedlist")
                .and_then(|v| v.as_array())
                .map_or(0, Vec::len);
            let line = format!(
                "{} {}/{} seeds={seeds}",
                get("/status/phase"),
                get("/status/lastClusterAction"),
                get("/status/lastClusterActionStatus")
            );
            if line != last {
                say(
                    start,
                    format!("  {site:<8} CassandraCluster {}: {line}", o.name_any()),
                );
                last = line;
            }
        }
    }
}

/// Prints a line per rack whenever its pods ready/desired change (sites with workloads).
async fn show_pods(start: Instant, site: &'static str, client: Client) {
    let api: Api<StatefulSet> = Api::namespaced(client, NAMESPACE);
    let stream = watcher(
        api,
        watcher::Config::default().labels("app=cassandracluster"),
    );
    futures::pin_mut!(stream);
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    while let Some(event) = stream.next().await {
        let sts = match event {
            Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => s,
            Ok(watcher::Event::Delete(s)) => {
                say(start, format!("  {site:<8} rack {}: deleted", s.name_any()));
                last.remove(&s.name_any());
                continue;
            }
            _ => continue,
        };
        let status = sts.status.clone().unwrap_or_default();
        let desired = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let image = sts
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let line = format!(
            "pods ready {}/{desired}, updated {}, image {image}",
            status.ready_replicas.unwrap_or(0),
            status.updated_replicas.unwrap_or(0)
        );
        if last.get(&sts.name_any()) != Some(&line) {
            say(
                start,
                format!("  {site:<8} rack {}: {line}", sts.name_any()),
            );
            last.insert(sts.name_any(), line);
        }
    }
}

fn print_help() {
    let kc = |s: &str| format!("kubeconfigs/{s}.kubeconfig");
    println!("Look around (the kubeconfigs stay valid while the demo runs):");
    println!(
        "  cargo run -q -- status --kubeconfig {} -n {NAMESPACE}",
        kc("eu-west")
    );
    println!("  cargo run -q -- render -f {SAMPLE}");
    println!(
        "  KUBECONFIG={} kubectl get multicasskops -n {NAMESPACE}          # kubectl 1.27+",
        kc("eu-west")
    );
    println!(
        "  KUBECONFIG={} kubectl get cassandraclusters -n {NAMESPACE} -o yaml",
        kc("us-east")
    );
    println!(
        "  KUBECONFIG={} kubectl get statefulsets,pods -n {NAMESPACE} -L dc-rack   # with --workloads",
        kc("ap-south")
    );
    println!("Press Ctrl-C to stop and tear everything down.");
}
