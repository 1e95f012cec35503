//! What every reconcile shares: the management client, the sites, the ledger of writes,
//! failure counts, the Event recorder and metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::controller::backoff::Failures;
use crate::controller::coalesce::StatusWrites;
use crate::controller::copies::CopyLedger;
use crate::controller::joining::JoinBook;
use crate::controller::ledger::Ledger;
use crate::core::tenancy::TenancyPolicy;
use crate::metrics::Metrics;
use crate::sites::SiteRegistry;

/// Name under which Events are reported.
pub const CONTROLLER_NAME: &str = "multi-casskop";

/// Shared state of the controller.
pub struct Context {
    /// Management cluster client.
    pub client: Client,
    /// The sites.
    pub sites: Arc<SiteRegistry>,
    /// Publishes Events on MultiCasskops.
    pub recorder: Recorder,
    /// Failure counts per MultiCasskop (whole-reconcile errors), keyed `namespace/name`.
    pub failures: Failures,
    /// Failure counts per site of a MultiCasskop, keyed by [`crate::controller::ledger::SiteKey`].
    pub site_failures: Failures,
    /// What we wrote at each site and what we await there.
    pub ledger: Ledger,
    /// The last join record written per site (newer than a lagging watch).
    pub(crate) joins: JoinBook,
    /// What this process last wrote to each ring's status, and what it holds back.
    pub status_writes: StatusWrites,
    /// Prometheus metrics (also read by tests and benchmarks).
    pub metrics: Arc<Metrics>,
    /// The MultiCasskop watch has listed once.
    pub management_synced: AtomicBool,
    /// This replica holds the lease (always true without leader election).
    pub leading: AtomicBool,
    /// Which site namespaces each MultiCasskop namespace may target (settings).
    pub tenancy: TenancyPolicy,
    /// The Secrets and ConfigMaps copied to sites, as this process last saw them.
    pub copies: CopyLedger,
}

impl Context {
    /// A context for the management `client` and `sites`.
    pub fn new(
        client: Client,
        sites: Arc<SiteRegistry>,
        instance: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.into(),
            instance,
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            sites,
            failures: Failures::default(),
            site_failures: Failures::default(),
            ledger: Ledger::default(),
            joins: JoinBook::default(),
            status_writes: StatusWrites::default(),
            metrics,
            management_synced: AtomicBool::new(false),
            leading: AtomicBool::new(true),
            tenancy: TenancyPolicy::default(),
            copies: CopyLedger::default(),
        }
    }

    /// Ready when the MultiCasskop watch has listed once and, on the leader, every site's watch
    /// has listed or failed (a broken site is reported, not waited for).
    pub fn readiness(&self) -> Result<(), String> {
        if !self.leading.load(Ordering::Relaxed) {
            // A standby is ready to take over; reporting it unready would stall rolling updates.
            return Ok(());
        }
        if !self.management_synced.load(Ordering::Relaxed) {
            return Err("the MultiCasskop watch has not listed yet".into());
        }
        let pending: Vec<String> = self
            .sites
            .all()
            .iter()
            .filter(|s| s.client().is_ok() && !s.health().synced && s.health().error.is_none())
            .map(|s| s.name.clone())
            .collect();
        if pending.is_empty() {
            Ok(())
        } else {
            Err(format!("sites still connecting: {}", pending.join(", ")))
        }
    }

    pub(crate) fn metrics_observe(&self, name: &str, namespace: &str, took: Duration, ok: bool) {
        self.metrics.reconciled(namespace, name, took, ok);
    }

    pub(crate) fn metrics_write(&self, site: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.metrics
            .site_writes
            .get_or_create(&crate::metrics::SiteResultLabels {
                site: site.into(),
                result: result.into(),
            })
            .inc();
    }
}
