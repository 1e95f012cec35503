//! End-to-end tests that stop API servers, restart the controller or swap credentials. Each
//! starts three control planes of its own, and they run one at a time.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use multi_casskop::labels::{ABANDON_SITES_ANNOTATION, SITE_SECRET_LABEL};
use multi_casskop_e2e::SimConfig;
use serde_json::json;
use tokio::sync::Mutex;

/// These tests stop servers and start several control planes: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// Site down: the ring that spans it says which site and why and holds its rollout there;
/// another ring on the other sites keeps working; everything recovers when the server returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_outage_is_isolated_and_recovers() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let env = Env::build("outage", own_sites().await, SimConfig::default(), |s| s).await;
    env.create(ring("wide", &env.namespace)).await;
    env.wait_ready("wide").await;

    env.stop_site("site-c").await;
    let mc = env
        .wait_mc("wide", "site-c unreachable", |mc| {
            site_state(mc, "site-c").is_some_and(|s| s.state == "Unreachable" && !s.reachable)
        })
        .await;
    let degraded = condition(&mc, "Degraded").expect("Degraded");
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "SiteFailing")
    );
    assert!(
        degraded.message.contains("site-c Unreachable"),
        "{}",
        degraded.message
    );

    // Another ring on the other two sites is created and becomes Ready meanwhile (its own
    // CassandraClusters: two rings computing the same object would be a Conflict).
    let mut narrow = two_site_ring("narrow", &env.namespace);
    narrow["spec"]["base"]["metadata"]["name"] = json!("narrow");
    env.create(narrow).await;
    env.wait_ready("narrow").await;
    // A change to the wide ring reaches site-a and site-b, then waits at site-c.
    env.patch_spec(
        "wide",
        json!({ "base": { "spec": { "cassandraImage": "cassandra:3.11.10" } } }),
    )
    .await;
    for site in ["site-a", "site-b"] {
        env.wait_cc(site, "new image", |o| {
            o.is_some_and(|o| {
                spec_field(o, "/spec/cassandraImage") == Some(&json!("cassandra:3.11.10"))
                    && running_done(o)
            })
        })
        .await;
    }
    env.wait_mc("wide", "held at site-c", |mc| {
        site_state(mc, "site-c").is_some_and(|s| s.state == "Unreachable")
            && site_state(mc, "site-b").is_some_and(|s| s.state == "Ready")
    })
    .await;

    env.start_site("site-c").await;
    env.wait_ready("wide").await;
    env.wait_cc("site-c", "new image after recovery", |o| {
        o.is_some_and(|o| {
            spec_field(o, "/spec/cassandraImage") == Some(&json!("cassandra:3.11.10"))
        })
    })
    .await;
}

/// Controller restart mid-rollout: the new controller carries on from the status the old one
/// wrote, without writing again what was written, and finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_restart_resumes_without_duplicate_writes() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut env = Env::build(
        "restart",
        own_sites().await,
        SimConfig::default().delay(Duration::from_secs(2)),
        |s| s,
    )
    .await;
    env.create(ring("ring", &env.namespace)).await;
    env.wait_cc("site-b", "site-b created", |o| o.is_some())
        .await;
    env.restart_controller(|s| s).await;
    let mc = env.wait_ready("ring").await;
    assert_eq!(
        env.site_writes(),
        1,
        "after the restart only site-c is written (site-a and site-b already were)"
    );
    assert_eq!(mc.status.and_then(|s| s.ready_sites), Some("3/3".into()));
    for site in SITES {
        let cc = env.ccs(site).get("cass").await.expect("exists");
        assert_eq!(seedlist(&cc), ring_seeds(), "{site}");
    }
}

/// Deletion with an unreachable site blocks with a clear condition; the documented annotation
/// gives that site up and releases the MultiCasskop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_with_unreachable_site_and_give_up() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let env = Env::build("abandon", own_sites().await, SimConfig::default(), |s| s).await;
    env.create_ready(deleting_ring("ring", &env.namespace))
        .await;
    env.stop_site("site-c").await;
    env.wait_mc("ring", "site-c unreachable", |mc| {
        site_state(mc, "site-c").is_some_and(|s| s.state == "Unreachable")
    })
    .await;

    env.mcs()
        .delete("ring", &DeleteParams::default())
        .await
        .expect("delete");
    for site in ["site-a", "site-b"] {
        env.wait_cc(site, "deleted", |o| o.is_none()).await;
    }
    let mc = env
        .wait_mc("ring", "deletion blocked by site-c", |mc| {
            mc.status
                .as_ref()
                .is_some_and(|s| s.phase.as_deref() == Some("Deleting"))
                && site_state(mc, "site-c").is_some_and(|s| s.state == "Unreachable")
        })
        .await;
    let message = site_state(&mc, "site-c")
        .and_then(|s| s.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains(&format!("{ABANDON_SITES_ANNOTATION}=site-c")),
        "{message}"
    );

    env.mcs()
        .patch(
            "ring",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "metadata": { "annotations": { (ABANDON_SITES_ANNOTATION): "site-c" } } }),
            ),
        )
        .await
        .expect("annotate");
    env.wait_gone("ring").await;
    env.start_site("site-c").await;
    let cc = env
        .ccs("site-c")
        .get("cass")
        .await
        .expect("given-up site keeps its cluster");
    assert_eq!(cc.name_any(), "cass");
}

/// A site held in a Secret is added, rotated (bad then good credentials) and removed while
/// the controller runs, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_held_site_is_added_rotated_and_removed_without_restart() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut env = Env::build("secrets", own_sites().await, SimConfig::default(), |s| s).await;
    let ns = env.namespace.clone();
    env.restart_controller(|mut s| {
        s.sites.retain(|site| site.name == "site-a");
        s.secrets.namespace = Some(ns.clone());
        s
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(env.management.clone(), &env.namespace);
    let good = std::fs::read_to_string(env.sites.get("site-b").expect("site-b").kubeconfig_path())
        .expect("kubeconfig");
    let secret = |kubeconfig: &str| -> Secret {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "site-b-access", "labels": { (SITE_SECRET_LABEL): "site-b" } },
            "stringData": { "kubeconfig": kubeconfig }
        }))
        .expect("secret")
    };

    env.create(two_site_ring("ring", &env.namespace)).await;
    env.wait_invalid("ring", "site-b unknown before its secret")
        .await;
    secrets
        .create(&PostParams::default(), &secret(&good))
        .await
        .expect("secret created");
    env.wait_ready("ring").await;

    let token = good
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("token in kubeconfig")
        .trim_matches('"')
        .to_string();
    let bad = good.replace(&token, "not-the-token");
    secrets
        .replace("site-b-access", &PostParams::default(), &secret(&bad))
        .await
        .expect("rotated to bad credentials");
    env.patch_spec(
        "ring",
        json!({ "base": { "spec": { "cassandraImage": "cassandra:3.11.10" } } }),
    )
    .await;
    let mc = env
        .wait_mc("ring", "site-b rejects the rotated credentials", |mc| {
            site_state(mc, "site-b").is_some_and(|s| {
                s.state == "Unreachable" && s.message.as_deref().unwrap_or_default().contains("401")
            })
        })
        .await;
    assert!(
        site_state(&mc, "site-b")
            .and_then(|s| s.message.clone())
            .unwrap_or_default()
            .contains("401"),
        "{:?}",
        site_state(&mc, "site-b")
    );
    secrets
        .replace("site-b-access", &PostParams::default(), &secret(&good))
        .await
        .expect("rotated back");
    env.wait_ready("ring").await;
    env.wait_cc("site-b", "new image", |o| {
        o.is_some_and(|o| {
            spec_field(o, "/spec/cassandraImage") == Some(&json!("cassandra:3.11.10"))
        })
    })
    .await;

    secrets
        .delete("site-b-access", &DeleteParams::default())
        .await
        .expect("secret deleted");
    let mc = env.wait_invalid("ring", "site-b gone").await;
    assert!(
        condition(&mc, "Degraded").is_some_and(|c| c.message.contains("unknown site \"site-b\""))
    );
    assert!(
        env.ccs("site-b")
            .get_opt("cass")
            .await
            .expect("get")
            .is_some(),
        "nothing deleted at site-b"
    );
}

/// A ring over site-b and site-c only, whose CassandraClusters are named `cluster`.
fn ring_on_b_and_c(name: &str, namespace: &str, cluster: &str) -> serde_json::Value {
    let mut m = ring(name, namespace);
    m["spec"]["base"]["metadata"]["name"] = json!(cluster);
    m["spec"]["override"] = json!({
        "site-b": { "spec": { "topology": { "dc": [{ "name": "dc2", "rack": [{ "name": "rack1" }] }] } } },
        "site-c": { "spec": { "topology": { "dc": [{ "name": "dc3", "rack": [{ "name": "rack1" }] }] } } }
    });
    m["spec"]["seeds"] = json!({ "domains": { "site-b": "b.example", "site-c": "c.example" } });
    m
}

/// A hung site (its API server frozen: connections hang, nothing is refused) holds only the
/// rings that span it. Reconciles waiting on it give up once a probe finds it not answering, and
/// later ones fail at once, so they cannot take every reconcile slot from the rings elsewhere:
/// a ring on the other sites, created while more rings than there are slots wait on the hung
/// site, is Ready within seconds (judged from its own timestamps: created, Ready).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_site_does_not_hold_rings_elsewhere() {
    use futures::{StreamExt, TryStreamExt};
    use multi_casskop::controller::RECONCILE_CONCURRENCY;
    use multi_casskop::controller::site_io::SITE_REQUEST_TIMEOUT;
    let _serial = ONE_AT_A_TIME.lock().await;
    let env = Env::build("hung", own_sites().await, SimConfig::default(), |s| s).await;
    // Two waves and more of reconciles that each write site-b first.
    let held: Vec<String> = (0..2 * usize::from(RECONCILE_CONCURRENCY) + 6)
        .map(|i| format!("held{i}"))
        .collect();
    let mcs = env.mcs();
    futures::stream::iter(held.iter())
        .map(|name| {
            let mcs = mcs.clone();
            let manifest = ring_on_b_and_c(name, &env.namespace, &format!("c-{name}"));
            async move {
                let mc: multi_casskop::api::MultiCasskop =
                    serde_json::from_value(manifest).expect("manifest");
                mcs.create(&PostParams::default(), &mc).await.map(|_| ())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await
        .expect("rings created");
    for name in &held {
        env.wait_ready(name).await;
    }

    let site_b = env.sites.get("site-b").expect("site-b");
    site_b.pause().expect("SIGSTOP site-b");
    futures::stream::iter(held.iter())
        .map(|name| {
            let mcs = mcs.clone();
            async move {
                let patch = json!({ "spec": { "base": { "spec": { "cassandraImage": "cassandra:3.11.10" } } } });
                mcs.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await
        .expect("rings changed");
    let mut elsewhere = ring("elsewhere", &env.namespace);
    elsewhere["spec"]["base"]["metadata"]["name"] = json!("free");
    elsewhere["spec"]["override"]
        .as_object_mut()
        .expect("overrides")
        .remove("site-b");
    elsewhere["spec"]["seeds"]["domains"]
        .as_object_mut()
        .expect("domains")
        .remove("site-b");
    env.create(elsewhere).await;
    let mc = env.wait_ready("elsewhere").await;
    let created = mc
        .metadata
        .creation_timestamp
        .as_ref()
        .expect("created")
        .0
        .as_second();
    let ready = condition(&mc, "Ready")
        .expect("Ready")
        .last_transition_time
        .0
        .as_second();
    eprintln!("elsewhere Ready {} s after it was created", ready - created);
    // Alone it takes about a second. Waiting for a slot held by requests to the hung site takes
    // their whole deadline (10 s): at least 9 in whole seconds.
    let deadline = i64::try_from(SITE_REQUEST_TIMEOUT.as_secs()).expect("seconds");
    assert!(
        ready - created <= deadline - 2,
        "Ready {} s after it was created while site-b hung: {:#?}",
        ready - created,
        mc.status
    );
    let waiting = env.mcs().get(&held[0]).await.expect("held ring");
    assert!(!is_ready(&waiting), "Ready while site-b hangs");

    site_b.resume().expect("SIGCONT site-b");
    for name in &held {
        env.wait_ready(name).await;
    }
}
