//! The cycles model (fees of a 13-node application subnet, as published for the IC).
//!
//! * Ingress: [`INGRESS_BASE`] + [`INGRESS_PER_BYTE`] × (method name + argument bytes), charged to the
//!   receiving canister when the message is inducted (a canister that cannot pay above its freezing
//!   reserve rejects the message before execution).
//! * Execution of updates, callbacks, timers, install/upgrade: [`EXECUTION_BASE`] + 1 cycle per
//!   instruction (wasmi fuel), charged after the execution. The fuel given to a message is capped by
//!   what the canister can pay above its freezing reserve, so a message cannot overdraw; if that cap
//!   (not the instruction limit) stops it, the message fails with "out of cycles". Queries are free.
//! * Inter-canister calls: [`CALL_BASE`] + [`CALL_PER_BYTE`] × (method name + payload), plus the
//!   attached cycles, withdrawn from the caller at `call_perform`. `ic0.cost_call` returns exactly
//!   that fee and `canister_liquid_cycle_balance128` returns balance − freezing reserve, so ic-cdk's
//!   pre-check agrees with `call_perform`.
//! * Freezing reserve: memory bytes × [`STORAGE_PER_GIB_SECOND`] / GiB × freezing threshold seconds.
//!   A canister whose balance is below its reserve (plus the fee at hand) rejects ingress and calls.
//! * Canister creation costs [`CREATION_FEE`], taken from the cycles attached to `create_canister`.

pub const CREATION_FEE: u128 = 500_000_000_000;
pub const EXECUTION_BASE: u128 = 5_000_000;
pub const INGRESS_BASE: u128 = 1_200_000;
pub const INGRESS_PER_BYTE: u128 = 2_000;
pub const CALL_BASE: u128 = 260_000;
pub const CALL_PER_BYTE: u128 = 1_000;
pub const STORAGE_PER_GIB_SECOND: u128 = 127_000;
pub const DEFAULT_FREEZING_THRESHOLD: u64 = 30 * 24 * 3600;
const GIB: u128 = 1 << 30;

pub fn ingress_fee(method_len: usize, arg_len: usize) -> u128 {
    INGRESS_BASE + INGRESS_PER_BYTE * (method_len as u128 + arg_len as u128)
}

pub fn call_fee(method_len: u64, payload_len: u64) -> u128 {
    CALL_BASE + CALL_PER_BYTE * (method_len as u128 + payload_len as u128)
}

pub fn execution_fee(instructions: u64) -> u128 {
    EXECUTION_BASE + instructions as u128
}

/// Cycles a canister must keep to stay unfrozen.
pub fn freezing_reserve(memory_bytes: u64, threshold_seconds: u64) -> u128 {
    (memory_bytes as u128)
        .saturating_mul(STORAGE_PER_GIB_SECOND)
        .saturating_mul(threshold_seconds as u128)
        / GIB
}

/// Balance above the freezing reserve.
pub fn liquid(balance: u128, reserve: u128) -> u128 {
    balance.saturating_sub(reserve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees() {
        assert_eq!(ingress_fee(3, 1000), 1_200_000 + 2_000 * 1003);
        assert_eq!(call_fee(4, 6), 270_000);
        assert_eq!(execution_fee(1_000), 5_001_000);
    }

    #[test]
    fn reserve_matches_published_figures() {
        // 100 GiB for 30 days ≈ 33 T cycles (ic-notes.md).
        let r = freezing_reserve(100 << 30, DEFAULT_FREEZING_THRESHOLD);
        assert_eq!(r, 100 * 127_000 * 2_592_000);
        assert!(r > 32_000_000_000_000 && r < 34_000_000_000_000);
        assert_eq!(freezing_reserve(0, DEFAULT_FREEZING_THRESHOLD), 0);
        assert_eq!(liquid(10, 20), 0);
        assert_eq!(liquid(30, 20), 10);
    }
}
