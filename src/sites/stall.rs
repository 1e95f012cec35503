//! Noticing a hung site while requests wait on it. A request that has waited
//! [`ASK_PROBE_AFTER`] asks the site's probe to run now; once a probe finds the site not
//! answering, every request waiting on it gives up and new ones fail at once, until the site
//! answers again. Without this, each reconcile writing to a site whose API server hangs holds
//! one of the controller's reconcile slots for the whole request deadline, and enough of them
//! stall every ring, on every site.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// How long a request waits before asking for a probe of its site. A healthy API server
/// answers a write in milliseconds; a loaded one answers the probe (`GET /version`) quickly.
pub const ASK_PROBE_AFTER: Duration = Duration::from_secs(1);

/// Why a request to a site ended without an answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoAnswer {
    /// Not sent: the site's last probe failed.
    #[error("not asked: {0}")]
    NotAsked(String),
    /// Sent, then abandoned once a probe found the site not answering.
    #[error("gave up waiting: {0}")]
    GaveUp(String),
    /// No answer within the request's deadline.
    #[error("no answer within {} s (is its API server hung?)", .0.as_secs())]
    TimedOut(Duration),
}

/// One site's "is it answering" signal, shared by its requests and its probe.
#[derive(Debug)]
pub struct Stall {
    /// Wakes the probe early.
    probe_now: Notify,
    /// Why the last probe failed, while it is the latest news of the site.
    not_answering: watch::Sender<Option<String>>,
}

impl Default for Stall {
    fn default() -> Self {
        Stall {
            probe_now: Notify::new(),
            not_answering: watch::Sender::new(None),
        }
    }
}

impl Stall {
    /// Why the site is not answering, if its last probe failed and nothing answered since.
    pub fn not_answering(&self) -> Option<String> {
        self.not_answering.borrow().clone()
    }

    /// The site answered (a probe or a request).
    pub fn answered(&self) {
        self.not_answering
            .send_if_modified(|reason| reason.take().is_some());
    }

    /// A probe found the site not answering: waiting requests give up.
    pub fn probe_failed(&self, reason: String) {
        self.not_answering.send_replace(Some(reason));
    }

    /// Resolves when a request asks for a probe (for the probe's loop).
    pub async fn probe_requested(&self) {
        self.probe_now.notified().await;
    }

    /// Runs one request to the site: not at all while its last probe failed, and at most
    /// `timeout`, or until a probe finds the site not answering. Every request to a site goes
    /// through here, so none holds a reconcile slot for long on a hung site.
    pub async fn bounded<T>(
        &self,
        timeout: Duration,
        request: impl Future<Output = T>,
    ) -> Result<T, NoAnswer> {
        if let Some(reason) = self.not_answering() {
            return Err(NoAnswer::NotAsked(reason));
        }
        tokio::select! {
            outcome = tokio::time::timeout(timeout, request) => {
                outcome.map_err(|_| NoAnswer::TimedOut(timeout))
            }
            reason = self.given_up() => Err(NoAnswer::GaveUp(reason)),
        }
    }

    /// For a request in flight: after [`ASK_PROBE_AFTER`], asks for a probe, then resolves
    /// with the reason once a probe finds the site not answering (never, if it answers).
    pub async fn given_up(&self) -> String {
        tokio::time::sleep(ASK_PROBE_AFTER).await;
        let mut reason = self.not_answering.subscribe();
        self.probe_now.notify_one();
        let found = reason
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone().unwrap_or_default());
        match found {
            Ok(reason) => reason,
            // The site is gone (its handle dropped): nothing will answer.
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_waiting_request_asks_for_a_probe_and_gives_up_when_it_fails() {
        let stall = std::sync::Arc::new(Stall::default());
        let waiting = tokio::spawn({
            let stall = stall.clone();
            async move { stall.given_up().await }
        });
        // No probe is asked for before a second has passed.
        let early = tokio::time::timeout(ASK_PROBE_AFTER / 2, stall.probe_requested()).await;
        assert!(early.is_err(), "asked for a probe at once");
        tokio::time::timeout(ASK_PROBE_AFTER, stall.probe_requested())
            .await
            .expect("a probe is asked for");
        assert!(!waiting.is_finished(), "gave up before any probe failed");
        stall.probe_failed("no answer within 3 s".into());
        assert_eq!(waiting.await.expect("task"), "no answer within 3 s");
        assert_eq!(
            stall.not_answering().as_deref(),
            Some("no answer within 3 s")
        );
        stall.answered();
        assert_eq!(stall.not_answering(), None, "answered again");
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_requests_are_not_sent_while_the_site_does_not_answer() {
        let stall = Stall::default();
        assert_eq!(
            stall.bounded(Duration::from_secs(10), async { 1 }).await,
            Ok(1)
        );
        let slow = stall.bounded(Duration::from_secs(10), std::future::pending::<()>());
        assert_eq!(slow.await, Err(NoAnswer::TimedOut(Duration::from_secs(10))));
        stall.probe_failed("probe timed out".into());
        assert_eq!(
            stall.bounded(Duration::from_secs(10), async { 1 }).await,
            Err(NoAnswer::NotAsked("probe timed out".into()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_site_that_answers_keeps_its_requests() {
        let stall = Stall::default();
        let outcome = tokio::time::timeout(Duration::from_secs(30), stall.given_up()).await;
        assert!(outcome.is_err(), "gave up on a site whose probes pass");
    }
}
