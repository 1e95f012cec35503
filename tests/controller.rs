//! End-to-end tests of the controller on three real API servers with the CassKop simulator.
//! site-a carries Orange's CassKop CRD (no status subresource), site-b cscetbon's (with one),
//! site-c Orange's. Each test has its own namespace, simulators and controller.

mod common;

use std::time::Duration;

use common::*;
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams};
use multi_casskop::labels::{FINALIZER, FINALIZER_FIELD_MANAGER, OWNER_NAME_LABEL, SITE_LABEL};
use multi_casskop_e2e::Mode;
use serde_json::json;

/// Create: three CassandraClusters, one site at a time, each accepted by the real CassKop schema,
/// all with the same seed list (site-b through its status subresource), and a Ready ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_rolls_out_site_by_site_with_one_seed_list() {
    let env = Env::new("create").await;
    env.create(ring("ring", &env.namespace)).await;
    let mc = env.wait_ready("ring").await;
    let ctx = &env.controller.as_ref().expect("running").ctx;
    assert_eq!(ctx.readiness(), Ok(()), "the controller reports ready");

    let status = mc.status.as_ref().expect("status");
    assert_eq!(status.ready_sites.as_deref(), Some("3/3"));
    assert_eq!(status.phase.as_deref(), Some("Ready"));
    assert_eq!(status.seedlist, ring_seeds());
    assert!(mc.finalizers().iter().any(|f| f == FINALIZER));
    let finalizer_managers: Vec<_> = mc
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|f| {
            f.fields_v1
                .as_ref()
                .is_some_and(|v| v.0.pointer("/f:metadata/f:finalizers").is_some())
        })
        .filter_map(|f| f.manager.clone())
        .collect();
    assert_eq!(
        finalizer_managers,
        [FINALIZER_FIELD_MANAGER],
        "who holds the finalizer"
    );
    for site in SITES {
        let s = site_state(&mc, site).expect("site entry");
        assert_eq!(
            (s.state.as_str(), s.reachable, s.phase.as_deref()),
            ("Ready", true, Some("Running")),
            "{site}: {s:?}"
        );
        let cc = env
            .ccs(site)
            .get("cass")
            .await
            .expect("CassandraCluster exists");
        assert_eq!(
            seedlist(&cc),
            ring_seeds(),
            "{site} holds the ring's seed list"
        );
        assert_eq!(cc.labels().get(SITE_LABEL).map(String::as_str), Some(site));
        assert_eq!(
            cc.labels().get("app").map(String::as_str),
            Some("demo"),
            "user labels are kept"
        );
    }
    // Order, from the objects: each site was created after the previous one's CassKop ended
    // its Initializing action.
    env.assert_sequential(&[
        ("site-a", "Initializing"),
        ("site-b", "Initializing"),
        ("site-c", "Initializing"),
    ])
    .await;
    // Events are for what needs attention: a healthy rollout writes none (its progress is in
    // the status and the logs).
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(env.management.clone(), &env.namespace);
    let written: Vec<String> = events
        .list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("ring"))
        .map(|e| format!("{:?} {:?}", e.reason, e.note))
        .collect();
    assert!(
        written.is_empty(),
        "Events on a healthy create: {written:?}"
    );
    let cc_b = env.ccs("site-b").get("cass").await.expect("site-b");
    let fields = cc_b.metadata.managed_fields.clone().unwrap_or_default();
    let ours: Vec<_> = fields
        .iter()
        .filter(|f| f.manager.as_deref() == Some("multi-casskop/site"))
        .map(|f| f.subresource.clone().unwrap_or_default())
        .collect();
    assert!(
        ours.contains(&"status".to_string()),
        "site-b's seed list went through /status: {ours:?}"
    );
}

/// Update: an image change reaches the sites one at a time; a stuck site holds the rollout
/// with a clear status and a Degraded condition past the deadline; healing it finishes the rollout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_change_is_sequential_and_a_stuck_site_holds_it() {
    let env = Env::new("update").await;
    let mut manifest = ring("ring", &env.namespace);
    manifest["spec"]["rollout"] = json!({ "progressDeadlineSeconds": 3 });
    env.create(manifest).await;
    env.wait_ready("ring").await;

    let image = |tag: &'static str| {
        move |o: &kube::api::DynamicObject| {
            spec_field(o, "/spec/cassandraImage") == Some(&json!(tag))
        }
    };
    env.patch_spec(
        "ring",
        json!({ "base": { "spec": { "cassandraImage": "cassandra:3.11.10" } } }),
    )
    .await;
    env.wait_ready("ring").await;
    env.assert_sequential(&[
        ("site-a", "UpdateDockerImage"),
        ("site-b", "UpdateDockerImage"),
        ("site-c", "UpdateDockerImage"),
    ])
    .await;

    env.simulators["site-b"].set_mode(Mode::Stuck);
    env.patch_spec(
        "ring",
        json!({ "base": { "spec": { "cassandraImage": "cassandra:3.11.11" } } }),
    )
    .await;
    let mc = env
        .wait_mc("ring", "site-b holds the rollout past its deadline", |mc| {
            condition(mc, "Degraded")
                .is_some_and(|c| c.status == "True" && c.reason == "ProgressDeadlineExceeded")
                && site_state(mc, "site-c").is_some_and(|s| s.state == "Queued")
        })
        .await;
    let b = site_state(&mc, "site-b").expect("site-b");
    assert_eq!(b.state, "Progressing");
    assert!(
        b.message
            .as_deref()
            .unwrap_or_default()
            .contains("UpdateDockerImage Ongoing"),
        "{b:?}"
    );
    assert_eq!(
        site_state(&mc, "site-c")
            .and_then(|s| s.message.clone())
            .as_deref(),
        Some("waiting for site site-b to be ready first")
    );
    assert_eq!(
        site_state(&mc, "site-a").map(|s| s.state.as_str()),
        Some("Ready")
    );
    let c = env.ccs("site-c").get("cass").await.expect("site-c");
    assert_eq!(
        spec_field(&c, "/spec/cassandraImage"),
        Some(&json!("cassandra:3.11.10")),
        "site-c untouched while site-b is stuck"
    );
    assert_ne!(
        mc.status.as_ref().and_then(|s| s.observed_generation),
        mc.metadata.generation
    );

    env.simulators["site-b"].set_mode(Mode::Normal);
    env.wait_ready("ring").await;
    env.wait_cc("site-c", "new image", |o| {
        o.is_some_and(|o| image("cassandra:3.11.11")(o))
    })
    .await;
}

/// Scale: more nodes in site-c's DC change the seed list, and every site gets the new list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_changes_the_seed_list_everywhere_in_order() {
    let env = Env::new("scale").await;
    env.create(ring("ring", &env.namespace)).await;
    env.wait_ready("ring").await;
    env.patch_spec(
        "ring",
        json!({ "override": { "site-c": { "spec": { "topology": { "dc": [{ "name": "dc3", "nodesPerRacks": 3, "rack": [{ "name": "rack1" }, { "name": "rack2" }] }] } } } } }),
    )
    .await;
    let want: Vec<String> = [
        "cass-dc1-rack1-0.a.example",
        "cass-dc2-rack1-0.b.example",
        "cass-dc3-rack1-0.c.example",
        "cass-dc3-rack1-1.c.example",
        "cass-dc3-rack2-0.c.example",
    ]
    .map(String::from)
    .to_vec();
    let mc = env
        .wait_mc("ring", "ready with the new seeds", |mc| {
            is_ready(mc) && mc.status.as_ref().is_some_and(|s| s.seedlist == want)
        })
        .await;
    for site in SITES {
        let cc = env.ccs(site).get("cass").await.expect("exists");
        assert_eq!(seedlist(&cc), want, "{site}");
        assert_eq!(
            site_state(&mc, site).map(|s| s.seedlist.clone()),
            Some(want.clone())
        );
    }
    // site-a and site-b only change their seed list; site-c scales up (its seeds change too).
    env.assert_sequential(&[
        ("site-a", "UpdateSeedList"),
        ("site-b", "UpdateSeedList"),
        ("site-c", "ScaleUp"),
    ])
    .await;
}

/// Drift: a hand edit is reverted and a hand deletion is recreated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_restored() {
    let env = Env::new("drift").await;
    env.create(ring("ring", &env.namespace)).await;
    env.wait_ready("ring").await;
    env.ccs("site-b")
        .patch(
            "cass",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "cassandraImage": "hand:edited" } })),
        )
        .await
        .expect("hand edit");
    env.wait_cc("site-b", "image restored", |o| {
        o.is_some_and(|o| spec_field(o, "/spec/cassandraImage") == Some(&json!("cassandra:3.11.9")))
    })
    .await;
    env.ccs("site-c")
        .delete("cass", &DeleteParams::default())
        .await
        .expect("hand delete");
    env.wait_cc("site-c", "recreated with seeds", |o| {
        o.is_some_and(|o| seedlist(o) == ring_seeds())
    })
    .await;
    env.wait_ready("ring").await;
}

/// Bad inputs: each yields its condition and message, and nothing is written or deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_reported_and_nothing_is_deleted() {
    let env = Env::new("bad").await;
    let cases = [
        (
            "dash",
            json!({ "site-a": { "spec": { "topology": { "dc": [{ "name": "dc-1" }] } } } }),
            "DC name \"dc-1\" contains '-'",
        ),
        (
            "unknown",
            json!({ "nowhere": {} }),
            "unknown site \"nowhere\"",
        ),
        (
            "dup",
            json!({ "site-a": { "spec": { "topology": { "dc": [{ "name": "dcx" }] } } }, "site-b": { "spec": { "topology": { "dc": [{ "name": "dcx" }] } } } }),
            "DC \"dcx\" is also used at site",
        ),
    ];
    for (name, overrides, message) in cases {
        let mut manifest = ring(name, &env.namespace);
        manifest["spec"]["override"] = overrides;
        manifest["spec"]["seeds"] = json!(null);
        env.create(manifest).await;
        let mc = env
            .wait_mc(name, "reported invalid", |mc| {
                mc.status
                    .as_ref()
                    .is_some_and(|s| s.phase.as_deref() == Some("Invalid"))
            })
            .await;
        let degraded = condition(&mc, "Degraded").expect("Degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "InvalidSpec")
        );
        assert!(
            degraded.message.contains(message),
            "{name}: {}",
            degraded.message
        );
    }
    for site in SITES {
        assert!(
            env.ccs(site)
                .list(&Default::default())
                .await
                .expect("list")
                .items
                .is_empty(),
            "nothing written at {site}"
        );
    }
    let events = kube::Api::<k8s_openapi::api::core::v1::Event>::namespaced(
        env.management.clone(),
        &env.namespace,
    );
    let found = multi_casskop_e2e::wait::until("InvalidSpec event", CONVERGE, || {
        let events = events.clone();
        async move {
            let list = events
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            list.items
                .iter()
                .any(|e| e.reason.as_deref() == Some("InvalidSpec"))
                .then_some(())
                .ok_or("none yet".to_string())
        }
    })
    .await;
    assert!(found.is_ok());

    // A ready ring whose next change is refused by the site's CassKop schema keeps running.
    env.create(ring("good", &env.namespace)).await;
    env.wait_ready("good").await;
    env.patch_spec(
        "good",
        json!({ "base": { "spec": { "dataCapacity": "lots of space" } } }),
    )
    .await;
    let mc = env
        .wait_mc("good", "site-a rejected", |mc| {
            site_state(mc, "site-a").is_some_and(|s| s.state == "Invalid")
        })
        .await;
    let a = site_state(&mc, "site-a").expect("site-a");
    assert!(
        a.message
            .as_deref()
            .unwrap_or_default()
            .contains("dataCapacity"),
        "{a:?}"
    );
    assert_eq!(
        condition(&mc, "Degraded").map(|c| c.reason.as_str()),
        Some("SiteFailing")
    );
    for site in SITES {
        let cc = env.ccs(site).get("cass").await.expect("still there");
        assert_eq!(
            spec_field(&cc, "/spec/dataCapacity"),
            Some(&json!("1Gi")),
            "{site} keeps its last good spec"
        );
    }
}

/// Deletion with deleteCassandraCluster: every site's CassandraCluster goes, then the MultiCasskop.
/// Without it: they stay, released (our labels removed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_with_and_without_delete_flag() {
    let env = Env::new("delete").await;
    env.create_ready(deleting_ring("ring", &env.namespace))
        .await;
    env.mcs()
        .delete("ring", &DeleteParams::default())
        .await
        .expect("delete");
    for site in SITES {
        env.wait_cc(site, "deleted", |o| o.is_none()).await;
    }
    env.wait_gone("ring").await;

    env.create(ring("keep", &env.namespace)).await;
    env.wait_ready("keep").await;
    env.mcs()
        .delete("keep", &DeleteParams::default())
        .await
        .expect("delete");
    env.wait_gone("keep").await;
    for site in SITES {
        let cc = env.ccs(site).get("cass").await.expect("left running");
        assert!(
            !cc.labels().contains_key(OWNER_NAME_LABEL),
            "{site}: released"
        );
    }
}

/// Site removal with deleteCassandraCluster: the leaving site of a Ready ring waits for the
/// replication acknowledgement, is scaled to zero, then deleted, and its seeds leave the other
/// sites' lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_site_is_decommissioned_then_deleted() {
    let env = Env::new("remove").await;
    env.create_ready(deleting_ring("ring", &env.namespace))
        .await;
    let recorder = env.record();
    env.patch_spec(
        "ring",
        json!({ "override": { "site-c": null }, "seeds": { "domains": { "site-c": null } } }),
    )
    .await;
    env.wait_mc("ring", "site-c awaiting the replication change", |mc| {
        site_state(mc, "site-c").is_some_and(|s| s.state == "AwaitingReplication")
    })
    .await;
    env.mcs()
        .patch(
            "ring",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": {
                multi_casskop::labels::REPLICATION_DROPPED_ANNOTATION: "site-c"
            } } })),
        )
        .await
        .expect("acknowledged");
    env.wait_cc("site-c", "deleted", |o| o.is_none()).await;
    let scaled = recorder.first("site-c", |o| {
        spec_field(o, "/spec/topology/dc/0/nodesPerRacks") == Some(&json!(0)) && running_done(o)
    });
    assert!(
        scaled.is_some(),
        "site-c was scaled to zero and decommissioned before deletion"
    );
    let want: Vec<String> = ring_seeds()
        .into_iter()
        .filter(|s| !s.contains(".c.example"))
        .collect();
    let mc = env
        .wait_mc("ring", "ready without site-c", |mc| {
            is_ready(mc)
                && mc
                    .status
                    .as_ref()
                    .is_some_and(|s| s.seedlist == want && s.sites.len() == 2)
        })
        .await;
    for site in ["site-a", "site-b"] {
        env.wait_cc(site, "seeds without site-c", |o| {
            o.is_some_and(|o| seedlist(o) == want)
        })
        .await;
    }
    assert_eq!(mc.status.and_then(|s| s.ready_sites), Some("2/2".into()));
}

/// Without deleteCassandraCluster, a removed site is left running and reported as orphaned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_site_without_delete_flag_is_orphaned() {
    let env = Env::new("orphan").await;
    env.create(ring("ring", &env.namespace)).await;
    env.wait_ready("ring").await;
    env.patch_spec(
        "ring",
        json!({ "override": { "site-c": null }, "seeds": { "domains": { "site-c": null } } }),
    )
    .await;
    let mc = env
        .wait_mc("ring", "site-c orphaned", |mc| {
            site_state(mc, "site-c").is_some_and(|s| s.state == "Orphaned") && is_ready(mc)
        })
        .await;
    assert!(
        site_state(&mc, "site-c")
            .and_then(|s| s.message.clone())
            .unwrap_or_default()
            .contains("left running")
    );
    // The controller decided (Orphaned): the object itself shows it was never scaled down by
    // multi-casskop (no write by its scale-down field manager) and keeps its topology.
    let cc = env.ccs("site-c").get("cass").await.expect("still there");
    let managers = managers(&cc);
    assert!(
        !managers
            .iter()
            .any(|m| m == multi_casskop::labels::RELEASE_FIELD_MANAGER),
        "not scaled down: {managers:?}"
    );
    assert_eq!(
        spec_field(&cc, "/spec/topology/dc/0/nodesPerRacks"),
        None,
        "not scaled down"
    );
}

/// Steady state: after convergence the controller makes no write for a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converged_ring_causes_no_writes() {
    let env = Env::new("rest").await;
    env.create(ring("ring", &env.namespace)).await;
    env.wait_ready("ring").await;
    // Let the simulators' last writes and our own status echo settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = env.all_writes();
    let env = &env;
    let rv_before: Vec<_> = futures::future::join_all(SITES.map(|s| async move {
        env.ccs(s)
            .get("cass")
            .await
            .expect("exists")
            .resource_version()
    }))
    .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        env.all_writes(),
        before,
        "write requests (sites and management) during a minute at rest"
    );
    let rv_after: Vec<_> = futures::future::join_all(SITES.map(|s| async move {
        env.ccs(s)
            .get("cass")
            .await
            .expect("exists")
            .resource_version()
    }))
    .await;
    assert_eq!(rv_before, rv_after, "no CassandraCluster changed");
}
