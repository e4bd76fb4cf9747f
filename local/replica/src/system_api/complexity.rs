//! What the IC charges, in instructions, for a System API call: a fixed overhead per call plus a
//! charge per byte it moves, as the IC replica defines them (dfinity/ic,
//! `rs/embedders/src/wasmtime_embedder/system_api_complexity.rs` and `linker.rs`):
//!
//! ```text
//! // linker.rs
//! /// The amount of instructions required to process a single byte in a payload.
//! /// This includes the cost of memory as well as time passing the payload
//! /// from wasm sandbox to the replica execution environment.
//! const BYTE_TRANSMISSION_COST_FACTOR: usize = 50;
//! ...
//! charge_for_cpu_and_mem(&mut caller, overhead::MSG_REPLY_DATA_APPEND,
//!                        BYTE_TRANSMISSION_COST_FACTOR.saturating_mul(size))?;
//! // system_api.rs, on an application subnet:
//! fn get_num_instructions_from_bytes(&self, num_bytes: NumBytes) -> NumInstructions {
//!     NumInstructions::from(num_bytes.get()) }
//! ```
//!
//! * every import: its overhead ([`overhead`]: 500 for most, `call_new` 1,500, `call_perform`
//!   5,000, `is_controller` 1,000, `performance_counter` 200, `debug_print` 100, the stable
//!   memory functions 20, `stable64_grow` 100);
//! * `*_copy`, `call_new` (callee + method name), `is_controller`, `certified_data_set`,
//!   `stable64_read`/`stable64_write`: 1 instruction per byte;
//! * `msg_reply_data_append`, `msg_reject`, `call_data_append`: [`BYTE_TRANSMISSION_COST_FACTOR`]
//!   (50) instructions per byte;
//! * `debug_print` and `trap`: the bytes plus the canister log's charge, 2 × the bytes kept in the
//!   log + 50 × the bytes transmitted to it ([`logging_charge_bytes`]);
//! * `stable64_write`: [`DIRTY_PAGE_OVERHEAD`] (1,000) per 4 KiB stable page the message dirties
//!   for the first time (`rs/config/src/subnet_config.rs`: "Costs for each newly created dirty
//!   page in stable memory. const DEFAULT_DIRTY_PAGE_OVERHEAD: NumInstructions = 1_000").
//!
//! Measured on PocketIC 10 (`canvid-tests`' `cycles` differential): a 2,000,000-byte reply costs
//! ≈ 113.6 M cycles, of which 100 M is this per-byte charge.

/// Instructions per byte of a reply, reject message or call payload.
pub const BYTE_TRANSMISSION_COST_FACTOR: u64 = 50;
/// Instructions per stable-memory page (4 KiB) a message writes for the first time.
pub const DIRTY_PAGE_OVERHEAD: u64 = 1_000;
/// The canister log's capacity in bytes (the IC keeps the last 4 KiB of a canister's log).
pub const LOG_CAPACITY: u64 = 4 * 1024;

/// The fixed overhead of `ic0.<name>` (the IC's `system_api_complexity::overhead`; the stable
/// memory functions are implemented natively in wasm on the IC, `overhead_native`).
pub fn overhead(name: &str) -> u64 {
    match name {
        "stable64_read" | "stable64_write" | "stable64_size" => 20,
        "stable64_grow" => 100,
        "debug_print" => 100,
        "performance_counter" => 200,
        "is_controller" => 1_000,
        "call_new" => 1_500,
        "call_perform" => 5_000,
        _ => 500,
    }
}

/// The bytes `debug_print`/`trap` of `len` bytes are charged for the canister log
/// (`logging_charge_bytes` in `linker.rs`): `2 × min(len, capacity) + 50 × min(len, remaining)`.
pub fn logging_charge_bytes(len: u64, log_bytes: u64) -> u64 {
    let remaining = LOG_CAPACITY.saturating_sub(log_bytes);
    2 * len.min(LOG_CAPACITY) + BYTE_TRANSMISSION_COST_FACTOR * len.min(remaining)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(overhead("msg_reply_data_append"), 500);
        assert_eq!(overhead("call_perform"), 5_000);
        assert_eq!(overhead("stable64_write"), 20);
        assert_eq!(logging_charge_bytes(10, 0), 20 + 500);
        assert_eq!(logging_charge_bytes(10_000, 0), 2 * 4096 + 50 * 4096);
        assert_eq!(logging_charge_bytes(10, 4096), 20);
    }
}
