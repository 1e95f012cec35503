//! Polls a condition until it holds or a deadline passes, and then says what was last seen.
//!
//! Tests never assert on timing: they wait, generously, for a state, and fail with a message that
//! shows the last observation when the state does not come.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep};

/// Deadline used by the tests when nothing more specific applies.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Pause between two probes.
const POLL_INTERVAL: Duration = Duration::from_millis(150);

/// A condition did not hold in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "timed out after {timeout:?} waiting for {what}; last seen: {last}. \
     Check the simulator/controller logs above, or raise the deadline if the machine is overloaded"
)]
pub struct WaitError {
    /// What was awaited.
    pub what: String,
    /// The deadline that passed.
    pub timeout: Duration,
    /// The last observation the probe reported.
    pub last: String,
}

/// Calls `probe` until it returns `Ok`, at most for `timeout`.
///
/// `probe` returns `Err(observation)` while the condition does not hold yet; the last
/// observation ends up in the error.
pub async fn until<T, F, Fut>(
    what: impl Display,
    timeout: Duration,
    mut probe: F,
) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(WaitError {
                what: what.to_string(),
                timeout,
                last,
            });
        }
        sleep(POLL_INTERVAL).await;
    }
}

/// Resolves on Ctrl-C or SIGTERM (the binaries' way to stop).
pub async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_success() {
        let mut calls = 0;
        let value = until("three calls", Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move {
                if n >= 3 {
                    Ok(n)
                } else {
                    Err(format!("call {n}"))
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn reports_the_last_observation() {
        let err = until("never", Duration::from_millis(10), || async {
            Err::<(), _>("still no".to_string())
        })
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("waiting for never"), "{msg}");
        assert!(msg.contains("last seen: still no"), "{msg}");
    }
}
