//! `spec.copyToSites`: Secrets and ConfigMaps of the MultiCasskop's namespace in the management
//! cluster (site-a) are copied to every other site's namespace before the CassandraCluster is
//! created there (proved by resourceVersions at the same site: one etcd), kept in sync with their
//! source, and deleted with the ring. An object its owner did not opt in (no
//! `multicasskop.db.orange.com/copy-to-sites=true` label) is refused with a status message and an
//! Event; an object of the same name at a site that the ring did not create is never overwritten
//! nor deleted.

mod common;

use std::collections::BTreeMap;

use common::*;
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

const OPT_IN: &str = "multicasskop.db.orange.com/copy-to-sites";

fn secret(name: &str, opted_in: bool, value: &str) -> Secret {
    let mut labels = BTreeMap::new();
    if opted_in {
        labels.insert(OPT_IN.to_string(), "true".to_string());
    }
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "token".to_string(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Default::default()
    }
}

fn token(s: &Secret) -> String {
    s.data
        .as_ref()
        .and_then(|d| d.get("token"))
        .map(|b| String::from_utf8_lossy(&b.0).to_string())
        .unwrap_or_default()
}

fn secrets(client: &Client, ns: &str) -> Api<Secret> {
    Api::namespaced(client.clone(), ns)
}

/// The resourceVersion the CassandraCluster `cass` was created with at a site, from a watch
/// started before the ring exists (its first event is the creation, with the object's own
/// version then).
fn creation_version(api: Api<DynamicObject>) -> tokio::task::JoinHandle<Option<u64>> {
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(o) = event
                && o.name_any() == "cass"
            {
                return o.resource_version().and_then(|v| v.parse().ok());
            }
        }
        None
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_copied_before_the_cluster_kept_in_sync_refused_and_removed() {
    let env = Env::new("copy").await;
    let ns = env.namespace.clone();
    let source = secrets(&env.management, &ns);
    let pp = PostParams::default();
    source
        .create(&pp, &secret("pull", true, "s1"))
        .await
        .expect("pull");
    source
        .create(&pp, &secret("unlabelled", false, "u1"))
        .await
        .expect("unlabelled");
    source
        .create(&pp, &secret("theirs", true, "source"))
        .await
        .expect("theirs");
    let configmaps: Api<ConfigMap> = Api::namespaced(env.management.clone(), &ns);
    let conf: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "conf", "labels": { OPT_IN: "true" } },
        "data": { "cassandra.yaml": "num_tokens: 16" }
    }))
    .expect("ConfigMap");
    configmaps.create(&pp, &conf).await.expect("conf");
    // At site-c, someone else's Secret already holds the name `theirs`.
    let site_c_theirs = secrets(&env.clients["site-c"], &ns)
        .create(&pp, &secret("theirs", false, "mine"))
        .await
        .expect("site-c theirs");

    let watches: BTreeMap<&str, _> = ["site-b", "site-c"]
        .into_iter()
        .map(|site| (site, creation_version(env.ccs(site))))
        .collect();
    let mut manifest = deleting_ring("ring", &ns);
    manifest["spec"]["copyToSites"] = json!({ "secrets": ["pull"], "configMaps": ["conf"] });
    // Every site is written in the first reconcile: the copies must come first within it, not
    // merely while a site waits for the one before it.
    manifest["spec"]["rollout"] = json!({ "strategy": "Parallel" });
    let mc = env.create_ready(manifest).await;

    // Copied before the CassandraCluster, labelled ours, same content, recorded by UID.
    let status = mc.status.expect("status");
    for (site, watch) in watches {
        let created = watch.await.expect("watch").expect("cass created");
        let copy = secrets(&env.clients[site], &ns)
            .get("pull")
            .await
            .expect("copy");
        let copied: u64 = copy
            .resource_version()
            .and_then(|v| v.parse().ok())
            .expect("resourceVersion");
        assert!(
            copied < created,
            "{site}: Secret pull (rv {copied}) before CassandraCluster cass (rv {created})"
        );
        assert_eq!(token(&copy), "s1", "{site}");
        assert_eq!(
            copy.labels()
                .get("multicasskop.db.orange.com/name")
                .map(String::as_str),
            Some("ring")
        );
        let cm: Api<ConfigMap> = Api::namespaced(env.clients[site].clone(), &ns);
        let cm = cm.get("conf").await.expect("ConfigMap copied");
        assert_eq!(
            cm.data
                .unwrap_or_default()
                .get("cassandra.yaml")
                .map(String::as_str),
            Some("num_tokens: 16")
        );
        let entry = status.sites.iter().find(|s| s.site == site).expect("site");
        assert!(
            entry
                .copies
                .iter()
                .any(|c| c.name == "pull" && Some(c.uid.clone()) == copy.uid()),
            "{site}: {:?}",
            entry.copies
        );
    }
    // site-a is the management cluster: the source itself is there, nothing is copied over it.
    let at_a = source.get("pull").await.expect("source");
    assert_eq!(token(&at_a), "s1");
    let a = status
        .sites
        .iter()
        .find(|s| s.site == "site-a")
        .expect("site-a");
    assert!(a.copies.is_empty(), "{:?}", a.copies);

    // The source changes: the copies follow.
    source
        .patch(
            "pull",
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": { "token": "czI=" } })),
        )
        .await
        .expect("source updated");
    for site in ["site-b", "site-c"] {
        let api = secrets(&env.clients[site], &ns);
        multi_casskop_e2e::wait::until(format!("{site}: pull updated"), CONVERGE, || async {
            let s = api.get("pull").await.map_err(|e| e.to_string())?;
            if token(&s) == "s2" {
                Ok(())
            } else {
                Err(token(&s))
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    // Not opted in, and someone else's object at site-c: refused, said in status and Events.
    env.patch_spec(
        "ring",
        json!({ "copyToSites": { "secrets": ["pull", "unlabelled", "theirs"], "configMaps": ["conf"] } }),
    )
    .await;
    let mc = env
        .wait_mc("ring", "refusals in the site status", |mc| {
            let message = |site: &str| {
                mc.status
                    .as_ref()
                    .and_then(|s| s.sites.iter().find(|e| e.site == site))
                    .and_then(|e| e.message.clone())
                    .unwrap_or_default()
            };
            message("site-b").contains("Secret unlabelled is not copied: it lacks the label")
                && message("site-c").contains(
                    "Secret theirs already exists at site site-c and was not created by this ring",
                )
        })
        .await;
    let events: Api<Event> = Api::namespaced(env.management.clone(), &ns);
    multi_casskop_e2e::wait::until("CopyRefused Events", CONVERGE, || async {
        let list = events
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let notes: Vec<String> = list
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("CopyRefused"))
            .filter_map(|e| e.message.clone())
            .collect();
        if notes.iter().any(|n| n.contains("unlabelled"))
            && notes.iter().any(|n| n.contains("theirs"))
        {
            Ok(())
        } else {
            Err(format!("{notes:?}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for site in ["site-b", "site-c"] {
        let got = secrets(&env.clients[site], &ns)
            .get_opt("unlabelled")
            .await
            .expect("read");
        assert!(got.is_none(), "{site}: an unlabelled Secret was copied");
    }
    let theirs_b = secrets(&env.clients["site-b"], &ns)
        .get("theirs")
        .await
        .expect("copied where the name is free");
    assert_eq!(token(&theirs_b), "source");
    let theirs_c = secrets(&env.clients["site-c"], &ns)
        .get("theirs")
        .await
        .expect("still there");
    assert_eq!(token(&theirs_c), "mine", "never overwritten");
    assert_eq!(
        theirs_c.resource_version(),
        site_c_theirs.resource_version()
    );
    // The ring's CassandraClusters are untouched by the refusals.
    assert!(
        mc.status
            .expect("status")
            .sites
            .iter()
            .all(|s| s.uid.is_some())
    );

    // Deleted with the ring: only the copies; the sources and site-c's own Secret stay.
    env.mcs()
        .delete("ring", &Default::default())
        .await
        .expect("delete");
    env.wait_gone("ring").await;
    for site in ["site-b", "site-c"] {
        let api = secrets(&env.clients[site], &ns);
        let cm: Api<ConfigMap> = Api::namespaced(env.clients[site].clone(), &ns);
        assert!(
            api.get_opt("pull").await.expect("read").is_none(),
            "{site}: pull removed"
        );
        assert!(
            cm.get_opt("conf").await.expect("read").is_none(),
            "{site}: conf removed"
        );
    }
    assert!(
        secrets(&env.clients["site-b"], &ns)
            .get_opt("theirs")
            .await
            .expect("read")
            .is_none(),
        "site-b: our copy of theirs removed"
    );
    let kept = secrets(&env.clients["site-c"], &ns)
        .get("theirs")
        .await
        .expect("kept");
    assert_eq!(
        kept.uid(),
        site_c_theirs.uid(),
        "site-c's own Secret is never deleted"
    );
    for name in ["pull", "unlabelled", "theirs"] {
        assert!(
            source.get_opt(name).await.expect("read").is_some(),
            "source {name} kept"
        );
    }
}
