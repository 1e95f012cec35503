//! The samples in `samples/` render as users expect, through the same path as `multi-casskop render`.

use multi_casskop::api::MultiCasskop;
use multi_casskop::core::federation::{FederationInput, SeedSource, plan_federation};

fn sample(name: &str) -> (String, MultiCasskop) {
    let path = format!("{}/samples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("sample exists");
    let mc = serde_yaml::from_str(&text).expect("sample parses as a MultiCasskop");
    (text, mc)
}

fn plan(mc: &MultiCasskop) -> multi_casskop::core::federation::Federation {
    plan_federation(FederationInput {
        name: "multi-casskop-demo",
        namespace: "demo",
        spec: &mc.spec,
        known_sites: None,
    })
    .expect("sample is valid")
}

/// The correct seeds of the upstream demo: two nodes per DC (one rack each), under the
/// external-dns zone, named after the real cluster name `cassandra-demo`.
const CORRECT_SEEDS: [&str; 4] = [
    "cassandra-demo-dc1-rack1-0.my.zone.dns.net",
    "cassandra-demo-dc1-rack1-1.my.zone.dns.net",
    "cassandra-demo-dc2-rack4-0.my.zone.dns.net",
    "cassandra-demo-dc2-rack4-1.my.zone.dns.net",
];

#[test]
fn upstream_demo_keeps_working_and_its_handwritten_seeds_are_flagged_wrong() {
    let (_, mc) = sample("multicasskop-upstream-demo.yaml");
    assert_eq!(mc.spec.delete_cassandra_cluster, Some(true));
    let federation = plan(&mc);
    assert_eq!(
        federation.seed_source,
        SeedSource::LegacyStatusSeedlist,
        "a hand-written list is used as is"
    );
    assert!(
        federation
            .seeds
            .iter()
            .all(|s| s.starts_with("cassandra-e2e-"))
    );
    let wrong: Vec<_> = federation
        .warnings
        .iter()
        .filter(|w| w.message.contains("names no pod of this ring"))
        .collect();
    assert_eq!(
        wrong.len(),
        4,
        "every hand-written seed names a pod that will never exist: {wrong:#?}"
    );
    let sites: Vec<_> = federation
        .sites
        .iter()
        .map(|s| (s.site.as_str(), s.namespace.as_str()))
        .collect();
    assert_eq!(
        sites,
        vec![("k8s-cluster1", "demo"), ("k8s-cluster2", "demo")],
        "namespace falls back to the MultiCasskop's"
    );
    let cluster1 = &federation.sites[0].object["spec"];
    assert_eq!(cluster1["topology"]["dc"][0]["name"], "dc1");
    assert_eq!(
        cluster1["cassandraImage"], "orangeopensource/cassandra-image:3.11",
        "base fields survive the merge"
    );
    assert_eq!(
        cluster1["pod"]["annotations"]["cni.projectcalico.org/ipv4pools"],
        "[\"routable\"]"
    );
}

#[test]
fn corrected_demo_computes_the_right_seeds_without_delete_flag() {
    let (_, mc) = sample("multicasskop-demo.yaml");
    assert_eq!(
        mc.spec.delete_cassandra_cluster, None,
        "absent deleteCassandraCluster is fine"
    );
    let federation = plan(&mc);
    assert_eq!(federation.seed_source, SeedSource::Computed);
    assert_eq!(federation.seeds, CORRECT_SEEDS);
    assert!(federation.warnings.is_empty(), "{:#?}", federation.warnings);
}

#[test]
fn every_sample_renders() {
    let dir = format!("{}/samples", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(&dir).expect("samples dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        if !text.contains("kind: MultiCasskop") {
            continue;
        }
        let out = multi_casskop::render::render(&path.display().to_string(), &text, &[]);
        assert!(
            out.is_ok(),
            "{}: {}",
            path.display(),
            out.err().map(|e| e.to_string()).unwrap_or_default()
        );
    }
}
