//! End-to-end tests of the readiness rule against the faithful CassKop simulator (it writes in
//! the order and with the values of the real CassKop's traces: annotation first, status after,
//! phase `Running` during changes, every action `Ongoing` for the simulator's step).
//!
//! Order is judged from the objects' own state: the `startTime`/`endTime` CassKop wrote on its
//! rack actions at each site, and the MultiCasskop status the controller wrote; never from
//! which watch delivered first.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, watcher};
use multi_casskop::api::MultiCasskop;
use multi_casskop_e2e::SimConfig;
use serde_json::json;

/// How long each simulated CassKop action stays Ongoing.
const STEP: Duration = Duration::from_secs(2);

/// Every version of the MultiCasskop `name` the API server showed, as written by the controller.
struct RingHistory {
    seen: Arc<Mutex<Vec<MultiCasskop>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RingHistory {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ring_history(env: &Env, name: &str) -> RingHistory {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let api = env.mcs();
    let store = seen.clone();
    let field = format!("metadata.name={name}");
    let task = tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default().fields(&field)).default_backoff();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(watcher::Event::Apply(mc) | watcher::Event::InitApply(mc)) = event {
                store.lock().expect("lock").push(mc);
            }
        }
    });
    RingHistory { seen, task }
}

impl RingHistory {
    /// Every version that said Ready for `generation` while a site's status (as the controller
    /// reported it) was not `action`/Done: readiness claimed before it was true.
    fn early_ready(&self, generation: i64, action: &str) -> Vec<String> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|mc| is_ready(mc) && mc.metadata.generation == Some(generation))
            .flat_map(|mc| mc.status.iter().flat_map(|s| s.sites.clone()))
            .filter(|s| {
                s.last_cluster_action.as_deref() != Some(action)
                    || s.last_cluster_action_status.as_deref() != Some("Done")
            })
            .map(|s| {
                format!(
                    "{}: {:?}/{:?}",
                    s.site, s.last_cluster_action, s.last_cluster_action_status
                )
            })
            .collect()
    }
}

/// Applies `patch` to the ring's spec, waits until the ring is Ready for it, and checks from the
/// objects that each site's CassKop started `action` only after the previous site's ended, and
/// that the ring never said Ready before every site was done with it.
async fn change_in_order(env: &Env, history: &RingHistory, patch: serde_json::Value, action: &str) {
    env.patch_spec("ring", patch).await;
    let generation = env
        .mcs()
        .get("ring")
        .await
        .expect("ring")
        .metadata
        .generation
        .expect("generation");
    env.wait_mc(
        "ring",
        &format!("Ready for generation {generation}"),
        |mc| is_ready(mc) && mc.metadata.generation == Some(generation),
    )
    .await;
    let steps: Vec<(&str, &str)> = SITES.iter().map(|site| (*site, action)).collect();
    let windows = env.assert_sequential(&steps).await;
    let early = history.early_ready(generation, action);
    assert!(
        early.is_empty(),
        "{action}: the ring said Ready while {early:?}"
    );
    eprintln!("{action}: (site, CassKop start, CassKop end, our write) = {windows:?}");
}

/// An image change, a config change and a seed-list change each reach site n+1 only after
/// site n's CassKop reported done for that change, and the ring is Ready only after the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_each_site_only_after_the_previous_is_done() {
    let env = Env::with_sim("order", SimConfig::default().delay(STEP)).await;
    let history = ring_history(&env, "ring");
    env.create_ready(ring("ring", &env.namespace)).await;
    let writes_before = env.site_writes();

    change_in_order(
        &env,
        &history,
        json!({ "base": { "spec": { "cassandraImage": "cassandra:3.11.10" } } }),
        "UpdateDockerImage",
    )
    .await;
    change_in_order(
        &env,
        &history,
        json!({ "base": { "spec": { "config": { "cassandra-yaml": { "num_tokens": 16 } } } } }),
        "UpdateStatefulSet",
    )
    .await;
    change_in_order(
        &env,
        &history,
        json!({ "seeds": { "domains": { "site-a": "a2.example", "site-b": "b.example", "site-c": "c.example" } } }),
        "UpdateSeedList",
    )
    .await;
    let writes = env.site_writes() - writes_before;
    eprintln!("site writes for three changes of a three-site ring: {writes}");
    // One apply per site and change, plus a /status write for the seed list at site-b (cscetbon CRD).
    assert!(
        writes <= 3 * 3 + 3,
        "{writes} site writes for three changes"
    );
}

/// A site whose API server hangs (SIGSTOP) for two minutes mid-rollout is reported Unreachable
/// while it hangs, holds the rollout, and once it resumes (SIGCONT) the ring, and a ring created
/// during the freeze, are Ready within seconds, with no event at that site to nudge them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_site_recovers_without_a_nudge() {
    let env = Env::build(
        "freeze",
        own_sites().await,
        SimConfig::default().delay(STEP),
        |s| s,
    )
    .await;
    env.create_ready(ring("ring", &env.namespace)).await;
    let site_b = env.sites.get("site-b").expect("site-b");
    // site-b's CassKop takes 10 s for the change, so the API server is frozen while site-b is
    // still in progress even on a loaded machine (with 2 s, a slow test could freeze it after
    // site-b was done, and site-c would rightly be changed).
    let slow_change = Duration::from_secs(10);
    env.simulators["site-b"].set_delay(slow_change);

    env.patch_spec(
        "ring",
        json!({ "base": { "spec": { "cassandraImage": "cassandra:3.11.10" } } }),
    )
    .await;
    env.wait_mc("ring", "site-a done, site-b in progress", |mc| {
        site_state(mc, "site-a").is_some_and(|s| {
            s.state == "Ready" && s.last_cluster_action.as_deref() == Some("UpdateDockerImage")
        })
    })
    .await;
    site_b.pause().expect("SIGSTOP site-b");
    env.simulators["site-b"].set_delay(STEP);
    let mut second = ring("second", &env.namespace);
    second["spec"]["base"]["metadata"]["name"] = json!("cass2");
    env.create(second).await;
    env.wait_mc("ring", "site-b Unreachable while it hangs", |mc| {
        site_state(mc, "site-b").is_some_and(|s| s.state == "Unreachable" && !s.reachable)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    let frozen = env.mcs().get("ring").await.expect("ring");
    assert!(
        !is_ready(&frozen),
        "Ready while site-b hangs: {:#?}",
        frozen.status
    );
    let cc_c = env.ccs("site-c").get("cass").await.expect("site-c");
    assert_eq!(
        spec_field(&cc_c, "/spec/cassandraImage"),
        Some(&json!("cassandra:3.11.9")),
        "site-c was changed while site-b hung"
    );

    site_b.resume().expect("SIGCONT site-b");
    let resumed = std::time::Instant::now();
    // Ready within 10 s of SIGCONT, plus what the rollout itself needs after it: site-b's and
    // site-c's CassKop actions (one STEP each, and a reaction) are not the controller's delay.
    let allowance = Duration::from_secs(10) + 2 * (STEP + Duration::from_secs(2));
    for name in ["ring", "second"] {
        let api = env.mcs();
        multi_casskop_e2e::wait::until(format!("{name} Ready after SIGCONT"), allowance, || {
            let api = api.clone();
            async move {
                match api.get(name).await {
                    Ok(mc) if is_ready(&mc) => Ok(()),
                    Ok(mc) => Err(format!("{:#?}", mc.status)),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    eprintln!("both rings Ready {:?} after SIGCONT", resumed.elapsed());
}

/// A site whose CassKop cannot start the change (Jolokia down: `ToDo`) holds the rollout with
/// its ToDo in the message; the next site is not touched; the ring is not Ready; once CassKop
/// can act, the rollout carries on in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_site_holds_the_rollout_with_its_todo() {
    let env = Env::with_sim("blocked", SimConfig::default().delay(STEP)).await;
    env.create_ready(ring("ring", &env.namespace)).await;
    env.simulators["site-b"].set_jolokia_down(true);
    env.patch_spec(
        "ring",
        json!({ "base": { "spec": { "cassandraImage": "cassandra:3.11.10" } } }),
    )
    .await;
    let mc = env
        .wait_mc("ring", "site-b Blocked at ToDo", |mc| {
            site_state(mc, "site-b").is_some_and(|s| s.state == "Blocked")
        })
        .await;
    let b = site_state(&mc, "site-b").expect("site-b");
    assert!(
        b.message
            .as_deref()
            .unwrap_or_default()
            .contains("UpdateDockerImage at ToDo"),
        "{b:?}"
    );
    assert_eq!(
        site_state(&mc, "site-c").map(|s| s.state.as_str()),
        Some("Queued")
    );
    assert!(!is_ready(&mc));
    assert_eq!(
        condition(&mc, "Degraded").map(|c| (c.status.as_str(), c.reason.as_str())),
        Some(("True", "SiteFailing")),
        "a blocked site degrades the ring"
    );
    let c = env.ccs("site-c").get("cass").await.expect("site-c");
    assert_eq!(
        spec_field(&c, "/spec/cassandraImage"),
        Some(&json!("cassandra:3.11.9")),
        "site-c was written while site-b could not act"
    );

    env.simulators["site-b"].set_jolokia_down(false);
    env.wait_ready("ring").await;
    env.assert_sequential(&[
        ("site-a", "UpdateDockerImage"),
        ("site-b", "UpdateDockerImage"),
        ("site-c", "UpdateDockerImage"),
    ])
    .await;
}

/// A change CassKop refuses (it writes its previous spec back with CorrectCRDConfig) makes the
/// site Blocked with CassKop's reason; multi-casskop does not write it again (bounded writes)
/// and touches no later site, until the MultiCasskop asks for something else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_change_is_not_reapplied_until_the_spec_changes() {
    let env = Env::with_sim("refused", SimConfig::default().delay(STEP)).await;
    env.create_ready(ring("ring", &env.namespace)).await;
    // CassKop refuses dataCapacity changes (CheckNonAllowedChanges).
    env.patch_spec(
        "ring",
        json!({ "base": { "spec": { "dataCapacity": "2Gi" } } }),
    )
    .await;
    let mc = env
        .wait_mc("ring", "site-a Blocked by a refusal", |mc| {
            site_state(mc, "site-a").is_some_and(|s| s.state == "Blocked")
        })
        .await;
    let a = site_state(&mc, "site-a").expect("site-a");
    assert!(
        a.message
            .as_deref()
            .unwrap_or_default()
            .contains("CorrectCRDConfig"),
        "{a:?}"
    );
    assert!(
        a.refused_spec.is_some(),
        "the refused spec is remembered: {a:?}"
    );
    let writes = env.site_writes();
    let sim_writes = env.simulators["site-a"].write_count(&env.namespace, "cass");
    // Give a fighting controller every chance: poke the ring three times and wait, each
    // time, for the controller to have reconciled it again (its own reconcile counter).
    let ring_labels = multi_casskop::metrics::RingLabels {
        namespace: env.namespace.clone(),
        multicasskop: "ring".into(),
    };
    let reconciles = || {
        env.controller
            .as_ref()
            .expect("running")
            .ctx
            .metrics
            .reconciles
            .get_or_create(&ring_labels)
            .get()
    };
    for i in 0..3 {
        let before = reconciles();
        env.mcs()
            .patch(
                "ring",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(
                    json!({ "metadata": { "annotations": { "poke": i.to_string() } } }),
                ),
            )
            .await
            .expect("poke");
        multi_casskop_e2e::wait::until("the poke reconciled", CONVERGE, || async {
            if reconciles() > before {
                Ok(())
            } else {
                Err(format!("reconciles: {}", reconciles()))
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        env.site_writes(),
        writes,
        "multi-casskop wrote the refused spec again"
    );
    assert_eq!(
        env.simulators["site-a"].write_count(&env.namespace, "cass"),
        sim_writes,
        "CassKop and multi-casskop rewrite each other"
    );
    for site in ["site-b", "site-c"] {
        let cc = env.ccs(site).get("cass").await.expect("exists");
        assert_eq!(
            spec_field(&cc, "/spec/dataCapacity"),
            Some(&json!("1Gi")),
            "{site} was written"
        );
    }

    env.patch_spec("ring", json!({ "base": { "spec": { "dataCapacity": "1Gi", "cassandraImage": "cassandra:3.11.10" } } }))
        .await;
    let mc = env.wait_ready("ring").await;
    assert!(site_state(&mc, "site-a").is_some_and(|s| s.refused_spec.is_none()));
}

/// A change that asks nothing of CassKop (labels only: no new generation) never waits for it:
/// the ring is Ready again even with CassKop gone at a site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_labels_only_change_needs_nothing_from_casskop() {
    let mut env = Env::with_sim("labels", SimConfig::default().delay(STEP)).await;
    env.create_ready(ring("ring", &env.namespace)).await;
    env.simulators.remove("site-b");
    // CassKop is gone at site-b: wait until its last write has landed (the object is quiet).
    let api = env.ccs("site-b");
    let before = multi_casskop_e2e::wait::until("site-b quiet", CONVERGE, || {
        let api = api.clone();
        async move {
            let first = api.get("cass").await.map_err(|e| e.to_string())?;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let second = api.get("cass").await.map_err(|e| e.to_string())?;
            if first.metadata.resource_version == second.metadata.resource_version {
                Ok(second)
            } else {
                Err("still written".to_string())
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    env.patch_spec(
        "ring",
        json!({ "base": { "metadata": { "labels": { "app": "demo", "tier": "gold" } } } }),
    )
    .await;
    let mc = env.wait_ready("ring").await;
    let after = env.ccs("site-b").get("cass").await.expect("site-b");
    assert_eq!(
        after
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("tier"))
            .map(String::as_str),
        Some("gold")
    );
    assert_eq!(
        after.metadata.generation, before.metadata.generation,
        "labels only"
    );
    assert!(
        after
            .annotations()
            .contains_key(multi_casskop::labels::CASSKOP_LAST_APPLIED_ANNOTATION),
        "CassKop's annotation survives our write: {:?}",
        after.annotations()
    );
    assert!(site_state(&mc, "site-b").is_some_and(|s| s.state == "Ready"));
}

/// A canary rollout over four sites: the first site alone, then the other three at once (two
/// steps instead of four), each still ready before the ring is. Judged from the action windows
/// CassKop wrote at each site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_rollout_of_four_sites_takes_two_steps() {
    let sites = own_four_sites().await;
    let env = Env::build("canary", sites, SimConfig::default().delay(STEP), |s| s).await;
    let mut manifest = ring("ring", &env.namespace);
    manifest["spec"]["override"]["site-d"] = json!({ "spec": { "topology": { "dc": [{ "name": "dc4", "rack": [{ "name": "rack1" }] }] } } });
    manifest["spec"]["seeds"]["domains"]["site-d"] = json!("d.example");
    manifest["spec"]["rollout"] = json!({ "strategy": "Canary" });
    env.create_ready(manifest).await;
    env.patch_spec(
        "ring",
        json!({ "base": { "spec": { "cassandraImage": "cassandra:3.11.10" } } }),
    )
    .await;
    env.wait_mc("ring", "Ready with the new image", |mc| {
        is_ready(mc) && mc.metadata.generation == Some(2)
    })
    .await;
    let mut windows = Vec::new();
    for site in ["site-a", "site-b", "site-c", "site-d"] {
        let cc = env.ccs(site).get("cass").await.expect("exists");
        let (start, end) = action_window(&cc, "UpdateDockerImage").expect("image action");
        windows.push((site, start, end.expect("ended")));
    }
    let (_, _, canary_end) = windows[0];
    let rest = &windows[1..];
    assert!(
        rest.iter().all(|(_, start, _)| *start >= canary_end),
        "the canary site-a finishes before any other site starts: {windows:?}"
    );
    let last_start = rest.iter().map(|(_, s, _)| *s).max().expect("three");
    let first_end = rest.iter().map(|(_, _, e)| *e).min().expect("three");
    assert!(
        last_start < first_end,
        "site-b, site-c and site-d change together (one step): {windows:?}"
    );
}
