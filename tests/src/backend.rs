//! The one interface integration tests are written against: [`Backend`], implemented by the
//! embedded replica ([`crate::ReplicaBackend`]) and by PocketIC ([`crate::PocketIcBackend`]).
//!
//! The trait is object safe (tests take `&dyn Backend`); the typed candid helpers live in
//! [`BackendExt`], implemented for every backend.

use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::{CandidType, Principal};
use serde::de::DeserializeOwned;
use std::time::{Duration, SystemTime};

/// Why the system (not the canister's application logic) refused a call: a trap, a missing
/// canister or method, an `inspect_message` refusal, a management-canister error, ...
///
/// Both backends map their reject into this, so a test can assert `error_code == "IC0406"`
/// whichever backend ran it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub code: RejectCode,
    /// The IC's error code string, e.g. `"IC0503"` (trap), `"IC0406"` (inspect_message refused).
    pub error_code: String,
    pub message: String,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}: {}", self.code, self.error_code, self.message)
    }
}

impl std::error::Error for Reject {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectCode {
    SysFatal,
    SysTransient,
    DestinationInvalid,
    CanisterReject,
    CanisterError,
    SysUnknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallMode {
    Install,
    Reinstall,
    Upgrade,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Running,
    Stopping,
    Stopped,
}

/// The part of `canister_status` the tests look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub status: RunState,
    pub controllers: Vec<Principal>,
    pub module_hash: Option<[u8; 32]>,
    pub cycles: u128,
    pub memory_size: u64,
    /// Cycles the canister burns per day for its memory (and compute allocation): its freezing
    /// reserve is this × threshold / 86,400.
    pub idle_cycles_burned_per_day: u128,
    pub freezing_threshold: u64,
}

/// Opaque handle of a submitted (not yet executed) ingress message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallId(pub u64);

/// Instructions one call executed, where the backend can measure it (the embedded replica).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub instructions: u64,
    pub cycles_charged: u128,
}

/// An IC the tests can drive. `sender: Option<Principal>` on management operations means
/// "the anonymous principal" when `None`, as in pocket-ic.
pub trait Backend {
    /// `"replica"` or `"pocket-ic"`, for messages.
    fn name(&self) -> &'static str;

    // --- management ---
    /// Creates a canister with `cycles`, controlled by `controllers` (default: `sender`).
    fn create_canister(
        &self,
        sender: Option<Principal>,
        controllers: Option<Vec<Principal>>,
        cycles: u128,
    ) -> Principal;
    fn install_code(
        &self,
        mode: InstallMode,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), Reject>;
    fn add_cycles(&self, canister: Principal, amount: u128) -> u128;
    fn cycle_balance(&self, canister: Principal) -> u128;
    /// Controllers as the system sees them (no permission check).
    fn controllers(&self, canister: Principal) -> Vec<Principal>;
    fn set_controllers(
        &self,
        canister: Principal,
        sender: Option<Principal>,
        controllers: Vec<Principal>,
    ) -> Result<(), Reject>;
    /// `update_settings` of the freezing threshold (seconds), as `sender`.
    fn set_freezing_threshold(
        &self,
        canister: Principal,
        sender: Option<Principal>,
        seconds: u64,
    ) -> Result<(), Reject>;
    /// `canister_status` as `sender` (which must be a controller).
    fn status(&self, canister: Principal, sender: Option<Principal>) -> Result<Status, Reject>;
    fn start(&self, canister: Principal, sender: Option<Principal>) -> Result<(), Reject>;
    fn stop(&self, canister: Principal, sender: Option<Principal>) -> Result<(), Reject>;
    fn canister_exists(&self, canister: Principal) -> bool;
    /// How many canisters exist (created by anyone, canisters included).
    fn canister_count(&self) -> u64;

    // --- messages ---
    /// An ingress update: `inspect_message` runs first, then the call and everything it
    /// triggers, until it is answered.
    fn update_raw(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject>;
    /// Like `update_raw`, with what it cost when the backend can measure it (`None` on PocketIC).
    fn update_raw_with_cost(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> (Result<Vec<u8>, Reject>, Option<Cost>);
    fn query_raw(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject>;
    fn query_raw_with_cost(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> (Result<Vec<u8>, Reject>, Option<Cost>);
    /// Enqueues an ingress update without running it (`inspect_message` refusals come back here).
    fn submit(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<CallId, Reject>;
    /// Runs rounds until the submitted call is answered.
    fn await_call(&self, id: CallId) -> Result<Vec<u8>, Reject>;
    /// Executes one round.
    fn tick(&self);

    /// The IC root public key (DER) that certificates of this backend verify against.
    fn root_key(&self) -> Vec<u8>;

    /// The IC's `read_state` of `paths` (each a list of labels) at `canister`'s endpoint, by the
    /// anonymous sender: the certificate (CBOR) the HTTP interface answers, to be checked
    /// against [`Backend::root_key`] (through the subnet's delegation on PocketIC). For paths
    /// anyone may read (`/canister/<id>/controllers`, `/canister/<id>/module_hash`, `/time`).
    fn read_state(&self, canister: Principal, paths: Vec<Vec<Vec<u8>>>) -> Result<Vec<u8>, String>;

    /// The canister's whole stable memory, as the nodes of its subnet hold it (for tests that
    /// check what is stored in the clear).
    fn stable_memory(&self, canister: Principal) -> Vec<u8>;

    // --- time ---
    fn time(&self) -> SystemTime;
    fn advance_time(&self, by: Duration);
}

/// Candid-typed calls on any [`Backend`]. A reply that does not decode as `R` is an interface
/// mismatch between the test and the canister: it panics with both type names, it is never
/// turned into a "rejected" result a test could accidentally accept.
pub trait BackendExt: Backend {
    fn update<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        args: A,
    ) -> Result<R, Reject> {
        let arg = candid::encode_args(args).expect("candid-encoding the arguments");
        self.update_raw(canister, sender, method, arg)
            .map(|bytes| decode_reply::<R>(method, &bytes))
    }

    fn query<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        args: A,
    ) -> Result<R, Reject> {
        let arg = candid::encode_args(args).expect("candid-encoding the arguments");
        self.query_raw(canister, sender, method, arg)
            .map(|bytes| decode_reply::<R>(method, &bytes))
    }

    /// One argument in, one value out: the shape of every canvid endpoint.
    fn update1<A: CandidType, R: CandidType + DeserializeOwned>(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R, Reject> {
        self.update::<_, (R,)>(canister, sender, method, (arg,))
            .map(|(r,)| r)
    }

    fn query1<A: CandidType, R: CandidType + DeserializeOwned>(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R, Reject> {
        self.query::<_, (R,)>(canister, sender, method, (arg,))
            .map(|(r,)| r)
    }

    /// `update1` that also returns the measured cost (embedded replica only).
    fn update1_with_cost<A: CandidType, R: CandidType + DeserializeOwned>(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> (Result<R, Reject>, Option<Cost>) {
        let bytes = candid::encode_one(arg).expect("candid-encoding the argument");
        let (res, cost) = self.update_raw_with_cost(canister, sender, method, bytes);
        (res.map(|b| decode_reply::<(R,)>(method, &b).0), cost)
    }

    fn query1_with_cost<A: CandidType, R: CandidType + DeserializeOwned>(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> (Result<R, Reject>, Option<Cost>) {
        let bytes = candid::encode_one(arg).expect("candid-encoding the argument");
        let (res, cost) = self.query_raw_with_cost(canister, sender, method, bytes);
        (res.map(|b| decode_reply::<(R,)>(method, &b).0), cost)
    }

    fn submit1<A: CandidType>(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> Result<CallId, Reject> {
        let bytes = candid::encode_one(arg).expect("candid-encoding the argument");
        self.submit(canister, sender, method, bytes)
    }

    fn await1<R: CandidType + DeserializeOwned>(
        &self,
        id: CallId,
        method: &str,
    ) -> Result<R, Reject> {
        self.await_call(id)
            .map(|b| decode_reply::<(R,)>(method, &b).0)
    }

    fn install(
        &self,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), Reject> {
        self.install_code(InstallMode::Install, canister, wasm, arg, sender)
    }

    fn upgrade(
        &self,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), Reject> {
        self.install_code(InstallMode::Upgrade, canister, wasm, arg, sender)
    }

    fn reinstall(
        &self,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), Reject> {
        self.install_code(InstallMode::Reinstall, canister, wasm, arg, sender)
    }

    fn module_hash(&self, canister: Principal, controller: Option<Principal>) -> Option<[u8; 32]> {
        self.status(canister, controller)
            .unwrap_or_else(|e| panic!("canister_status of {canister}: {e}"))
            .module_hash
    }
}

impl<T: Backend + ?Sized> BackendExt for T {}

fn decode_reply<R: for<'a> ArgumentDecoder<'a>>(method: &str, bytes: &[u8]) -> R {
    candid::decode_args::<R>(bytes).unwrap_or_else(|e| {
        panic!(
            "the reply of `{method}` does not decode as {}: {e}",
            std::any::type_name::<R>()
        )
    })
}
