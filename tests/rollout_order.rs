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
use kube::runtime::watcher;
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
        let stream = watcher(api, watcher::Config::default().fields(&field));
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
