//! `make bench`: how fast multi-casskop converges, how far it scales and what it costs at rest,
//! on three local sites with an instant CassKop simulator. The controller runs as its own
//! release process so its memory (/proc VmHWM), CPU (/proc stat) and API requests (its
//! /metrics) are its own. Writes BENCHMARKS.md and BENCHMARKS.json.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use multi_casskop::api::MultiCasskop;
use multi_casskop_e2e::{CasskopCrd, SimConfig, Simulator, SiteConfig, Sites, crds, namespace};
use serde_json::{Value, json};

const SITES: [&str; 3] = ["site-a", "site-b", "site-c"];
const REPETITIONS: usize = 30;
const SCALE: usize = 1000;
const REST: Duration = Duration::from_secs(60);
const OUTAGE_REPETITIONS: usize = 10;
/// The controller's Lease (its default name).
const LEASE: &str = "multi-casskop";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A MultiCasskop over `sites`, its CassandraCluster named after it.
fn ring(name: &str, namespace: &str, sites: &[&str]) -> MultiCasskop {
    let overrides: serde_json::Map<String, Value> =
        sites.iter().enumerate().map(|(i, s)| (s.to_string(), json!({ "spec": { "topology": { "dc": [{ "name": format!("dc{}", i + 1), "rack": [{ "name": "r1" }] }] } } }))).collect();
    let domains: serde_json::Map<String, Value> = sites
        .iter()
        .map(|s| (s.to_string(), json!(format!("{s}.example"))))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "db.orange.com/v2", "kind": "MultiCasskop",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "base": { "metadata": { "name": name }, "spec": { "nodesPerRacks": 1, "cassandraImage": "cassandra:3.11.9", "dataCapacity": "1Gi" } },
            "override": overrides,
            "seeds": { "domains": domains }
        }
    }))
    .expect("valid MultiCasskop")
}

fn ready_generation(mc: &MultiCasskop) -> Option<i64> {
    let status = mc.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    (ready && status.observed_generation == mc.metadata.generation)
        .then_some(mc.metadata.generation.unwrap_or(0))
}

/// When each MultiCasskop generation first became Ready, and when each site's CassandraCluster
/// was first seen and first Running/Done, as watched from the benchmark.
#[derive(Default)]
struct Timeline {
    ready: HashMap<(String, i64), Instant>,
    seen: HashMap<(String, String), Instant>,
    cc_ready: HashMap<(String, String), Instant>,
}

fn watch_rings(
    api: Api<MultiCasskop>,
    timeline: Arc<Mutex<Timeline>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default());
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(watcher::Event::Apply(mc) | watcher::Event::InitApply(mc)) = event
                && let Some(generation) = ready_generation(&mc)
            {
                timeline
                    .lock()
                    .expect("lock")
                    .ready
                    .entry((mc.name_any(), generation))
                    .or_insert_with(Instant::now);
            }
        }
    })
}

fn watch_site(
    site: &'static str,
    api: Api<DynamicObject>,
    timeline: Arc<Mutex<Timeline>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default());
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = event {
                let now = Instant::now();
                let mut t = timeline.lock().expect("lock");
                t.seen.entry((o.name_any(), site.into())).or_insert(now);
                let done = o.data.pointer("/status/phase") == Some(&json!("Running"))
                    && o.data.pointer("/status/lastClusterActionStatus") == Some(&json!("Done"));
                if done {
                    t.cc_ready.entry((o.name_any(), site.into())).or_insert(now);
                }
            }
        }
    })
}

async fn wait_ready(
    timeline: &Arc<Mutex<Timeline>>,
    name: &str,
    generation: i64,
    timeout: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(at) = timeline
            .lock()
            .expect("lock")
            .ready
            .get(&(name.to_string(), generation))
        {
            return Ok(*at);
        }
        if Instant::now() > deadline {
            bail!("{name} generation {generation} not Ready within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[derive(Clone, Copy, Default, serde::Serialize)]
struct Stats {
    min: f64,
    median: f64,
    p95: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    if v.is_empty() {
        return Stats::default();
    }
    Stats {
        min: v[0],
        median: at(0.5),
        p95: at(0.95),
        max: v[v.len() - 1],
    }
}

/// CPU seconds (user + system) a process has used so far, from /proc.
fn cpu_seconds_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    ticks / hz
}

/// CPU seconds used so far by each process of the bench other than the controller: each site's
/// control plane (site-a's also serves the management cluster) and this process (the CassKop
/// simulators and the bench's own watchers).
fn other_processes_cpu(world: &World) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = SITES
        .iter()
        .filter_map(|s| {
            world
                .sites
                .get(s)
                .and_then(|site| site.pid())
                .map(|pid| (*s, pid))
        })
        .map(|(s, pid)| (format!("{s} control plane"), cpu_seconds_of(pid)))
        .collect();
    out.push((
        "bench + simulator".into(),
        cpu_seconds_of(std::process::id()),
    ));
    out
}

/// The controller under test, as a separate process.
struct Controller {
    child: Child,
    port: u16,
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Controller {
    fn start(sites: &Sites, namespace: &str) -> anyhow::Result<Self> {
        Self::start_with(sites, namespace, &[], &[])
    }

    /// The controller with extra arguments and environment (leader election).
    fn start_with(
        sites: &Sites,
        namespace: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let binary = exe
            .parent()
            .and_then(|p| p.parent())
            .map(|d| d.join("multi-casskop"))
            .context("target dir")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let kc = |s: &str| {
            sites
                .get(s)
                .map(|x| x.kubeconfig_path().display().to_string())
                .unwrap_or_default()
        };
        // `BENCH_CONTROLLER_WRAP="heaptrack -o /tmp/mc"`: run the controller under a profiler.
        // Its RSS is then the profiler's business; the figures are for the profile only.
        let wrap = std::env::var("BENCH_CONTROLLER_WRAP").unwrap_or_default();
        let mut wrap = wrap.split_whitespace();
        let mut command = match wrap.next() {
            Some(tool) => {
                let mut c = Command::new(tool);
                c.args(wrap).arg(&binary);
                c
            }
            None => Command::new(&binary),
        };
        let child = command
            .args([
                "run",
                "--kubeconfig",
                &kc("site-a"),
                "--context",
                "site-a",
                "-n",
                namespace,
                "-l",
                "site-a",
            ])
            .args([
                "--site",
                &format!("site-b={}:site-b", kc("site-b")),
                "--site",
                &format!("site-c={}:site-c", kc("site-c")),
            ])
            .args(["--http-addr", &format!("127.0.0.1:{port}")])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            // `BENCH_CONTROLLER_LOG=info`: the controller's log filter (default warn).
            .env(
                "RUST_LOG",
                std::env::var("BENCH_CONTROLLER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        Ok(Controller { child, port })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }

    fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(self.pid())
    }

    /// The API requests the controller sent, from its /metrics.
    async fn requests(&self) -> anyhow::Result<Requests> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        let mut requests = Requests {
            reconciles: text
                .lines()
                .filter(|l| l.starts_with("multicasskop_reconciles_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum(),
            ..Default::default()
        };
        for line in text
            .lines()
            .filter(|l| l.starts_with("multicasskop_api_requests_total{"))
        {
            let n: u64 = line
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let label = |key: &str| {
                line.split(&format!("{key}=\""))
                    .nth(1)
                    .and_then(|v| v.split('"').next())
                    .unwrap_or_default()
                    .to_string()
            };
            let (site, verb, resource) = (label("site"), label("verb"), label("resource"));
            if multi_casskop::metrics::is_read(&verb) {
                requests.reads += n;
                continue;
            }
            let kind = match (site.as_str(), resource.as_str()) {
                ("management", "multicasskops/status") => "status",
                ("management", "multicasskops") => "finalizer",
                (_, "events") => "event",
                (_, "leases") => "lease",
                (_, r) if r.starts_with("cassandraclusters") => "apply",
                _ => "",
            };
            // Anything else is named by where it went, so the report says what it is.
            let kind = if kind.is_empty() {
                format!("other ({verb} {resource} at {site})")
            } else {
                kind.to_string()
            };
            *requests.writes.entry(kind).or_default() += n;
        }
        Ok(requests)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for _ in 0..600 {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                let _ = s
                    .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .await;
                let mut text = String::new();
                let _ = s.read_to_string(&mut text).await;
                if text.starts_with("HTTP/1.1 200") {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("controller not ready")
    }
}

/// API requests of the controller: reads, and writes by kind (`apply` at sites, `status` and
/// `finalizer` of MultiCasskops, `event`, `lease`, `other`).
#[derive(Clone, Default)]
struct Requests {
    /// Reconciles run (all rings).
    reconciles: u64,
    reads: u64,
    writes: std::collections::BTreeMap<String, u64>,
}

impl Requests {
    fn total_writes(&self) -> u64 {
        self.writes.values().sum()
    }

    /// Writes by kind since `before`.
    fn writes_since(&self, before: &Requests) -> std::collections::BTreeMap<String, u64> {
        let mut out: std::collections::BTreeMap<String, u64> =
            ["apply", "status", "event", "finalizer"]
                .into_iter()
                .map(|k| (k.to_string(), 0))
                .collect();
        for (k, v) in &self.writes {
            let was = before.writes.get(k).copied().unwrap_or(0);
            if v > &was {
                *out.entry(k.clone()).or_default() += v - was;
            }
        }
        out
    }
}

struct World {
    sites: Sites,
    clients: HashMap<&'static str, Client>,
}

async fn world() -> anyhow::Result<World> {
    let configs = vec![
        SiteConfig::new("site-a").casskop_crd(CasskopCrd::Orange),
        SiteConfig::new("site-b").casskop_crd(CasskopCrd::Cscetbon),
        SiteConfig::new("site-c").casskop_crd(CasskopCrd::Orange),
    ];
    let sites = Sites::start(configs).await?;
    sites.install_casskop_crds().await?;
    let mut clients = HashMap::new();
    for s in SITES {
        let client = sites.get(s).context("site")?.client().await?;
        clients.insert(s, client);
    }
    crds::install_crds(&clients["site-a"], &[repo().join("crds/multicasskop.yaml")]).await?;
    Ok(World { sites, clients })
}

struct Phase {
    namespace: String,
    timeline: Arc<Mutex<Timeline>>,
    mcs: Api<MultiCasskop>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _simulators: Vec<Simulator>,
}

impl Drop for Phase {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A namespace of its own at every site, with a CassKop simulator (`sim`) watching it there.
async fn phase(world: &World, prefix: &str, sim: SimConfig) -> anyhow::Result<Phase> {
    let ns = namespace::unique_name(prefix);
    let mut simulators = Vec::new();
    for s in SITES {
        namespace::create_namespace(&world.clients[s], &ns).await?;
        simulators.push(Simulator::spawn(
            world.clients[s].clone(),
            sim.clone().namespace(ns.clone()),
        ));
    }
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let mcs: Api<MultiCasskop> = Api::namespaced(world.clients["site-a"].clone(), &ns);
    let mut tasks = vec![watch_rings(mcs.clone(), timeline.clone())];
    for s in SITES {
        tasks.push(watch_site(
            s,
            multi_casskop_e2e::cassandra::api(&world.clients[s], &ns),
            timeline.clone(),
        ));
    }
    Ok(Phase {
        namespace: ns,
        timeline,
        mcs,
        tasks,
        _simulators: simulators,
    })
}

/// Creates `n` rings one after the other and changes each one's image; returns (create ms, change ms, controller ms, simulator ms).
async fn latencies(
    p: &Phase,
    sites: &[&str],
    n: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>)> {
    let (mut create, mut change, mut ours, mut theirs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let name = format!("lat{i}");
        let t0 = Instant::now();
        p.mcs
            .create(&PostParams::default(), &ring(&name, &p.namespace, sites))
            .await?;
        let ready = wait_ready(&p.timeline, &name, 1, Duration::from_secs(60)).await?;
        create.push((ready - t0).as_secs_f64() * 1000.0);
        {
            let t = p.timeline.lock().expect("lock");
            let (mut controller, mut simulator, mut from) = (0.0, 0.0, t0);
            for s in sites {
                let key = (name.clone(), s.to_string());
                if let (Some(seen), Some(done)) = (t.seen.get(&key), t.cc_ready.get(&key)) {
                    controller += seen.saturating_duration_since(from).as_secs_f64() * 1000.0;
                    simulator += done.saturating_duration_since(*seen).as_secs_f64() * 1000.0;
                    from = *done;
                }
            }
            controller += ready.saturating_duration_since(from).as_secs_f64() * 1000.0;
            ours.push(controller);
            theirs.push(simulator);
        }
        let t1 = Instant::now();
        p.mcs.patch(&name, &PatchParams::default(), &Patch::Merge(json!({ "spec": { "base": { "spec": { "cassandraImage": "cassandra:3.11.10" } } } }))).await?;
        let ready = wait_ready(&p.timeline, &name, 2, Duration::from_secs(60)).await?;
        change.push((ready - t1).as_secs_f64() * 1000.0);
    }
    Ok((create, change, ours, theirs))
}

/// Which phases to run: `BENCH_PHASES` (comma-separated: latency, traced, scale, outage,
/// failover), all by default; empty: none (only BENCHMARKS.md is rewritten). Figures of phases
/// not run are kept from the previous BENCHMARKS.json.
fn phases() -> Vec<String> {
    std::env::var("BENCH_PHASES")
        .unwrap_or_else(|_| "latency,traced,scale,outage,failover".into())
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The CassKop step of the faithful simulator in the `traced` phase.
const TRACED_STEP: Duration = Duration::from_secs(2);
const TRACED_REPETITIONS: usize = 5;
/// Lease of the `failover` phase (the HA test's too).
const FAILOVER_LEASE_SECONDS: u64 = 4;
const FAILOVER_REPETITIONS: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    multi_casskop_e2e::telemetry::init();
    let phases = phases();
    let run = |p: &str| phases.iter().any(|x| x == p);
    if phases.is_empty() {
        // `BENCH_PHASES=`: only rewrite BENCHMARKS.md from BENCHMARKS.json.
        let text = std::fs::read_to_string(repo().join("BENCHMARKS.json"))?;
        let md = markdown(&serde_json::from_str(&text)?);
        std::fs::write(repo().join("BENCHMARKS.md"), &md)?;
        println!("{md}");
        return Ok(());
    }
    let world = world().await?;
    println!(
        "three sites up in {:.1}s",
        world.sites.started_in().as_secs_f64()
    );
    let mut report: Value = std::fs::read_to_string(repo().join("BENCHMARKS.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    report["machine"] = machine();

    // 1-2. Latency of create and change, one ring at a time.
    if run("latency") {
        let p = phase(&world, "latency", SimConfig::default()).await?;
        let controller = Controller::start(&world.sites, &p.namespace)?;
        controller.wait_ready().await?;
        let (create, change, ours, theirs) = latencies(&p, &SITES, REPETITIONS).await?;
        let (create_s, change_s) = (stats(create), stats(change));
        println!(
            "create latency ms {:?} (controller median {:.1}, simulator median {:.1})",
            create_s.median,
            stats(ours.clone()).median,
            stats(theirs.clone()).median
        );
        println!("change latency ms {:?}", change_s.median);
        report["create_latency_ms"] = json!(create_s);
        report["change_latency_ms"] = json!(change_s);
        report["create_split_ms"] = json!({ "controller_median": stats(ours).median, "simulator_median": stats(theirs).median });
    }

    // The same with the faithful simulator at a 2 s step: the cost of correct ordering.
    if run("traced") {
        let sim = SimConfig::traced().delay(TRACED_STEP);
        let p = phase(&world, "traced", sim.clone()).await?;
        let controller = Controller::start(&world.sites, &p.namespace)?;
        controller.wait_ready().await?;
        let (create, change, ours, theirs) = latencies(&p, &SITES, TRACED_REPETITIONS).await?;
        let (create_s, change_s) = (stats(create), stats(change));
        let floor = SITES.len() as f64 * TRACED_STEP.as_secs_f64() * 1000.0;
        println!(
            "traced: create median {:.0} ms, change median {:.0} ms (floor {floor:.0} ms)",
            create_s.median, change_s.median
        );
        report["traced"] = json!({
            "step_ms": TRACED_STEP.as_millis() as f64, "reaction_ms": sim.reaction.as_millis() as f64,
            "floor_ms": floor, "repetitions": TRACED_REPETITIONS,
            "create_latency_ms": create_s, "change_latency_ms": change_s,
            "create_split_ms": { "controller_median": stats(ours).median, "simulator_median": stats(theirs).median },
        });
    }

    // 3. Scale: many rings at once, then 4. rest: a minute with nothing to do.
    if run("scale") {
        let p = phase(&world, "scale", SimConfig::default()).await?;
        let controller = Controller::start(&world.sites, &p.namespace)?;
        controller.wait_ready().await?;
        let r0 = controller.requests().await?;
        let cpu0 = controller.cpu_seconds();
        let others0 = other_processes_cpu(&world);
        let t0 = Instant::now();
        let mcs = p.mcs.clone();
        let ns = p.namespace.clone();
        futures::stream::iter(0..SCALE)
            .map(|i| {
                let (mcs, ns) = (mcs.clone(), ns.clone());
                async move {
                    match mcs
                        .create(&PostParams::default(), &ring(&format!("s{i}"), &ns, &SITES))
                        .await
                    {
                        // A create answered late and sent again by the client: it is there.
                        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                        other => other.map(|_| ()),
                    }
                }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await?;
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            let ready = p
                .timeline
                .lock()
                .expect("lock")
                .ready
                .keys()
                .filter(|(n, g)| n.starts_with('s') && *g == 1)
                .count();
            if ready == SCALE {
                break;
            }
            if Instant::now() > deadline {
                bail!("only {ready} of {SCALE} rings Ready after 900 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let scale_seconds = t0.elapsed().as_secs_f64();
        // Writes that follow Ready (a debounced status, an Event) belong to the ring too.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let r1 = controller.requests().await?;
        let scale_cpu = controller.cpu_seconds() - cpu0;
        let mut by_process = serde_json::Map::new();
        for ((name, after), (_, before)) in other_processes_cpu(&world).into_iter().zip(&others0) {
            by_process.insert(name, json!(after - before));
        }
        by_process.insert("controller".into(), json!(scale_cpu));
        let scale_rss = controller.peak_rss_mib();
        let per_ring = |n: u64| n as f64 / SCALE as f64;
        let by_kind: serde_json::Map<String, Value> = r1
            .writes_since(&r0)
            .into_iter()
            .map(|(k, v)| (k, json!(per_ring(v))))
            .collect();
        println!(
            "scale: {SCALE} x 3 sites Ready in {scale_seconds:.1}s, peak RSS {scale_rss:.1} MiB, {scale_cpu:.1} CPU s, writes per ring {:.2} {by_kind:?}",
            per_ring(r1.total_writes() - r0.total_writes())
        );
        report["scale"] = json!({
            "multicasskops": SCALE, "sites": SITES.len(), "seconds_to_ready": scale_seconds, "peak_rss_mib": scale_rss,
            "cpu_seconds": scale_cpu,
            "cpu_seconds_per_1000_rings": scale_cpu * 1000.0 / SCALE as f64,
            "cpu_seconds_by_process": by_process,
            "reads_per_multicasskop": per_ring(r1.reads - r0.reads),
            "writes_per_multicasskop": per_ring(r1.total_writes() - r0.total_writes()),
            "writes_per_multicasskop_by_kind": by_kind,
        });

        let cpu2 = controller.cpu_seconds();
        tokio::time::sleep(REST).await;
        let r3 = controller.requests().await?;
        let rest_cpu = controller.cpu_seconds() - cpu2;
        let rest_writes = r3.total_writes() - r1.total_writes();
        let rest_requests = rest_writes + r3.reads - r1.reads;
        let rest_reconciles = r3.reconciles - r1.reconciles;
        println!(
            "rest: {rest_writes} writes, {rest_requests} requests, {rest_reconciles} reconciles, {rest_cpu:.2} CPU s in {}s",
            REST.as_secs()
        );
        report["rest"] = json!({ "seconds": REST.as_secs(), "writes": rest_writes, "requests": rest_requests, "reconciles": rest_reconciles, "cpu_seconds": rest_cpu });
    }

    // 5. Leader failover: SIGKILL the leader of two replicas; how long until the standby holds
    // the Lease, and until a ring created right after the kill is Ready.
    if run("failover") {
        let p = phase(&world, "failover", SimConfig::default()).await?;
        let (takeovers, readies) = failovers(&world, &p).await?;
        let (takeover, ready) = (stats(takeovers), stats(readies));
        println!(
            "failover: lease {FAILOVER_LEASE_SECONDS} s, takeover median {:.0} ms (max {:.0}), ring Ready after kill median {:.0} ms",
            takeover.median, takeover.max, ready.median
        );
        report["failover"] = json!({
            "lease_seconds": FAILOVER_LEASE_SECONDS, "repetitions": FAILOVER_REPETITIONS,
            "takeover_ms": takeover, "ring_ready_after_kill_ms": ready,
        });
    }

    // 6. Outage: site-c down; rings over site-a and site-b (last: it stops site-c).
    if run("outage") {
        let p = phase(&world, "outage", SimConfig::default()).await?;
        let controller = Controller::start(&world.sites, &p.namespace)?;
        controller.wait_ready().await?;
        world.sites.get("site-c").context("site-c")?.stop().await?;
        let (create_o, change_o, _, _) =
            latencies(&p, &["site-a", "site-b"], OUTAGE_REPETITIONS).await?;
        let (create_o, change_o) = (stats(create_o), stats(change_o));
        println!(
            "outage: create median {:.1} ms, change median {:.1} ms",
            create_o.median, change_o.median
        );
        report["outage"] = json!({ "create_latency_ms_median": create_o.median, "change_latency_ms_median": change_o.median });
    }

    std::fs::write(
        repo().join("BENCHMARKS.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    let md = markdown(&report);
    std::fs::write(repo().join("BENCHMARKS.md"), &md)?;
    println!("\n{md}");
    world.sites.shutdown_blocking(Duration::from_secs(30));
    Ok(())
}

/// Kills the leader of two replicas `FAILOVER_REPETITIONS` times (a fresh standby each time);
/// returns (ms until the standby holds the Lease, ms until a ring created after the kill is Ready).
async fn failovers(world: &World, p: &Phase) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let management = &world.clients["site-a"];
    let replica = |n: usize| {
        let name = format!("bench-replica-{n}");
        Controller::start_with(
            &world.sites,
            &p.namespace,
            &[
                "--leader-elect",
                "--leader-election-namespace",
                &p.namespace,
            ],
            &[
                ("POD_NAME", name.clone()),
                (
                    "MULTICASSKOP_LEADER_ELECTION__LEASE_DURATION_SECONDS",
                    FAILOVER_LEASE_SECONDS.to_string(),
                ),
            ],
        )
        .map(|c| (name, c))
    };
    let mut replicas = vec![replica(0)?, replica(1)?];
    let (mut takeovers, mut readies) = (Vec::new(), Vec::new());
    for round in 0..FAILOVER_REPETITIONS {
        let deadline = Instant::now() + Duration::from_secs(60);
        let leader = loop {
            if let Some(h) = multi_casskop_e2e::lease::holder(management, &p.namespace, LEASE).await
                && replicas.iter().any(|(n, _)| *n == h)
            {
                break h;
            }
            if Instant::now() > deadline {
                bail!("no replica holds the Lease");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        for (_, c) in &replicas {
            c.wait_ready().await?;
        }
        // The leader works: a ring becomes Ready.
        let warm = format!("f{round}a");
        p.mcs
            .create(&PostParams::default(), &ring(&warm, &p.namespace, &SITES))
            .await?;
        wait_ready(&p.timeline, &warm, 1, Duration::from_secs(60)).await?;
        let index = replicas
            .iter()
            .position(|(n, _)| *n == leader)
            .context("leader")?;
        let (_, mut dead) = replicas.remove(index);
        let killed = Instant::now();
        dead.child.kill()?; // SIGKILL: the Lease is not released
        let _ = dead.child.wait();
        let name = format!("f{round}b");
        p.mcs
            .create(&PostParams::default(), &ring(&name, &p.namespace, &SITES))
            .await?;
        let standby = replicas[0].0.clone();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if multi_casskop_e2e::lease::holder(management, &p.namespace, LEASE)
                .await
                .as_deref()
                == Some(standby.as_str())
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("{standby} did not take the Lease over");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        takeovers.push(killed.elapsed().as_secs_f64() * 1000.0);
        let ready = wait_ready(&p.timeline, &name, 1, Duration::from_secs(120)).await?;
        readies.push((ready - killed).as_secs_f64() * 1000.0);
        replicas.push(replica(2 + round)?);
    }
    Ok((takeovers, readies))
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    json!({ "cpu": model, "cores": std::thread::available_parallelism().map(usize::from).unwrap_or(0), "memory_gib": (mem_kib / 1024.0 / 1024.0).round(), "kubernetes": "kube-apiserver 1.35.4 (embedded etcd), one per site, on 127.0.0.1" })
}

/// `key value, key value` from the JSON object at `pointer`, values with `decimals` decimals.
fn listed(r: &Value, pointer: &str, decimals: usize) -> Option<String> {
    r.pointer(pointer).and_then(Value::as_object).map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k} {:.decimals$}", v.as_f64().unwrap_or(f64::NAN)))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn markdown(r: &Value) -> String {
    let f = |p: &str| r.pointer(p).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let kinds = listed(r, "/scale/writes_per_multicasskop_by_kind", 2).unwrap_or_default();
    let by_process =
        listed(r, "/scale/cpu_seconds_by_process", 0).unwrap_or_else(|| "not measured".into());
    let mut md = format!(
        "# Benchmarks\n\nProduced by `make bench` (`BENCH_PHASES=scale,failover make bench` runs some phases and keeps the other figures) on {} ({} cores, {} GiB), sites: {}. CassKop simulator with no delay unless said.\n\
Goals from the project: create median <= 300 ms; 1,000 x 3 sites Ready within 60 s with at most 8 API writes per ring and peak RSS <= 64 MiB; zero writes at rest; one site down changes nothing for the others; leader failover within the lease duration + 1 s.\n\n\
The machine is shared: wall-clock figures (latencies, seconds to Ready) are noisy; counts (writes per ring by kind), peak RSS and CPU seconds are the reliable figures.\n\n\
| measure | min | median | p95 | max |\n| --- | --- | --- | --- | --- |\n\
| create latency, 3 sites (ms) | {:.1} | {:.1} | {:.1} | {:.1} |\n\
| change latency, 3 sites (ms) | {:.1} | {:.1} | {:.1} | {:.1} |\n\n\
Create latency split (medians): controller {:.1} ms, waiting for the simulator {:.1} ms.\n\n\
| faithful simulator, {:.0} ms step ({:.0} ms reaction), 3 sites | median (ms) | max (ms) |\n| --- | --- | --- |\n\
| create | {:.0} | {:.0} |\n| change | {:.0} | {:.0} |\n\n\
Floor: {:.0} ms to create (one step per site, in order), {:.0} ms to change (CassKop's reaction before each update too). Create split (medians): controller {:.0} ms, waiting for the simulator {:.0} ms.\n\n\
| scale: {} MultiCasskops x {} sites | value |\n| --- | --- |\n\
| seconds to all Ready | {:.1} |\n| controller peak RSS (MiB) | {:.1} |\n| controller CPU seconds | {:.1} |\n\
| controller CPU seconds per 1,000 rings | {:.1} |\n\
| CPU seconds by process (control plane = API server + etcd; site-a's also serves the management cluster) | {} |\n\
| API reads per MultiCasskop | {:.1} |\n| API writes per MultiCasskop | {:.2} |\n| writes per MultiCasskop by kind | {} |\n\n\
| rest ({} s after convergence) | value |\n| --- | --- |\n| writes | {} |\n| requests | {} |\n| reconciles | {} |\n| CPU seconds | {:.2} |\n\n\
| leader failover ({} s lease, SIGKILL, {} times) | median (ms) | max (ms) |\n| --- | --- | --- |\n\
| standby holds the Lease | {:.0} | {:.0} |\n| a ring created after the kill is Ready | {:.0} | {:.0} |\n\n\
| site-c down: rings over site-a and site-b | median (ms) |\n| --- | --- |\n| create | {:.1} |\n| change | {:.1} |\n",
        r.pointer("/machine/cpu")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        r.pointer("/machine/cores")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        r.pointer("/machine/memory_gib")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        r.pointer("/machine/kubernetes")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        f("/create_latency_ms/min"),
        f("/create_latency_ms/median"),
        f("/create_latency_ms/p95"),
        f("/create_latency_ms/max"),
        f("/change_latency_ms/min"),
        f("/change_latency_ms/median"),
        f("/change_latency_ms/p95"),
        f("/change_latency_ms/max"),
        f("/create_split_ms/controller_median"),
        f("/create_split_ms/simulator_median"),
        f("/traced/step_ms"),
        f("/traced/reaction_ms"),
        f("/traced/create_latency_ms/median"),
        f("/traced/create_latency_ms/max"),
        f("/traced/change_latency_ms/median"),
        f("/traced/change_latency_ms/max"),
        f("/traced/floor_ms"),
        3.0 * (f("/traced/step_ms") + f("/traced/reaction_ms")),
        f("/traced/create_split_ms/controller_median"),
        f("/traced/create_split_ms/simulator_median"),
        f("/scale/multicasskops"),
        f("/scale/sites"),
        f("/scale/seconds_to_ready"),
        f("/scale/peak_rss_mib"),
        f("/scale/cpu_seconds"),
        f("/scale/cpu_seconds_per_1000_rings"),
        by_process,
        f("/scale/reads_per_multicasskop"),
        f("/scale/writes_per_multicasskop"),
        kinds,
        f("/rest/seconds"),
        f("/rest/writes"),
        f("/rest/requests"),
        r.pointer("/rest/reconciles")
            .and_then(Value::as_u64)
            .map_or_else(|| "not measured".into(), |n| n.to_string()),
        f("/rest/cpu_seconds"),
        f("/failover/lease_seconds"),
        f("/failover/repetitions"),
        f("/failover/takeover_ms/median"),
        f("/failover/takeover_ms/max"),
        f("/failover/ring_ready_after_kill_ms/median"),
        f("/failover/ring_ready_after_kill_ms/max"),
        f("/outage/create_latency_ms_median"),
        f("/outage/change_latency_ms_median"),
    );
    md.push('\n');
    md.push_str(ANALYSIS);
    md
}

/// What dominates each figure and what changed (kept with the code that measures it).
const ANALYSIS: &str = "## What dominates each figure, and what changed\n\n\
- **Writes per ring** (goal <= 8; 22.5 before: 4 applies, ~6 Events, the finalizer, ~11 status writes). \
The floor of a 3-site create is 8 when every site serves the Orange CRD: 3 site writes, the finalizer \
(the status subresource ignores metadata, so it cannot ride on a status write) and 4 status writes, one \
with each site write and the Ready one. Each site write is recorded in status (`lastWrite`, the site's \
`uid`) before the next step, because a new leader needs both to judge readiness and ownership after a \
failover; those are never held back. This bench's site-b serves the cscetbon CRD, whose status \
subresource makes the seed list a second write there: 9. Above the floor: detail of sites that stay \
busy longer than the debounce, and retries when an overloaded API server times out. Changed: Normal \
Events (`Created`, `Updated`, `SiteReady`) are gone \
(progress is in the status and the logs; Warnings stay, once per message); CassKop's intermediate \
detail (phase, action, messages, ready count, confirmations) waits up to 10 s (`STATUS_DEBOUNCE`) and is \
carried by the next urgent write (src/core/status_urgency.rs, src/controller/coalesce.rs); each reconcile \
starts from the newest status (ours while the watch still shows an older copy: before, a lagging watch made \
every reconcile recompute `progressingSince` and transition times from now and write again); the finalizer patch is followed by \
the reconcile in the same pass and never re-sent from a stale copy.\n\
- **Seconds to all Ready** (goal 60 s, not met on this machine): the CPU of the API servers. The \
scale table's CPU seconds by process add up to two cores for the whole run, and the control planes \
use most of it. The run committed here: site-a 115 s (it also serves the management cluster), site-b \
77 s, site-c 43 s, the simulator and the bench's watchers 23 s, the controller 18 s, for 139 s of \
wall time. site-c is a plain site (Orange CRD): our one apply and the simulated CassKop's status \
writes cost it 43 s per 1,000 rings, so site-a's management share is about 70 s, and site-b's \
status-subresource CRD about 30 s more. The sites alone, even with a controller and a management \
cluster that cost nothing, need (43 + 77 + 43 + 23) / 2 = 93 s of this machine's two cores. A CPU \
profile of site-a's control plane during the run (`KUBE_CONTROLPLANE_PROFILING=1` serves \
/debug/pprof) shows where: updates 38% (mostly decoding the stored object and the schema coercion \
of custom resources), the watch's decoding of etcd events 13%, garbage collection about 30%; \
server-side apply's own field tracking is about 3%. The same code took 139 s to 330 s on this \
machine today: in slow runs site-a's control plane used 279 CPU seconds instead of 115 for the same \
writes, and the controller's writes barely move (9.0-9.6 per ring) while its CPU doubles (17-33 s) \
and about 9,000 reconciles still follow in the minute after the last ring is Ready (see At rest). Bounded reconciles help: with no bound \
(`RECONCILE_CONCURRENCY` 0) a run took 202 s, wrote 10.2 times per ring and peaked at 129 MiB.\n\
- **Create and change latency** (goal 300 ms, not met with an instant simulator): one second of it is \
the readiness rule's `STATUS_SETTLE` at site-b. On the cscetbon CRD CassKop writes its annotation and \
then its status 1-25 ms later; when both land in the same second (managedFields times are whole \
seconds) the status is trusted only after it has been quiet for a second (src/core/readiness.rs). A \
simulator that answers in milliseconds always hits that case; a real CassKop action runs for 20 s or \
more and ends in a later second, so the faithful simulator below pays about 50 ms per step instead. \
The 115 ms and 89.8 s figures before were measured before the readiness rules existed (they judged CassKop done too early).\n\
- **At rest**: no writes; the requests are the site probes (one per site every 5 s). In runs that \
kept up: no reconciles, 0.02-0.03 CPU s. In slow runs (282 s and 330 s today): about 9,000 \
reconciles in the minute (about 150 a second, 9 per ring, all triggered by a site's CassandraCluster \
watch, none writing) and 5-6 CPU s, while nothing wrote anything. Not yet explained: kube-runtime's \
scheduler keeps one pending request per ring, so these are watch events still arriving, or \
reconciles each waiting about 200 ms; the next step is to log each site's watch events by \
resourceVersion in a slow run.\n\
- **Peak RSS** (goal 64 MiB, met: 46-48 MiB; 88-91 MiB before). A heap profile at this scale \
(`BENCH_CONTROLLER_WRAP=\"heaptrack -o FILE\" BENCH_PHASES=scale make bench`) found 65 MB of heap at \
the peak, 52 MB of it in the watch stores: the 3,000 CassandraClusters (34 MB, about 11 KB each) and the \
1,000 MultiCasskops (18 MB) held as `serde_json::Value` trees, where every small map is a B-tree node \
of about 0.6 KB. The stores now keep metadata typed and everything else as JSON text, decoded when a \
reconcile looks at the object (src/sites/cached.rs; `CompactMultiCasskop` in src/api/guarded.rs); each \
reconcile already made its own copy, so the decode replaces a clone. The rest of the heap: HTTP and TLS \
buffers (4 MB), the async runtime (3 MB), the ledger's copies of written objects (3 MB). Earlier: \
managedFields, CassKop's last-applied copy and per-pod status dropped from cached CassandraClusters, \
kubectl's last-applied copy from cached MultiCasskops, no Normal Events, at most 32 reconciles at once \
(`RECONCILE_CONCURRENCY`; without a bound a slow site let all 1,000 wait at once, each holding its copies).\n\
- **CPU**: the reconciles (JSON of each site's object, judged per reconcile); fewer writes mean fewer \
watch events and fewer reconciles.\n\
- **Failover**: the standby's view of the Lease. The Lease loop is now our own (src/lease.rs): the \
holder renews every third of the lease and steps down after two thirds without a renewal; a standby \
reads the Lease every tenth (100-800 ms), dates a renewal from its previous read, and takes the Lease \
at most one duration after the last renewal it saw, i.e. within the duration of a SIGKILL (before: \
13.3 s with a 4 s lease, because kube-lease-manager re-read a held lease at its expiry, then waited).\n\
- **Faithful simulator at a 2 s step**: CassKop's steps in order, one site after the other (the floor); \
the rest is the controller noticing each step (watch latency, 1 s status settle of the readiness rules).\n\
- **Wall-clock figures** depend on the machine's load: on a 2-core machine, an overloaded management \
API server times out writes and probes, sites flap Unreachable, and every flap is a status write per \
ring. Counts, RSS and CPU seconds are the reliable figures.\n";
