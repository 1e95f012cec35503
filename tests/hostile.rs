//! The hostile suite on real API servers: the corpus of `tests/hostile/*.yaml` applied against a
//! running controller while a healthy ring is created alongside, and a second tenant attacking
//! a first one. Nothing a hostile object asks for may be written or deleted at any site.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::corpus::corpus;
use common::*;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use multi_casskop::api::MultiCasskopStatus;
use multi_casskop::labels::CASSKOP_LAST_APPLIED_ANNOTATION;
use multi_casskop::sites::cassandra_cluster_resource;
use serde_json::{Value, json};

/// The corpus test snapshots every CassandraCluster of every namespace at every site: the
/// tests of this binary run one at a time, so no other test's rollout shows up as "touched".
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type Snapshot = BTreeMap<(String, String, String), (String, Value)>;

/// Every CassandraCluster at every site, in every namespace: resourceVersion and spec.
async fn snapshot(env: &Env) -> Snapshot {
    let mut all = Snapshot::new();
    for site in SITES {
        let api: Api<DynamicObject> =
            Api::all_with(env.clients[site].clone(), &cassandra_cluster_resource());
        for o in api.list(&ListParams::default()).await.expect("list").items {
            all.insert(
                (
                    site.to_string(),
                    o.namespace().unwrap_or_default(),
                    o.name_any(),
                ),
                (
                    o.resource_version().unwrap_or_default(),
                    o.data.get("spec").cloned().unwrap_or(Value::Null),
                ),
            );
        }
    }
    all
}

fn url(ns: &str) -> String {
    format!("/apis/db.orange.com/v2/namespaces/{ns}/multicasskops")
}

/// Creates an object from raw JSON; the API server's refusal message on error.
async fn post_raw(client: &Client, ns: &str, body: &str) -> Result<(), String> {
    let request = http::Request::post(url(ns))
        .header("Content-Type", "application/json")
        .body(body.as_bytes().to_vec())
        .expect("request");
    match client.request_text(request).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(status.message.clone()),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(serde::Deserialize)]
struct StatusOnly {
    status: Option<MultiCasskopStatus>,
}

/// The status of a MultiCasskop read without decoding its spec (which may be too deep).
async fn raw_status(client: &Client, ns: &str, name: &str) -> Option<MultiCasskopStatus> {
    let request = http::Request::get(format!("{}/{name}", url(ns)))
        .body(Vec::new())
        .expect("request");
    let text = client.request_text(request).await.ok()?;
    serde_json::from_str::<StatusOnly>(&text).ok()?.status
}

fn degraded_message(status: &MultiCasskopStatus) -> (String, String) {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded" && c.status == "True")
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

/// The corpus against a running controller, with a healthy ring created alongside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_corpus_touches_nothing_and_delays_no_ring() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let env = Env::new("hostile").await;
    let ns = env.namespace.clone();
    // The healthy ring's normal time, alone.
    let started = Instant::now();
    env.create_ready(ring("baseline", &ns)).await;
    let normal = started.elapsed();
    let before = snapshot(&env).await;

    let mut healthy = ring("healthy", &ns);
    healthy["spec"]["base"]["metadata"]["name"] = json!("cass2");
    let started = Instant::now();
    env.create(healthy).await;
    let corpus = corpus();
    let mut tried = 0;
    let mut accepted = Vec::new();
    for h in &corpus {
        tried += 1;
        let answer = post_raw(&env.management, &ns, &h.body).await;
        match (h.apiserver.split_once(": "), &answer) {
            (Some(("rejected", fragment)), Err(message)) => assert!(
                message.contains(fragment),
                "{}: the API server said {message:?}, expected {fragment:?}",
                h.file
            ),
            (None, Ok(())) if h.apiserver == "accepted" => accepted.push(h),
            _ => panic!(
                "{}: expected {}, the API server said {answer:?}",
                h.file, h.apiserver
            ),
        }
    }
    env.wait_ready("healthy").await;
    let took = started.elapsed();
    assert!(
        took <= normal * 3 + Duration::from_secs(10),
        "the healthy ring took {took:?} next to the corpus, {normal:?} alone"
    );

    let events: Api<Event> = Api::namespaced(env.management.clone(), &ns);
    for h in &accepted {
        let name = serde_json::from_str::<Value>(&h.body)
            .ok()
            .and_then(|v| v["metadata"]["name"].as_str().map(String::from))
            .unwrap_or_else(|| {
                // Too deep for serde_json::Value: the name is in the header of the body.
                h.body
                    .split("\"name\":\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or_default()
                    .to_string()
            });
        let (kind, fragment) = h.controller.split_once(": ").expect("controller verdict");
        let status =
            multi_casskop_e2e::wait::until(format!("{}: {kind}", h.file), CONVERGE, || {
                let client = env.management.clone();
                let (ns, name) = (ns.clone(), name.clone());
                async move {
                    let status = raw_status(&client, &ns, &name).await.unwrap_or_default();
                    let (reason, message) = degraded_message(&status);
                    let done = match kind {
                        "invalid" => {
                            status.phase.as_deref() == Some("Invalid") && message.contains(fragment)
                        }
                        "undecodable" => reason == "Undecodable" && message.contains(fragment),
                        _ => status.phase.is_some() && status.phase.as_deref() != Some("Invalid"),
                    };
                    if done {
                        Ok(status)
                    } else {
                        Err(format!("{status:#?}"))
                    }
                }
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if kind == "undecodable" {
            assert_eq!(status.phase.as_deref(), Some("Invalid"), "{}", h.file);
            let warned = events
                .list(&ListParams::default().fields(&format!("regarding.name={name}")))
                .await
                .expect("events")
                .items
                .iter()
                .any(|e| {
                    e.type_.as_deref() == Some("Warning")
                        && e.reason.as_deref() == Some("Undecodable")
                });
            assert!(warned, "{}: a Warning Event names the object", h.file);
        }
    }
    let running = env.controller.as_ref().expect("controller");
    assert!(running.is_running(), "the controller did not panic or stop");
    assert_eq!(running.ctx.readiness(), Ok(()), "/readyz stays ready");
    assert_eq!(
        running.ctx.metrics.undecodable_objects.get(),
        2,
        "h47 and h48"
    );

    let after = snapshot(&env).await;
    let touched: Vec<_> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(
            after
                .keys()
                .filter(|k| !(before.contains_key(*k) || (k.1 == ns && k.2 == "cass2")))
                .cloned(),
        )
        .collect();
    assert!(
        touched.is_empty(),
        "objects touched by hostile MultiCasskops: {touched:?}"
    );
    eprintln!(
        "hostile corpus: {tried} inputs tried, {} handled cleanly, 0 other rings delayed (healthy ring {took:?}, alone {normal:?}), {} objects touched",
        tried,
        touched.len()
    );

    // A deleted ring's metric series go with it.
    env.mcs()
        .delete("healthy", &Default::default())
        .await
        .expect("delete");
    env.wait_gone("healthy").await;
    let metrics = running.ctx.metrics.clone();
    multi_casskop_e2e::wait::until("the deleted ring's series dropped", CONVERGE, || {
        let text = metrics.encode();
        async move {
            if text.contains("multicasskop=\"healthy\"") {
                Err(text)
            } else {
                Ok(())
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(metrics.encode().contains("multicasskop=\"baseline\""));
}

/// team-a attacks team-b: through base.metadata.namespace, through
/// override.<site>.metadata.namespace, and by injecting CassKop's annotation. team-b's
/// CassandraClusters stay byte-for-byte the same and its ring Ready; team-a's rings are Invalid
/// with the rule in the message; nothing anywhere carries the forged annotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_reach_another_tenants_clusters() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let victim = Env::new("team-b").await;
    victim.create_ready(ring("orders", &victim.namespace)).await;
    let attacker = Env::new("team-a").await;
    let before = snapshot(&victim).await;
    let team_b: Vec<_> = before
        .keys()
        .filter(|k| k.1 == victim.namespace)
        .cloned()
        .collect();
    assert_eq!(team_b.len(), 3, "team-b's ring is at every site");

    let mut via_base = ring("evil-base", &attacker.namespace);
    via_base["spec"]["base"]["metadata"]["namespace"] = json!(victim.namespace);
    via_base["spec"]["base"]["spec"]["nodesPerRacks"] = json!(1);
    via_base["spec"]["base"]["spec"]["cassandraImage"] = json!("attacker/image:1");
    let mut via_override = ring("evil-override", &attacker.namespace);
    via_override["spec"]["override"]["site-b"]["metadata"] = json!({"namespace": victim.namespace});
    let forged = "{\"spec\":{\"topology\":{\"dc\":[]}},\"forged\":true}";
    let mut injection = ring("evil-annotation", &attacker.namespace);
    injection["spec"]["base"]["metadata"]["annotations"] =
        json!({ (CASSKOP_LAST_APPLIED_ANNOTATION): forged });
    for manifest in [via_base, via_override, injection] {
        attacker.create(manifest).await;
    }
    for (name, fragment) in [
        ("evil-base", multi_casskop::core::tenancy::RULE),
        ("evil-override", multi_casskop::core::tenancy::RULE),
        ("evil-annotation", "fight CassKop"),
    ] {
        let mc = attacker
            .wait_mc(name, "Invalid with the rule", |mc| {
                mc.status.as_ref().is_some_and(|s| {
                    s.phase.as_deref() == Some("Invalid")
                        && degraded_message(s).1.contains(fragment)
                })
            })
            .await;
        assert!(mc.status.is_some());
    }
    // Give a wrong controller time to act, then compare.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = snapshot(&victim).await;
    for key in &team_b {
        assert_eq!(before.get(key), after.get(key), "team-b's {key:?} changed");
    }
    let attacker_objects: Vec<_> = after.keys().filter(|k| k.1 == attacker.namespace).collect();
    assert!(attacker_objects.is_empty(), "{attacker_objects:?}");
    victim.wait_ready("orders").await;
    for site in SITES {
        let api: Api<DynamicObject> =
            Api::all_with(victim.clients[site].clone(), &cassandra_cluster_resource());
        for o in api.list(&ListParams::default()).await.expect("list").items {
            assert_ne!(
                o.annotations()
                    .get(CASSKOP_LAST_APPLIED_ANNOTATION)
                    .map(String::as_str),
                Some(forged),
                "{site}: {} carries the forged annotation",
                o.name_any()
            );
        }
    }
}
