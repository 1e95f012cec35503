//! The CassKop simulator against real control planes: three shared sites (site-a Orange CRD,
//! site-b cscetbon CRD with status subresource, site-c Orange CRD). Each test works in its own
//! namespaces with its own namespace-scoped simulators, so the tests run in parallel.

use std::time::Duration;

use futures::future::try_join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{DynamicObject, PostParams};
use multi_casskop_e2e::cassandra::{self, History, State, state};
use multi_casskop_e2e::namespace::{create_namespace, unique_name};
use multi_casskop_e2e::simulator::diff::go_marshal;
use multi_casskop_e2e::simulator::lastapplied;
use multi_casskop_e2e::simulator::{FIELD_MANAGER, LAST_APPLIED_ANNOTATION};
use multi_casskop_e2e::{Mode, SimConfig, Simulator, Site, Sites, shared, telemetry};
use serde_json::{Value, json};

type TestResult = anyhow::Result<()>;

async fn sites() -> &'static Sites {
    telemetry::init_for_tests();
    shared::sites(shared::casskop_layout)
        .await
        .expect("shared sites")
}

/// A namespace, a client and a simulator limited to that namespace, on one site.
struct Env {
    site: Site,
    namespace: String,
    api: kube::Api<DynamicObject>,
    sim: Simulator,
    status_subresource: bool,
}

async fn env(site: &Site, test: &str, config: SimConfig) -> anyhow::Result<Env> {
    let client = site.client().await?;
    let namespace = unique_name(&format!("{test}-{}", site.name()));
    create_namespace(&client, &namespace).await?;
    let sim = Simulator::spawn(client.clone(), config.namespace(&namespace));
    let status_subresource = site
        .casskop_crd()
        .expect("shared sites carry a CRD")
        .has_status_subresource();
    Ok(Env {
        site: site.clone(),
        api: cassandra::api(&client, &namespace),
        namespace,
        sim,
        status_subresource,
    })
}

fn ongoing(phase: &str, action: &str) -> State {
    state(phase, action, "Ongoing")
}

fn done(action: &str) -> State {
    state("Running", action, "Done")
}

#[tokio::test]
async fn report_start_time_and_memory() -> TestResult {
    let sites = sites().await;
    // Informational: shows up with `cargo test -- --nocapture`.
    println!(
        "shared sites started in {:?} (concurrently)",
        sites.started_in()
    );
    for site in sites {
        println!(
            "{}: pid {:?}, VmRSS {:?} KiB, start {:?}, crd {:?}",
            site.name(),
            site.pid(),
            site.rss_kib(),
            site.last_start_duration(),
            site.casskop_crd()
        );
        assert!(site.is_running(), "{} is running", site.name());
    }
    Ok(())
}

#[tokio::test]
async fn schemas_accept_a_valid_cluster_and_reject_a_dash_in_a_dc_name() -> TestResult {
    let sites = sites().await;
    try_join_all(sites.iter().map(|site| async move {
        let client = site.client().await?;
        let namespace = unique_name(&format!("schema-{}", site.name()));
        create_namespace(&client, &namespace).await?;
        let api = cassandra::api(&client, &namespace);
        api.create(
            &PostParams::default(),
            &cassandra::sample("good", &namespace),
        )
        .await?;

        let mut bad = cassandra::sample("bad", &namespace);
        bad.data["spec"]["topology"]["dc"][0]["name"] = json!("dc-1");
        let err = api
            .create(&PostParams::default(), &bad)
            .await
            .expect_err("a dc name with '-' must be rejected by the CassKop schema");
        let msg = err.to_string();
        assert!(
            msg.contains("spec.topology.dc[0].name"),
            "{}: {msg}",
            site.name()
        );
        assert!(msg.contains("^[^-]+$"), "{}: {msg}", site.name());

        let mut bad_rack = cassandra::sample("bad-rack", &namespace);
        bad_rack.data["spec"]["topology"]["dc"][0]["rack"][1]["name"] = json!("rack-2");
        let err = api
            .create(&PostParams::default(), &bad_rack)
            .await
            .expect_err("rack name with '-'");
        assert!(
            err.to_string().contains("^[^-]+$"),
            "{}: {err}",
            site.name()
        );
        anyhow::Ok(())
    }))
    .await?;
    Ok(())
}

/// Create, image update, scale up, seed-list change, rolling restart and unlockNextOperation,
/// on every site at once (so in both CRD variants).
#[tokio::test]
async fn lifecycle_on_every_site() -> TestResult {
    let sites = sites().await;
    try_join_all(sites.iter().map(lifecycle)).await?;
    Ok(())
}

async fn lifecycle(site: &Site) -> TestResult {
    let env = env(site, "life", SimConfig::default()).await?;
    let (api, ns, name) = (&env.api, env.namespace.as_str(), "cassandra-demo");
    let history = History::record(api.clone());

    // create
    api.create(&PostParams::default(), &cassandra::sample(name, ns))
        .await?;
    let cc = cassandra::wait_state(api, name, &done("Initializing")).await?;
    history
        .wait_went_through(
            name,
            &[
                ongoing("Initializing", "Initializing"),
                done("Initializing"),
            ],
        )
        .await?;
    let status = cassandra::status_of(&cc);
    let racks: Vec<_> = status.cassandra_rack_status.keys().cloned().collect();
    assert_eq!(racks, ["dc1-rack1", "dc1-rack2"], "{}", site.name());
    for rack in status.cassandra_rack_status.values() {
        assert_eq!(
            (
                rack.phase.as_str(),
                rack.cassandra_last_action.status.as_str()
            ),
            ("Running", "Done")
        );
        assert_eq!(rack.cassandra_last_action.name, "Initializing");
        assert!(
            rack.cassandra_last_action.start_time.is_none()
                && rack.cassandra_last_action.end_time.is_some(),
            "initialisation has an end time only (trace-cc1 rv 270)"
        );
    }
    let nodes: Vec<_> = status.cassandra_node_status.keys().cloned().collect();
    assert_eq!(
        nodes,
        [
            "cassandra-demo-dc1-rack1-0",
            "cassandra-demo-dc1-rack1-1",
            "cassandra-demo-dc1-rack2-0",
            "cassandra-demo-dc1-rack2-1"
        ]
    );
    let seeds: Vec<String> = ["dc1-rack1-0", "dc1-rack1-1", "dc1-rack2-0"]
        .iter()
        .map(|p| format!("cassandra-demo-{p}.cassandra-demo.{ns}"))
        .collect();
    assert_eq!(
        status.seedlist.as_ref(),
        Some(&seeds),
        "CassKop's InitSeedList"
    );
    let annotation = cassandra::annotation(&cc, LAST_APPLIED_ANNOTATION).unwrap_or("null");
    let applied: Value = lastapplied::spec_of(annotation).unwrap_or_default();
    let mut stored = cassandra::spec_of(&cc);
    go_marshal(&mut stored);
    assert_eq!(applied, stored, "last-applied holds the stored spec");
    assert_eq!(
        applied["runAsUser"], 999,
        "API-server schema defaults are part of the stored spec"
    );
    assert_eq!(
        applied["bootstrapImage"], "orangeopensource/cassandra-bootstrap:0.1.9",
        "set values win over CassKop's defaults"
    );
    assert_eq!(applied["serviceAccountName"], "cassandra-cluster-node");
    // The annotation embeds the generation CassKop acted on. Without a status subresource
    // CassKop's own status write moves the generation once more; its next reconcile (triggered
    // by that write) rewrites the annotation, so wait for it rather than read one instant.
    multi_casskop_e2e::wait::until(
        "the annotation embeds the object's generation",
        Duration::from_secs(30),
        || async {
            let now = api.get(name).await.map_err(|e| e.to_string())?;
            let annotation = cassandra::annotation(&now, LAST_APPLIED_ANNOTATION).unwrap_or("null");
            let embedded = lastapplied::generation_of(annotation);
            if embedded == now.metadata.generation {
                Ok(())
            } else {
                Err(format!(
                    "annotation {embedded:?}, object {:?}",
                    now.metadata.generation
                ))
            }
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;

    // image update
    cassandra::edit_spec(api, name, |spec| {
        spec["cassandraImage"] = json!("cassandra:4.0.11")
    })
    .await?;
    let cc = cassandra::wait_for(api, name, "image update done", |o| {
        cassandra::state_of(o) == done("UpdateDockerImage")
            && cassandra::annotation(o, LAST_APPLIED_ANNOTATION)
                .is_some_and(|a| a.contains("cassandra:4.0.11"))
    })
    .await?;
    history
        .wait_went_through(
            name,
            &[
                ongoing("Running", "UpdateDockerImage"),
                done("UpdateDockerImage"),
            ],
        )
        .await?;
    assert!(
        cassandra::status_of(&cc)
            .cassandra_rack_status
            .values()
            .all(|r| r.cassandra_last_action.name == "UpdateDockerImage" && r.phase == "Running")
    );

    // scale up
    cassandra::edit_spec(api, name, |spec| {
        spec["topology"]["dc"][0]["nodesPerRacks"] = json!(3)
    })
    .await?;
    let cc = cassandra::wait_state(api, name, &done("ScaleUp")).await?;
    history
        .wait_went_through(name, &[ongoing("Pending", "ScaleUp"), done("ScaleUp")])
        .await?;
    let status = cassandra::status_of(&cc);
    assert_eq!(status.cassandra_node_status.len(), 6);
    assert!(
        status
            .cassandra_node_status
            .contains_key("cassandra-demo-dc1-rack2-2")
    );

    // seed-list change, written the way the CRD variant requires
    let remote = [
        "cassandra-demo-dc2-rack1-0.zone.example",
        "cassandra-demo-dc1-rack1-0.zone.example",
    ];
    cassandra::set_seedlist(api, name, &remote, env.status_subresource).await?;
    let cc = cassandra::wait_state(api, name, &done("UpdateSeedList")).await?;
    history
        .wait_went_through(
            name,
            &[ongoing("Running", "UpdateSeedList"), done("UpdateSeedList")],
        )
        .await?;
    assert!(
        !history
            .states(name)
            .iter()
            .any(|s| s.2 == "Configuring" || s.0 == "Pending" && s.1 != "ScaleUp"),
        "no Configuring, no Pending but for the scale: {:?}",
        history.states(name)
    );
    assert_eq!(
        cassandra::status_of(&cc).seedlist.unwrap_or_default(),
        remote
    );

    // rolling restart of rack2: flag reset, rack action Ongoing → Done
    cassandra::edit_spec(api, name, |spec| {
        spec["topology"]["dc"][0]["rack"][1]["rollingRestart"] = json!(true)
    })
    .await?;
    let cc = cassandra::wait_for(api, name, "rolling restart done and flag reset", |o| {
        cassandra::state_of(o) == done("RollingRestart")
            && cassandra::spec_of(o)["topology"]["dc"][0]["rack"][1]
                .get("rollingRestart")
                .is_none()
    })
    .await?;
    history
        .wait_went_through(
            name,
            &[ongoing("Running", "RollingRestart"), done("RollingRestart")],
        )
        .await?;
    let status = cassandra::status_of(&cc);
    assert_eq!(
        status.cassandra_rack_status["dc1-rack2"]
            .cassandra_last_action
            .name,
        "RollingRestart"
    );
    assert_eq!(
        status.cassandra_rack_status["dc1-rack1"]
            .cassandra_last_action
            .name,
        "UpdateSeedList"
    );

    // unlockNextOperation is reset, nothing else happens
    cassandra::edit_spec(api, name, |spec| spec["unlockNextOperation"] = json!(true)).await?;
    cassandra::wait_for(api, name, "unlockNextOperation reset", |o| {
        cassandra::spec_of(o).get("unlockNextOperation").is_none()
    })
    .await?;
    assert_eq!(
        cassandra::state_of(&api.get(name).await?),
        done("RollingRestart")
    );

    assert_status_write_path(&env, name).await?;
    drop(env.sim);
    Ok(())
}

/// Proves which endpoint carried the simulator's status writes, from `managedFields`.
async fn assert_status_write_path(env: &Env, name: &str) -> TestResult {
    let cc = env.api.get(name).await?;
    let fields = cc.metadata.managed_fields.unwrap_or_default();
    let ours: Vec<_> = fields
        .iter()
        .filter(|f| f.manager.as_deref() == Some(FIELD_MANAGER))
        .collect();
    let owns_status = |f: &ManagedFieldsEntry| {
        f.fields_v1
            .as_ref()
            .is_some_and(|v| v.0.get("f:status").is_some())
    };
    let via_status: Vec<_> = ours
        .iter()
        .filter(|f| f.subresource.as_deref() == Some("status"))
        .collect();
    let via_main = ours
        .iter()
        .filter(|f| f.subresource.is_none())
        .find(|f| owns_status(f));
    if env.status_subresource {
        assert!(
            via_status.iter().any(|f| owns_status(f)),
            "{}: status must be written through /status: {ours:?}",
            env.site.name()
        );
        assert!(
            via_main.is_none(),
            "{}: no status through the main resource",
            env.site.name()
        );

        // And the main resource really ignores status there (what upstream Multi-CassKop trips on).
        cassandra::edit(&env.api, name, |o| {
            o.data["status"]["seedlist"] = json!(["ignored"])
        })
        .await?;
        let after = env.api.get(name).await?;
        assert_ne!(
            cassandra::status_of(&after).seedlist.unwrap_or_default(),
            ["ignored"]
        );
    } else {
        assert!(
            via_status.is_empty(),
            "{}: no /status endpoint: {ours:?}",
            env.site.name()
        );
        assert!(
            via_main.is_some(),
            "{}: status written with the main resource: {ours:?}",
            env.site.name()
        );
    }
    Ok(())
}

/// Stuck mode holds an action `Ongoing` however often the simulator looks; healing finishes it.
#[tokio::test]
async fn stuck_mode_holds_ongoing_until_healed() -> TestResult {
    let sites = sites().await;
    try_join_all(["site-a", "site-b"].map(|s| stuck(sites.get(s).expect("site")))).await?;
    Ok(())
}

async fn stuck(site: &Site) -> TestResult {
    let env = env(site, "stuck", SimConfig::default().mode(Mode::Stuck)).await?;
    let (api, ns, name) = (&env.api, env.namespace.as_str(), "stuck");
    api.create(&PostParams::default(), &cassandra::sample(name, ns))
        .await?;
    cassandra::wait_for(api, name, "Initializing Ongoing recorded", |o| {
        cassandra::state_of(o) == ongoing("Initializing", "Initializing")
            && cassandra::annotation(o, LAST_APPLIED_ANNOTATION).is_some()
    })
    .await?;

    // Change the object and wait until the simulator has dealt with that version: it saw the
    // action Ongoing after our write and left it so (it only rewrote its annotation, as
    // CassKop does after any write).
    let before = api.get(name).await?.data["status"].clone();
    let poked = cassandra::edit(api, name, |o| {
        o.metadata
            .labels
            .get_or_insert_default()
            .insert("poke".into(), "1".into());
    })
    .await?;
    let version: u64 = poked
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or_default()
        .parse()?;
    multi_casskop_e2e::wait::until(
        "the simulator to handle our change",
        Duration::from_secs(60),
        || async {
            let handled = env.sim.last_handled_version(ns, name);
            match handled.as_deref().map(str::parse::<u64>) {
                Some(Ok(v)) if v >= version => Ok(()),
                _ => Err(format!("handled {handled:?}, want {version}")),
            }
        },
    )
    .await?;
    let after = api.get(name).await?;
    assert_eq!(
        cassandra::state_of(&after),
        ongoing("Initializing", "Initializing")
    );
    assert_eq!(
        after.data["status"], before,
        "stuck simulator writes no status"
    );

    env.sim.set_mode(Mode::Normal);
    cassandra::wait_state(api, name, &done("Initializing")).await?;
    Ok(())
}

/// Error mode ends actions after creation with `Error`; after healing, the next change completes.
#[tokio::test]
async fn error_mode_ends_actions_in_error() -> TestResult {
    let sites = sites().await;
    let site = sites.get("site-c").expect("site-c");
    let env = env(
        site,
        "error",
        SimConfig::default().delay(Duration::from_millis(200)),
    )
    .await?;
    let (api, ns, name) = (&env.api, env.namespace.as_str(), "broken");
    let history = History::record(api.clone());
    api.create(&PostParams::default(), &cassandra::sample(name, ns))
        .await?;
    cassandra::wait_state(api, name, &done("Initializing")).await?;
    env.sim.set_mode(Mode::Error);
    cassandra::edit_spec(api, name, |spec| {
        spec["cassandraImage"] = json!("cassandra:4.0.11")
    })
    .await?;
    let cc =
        cassandra::wait_state(api, name, &state("Running", "UpdateDockerImage", "Error")).await?;
    history
        .wait_went_through(
            name,
            &[
                ongoing("Running", "UpdateDockerImage"),
                state("Running", "UpdateDockerImage", "Error"),
            ],
        )
        .await?;
    assert!(
        cassandra::status_of(&cc)
            .cassandra_rack_status
            .values()
            .all(|r| r.cassandra_last_action.status == "Error")
    );

    env.sim.set_mode(Mode::Normal);
    cassandra::edit_spec(api, name, |spec| {
        spec["configMapName"] = json!("cassandra-configmap-v2")
    })
    .await?;
    cassandra::wait_state(api, name, &done("UpdateConfigMap")).await?;
    Ok(())
}

/// Removing a DC (cscetbon variant): refused while it has nodes (`CorrectCRDConfig`, the DC
/// written back); scaled to 0 first, it goes: `ActionDeleteDC`, its racks and nodes leave the
/// status.
#[tokio::test]
async fn dc_removal() -> TestResult {
    let sites = sites().await;
    let env = env(
        sites.get("site-b").expect("site-b"),
        "dcdel",
        SimConfig::default(),
    )
    .await?;
    let (api, ns, name) = (&env.api, env.namespace.as_str(), "two-dcs");
    let mut cc = cassandra::sample(name, ns);
    cc.data["spec"]["topology"]["dc"] = json!([
        {"name": "dc1", "rack": [{"name": "rack1"}]},
        {"name": "dc2", "nodesPerRacks": 1, "rack": [{"name": "rack1"}]}
    ]);
    api.create(&PostParams::default(), &cc).await?;
    let cc = cassandra::wait_state(api, name, &done("Initializing")).await?;
    assert_eq!(cassandra::status_of(&cc).cassandra_node_status.len(), 3);

    let drop_dc2 = |spec: &mut Value| {
        if let Some(dcs) = spec["topology"]["dc"].as_array_mut() {
            dcs.pop();
        }
    };
    cassandra::edit_spec(api, name, drop_dc2).await?;
    let cc =
        cassandra::wait_state(api, name, &state("Running", "CorrectCRDConfig", "Done")).await?;
    assert_eq!(
        cassandra::spec_of(&cc)["topology"]["dc"][1]["name"],
        "dc2",
        "refused: dc2 written back"
    );

    cassandra::edit_spec(api, name, |spec| {
        spec["topology"]["dc"][1]["nodesPerRacks"] = json!(0)
    })
    .await?;
    cassandra::wait_state(api, name, &done("ScaleDown")).await?;
    cassandra::edit_spec(api, name, drop_dc2).await?;
    let cc = cassandra::wait_state(api, name, &done("ActionDeleteDC")).await?;
    let status = cassandra::status_of(&cc);
    assert_eq!(
        status.cassandra_rack_status.keys().collect::<Vec<_>>(),
        ["dc1-rack1"]
    );
    let cc = cassandra::wait_for(api, name, "dc2's nodes gone", |o| {
        cassandra::status_of(o).cassandra_node_status.len() == 2
    })
    .await?;
    assert_eq!(cassandra::state_of(&cc), done("ActionDeleteDC"));
    Ok(())
}

/// An object the simulator cannot read is skipped; the simulator keeps working on the others.
#[tokio::test]
async fn odd_objects_are_skipped() -> TestResult {
    let sites = sites().await;
    let env = env(
        sites.get("site-a").expect("site-a"),
        "odd",
        SimConfig::default(),
    )
    .await?;
    let (api, ns) = (&env.api, env.namespace.as_str());
    let mut odd = cassandra::sample("odd", ns);
    // The schema allows a DC without a name; CassKop could not name its StatefulSets.
    odd.data["spec"]["topology"]["dc"] = json!([{"rack": [{"name": "rack1"}]}]);
    api.create(&PostParams::default(), &odd).await?;
    api.create(&PostParams::default(), &cassandra::sample("fine", ns))
        .await?;
    cassandra::wait_state(api, "fine", &done("Initializing")).await?;
    multi_casskop_e2e::wait::until(
        "the odd object to be looked at",
        Duration::from_secs(60),
        || async {
            if env.sim.reconcile_count(ns, "odd") > 0 {
                Ok(())
            } else {
                Err("not yet".into())
            }
        },
    )
    .await?;
    assert_eq!(
        cassandra::state_of(&api.get("odd").await?),
        state("", "", "")
    );
    assert!(!env.sim.is_finished());
    Ok(())
}
