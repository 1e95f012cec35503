//! `multi-casskop site add|list|remove` against real API servers, run as a user would run the
//! binary: the minted credentials reach CassandraClusters in one namespace and nothing else, a
//! running controller picks the site up without restart, and removal takes it away again.

mod common;

use std::process::Command;

use common::*;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;
use multi_casskop::labels::{SITE_ACCOUNT, SITE_SECRET_LABEL};
use multi_casskop_e2e::{SimConfig, shared};
use serde_json::json;

fn cli(env: &Env, args: &[&str]) -> String {
    let kc = env
        .sites
        .get("site-a")
        .expect("site-a")
        .kubeconfig_path()
        .display()
        .to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_multi-casskop"))
        .args([
            "site",
            "--management-kubeconfig",
            &kc,
            "--management-context",
            "site-a",
            "--secrets-namespace",
            &env.namespace,
        ])
        .args(args)
        .output()
        .expect("binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "multi-casskop site {args:?} failed: {text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_add_list_remove() {
    let sites = SitesRef::Shared(
        shared::sites(shared::casskop_layout)
            .await
            .expect("shared sites"),
    );
    let mut env = Env::build("siteadm", sites, SimConfig::default(), |s| s).await;
    let ns = env.namespace.clone();
    env.restart_controller(|mut s| {
        s.sites.retain(|site| site.name == "site-a");
        s.secrets.namespace = Some(ns.clone());
        s
    })
    .await;
    let site_b_kc = env
        .sites
        .get("site-b")
        .expect("site-b")
        .kubeconfig_path()
        .display()
        .to_string();

    let out = cli(
        &env,
        &[
            "add",
            "site-b",
            "--context",
            "site-b",
            "--kubeconfig",
            &site_b_kc,
            "-n",
            &env.namespace,
            "--token-hours",
            "1",
        ],
    );
    assert!(out.contains("site site-b added"), "{out}");

    // The stored kubeconfig reaches CassandraClusters in the namespace, and nothing else.
    let secret = Api::<Secret>::namespaced(env.management.clone(), &env.namespace)
        .get("multi-casskop-site-site-b")
        .await
        .expect("secret stored");
    assert_eq!(
        secret
            .metadata
            .labels
            .unwrap_or_default()
            .get(SITE_SECRET_LABEL)
            .map(String::as_str),
        Some("site-b")
    );
    let yaml =
        String::from_utf8(secret.data.unwrap_or_default()["kubeconfig"].0.clone()).expect("utf-8");
    let minted = multi_casskop::sites::connect::from_yaml(
        &yaml,
        None,
        "test",
        None,
        multi_casskop::sites::connect::InsecureTls::Refuse,
    )
    .await
    .expect("client from the minted kubeconfig");
    multi_casskop_e2e::cassandra::api(&minted, &env.namespace)
        .list(&Default::default())
        .await
        .expect("may list CassandraClusters in its namespace");
    let forbidden =
        |r: Result<_, kube::Error>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403);
    assert!(
        forbidden(
            Api::<Secret>::namespaced(minted.clone(), &env.namespace)
                .list(&Default::default())
                .await
                .map(|_| ())
        ),
        "may not read Secrets"
    );
    assert!(
        forbidden(
            multi_casskop_e2e::cassandra::api(&minted, "default")
                .list(&Default::default())
                .await
                .map(|_| ())
        ),
        "may not reach other namespaces"
    );

    // A running controller picks the site up: a two-site ring gets Ready.
    let mut manifest = two_site_ring("ring", &env.namespace);
    manifest["spec"]["seeds"] = json!(null);
    env.create(manifest).await;
    env.wait_ready("ring").await;

    let listed = cli(&env, &["list"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with("site-b"))
        .unwrap_or_else(|| panic!("site-b listed:\n{listed}"));
    assert!(
        line.contains("v1.35")
            && line.contains("CassandraCluster (status subresource)")
            && line.contains(&env.namespace),
        "{line}"
    );

    let out = cli(
        &env,
        &[
            "remove",
            "site-b",
            "--revoke",
            "--context",
            "site-b",
            "--kubeconfig",
            &site_b_kc,
            "-n",
            &env.namespace,
        ],
    );
    assert!(out.contains("site site-b removed"), "{out}");
    assert!(
        Api::<Secret>::namespaced(env.management.clone(), &env.namespace)
            .get_opt("multi-casskop-site-site-b")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        Api::<ServiceAccount>::namespaced(env.clients["site-b"].clone(), &env.namespace)
            .get_opt(SITE_ACCOUNT)
            .await
            .expect("get")
            .is_none(),
        "account revoked"
    );
    let mc = env
        .wait_invalid("ring", "site-b gone from the controller")
        .await;
    assert!(
        condition(&mc, "Degraded").is_some_and(|c| c.message.contains("unknown site \"site-b\""))
    );
}
