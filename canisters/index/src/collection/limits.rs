//! Rate limits of the collection's paid work. Ingress is free for its sender and paid by the
//! collection: a transfer costs it about 78 M cycles (two `canister_info` calls and the video's
//! own transfer, docs/performance.md) and a metadata refresh one call, so a holder moving a token
//! back and forth between its own principals, or refreshing in a loop, would drain the index.
//! Each token may be transferred through the collection at most [`TRANSFERS_PER_WINDOW`] times,
//! and refreshed [`REFRESHES_PER_WINDOW`] times, per [`WINDOW_NS`]; a token is its own unit
//! because tokens are what cost their holders something (a video canister each).
//!
//! The counters live on the heap: an upgrade resets them, which at most doubles one window's
//! allowance.

use std::collections::BTreeMap;

/// The window of the limits: one hour.
pub const WINDOW_NS: u64 = 3_600 * 1_000_000_000;
/// Transfers of one token through the collection per window.
pub const TRANSFERS_PER_WINDOW: u32 = 10;
/// Metadata refreshes of one token per window.
pub const REFRESHES_PER_WINDOW: u32 = 10;

/// Fixed-window counters per token.
#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Token → (window start, uses in it).
    uses: BTreeMap<u64, (u64, u32)>,
}

impl RateLimiter {
    /// Counts one use of `token` at `now` if fewer than `max` were made in its current window;
    /// otherwise the nanoseconds until the window ends.
    pub fn admit(&mut self, token: u64, now: u64, max: u32) -> Result<(), u64> {
        self.forget_before(now.saturating_sub(WINDOW_NS));
        let e = self.uses.entry(token).or_insert((now, 0));
        if now.saturating_sub(e.0) >= WINDOW_NS {
            *e = (now, 0);
        }
        if e.1 >= max {
            return Err(e.0.saturating_add(WINDOW_NS).saturating_sub(now));
        }
        e.1 += 1;
        Ok(())
    }

    /// Drops counters whose window ended before `cutoff` (bounded work per call: the map holds
    /// at most the tokens used within one window).
    fn forget_before(&mut self, cutoff: u64) {
        if self.uses.len() < 1_024 {
            return;
        }
        self.uses.retain(|_, (start, _)| *start >= cutoff);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.uses.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gets_its_allowance_per_window() {
        let mut r = RateLimiter::default();
        for _ in 0..3 {
            assert_eq!(r.admit(7, 100, 3), Ok(()));
        }
        assert_eq!(r.admit(7, 100 + 10, 3), Err(WINDOW_NS - 10));
        // Another token is not affected.
        assert_eq!(r.admit(8, 110, 3), Ok(()));
        // The next window.
        assert_eq!(r.admit(7, 100 + WINDOW_NS, 3), Ok(()));
    }

    #[test]
    fn old_counters_are_forgotten() {
        let mut r = RateLimiter::default();
        for t in 0..2_000u64 {
            r.admit(t, 0, 1).unwrap();
        }
        r.admit(5_000, 2 * WINDOW_NS, 1).unwrap();
        assert_eq!(r.len(), 1);
    }
}
