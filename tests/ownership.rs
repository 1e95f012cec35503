//! Ownership you cannot forge, on real API servers: a ring writes over, scales down or deletes
//! only CassandraClusters whose UID it recorded when it created them. A pre-existing object, an
//! object carrying forged labels, and another ring's object are left byte-for-byte unchanged.

mod common;

use common::*;
use kube::ResourceExt;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use multi_casskop::labels::{
    ADOPT_SITES_ANNOTATION, OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, SITE_LABEL,
};
use multi_casskop_e2e::namespace;
use serde_json::json;

/// A CassandraCluster made by hand at a site: the DC the ring wants at site-b (so CassKop
/// accepts the ring's spec once it is adopted: it refuses topology changes of a live DC), on an
/// older image.
fn hand_made(name: &str, namespace: &str, labels: serde_json::Value) -> DynamicObject {
    multi_casskop_e2e::cassandra::from_json(json!({
        "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
        "metadata": { "name": name, "namespace": namespace, "labels": labels },
        "spec": { "nodesPerRacks": 1, "cassandraImage": "cassandra:3.11.4", "dataCapacity": "1Gi",
                  "maxPodUnavailable": 1,
                  "topology": { "dc": [{ "name": "dc2", "rack": [{ "name": "rack1" }] }] } }
    }))
}

fn fingerprint(o: &DynamicObject) -> (Option<String>, Option<serde_json::Value>) {
    (o.resource_version(), o.data.get("spec").cloned())
}

/// What multi-casskop would have changed, had it written the object: its field manager, its
/// labels, the image. (CassKop, simulated in the ring's namespace, does act on the hand-made
/// object: its defaults are not ours.)
fn untouched_by_us(o: &DynamicObject) -> Result<(), String> {
    let managers = managers(o);
    if managers.iter().any(|m| m.starts_with("multi-casskop")) {
        return Err(format!("written by multi-casskop: {managers:?}"));
    }
    if o.labels().contains_key(OWNER_NAME_LABEL) {
        return Err(format!("labelled: {:?}", o.labels()));
    }
    let spec = o.data.get("spec").cloned().unwrap_or_default();
    if spec["cassandraImage"] != json!("cassandra:3.11.4") {
        return Err(format!("spec changed: {spec}"));
    }
    Ok(())
}

/// An existing CassandraCluster the ring did not create is a Conflict: never overwritten, the
/// rollout holds there, the status names it; adopting it on purpose takes it over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_existing_object_is_a_conflict_until_adopted() {
    let env = Env::new("conflict").await;
    env.ccs("site-b")
        .create(
            &PostParams::default(),
            &hand_made("cass", &env.namespace, json!({})),
        )
        .await
        .expect("hand-made CassandraCluster");
    env.create(deleting_ring("ring", &env.namespace)).await;
    let mc = env
        .wait_mc("ring", "site-b in Conflict", |mc| {
            site_state(mc, "site-b").is_some_and(|s| s.state == "Conflict")
        })
        .await;
    let b = site_state(&mc, "site-b").expect("site-b");
    let message = b.message.clone().unwrap_or_default();
    assert!(
        message.contains(&format!("{}/cass", env.namespace))
            && message.contains(ADOPT_SITES_ANNOTATION),
        "{message}"
    );
    assert!(!is_ready(&mc));
    assert_eq!(
        site_state(&mc, "site-a").map(|s| s.state),
        Some(multi_casskop::api::SiteState::Ready)
    );
    assert_eq!(
        site_state(&mc, "site-c").map(|s| s.state),
        Some(multi_casskop::api::SiteState::Queued)
    );
    let now = env.ccs("site-b").get("cass").await.expect("still there");
    untouched_by_us(&now).unwrap_or_else(|e| panic!("the hand-made object: {e}"));
    assert!(
        env.ccs("site-c")
            .get_opt("cass")
            .await
            .expect("read")
            .is_none(),
        "site-c created behind a conflict"
    );

    env.mcs()
        .patch(
            "ring",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "metadata": { "annotations": { ADOPT_SITES_ANNOTATION: "site-b" } } }),
            ),
        )
        .await
        .expect("annotate");
    let mc = env.wait_ready("ring").await;
    let adopted = env.ccs("site-b").get("cass").await.expect("adopted");
    assert_eq!(
        site_state(&mc, "site-b").and_then(|s| s.uid.clone()),
        adopted.uid(),
        "the adopted object's UID is recorded"
    );
    assert_eq!(
        adopted.labels().get(OWNER_NAME_LABEL).map(String::as_str),
        Some("ring")
    );
}

/// Forged labels do not make an object ours: a CassandraCluster in another namespace carrying
/// the ring's labels survives the ring's deletion (with deleteCassandraCluster) untouched, and a
/// second ring computing the same object gets a Conflict and never deletes the first one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_labels_and_a_second_ring_touch_nothing() {
    let env = Env::new("forged").await;
    let other = namespace::unique_name("victim");
    namespace::create_namespace(&env.clients["site-c"], &other)
        .await
        .expect("namespace");
    let victims = multi_casskop_e2e::cassandra::api(&env.clients["site-c"], &other);
    let labels = json!({ OWNER_NAME_LABEL: "ring", OWNER_NAMESPACE_LABEL: env.namespace, SITE_LABEL: "site-c" });
    let victim = victims
        .create(&PostParams::default(), &hand_made("cass", &other, labels))
        .await
        .expect("victim");
    env.create_ready(deleting_ring("ring", &env.namespace))
        .await;
    let originals: Vec<DynamicObject> = {
        let mut v = Vec::new();
        for site in SITES {
            v.push(env.ccs(site).get("cass").await.expect("ring's object"));
        }
        v
    };

    let mut second = deleting_ring("second", &env.namespace);
    second["spec"]["rollout"] = json!({ "strategy": "Parallel" });
    env.create(second).await;
    let mc = env
        .wait_mc("second", "every site in Conflict", |mc| {
            SITES
                .iter()
                .all(|s| site_state(mc, s).is_some_and(|s| s.state == "Conflict"))
        })
        .await;
    assert!(
        site_state(&mc, "site-a")
            .and_then(|s| s.message.clone())
            .unwrap_or_default()
            .contains(&format!("MultiCasskop {}/ring", env.namespace)),
        "the conflict names the owner: {:#?}",
        mc.status
    );
    env.mcs()
        .delete("second", &DeleteParams::default())
        .await
        .expect("delete second");
    env.wait_gone("second").await;
    for (site, original) in SITES.iter().zip(&originals) {
        let now = env
            .ccs(site)
            .get("cass")
            .await
            .expect("first ring's object survives");
        assert_eq!(now.uid(), original.uid(), "{site}");
        assert_eq!(
            now.data.get("spec"),
            original.data.get("spec"),
            "{site}: spec changed"
        );
    }
    env.wait_ready("ring").await;

    env.mcs()
        .delete("ring", &DeleteParams::default())
        .await
        .expect("delete ring");
    env.wait_gone("ring").await;
    for site in SITES {
        assert!(
            env.ccs(site).get_opt("cass").await.expect("read").is_none(),
            "{site}: the ring's own object is deleted"
        );
    }
    let after = victims
        .get("cass")
        .await
        .expect("the forged-label object survives");
    assert_eq!(
        fingerprint(&after),
        fingerprint(&victim),
        "the forged-label object was touched"
    );
}

/// Renaming `base.metadata.name` makes the old objects leave the ring like a site leaving it:
/// with `deleteCassandraCluster`, decommissioned (scaled to 0) and deleted; the new ones are
/// created; nothing is left running, labelled and forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_cluster_replaces_the_old_one() {
    let env = Env::new("rename").await;
    env.create_ready(deleting_ring("ring", &env.namespace))
        .await;
    env.patch_spec(
        "ring",
        json!({ "base": { "metadata": { "name": "cass2" } } }),
    )
    .await;
    for site in SITES {
        let api = env.ccs(site);
        multi_casskop_e2e::wait::until(format!("{site}: cass gone, cass2 there"), CONVERGE, || {
            let api = api.clone();
            async move {
                let old = api.get_opt("cass").await.map_err(|e| e.to_string())?;
                let new = api.get_opt("cass2").await.map_err(|e| e.to_string())?;
                match (old, new) {
                    (None, Some(_)) => Ok(()),
                    (old, new) => Err(format!(
                        "cass: {:?}, cass2: {}",
                        old.map(|o| o.data.get("spec").cloned()),
                        new.is_some()
                    )),
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let mc = env.wait_ready("ring").await;
    let names: Vec<String> = mc
        .status
        .iter()
        .flat_map(|s| s.sites.iter().map(|x| x.name.clone()))
        .collect();
    assert_eq!(names, ["cass2", "cass2", "cass2"], "{:#?}", mc.status);
}
