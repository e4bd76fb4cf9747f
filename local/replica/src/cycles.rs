//! The cycles model (fees of a 13-node application subnet, as published for the IC and as
//! PocketIC 10 charges them; `canvid-tests`' `cycles` scenarios compare the two).
//!
//! * Ingress: [`INGRESS_BASE`] + [`INGRESS_PER_BYTE`] × (the request's size: method name +
//!   argument + [`INGRESS_ENVELOPE_BYTES`]), charged to the receiving canister when the message is
//!   inducted (a canister that cannot pay above its freezing reserve rejects the message before
//!   execution). Ingress to the management canister (`install_code`, ...) is charged to the
//!   canister it names.
//! * Execution is **prepaid**: before an update, timer or heartbeat runs, the canister pays
//!   [`execution_fee`] of the message's whole instruction limit (40 B for an update, 300 B for
//!   an install or upgrade); one that cannot pay that above its freezing reserve does not run
//!   the message ("out of cycles: please top up ... at least N additional cycles"). The message
//!   sees the balance without the prepayment; after it, the part not used ([`EXECUTION_BASE`] +
//!   1 cycle per instruction executed is kept) is refunded. Queries and `inspect_message` are free.
//! * Inter-canister calls: at `call_perform` the caller pays [`CALL_BASE`] + [`CALL_PER_BYTE`] ×
//!   (method name + payload) plus the attached cycles, and **reserves** the execution of the
//!   response callback (its whole instruction limit) and the transmission of the largest
//!   response ([`MAX_RESPONSE_BYTES`] × [`CALL_PER_BYTE`]): [`call_reservation`]. When the response
//!   arrives the transmission of its actual size is kept and the rest refunded; the callback
//!   (and a cleanup after a trapped callback) runs on the execution reservation and the unused
//!   part is refunded. `ic0.cost_call` returns fee + reservation, and
//!   `canister_liquid_cycle_balance128` returns balance − freezing reserve, so ic-cdk's
//!   pre-check agrees with `call_perform`.
//! * Freezing reserve: memory bytes × [`STORAGE_PER_GIB_SECOND`] / GiB × freezing threshold seconds,
//!   where memory includes the canister's outstanding calls ([`call_message_bytes`]: a call
//!   whose message memory would push the balance below the reserve is not sent).
//!   A canister whose balance is below its reserve (plus the fee at hand) rejects ingress and calls.
//! * Canister creation costs [`CREATION_FEE`], taken from the cycles attached to `create_canister`.
//! * Instructions include the IC's System API charges (`crate::system_api::complexity`): a fixed
//!   overhead per `ic0` call, 1 instruction per byte copied, 50 per byte of a reply, reject or
//!   call payload (`msg_reply_data_append`, `msg_reject`, `call_data_append`), 1,000 per 4 KiB
//!   stable page a message writes first, and the canister log's charge of `debug_print`/`trap`.
//!   A 2,000,000-byte reply thus costs ≈ 100 M instructions on top of building it (PocketIC 10:
//!   113.6 M cycles for the whole update; 117.1 M here, 9.2 M before these charges).
//! * A query method called as an update (ingress or inter-canister) runs replicated and is
//!   prepaid like an update, with the query instruction limit.
//! * Bulk memory instructions (`memory.copy`, `memory.fill`) cost 1 instruction per byte, as the
//!   IC's instrumentation charges them (`crate::engine::new_engine`; wasmi's default, 1 per 64
//!   bytes, left the 2 MB reply above 5.6 % cheaper than on PocketIC). wasmi applies the same
//!   rate to `memory.grow` (1 per byte grown), which the IC does not charge: growing the heap
//!   costs slightly more here.

pub const CREATION_FEE: u128 = 500_000_000_000;
pub const EXECUTION_BASE: u128 = 5_000_000;
pub const INGRESS_BASE: u128 = 1_200_000;
pub const INGRESS_PER_BYTE: u128 = 2_000;
pub const CALL_BASE: u128 = 260_000;
pub const CALL_PER_BYTE: u128 = 1_000;
pub const STORAGE_PER_GIB_SECOND: u128 = 127_000;
pub const DEFAULT_FREEZING_THRESHOLD: u64 = 30 * 24 * 3600;
const GIB: u128 = 1 << 30;
/// The largest response of an inter-canister call, whose transmission a call reserves.
pub const MAX_RESPONSE_BYTES: u128 = 2 * 1024 * 1024;
/// Bytes of an ingress request beyond its method name and argument (sender, canister id, nonce,
/// expiry and their CBOR framing), counted by the ingress byte fee. Measured on PocketIC 10: an
/// update with a 24-byte method name + argument was charged 1,548,000 = 1.2 M + 2,000 × 174.
pub const INGRESS_ENVELOPE_BYTES: usize = 150;

/// `vetkd_derive_key`'s fee, the same for every key: the IC's vetKD fee (10 B cycles on a
/// 13-node subnet) scaled to the 34 nodes of the subnet holding the key, 10 B × 34 / 13, which
/// is mainnet's fee for `key_1` (fiduciary subnet) and what PocketIC 10 charges for `key_1`,
/// `test_key_1` and `dfx_test_key` alike (measured). Mainnet's `test_key_1` lives on a 13-node
/// subnet and costs 10 B there. The caller attaches cycles; the fee is kept and the rest
/// refunded; too few, and the call is rejected with all of them refunded.
pub const VETKD_DERIVE_KEY_FEE: u128 = 26_153_846_153;

pub fn ingress_fee(method_len: usize, arg_len: usize) -> u128 {
    INGRESS_BASE
        + INGRESS_PER_BYTE * (method_len as u128 + arg_len as u128 + INGRESS_ENVELOPE_BYTES as u128)
}

pub fn call_fee(method_len: u64, payload_len: u64) -> u128 {
    CALL_BASE + CALL_PER_BYTE * (method_len as u128 + payload_len as u128)
}

pub fn execution_fee(instructions: u64) -> u128 {
    EXECUTION_BASE + instructions as u128
}

/// What a call reserves at `call_perform` besides its fee: the response callback's execution
/// (`callback_limit` instructions) and the transmission of the largest response.
pub fn call_reservation(callback_limit: u64) -> u128 {
    execution_fee(callback_limit) + CALL_PER_BYTE * MAX_RESPONSE_BYTES
}

/// Message memory of an outstanding call: the request and the slot reserved for its response.
pub fn call_message_bytes(method_len: usize, arg_len: usize) -> u64 {
    (method_len + arg_len) as u64 + MAX_RESPONSE_BYTES as u64
}

/// The IC's answer when a canister cannot pay `needed` more cycles for a message.
pub fn out_of_cycles_message(canister: impl std::fmt::Display, needed: u128) -> String {
    format!(
        "Canister {canister} is out of cycles: please top up the canister with at least {} additional cycles",
        underscored(needed)
    )
}

/// `1234567` -> `1_234_567`, as the IC writes cycle amounts in its messages.
pub(crate) fn underscored(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(ch);
    }
    out
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
        assert_eq!(ingress_fee(3, 1000), 1_200_000 + 2_000 * (1003 + 150));
        // PocketIC 10's figure for an 18-byte method name and a 6-byte argument.
        assert_eq!(ingress_fee(18, 6), 1_548_000);
        // PocketIC 10's `ic0.cost_call(0, 0)` with the IC's 40 B callback limit.
        assert_eq!(
            call_fee(0, 0) + call_reservation(40_000_000_000),
            42_102_412_000
        );
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

    #[test]
    fn out_of_cycles_message_is_the_ics() {
        assert_eq!(
            out_of_cycles_message("aaaaa-aa", 100_002_660_440),
            "Canister aaaaa-aa is out of cycles: please top up the canister with at least 100_002_660_440 additional cycles"
        );
        assert_eq!(underscored(0), "0");
        assert_eq!(underscored(999), "999");
        assert_eq!(underscored(1_000), "1_000");
    }
}
