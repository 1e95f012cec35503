//! Conformance of the CassKop simulator with the real CassKop, as recorded in
//! `shared/casskop-traces/` (`trace-cc1.jsonl`, `trace-cc2.jsonl`; see its README).
//!
//! Each scenario replays, against the simulator on a real API server (the cscetbon CRD, with a
//! status subresource, like the recording), the writes the recording made (`kubectl apply`,
//! `kubectl patch`, `kubectl patch --subresource status`, with the same field managers), watches
//! the object, and compares the sequence of watch events with the trace's, both turned into one
//! line per event by [`view`]:
//!
//! `writer changed phase action racks sub spec.img ann.img ann.gen`
//!
//! - writer: the `managedFields` entries that are new or changed since the previous event
//!   (`casskop` main resource, `casskop/status`, or `USER` for anyone else, i.e. the trigger);
//!   none changed (a write in the same second, the summaries' `writer=?`) → inferred from what
//!   changed;
//! - changed: `SPEC`, `STATUS`, `ANNOTATION` (CassKop's last-applied), or `CREATE`;
//! - phase, cluster action/status, rack phase/action/status, `initializingSubPhase`, the image
//!   in the spec and in the annotation, and the generation embedded in the annotation.
//!
//! Normalisation: timing is ignored, and annotation-only rewrites by CassKop that change
//! nothing but `time` values inside the embedded `managedFields` are dropped: whether they
//! happen depends on a write crossing a second boundary (trace-cc1 rv 252, 269, 310 are such;
//! rv 251, 305, 309, 339 are not: they embed a new generation or a changed field set and happen
//! every time).
//!
//! Traces are read at test time from `$CASSKOP_TRACES_DIR`, default
//! `<repo>/../shared/casskop-traces`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use multi_casskop_e2e::cassandra::{self, state};
use multi_casskop_e2e::namespace::{create_namespace, unique_name};
use multi_casskop_e2e::{SimConfig, Simulator, Site, shared, telemetry};
use serde_json::{Value, json};

type TestResult = anyhow::Result<()>;

/// Turning watch events into comparable lines (pure).
mod view {
    use std::collections::BTreeSet;

    use serde_json::Value;

    /// CassKop's annotation.
    pub const LAST_APPLIED: &str = "cassandraclusters.db.orange.com/last-applied-configuration";
    /// CassKop's field manager.
    pub const CASSKOP: &str = "casskop";

    /// One watch event, summarised.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Entry {
        /// `metadata.resourceVersion`.
        pub rv: String,
        /// `casskop`, `casskop/status`, `USER`.
        pub writer: String,
        /// Changed `managedFields` entries as `manager/operation[/subresource]`, sorted; `?`
        /// if none (the summaries' `writer=` field).
        pub managers: String,
        /// `CREATE` or `SPEC`, `STATUS`, `ANNOTATION` joined by `+`.
        pub changed: String,
        /// The rest of the line.
        pub state: String,
        /// The annotation's content but for `time` values (to spot time-only rewrites).
        pub annotation_key: Option<Value>,
    }

    impl Entry {
        /// The comparable line.
        pub fn line(&self) -> String {
            format!("{} {} {}", self.writer, self.changed, self.state)
        }
    }

    fn managed(object: &Value) -> Vec<(String, Value)> {
        object
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|f| {
                let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let mut name = format!("{}/{}", s("manager"), s("operation"));
                if !s("subresource").is_empty() {
                    name = format!("{name}/{}", s("subresource"));
                }
                (name, f.clone())
            })
            .collect()
    }

    /// The field paths of a `fieldsV1` value.
    fn paths(fields: Option<&Value>) -> BTreeSet<String> {
        fn walk(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
            if let Some(map) = v.as_object() {
                for (k, child) in map {
                    let path = format!("{prefix}/{k}");
                    out.insert(path.clone());
                    walk(child, &path, out);
                }
            }
        }
        let mut out = BTreeSet::new();
        if let Some(v) = fields {
            walk(v, "", &mut out);
        }
        out
    }

    fn annotation(object: &Value) -> Option<Value> {
        let text = object
            .pointer("/metadata/annotations")?
            .get(LAST_APPLIED)?
            .as_str()?;
        serde_json::from_str(text).ok()
    }

    fn without_times(mut annotation: Value) -> Value {
        if let Some(fields) = annotation
            .pointer_mut("/metadata/managedFields")
            .and_then(Value::as_array_mut)
        {
            for f in fields.iter_mut().filter_map(Value::as_object_mut) {
                f.remove("time");
            }
            fields.sort_by_key(|f| f.to_string());
        }
        annotation
    }

    fn text(v: Option<&Value>) -> String {
        match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "-".into(),
            Some(other) => other.to_string(),
        }
    }

    fn state(object: &Value) -> String {
        let status = object.get("status").cloned().unwrap_or(Value::Null);
        let racks: Vec<String> = status
            .get("cassandraRackStatus")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, r)| {
                format!(
                    "{k}:{}/{}/{}",
                    text(r.get("phase")),
                    text(r.pointer("/cassandraLastAction/name")),
                    text(r.pointer("/cassandraLastAction/status"))
                )
            })
            .collect();
        let ann = annotation(object);
        format!(
            "phase={} action={}/{} racks=[{}] sub={} spec.img={} ann.img={} ann.gen={}",
            text(status.get("phase")),
            text(status.get("lastClusterAction")),
            text(status.get("lastClusterActionStatus")),
            racks.join(","),
            text(status.get("initializingSubPhase")),
            text(object.pointer("/spec/cassandraImage")),
            text(ann.as_ref().and_then(|a| a.pointer("/spec/cassandraImage"))),
            text(ann.as_ref().and_then(|a| a.pointer("/metadata/generation"))),
        )
    }

    /// One entry per object (the watch events of one object, in order).
    pub fn entries(objects: &[Value]) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut previous: Option<&Value> = None;
        for object in objects {
            let rv = text(object.pointer("/metadata/resourceVersion"));
            let now = managed(object);
            let before = previous.map(managed).unwrap_or_default();
            let changed_managers: BTreeSet<String> = now
                .iter()
                .filter(|(name, f)| {
                    !before.iter().any(|(n, b)| {
                        n == name
                            && b.get("time") == f.get("time")
                            && b.get("fieldsV1") == f.get("fieldsV1")
                    })
                })
                .map(|(name, _)| name.clone())
                .collect();
            let changed = match previous {
                None => "CREATE".to_string(),
                Some(p) => {
                    let mut c = Vec::new();
                    if p.get("spec") != object.get("spec") {
                        c.push("SPEC");
                    }
                    if p.get("status") != object.get("status") {
                        c.push("STATUS");
                    }
                    if annotation(p) != annotation(object) {
                        c.push("ANNOTATION");
                    }
                    c.join("+")
                }
            };
            // Who wrote: entries that are new or carry a new time; in the same second, those that
            // gained fields (a manager losing fields to another one did not write).
            let old_entry = |name: &str| before.iter().find(|(n, _)| n == name).map(|(_, f)| f);
            let timed: BTreeSet<&String> = now
                .iter()
                .filter(|(n, f)| old_entry(n).is_none_or(|b| b.get("time") != f.get("time")))
                .map(|(n, _)| n)
                .collect();
            let writers: BTreeSet<&String> = if timed.is_empty() {
                now.iter()
                    .filter(|(n, f)| {
                        let had = old_entry(n)
                            .map(|b| paths(b.get("fieldsV1")))
                            .unwrap_or_default();
                        paths(f.get("fieldsV1")).difference(&had).next().is_some()
                    })
                    .map(|(n, _)| n)
                    .collect()
            } else {
                timed
            };
            let user = writers
                .iter()
                .any(|m| !m.starts_with(&format!("{CASSKOP}/")));
            let writer = if previous.is_none() || user {
                "USER".to_string()
            } else if writers.iter().any(|m| m.ends_with("/status")) {
                "casskop/status".to_string()
            } else if !writers.is_empty() {
                "casskop".to_string()
            } else if changed == "STATUS" {
                // Same second, same fields: the summaries' `writer=?`.
                "casskop/status".to_string()
            } else {
                "casskop".to_string()
            };
            let managers = if changed_managers.is_empty() {
                "?".to_string()
            } else {
                changed_managers.into_iter().collect::<Vec<_>>().join(",")
            };
            out.push(Entry {
                rv,
                writer,
                managers,
                changed,
                state: state(object),
                annotation_key: annotation(object).map(without_times),
            });
            previous = Some(object);
        }
        out
    }

    /// The lines to compare: time-only annotation rewrites by CassKop dropped.
    pub fn normalise(entries: &[Entry]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let time_only = i > 0
                && e.writer == "casskop"
                && e.changed == "ANNOTATION"
                && e.annotation_key == entries[i - 1].annotation_key;
            if !time_only {
                out.push(e.line());
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use serde_json::json;

        fn object(
            rv: u32,
            managers: &[(&str, &str, &str)],
            spec_img: &str,
            ann: Option<Value>,
            status: Value,
        ) -> Value {
            let fields: Vec<Value> = managers
                .iter()
                .map(|(m, sub, time)| {
                    let mut f =
                        json!({"manager": m, "operation": "Update", "time": time, "fieldsV1": {}});
                    if !sub.is_empty() {
                        f["subresource"] = json!(sub);
                    }
                    f
                })
                .collect();
            let mut o = json!({"metadata": {"resourceVersion": rv.to_string(), "managedFields": fields},
                "spec": {"cassandraImage": spec_img}, "status": status});
            if let Some(a) = ann {
                o["metadata"]["annotations"] = json!({LAST_APPLIED: a.to_string()});
            }
            o
        }

        fn ann(generation: i64, img: &str, time: &str) -> Value {
            json!({"metadata": {"generation": generation, "managedFields": [{"manager": "casskop", "time": time}]},
                "spec": {"cassandraImage": img}, "status": {}})
        }

        #[test]
        fn writers_changes_and_time_only_rewrites() {
            let running = json!({"phase": "Running", "lastClusterAction": "Initializing", "lastClusterActionStatus": "Done"});
            let ongoing = json!({"phase": "Running", "lastClusterAction": "UpdateDockerImage", "lastClusterActionStatus": "Ongoing",
                "cassandraRackStatus": {"dc1-rack1": {"phase": "Running", "cassandraLastAction": {"name": "UpdateDockerImage", "status": "Ongoing"}}}});
            let k = ("kubectl-patch", "", "t0");
            let objects = [
                object(1, &[k], "a", Some(ann(1, "a", "t0")), running.clone()),
                object(
                    2,
                    &[k, ("casskop", "", "t1")],
                    "a",
                    Some(ann(2, "b", "t1")),
                    running.clone(),
                ),
                object(
                    3,
                    &[k, ("casskop", "", "t1"), ("casskop", "status", "t1")],
                    "a",
                    Some(ann(2, "b", "t1")),
                    ongoing.clone(),
                ),
                // same second: nothing changes in managedFields
                object(
                    4,
                    &[k, ("casskop", "", "t1"), ("casskop", "status", "t1")],
                    "a",
                    Some(ann(2, "b", "t1")),
                    json!({"phase": "Pending"}),
                ),
                // time-only rewrite
                object(
                    5,
                    &[k, ("casskop", "", "t2"), ("casskop", "status", "t1")],
                    "a",
                    Some(ann(2, "b", "t2")),
                    json!({"phase": "Pending"}),
                ),
                object(
                    6,
                    &[
                        ("kubectl-patch", "", "t3"),
                        ("casskop", "", "t2"),
                        ("casskop", "status", "t1"),
                    ],
                    "c",
                    Some(ann(2, "b", "t2")),
                    json!({"phase": "Pending"}),
                ),
            ];
            let entries = entries(&objects);
            let summary: Vec<(&str, &str, &str)> = entries
                .iter()
                .map(|e| (e.writer.as_str(), e.managers.as_str(), e.changed.as_str()))
                .collect();
            assert_eq!(
                summary,
                [
                    ("USER", "kubectl-patch/Update", "CREATE"),
                    ("casskop", "casskop/Update", "ANNOTATION"),
                    ("casskop/status", "casskop/Update/status", "STATUS"),
                    ("casskop/status", "?", "STATUS"),
                    ("casskop", "casskop/Update", "ANNOTATION"),
                    ("USER", "kubectl-patch/Update", "SPEC"),
                ]
            );
            assert!(
                entries[2]
                    .state
                    .contains("action=UpdateDockerImage/Ongoing")
            );
            assert!(
                entries[2]
                    .state
                    .contains("racks=[dc1-rack1:Running/UpdateDockerImage/Ongoing]")
            );
            assert!(entries[1].state.contains("spec.img=a ann.img=b ann.gen=2"));
            let lines = normalise(&entries);
            assert_eq!(
                lines.len(),
                5,
                "the time-only rewrite (rv 5) is dropped: {lines:#?}"
            );
            assert!(lines[3].starts_with("casskop/status STATUS phase=Pending"));
            assert!(lines[4].starts_with("USER SPEC"));
        }

        #[test]
        fn a_manager_losing_fields_did_not_write() {
            let o = |fields: Value| json!({"metadata": {"resourceVersion": "1", "managedFields": fields}, "spec": {}});
            let objects = [
                o(
                    json!([{"manager": "kubectl", "operation": "Update", "time": "t0", "fieldsV1": {"f:spec": {"f:a": {}}}}]),
                ),
                // casskop takes f:a in the same second (rv 234 of trace-cc1)
                o(
                    json!([{"manager": "kubectl", "operation": "Update", "time": "t0", "fieldsV1": {"f:spec": {}}},
                    {"manager": "casskop", "operation": "Update", "time": "t0", "fieldsV1": {"f:spec": {"f:a": {}}}}]),
                ),
                // casskop takes more, same second: only the gainer wrote
                o(
                    json!([{"manager": "kubectl", "operation": "Update", "time": "t0", "fieldsV1": {}},
                    {"manager": "casskop", "operation": "Update", "time": "t0", "fieldsV1": {"f:spec": {"f:a": {}, "f:b": {}}}}]),
                ),
            ];
            let entries = entries(&objects);
            assert_eq!(entries[1].writer, "casskop");
            assert_eq!(entries[1].managers, "casskop/Update,kubectl/Update");
            assert_eq!(entries[2].writer, "casskop");
        }

        #[test]
        fn a_rewrite_with_a_new_generation_is_kept() {
            let s = json!({"phase": "Running"});
            let objects = [
                object(
                    1,
                    &[("casskop", "", "t1")],
                    "a",
                    Some(ann(2, "a", "t1")),
                    s.clone(),
                ),
                object(
                    2,
                    &[("casskop", "", "t1")],
                    "a",
                    Some(ann(3, "a", "t1")),
                    s.clone(),
                ),
            ];
            assert_eq!(normalise(&entries(&objects)).len(), 2);
        }
    }
}

/// Where the traces are.
fn traces_dir() -> PathBuf {
    std::env::var_os("CASSKOP_TRACES_DIR").map_or_else(
        || multi_casskop_e2e::paths::beside_checkout("casskop-traces"),
        PathBuf::from,
    )
}

/// The objects of a recorded trace, one per watch event.
fn load_trace(file: &str) -> Vec<Value> {
    let path = traces_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read the recorded CassKop trace {} ({err}): the conformance tests compare the \
             simulator with it. Put the recorded traces (trace-cc1.jsonl, trace-cc2.jsonl, from \
             shared/casskop-traces/) there, or set CASSKOP_TRACES_DIR to the directory holding them.",
            path.display()
        )
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let line: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: a line is not JSON: {e}", path.display()));
            line["ev"]["object"].clone()
        })
        .collect()
}

/// The trace summaries' `changed=` and `writer=` fields, per resourceVersion.
fn load_summary(file: &str) -> Vec<(String, String, String)> {
    let path = traces_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read {} ({err}); set CASSKOP_TRACES_DIR",
            path.display()
        )
    });
    text.lines()
        .filter_map(|l| {
            let field = |key: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .map(str::to_string)
            };
            Some((field("rv=")?, field("changed=")?, field("writer=")?))
        })
        .collect()
}

/// The parser reads the traces as their summaries do (rv, what changed, which manager wrote).
#[test]
fn parser_agrees_with_the_trace_summaries() {
    for (trace, summary) in [
        ("trace-cc1.jsonl", "summary-cc1.txt"),
        ("trace-cc2.jsonl", "summary-cc2.txt"),
    ] {
        let entries = view::entries(&load_trace(trace));
        let summary = load_summary(summary);
        assert_eq!(entries.len(), summary.len(), "{trace}");
        for (e, (rv, changed, writer)) in entries.iter().zip(&summary) {
            assert_eq!(&e.rv, rv, "{trace}");
            assert_eq!(&e.managers, writer, "{trace} rv {rv}");
            if e.changed != "CREATE" {
                let mut mine: Vec<&str> = e.changed.split('+').collect();
                let mut theirs: Vec<&str> = changed.split('+').collect();
                mine.sort_unstable();
                theirs.sort_unstable();
                assert_eq!(mine, theirs, "{trace} rv {rv}");
            }
        }
    }
}

/// The expected lines of a trace, printed for reference on failure.
fn trace_lines(file: &str) -> Vec<String> {
    view::normalise(&view::entries(&load_trace(file)))
}

/// Records every watch event of one object.
struct Recorder {
    objects: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start(api: &Api<DynamicObject>, name: &str) -> anyhow::Result<Self> {
        let list = api.list(&ListParams::default()).await?;
        let version = list.metadata.resource_version.unwrap_or_default();
        let objects = Arc::new(Mutex::new(Vec::new()));
        let sink = objects.clone();
        let params = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(290);
        let stream = api.watch(&params, &version).await?;
        let task = tokio::spawn(async move {
            let mut stream = stream.boxed();
            while let Ok(Some(event)) = stream.try_next().await {
                if let WatchEvent::Added(o) | WatchEvent::Modified(o) = event
                    && let Ok(v) = serde_json::to_value(&o)
                {
                    sink.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(v);
                }
            }
        });
        Ok(Self { objects, task })
    }

    fn objects(&self) -> Vec<Value> {
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn lines(&self) -> Vec<String> {
        view::normalise(&view::entries(&self.objects()))
    }

    /// Waits until `done` holds for the last object and nothing was written for `quiet`.
    async fn settle(
        &self,
        what: &str,
        quiet: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> TestResult {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let mut seen = 0;
        let mut since = tokio::time::Instant::now();
        loop {
            let objects = self.objects();
            if objects.len() != seen {
                seen = objects.len();
                since = tokio::time::Instant::now();
            } else if objects.last().is_some_and(&done) && since.elapsed() >= quiet {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "timed out waiting for {what}; events so far:\n{}",
                    self.lines().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_state(phase: &str, action: &str, status: &str) -> impl Fn(&Value) -> bool {
    let want = state(phase, action, status);
    move |o: &Value| cassandra::state_of(&cassandra::from_json(o.clone())) == want
}

/// Compares, printing both sequences on a mismatch.
fn assert_same(what: &str, got: &[String], want: &[String]) {
    // Shown with `--nocapture`.
    println!("{what}:\n{}", got.join("\n"));
    if got != want {
        let width = want.len().max(got.len());
        let mut report = String::new();
        for i in 0..width {
            let w = want.get(i).map_or("", String::as_str);
            let g = got.get(i).map_or("", String::as_str);
            let mark = if w == g { "  " } else { "!!" };
            report.push_str(&format!("{mark} trace: {w}\n   sim:   {g}\n"));
        }
        panic!("{what}: the simulator drifted from the recorded CassKop\n{report}");
    }
}

struct Env {
    api: Api<DynamicObject>,
    namespace: String,
    sim: Simulator,
}

const KUBECTL_APPLY: &str = "kubectl-client-side-apply";
const KUBECTL_PATCH: &str = "kubectl-patch";

/// A namespace on the cscetbon site (status subresource, like the recording) and a simulator
/// with the traces' behaviour: no node identities, short timings.
async fn env(site_name: &str, test: &str, config: SimConfig) -> anyhow::Result<Env> {
    telemetry::init_for_tests();
    let sites = shared::sites(shared::casskop_layout).await?;
    let site: &Site = sites.get(site_name).expect("shared site");
    let client = site.client().await?;
    let namespace = unique_name(&format!("{test}-{site_name}"));
    create_namespace(&client, &namespace).await?;
    let sim = Simulator::spawn(
        client.clone(),
        config
            .namespace(&namespace)
            .host_ids(false)
            .delay(Duration::from_millis(1500))
            .reaction(Duration::from_millis(300)),
    );
    Ok(Env {
        api: cassandra::api(&client, &namespace),
        namespace,
        sim,
    })
}

impl Env {
    /// Creates `name` with the spec the trace's `kubectl apply` created.
    async fn create_as_traced(&self, name: &str, trace: &[Value]) -> TestResult {
        let mut object = json!({
            "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": trace[0]["spec"],
        });
        if let Some(spec) = object["spec"].as_object_mut() {
            // API-server defaults of the schema come back by themselves.
            spec.remove("fsGroup");
            spec.remove("runAsUser");
            spec.remove("serverType");
        }
        let params = PostParams {
            dry_run: false,
            field_manager: Some(KUBECTL_APPLY.into()),
        };
        self.api
            .create(&params, &cassandra::from_json(object))
            .await?;
        Ok(())
    }

    async fn patch_spec(&self, name: &str, spec: Value) -> TestResult {
        let params = PatchParams {
            field_manager: Some(KUBECTL_PATCH.into()),
            ..PatchParams::default()
        };
        self.api
            .patch(name, &params, &Patch::Merge(json!({ "spec": spec })))
            .await?;
        Ok(())
    }

    async fn patch_status(&self, name: &str, status: Value) -> TestResult {
        let params = PatchParams {
            field_manager: Some(KUBECTL_PATCH.into()),
            ..PatchParams::default()
        };
        self.api
            .patch_status(name, &params, &Patch::Merge(json!({ "status": status })))
            .await?;
        Ok(())
    }
}

/// At rest, CassKop's annotation embeds the object's own generation and managedFields (it
/// rewrites it until they agree): the last event of each trace, and the simulator's.
fn assert_annotation_at_rest(what: &str, object: &Value) {
    let annotation: Value = object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(view::LAST_APPLIED))
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_else(|| panic!("{what}: no last-applied annotation"));
    assert_eq!(
        annotation["metadata"]["generation"], object["metadata"]["generation"],
        "{what}: annotation generation"
    );
    assert_eq!(
        annotation["metadata"]["managedFields"], object["metadata"]["managedFields"],
        "{what}: annotation managedFields"
    );
    assert_eq!(
        annotation["status"],
        json!({}),
        "{what}: status in the annotation"
    );
    assert!(
        annotation["metadata"].get("annotations").is_none(),
        "{what}"
    );
    assert!(
        annotation["metadata"].get("resourceVersion").is_none(),
        "{what}"
    );
}

/// trace-cc1: create (rv 233–271), image change 4.1.5 → 4.1.6 (rv 281–310), seed list written
/// through /status (rv 317–347). Checks, against the trace's lines:
/// - create: the defaults write alone (rv 234: `casskop SPEC`, no annotation), `Initializing`
///   without cluster action (rv 235), annotation with defaults (rv 244 `SPEC+ANNOTATION`,
///   ann.gen 2) *before* `Initializing/Ongoing` (rv 246), the rewrite with the new generation
///   (rv 251), `NextPodPerRack` (rv 268), `Running`, `Initializing/Done` (rv 270);
/// - image: the annotation with the new image and the old status first (rv 303), then
///   `UpdateDockerImage/Ongoing` with phase `Running` (rv 304), `Done` (rv 308);
/// - seeds: the annotation rewrite first (rv 339), then straight `UpdateSeedList/Ongoing`
///   (rv 340, no `Configuring`, no `Pending`), `Done` (rv 345).
#[tokio::test]
async fn create_image_change_and_seed_list_as_traced() -> TestResult {
    let trace = load_trace("trace-cc1.jsonl");
    let want = trace_lines("trace-cc1.jsonl");
    assert_annotation_at_rest("trace-cc1", trace.last().expect("events"));
    let env = env("site-b", "conf-cc1", SimConfig::default()).await?;
    let name = "cc1";
    let recorder = Recorder::start(&env.api, name).await?;
    let quiet = Duration::from_millis(2500);

    env.create_as_traced(name, &trace).await?;
    recorder
        .settle(
            "creation",
            quiet,
            is_state("Running", "Initializing", "Done"),
        )
        .await?;
    env.patch_spec(name, json!({"cassandraImage": "cassandra:4.1.6"}))
        .await?;
    recorder
        .settle(
            "image change",
            quiet,
            is_state("Running", "UpdateDockerImage", "Done"),
        )
        .await?;
    env.patch_status(
        name,
        json!({"seedlist": ["cc1-dc1-rack1-0.a.example.com", "ring-dcb-r1-0.b.example.com"]}),
    )
    .await?;
    recorder
        .settle(
            "seed-list change",
            quiet,
            is_state("Running", "UpdateSeedList", "Done"),
        )
        .await?;

    assert_same("trace-cc1", &recorder.lines(), &want);
    let objects = recorder.objects();
    assert_annotation_at_rest("simulator", objects.last().expect("events"));
    assert!(env.sim.write_count(&env.namespace, name) > 0);
    Ok(())
}

/// trace-cc2: create, then an image change while Jolokia does not answer: the annotation with
/// the new image, then `UpdateDockerImage/ToDo` with phase `Running` (rv 386–388), held; once
/// Jolokia answers, `Ongoing` *without* an annotation write before it (rv 418: the annotation
/// was current), the rewrite (rv 419), `Done` (rv 424).
#[tokio::test]
async fn blocked_change_while_jolokia_is_down_as_traced() -> TestResult {
    let trace = load_trace("trace-cc2.jsonl");
    let want = trace_lines("trace-cc2.jsonl");
    assert_annotation_at_rest("trace-cc2", trace.last().expect("events"));
    let env = env("site-b", "conf-cc2", SimConfig::default()).await?;
    let name = "cc2";
    let recorder = Recorder::start(&env.api, name).await?;
    let quiet = Duration::from_millis(2500);

    env.create_as_traced(name, &trace).await?;
    recorder
        .settle(
            "creation",
            quiet,
            is_state("Running", "Initializing", "Done"),
        )
        .await?;
    env.sim.set_jolokia_down(true);
    env.patch_spec(name, json!({"cassandraImage": "cassandra:4.1.6"}))
        .await?;
    recorder
        .settle(
            "blocked change",
            Duration::from_secs(4),
            is_state("Running", "UpdateDockerImage", "ToDo"),
        )
        .await?;
    env.sim.set_jolokia_down(false);
    recorder
        .settle(
            "change after Jolokia is back",
            quiet,
            is_state("Running", "UpdateDockerImage", "Done"),
        )
        .await?;

    assert_same("trace-cc2", &recorder.lines(), &want);
    assert_annotation_at_rest("simulator", recorder.objects().last().expect("events"));
    Ok(())
}

/// Not in the traces; from CassKop's source (`CheckNonAllowedChanges` →
/// `CheckNonAllowedScaleDown` in controllers/cassandracluster/reconcile.go): scaling a DC to 0
/// while keyspaces still replicate to it is refused: `cc.Spec.Topology = oldCRD.Spec.Topology`,
/// `status.LastClusterAction = CorrectCRDConfig` (`LastClusterActionStatus` untouched), then
/// `updateCassandraStatus` writes the object (previous topology, new annotation) and the status,
/// and nothing more (no loop).
#[tokio::test]
async fn refused_scale_down_writes_the_previous_spec_back() -> TestResult {
    let env = env(
        "site-b",
        "conf-refuse",
        SimConfig::default().keyspaces_replicate_to("dc2"),
    )
    .await?;
    let name = "refused";
    let recorder = Recorder::start(&env.api, name).await?;
    let quiet = Duration::from_millis(2500);
    let mut cc = cassandra::sample(name, &env.namespace);
    cc.data["spec"]["topology"]["dc"] = json!([
        {"name": "dc1", "rack": [{"name": "rack1"}]},
        {"name": "dc2", "nodesPerRacks": 1, "rack": [{"name": "rack1"}]}
    ]);
    env.api.create(&PostParams::default(), &cc).await?;
    recorder
        .settle(
            "creation",
            quiet,
            is_state("Running", "Initializing", "Done"),
        )
        .await?;
    let before = recorder.objects().len();
    let good = env.api.get(name).await?.data["spec"].clone();

    let mut topology = good["topology"].clone();
    topology["dc"][1]["nodesPerRacks"] = json!(0);
    env.patch_spec(name, json!({"topology": topology})).await?;
    recorder
        .settle(
            "refusal",
            Duration::from_secs(3),
            is_state("Running", "CorrectCRDConfig", "Done"),
        )
        .await?;

    let entries = view::entries(&recorder.objects());
    let lines = view::normalise(&entries[before - 1..])[1..].to_vec();
    let summary: Vec<String> = lines
        .iter()
        .map(|l| l.split(" phase=").next().unwrap_or_default().to_string())
        .collect();
    // The correction bumps the generation, so the next reconcile rewrites the annotation.
    assert_eq!(
        summary,
        [
            "USER SPEC",
            "casskop SPEC+ANNOTATION",
            "casskop/status STATUS",
            "casskop ANNOTATION"
        ],
        "the change, CassKop's correction (previous spec, annotation), CorrectCRDConfig, the \
         rewrite with the new generation:\n{}",
        lines.join("\n")
    );
    assert!(
        lines[1].contains("action=Initializing/Done"),
        "the correction carries the old status: {}",
        lines[1]
    );
    assert!(
        lines[2].contains("phase=Running action=CorrectCRDConfig/Done"),
        "{}",
        lines[2]
    );
    let cc = env.api.get(name).await?;
    assert_eq!(cc.data["spec"], good, "previous spec back");
    let annotation = cassandra::annotation(&cc, view::LAST_APPLIED).unwrap_or_default();
    assert_eq!(
        multi_casskop_e2e::simulator::lastapplied::spec_of(annotation)
            .map(|s| s["topology"]["dc"][1]["nodesPerRacks"].clone()),
        Some(json!(1))
    );
    Ok(())
}

/// Orange CRD (no status subresource; not in the traces): one `Update` carries annotation and
/// status together, and never goes through `/status`.
#[tokio::test]
async fn orange_crd_writes_annotation_and_status_together() -> TestResult {
    let env = env("site-a", "conf-orange", SimConfig::default()).await?;
    let name = "orange";
    let recorder = Recorder::start(&env.api, name).await?;
    let quiet = Duration::from_millis(2500);
    env.api
        .create(
            &PostParams::default(),
            &cassandra::sample(name, &env.namespace),
        )
        .await?;
    recorder
        .settle(
            "creation",
            quiet,
            is_state("Running", "Initializing", "Done"),
        )
        .await?;
    let before = recorder.objects().len();
    env.patch_spec(name, json!({"cassandraImage": "cassandra:4.0.11"}))
        .await?;
    recorder
        .settle(
            "image change",
            quiet,
            is_state("Running", "UpdateDockerImage", "Done"),
        )
        .await?;
    let entries = view::entries(&recorder.objects());
    let ours: Vec<&view::Entry> = entries[before..]
        .iter()
        .filter(|e| e.writer != "USER")
        .collect();
    assert!(ours.iter().all(|e| e.writer == "casskop"), "{ours:#?}");
    assert!(
        ours.first()
            .is_some_and(|e| e.changed == "STATUS+ANNOTATION"
                && e.state.contains("action=UpdateDockerImage/Ongoing")
                && e.state.contains("ann.img=cassandra:4.0.11")),
        "{ours:#?}"
    );
    Ok(())
}
