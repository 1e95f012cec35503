//! Controllers and fake nodes beside a site's API server, so that workloads really run there:
//! kube-controller-manager (StatefulSet, disruption, garbage-collector and node-lifecycle
//! controllers) and kube-scheduler from `kube-sitectl` (same Kubernetes version as the API
//! server), and kwok managing N fake nodes that it reports Ready and on which it moves pods to
//! Running/Ready without a kubelet.
//!
//! Each runs as its own guarded process (process group, parent-death signal) with the site's
//! admin kubeconfig, leader election off, its secure port on a free loopback port (for
//! `/healthz`) and its log in the site's state directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeSpec, NodeStatus, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::ObjectMeta;
use kube::{Api, Client};

/// Controllers kube-controller-manager runs by default: what StatefulSets, their pods,
/// PodDisruptionBudgets and cascading deletion need, plus node lifecycle (it lifts the
/// `node.kubernetes.io/not-ready` taint once a node is Ready) and pod GC (pods of deleted nodes).
pub const CONTROLLERS: &[&str] = &[
    "statefulset",
    "disruption",
    "garbagecollector",
    "nodelifecycle",
    "podgc",
];

/// Label every fake node carries, valued with the site name.
pub const NODE_SITE_LABEL: &str = "multicasskop.test/site";

/// Annotation kwok selects the nodes it manages by (`kwok.x-k8s.io/node=fake`).
pub const KWOK_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";

/// The taint admission puts on every new node until the node-lifecycle controller sees it Ready.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";

/// Zone label of the fake nodes.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// What runs beside a site's API server when it has workloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workloads {
    /// Number of fake nodes, named `<site>-node-<i>`.
    pub nodes: usize,
    /// Node `i` is in zone `zone-<i mod zones>` (label `topology.kubernetes.io/zone`).
    pub zones: usize,
    /// kube-controller-manager's `--controllers` (default [`CONTROLLERS`]). Without
    /// `nodelifecycle` the harness removes the not-ready taint from Ready nodes itself.
    pub controllers: Vec<String>,
}

impl Workloads {
    /// `nodes` fake nodes, each in a zone of its own, and the default controllers.
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            zones: nodes.max(1),
            controllers: CONTROLLERS.iter().map(|c| (*c).to_string()).collect(),
        }
    }

    /// Spreads the nodes round-robin over `zones` zones.
    #[must_use]
    pub fn zones(mut self, zones: usize) -> Self {
        self.zones = zones.max(1);
        self
    }

    /// Replaces kube-controller-manager's controller list.
    #[must_use]
    pub fn controllers<S: Into<String>>(
        mut self,
        controllers: impl IntoIterator<Item = S>,
    ) -> Self {
        self.controllers = controllers.into_iter().map(Into::into).collect();
        self
    }

    /// Whether kube-controller-manager runs `controller`.
    pub fn runs(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// Name of fake node `i` at `site`.
    pub fn node_name(site: &str, i: usize) -> String {
        format!("{site}-node-{i}")
    }

    /// Zone of fake node `i`.
    pub fn zone_of(&self, i: usize) -> String {
        format!("zone-{}", i % self.zones.max(1))
    }
}

/// One of the processes running beside the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// kube-controller-manager.
    ControllerManager,
    /// kube-scheduler.
    Scheduler,
    /// kwok.
    Kwok,
}

impl Component {
    /// All of them, in start order.
    pub const ALL: [Component; 3] = [
        Component::ControllerManager,
        Component::Scheduler,
        Component::Kwok,
    ];

    /// Short name, also the log file's stem.
    pub fn name(self) -> &'static str {
        match self {
            Component::ControllerManager => "controller-manager",
            Component::Scheduler => "scheduler",
            Component::Kwok => "kwok",
        }
    }

    /// Its log file in the site's state directory.
    pub fn log_path(self, state_dir: &Path) -> PathBuf {
        state_dir.join(format!("{}.log", self.name()))
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The binaries the components run from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binaries {
    pub(crate) sitectl: PathBuf,
    pub(crate) kwok: PathBuf,
}

/// Secure (health) ports of kube-controller-manager and kube-scheduler on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadPorts {
    /// kube-controller-manager's secure port.
    pub controller_manager: u16,
    /// kube-scheduler's secure port.
    pub scheduler: u16,
}

impl WorkloadPorts {
    /// The component's health port, if it serves one (kwok does not).
    pub fn of(&self, component: Component) -> Option<u16> {
        match component {
            Component::ControllerManager => Some(self.controller_manager),
            Component::Scheduler => Some(self.scheduler),
            Component::Kwok => None,
        }
    }
}

/// The command line of `component` (stdio not set).
pub(crate) fn command(
    component: Component,
    bins: &Binaries,
    workloads: &Workloads,
    state_dir: &Path,
    kubeconfig: &Path,
    ports: WorkloadPorts,
) -> Command {
    let kubeconfig = kubeconfig.display().to_string();
    let serving = |port: u16, certs: &str| {
        vec![
            // No --authentication/authorization-kubeconfig: the health endpoints are always
            // allowed anonymously, and the lookup would fail on the request-header CA this API
            // server does not configure (an error line per resync).
            format!("--kubeconfig={kubeconfig}"),
            "--leader-elect=false".to_string(),
            "--bind-address=127.0.0.1".to_string(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", state_dir.join(certs).display()),
        ]
    };
    match component {
        Component::ControllerManager => {
            let mut cmd = Command::new(&bins.sitectl);
            cmd.arg("controller-manager")
                .args(serving(
                    ports.controller_manager,
                    "controller-manager-certs",
                ))
                .arg(format!("--controllers={}", workloads.controllers.join(",")))
                // No cloud, no service-account tokens: the API server admits pods without them.
                .arg("--use-service-account-credentials=false");
            cmd
        }
        Component::Scheduler => {
            let mut cmd = Command::new(&bins.sitectl);
            cmd.arg("scheduler")
                .args(serving(ports.scheduler, "scheduler-certs"));
            cmd
        }
        Component::Kwok => {
            let mut cmd = Command::new(&bins.kwok);
            cmd.arg(format!("--kubeconfig={kubeconfig}"))
                .arg("--manage-all-nodes=false")
                .arg(format!(
                    "--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake"
                ))
                .arg("--node-lease-duration-seconds=40")
                .arg("--cidr=10.0.0.1/16")
                .arg("--node-ip=10.1.0.1")
                .arg("--server-address=");
            let stages = super::binary::kwok_stages(&bins.kwok);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&stages)
                .map(|dir| dir.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            files.sort();
            for file in files {
                cmd.arg("-c").arg(file);
            }
            cmd
        }
    }
}

/// Spawns `component` with its output appended to its log; returns the child and the log's
/// length before the start (for error tails).
pub(crate) fn spawn(
    component: Component,
    mut cmd: Command,
    state_dir: &Path,
) -> std::io::Result<(std::process::Child, u64)> {
    let log_path = component.log_path(state_dir);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let offset = log.metadata().map(|m| m.len()).unwrap_or(0);
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let child = super::process::spawn_guarded(cmd)?;
    Ok((child, offset))
}

/// Fake node `i` of `site`, as kwok expects it (annotation) and with zone labels.
pub(crate) fn node(site: &str, workloads: &Workloads, i: usize) -> Node {
    let name = Workloads::node_name(site, i);
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), "amd64".to_string()),
        (
            "node.kubernetes.io/instance-type".to_string(),
            "kwok".to_string(),
        ),
        (
            "topology.kubernetes.io/region".to_string(),
            site.to_string(),
        ),
        (ZONE_LABEL.to_string(), workloads.zone_of(i)),
        ("type".to_string(), "kwok".to_string()),
        (NODE_SITE_LABEL.to_string(), site.to_string()),
    ]);
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity("32".to_string())),
        ("memory".to_string(), Quantity("256Gi".to_string())),
        ("pods".to_string(), Quantity("110".to_string())),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                KWOK_NODE_ANNOTATION.to_string(),
                "fake".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            allocatable: Some(resources.clone()),
            capacity: Some(resources),
            ..NodeStatus::default()
        }),
    }
}

/// Creates the site's fake nodes that do not exist yet (they survive restarts in etcd).
pub(crate) async fn ensure_nodes(
    client: &Client,
    site: &str,
    workloads: &Workloads,
) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..workloads.nodes {
        let name = Workloads::node_name(site, i);
        if nodes.get_opt(&name).await?.is_none() {
            match nodes
                .create(&PostParams::default(), &node(site, workloads, i))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Namespace of the node leases kwok keeps renewed for its nodes.
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Deletes the node leases a previous kwok process held. kwok's holder identity is random per
/// process and it only takes over a lease once it expired, so a restarted kwok would leave the
/// nodes unmanaged (pods not moved to Running) for a lease duration; without the lease it
/// creates a fresh one at once.
pub(crate) async fn release_leases(
    client: &Client,
    site: &str,
    workloads: &Workloads,
) -> Result<(), kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    for i in 0..workloads.nodes {
        match leases
            .delete(&Workloads::node_name(site, i), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

/// Whether the site's nodes are all Ready and schedulable; `Err` says what is missing.
/// Removes the not-ready taint of Ready nodes itself when no node-lifecycle controller runs.
pub(crate) async fn nodes_ready(
    client: &Client,
    site: &str,
    workloads: &Workloads,
) -> Result<(), String> {
    let api: Api<Node> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels(&format!("{NODE_SITE_LABEL}={site}")))
        .await
        .map_err(|e| format!("listing nodes: {e}"))?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let mut waiting = Vec::new();
    for node in &list.items {
        let name = node.metadata.name.clone().unwrap_or_default();
        if !is_ready(node) {
            waiting.push(format!("{name} not Ready (kwok)"));
            continue;
        }
        // Leases are deleted before kwok starts: one that exists is this kwok's.
        let held = leases
            .get_opt(&name)
            .await
            .map_err(|e| format!("reading the lease of {name}: {e}"))?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .is_some();
        if !held {
            waiting.push(format!("{name}: no lease held by kwok yet"));
            continue;
        }
        if taints(node).iter().any(|t| t.key == NOT_READY_TAINT) {
            if workloads.runs("nodelifecycle") {
                waiting.push(format!(
                    "{name} still tainted {NOT_READY_TAINT} (node lifecycle)"
                ));
            } else {
                let kept: Vec<&Taint> = taints(node)
                    .iter()
                    .filter(|t| t.key != NOT_READY_TAINT)
                    .collect();
                let patch = serde_json::json!({"spec": {"taints": kept}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| format!("removing {NOT_READY_TAINT} from {name}: {e}"))?;
                waiting.push(format!("{name}: removed {NOT_READY_TAINT}"));
            }
        }
    }
    if list.items.len() < workloads.nodes {
        waiting.push(format!(
            "{} of {} nodes exist",
            list.items.len(),
            workloads.nodes
        ));
    }
    if waiting.is_empty() {
        Ok(())
    } else {
        Err(waiting.join("; "))
    }
}

/// A client for a component's health endpoint `https://127.0.0.1:port` (self-signed
/// certificate, anonymous). Building it does not connect.
pub(crate) fn health_client(port: u16) -> Result<Client, String> {
    let uri: http::Uri = format!("https://127.0.0.1:{port}")
        .parse()
        .map_err(|e| format!("bad health URL: {e}"))?;
    let mut config = kube::Config::new(uri);
    config.accept_invalid_certs = true;
    config.connect_timeout = Some(std::time::Duration::from_secs(2));
    config.read_timeout = Some(std::time::Duration::from_secs(5));
    Client::try_from(config).map_err(|e| format!("health client: {e}"))
}

/// Whether the component on `port` answers `ok` on `/healthz`. Asks only once the port
/// listens, so that a component still starting does not fill the log with connection errors.
pub(crate) async fn healthz(client: &Client, port: u16) -> Result<(), String> {
    if !super::ports::is_listening(port) {
        return Err(format!("port {port} not listening yet"));
    }
    let request = http::Request::get("/healthz")
        .body(Vec::new())
        .map_err(|e| format!("health request: {e}"))?;
    match client.request_text(request).await {
        Ok(body) if body.trim() == "ok" => Ok(()),
        Ok(body) => Err(format!("/healthz said {:?}", body.trim())),
        Err(e) => Err(format!("/healthz: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_spread_over_zones_and_carry_the_kwok_annotation() {
        let w = Workloads::new(4).zones(3);
        let zones: Vec<String> = (0..4).map(|i| w.zone_of(i)).collect();
        assert_eq!(zones, ["zone-0", "zone-1", "zone-2", "zone-0"]);
        let node = node("paris", &w, 3);
        assert_eq!(node.metadata.name.as_deref(), Some("paris-node-3"));
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels[ZONE_LABEL], "zone-0");
        assert_eq!(labels[NODE_SITE_LABEL], "paris");
        assert_eq!(
            node.metadata.annotations.unwrap()[KWOK_NODE_ANNOTATION],
            "fake"
        );
    }

    #[test]
    fn default_controllers_cover_statefulsets_and_garbage_collection() {
        let w = Workloads::new(1);
        for c in [
            "statefulset",
            "disruption",
            "garbagecollector",
            "nodelifecycle",
        ] {
            assert!(w.runs(c), "{c}");
        }
        assert!(!w.controllers(["statefulset"]).runs("garbagecollector"));
    }

    #[test]
    fn controller_manager_gets_the_controllers_and_no_leader_election() {
        let bins = Binaries {
            sitectl: "/bin/kube-sitectl".into(),
            kwok: "/cache/kwok".into(),
        };
        let ports = WorkloadPorts {
            controller_manager: 1001,
            scheduler: 1002,
        };
        let w = Workloads::new(2).controllers(["statefulset", "garbagecollector"]);
        let cmd = command(
            Component::ControllerManager,
            &bins,
            &w,
            Path::new("/state"),
            Path::new("/state/kubeconfig"),
            ports,
        );
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[0], "controller-manager");
        for expected in [
            "--controllers=statefulset,garbagecollector",
            "--leader-elect=false",
            "--secure-port=1001",
            "--kubeconfig=/state/kubeconfig",
            "--cert-dir=/state/controller-manager-certs",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
        }
    }
}
