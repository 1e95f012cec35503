//! Per-MultiCasskop and per-site failure counts, and the capped exponential backoff they give.
//! kube's controller has no per-object backoff of its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// First retry delay.
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Longest retry delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// Delay before retry number `failures` (1-based): 0.5 s, 1 s, 2 s, ... up to 5 min.
pub fn delay(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    BACKOFF_BASE.saturating_mul(1 << exponent).min(BACKOFF_CAP)
}

/// Failure counts by key.
#[derive(Default)]
pub struct Failures {
    counts: Mutex<HashMap<String, u32>>,
}

impl Failures {
    /// Records a failure and returns the delay before the next try.
    pub fn fail(&self, key: &str) -> Duration {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(key.to_string()).or_insert(0);
        *count += 1;
        delay(*count)
    }

    /// Forgets failures after a success.
    pub fn succeed(&self, key: &str) {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_and_capped() {
        let cases = [
            (1, 500),
            (2, 1_000),
            (3, 2_000),
            (5, 8_000),
            (10, 256_000),
            (11, 300_000),
            (1000, 300_000),
        ];
        for (failures, ms) in cases {
            assert_eq!(delay(failures), Duration::from_millis(ms), "{failures}");
        }
    }

    #[test]
    fn counts_per_key_and_reset() {
        let f = Failures::default();
        assert_eq!(f.fail("a"), Duration::from_millis(500));
        assert_eq!(f.fail("a"), Duration::from_millis(1000));
        assert_eq!(
            f.fail("b"),
            Duration::from_millis(500),
            "keys are independent"
        );
        f.succeed("a");
        assert_eq!(f.fail("a"), Duration::from_millis(500), "success resets");
    }
}
