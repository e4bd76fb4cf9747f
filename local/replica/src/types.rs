//! Public types of the replica API (shaped like the `pocket-ic` crate's).

use candid::Principal;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectCode {
    SysFatal = 1,
    SysTransient = 2,
    DestinationInvalid = 3,
    CanisterReject = 4,
    CanisterError = 5,
    SysUnknown = 6,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectResponse {
    pub reject_code: RejectCode,
    pub reject_message: String,
    /// The IC's error code string, e.g. "IC0503" (canister called trap), "IC0301" (canister not
    /// found), "IC0406" (canister rejected the message), "IC0522" (instruction limit),
    /// "IC0207" (out of cycles).
    pub error_code: String,
}

impl RejectResponse {
    /// A reject with the IC's error code `code` (e.g. 503); the reject code follows from the
    /// error code's class as on the IC (1xx SysFatal, 2xx SysTransient, 3xx DestinationInvalid,
    /// 4xx CanisterReject, 5xx CanisterError).
    pub fn ic(code: u32, message: impl Into<String>) -> Self {
        let reject_code = match code / 100 {
            1 => RejectCode::SysFatal,
            2 => RejectCode::SysTransient,
            3 => RejectCode::DestinationInvalid,
            4 => RejectCode::CanisterReject,
            _ => RejectCode::CanisterError,
        };
        RejectResponse {
            reject_code,
            reject_message: message.into(),
            error_code: format!("IC{code:04}"),
        }
    }
}

impl std::fmt::Display for RejectResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} ({}): {}",
            self.reject_code, self.error_code, self.reject_message
        )
    }
}

impl std::error::Error for RejectResponse {}

/// What one call cost (embedded measures; not the IC's exact weights).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    pub instructions: u64,
    pub cycles_charged: u128,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CanisterSettings {
    pub controllers: Option<Vec<Principal>>,
    /// Seconds.
    pub freezing_threshold: Option<u64>,
    pub wasm_memory_limit: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanisterStatusKind {
    Running,
    Stopping,
    Stopped,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanisterStatus {
    pub status: CanisterStatusKind,
    pub controllers: Vec<Principal>,
    pub module_hash: Option<[u8; 32]>,
    pub cycles: u128,
    /// Heap + stable memory + the module's size, as the IC counts a canister's memory (what
    /// its freezing reserve and storage fees are computed on).
    pub memory_size: u64,
    /// The freezing reserve of one day: `memory_size` × storage fee × 86,400 s.
    pub idle_cycles_burned_per_day: u128,
    pub freezing_threshold: u64,
    pub canister_version: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallMode {
    Install,
    Reinstall,
    Upgrade,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);
