//! Merging `spec.base` with `spec.override.<site>`: a JSON Merge Patch (RFC 7386).
//!
//! Objects merge key by key at every depth (so `spec.config.cassandra-yaml` keys merge too),
//! anything else in the override — lists, strings, numbers, booleans, including `false`, `0`
//! and `""` — replaces the base value, and `null` removes the key. The `json-patch` crate
//! implements the RFC; this module fixes the argument order and documents the contract.

use serde_json::Value;

/// Returns `base` with `override_patch` applied as an RFC 7386 merge patch.
pub fn merge_override(base: &Value, override_patch: &Value) -> Value {
    let mut merged = base.clone();
    json_patch::merge(&mut merged, override_patch);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7386 Appendix A, every example, in order.
    #[test]
    fn rfc7386_appendix_a_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (i, (base, patch, want)) in cases.iter().enumerate() {
            assert_eq!(
                &merge_override(base, patch),
                want,
                "RFC 7386 example {}",
                i + 1
            );
        }
    }

    #[test]
    fn casskop_merge_rules() {
        struct Case {
            name: &'static str,
            base: Value,
            patch: Value,
            want: Value,
        }
        let cases = [
            Case {
                name: "explicit false beats true (the Go version ignored zero values)",
                base: json!({"spec":{"hardAntiAffinity":true}}),
                patch: json!({"spec":{"hardAntiAffinity":false}}),
                want: json!({"spec":{"hardAntiAffinity":false}}),
            },
            Case {
                name: "explicit 0 beats a number",
                base: json!({"spec":{"maxPodUnavailable":2}}),
                patch: json!({"spec":{"maxPodUnavailable":0}}),
                want: json!({"spec":{"maxPodUnavailable":0}}),
            },
            Case {
                name: "explicit empty string beats a string",
                base: json!({"spec":{"dataStorageClass":"local-storage"}}),
                patch: json!({"spec":{"dataStorageClass":""}}),
                want: json!({"spec":{"dataStorageClass":""}}),
            },
            Case {
                name: "null removes the key",
                base: json!({"spec":{"dataStorageClass":"local-storage","deletePVC":true}}),
                patch: json!({"spec":{"dataStorageClass":null}}),
                want: json!({"spec":{"deletePVC":true}}),
            },
            Case {
                name: "config merges key by key at every depth",
                base: json!({"spec":{"config":{"cassandra-yaml":{"num_tokens":256,"concurrent_reads":32},"jvm-options":{"max_heap_size":"1G"}}}}),
                patch: json!({"spec":{"config":{"cassandra-yaml":{"num_tokens":32}}}}),
                want: json!({"spec":{"config":{"cassandra-yaml":{"num_tokens":32,"concurrent_reads":32},"jvm-options":{"max_heap_size":"1G"}}}}),
            },
            Case {
                name: "topology.dc list is replaced whole",
                base: json!({"spec":{"topology":{"dc":[{"name":"dc1","rack":[{"name":"r1"},{"name":"r2"}]}]}}}),
                patch: json!({"spec":{"topology":{"dc":[{"name":"dc2"}]}}}),
                want: json!({"spec":{"topology":{"dc":[{"name":"dc2"}]}}}),
            },
            Case {
                name: "maps such as service annotations merge key by key",
                base: json!({"spec":{"service":{"annotations":{"a":"1","b":"2"}}}}),
                patch: json!({"spec":{"service":{"annotations":{"b":"3","c":"4"}}}}),
                want: json!({"spec":{"service":{"annotations":{"a":"1","b":"3","c":"4"}}}}),
            },
            Case {
                name: "unknown fields survive untouched",
                base: json!({"spec":{"someFutureField":{"x":[1,2]},"cassandraImage":"c:1"}}),
                patch: json!({"spec":{"cassandraImage":"c:2"},"extra":"kept"}),
                want: json!({"spec":{"someFutureField":{"x":[1,2]},"cassandraImage":"c:2"},"extra":"kept"}),
            },
            Case {
                name: "empty override leaves the base as it is",
                base: json!({"metadata":{"name":"c"},"spec":{"nodesPerRacks":3}}),
                patch: json!({}),
                want: json!({"metadata":{"name":"c"},"spec":{"nodesPerRacks":3}}),
            },
            Case {
                name: "override namespace replaces the base namespace",
                base: json!({"metadata":{"name":"c","namespace":"a"}}),
                patch: json!({"metadata":{"namespace":"b"}}),
                want: json!({"metadata":{"name":"c","namespace":"b"}}),
            },
            Case {
                name: "an object replaces a scalar and vice versa",
                base: json!({"spec":{"x":1,"y":{"z":1}}}),
                patch: json!({"spec":{"x":{"k":true},"y":"flat"}}),
                want: json!({"spec":{"x":{"k":true},"y":"flat"}}),
            },
        ];
        for case in cases {
            assert_eq!(
                merge_override(&case.base, &case.patch),
                case.want,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn merge_does_not_modify_its_inputs() {
        let base = json!({"spec":{"a":1}});
        let patch = json!({"spec":{"a":null}});
        let _ = merge_override(&base, &patch);
        assert_eq!(base, json!({"spec":{"a":1}}));
        assert_eq!(patch, json!({"spec":{"a":null}}));
    }
}
