//! Capture: what a save copies out of the replica under its lock (quiescence check, fingerprint,
//! heaps, globals, metadata and dirty stable pages).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use candid::Principal;
use sha2::{Digest, Sha256};

use super::files::Pages;
use super::manifest::{status_code, val_to_bits, CanisterRecord, Manifest, ModuleRecord};
use super::{Result, SnapshotError};
use crate::state::State;

pub(super) struct CapturedCanister {
    pub(super) record: CanisterRecord,
    pub(super) wasm: Option<Arc<[u8]>>,
    pub(super) heap: Vec<u8>,
    /// Full write: every allocated page. Incremental: the dirty pages (content `None` = zeros).
    pub(super) pages: Pages,
    pub(super) full: bool,
}

pub(super) struct Capture {
    pub(super) manifest: Manifest,
    pub(super) canisters: Vec<CapturedCanister>,
}

/// A digest of everything a save records except heap and stable *contents* (which only change
/// through executions that bump `canister_version`): unchanged fingerprint, nothing to save.
pub(super) fn fingerprint(s: &State) -> [u8; 32] {
    let mut h = Sha256::new();
    for v in [
        s.next_canister,
        s.next_msg,
        s.next_ctx,
        s.next_cb,
        s.rng_counter,
    ] {
        h.update(v.to_le_bytes());
    }
    h.update(s.keys.seed());
    for (id, c) in &s.canisters {
        let x = c.ctx();
        h.update(id.as_slice());
        h.update([status_code(c.status)]);
        h.update(c.generation.to_le_bytes());
        h.update(x.canister_version.to_le_bytes());
        h.update(x.balance.to_le_bytes());
        h.update(c.freezing_threshold.to_le_bytes());
        h.update(c.wasm_memory_limit.to_le_bytes());
        h.update(x.global_timer.to_le_bytes());
        h.update((x.certified_data.len() as u64).to_le_bytes());
        h.update(&x.certified_data);
        for p in &x.controllers {
            h.update(p.as_slice());
        }
        h.update(c.module_hash.unwrap_or_default());
        h.update(x.stable.size_pages().to_le_bytes());
        h.update((c.committed_heap.len() as u64).to_le_bytes());
        let changes = s.history.get(id).map_or(0, |h| h.total_num_changes);
        h.update(changes.to_le_bytes());
    }
    h.finalize().into()
}

pub(super) fn is_quiescent(s: &State) -> bool {
    s.queue.is_empty() && s.contexts.is_empty() && s.callbacks.is_empty()
}

/// Copies what the save needs. `prev`: the directory's current manifest.
pub(super) fn capture(
    s: &mut State,
    prev: Option<&Manifest>,
    store_id: u128,
    seq: u64,
) -> Result<Capture> {
    if !is_quiescent(s) {
        return Err(SnapshotError::Busy);
    }
    let fp = fingerprint(s);
    let prev_files: HashMap<Principal, u64> = prev
        .map(|m| m.canisters.iter().map(|c| (c.id, c.stable_file)).collect())
        .unwrap_or_default();
    let prev_sync = prev.map(|m| (m.store_id, m.seq));
    let mut canisters = Vec::new();
    let history = &s.history;
    for (id, c) in s.canisters.iter_mut() {
        let module = match &c.module {
            None => None,
            Some(m) => {
                let globals = c
                    .committed_globals
                    .iter()
                    .map(|v| {
                        val_to_bits(v).ok_or_else(|| {
                            SnapshotError::Unsupported(format!(
                                "canister {id} has a mutable global of a reference or vector type"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some((m.clone(), globals))
            }
        };
        let heap = c.committed_heap.clone();
        let status = c.status;
        let generation = c.generation;
        let freezing_threshold = c.freezing_threshold;
        let wasm_memory_limit = c.wasm_memory_limit;
        let module_hash = c.module_hash;
        let x = c.ctx_mut();
        // Incremental only when the memory is in sync with this directory's manifest and the
        // canister's stable file is still referenced by it.
        let incremental = prev_sync.is_some()
            && x.stable.synced_with() == prev_sync
            && prev_files.contains_key(id);
        let dirty = x.stable.take_dirty((store_id, seq));
        let (pages, full, stable_file) = if incremental {
            let pages = dirty
                .into_iter()
                .map(|p| (p, x.stable.page(p).map(<[u8]>::to_vec)))
                .collect();
            (pages, false, prev_files[id])
        } else {
            let pages = x
                .stable
                .allocated_pages()
                .into_iter()
                .map(|p| (p, x.stable.page(p).map(<[u8]>::to_vec)))
                .collect();
            (pages, true, seq)
        };
        let record = CanisterRecord {
            id: *id,
            status,
            generation,
            canister_version: x.canister_version,
            balance: x.balance,
            freezing_threshold,
            wasm_memory_limit,
            global_timer: x.global_timer,
            certified_data: x.certified_data.clone(),
            controllers: x.controllers.clone(),
            module: module.as_ref().map(|(m, globals)| ModuleRecord {
                module_hash: module_hash.unwrap_or(m.hash),
                wasm: m.hash,
                heap_len: heap.len() as u64,
                heap: [0; 32], // filled in outside the lock
                globals: globals.clone(),
            }),
            stable_pages: x.stable.size_pages(),
            stable_file,
            history: history.get(id).cloned(),
        };
        canisters.push(CapturedCanister {
            record,
            wasm: module.map(|(m, _)| m.wasm.clone()),
            heap,
            pages,
            full,
        });
    }
    Ok(Capture {
        manifest: Manifest {
            store_id,
            seq,
            pending_delta: None,
            fingerprint: fp,
            time: s.time,
            next_canister: s.next_canister,
            next_msg: s.next_msg,
            next_ctx: s.next_ctx,
            next_cb: s.next_cb,
            rng_counter: s.rng_counter,
            keys_seed: s.keys.seed(),
            canisters: Vec::new(),
        },
        canisters,
    })
}

pub(super) fn new_store_id(dir: &Path) -> u128 {
    let mut h = Sha256::new();
    h.update(dir.as_os_str().as_encoded_bytes());
    h.update(std::process::id().to_le_bytes());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.update(d.as_nanos().to_le_bytes());
    }
    let d: [u8; 32] = h.finalize().into();
    u128::from_le_bytes(d[..16].try_into().unwrap_or_default())
}
