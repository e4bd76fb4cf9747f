//! One canister: its wasmi store and instance, and the execution of one message with rollback.
//!
//! Rollback on trap (and after every query) restores:
//! * stable memory from the page journal ([`crate::memory`]);
//! * the heap from a committed copy refreshed after each committed message (heaps are small
//!   compared with stable memory; a heap that grew during the failed message is restored by
//!   re-instantiating the module and copying the committed heap in, since wasm memories cannot
//!   shrink);
//! * mutable globals (exported by the module rewrite) from a snapshot;
//! * the cycle balance, certified data and global timer from a snapshot.

use std::sync::Arc;

use candid::Principal;
use wasmi::{Engine, Global, Instance, Linker, Memory, Store, Table, Val};

use crate::engine::{CompiledModule, TABLE_EXPORT};
use crate::system_api::{define_stub, Exec, ExecKind, HostCtx, HostTrap, IMPLEMENTED};
use crate::CanisterStatusKind;

/// Fuel for the module's start function when re-instantiating after a trap.
const START_FUEL: u64 = 1_000_000_000;

/// What to do with the changes of an execution that did not trap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// Keep them (updates, callbacks, timers, init, post_upgrade).
    Commit,
    /// Discard them (queries, inspect_message).
    Rollback,
    /// Neither: the caller decides later (pre_upgrade, whose changes must be undone if the
    /// upgrade fails).
    Keep,
}

/// The entry point of an execution.
#[derive(Clone, Debug)]
pub enum Entry {
    Export(String),
    /// A callback: (table index, env).
    Callback(u32, u32),
}

/// Why an execution failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecError {
    /// `ic0.trap`.
    CalledTrap(String),
    /// A wasm trap (unreachable, out-of-bounds, ...).
    Trapped(String),
    /// System API misuse.
    Violation(String),
    InstructionLimit,
    /// The canister cannot prepay the message's instruction limit above its freezing reserve
    /// (the IC's check before execution); `needed` is the shortfall.
    OutOfCycles {
        needed: u128,
    },
    StableTouchLimit(String),
    /// The entry point is missing or has the wrong type.
    Missing(String),
}

pub struct Outcome {
    pub result: Result<(), ExecError>,
    pub exec: Exec,
    pub instructions: u64,
}

pub struct Canister {
    pub store: Store<HostCtx>,
    pub instance: Option<Instance>,
    pub module: Option<Arc<CompiledModule>>,
    /// SHA-256 of the module as supplied to install_code (gzipped or not), as the IC reports it.
    pub module_hash: Option<[u8; 32]>,
    pub globals: Vec<Global>,
    pub table: Option<Table>,
    pub committed_heap: Vec<u8>,
    pub committed_globals: Vec<Val>,
    pub freezing_threshold: u64,
    pub wasm_memory_limit: u64,
    pub status: CanisterStatusKind,
    /// Incremented on install/reinstall/uninstall: callbacks of an older generation are dropped.
    pub generation: u64,
    /// Open call contexts (not yet answered or with outstanding callbacks).
    pub open_contexts: usize,
    /// Bytes of this canister's outstanding calls in the message queues: each request and the
    /// slot reserved for its response. The IC counts them in the memory its freezing reserve is
    /// computed on.
    pub message_memory: u64,
}

pub fn new_store(engine: &Engine, ctx: HostCtx) -> Store<HostCtx> {
    let mut store = Store::new(engine, ctx);
    store.limiter(|h| &mut h.limits);
    store
}

/// Links trapping stubs for `ic0` imports this replica does not implement.
pub fn link_stubs(
    linker: &mut Linker<HostCtx>,
    stubs: &mut std::collections::HashSet<String>,
    module: &CompiledModule,
) {
    for import in module.module.imports() {
        if import.module() != "ic0" || IMPLEMENTED.contains(&import.name()) {
            continue;
        }
        if let wasmi::ExternType::Func(ty) = import.ty() {
            if stubs.insert(import.name().to_string()) {
                let _ = define_stub(linker, import.name(), ty.clone());
            }
        }
    }
}

/// A fresh instance: store, instance, exported mutable globals, table, start-function fuel.
pub type Instantiated = (Store<HostCtx>, Instance, Vec<Global>, Option<Table>, u64);

/// Instantiates `module` in a fresh store holding `ctx` (runs the start function). On failure the
/// host state comes back (boxed) so nothing it holds (e.g. stable memory) is lost.
pub fn instantiate(
    engine: &Engine,
    linker: &Linker<HostCtx>,
    module: &Arc<CompiledModule>,
    mut ctx: HostCtx,
    start_fuel: u64,
) -> Result<Instantiated, Box<(HostCtx, String)>> {
    ctx.exec = Exec {
        kind: ExecKind::Start,
        fuel_limit: start_fuel,
        ..Exec::default()
    };
    let mut store = new_store(engine, ctx);
    if store.set_fuel(start_fuel).is_err() {
        return Err(Box::new((
            store.into_data(),
            "fuel metering disabled".into(),
        )));
    }
    let instance = match linker.instantiate_and_start(&mut store, &module.module) {
        Ok(i) => i,
        Err(e) => {
            let msg = format!("Wasm module could not be instantiated: {e}");
            return Err(Box::new((store.into_data(), msg)));
        }
    };
    let used = start_fuel - store.get_fuel().unwrap_or(0);
    let memory: Option<Memory> = instance.get_memory(&store, "memory");
    store.data_mut().memory = memory;
    let globals = module
        .info
        .globals
        .iter()
        .filter_map(|name| instance.get_global(&store, name))
        .collect();
    let table = instance.get_table(&store, TABLE_EXPORT);
    Ok((store, instance, globals, table, used))
}

impl Canister {
    pub fn new(engine: &Engine, id: Principal) -> Self {
        Canister {
            store: new_store(engine, HostCtx::new(id)),
            instance: None,
            module: None,
            module_hash: None,
            globals: Vec::new(),
            table: None,
            committed_heap: Vec::new(),
            committed_globals: Vec::new(),
            freezing_threshold: crate::cycles::DEFAULT_FREEZING_THRESHOLD,
            wasm_memory_limit: 3 << 30,
            status: CanisterStatusKind::Running,
            generation: 0,
            open_contexts: 0,
            message_memory: 0,
        }
    }

    pub fn ctx(&self) -> &HostCtx {
        self.store.data()
    }

    pub fn ctx_mut(&mut self) -> &mut HostCtx {
        self.store.data_mut()
    }

    pub fn heap_bytes(&self) -> u64 {
        match self.ctx().memory {
            Some(m) => m.data_size(&self.store) as u64,
            None => 0,
        }
    }

    /// Heap + stable memory + module size (what the freezing reserve is computed on).
    pub fn memory_size(&self) -> u64 {
        self.heap_bytes()
            + self.ctx().stable.size_bytes()
            + self.module.as_ref().map_or(0, |m| m.size as u64)
    }

    /// The freezing reserve: memory (and outstanding messages) for the freezing threshold.
    pub fn reserve(&self) -> u128 {
        crate::cycles::freezing_reserve(
            self.memory_size() + self.message_memory,
            self.freezing_threshold,
        )
    }

    pub fn exports(&self, name: &str) -> bool {
        self.module.as_ref().is_some_and(|m| m.exports(name))
    }

    /// Adopts a freshly instantiated store as the committed state.
    pub fn adopt(
        &mut self,
        module: Arc<CompiledModule>,
        store: Store<HostCtx>,
        instance: Instance,
        globals: Vec<Global>,
        table: Option<Table>,
    ) {
        self.store = store;
        self.instance = Some(instance);
        self.module = Some(module);
        self.globals = globals;
        self.table = table;
        self.snapshot_committed();
    }

    /// Refreshes the committed copies of heap and globals.
    pub fn snapshot_committed(&mut self) {
        self.committed_heap.clear();
        if let Some(m) = self.ctx().memory {
            self.committed_heap.extend_from_slice(m.data(&self.store));
        }
        self.committed_globals = self.globals.iter().map(|g| g.get(&self.store)).collect();
    }

    /// Restores heap and globals to the committed copies (re-instantiating if the heap grew).
    pub fn restore_committed(&mut self, engine: &Engine, linker: &Linker<HostCtx>) {
        let Some(mem) = self.ctx().memory else {
            return;
        };
        if mem.data_size(&self.store) == self.committed_heap.len() {
            mem.data_mut(&mut self.store)
                .copy_from_slice(&self.committed_heap);
        } else if let Some(module) = self.module.clone() {
            // Wasm memories cannot shrink: build a new instance and copy the committed heap in.
            let placeholder = new_store(engine, HostCtx::new(self.ctx().id));
            let old = std::mem::replace(&mut self.store, placeholder);
            let ctx = old.into_data();
            match instantiate(engine, linker, &module, ctx, START_FUEL) {
                Ok((mut store, instance, globals, table, _)) => {
                    if let Some(m) = store.data().memory {
                        let have = m.data_size(&store) as u64;
                        let want = self.committed_heap.len() as u64;
                        if want > have {
                            let _ = m.grow(&mut store, (want - have) / crate::memory::PAGE);
                        }
                        if m.data_size(&store) == self.committed_heap.len() {
                            m.data_mut(&mut store).copy_from_slice(&self.committed_heap);
                        }
                    }
                    self.store = store;
                    self.instance = Some(instance);
                    self.globals = globals;
                    self.table = table;
                }
                Err(failed) => {
                    let (ctx, _) = *failed;
                    // Cannot happen for a module that instantiated before; keep the state
                    // reachable rather than losing it.
                    self.store = new_store(engine, ctx);
                }
            }
        }
        for (g, v) in self.globals.iter().zip(self.committed_globals.clone()) {
            let _ = g.set(&mut self.store, v);
        }
    }

    /// Runs one execution. `exec.fuel_limit` bounds the instructions. Cycles are the caller's
    /// business: the IC prepays the whole limit before a message runs (`State::execute`), so an
    /// execution never runs out of cycles half-way.
    pub fn run(
        &mut self,
        engine: &Engine,
        linker: &Linker<HostCtx>,
        entry: Entry,
        exec: Exec,
        finish: Finish,
        touch_limit: u64,
    ) -> Outcome {
        let Some(instance) = self.instance else {
            return Outcome {
                result: Err(ExecError::Missing("the canister has no Wasm module".into())),
                exec,
                instructions: 0,
            };
        };
        let fuel = exec.fuel_limit;
        let kind = exec.kind;
        let (balance, certified, timer) = {
            let h = self.ctx_mut();
            h.exec = exec;
            if !h.stable.journaling() {
                h.stable.begin(touch_limit);
            }
            (h.balance, h.certified_data.clone(), h.global_timer)
        };
        let _ = self.store.set_fuel(fuel);
        let func = match &entry {
            Entry::Export(name) => instance.get_func(&self.store, name),
            Entry::Callback(idx, _) => {
                self.table
                    .and_then(|t| match t.get(&self.store, *idx as u64) {
                        Some(wasmi::Ref::Func(f)) => Option::<wasmi::Func>::from(f),
                        _ => None,
                    })
            }
        };
        let result = match func {
            None => Err(ExecError::Missing(match &entry {
                Entry::Export(n) => format!("the canister has no method `{n}`"),
                Entry::Callback(i, _) => format!("no function at table index {i}"),
            })),
            Some(f) => {
                let r = match &entry {
                    Entry::Export(_) => f.call(&mut self.store, &[], &mut []),
                    Entry::Callback(_, env) => {
                        f.call(&mut self.store, &[Val::I32(*env as i32)], &mut [])
                    }
                };
                r.map_err(classify)
            }
        };
        let instructions = fuel - self.store.get_fuel().unwrap_or(0);
        let mut exec = std::mem::take(&mut self.ctx_mut().exec);
        let rollback = result.is_err() || finish == Finish::Rollback;
        if rollback {
            {
                let h = self.ctx_mut();
                h.stable.rollback();
                h.balance = balance;
                h.certified_data = certified;
                h.global_timer = timer;
            }
            self.restore_committed(engine, linker);
            exec.calls.clear();
            if result.is_err() {
                exec.response = None;
                exec.cycles_accepted = 0;
                exec.call_fees = 0;
            }
        } else if finish == Finish::Commit {
            self.ctx_mut().stable.commit();
            self.snapshot_committed();
            if kind.persists() && kind != ExecKind::Start {
                self.ctx_mut().canister_version += 1;
            }
        }
        Outcome {
            result,
            exec,
            instructions,
        }
    }
}

fn classify(e: wasmi::Error) -> ExecError {
    if let Some(t) = e.downcast_ref::<HostTrap>() {
        return match t {
            HostTrap::Called(m) => ExecError::CalledTrap(m.clone()),
            HostTrap::Violation(m) => ExecError::Violation(m.clone()),
            HostTrap::OutOfInstructions => ExecError::InstructionLimit,
            HostTrap::StableTouchLimit(m) => ExecError::StableTouchLimit(m.clone()),
        };
    }
    if let Some(wasmi::TrapCode::OutOfFuel) = e.as_trap_code() {
        return ExecError::InstructionLimit;
    }
    ExecError::Trapped(e.to_string())
}
