//! Reads a `CassandraCluster` spec the way CassKop does: the racks in topology order with their
//! node counts, pod names, CassKop's initial seed list (`InitSeedList`), and made-up but stable
//! node identities.

use serde_json::{Map, Value};

use super::model::NodeStatus;

/// CassKop's default DC name.
pub const DEFAULT_DC: &str = "dc1";
/// CassKop's default rack name.
pub const DEFAULT_RACK: &str = "rack1";

/// A spec the simulator cannot read; the object is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// `spec` is missing or not an object.
    #[error("spec is missing or not an object")]
    NotAnObject,
    /// A field has an unexpected type.
    #[error("{path} is not {expected}")]
    BadField {
        /// JSON path of the field.
        path: String,
        /// What it should be.
        expected: &'static str,
    },
}

/// One rack, i.e. one StatefulSet `<cc>-<dc>-<rack>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rack {
    /// DC name.
    pub dc: String,
    /// Rack name.
    pub rack: String,
    /// Nodes (pods) in the rack: the DC's `nodesPerRacks`, else the spec's.
    pub nodes: u32,
    /// `rollingRestart` flag in the spec.
    pub rolling_restart: bool,
}

impl Rack {
    /// `<dc>-<rack>`, the key of `status.cassandraRackStatus`.
    pub fn key(&self) -> String {
        format!("{}-{}", self.dc, self.rack)
    }

    /// Pod names `<cc>-<dc>-<rack>-<i>`.
    pub fn pods(&self, cluster: &str) -> Vec<String> {
        (0..self.nodes)
            .map(|i| pod_name(cluster, &self.dc, &self.rack, i))
            .collect()
    }
}

/// One DC as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dc {
    /// DC name.
    pub name: String,
    /// How many racks the spec declares (0: CassKop uses `rack1`).
    pub declared_racks: usize,
}

/// The topology of a spec, CassKop defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// `spec.nodesPerRacks`, 0 or missing read as 1 (CassKop's `SetDefaults`).
    pub spec_nodes: u32,
    /// DCs in order (the default `dc1` when the spec has none).
    pub dcs: Vec<Dc>,
    /// Racks in order.
    pub racks: Vec<Rack>,
}

impl Topology {
    /// Reads the topology of `spec`.
    pub fn from_spec(spec: &Value) -> Result<Self, SpecError> {
        let spec = spec.as_object().ok_or(SpecError::NotAnObject)?;
        let spec_nodes = match int(spec, "nodesPerRacks", "spec.nodesPerRacks")? {
            None | Some(0) => 1,
            Some(n) => clamp(n),
        };
        let dcs_value = match spec.get("topology") {
            None | Some(Value::Null) => None,
            Some(Value::Object(topology)) => array(topology, "dc", "spec.topology.dc")?,
            Some(_) => return Err(bad("spec.topology", "an object")),
        };
        let mut dcs = Vec::new();
        let mut racks = Vec::new();
        let Some(dcs_value) = dcs_value.filter(|d| !d.is_empty()) else {
            dcs.push(Dc {
                name: DEFAULT_DC.into(),
                declared_racks: 0,
            });
            racks.push(Rack {
                dc: DEFAULT_DC.into(),
                rack: DEFAULT_RACK.into(),
                nodes: spec_nodes,
                rolling_restart: false,
            });
            return Ok(Self {
                spec_nodes,
                dcs,
                racks,
            });
        };
        for (i, dc) in dcs_value.iter().enumerate() {
            let path = format!("spec.topology.dc[{i}]");
            let dc = dc.as_object().ok_or_else(|| bad(&path, "an object"))?;
            let name = string(dc, "name", &format!("{path}.name"))?;
            let nodes = int(dc, "nodesPerRacks", &format!("{path}.nodesPerRacks"))?
                .map_or(spec_nodes, clamp);
            let declared =
                array(dc, "rack", &format!("{path}.rack"))?.map_or(&[][..], Vec::as_slice);
            dcs.push(Dc {
                name: name.clone(),
                declared_racks: declared.len(),
            });
            if declared.is_empty() {
                racks.push(Rack {
                    dc: name.clone(),
                    rack: DEFAULT_RACK.into(),
                    nodes,
                    rolling_restart: false,
                });
            }
            for (j, rack) in declared.iter().enumerate() {
                let rpath = format!("{path}.rack[{j}]");
                let rack = rack.as_object().ok_or_else(|| bad(&rpath, "an object"))?;
                let rolling_restart = match rack.get("rollingRestart") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(bad(&format!("{rpath}.rollingRestart"), "a boolean")),
                };
                racks.push(Rack {
                    dc: name.clone(),
                    rack: string(rack, "name", &format!("{rpath}.name"))?,
                    nodes,
                    rolling_restart,
                });
            }
        }
        Ok(Self {
            spec_nodes,
            dcs,
            racks,
        })
    }

    /// The rack with key `<dc>-<rack>`.
    pub fn rack(&self, key: &str) -> Option<&Rack> {
        self.racks.iter().find(|r| r.key() == key)
    }

    /// Whether a DC of this name exists.
    pub fn has_dc(&self, name: &str) -> bool {
        self.dcs.iter().any(|d| d.name == name)
    }

    /// Every pod name, rack by rack.
    pub fn pods(&self, cluster: &str) -> Vec<String> {
        self.racks.iter().flat_map(|r| r.pods(cluster)).collect()
    }

    /// CassKop's `InitSeedList`: up to 3 seeds per DC, `<cc>-<dc>-<rack>-<i>.<cc>.<namespace>`.
    ///
    /// - a DC without racks: `rack1`, ordinals below min(`spec.nodesPerRacks`, 3);
    /// - 1 or 2 racks: per rack, ordinals below the rack's nodes and `4 - racks`, at most 3 in the DC;
    /// - 3 racks or more: ordinal 0 of the first 3 racks.
    pub fn seed_list(&self, cluster: &str, namespace: &str) -> Vec<String> {
        let seed = |dc: &str, rack: &str, i: u32| {
            format!("{}.{cluster}.{namespace}", pod_name(cluster, dc, rack, i))
        };
        let mut seeds = Vec::new();
        for dc in &self.dcs {
            if dc.declared_racks == 0 {
                seeds.extend((0..self.spec_nodes.min(3)).map(|i| seed(&dc.name, DEFAULT_RACK, i)));
                continue;
            }
            let size = dc.declared_racks;
            let mut in_dc = 0;
            for rack in self.racks.iter().filter(|r| r.dc == dc.name) {
                if size <= 2 {
                    let max = u32::try_from(4 - size).unwrap_or(0);
                    let mut i = 0;
                    while i < rack.nodes && i < max && in_dc < 3 {
                        seeds.push(seed(&rack.dc, &rack.rack, i));
                        in_dc += 1;
                        i += 1;
                    }
                } else if in_dc < 3 {
                    seeds.push(seed(&rack.dc, &rack.rack, 0));
                    in_dc += 1;
                }
            }
        }
        seeds
    }
}

/// `<cc>-<dc>-<rack>-<i>`.
pub fn pod_name(cluster: &str, dc: &str, rack: &str, i: u32) -> String {
    format!("{cluster}-{dc}-{rack}-{i}")
}

/// A stable, made-up identity for a pod: a UUID-like host id and a 10.x.y.z address derived
/// from `salt` (the object's uid) and the pod name.
pub fn node_status(salt: &str, pod: &str) -> NodeStatus {
    let a = fnv1a(&[salt.as_bytes(), b"/", pod.as_bytes()]);
    let b = fnv1a(&[pod.as_bytes(), b"/", salt.as_bytes()]);
    let host_id = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    );
    let node_ip = format!(
        "10.{}.{}.{}",
        (b >> 40) & 0xff,
        (b >> 32) & 0xff,
        1 + (b & 0xff) % 254
    );
    NodeStatus {
        host_id,
        node_ip,
        other: Map::new(),
    }
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn clamp(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn bad(path: &str, expected: &'static str) -> SpecError {
    SpecError::BadField {
        path: path.to_string(),
        expected,
    }
}

fn int(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<i64>, SpecError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| bad(path, "an integer")),
    }
}

fn string(obj: &Map<String, Value>, key: &str, path: &str) -> Result<String, SpecError> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| bad(path, "a non-empty string"))
}

fn array<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Vec<Value>>, SpecError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(bad(path, "an array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seeds(spec: Value) -> Vec<String> {
        Topology::from_spec(&spec)
            .unwrap()
            .seed_list("cc", "ns")
            .into_iter()
            .map(|s| {
                s.trim_end_matches(".cc.ns")
                    .trim_start_matches("cc-")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn no_topology_is_dc1_rack1() {
        let t = Topology::from_spec(&json!({"nodesPerRacks": 2})).unwrap();
        assert_eq!(t.racks.len(), 1);
        assert_eq!(t.racks[0].key(), "dc1-rack1");
        assert_eq!(t.pods("cc"), ["cc-dc1-rack1-0", "cc-dc1-rack1-1"]);
        assert_eq!(
            seeds(json!({"nodesPerRacks": 5})),
            ["dc1-rack1-0", "dc1-rack1-1", "dc1-rack1-2"]
        );
        assert_eq!(
            seeds(json!({})),
            ["dc1-rack1-0"],
            "nodesPerRacks defaults to 1"
        );
    }

    #[test]
    fn seed_entries_are_pod_dot_service_dot_namespace() {
        let t = Topology::from_spec(&json!({})).unwrap();
        assert_eq!(t.seed_list("demo", "prod"), ["demo-dc1-rack1-0.demo.prod"]);
    }

    #[test]
    fn dc_nodes_override_spec_nodes_and_missing_racks_mean_rack1() {
        let t = Topology::from_spec(&json!({"nodesPerRacks": 1, "topology": {"dc": [
            {"name": "dc1", "nodesPerRacks": 3, "rack": [{"name": "r1"}, {"name": "r2", "rollingRestart": true}]},
            {"name": "dc2"}
        ]}}))
        .unwrap();
        let keys: Vec<_> = t
            .racks
            .iter()
            .map(|r| (r.key(), r.nodes, r.rolling_restart))
            .collect();
        assert_eq!(
            keys,
            [
                ("dc1-r1".to_string(), 3, false),
                ("dc1-r2".to_string(), 3, true),
                ("dc2-rack1".to_string(), 1, false)
            ]
        );
    }

    #[test]
    fn seed_rules_follow_casskop_init_seed_list() {
        // one rack: up to 3 seeds from it
        assert_eq!(
            seeds(
                json!({"nodesPerRacks": 4, "topology": {"dc": [{"name": "dc1", "rack": [{"name": "a"}]}]}})
            ),
            ["dc1-a-0", "dc1-a-1", "dc1-a-2"]
        );
        // two racks: rack a ordinals 0,1 (4-2), rack b ordinal 0 (3 per DC)
        assert_eq!(
            seeds(
                json!({"nodesPerRacks": 3, "topology": {"dc": [{"name": "dc1", "rack": [{"name": "a"}, {"name": "b"}]}]}})
            ),
            ["dc1-a-0", "dc1-a-1", "dc1-b-0"]
        );
        // three or more racks: ordinal 0 of the first three
        assert_eq!(
            seeds(
                json!({"nodesPerRacks": 2, "topology": {"dc": [{"name": "dc1", "rack": [
                {"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]}]}})
            ),
            ["dc1-a-0", "dc1-b-0", "dc1-c-0"]
        );
        // DC-level nodes limit the ordinals; DC without racks uses spec-level nodes
        assert_eq!(
            seeds(json!({"nodesPerRacks": 2, "topology": {"dc": [
                {"name": "dc1", "nodesPerRacks": 1, "rack": [{"name": "a"}]},
                {"name": "dc2", "nodesPerRacks": 5}]}})),
            ["dc1-a-0", "dc2-rack1-0", "dc2-rack1-1"]
        );
        // a DC scaled to 0 contributes no seed with 1 or 2 racks
        assert_eq!(
            seeds(json!({"nodesPerRacks": 2, "topology": {"dc": [
                {"name": "dc1", "rack": [{"name": "a"}]},
                {"name": "dc2", "nodesPerRacks": 0, "rack": [{"name": "a"}]}]}})),
            ["dc1-a-0", "dc1-a-1"]
        );
    }

    #[test]
    fn odd_specs_are_errors_not_panics() {
        for spec in [
            json!(null),
            json!("x"),
            json!({"nodesPerRacks": "three"}),
            json!({"topology": []}),
            json!({"topology": {"dc": {}}}),
            json!({"topology": {"dc": [{"rack": []}]}}),
            json!({"topology": {"dc": [{"name": "dc1", "rack": [{"name": 3}]}]}}),
            json!({"topology": {"dc": [{"name": "dc1", "rack": [{"name": "a", "rollingRestart": "yes"}]}]}}),
        ] {
            assert!(Topology::from_spec(&spec).is_err(), "{spec}");
        }
    }

    #[test]
    fn node_identities_are_stable_and_uuid_like() {
        let a = node_status("uid-1", "cc-dc1-rack1-0");
        assert_eq!(a, node_status("uid-1", "cc-dc1-rack1-0"));
        assert_ne!(a.host_id, node_status("uid-1", "cc-dc1-rack1-1").host_id);
        let parts: Vec<usize> = a.host_id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{}", a.host_id);
        assert!(a.node_ip.starts_with("10."));
    }
}
