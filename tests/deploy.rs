//! The deployment manifests under `deploy/`, checked against a real API server:
//!
//! - `kustomize build` of the base, the monitoring overlay and the site RBAC, and `helm template`
//!   of the chart (default values, the Go chart's `k8s.local`/`k8s.remote`, `watchNamespace`),
//!   every document server-side applied with `dryRun=All` (only the ServiceMonitor, whose CRD is
//!   absent, is expected not to be served);
//! - the properties that matter: pod hardening, probes, resources, arguments the real CLI accepts,
//!   a settings file the real loader accepts, RBAC rules exactly as listed, CRD copies identical
//!   to `crds/multicasskop.yaml`;
//! - the controller itself running as the management ServiceAccount of `deploy/kustomize`, with a
//!   second site held in a Secret made by `deploy/site-kubeconfig.sh` for the ServiceAccount of
//!   `deploy/site-rbac`: a ring is rolled out and deleted with nothing more than those grants.
//!
//! kustomize and helm come from `bash deploy/tools.sh` (built from source once, then cached); if
//! they cannot be built the tests fail and say so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use clap::Parser;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use multi_casskop::cli::{Cli, Command as CliCommand};
use multi_casskop::config::{Settings, SiteConfig as ControllerSite};
use multi_casskop::sites::SiteSource;
use multi_casskop_e2e::{CasskopCrd, SimConfig, Simulator, SiteConfig, Sites, crds, namespace};
use serde::Deserialize;
use serde_json::{Value, json};

const FIELD_MANAGER: &str = "multi-casskop-deploy-test";
const CHART: &str = "deploy/helm/multi-casskop";
/// Namespace of the kustomize base.
const CONTROLLER_NS: &str = "multi-casskop";
/// Namespace of the site RBAC.
const CASSANDRA_NS: &str = "cassandra";
const CONVERGE: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Tools, rendering, parsing

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Tools {
    kustomize: PathBuf,
    helm: PathBuf,
}

/// kustomize and helm from `deploy/tools.sh`; a failed build fails the test with its output.
fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("deploy/tools.sh"))
            .args(["kustomize", "helm"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run bash deploy/tools.sh: {e}"));
        assert!(
            out.status.success(),
            "bash deploy/tools.sh could not provide kustomize and helm ({}). They are built from \
             source with the local Go toolchain (GOTOOLCHAIN=local) and the Go module proxy; \
             without them the deployment manifests cannot be checked.\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let paths: Vec<PathBuf> = stdout.lines().map(PathBuf::from).collect();
        assert!(
            paths.len() == 2 && paths.iter().all(|p| p.is_file()),
            "deploy/tools.sh printed {stdout:?}, expected the kustomize and helm paths"
        );
        Tools {
            kustomize: paths[0].clone(),
            helm: paths[1].clone(),
        }
    })
}

/// Runs `cmd` (from the repository root), failing the test with its stderr.
fn output(cmd: &mut Command) -> String {
    let out = cmd
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Every non-empty YAML document of `text`.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("valid YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

fn kustomize(dir: &str) -> Vec<Value> {
    documents(&output(
        Command::new(&tools().kustomize).args(["build", dir]),
    ))
}

/// `helm template` of the chart with CRDs, for the API server's Kubernetes version.
fn helm_template(release: &str, ns: &str, kube_version: &str, extra: &[&str]) -> Vec<Value> {
    let mut cmd = Command::new(&tools().helm);
    cmd.args([
        "template",
        release,
        CHART,
        "--namespace",
        ns,
        "--include-crds",
    ])
    .args(["--kube-version", kube_version])
    .args(extra);
    documents(&output(&mut cmd))
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

fn ns(doc: &Value) -> Option<&str> {
    doc["metadata"]["namespace"].as_str()
}

/// The one document of `kind` named `name`.
fn one<'a>(docs: &'a [Value], kind_: &str, name_: &str) -> &'a Value {
    let found: Vec<_> = docs
        .iter()
        .filter(|d| kind(d) == kind_ && name(d) == name_)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one {kind_} {name_} in {}",
        inventory(docs)
    );
    found[0]
}

/// The one document of `kind`.
fn only<'a>(docs: &'a [Value], kind_: &str) -> &'a Value {
    let found: Vec<_> = docs.iter().filter(|d| kind(d) == kind_).collect();
    assert_eq!(found.len(), 1, "exactly one {kind_} in {}", inventory(docs));
    found[0]
}

fn inventory(docs: &[Value]) -> String {
    let items: Vec<String> = docs
        .iter()
        .map(|d| match ns(d) {
            Some(n) => format!("{} {n}/{}", kind(d), name(d)),
            None => format!("{} {}", kind(d), name(d)),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn kinds(docs: &[Value]) -> BTreeSet<String> {
    docs.iter().map(|d| kind(d).to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// The API server

/// One control plane for this test binary, with Orange's CassKop CRD (so CassandraClusters are
/// real at the site) and our MultiCasskop CRD.
fn deploy_layout() -> Vec<SiteConfig> {
    vec![SiteConfig::new("deploy").casskop_crd(CasskopCrd::Orange)]
}

async fn site() -> &'static Sites {
    multi_casskop_e2e::telemetry::init_for_tests();
    multi_casskop_e2e::shared::sites(deploy_layout)
        .await
        .expect("the test control plane starts")
}

/// An admin client with the MultiCasskop CRD installed and `namespaces` present.
async fn admin(namespaces: &[&str]) -> Client {
    let client = site()
        .await
        .get("deploy")
        .expect("site")
        .client()
        .await
        .expect("client");
    crds::install_crds(&client, &[repo().join("crds/multicasskop.yaml")])
        .await
        .expect("MultiCasskop CRD installs");
    for n in namespaces {
        namespace::create_namespace(&client, n)
            .await
            .expect("namespace");
    }
    client
}

/// `v1.35.x`: what `helm template --kube-version` should assume.
async fn kube_version(client: &Client) -> String {
    client
        .apiserver_version()
        .await
        .expect("server version")
        .git_version
}

fn gvk(doc: &Value) -> GroupVersionKind {
    let api_version = doc["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind(doc))
}

/// An Api for the document's kind and namespace, or why the kind is not served.
async fn api_for(client: &Client, doc: &Value) -> Result<Api<DynamicObject>, String> {
    let (resource, caps) = pinned_kind(client, &gvk(doc))
        .await
        .map_err(|e| format!("not served: {e}"))?;
    Ok(match caps.scope {
        Scope::Namespaced => {
            let n = ns(doc).unwrap_or_else(|| {
                panic!(
                    "namespaced {} {} names no namespace; every namespaced object should",
                    kind(doc),
                    name(doc)
                )
            });
            Api::namespaced_with(client.clone(), n, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    })
}

/// Server-side applies every document (dry run unless `for_real`). Documents of a kind in
/// `unserved` must be refused for not being served, and are skipped; anything else must apply.
async fn apply_all(client: &Client, docs: &[Value], for_real: bool, unserved: &[&str]) {
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.dry_run = !for_real;
    let mut failures = Vec::new();
    for doc in docs {
        let what = format!("{} {}", kind(doc), name(doc));
        let api = match api_for(client, doc).await {
            Ok(api) => api,
            Err(e) if unserved.contains(&kind(doc)) => {
                assert!(e.starts_with("not served"), "{what}: {e}");
                continue;
            }
            Err(e) => {
                failures.push(format!("{what}: {e}"));
                continue;
            }
        };
        assert!(
            !unserved.contains(&kind(doc)),
            "{what} was expected not to be served here"
        );
        let object: DynamicObject = serde_json::from_value(doc.clone()).expect("object");
        if let Err(e) = api.patch(name(doc), &params, &Patch::Apply(&object)).await {
            failures.push(format!("{what}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "the API server refused (dryRun={}):\n{}",
        !for_real,
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Properties

type Rules = BTreeMap<(String, String), BTreeSet<String>>;

/// The rules of a Role or ClusterRole as (group, resource) -> verbs; no wildcards, resource
/// names or non-resource URLs are allowed.
fn rules(role: &Value) -> Rules {
    let mut out = Rules::new();
    for rule in role["rules"].as_array().expect("rules") {
        assert!(
            rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none(),
            "{}: unexpected rule {rule}",
            name(role)
        );
        for group in rule["apiGroups"].as_array().expect("apiGroups") {
            for resource in rule["resources"].as_array().expect("resources") {
                let verbs = out
                    .entry((
                        group.as_str().expect("group").to_string(),
                        resource.as_str().expect("resource").to_string(),
                    ))
                    .or_default();
                for verb in rule["verbs"].as_array().expect("verbs") {
                    let verb = verb.as_str().expect("verb");
                    assert_ne!(verb, "*", "{}: wildcard verb", name(role));
                    verbs.insert(verb.to_string());
                }
            }
        }
    }
    out
}

fn expect_rules(entries: &[(&str, &str, &[&str])]) -> Rules {
    entries
        .iter()
        .map(|(g, r, verbs)| {
            (
                (g.to_string(), r.to_string()),
                verbs.iter().map(|v| v.to_string()).collect(),
            )
        })
        .collect()
}

const MULTICASSKOP_RULES: &[(&str, &str, &[&str])] = &[
    (
        "db.orange.com",
        "multicasskops",
        &["get", "list", "watch", "patch", "update"],
    ),
    (
        "db.orange.com",
        "multicasskops/status",
        &["get", "patch", "update"],
    ),
    ("db.orange.com", "multicasskops/finalizers", &["update"]),
    (
        "db.orange.com",
        "multicasskoptasks",
        &["get", "list", "watch", "delete"],
    ),
    (
        "db.orange.com",
        "multicasskoptasks/status",
        &["get", "patch", "update"],
    ),
    ("", "events", &["create", "patch"]),
    ("events.k8s.io", "events", &["create", "patch"]),
];

/// Reading CassandraClusters cluster-wide (the controller's watch by label).
const CASSANDRACLUSTER_READ_RULES: &[(&str, &str, &[&str])] = &[(
    "db.orange.com",
    "cassandraclusters",
    &["get", "list", "watch"],
)];

/// Writing CassandraClusters: only in namespaces where rings may write.
const CASSANDRACLUSTER_RULES: &[(&str, &str, &[&str])] = &[
    (
        "db.orange.com",
        "cassandraclusters",
        &[
            "get", "list", "watch", "create", "patch", "update", "delete",
        ],
    ),
    (
        "db.orange.com",
        "cassandraclusters/status",
        &["get", "patch", "update"],
    ),
];

/// Labelling pods at a site (pod operations: rebuild, remove, tasks).
const POD_LABEL_RULES: &[(&str, &str, &[&str])] = &[("", "pods", &["get", "list", "patch"])];

const CONTROLLER_NS_RULES: &[(&str, &str, &[&str])] = &[
    ("", "secrets", &["get", "list", "watch"]),
    (
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update", "patch"],
    ),
];

/// The binding named `name` of `kind` grants `role_kind` `name` to exactly `subject`.
fn assert_binding(
    docs: &[Value],
    kind_: &str,
    role_kind: &str,
    name_: &str,
    subject: (&str, &str),
) {
    let binding = one(docs, kind_, name_);
    assert_eq!(binding["roleRef"]["kind"], role_kind, "{kind_} {name_}");
    assert_eq!(binding["roleRef"]["name"], name_, "{kind_} {name_}");
    assert_eq!(
        binding["subjects"],
        json!([{ "kind": "ServiceAccount", "name": subject.0, "namespace": subject.1 }]),
        "{kind_} {name_}"
    );
}

/// Checks the Deployment and its settings ConfigMap; returns the parsed CLI arguments (with
/// `$(POD_NAMESPACE)` expanded) and the settings the real loader reads from the ConfigMap.
fn check_deployment(
    docs: &[Value],
    expected_image: &str,
) -> (multi_casskop::cli::RunArgs, Settings) {
    let deployment = only(docs, "Deployment");
    let namespace = ns(deployment).expect("namespace");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let selector = deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector");
    for (k, v) in selector {
        assert_eq!(&deployment["spec"]["template"]["metadata"]["labels"][k], v);
    }
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["image"], expected_image);
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(
        c["ports"],
        json!([{ "name": "http", "containerPort": 8080, "protocol": "TCP" }])
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({ "path": "/healthz", "port": "http" })
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({ "path": "/readyz", "port": "http" })
    );
    assert_eq!(
        c["resources"],
        json!({ "requests": { "cpu": "50m", "memory": "64Mi" }, "limits": { "cpu": "500m", "memory": "256Mi" } })
    );
    let env: BTreeMap<&str, &Value> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().expect("name"),
                &e["valueFrom"]["fieldRef"]["fieldPath"],
            )
        })
        .collect();
    assert_eq!(env["POD_NAME"], "metadata.name");
    assert_eq!(env["POD_NAMESPACE"], "metadata.namespace");

    // Service account.
    let sa = pod["serviceAccountName"]
        .as_str()
        .expect("serviceAccountName");
    assert_eq!(ns(one(docs, "ServiceAccount", sa)), Some(namespace));

    // Arguments, as the kubelet expands them, parsed by the real CLI.
    let args: Vec<String> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| {
            a.as_str()
                .expect("arg")
                .replace("$(POD_NAMESPACE)", namespace)
        })
        .collect();
    let cli = Cli::try_parse_from(std::iter::once("multi-casskop".to_string()).chain(args.clone()))
        .unwrap_or_else(|e| panic!("the CLI refuses the Deployment's args {args:?}: {e}"));
    let CliCommand::Run(run) = cli.command else {
        panic!("the Deployment does not run the controller: {args:?}")
    };
    assert_eq!(
        run.config.as_deref(),
        Some(Path::new("/etc/multi-casskop/settings.yaml"))
    );
    assert_eq!(run.secrets_namespace.as_deref(), Some(namespace));

    // The settings file: the ConfigMap mounted at /etc/multi-casskop, read by the real loader.
    let mount = c["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == "/etc/multi-casskop")
        .expect("settings mount");
    assert_eq!(mount["readOnly"], true);
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("settings volume");
    let config_map = one(
        docs,
        "ConfigMap",
        volume["configMap"]["name"].as_str().expect("a ConfigMap"),
    );
    assert_eq!(ns(config_map), Some(namespace));
    let text = config_map["data"]["settings.yaml"]
        .as_str()
        .expect("settings.yaml");
    let file = std::env::temp_dir().join(format!(
        "mc-deploy-settings-{}-{}.yaml",
        std::process::id(),
        namespace::unique_name("s")
    ));
    std::fs::write(&file, text).expect("write settings");
    let loaded = multi_casskop::config::load(Some(&file));
    std::fs::remove_file(&file).ok();
    let settings =
        loaded.unwrap_or_else(|e| panic!("the settings file does not load: {e}\n{text}"));
    settings.validate().expect("valid settings");
    assert_eq!(
        settings.secrets.label_selector,
        multi_casskop::labels::SITE_SECRET_LABEL
    );
    (run, settings)
}

/// The metrics Service selects the Deployment's pods on the `http` port and carries the
/// Prometheus scrape annotations.
fn check_metrics_service(docs: &[Value], name_: &str) {
    let service = one(docs, "Service", name_);
    let pod_labels = &only(docs, "Deployment")["spec"]["template"]["metadata"]["labels"];
    for (k, v) in service["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(&pod_labels[k], v, "Service selector {k}");
    }
    assert_eq!(
        service["spec"]["ports"],
        json!([{ "name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP" }])
    );
    let annotations = &service["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "8080");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
}

/// The ServiceMonitor scrapes the `http` port of exactly the metrics Service.
fn check_service_monitor(docs: &[Value], service_name: &str) {
    let monitor = only(docs, "ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    let service = one(docs, "Service", service_name);
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector")
    {
        assert_eq!(
            &service["metadata"]["labels"][k], v,
            "ServiceMonitor selector {k}"
        );
    }
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
}

/// `value` with every number as a float, so that `1` and `1.0` compare equal.
fn numbers_as_f64(value: Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_f64).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_f64(v)))
                .collect(),
        ),
        other => other,
    }
}

fn generated_crd() -> String {
    std::fs::read_to_string(repo().join("crds/multicasskop.yaml")).expect("crds/multicasskop.yaml")
}

/// Each CRD of `docs` with its generated counterpart, by name; every generated CRD
/// (MultiCasskop and MultiCasskopTask) is there, and no other.
fn crds_as_generated(docs: &[Value]) -> Vec<(&Value, Value)> {
    let generated = documents(&generated_crd());
    let rendered: Vec<&Value> = docs
        .iter()
        .filter(|d| kind(d) == "CustomResourceDefinition")
        .collect();
    let names = |v: Vec<&Value>| -> Vec<String> { v.iter().map(|d| name(d).to_string()).collect() };
    assert_eq!(
        names(rendered.clone()),
        names(generated.iter().collect()),
        "the CRDs installed are the generated ones"
    );
    rendered.into_iter().zip(generated).collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// The CRD copies kustomize and Helm need inside their roots are the generated one, byte for byte.
#[test]
fn crd_copies_are_the_generated_crd() {
    let generated = generated_crd();
    for copy in [
        "deploy/kustomize/crds/multicasskop.yaml",
        "deploy/helm/multi-casskop/crds/multicasskop.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join(copy)).expect(copy);
        assert!(
            text == generated,
            "{copy} differs from crds/multicasskop.yaml: run bash deploy/sync-crds.sh"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kustomize_base_applies_and_is_locked_down() {
    let docs = kustomize("deploy/kustomize");
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "CustomResourceDefinition",
            "Deployment",
            "Namespace",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
        .map(String::from)
        .into(),
        "{}",
        inventory(&docs)
    );
    for doc in &docs {
        if kind(doc) != "Namespace" && kind(doc) != "CustomResourceDefinition" {
            let cluster_scoped = kind(doc).starts_with("Cluster");
            assert_eq!(
                ns(doc).is_none(),
                cluster_scoped,
                "{} {}",
                kind(doc),
                name(doc)
            );
            if !cluster_scoped {
                assert_eq!(ns(doc), Some(CONTROLLER_NS));
            }
        }
    }
    for (crd, mut generated) in crds_as_generated(&docs) {
        generated["metadata"]["labels"] = crd["metadata"]["labels"].clone();
        // kustomize writes `minimum: 1.0` as `1`: compare numbers by value.
        assert!(
            numbers_as_f64(crd.clone()) == numbers_as_f64(generated),
            "the base installs the generated CRD {} (crds/multicasskop.yaml)",
            name(crd)
        );
    }

    let (run, settings) = check_deployment(&docs, "orangeopensource/multi-casskop:0.1.0");
    assert!(run.local.is_none() && run.remotes.is_empty());
    assert!(
        settings.sites.is_empty(),
        "sites come from Secrets by default"
    );
    assert_eq!(settings.namespace, None, "every namespace by default");
    check_metrics_service(&docs, "multi-casskop-metrics");

    assert_eq!(
        rules(one(&docs, "ClusterRole", "multi-casskop")),
        expect_rules(&[MULTICASSKOP_RULES, CASSANDRACLUSTER_READ_RULES].concat()),
        "CassandraClusters are only read cluster-wide; writes are granted per namespace"
    );
    assert_eq!(
        rules(one(&docs, "Role", "multi-casskop")),
        expect_rules(CONTROLLER_NS_RULES)
    );
    let sa = ("multi-casskop", CONTROLLER_NS);
    assert_binding(
        &docs,
        "ClusterRoleBinding",
        "ClusterRole",
        "multi-casskop",
        sa,
    );
    assert_binding(&docs, "RoleBinding", "Role", "multi-casskop", sa);

    let client = admin(&[CONTROLLER_NS]).await;
    apply_all(&client, &docs, false, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_overlay_adds_only_a_service_monitor() {
    let base = kustomize("deploy/kustomize");
    let docs = kustomize("deploy/overlays/monitoring");
    assert_eq!(docs.len(), base.len() + 1, "{}", inventory(&docs));
    for doc in &base {
        assert!(
            docs.contains(doc),
            "the overlay keeps {} {}",
            kind(doc),
            name(doc)
        );
    }
    check_service_monitor(&docs, "multi-casskop-metrics");
    assert_eq!(ns(only(&docs, "ServiceMonitor")), Some(CONTROLLER_NS));
    let client = admin(&[CONTROLLER_NS]).await;
    apply_all(&client, &docs, false, &["ServiceMonitor"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_rbac_grants_cassandraclusters_and_pod_labels_only() {
    let docs = kustomize("deploy/site-rbac");
    let strict = kustomize("deploy/site-rbac/namespaced");
    assert_eq!(
        kinds(&strict),
        ["Role", "RoleBinding", "ServiceAccount"]
            .map(String::from)
            .into()
    );
    for doc in &strict {
        assert!(
            docs.contains(doc),
            "the default keeps {} {}",
            kind(doc),
            name(doc)
        );
        assert_eq!(ns(doc), Some(CASSANDRA_NS));
    }
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "ServiceAccount"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        rules(one(&docs, "Role", "multi-casskop-site")),
        expect_rules(&[CASSANDRACLUSTER_RULES, POD_LABEL_RULES].concat()),
        "CassandraClusters, and pod labels for pod operations; no Secrets unless copies are used"
    );
    assert_eq!(
        rules(one(&docs, "ClusterRole", "multi-casskop-site")),
        expect_rules(&[(
            "db.orange.com",
            "cassandraclusters",
            &["get", "list", "watch"]
        )])
    );
    let sa = ("multi-casskop-site", CASSANDRA_NS);
    assert_binding(&docs, "RoleBinding", "Role", "multi-casskop-site", sa);
    assert_binding(
        &docs,
        "ClusterRoleBinding",
        "ClusterRole",
        "multi-casskop-site",
        sa,
    );

    let client = admin(&[CASSANDRA_NS]).await;
    apply_all(&client, &docs, false, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_chart_with_default_values() {
    output(Command::new(&tools().helm).args(["lint", "--strict", CHART]));
    // values.schema.json: wrong types and unknown keys (typos) are refused by helm itself.
    for bad in [
        "replicaCount=two",
        "replicas=2",
        "logFormat=xml",
        "image.pullPolicy=Sometimes",
    ] {
        let out = Command::new(&tools().helm)
            .args(["lint", "--strict", CHART, "--set", bad])
            .current_dir(repo())
            .output()
            .expect("helm runs");
        assert!(
            !out.status.success(),
            "helm lint accepted {bad}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let release_ns = namespace::unique_name("helm-default");
    let client = admin(&[&release_ns]).await;
    let version = kube_version(&client).await;
    let docs = helm_template("multi-casskop", &release_ns, &version, &[]);
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "CustomResourceDefinition",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
        .map(String::from)
        .into(),
        "{}",
        inventory(&docs)
    );
    for (crd, generated) in crds_as_generated(&docs) {
        assert!(
            crd == &generated,
            "the chart installs the generated CRD {} (crds/multicasskop.yaml) as is",
            name(crd)
        );
    }
    let (run, settings) = check_deployment(&docs, "orangeopensource/multi-casskop:0.1.0");
    assert!(run.local.is_none() && run.remotes.is_empty());
    assert!(settings.sites.is_empty());
    assert_eq!(settings.log_format, multi_casskop::config::LogFormat::Json);
    check_metrics_service(&docs, "multi-casskop-metrics");
    assert_eq!(
        rules(one(&docs, "ClusterRole", "multi-casskop")),
        expect_rules(&[MULTICASSKOP_RULES, CASSANDRACLUSTER_READ_RULES].concat()),
        "CassandraClusters are only read cluster-wide; writes are granted per namespace"
    );
    assert_eq!(
        rules(one(&docs, "Role", "multi-casskop")),
        expect_rules(CONTROLLER_NS_RULES)
    );
    let sa = ("multi-casskop", release_ns.as_str());
    assert_binding(
        &docs,
        "ClusterRoleBinding",
        "ClusterRole",
        "multi-casskop",
        sa,
    );
    assert_binding(&docs, "RoleBinding", "Role", "multi-casskop", sa);
    apply_all(&client, &docs, false, &[]).await;

    // The ServiceMonitor is opt-in, and the only addition.
    let monitored = helm_template(
        "multi-casskop",
        &release_ns,
        &version,
        &["--set", "serviceMonitor.enabled=true"],
    );
    assert_eq!(monitored.len(), docs.len() + 1);

    // The conventions users know from other charts: image.registry and commonLabels.
    let conventional = helm_template(
        "multi-casskop",
        &release_ns,
        &version,
        &[
            "--set",
            "image.registry=registry.example.com",
            "--set",
            "commonLabels.team=db",
        ],
    );
    check_deployment(
        &conventional,
        "registry.example.com/orangeopensource/multi-casskop:0.1.0",
    );
    for doc in conventional
        .iter()
        .filter(|d| kind(d) != "CustomResourceDefinition")
    {
        assert_eq!(
            doc["metadata"]["labels"]["team"],
            "db",
            "{} {}",
            kind(doc),
            name(doc)
        );
    }

    // Writing CassandraClusters: a Role per listed namespace, or cluster-wide only on request.
    let writes = helm_template(
        "multi-casskop",
        &release_ns,
        &version,
        &["--set", "rbac.cassandraClusterNamespaces={ring-a,ring-b}"],
    );
    for target in ["ring-a", "ring-b"] {
        let role = writes
            .iter()
            .find(|d| kind(d) == "Role" && ns(d) == Some(target))
            .unwrap_or_else(|| panic!("a Role in {target}: {}", inventory(&writes)));
        assert_eq!(name(role), "multi-casskop-cassandraclusters");
        assert_eq!(rules(role), expect_rules(CASSANDRACLUSTER_RULES));
        assert!(
            writes
                .iter()
                .any(|d| kind(d) == "RoleBinding" && ns(d) == Some(target)),
            "a RoleBinding in {target}"
        );
    }
    assert_eq!(writes.len(), docs.len() + 4);
    // Reading the sources of spec.copyToSites: get only, in each listed namespace.
    let copies = helm_template(
        "multi-casskop",
        &release_ns,
        &version,
        &["--set", "rbac.copySourceNamespaces={ring-a}"],
    );
    let role = one(&copies, "Role", "multi-casskop-copy-sources");
    assert_eq!(ns(role), Some("ring-a"));
    assert_eq!(
        rules(role),
        expect_rules(&[("", "secrets", &["get"]), ("", "configmaps", &["get"])])
    );
    assert_binding(
        &copies,
        "RoleBinding",
        "Role",
        "multi-casskop-copy-sources",
        ("multi-casskop", &release_ns),
    );
    assert_eq!(copies.len(), docs.len() + 2);
    let cluster_wide = helm_template(
        "multi-casskop",
        &release_ns,
        &version,
        &["--set", "rbac.clusterWideCassandraClusterWrites=true"],
    );
    assert_eq!(
        rules(one(&cluster_wide, "ClusterRole", "multi-casskop")),
        expect_rules(&[MULTICASSKOP_RULES, CASSANDRACLUSTER_RULES].concat())
    );
    check_service_monitor(&monitored, "multi-casskop-metrics");
    apply_all(&client, &monitored, false, &["ServiceMonitor"]).await;
}

/// The Go chart's values: `-l`/`-r` flags the CLI accepts, each remote's Secret mounted where
/// the controller looks for admiralty's imports; plus watchNamespace turning the MultiCasskop
/// rules into a Role there, and the Go chart's imagePullSecrets form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_chart_with_go_chart_values() {
    let release_ns = namespace::unique_name("helm-go");
    let watched = namespace::unique_name("helm-watched");
    let client = admin(&[&release_ns, &watched]).await;
    let version = kube_version(&client).await;
    let set_watch = format!("watchNamespace={watched}");
    let values = [
        "--set",
        "k8s.local=k8s-cluster1",
        "--set",
        "k8s.remote={k8s-cluster2,k8s-cluster3}",
        "--set",
        &set_watch,
        "--set",
        "image.tag=test",
        "--set",
        "imagePullSecrets.enabled=true",
        "--set",
        "imagePullSecrets.name=regcred",
        "--set",
        "logFormat=plain",
    ];
    let docs = helm_template("mc", &release_ns, &version, &values);

    // NOTES.txt renders (only `helm install` shows it; a client-side dry run needs the server's
    // version only).
    let kubeconfig = site().await.get("deploy").expect("site").kubeconfig_path();
    let install = output(
        Command::new(&tools().helm)
            .args(["install", "mc", CHART, "--namespace", &release_ns])
            .args([
                "--dry-run=client",
                "--kube-context",
                "deploy",
                "--kubeconfig",
            ])
            .arg(kubeconfig)
            .args(values),
    );
    let notes = install
        .split_once("NOTES:")
        .map(|n| n.1)
        .unwrap_or_default();
    for line in [
        "k8s-cluster1: this cluster (-l k8s-cluster1)",
        "k8s-cluster3: kubeconfig from Secret k8s-cluster3 (key `config`), mounted at /var/run/secrets/admiralty.io/serviceaccountimports/k8s-cluster3",
        "It reconciles the MultiCasskops of namespace helm-watched-",
    ] {
        assert!(notes.contains(line), "NOTES lack {line:?}:\n{notes}");
    }
    let (run, settings) = check_deployment(&docs, "orangeopensource/multi-casskop:test");
    assert_eq!(run.local.as_deref(), Some("k8s-cluster1"));
    assert_eq!(run.remotes, ["k8s-cluster2", "k8s-cluster3"]);
    assert_eq!(settings.namespace.as_deref(), Some(watched.as_str()));
    assert_eq!(settings.log_format, multi_casskop::config::LogFormat::Plain);
    let all = settings.with_flag_sites(run.local.as_deref(), &run.remotes, &run.sites);
    all.validate().expect("no duplicate sites");

    let pod = &only(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["imagePullSecrets"], json!([{ "name": "regcred" }]));
    let mounts = pod["containers"][0]["volumeMounts"]
        .as_array()
        .expect("mounts");
    let volumes = pod["volumes"].as_array().expect("volumes");
    for remote in ["k8s-cluster2", "k8s-cluster3"] {
        let path = format!("{}/{remote}", multi_casskop::config::ADMIRALTY_IMPORT_DIR);
        let mount = mounts
            .iter()
            .find(|m| m["mountPath"] == path.as_str())
            .unwrap_or_else(|| panic!("{remote}'s Secret is mounted at {path}"));
        assert_eq!(mount["readOnly"], true);
        let volume = volumes
            .iter()
            .find(|v| v["name"] == mount["name"])
            .expect("volume");
        assert_eq!(volume["secret"]["secretName"], remote);
    }

    // MultiCasskops, events and writing CassandraClusters: a Role in the watched namespace; the
    // ClusterRole only reads the local site's CassandraClusters (watched cluster-wide).
    assert_eq!(
        rules(one(&docs, "ClusterRole", "mc-multi-casskop")),
        expect_rules(CASSANDRACLUSTER_READ_RULES)
    );
    let watch_role = one(&docs, "Role", "mc-multi-casskop-watch");
    assert_eq!(ns(watch_role), Some(watched.as_str()));
    assert_eq!(
        rules(watch_role),
        expect_rules(&[MULTICASSKOP_RULES, CASSANDRACLUSTER_RULES].concat())
    );
    assert_eq!(
        rules(one(&docs, "Role", "mc-multi-casskop")),
        expect_rules(CONTROLLER_NS_RULES)
    );
    let sa = ("mc-multi-casskop", release_ns.as_str());
    assert_binding(&docs, "RoleBinding", "Role", "mc-multi-casskop-watch", sa);
    assert_binding(&docs, "RoleBinding", "Role", "mc-multi-casskop", sa);
    assert_binding(
        &docs,
        "ClusterRoleBinding",
        "ClusterRole",
        "mc-multi-casskop",
        sa,
    );
    apply_all(&client, &docs, false, &[]).await;
}

/// `deploy/site-kubeconfig.sh`: a kubeconfig (or the Secret holding one) for a ServiceAccount.
fn site_kubeconfig(
    admin_kubeconfig: &Path,
    site: &str,
    sa: &str,
    sa_ns: &str,
    secret: bool,
) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("deploy/site-kubeconfig.sh"))
        .arg("--kubeconfig")
        .arg(admin_kubeconfig)
        .args(["--context", "deploy", "--site", site])
        .args(["--service-account", sa, "--namespace", sa_ns])
        .args(["--secret-namespace", CONTROLLER_NS, "--duration", "1h"]);
    if !secret {
        cmd.arg("--kubeconfig-only");
    }
    output(&mut cmd)
}

async fn client_from(kubeconfig: &str) -> Client {
    let config = kube::config::Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .expect("client config");
    Client::try_from(config).expect("client")
}

fn is_forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(ref e)) if e.code == 403)
}

/// The controller, as the management ServiceAccount of `deploy/kustomize` (its RBAC applied for
/// real), with the management cluster as site `local` and a Secret-held site `remote` whose
/// kubeconfig `deploy/site-kubeconfig.sh` made for the ServiceAccount of `deploy/site-rbac`
/// (CassandraClusters in namespace `cassandra` only): a ring rolls out to both and is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_runs_with_exactly_these_grants() {
    let ring_ns = namespace::unique_name("deploy-ring");
    let admin = admin(&[CONTROLLER_NS, CASSANDRA_NS, &ring_ns]).await;
    let admin_kubeconfig = site()
        .await
        .get("deploy")
        .expect("site")
        .kubeconfig_path()
        .to_path_buf();

    // RBAC and ServiceAccounts for real, from the manifests.
    let identity = |d: &&Value| {
        [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "ClusterRole",
            "ClusterRoleBinding",
        ]
        .contains(&kind(d))
    };
    let management: Vec<Value> = kustomize("deploy/kustomize")
        .into_iter()
        .filter(|d| identity(&d))
        .collect();
    let site_rbac = kustomize("deploy/site-rbac");
    apply_all(&admin, &management, true, &[]).await;
    apply_all(&admin, &site_rbac, true, &[]).await;
    // Writing CassandraClusters in the ring's namespace of the management cluster (also a site):
    // granted for that namespace only, as `kubectl apply -k deploy/management-writes -n NS` does.
    let writes: Vec<Value> = kustomize("deploy/management-writes")
        .into_iter()
        .map(|mut d| {
            d["metadata"]["namespace"] = json!(ring_ns);
            d
        })
        .collect();

    // The management identity, and the remote site's Secret.
    let management_kubeconfig = site_kubeconfig(
        &admin_kubeconfig,
        "management",
        "multi-casskop",
        CONTROLLER_NS,
        false,
    );
    let kubeconfig_file = std::env::temp_dir().join(format!("{ring_ns}.kubeconfig"));
    std::fs::write(&kubeconfig_file, &management_kubeconfig).expect("write kubeconfig");
    let secret = documents(&site_kubeconfig(
        &admin_kubeconfig,
        "remote",
        "multi-casskop-site",
        CASSANDRA_NS,
        true,
    ));
    assert_eq!(secret.len(), 1);
    let secret = &secret[0];
    assert_eq!(
        secret["metadata"]["labels"][multi_casskop::labels::SITE_SECRET_LABEL],
        "remote"
    );
    assert!(secret["data"]["kubeconfig"].is_string());
    apply_all(&admin, std::slice::from_ref(secret), true, &[]).await;

    // Least privilege holds: the site identity writes only in `cassandra`, reads no Secrets;
    // the management identity reads Secrets only in its own namespace.
    let cc_resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("db.orange.com", "v2", "CassandraCluster"),
        "cassandraclusters",
    );
    let site_client = client_from(&site_kubeconfig(
        &admin_kubeconfig,
        "remote",
        "multi-casskop-site",
        CASSANDRA_NS,
        false,
    ))
    .await;
    let all_ccs: Api<DynamicObject> = Api::all_with(site_client.clone(), &cc_resource);
    all_ccs
        .list(&ListParams::default())
        .await
        .expect("the site identity lists CassandraClusters everywhere");
    let elsewhere: Api<DynamicObject> =
        Api::namespaced_with(site_client.clone(), &ring_ns, &cc_resource);
    assert!(
        is_forbidden(elsewhere.delete("x", &DeleteParams::default()).await),
        "no writes outside `cassandra`"
    );
    let site_secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(site_client, CASSANDRA_NS);
    assert!(
        is_forbidden(site_secrets.list(&ListParams::default()).await),
        "no Secrets at the site"
    );
    let management_client = client_from(&management_kubeconfig).await;
    let other_secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(management_client.clone(), &ring_ns);
    assert!(
        is_forbidden(other_secrets.list(&ListParams::default()).await),
        "Secrets of its own namespace only"
    );
    let ring_ccs: Api<DynamicObject> =
        Api::namespaced_with(management_client, &ring_ns, &cc_resource);
    assert!(
        is_forbidden(ring_ccs.delete("x", &DeleteParams::default()).await),
        "no CassandraCluster writes in the management cluster before a namespace is granted"
    );
    apply_all(&admin, &writes, true, &[]).await;

    // CassKop, simulated at both places, and the controller as the management ServiceAccount.
    let _sims = [
        Simulator::spawn(
            admin.clone(),
            SimConfig::default().namespace(ring_ns.clone()),
        ),
        Simulator::spawn(admin.clone(), SimConfig::default().namespace(CASSANDRA_NS)),
    ];
    let mut settings = Settings {
        namespace: Some(ring_ns.clone()),
        ..Default::default()
    };
    settings.management.kubeconfig = Some(kubeconfig_file.clone());
    settings
        .sites
        .push(ControllerSite::new("local", SiteSource::Management));
    settings.secrets.namespace = Some(CONTROLLER_NS.into());
    // The ring writes its remote site's CassandraCluster in `cassandra`: allowed by the
    // administrator's tenancy settings, not by the MultiCasskop alone.
    let settings = settings.with_allowed_namespaces(&[(ring_ns.clone(), CASSANDRA_NS.to_string())]);
    let controller = multi_casskop::run::start(settings)
        .await
        .expect("controller starts");

    let mc_resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("db.orange.com", "v2", "MultiCasskop"),
        "multicasskops",
    );
    let mcs: Api<DynamicObject> = Api::namespaced_with(admin.clone(), &ring_ns, &mc_resource);
    let ring: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "MultiCasskop",
        "metadata": { "name": "ring", "namespace": ring_ns },
        "spec": {
            "base": {
                "metadata": { "name": "cass" },
                "spec": { "nodesPerRacks": 1, "cassandraImage": "cassandra:3.11.9", "dataCapacity": "1Gi", "maxPodUnavailable": 1 }
            },
            "override": {
                "local": { "spec": { "topology": { "dc": [{ "name": "dc1", "rack": [{ "name": "rack1" }] }] } } },
                "remote": {
                    "metadata": { "namespace": CASSANDRA_NS },
                    "spec": { "topology": { "dc": [{ "name": "dc2", "rack": [{ "name": "rack1" }] }] } }
                }
            },
            "seeds": { "domains": { "local": "a.example", "remote": "b.example" } },
            "deleteCassandraCluster": true
        }
    }))
    .expect("MultiCasskop");
    mcs.patch(
        "ring",
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Apply(&ring),
    )
    .await
    .expect("MultiCasskop created");
    multi_casskop_e2e::wait::until("the ring Ready on both sites", CONVERGE, || {
        let mcs = mcs.clone();
        async move {
            let mc = mcs.get("ring").await.map_err(|e| e.to_string())?;
            let status = &mc.data["status"];
            if status["phase"] == "Ready" && status["readySites"] == "2/2" {
                Ok(())
            } else {
                Err(serde_json::to_string_pretty(status).unwrap_or_default())
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let cc_at = |n: &str| Api::<DynamicObject>::namespaced_with(admin.clone(), n, &cc_resource);
    for n in [ring_ns.as_str(), CASSANDRA_NS] {
        cc_at(n)
            .get("cass")
            .await
            .unwrap_or_else(|e| panic!("CassandraCluster in {n}: {e}"));
    }

    mcs.delete("ring", &DeleteParams::default())
        .await
        .expect("delete");
    multi_casskop_e2e::wait::until("the ring and its CassandraClusters gone", CONVERGE, || {
        let mcs = mcs.clone();
        let (local, remote) = (cc_at(&ring_ns), cc_at(CASSANDRA_NS));
        async move {
            let left = (
                mcs.get_opt("ring")
                    .await
                    .map_err(|e| e.to_string())?
                    .map(|m| m.data["status"].clone()),
                local
                    .get_opt("cass")
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some(),
                remote
                    .get_opt("cass")
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some(),
            );
            match left {
                (None, false, false) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    controller.stop().await;
    std::fs::remove_file(&kubeconfig_file).ok();
}
