//! Prometheus metrics: reconciles and errors per MultiCasskop, reconcile duration, site writes
//! and reachability, API requests by site and verb (counted by a layer on every client), and
//! rollout position (ready sites per ring).

use std::sync::Arc;

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A MultiCasskop.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RingLabels {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub multicasskop: String,
}

/// A site and an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteResultLabels {
    /// Site name.
    pub site: String,
    /// `ok` or `error`.
    pub result: String,
}

/// A site.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabels {
    /// Site name (`management` for the management cluster's own client).
    pub site: String,
}

/// An API request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Site name (`management` for the management cluster's own client).
    pub site: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`.
    pub verb: String,
    /// The resource, with its subresource when there is one: `cassandraclusters`,
    /// `multicasskops/status`, `events`, `leases` (from [`resource_of`]).
    pub resource: String,
}

/// Every metric of the controller.
pub struct Metrics {
    registry: Registry,
    /// Reconciles per MultiCasskop.
    pub reconciles: Family<RingLabels, Counter>,
    /// Failed reconciles per MultiCasskop.
    pub reconcile_errors: Family<RingLabels, Counter>,
    /// Reconcile duration.
    pub reconcile_duration: Histogram,
    /// Writes of site CassandraClusters.
    pub site_writes: Family<SiteResultLabels, Counter>,
    /// 1 when the site answers.
    pub site_reachable: Family<SiteLabels, Gauge>,
    /// API requests by site and verb.
    pub api_requests: Family<RequestLabels, Counter>,
    /// Ready sites per ring (the rollout's position).
    pub ready_sites: Family<RingLabels, Gauge>,
    /// MultiCasskops that cannot be decoded (skipped; reported on the object).
    pub undecodable_objects: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("multicasskop");
        let reconciles = Family::default();
        let reconcile_errors = Family::default();
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let site_writes = Family::default();
        let site_reachable = Family::default();
        let api_requests = Family::default();
        let ready_sites = Family::default();
        let undecodable_objects = Gauge::default();
        registry.register(
            "undecodable_objects",
            "MultiCasskops that cannot be decoded and are skipped (see their status and Events)",
            undecodable_objects.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles per MultiCasskop",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles per MultiCasskop",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of a reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "site_writes",
            "Writes of CassandraClusters at sites",
            site_writes.clone(),
        );
        registry.register(
            "site_reachable",
            "1 when the site's API server answers",
            site_reachable.clone(),
        );
        registry.register(
            "api_requests",
            "API requests by site and verb",
            api_requests.clone(),
        );
        registry.register(
            "ready_sites",
            "Sites ready per MultiCasskop (rollout position)",
            ready_sites.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            site_writes,
            site_reachable,
            api_requests,
            ready_sites,
            undecodable_objects,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one reconcile of a ring.
    pub fn reconciled(&self, namespace: &str, name: &str, took: Duration, ok: bool) {
        let labels = RingLabels {
            namespace: namespace.into(),
            multicasskop: name.into(),
        };
        self.reconciles.get_or_create(&labels).inc();
        if !ok {
            self.reconcile_errors.get_or_create(&labels).inc();
        }
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Drops every series of a MultiCasskop that is gone, so deleted rings do not pile up in
    /// `/metrics` (and in memory) for the life of the process.
    pub fn forget_ring(&self, namespace: &str, name: &str) {
        let labels = RingLabels {
            namespace: namespace.into(),
            multicasskop: name.into(),
        };
        self.reconciles.remove(&labels);
        self.reconcile_errors.remove(&labels);
        self.ready_sites.remove(&labels);
    }

    /// Sum of API requests whose verb satisfies `pred`, over every site.
    pub fn requests(&self, pred: impl Fn(&str) -> bool) -> u64 {
        self.requests_where(|_, verb| pred(verb))
    }

    /// Sum of API requests whose site and verb satisfy `pred`.
    pub fn requests_where(&self, pred: impl Fn(&str, &str) -> bool) -> u64 {
        let label = |line: &str, key: &str| {
            line.split(&format!("{key}=\""))
                .nth(1)
                .and_then(|v| v.split('"').next())
                .map(str::to_string)
        };
        self.encode()
            .lines()
            .filter(|l| l.starts_with("multicasskop_api_requests_total{"))
            .filter(|l| matches!((label(l, "site"), label(l, "verb")), (Some(site), Some(verb)) if pred(&site, &verb)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// Whether a verb reads (`get`, `list`, `watch`) rather than writes.
pub fn is_read(verb: &str) -> bool {
    matches!(verb, "get" | "list" | "watch")
}

/// The Kubernetes verb of an HTTP request.
pub fn verb_of(method: &http::Method, uri: &http::Uri) -> &'static str {
    let query = uri.query().unwrap_or_default();
    match *method {
        http::Method::GET
            if query
                .split('&')
                .any(|p| p == "watch=true" || p == "watch=1") =>
        {
            "watch"
        }
        http::Method::GET => {
            // Collections end in a plural resource name; single objects have a name after it.
            let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
            let collection = match segments.first() {
                Some(&"api") => !segments.len().is_multiple_of(2),
                Some(&"apis") => segments.len().is_multiple_of(2),
                _ => false,
            };
            if collection { "list" } else { "get" }
        }
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    }
}

/// The resource of a request path (`/api/v1/...` or `/apis/<group>/<version>/...`, namespaced
/// or not), followed by `/<subresource>` when the path names one; empty for discovery paths.
pub fn resource_of(uri: &http::Uri) -> String {
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let rest = match segments.first() {
        Some(&"api") => segments.get(2..),
        Some(&"apis") => segments.get(3..),
        _ => None,
    }
    .unwrap_or_default();
    let rest = match rest {
        ["namespaces", _, resource, tail @ ..] => {
            let mut v = vec![*resource];
            v.extend_from_slice(tail);
            v
        }
        other => other.to_vec(),
    };
    match rest.as_slice() {
        [] => String::new(),
        [resource] | [resource, _] => (*resource).to_string(),
        [resource, _, subresource, ..] => format!("{resource}/{subresource}"),
    }
}

/// A tower layer that counts every request of a client, labelled with its site.
pub fn count_requests<B>(
    metrics: Arc<Metrics>,
    site: String,
) -> tower::util::MapRequestLayer<impl Fn(http::Request<B>) -> http::Request<B> + Clone> {
    tower::util::MapRequestLayer::new(move |request: http::Request<B>| {
        let verb = verb_of(request.method(), request.uri());
        metrics
            .api_requests
            .get_or_create(&RequestLabels {
                site: site.clone(),
                verb: verb.into(),
                resource: resource_of(request.uri()),
            })
            .inc();
        request
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs() {
        let cases = [
            (
                "GET",
                "/apis/db.orange.com/v2/namespaces/ns/cassandraclusters/cass",
                "get",
            ),
            (
                "GET",
                "/apis/db.orange.com/v2/namespaces/ns/cassandraclusters",
                "list",
            ),
            (
                "GET",
                "/apis/db.orange.com/v2/cassandraclusters?labelSelector=x&watch=true",
                "watch",
            ),
            ("GET", "/api/v1/namespaces/ns/secrets", "list"),
            ("GET", "/api/v1/namespaces/ns/secrets/s", "get"),
            ("GET", "/apis/db.orange.com/v2", "get"),
            (
                "PATCH",
                "/apis/db.orange.com/v2/namespaces/ns/cassandraclusters/cass/status",
                "patch",
            ),
            ("POST", "/api/v1/namespaces/ns/events", "create"),
            (
                "DELETE",
                "/apis/db.orange.com/v2/namespaces/ns/cassandraclusters/cass",
                "delete",
            ),
        ];
        for (method, uri, want) in cases {
            let uri: http::Uri = uri.parse().expect("uri");
            assert_eq!(
                verb_of(&method.parse().expect("method"), &uri),
                want,
                "{method} {uri}"
            );
        }
    }

    #[test]
    fn resources() {
        let cases = [
            (
                "/apis/db.orange.com/v2/namespaces/ns/cassandraclusters/cass",
                "cassandraclusters",
            ),
            (
                "/apis/db.orange.com/v2/namespaces/ns/cassandraclusters/cass/status",
                "cassandraclusters/status",
            ),
            (
                "/apis/db.orange.com/v2/namespaces/ns/multicasskops/ring/status?fieldManager=x",
                "multicasskops/status",
            ),
            (
                "/apis/db.orange.com/v2/cassandraclusters",
                "cassandraclusters",
            ),
            ("/api/v1/namespaces/ns/events", "events"),
            ("/apis/events.k8s.io/v1/namespaces/ns/events/e", "events"),
            (
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases/multi-casskop",
                "leases",
            ),
            ("/api/v1/namespaces/ns", "namespaces"),
            ("/apis/db.orange.com/v2", ""),
            ("/version", ""),
        ];
        for (uri, want) in cases {
            let uri: http::Uri = uri.parse().expect("uri");
            assert_eq!(resource_of(&uri), want, "{uri}");
        }
    }

    #[test]
    fn exposition_and_request_sums() {
        let m = Metrics::default();
        m.reconciled("ns", "ring", Duration::from_millis(3), false);
        m.api_requests
            .get_or_create(&RequestLabels {
                site: "a".into(),
                verb: "patch".into(),
                resource: "cassandraclusters".into(),
            })
            .inc();
        m.api_requests
            .get_or_create(&RequestLabels {
                site: "b".into(),
                verb: "watch".into(),
                resource: "cassandraclusters".into(),
            })
            .inc_by(2);
        let text = m.encode();
        assert!(
            text.contains(
                "multicasskop_reconciles_total{namespace=\"ns\",multicasskop=\"ring\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains(
            "multicasskop_reconcile_errors_total{namespace=\"ns\",multicasskop=\"ring\"} 1"
        ));
        assert!(text.contains("multicasskop_reconcile_duration_seconds_count 1"));
        assert_eq!(m.requests(is_read), 2);
        assert_eq!(m.requests(|v| !is_read(v)), 1);
    }

    #[test]
    fn forgotten_rings_leave_no_series() {
        let m = Metrics::default();
        for i in 0..2000 {
            let name = format!("ring{i}");
            m.reconciled("ns", &name, Duration::from_millis(1), false);
            m.ready_sites
                .get_or_create(&RingLabels {
                    namespace: "ns".into(),
                    multicasskop: name.clone(),
                })
                .set(3);
            if i > 0 {
                m.forget_ring("ns", &name);
            }
        }
        let text = m.encode();
        assert!(
            text.contains("multicasskop=\"ring0\""),
            "a live ring keeps its series"
        );
        assert!(!text.contains("multicasskop=\"ring1\""), "{text}");
        assert!(
            text.len() < 4000,
            "{} bytes after 2,000 rings churned",
            text.len()
        );
    }
}
