//! The manifest (`manifest.bin`): what it records per canister and how it is written and read.

use candid::Principal;
use wasmi::Val;

use super::codec::{Dec, Enc};
use super::{Result, SnapshotError, FORMAT_VERSION, MANIFEST_MAGIC};
use crate::management::{Change, History};
use crate::CanisterStatusKind;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ModuleRecord {
    pub(super) module_hash: [u8; 32],
    pub(super) wasm: [u8; 32],
    pub(super) heap_len: u64,
    pub(super) heap: [u8; 32],
    /// (type tag, bits)
    pub(super) globals: Vec<(u8, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct CanisterRecord {
    pub(super) id: Principal,
    pub(super) status: CanisterStatusKind,
    pub(super) generation: u64,
    pub(super) canister_version: u64,
    pub(super) balance: u128,
    pub(super) freezing_threshold: u64,
    pub(super) wasm_memory_limit: u64,
    pub(super) global_timer: u64,
    pub(super) certified_data: Vec<u8>,
    pub(super) controllers: Vec<Principal>,
    pub(super) module: Option<ModuleRecord>,
    pub(super) stable_pages: u64,
    pub(super) stable_file: u64,
    /// `canister_info`'s history (format version 2; `None` in version 1 files).
    pub(super) history: Option<History>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Manifest {
    pub(super) store_id: u128,
    pub(super) seq: u64,
    pub(super) pending_delta: Option<u64>,
    pub(super) fingerprint: [u8; 32],
    pub(super) time: u64,
    pub(super) next_canister: u64,
    pub(super) next_msg: u64,
    pub(super) next_ctx: u64,
    pub(super) next_cb: u64,
    pub(super) rng_counter: u64,
    pub(super) keys_seed: [u8; 32],
    pub(super) canisters: Vec<CanisterRecord>,
}

pub(super) fn status_code(s: CanisterStatusKind) -> u8 {
    match s {
        CanisterStatusKind::Running => 0,
        CanisterStatusKind::Stopping => 1,
        CanisterStatusKind::Stopped => 2,
    }
}

impl Manifest {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.raw(MANIFEST_MAGIC);
        e.u32(FORMAT_VERSION);
        e.u128(self.store_id);
        e.u64(self.seq);
        match self.pending_delta {
            None => e.u8(0),
            Some(s) => {
                e.u8(1);
                e.u64(s);
            }
        }
        e.raw(&self.fingerprint);
        e.u64(self.time);
        for v in [
            self.next_canister,
            self.next_msg,
            self.next_ctx,
            self.next_cb,
            self.rng_counter,
        ] {
            e.u64(v);
        }
        e.raw(&self.keys_seed);
        e.u32(self.canisters.len() as u32);
        for c in &self.canisters {
            c.encode(&mut e);
        }
        e.seal()
    }

    pub(super) fn decode(buf: &[u8]) -> Result<Manifest> {
        let mut d = Dec::open(buf, MANIFEST_MAGIC, "manifest.bin")?;
        let store_id = d.u128()?;
        let seq = d.u64()?;
        let pending_delta = match d.u8()? {
            0 => None,
            1 => Some(d.u64()?),
            t => return Err(SnapshotError::Corrupt(format!("bad pending-delta tag {t}"))),
        };
        let fingerprint = d.arr()?;
        let time = d.u64()?;
        let next_canister = d.u64()?;
        let next_msg = d.u64()?;
        let next_ctx = d.u64()?;
        let next_cb = d.u64()?;
        let rng_counter = d.u64()?;
        let keys_seed = d.arr()?;
        let n = d.u32()?;
        let mut canisters = Vec::new();
        for _ in 0..n {
            canisters.push(CanisterRecord::decode(&mut d)?);
        }
        d.done()?;
        Ok(Manifest {
            store_id,
            seq,
            pending_delta,
            fingerprint,
            time,
            next_canister,
            next_msg,
            next_ctx,
            next_cb,
            rng_counter,
            keys_seed,
            canisters,
        })
    }
}

impl CanisterRecord {
    /// The per-canister encoding shared by the manifest and the write-ahead log.
    pub(super) fn encode(&self, e: &mut Enc) {
        e.principal(&self.id);
        e.u8(status_code(self.status));
        e.u64(self.generation);
        e.u64(self.canister_version);
        e.u128(self.balance);
        e.u64(self.freezing_threshold);
        e.u64(self.wasm_memory_limit);
        e.u64(self.global_timer);
        e.bytes(&self.certified_data);
        e.u32(self.controllers.len() as u32);
        for p in &self.controllers {
            e.principal(p);
        }
        match &self.module {
            None => e.u8(0),
            Some(m) => {
                e.u8(1);
                e.raw(&m.module_hash);
                e.raw(&m.wasm);
                e.u64(m.heap_len);
                e.raw(&m.heap);
                e.u32(m.globals.len() as u32);
                for (t, bits) in &m.globals {
                    e.u8(*t);
                    e.u64(*bits);
                }
            }
        }
        e.u64(self.stable_pages);
        e.u64(self.stable_file);
        match &self.history {
            None => e.u8(0),
            Some(h) => {
                e.u8(1);
                e.u64(h.total_num_changes);
                e.u32(h.recent.len() as u32);
                for c in &h.recent {
                    e.bytes(&candid::encode_one(c).expect("a change encodes"));
                }
            }
        }
    }

    pub(super) fn decode(d: &mut Dec) -> Result<CanisterRecord> {
        let id = d.principal()?;
        let status = match d.u8()? {
            0 => CanisterStatusKind::Running,
            1 => CanisterStatusKind::Stopping,
            2 => CanisterStatusKind::Stopped,
            t => return Err(SnapshotError::Corrupt(format!("bad status {t} of {id}"))),
        };
        let generation = d.u64()?;
        let canister_version = d.u64()?;
        let balance = d.u128()?;
        let freezing_threshold = d.u64()?;
        let wasm_memory_limit = d.u64()?;
        let global_timer = d.u64()?;
        let certified_data = d.bytes()?;
        let nc = d.u32()?;
        let mut controllers = Vec::new();
        for _ in 0..nc {
            controllers.push(d.principal()?);
        }
        let module = match d.u8()? {
            0 => None,
            1 => {
                let module_hash = d.arr()?;
                let wasm = d.arr()?;
                let heap_len = d.u64()?;
                let heap = d.arr()?;
                let ng = d.u32()?;
                let mut globals = Vec::new();
                for _ in 0..ng {
                    let t = d.u8()?;
                    if t > 3 {
                        return Err(SnapshotError::Corrupt(format!(
                            "bad global type {t} of {id}"
                        )));
                    }
                    globals.push((t, d.u64()?));
                }
                Some(ModuleRecord {
                    module_hash,
                    wasm,
                    heap_len,
                    heap,
                    globals,
                })
            }
            t => {
                return Err(SnapshotError::Corrupt(format!(
                    "bad module tag {t} of {id}"
                )))
            }
        };
        let stable_pages = d.u64()?;
        let stable_file = d.u64()?;
        let history = if d.version < 2 {
            None
        } else {
            match d.u8()? {
                0 => None,
                1 => {
                    let total_num_changes = d.u64()?;
                    let mut recent = std::collections::VecDeque::new();
                    for _ in 0..d.u32()? {
                        let c: Change = candid::decode_one(&d.bytes()?).map_err(|e| {
                            SnapshotError::Corrupt(format!("bad history change of {id}: {e}"))
                        })?;
                        recent.push_back(c);
                    }
                    Some(History {
                        total_num_changes,
                        recent,
                    })
                }
                t => {
                    return Err(SnapshotError::Corrupt(format!(
                        "bad history tag {t} of {id}"
                    )))
                }
            }
        };
        Ok(CanisterRecord {
            id,
            status,
            generation,
            canister_version,
            balance,
            freezing_threshold,
            wasm_memory_limit,
            global_timer,
            certified_data,
            controllers,
            module,
            stable_pages,
            stable_file,
            history,
        })
    }
}

pub(super) fn val_to_bits(v: &Val) -> Option<(u8, u64)> {
    match v {
        Val::I32(x) => Some((0, *x as u32 as u64)),
        Val::I64(x) => Some((1, *x as u64)),
        Val::F32(x) => Some((2, x.to_bits() as u64)),
        Val::F64(x) => Some((3, x.to_bits())),
        _ => None,
    }
}

pub(super) fn bits_to_val(t: u8, bits: u64) -> Val {
    match t {
        0 => Val::I32(bits as u32 as i32),
        1 => Val::I64(bits as i64),
        2 => Val::F32(wasmi::F32::from_bits(bits as u32)),
        _ => Val::F64(wasmi::F64::from_bits(bits)),
    }
}
