//! Shared set-up of the controller's end-to-end tests: three real control planes (site-a also
//! serves as the management cluster), a CassKop simulator per site scoped to the test's own
//! namespace, and the controller running in-process for that namespace.

#![allow(dead_code)]

pub mod corpus;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use multi_casskop::api::MultiCasskop;
use multi_casskop::config::Settings;
use multi_casskop::run::{Running, start};
use multi_casskop_e2e::{SimConfig, Simulator, Sites, crds, namespace, shared};
use serde_json::{Value, json};

/// Sites of the shared layout, in rollout order.
pub const SITES: [&str; 3] = ["site-a", "site-b", "site-c"];
/// Generous deadline for anything to converge.
pub const CONVERGE: Duration = Duration::from_secs(60);

/// The sites of a test: the binary's shared set, or a set of its own (for tests that stop sites).
pub enum SitesRef {
    Shared(&'static Sites),
    Owned(Box<Sites>),
}

impl std::ops::Deref for SitesRef {
    type Target = Sites;
    fn deref(&self) -> &Sites {
        match self {
            SitesRef::Shared(s) => s,
            SitesRef::Owned(s) => s,
        }
    }
}

/// Starts three sites of this test's own, with the shared layout's CRDs.
pub async fn own_sites() -> SitesRef {
    start_own_sites(shared::casskop_layout()).await
}

/// [`own_sites`] with workloads: kube-controller-manager, kube-scheduler and kwok with `nodes`
/// fake nodes (one zone each) beside every API server, so real StatefulSets get pods. Pair with
/// `SimConfig::real_workloads(true)`.
pub async fn own_sites_with_workloads(nodes: usize) -> SitesRef {
    let layout = shared::casskop_layout()
        .into_iter()
        .map(|site| site.with_workloads(nodes))
        .collect();
    start_own_sites(layout).await
}

/// The shared layout plus `site-d` (cscetbon's CRD), started for one test alone.
pub async fn own_four_sites() -> SitesRef {
    let mut layout = shared::casskop_layout();
    layout.push(
        multi_casskop_e2e::SiteConfig::new("site-d")
            .casskop_crd(multi_casskop_e2e::crds::CasskopCrd::Cscetbon),
    );
    start_own_sites(layout).await
}

async fn start_own_sites(layout: Vec<multi_casskop_e2e::SiteConfig>) -> SitesRef {
    multi_casskop_e2e::telemetry::init_for_tests();
    let sites = Sites::start(layout).await.expect("own sites start");
    sites
        .install_casskop_crds()
        .await
        .expect("CassKop CRDs install");
    SitesRef::Owned(Box::new(sites))
}

/// One test's world. Fields drop in order: the controller and simulators (and their watches)
/// stop before the sites, so every API server shuts down without open connections.
pub struct Env {
    pub controller: Option<Running>,
    pub simulators: BTreeMap<String, Simulator>,
    pub clients: BTreeMap<String, Client>,
    pub management: Client,
    pub namespace: String,
    pub sites: SitesRef,
}

pub fn crd_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds/multicasskop.yaml")
}

/// Controller settings for every site of `sites` (the shared layout's [`SITES`], or more): site-a
/// is the management cluster's own connection.
pub fn settings(sites: &Sites, namespace: &str) -> Settings {
    let kubeconfigs: Vec<(&str, PathBuf)> = sites
        .iter()
        .map(|site| (site.name(), site.kubeconfig_path().to_path_buf()))
        .collect();
    Settings {
        namespace: Some(namespace.to_string()),
        ..Settings::for_site_kubeconfigs(&kubeconfigs)
    }
}

impl Env {
    /// Shared sites, a fresh namespace everywhere, simulators, and a running controller.
    pub async fn new(prefix: &str) -> Env {
        Self::with_sim(
            prefix,
            SimConfig::default().delay(Duration::from_millis(200)),
        )
        .await
    }

    pub async fn with_sim(prefix: &str, sim: SimConfig) -> Env {
        multi_casskop_e2e::telemetry::init_for_tests();
        let sites = SitesRef::Shared(
            shared::sites(shared::casskop_layout)
                .await
                .expect("shared sites start"),
        );
        Self::build(prefix, sites, sim, |s| s).await
    }

    /// A world on `sites`, with controller settings adjusted by `adjust`.
    pub async fn build(
        prefix: &str,
        sites: SitesRef,
        sim: SimConfig,
        adjust: impl FnOnce(Settings) -> Settings,
    ) -> Env {
        let ns = namespace::unique_name(prefix);
        let mut clients = BTreeMap::new();
        let mut simulators = BTreeMap::new();
        let names: Vec<String> = sites.iter().map(|s| s.name().to_string()).collect();
        for name in &names {
            let client = sites
                .get(name)
                .expect("site")
                .client()
                .await
                .expect("client");
            namespace::create_namespace(&client, &ns)
                .await
                .expect("namespace");
            simulators.insert(
                name.to_string(),
                Simulator::spawn(client.clone(), sim.clone().namespace(ns.clone())),
            );
            clients.insert(name.to_string(), client);
        }
        let management = clients["site-a"].clone();
        crds::install_crds(&management, &[crd_path()])
            .await
            .expect("MultiCasskop CRD installs");
        let controller = Some(
            start(adjust(settings(&sites, &ns)))
                .await
                .expect("controller starts"),
        );
        Env {
            sites,
            namespace: ns,
            management,
            clients,
            simulators,
            controller,
        }
    }

    pub fn mcs(&self) -> Api<MultiCasskop> {
        Api::namespaced(self.management.clone(), &self.namespace)
    }

    pub fn ccs(&self, site: &str) -> Api<DynamicObject> {
        multi_casskop_e2e::cassandra::api(&self.clients[site], &self.namespace)
    }

    pub async fn create(&self, manifest: Value) -> MultiCasskop {
        let mc: MultiCasskop = serde_json::from_value(manifest).expect("valid manifest");
        self.mcs()
            .create(&PostParams::default(), &mc)
            .await
            .expect("MultiCasskop created")
    }

    pub async fn patch_spec(&self, name: &str, patch: Value) {
        self.mcs()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": patch })),
            )
            .await
            .expect("MultiCasskop patched");
    }

    /// Waits until `probe` accepts the MultiCasskop, failing with its last status.
    pub async fn wait_mc(
        &self,
        name: &str,
        what: &str,
        probe: impl Fn(&MultiCasskop) -> bool,
    ) -> MultiCasskop {
        let api = self.mcs();
        multi_casskop_e2e::wait::until(what, CONVERGE, || {
            let api = api.clone();
            let probe = &probe;
            async move {
                match api.get_opt(name).await {
                    Ok(Some(mc)) if probe(&mc) => Ok(mc),
                    Ok(other) => Err(format!("{:#?}", other.and_then(|m| m.status))),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn wait_ready(&self, name: &str) -> MultiCasskop {
        self.wait_mc(name, "MultiCasskop Ready", is_ready).await
    }

    /// Waits until `probe` accepts the CassandraCluster `cass` at `site` (None = absent).
    pub async fn wait_cc(
        &self,
        site: &str,
        what: &str,
        probe: impl Fn(Option<&DynamicObject>) -> bool,
    ) -> Option<DynamicObject> {
        let api = self.ccs(site);
        multi_casskop_e2e::wait::until(format!("{site}: {what}"), CONVERGE, || {
            let api = api.clone();
            let probe = &probe;
            async move {
                match api.get_opt("cass").await {
                    Ok(o) if probe(o.as_ref()) => Ok(o),
                    Ok(o) => Err(format!(
                        "{:#?}",
                        o.map(|o| (o.data.get("spec").cloned(), o.data.get("status").cloned()))
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Records every version of `cass` seen at every site, with the time it was seen.
    pub fn record(&self) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tasks = SITES
            .iter()
            .map(|site| {
                let api = self.ccs(site);
                let seen = seen.clone();
                let site = site.to_string();
                tokio::spawn(async move {
                    let stream =
                        watcher(api, watcher::Config::default().fields("metadata.name=cass"))
                            .default_backoff();
                    futures::pin_mut!(stream);
                    while let Some(event) = stream.next().await {
                        if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = event {
                            seen.lock().expect("lock").push(Seen {
                                at: Instant::now(),
                                site: site.clone(),
                                object: o,
                            });
                        }
                    }
                })
            })
            .collect();
        Recorder { seen, tasks }
    }
}

impl Env {
    /// Stops the controller (gracefully) and starts a new one with the same settings.
    pub async fn restart_controller(&mut self, adjust: impl FnOnce(Settings) -> Settings) {
        if let Some(running) = self.controller.take() {
            running.stop().await;
        }
        self.controller = Some(
            start(adjust(settings(&self.sites, &self.namespace)))
                .await
                .expect("controller starts"),
        );
    }

    /// Writes of site CassandraClusters by the current controller.
    pub fn site_writes(&self) -> u64 {
        self.controller.as_ref().map_or(0, |c| {
            c.ctx.metrics.requests_where(|site, verb| {
                site != multi_casskop::run::MANAGEMENT && !multi_casskop::metrics::is_read(verb)
            })
        })
    }

    /// Write requests (any site, management included) by the current controller.
    pub fn all_writes(&self) -> u64 {
        self.controller.as_ref().map_or(0, |c| {
            c.ctx
                .metrics
                .requests(|verb| !multi_casskop::metrics::is_read(verb))
        })
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.controller.take();
    }
}

/// One version of a CassandraCluster seen at a site.
#[derive(Clone)]
pub struct Seen {
    pub at: Instant,
    pub site: String,
    pub object: DynamicObject,
}

pub struct Recorder {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Recorder {
    /// When `site` first showed a version accepted by `probe`.
    pub fn first(&self, site: &str, probe: impl Fn(&DynamicObject) -> bool) -> Option<Instant> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .find(|s| s.site == site && probe(&s.object))
            .map(|s| s.at)
    }
}

pub fn is_ready(mc: &MultiCasskop) -> bool {
    mc.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            && s.observed_generation == mc.metadata.generation
    })
}

pub fn condition<'a>(
    mc: &'a MultiCasskop,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    mc.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn site_state<'a>(
    mc: &'a MultiCasskop,
    site: &str,
) -> Option<&'a multi_casskop::api::SiteStatus> {
    mc.status.as_ref()?.sites.iter().find(|s| s.site == site)
}

pub fn spec_field<'a>(o: &'a DynamicObject, pointer: &str) -> Option<&'a Value> {
    o.data.pointer(pointer)
}

pub fn running_done(o: &DynamicObject) -> bool {
    o.data.pointer("/status/phase") == Some(&json!("Running"))
        && o.data.pointer("/status/lastClusterActionStatus") == Some(&json!("Done"))
}

pub fn seedlist(o: &DynamicObject) -> Vec<String> {
    o.data
        .pointer("/status/seedlist")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// A three-site ring: dc1 at site-a, dc2 at site-b, dc3 (two racks) at site-c.
pub fn ring(name: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "MultiCasskop",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "base": {
                "apiVersion": "db.orange.com/v2",
                "kind": "CassandraCluster",
                "metadata": { "name": "cass", "labels": { "app": "demo" } },
                "spec": { "nodesPerRacks": 1, "cassandraImage": "cassandra:3.11.9", "dataCapacity": "1Gi", "maxPodUnavailable": 1 }
            },
            "override": {
                "site-a": { "spec": { "topology": { "dc": [{ "name": "dc1", "rack": [{ "name": "rack1" }] }] } } },
                "site-b": { "spec": { "topology": { "dc": [{ "name": "dc2", "rack": [{ "name": "rack1" }] }] } } },
                "site-c": { "spec": { "topology": { "dc": [{ "name": "dc3", "rack": [{ "name": "rack1" }, { "name": "rack2" }] }] } } }
            },
            "seeds": { "domains": { "site-a": "a.example", "site-b": "b.example", "site-c": "c.example" } }
        }
    })
}

/// [`ring`] over site-a and site-b only.
pub fn two_site_ring(name: &str, namespace: &str) -> serde_json::Value {
    let mut m = ring(name, namespace);
    m["spec"]["override"] = json!({
        "site-a": { "spec": { "topology": { "dc": [{ "name": "dc1", "rack": [{ "name": "rack1" }] }] } } },
        "site-b": { "spec": { "topology": { "dc": [{ "name": "dc2", "rack": [{ "name": "rack1" }] }] } } }
    });
    m["spec"]["seeds"] = json!({ "domains": { "site-a": "a.example", "site-b": "b.example" } });
    m
}

/// [`ring`] whose clusters are deleted with it (`deleteCassandraCluster: true`).
pub fn deleting_ring(name: &str, namespace: &str) -> Value {
    let mut m = ring(name, namespace);
    m["spec"]["deleteCassandraCluster"] = json!(true);
    m
}

/// The seed list of [`ring`].
pub fn ring_seeds() -> Vec<String> {
    [
        "cass-dc1-rack1-0.a.example",
        "cass-dc2-rack1-0.b.example",
        "cass-dc3-rack1-0.c.example",
        "cass-dc3-rack2-0.c.example",
    ]
    .map(String::from)
    .to_vec()
}

pub fn names(objects: &[DynamicObject]) -> Vec<String> {
    objects.iter().map(|o| o.name_any()).collect()
}

impl Env {
    /// Stops a site's API server (an outage).
    pub async fn stop_site(&self, site: &str) {
        self.sites
            .get(site)
            .expect("site")
            .stop()
            .await
            .expect("site stops");
    }

    /// Starts a stopped site's API server again, with the same state and credentials.
    pub async fn start_site(&self, site: &str) {
        self.sites
            .get(site)
            .expect("site")
            .start()
            .await
            .expect("site restarts");
    }

    /// Creates `manifest` and waits until the MultiCasskop `name` is Ready.
    pub async fn create_ready(&self, manifest: Value) -> MultiCasskop {
        let name = manifest["metadata"]["name"]
            .as_str()
            .expect("manifest has a name")
            .to_string();
        self.create(manifest).await;
        self.wait_ready(&name).await
    }

    /// Waits until the MultiCasskop `name` reports its spec invalid.
    pub async fn wait_invalid(&self, name: &str, what: &str) -> MultiCasskop {
        self.wait_mc(name, what, |mc| {
            mc.status
                .as_ref()
                .is_some_and(|s| s.phase.as_deref() == Some("Invalid"))
        })
        .await
    }

    /// Waits until the MultiCasskop `name` no longer exists.
    pub async fn wait_gone(&self, name: &str) {
        let api = self.mcs();
        multi_casskop_e2e::wait::until(format!("MultiCasskop {name} gone"), CONVERGE, || {
            let api = api.clone();
            async move {
                match api.get_opt(name).await {
                    Ok(None) => Ok(()),
                    Ok(Some(mc)) => Err(format!("{:#?}", mc.status)),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Unix second of multi-casskop's last server-side apply of `o` (its managedFields entries, of
/// the object and of `/status`), as stamped by the site's API server.
pub fn our_apply_second(o: &DynamicObject) -> Option<i64> {
    o.metadata
        .managed_fields
        .as_ref()?
        .iter()
        .filter(|f| {
            f.manager.as_deref() == Some(multi_casskop::labels::SITE_FIELD_MANAGER)
                && f.operation.as_deref() == Some("Apply")
        })
        .filter_map(|f| f.time.as_ref().map(|t| t.0.as_second()))
        .max()
}

/// The earliest `startTime` and latest `endTime` (unix seconds) of CassKop's rack action `action`
/// in `o`'s status, as CassKop wrote them.
pub fn action_window(o: &DynamicObject, action: &str) -> Option<(i64, Option<i64>)> {
    let racks = o.data.pointer("/status/cassandraRackStatus")?.as_object()?;
    let second = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .map(|t| t.as_second())
    };
    let mut start: Option<i64> = None;
    let mut end: Option<i64> = None;
    let mut all_ended = true;
    for rack in racks.values() {
        let last = rack.get("cassandraLastAction")?;
        if last.get("name").and_then(Value::as_str) != Some(action) {
            return None;
        }
        // CassKop writes no startTime on Initializing: the object's creation starts it.
        let s = second(last.get("startTime")).or_else(|| {
            (action == "Initializing")
                .then(|| {
                    o.metadata
                        .creation_timestamp
                        .as_ref()
                        .map(|t| t.0.as_second())
                })
                .flatten()
        })?;
        start = Some(start.map_or(s, |x| x.min(s)));
        match second(last.get("endTime")) {
            Some(e) => end = Some(end.map_or(e, |x| x.max(e))),
            None => all_ended = false,
        }
    }
    Some((start?, if all_ended { end } else { None }))
}

impl Env {
    /// Checks from the objects' own state that each `(site, action)` started only after the
    /// previous one ended (CassKop's rack action times at each site, whole seconds), and that
    /// multi-casskop's last write of each site came after the previous site's action ended.
    /// Returns `(site, start, end, our write)` per site for the test's report.
    pub async fn assert_sequential(
        &self,
        steps: &[(&str, &str)],
    ) -> Vec<(String, i64, i64, Option<i64>)> {
        let mut windows = Vec::new();
        for (site, action) in steps {
            let cc = self.ccs(site).get("cass").await.expect("CassandraCluster");
            let (start, end) = action_window(&cc, action)
                .unwrap_or_else(|| panic!("{site}: no {action} in {:#?}", cc.data.get("status")));
            let end = end.unwrap_or_else(|| panic!("{site}: {action} has not ended"));
            windows.push((site.to_string(), start, end, our_apply_second(&cc)));
        }
        for (i, pair) in windows.windows(2).enumerate() {
            let (prev, _, prev_end, _) = &pair[0];
            let (next, next_start, _, next_write) = &pair[1];
            let action = steps[i + 1].1;
            assert!(
                next_start >= prev_end,
                "{action}: {next} started at {next_start} before {prev} ended at {prev_end}: {windows:?}"
            );
            assert!(
                next_write.is_some_and(|w| w >= *prev_end),
                "{action}: multi-casskop wrote {next} at {next_write:?} before {prev} ended at {prev_end}: {windows:?}"
            );
        }
        windows
    }
}

/// The field managers that wrote `o` (its managedFields), in order.
pub fn managers(o: &DynamicObject) -> Vec<String> {
    o.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|f| f.manager.clone())
        .collect()
}
