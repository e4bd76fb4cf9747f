//! [`Backend`] on PocketIC (client crate `pocket-ic` 10.0.0, server 10.0.0), used only when the
//! environment variable `POCKET_IC_BIN` names the server binary.
//!
//! The `pocket-ic` client downloads a server from GitHub when the one it is given has the wrong
//! version; this sandbox (and CI) must not do that silently, so [`PocketIcBackend::from_env`]
//! checks `POCKET_IC_BIN --version` itself first and refuses a mismatch with a clear message.

use crate::backend::{Backend, CallId, Cost, InstallMode, Reject, RejectCode, RunState, Status};
use candid::{Nat, Principal};
use ic_management_canister_types::{CanisterSettings, CanisterStatusType};
use pocket_ic::common::rest::{RawEffectivePrincipal, RawMessageId};
use pocket_ic::{PocketIc, PocketIcBuilder};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct PocketIcBackend {
    pub pic: PocketIc,
    submitted: Mutex<HashMap<u64, RawMessageId>>,
}

/// Why PocketIC is not used in this run, if it is not.
pub fn pocket_ic_unavailable() -> Option<String> {
    match std::env::var_os("POCKET_IC_BIN") {
        None => Some("POCKET_IC_BIN is not set".into()),
        Some(p) if !PathBuf::from(&p).is_file() => Some(format!(
            "POCKET_IC_BIN={} is not an existing file",
            PathBuf::from(p).display()
        )),
        Some(_) => None,
    }
}

impl PocketIcBackend {
    /// The PocketIC server `POCKET_IC_BIN` names. Panics when there is none or it is not a
    /// PocketIC server 10.0.0: a PocketIC variant that runs (they are `#[ignore]`d without
    /// `POCKET_IC_BIN`, see `tests/build.rs`, so this is `--include-ignored`) and cannot have
    /// PocketIC fails rather than passing without checking anything.
    pub fn from_env() -> Self {
        Self::from_env_with(|b| b)
    }

    /// [`Self::from_env`] with an II subnet too: PocketIC deploys its threshold keys (vetKD's
    /// `key_1`, `test_key_1`, `dfx_test_key`) only on an II or fiduciary subnet (pocket-ic
    /// HOWTO.md, "VetKd"), so the vetKD conformance tests run on this topology.
    pub fn from_env_with_threshold_keys() -> Self {
        Self::from_env_with(|b| b.with_ii_subnet())
    }

    fn from_env_with(extra: impl FnOnce(PocketIcBuilder) -> PocketIcBuilder) -> Self {
        if let Some(why) = pocket_ic_unavailable() {
            panic!(
                "this PocketIC variant ran but PocketIC is not available: {why}. Set POCKET_IC_BIN \
                 to a pocket-ic-server 10.0.0 binary (scripts/setup.sh unpacks one into \
                 target/pocket-ic/pocket-ic where ../shared/pocket-ic exists), or run without \
                 --include-ignored"
            );
        }
        let bin = PathBuf::from(std::env::var_os("POCKET_IC_BIN").expect("checked above"));
        let out = std::process::Command::new(&bin)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} --version: {e}", bin.display()));
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let expected = format!("pocket-ic-server {}", pocket_ic::EXPECTED_SERVER_VERSION);
        assert_eq!(
            version,
            expected,
            "POCKET_IC_BIN={} is `{version}`; this suite needs `{expected}` (pocket-ic client =10.0.0)",
            bin.display()
        );
        // An NNS subnet makes the instance's certificates what mainnet's are: signed by the
        // root (NNS) key, with a delegation to the application subnet that holds the canisters,
        // so answers verify against `root_key()` exactly as a gateway verifies them on the IC.
        // No system canister is installed on it (see ../shared/pocket-ic/README.md).
        let pic = extra(
            PocketIcBuilder::new()
                .with_server_binary(bin)
                .with_nns_subnet(),
        )
        .with_application_subnet()
        .build();
        Self {
            pic,
            submitted: Mutex::new(HashMap::new()),
        }
    }
}

impl PocketIcBackend {
    /// An ingress call to the management canister routed by `effective` (its effective canister
    /// id): methods whose argument names no canister (`vetkd_public_key`, ...) cannot be sent
    /// through [`Backend::update_raw`], which PocketIC cannot route.
    pub fn management_ingress(
        &self,
        effective: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        self.pic
            .update_call_with_effective_principal(
                Principal::management_canister(),
                RawEffectivePrincipal::CanisterId(effective.as_slice().to_vec()),
                sender,
                method,
                arg,
            )
            .map_err(reject)
    }
}

fn reject(r: pocket_ic::RejectResponse) -> Reject {
    Reject {
        code: match r.reject_code {
            pocket_ic::RejectCode::SysFatal => RejectCode::SysFatal,
            pocket_ic::RejectCode::SysTransient => RejectCode::SysTransient,
            pocket_ic::RejectCode::DestinationInvalid => RejectCode::DestinationInvalid,
            pocket_ic::RejectCode::CanisterReject => RejectCode::CanisterReject,
            pocket_ic::RejectCode::CanisterError => RejectCode::CanisterError,
            pocket_ic::RejectCode::SysUnknown => RejectCode::SysUnknown,
        },
        // `ErrorCode`'s Display is the IC's "IC0503" form.
        error_code: r.error_code.to_string(),
        message: r.reject_message,
    }
}

/// Runs a submission on the PocketIC client, which panics when the server answers HTTP 400
/// (PocketIC 10 refuses an ingress message over 2 MiB, envelope included, that way:
/// `(400, "BadIngressMessage(\"Request 0x… is too large. Message byte size N is larger than
/// the max allowed 2097152.\")")`). That refusal becomes a [`Reject`] with error code
/// `BadIngressMessage` and the server's text; other panics propagate.
fn refusable<T>(f: impl FnOnce() -> Result<T, Reject>) -> Result<T, Reject> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let text = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            // The text is the Debug form of the server's answer: cut the IC's sentence out.
            let (Some(start), Some(max)) = (text.find("Request 0x"), text.find("max allowed "))
            else {
                std::panic::resume_unwind(p)
            };
            if !text.contains("BadIngressMessage") {
                std::panic::resume_unwind(p)
            }
            let digits = text[max + "max allowed ".len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let end = max + "max allowed ".len() + digits + 1;
            Err(Reject {
                code: RejectCode::SysFatal,
                error_code: "BadIngressMessage".into(),
                message: text[start..end].to_string(),
            })
        }
    }
}

fn nat_u128(n: &Nat) -> u128 {
    u128::try_from(n.0.clone()).expect("a cycle amount fits u128")
}

impl Backend for PocketIcBackend {
    fn name(&self) -> &'static str {
        "pocket-ic"
    }

    fn create_canister(
        &self,
        sender: Option<Principal>,
        controllers: Option<Vec<Principal>>,
        cycles: u128,
    ) -> Principal {
        let settings = controllers.map(|c| CanisterSettings {
            controllers: Some(c),
            ..Default::default()
        });
        let id = self.pic.create_canister_with_settings(sender, settings);
        if cycles > 0 {
            self.pic.add_cycles(id, cycles);
        }
        id
    }

    fn install_code(
        &self,
        mode: InstallMode,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), Reject> {
        match mode {
            // pocket-ic's `install_canister` panics on failure; a failed install must be a
            // result here, so it goes through the management canister like the others.
            InstallMode::Install => {
                use ic_management_canister_types::{CanisterInstallMode, InstallCodeArgs};
                let args = InstallCodeArgs {
                    mode: CanisterInstallMode::Install,
                    canister_id: canister,
                    wasm_module: wasm,
                    arg,
                    sender_canister_version: None,
                };
                self.pic
                    .update_call_with_effective_principal(
                        Principal::management_canister(),
                        RawEffectivePrincipal::CanisterId(canister.as_slice().to_vec()),
                        sender.unwrap_or(Principal::anonymous()),
                        "install_code",
                        candid::encode_one(args).expect("encode InstallCodeArgs"),
                    )
                    .map(|_| ())
                    .map_err(reject)
            }
            InstallMode::Reinstall => self
                .pic
                .reinstall_canister(canister, wasm, arg, sender)
                .map_err(reject),
            InstallMode::Upgrade => self
                .pic
                .upgrade_canister(canister, wasm, arg, sender)
                .map_err(reject),
        }
    }

    fn add_cycles(&self, canister: Principal, amount: u128) -> u128 {
        self.pic.add_cycles(canister, amount)
    }

    fn cycle_balance(&self, canister: Principal) -> u128 {
        self.pic.cycle_balance(canister)
    }

    fn controllers(&self, canister: Principal) -> Vec<Principal> {
        self.pic.get_controllers(canister)
    }

    fn set_controllers(
        &self,
        canister: Principal,
        sender: Option<Principal>,
        controllers: Vec<Principal>,
    ) -> Result<(), Reject> {
        self.pic
            .set_controllers(canister, sender, controllers)
            .map_err(reject)
    }

    fn set_freezing_threshold(
        &self,
        canister: Principal,
        sender: Option<Principal>,
        seconds: u64,
    ) -> Result<(), Reject> {
        let settings = CanisterSettings {
            freezing_threshold: Some(Nat::from(seconds)),
            ..Default::default()
        };
        self.pic
            .update_canister_settings(canister, sender, settings)
            .map_err(reject)
    }

    fn status(&self, canister: Principal, sender: Option<Principal>) -> Result<Status, Reject> {
        let s = self.pic.canister_status(canister, sender).map_err(reject)?;
        Ok(Status {
            status: match s.status {
                CanisterStatusType::Running => RunState::Running,
                CanisterStatusType::Stopping => RunState::Stopping,
                CanisterStatusType::Stopped => RunState::Stopped,
            },
            controllers: s.settings.controllers,
            module_hash: s
                .module_hash
                .map(|h| h.try_into().expect("a module hash is 32 bytes")),
            cycles: nat_u128(&s.cycles),
            memory_size: u64::try_from(s.memory_size.0).expect("memory size fits u64"),
            idle_cycles_burned_per_day: nat_u128(&s.idle_cycles_burned_per_day),
            freezing_threshold: u64::try_from(s.settings.freezing_threshold.0)
                .expect("freezing threshold fits u64"),
        })
    }

    fn start(&self, canister: Principal, sender: Option<Principal>) -> Result<(), Reject> {
        self.pic.start_canister(canister, sender).map_err(reject)
    }

    fn stop(&self, canister: Principal, sender: Option<Principal>) -> Result<(), Reject> {
        self.pic.stop_canister(canister, sender).map_err(reject)
    }

    fn canister_exists(&self, canister: Principal) -> bool {
        self.pic.canister_exists(canister)
    }

    fn canister_count(&self) -> u64 {
        // Subnet metrics are read from certified state: execute a round so they are current.
        self.pic.tick();
        self.pic
            .topology()
            .subnet_configs
            .keys()
            .map(|subnet| {
                self.pic
                    .get_subnet_metrics(*subnet)
                    .map(|m| m.num_canisters)
                    .unwrap_or(0)
            })
            .sum()
    }

    fn update_raw(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        refusable(|| {
            self.pic
                .update_call(canister, sender, method, arg)
                .map_err(reject)
        })
    }

    fn update_raw_with_cost(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> (Result<Vec<u8>, Reject>, Option<Cost>) {
        (self.update_raw(canister, sender, method, arg), None)
    }

    fn query_raw(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        self.pic
            .query_call(canister, sender, method, arg)
            .map_err(reject)
    }

    fn query_raw_with_cost(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> (Result<Vec<u8>, Reject>, Option<Cost>) {
        (self.query_raw(canister, sender, method, arg), None)
    }

    fn submit(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<CallId, Reject> {
        let raw = refusable(|| {
            self.pic
                .submit_call(canister, sender, method, arg)
                .map_err(reject)
        })?;
        let mut map = self.submitted.lock().expect("submitted-calls lock");
        let id = map.len() as u64;
        map.insert(id, raw);
        Ok(CallId(id))
    }

    fn await_call(&self, id: CallId) -> Result<Vec<u8>, Reject> {
        let raw = self
            .submitted
            .lock()
            .expect("submitted-calls lock")
            .get(&id.0)
            .cloned()
            .unwrap_or_else(|| panic!("unknown call id {id:?}"));
        self.pic.await_call(raw).map_err(reject)
    }

    fn tick(&self) {
        self.pic.tick()
    }

    fn stable_memory(&self, canister: Principal) -> Vec<u8> {
        self.pic.get_stable_memory(canister)
    }

    fn root_key(&self) -> Vec<u8> {
        self.pic
            .root_key()
            .expect("the instance is built with an NNS subnet, whose key is the root key")
    }

    /// A real `read_state` request (CBOR envelope, anonymous, unsigned) to the instance's IC
    /// HTTP interface, `POST /instances/<id>/api/v2/canister/<canister>/read_state`, as
    /// `pocket-ic`'s own `get_subnet_metrics` sends one for a subnet.
    fn read_state(&self, canister: Principal, paths: Vec<Vec<Vec<u8>>>) -> Result<Vec<u8>, String> {
        use serde::Serialize;
        #[derive(Serialize)]
        struct Content {
            request_type: &'static str,
            #[serde(with = "serde_bytes")]
            sender: Vec<u8>,
            paths: Vec<Vec<serde_bytes::ByteBuf>>,
            ingress_expiry: u64,
        }
        #[derive(Serialize)]
        struct Envelope {
            content: Content,
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(with = "serde_bytes")]
            certificate: Vec<u8>,
        }
        let now = self.pic.get_time().as_nanos_since_unix_epoch();
        let envelope = Envelope {
            content: Content {
                request_type: "read_state",
                sender: Principal::anonymous().as_slice().to_vec(),
                paths: paths
                    .into_iter()
                    .map(|p| p.into_iter().map(serde_bytes::ByteBuf::from).collect())
                    .collect(),
                ingress_expiry: now + 240_000_000_000,
            },
        };
        let mut body = Vec::new();
        let mut ser = serde_cbor::Serializer::new(&mut body);
        ser.self_describe().map_err(|e| e.to_string())?;
        envelope.serialize(&mut ser).map_err(|e| e.to_string())?;
        let url = self
            .pic
            .get_server_url()
            .join(&format!(
                "/instances/{}/api/v2/canister/{canister}/read_state",
                self.pic.instance_id()
            ))
            .map_err(|e| e.to_string())?;
        let resp = reqwest::blocking::Client::new()
            .post(url)
            .header("content-type", "application/cbor")
            .body(body)
            .send()
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let bytes = resp.bytes().map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "read_state: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        let answer: Answer = serde_cbor::from_slice(&bytes).map_err(|e| e.to_string())?;
        Ok(answer.certificate)
    }

    fn time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.pic.get_time().as_nanos_since_unix_epoch())
    }

    fn advance_time(&self, by: Duration) {
        self.pic.advance_time(by)
    }
}
