//! Compares a spec with the last one processed and names the CassKop action the change causes;
//! handles the two one-shot flags CassKop resets (`rollingRestart`, `unlockNextOperation`).
//!
//! "Reset to false" is done as CassKop's Go client does it: both flags are `omitempty` booleans,
//! so false is written by dropping the key. The last-applied annotation therefore holds the
//! spec without any `rollingRestart` / `unlockNextOperation` key.

use serde_json::Value;

use super::model::action;
use super::topology::Topology;

/// The spec as recorded in the last-applied annotation: both one-shot flags removed.
pub fn normalize(spec: &Value) -> Value {
    let mut spec = spec.clone();
    remove_flags(&mut spec, |_| true);
    spec
}

/// Removes the flags that are `true` (CassKop resetting them); returns whether any was.
pub fn reset_flags(spec: &mut Value) -> bool {
    remove_flags(spec, |v| v == &Value::Bool(true))
}

/// Whether `spec.unlockNextOperation` is true.
pub fn unlock_requested(spec: &Value) -> bool {
    spec.get("unlockNextOperation") == Some(&Value::Bool(true))
}

fn remove_flags(spec: &mut Value, which: impl Fn(&Value) -> bool) -> bool {
    let mut removed = false;
    let Some(obj) = spec.as_object_mut() else {
        return false;
    };
    if obj.get("unlockNextOperation").is_some_and(&which) {
        obj.remove("unlockNextOperation");
        removed = true;
    }
    let dcs = obj
        .get_mut("topology")
        .and_then(|t| t.get_mut("dc"))
        .and_then(Value::as_array_mut);
    for dc in dcs.into_iter().flatten() {
        let racks = dc.get_mut("rack").and_then(Value::as_array_mut);
        for rack in racks.into_iter().flatten().filter_map(Value::as_object_mut) {
            if rack.get("rollingRestart").is_some_and(&which) {
                rack.remove("rollingRestart");
                removed = true;
            }
        }
    }
    removed
}

/// What a spec change means to CassKop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecChange {
    /// The action name.
    pub action: &'static str,
    /// Rack keys (`<dc>-<rack>`) of the new topology the action runs on.
    pub racks: Vec<String>,
}

/// Classifies the change from `old` to `new` (both normalized), first match wins:
/// a DC removed → `ActionDeleteDC`; an image → `UpdateDockerImage`; resources (spec or DC) →
/// `UpdateResources`; node counts → `ScaleUp` (also new racks) / `ScaleDown`; a rack removed →
/// `ActionDeleteRack`; `configMapName`/`config` (spec, DC or rack) → `UpdateConfigMap`;
/// anything else → `UpdateStatefulSet`. `None` when nothing changed.
pub fn classify(
    old: &Value,
    new: &Value,
    old_topology: &Topology,
    new_topology: &Topology,
) -> Option<SpecChange> {
    if old == new {
        return None;
    }
    let all_racks = || {
        new_topology
            .racks
            .iter()
            .map(|r| r.key())
            .collect::<Vec<_>>()
    };
    let change = |action: &'static str, racks: Vec<String>| Some(SpecChange { action, racks });

    if old_topology
        .dcs
        .iter()
        .any(|dc| !new_topology.has_dc(&dc.name))
    {
        return change(action::DELETE_DC, Vec::new());
    }
    if ["cassandraImage", "bootstrapImage", "configBuilderImage"]
        .iter()
        .any(|k| old.get(k) != new.get(k))
    {
        return change(action::UPDATE_DOCKER_IMAGE, all_racks());
    }
    if old.get("resources") != new.get("resources") || dc_field_differs(old, new, "resources") {
        return change(action::UPDATE_RESOURCES, all_racks());
    }
    let mut up = Vec::new();
    let mut down = Vec::new();
    for rack in &new_topology.racks {
        match old_topology.rack(&rack.key()) {
            None => up.push(rack.key()),
            Some(before) if before.nodes < rack.nodes => up.push(rack.key()),
            Some(before) if before.nodes > rack.nodes => down.push(rack.key()),
            Some(_) => {}
        }
    }
    if !up.is_empty() {
        return change(action::SCALE_UP, up);
    }
    if !down.is_empty() {
        return change(action::SCALE_DOWN, down);
    }
    if old_topology
        .racks
        .iter()
        .any(|r| new_topology.rack(&r.key()).is_none())
    {
        return change(action::DELETE_RACK, Vec::new());
    }
    if old.get("configMapName") != new.get("configMapName")
        || old.get("config") != new.get("config")
        || dc_field_differs(old, new, "config")
        || rack_field_differs(old, new, "config")
    {
        return change(action::UPDATE_CONFIG_MAP, all_racks());
    }
    change(action::UPDATE_STATEFUL_SET, all_racks())
}

fn dcs(spec: &Value) -> &[Value] {
    spec.get("topology")
        .and_then(|t| t.get("dc"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn by_name<'a>(list: &'a [Value], name: &Value) -> Option<&'a Value> {
    list.iter().find(|v| v.get("name") == Some(name))
}

fn dc_field_differs(old: &Value, new: &Value, field: &str) -> bool {
    dcs(new).iter().any(|dc| {
        let before = dc.get("name").and_then(|n| by_name(dcs(old), n));
        before.and_then(|b| b.get(field)) != dc.get(field)
    })
}

fn rack_field_differs(old: &Value, new: &Value, field: &str) -> bool {
    let racks = |dc: Option<&Value>| -> Vec<Value> {
        dc.and_then(|d| d.get("rack"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    dcs(new).iter().any(|dc| {
        let before = racks(dc.get("name").and_then(|n| by_name(dcs(old), n)));
        racks(Some(dc)).iter().any(|rack| {
            let prior = rack.get("name").and_then(|n| by_name(&before, n));
            prior.and_then(|p| p.get(field)) != rack.get(field)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "nodesPerRacks": 2,
            "cassandraImage": "cassandra:3.11.10",
            "configMapName": "cm-v1",
            "resources": {"requests": {"cpu": "1"}},
            "topology": {"dc": [
                {"name": "dc1", "rack": [{"name": "r1"}, {"name": "r2"}]},
                {"name": "dc2", "rack": [{"name": "r1"}]}
            ]}
        })
    }

    fn classify_change(edit: impl FnOnce(&mut Value)) -> Option<SpecChange> {
        let old = base();
        let mut new = base();
        edit(&mut new);
        let (ot, nt) = (
            Topology::from_spec(&old).unwrap(),
            Topology::from_spec(&new).unwrap(),
        );
        classify(&old, &new, &ot, &nt)
    }

    fn action_of(edit: impl FnOnce(&mut Value)) -> &'static str {
        classify_change(edit).map_or("none", |c| c.action)
    }

    #[test]
    fn names_each_kind_of_change() {
        assert_eq!(action_of(|_| {}), "none");
        assert_eq!(
            action_of(|s| s["cassandraImage"] = json!("cassandra:4.0")),
            "UpdateDockerImage"
        );
        assert_eq!(
            action_of(|s| s["bootstrapImage"] = json!("b:2")),
            "UpdateDockerImage"
        );
        assert_eq!(
            action_of(|s| s["resources"]["requests"]["cpu"] = json!("2")),
            "UpdateResources"
        );
        assert_eq!(
            action_of(|s| s["topology"]["dc"][1]["resources"] = json!({"limits": {"cpu": "1"}})),
            "UpdateResources"
        );
        assert_eq!(action_of(|s| s["nodesPerRacks"] = json!(3)), "ScaleUp");
        assert_eq!(
            action_of(|s| s["topology"]["dc"][1]["nodesPerRacks"] = json!(1)),
            "ScaleDown"
        );
        assert_eq!(
            action_of(|s| s["topology"]["dc"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "dc3"}))),
            "ScaleUp"
        );
        assert_eq!(
            action_of(|s| {
                s["topology"]["dc"].as_array_mut().unwrap().pop();
            }),
            "ActionDeleteDC"
        );
        assert_eq!(
            action_of(|s| {
                s["topology"]["dc"][0]["rack"].as_array_mut().unwrap().pop();
            }),
            "ActionDeleteRack"
        );
        assert_eq!(
            action_of(|s| s["configMapName"] = json!("cm-v2")),
            "UpdateConfigMap"
        );
        assert_eq!(
            action_of(|s| s["config"] = json!({"cassandra-yaml": {"num_tokens": 16}})),
            "UpdateConfigMap"
        );
        assert_eq!(
            action_of(|s| s["topology"]["dc"][0]["rack"][1]["config"] = json!({"jvm-options": {}})),
            "UpdateConfigMap"
        );
        assert_eq!(
            action_of(|s| s["hardAntiAffinity"] = json!(true)),
            "UpdateStatefulSet"
        );
    }

    #[test]
    fn scale_names_only_the_racks_that_change() {
        let change =
            classify_change(|s| s["topology"]["dc"][1]["nodesPerRacks"] = json!(4)).unwrap();
        assert_eq!(change.racks, ["dc2-r1"]);
        let change = classify_change(|s| s["cassandraImage"] = json!("c:4")).unwrap();
        assert_eq!(change.racks, ["dc1-r1", "dc1-r2", "dc2-r1"]);
    }

    #[test]
    fn flags_are_removed_like_go_omitempty() {
        let mut spec = json!({"unlockNextOperation": true, "topology": {"dc": [
            {"name": "dc1", "rack": [{"name": "r1", "rollingRestart": true}, {"name": "r2", "rollingRestart": false}]}]}});
        assert!(unlock_requested(&spec));
        let normalized = normalize(&spec);
        assert_eq!(
            normalized,
            json!({"topology": {"dc": [{"name": "dc1", "rack": [{"name": "r1"}, {"name": "r2"}]}]}})
        );
        assert!(reset_flags(&mut spec));
        assert_eq!(
            spec,
            json!({"topology": {"dc": [{"name": "dc1", "rack": [{"name": "r1"}, {"name": "r2", "rollingRestart": false}]}]}}),
            "only true flags are touched in the stored spec"
        );
        assert!(!reset_flags(&mut spec));
        assert!(!reset_flags(&mut json!("odd")));
    }
}
