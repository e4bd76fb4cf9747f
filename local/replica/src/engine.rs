//! Module preparation: gzip decoding, rewriting, compilation cache, instantiation.
//!
//! A canister module is rewritten before compilation so that the host can
//! * call reply/reject/cleanup callbacks: ic-cdk passes function pointers (indices into the funcref
//!   table) to `ic0.call_new`/`call_on_cleanup`, but the compiled module does not export its table;
//!   the rewrite exports table 0 as [`TABLE_EXPORT`];
//! * restore mutable globals (e.g. the shadow stack pointer) after a trap: every mutable global is
//!   exported as `__canvid_global_<index>` so it can be snapshotted and restored.
//!
//! Only the export section changes; every other section is copied byte for byte.
//!
//! Each distinct module (SHA-256 of the decompressed wasm) is compiled once and instantiated per
//! canister.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasm_encoder::{ExportKind, ExportSection, RawSection};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

pub const TABLE_EXPORT: &str = "__canvid_table";
pub const GLOBAL_EXPORT_PREFIX: &str = "__canvid_global_";
/// Largest module accepted after decompression (the IC's limit).
pub const MAX_MODULE_BYTES: usize = 100 * 1024 * 1024;

/// Returns the raw wasm: gunzips modules starting with the gzip magic `1f 8b`.
pub fn decode_module(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_MODULE_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("invalid gzip-compressed module: {e}"))?;
        if out.len() > MAX_MODULE_BYTES {
            return Err("decompressed module exceeds 100 MiB".into());
        }
        Ok(out)
    } else {
        if bytes.len() > MAX_MODULE_BYTES {
            return Err("module exceeds 100 MiB".into());
        }
        Ok(bytes.to_vec())
    }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// What the rewrite added.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RewriteInfo {
    /// Export names of the mutable globals, in index order.
    pub globals: Vec<String>,
    /// Whether a funcref table was exported as [`TABLE_EXPORT`].
    pub table: bool,
}

fn export_kind(k: ExternalKind) -> ExportKind {
    match k {
        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
    }
}

/// Instructions the IC charges for compiling one wasm instruction (its
/// `cost_to_compile_wasm_instruction`).
pub const COMPILE_INSTRUCTIONS_PER_WASM_INSTRUCTION: u64 = 6_000;
/// A module a node has compiled before is deserialized instead, charged at 1/100 of the
/// compilation (the IC's `CompilationCostHandling::CountReducedAmount`).
pub const DESERIALIZATION_SPEED_UP: u64 = 100;

/// The number of wasm instructions the IC's compilation charge counts: the instructions of the
/// module *after* the IC's instrumentation (it counts the instrumented module it compiles).
///
/// The instrumentation, as the IC publishes it (`rs/embedders/src/wasm_utils/instrumentation.rs`),
/// splits every function into basic blocks and injects at each block start the decrement of its
/// instruction counter: 4 instructions (`global.get; i64.const; i64.sub; global.set`), plus a
/// 6-instruction overflow check at re-entrant starts (function entry, loop bodies). Blocks start
/// at function entry and after `loop`, `if`, `else`, `end`, `br`, `br_if`, `br_table`, `return`,
/// `unreachable`; a non-re-entrant block of cost 0 gets no injection (only `block`, `loop`,
/// `else`, `end` cost 0). Bulk memory operations get a 3-instruction dynamic charge,
/// `memory.grow` a 3-instruction memory check. Each global counts 2 (initializer + `end`); the
/// instrumentation adds 3 globals and 2 functions of its own (≈ 66 instructions) plus
/// replacements for the stable-memory System API functions a module imports (not counted here:
/// a few hundred instructions at most). Checked against PocketIC 10 (`tests/tests/cycles.rs`):
/// the probe module counts 386,820 there.
pub fn compiled_instruction_count(wasm: &[u8]) -> Result<u64, String> {
    use wasmparser::Operator as O;
    let err = |e: wasmparser::BinaryReaderError| format!("invalid wasm module: {e}");
    // Injected by the instrumentation itself: the counter-decrement helper, the clean-page
    // counting helper, and 3 globals (instruction counter, dirty and accessed page counters).
    const INSTRUMENTATION_FUNCTIONS: u64 = 21 + 45;
    const INSTRUMENTATION_GLOBALS: u64 = 3;
    let mut n = INSTRUMENTATION_FUNCTIONS + 2 * INSTRUMENTATION_GLOBALS;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(err)? {
            Payload::GlobalSection(r) => n += 2 * r.count() as u64,
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader().map_err(err)?;
                // The function entry: re-entrant, costs at least 1.
                let mut reentrant = true;
                let mut cost = 1u64;
                let mut injected = 0u64;
                let close = |reentrant: bool, cost: u64| match (reentrant, cost) {
                    (true, _) => 10,
                    (false, 0) => 0,
                    (false, _) => 4,
                };
                while !ops.eof() {
                    let op = ops.read().map_err(err)?;
                    n += 1;
                    if !matches!(op, O::Block { .. } | O::Loop { .. } | O::Else | O::End) {
                        cost += 1;
                    }
                    match op {
                        O::Loop { .. } => {
                            injected += close(reentrant, cost);
                            (reentrant, cost) = (true, 0);
                        }
                        O::If { .. }
                        | O::Else
                        | O::End
                        | O::Br { .. }
                        | O::BrIf { .. }
                        | O::BrTable { .. }
                        | O::Return
                        | O::Unreachable
                        | O::ReturnCall { .. }
                        | O::ReturnCallIndirect { .. } => {
                            injected += close(reentrant, cost);
                            (reentrant, cost) = (false, 0);
                        }
                        O::MemoryFill { .. }
                        | O::MemoryCopy { .. }
                        | O::TableCopy { .. }
                        | O::TableFill { .. }
                        | O::MemoryInit { .. }
                        | O::TableInit { .. }
                        | O::MemoryGrow { .. } => injected += 3,
                        _ => {}
                    }
                }
                n += injected;
            }
            _ => {}
        }
    }
    Ok(n)
}

/// Rewrites `wasm` to export table 0 and every mutable global (see the module docs).
pub fn rewrite(wasm: &[u8]) -> Result<(Vec<u8>, RewriteInfo), String> {
    let err = |e: wasmparser::BinaryReaderError| format!("invalid wasm module: {e}");
    let mut sections: Vec<(u8, std::ops::Range<usize>)> = Vec::new();
    let mut mutable_globals: Vec<u32> = Vec::new();
    let mut n_globals = 0u32;
    let mut n_tables = 0u32;
    let mut exports: Vec<(String, ExportKind, u32)> = Vec::new();
    let mut export_pos: Option<usize> = None;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(err)?;
        match &payload {
            Payload::ImportSection(r) => {
                for imp in r.clone().into_imports() {
                    match imp.map_err(err)?.ty {
                        TypeRef::Global(g) => {
                            if g.mutable {
                                mutable_globals.push(n_globals);
                            }
                            n_globals += 1;
                        }
                        TypeRef::Table(_) => n_tables += 1,
                        _ => {}
                    }
                }
            }
            Payload::TableSection(r) => n_tables += r.count(),
            Payload::GlobalSection(r) => {
                for g in r.clone() {
                    if g.map_err(err)?.ty.mutable {
                        mutable_globals.push(n_globals);
                    }
                    n_globals += 1;
                }
            }
            Payload::ExportSection(r) => {
                for e in r.clone() {
                    let e = e.map_err(err)?;
                    exports.push((e.name.to_string(), export_kind(e.kind), e.index));
                }
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            if id == 7 {
                export_pos = Some(sections.len());
            }
            sections.push((id, range.start as usize..range.end as usize));
        }
    }
    let mut info = RewriteInfo::default();
    let mut names: BTreeSet<String> = exports.iter().map(|e| e.0.clone()).collect();
    let mut section = ExportSection::new();
    for (name, kind, index) in &exports {
        section.export(name, *kind, *index);
    }
    if n_tables > 0 && names.insert(TABLE_EXPORT.to_string()) {
        section.export(TABLE_EXPORT, ExportKind::Table, 0);
        info.table = true;
    }
    for g in mutable_globals {
        let name = format!("{GLOBAL_EXPORT_PREFIX}{g}");
        if names.insert(name.clone()) {
            section.export(&name, ExportKind::Global, g);
            info.globals.push(name);
        }
    }
    // The export section goes after the global section (id 6) and before start (8), element (9),
    // data count (12), code (10) and data (11).
    let insert_at = export_pos.unwrap_or_else(|| {
        sections
            .iter()
            .position(|(id, _)| matches!(id, 8..=12))
            .unwrap_or(sections.len())
    });
    let mut module = wasm_encoder::Module::new();
    for (i, (id, range)) in sections.iter().enumerate() {
        if i == insert_at {
            module.section(&section);
        }
        if Some(i) == export_pos {
            continue;
        }
        module.section(&RawSection {
            id: *id,
            data: &wasm[range.clone()],
        });
    }
    if insert_at == sections.len() {
        module.section(&section);
    }
    Ok((module.finish(), info))
}

/// A compiled, rewritten module shared by every canister running it.
pub struct CompiledModule {
    pub module: wasmi::Module,
    /// SHA-256 of the decompressed, unmodified module (the cache key; `module_hash` reports the
    /// hash of the module as supplied, see `Canister::module_hash`).
    pub hash: [u8; 32],
    pub info: RewriteInfo,
    /// Exported function names (`canister_update foo`, ...).
    pub functions: BTreeSet<String>,
    /// Size of the decompressed module.
    pub size: usize,
    /// The decompressed, unmodified module (what a replica snapshot stores; shared, so one copy
    /// per distinct module).
    pub wasm: Arc<[u8]>,
    /// `icp:public` / `icp:private` custom sections (certified as `/canister/<id>/metadata`).
    pub metadata: std::collections::BTreeMap<String, crate::state_tree::MetadataSection>,
    /// Instructions of the module as the IC compiles it ([`compiled_instruction_count`]).
    pub wasm_instructions: u64,
}

impl CompiledModule {
    pub fn exports(&self, name: &str) -> bool {
        self.functions.contains(name)
    }
}

/// Compiles each distinct module once.
#[derive(Default)]
pub struct ModuleCache {
    modules: HashMap<[u8; 32], Arc<CompiledModule>>,
}

impl ModuleCache {
    /// Decodes (gunzip), rewrites and compiles `bytes`, or returns the cached module.
    pub fn get_or_compile(
        &mut self,
        engine: &wasmi::Engine,
        bytes: &[u8],
    ) -> Result<Arc<CompiledModule>, String> {
        self.get_or_compile_tracked(engine, bytes).map(|(m, _)| m)
    }

    /// [`Self::get_or_compile`], and whether this call compiled the module (a cache miss): the
    /// IC charges the compilation of a module its nodes have not compiled yet to the canister
    /// that installs it.
    pub fn get_or_compile_tracked(
        &mut self,
        engine: &wasmi::Engine,
        bytes: &[u8],
    ) -> Result<(Arc<CompiledModule>, bool), String> {
        let wasm = decode_module(bytes)?;
        let hash = sha256(&wasm);
        if let Some(m) = self.modules.get(&hash) {
            return Ok((m.clone(), false));
        }
        let (rewritten, info) = rewrite(&wasm)?;
        let wasm_instructions = compiled_instruction_count(&wasm)?;
        let module = wasmi::Module::new(engine, &rewritten)
            .map_err(|e| format!("Wasm module is invalid: {e}"))?;
        let functions = module
            .exports()
            .filter(|e| matches!(e.ty(), wasmi::ExternType::Func(_)))
            .map(|e| e.name().to_string())
            .collect();
        let compiled = Arc::new(CompiledModule {
            module,
            hash,
            info,
            functions,
            size: wasm.len(),
            wasm: wasm.as_slice().into(),
            metadata: crate::state_tree::wasm_metadata(&wasm),
            wasm_instructions,
        });
        self.modules.insert(hash, compiled.clone());
        Ok((compiled, true))
    }

    pub fn len(&self) -> usize {
        self.modules.len()
    }
}

/// The wasmi engine configuration: fuel metering on, lazy compilation. Bulk memory operations
/// (`memory.copy`, `memory.fill`, `memory.init`) cost 1 fuel per byte, as the IC's
/// instrumentation charges them (a dynamic cost of their size operand,
/// `rs/embedders/src/wasm_utils/instrumentation.rs`: "Bulk memory instructions require injected
/// metering __before__ the instruction executes so that size arguments can be read from the
/// stack at runtime"); wasmi's default is 1 per 64 bytes. The same rate applies to `memory.grow`
/// (1 per byte grown), which the IC does not charge per byte: growing the heap costs a little
/// more here, the safe direction.
pub fn new_engine() -> wasmi::Engine {
    let mut config = wasmi::Config::default();
    config.consume_fuel(true);
    config.fuel_cost(wasmi::CustomFuelCosts {
        bytes_copied_per_fuel: 1,
        fuel_per_bytes_translated: 7,
        fuel_per_bytes_validated: 2,
    });
    wasmi::Engine::new(&config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"
        (module
          (type $cb (func (param i32)))
          (global $sp (mut i32) (i32.const 1024))
          (global $k i32 (i32.const 7))
          (global $g2 (mut i64) (i64.const 5))
          (memory (export "memory") 1)
          (table 2 funcref)
          (elem (i32.const 1) $f)
          (func $f (type $cb) (global.set $sp (local.get 0)))
          (func (export "canister_update go") (call_indirect (type $cb) (i32.const 9) (i32.const 1))))
    "#;

    #[test]
    fn rewrite_exports_table_and_mutable_globals() {
        let wasm = wat::parse_str(WAT).unwrap();
        let (out, info) = rewrite(&wasm).unwrap();
        assert_eq!(info.globals, vec!["__canvid_global_0", "__canvid_global_2"]);
        assert!(info.table);
        let engine = new_engine();
        let module = wasmi::Module::new(&engine, &out).unwrap();
        let names: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
        assert!(names.contains(&"memory".to_string()));
        assert!(names.contains(&"canister_update go".to_string()));
        assert!(names.contains(&TABLE_EXPORT.to_string()));
        assert!(names.contains(&"__canvid_global_2".to_string()));
        assert!(!names.contains(&"__canvid_global_1".to_string()));
    }

    #[test]
    fn rewrite_adds_export_section_when_missing() {
        let wasm = wat::parse_str("(module (global (mut i32) (i32.const 0)) (func))").unwrap();
        let (out, info) = rewrite(&wasm).unwrap();
        assert_eq!(info.globals, vec!["__canvid_global_0"]);
        assert!(!info.table);
        wasmparser::validate(&out).unwrap();
    }

    #[test]
    fn callbacks_callable_by_table_index() {
        let wasm = wat::parse_str(WAT).unwrap();
        let mut cache = ModuleCache::default();
        let engine = new_engine();
        let m = cache.get_or_compile(&engine, &wasm).unwrap();
        let m2 = cache.get_or_compile(&engine, &wasm).unwrap();
        assert!(Arc::ptr_eq(&m, &m2));
        assert_eq!(cache.len(), 1);
        let mut store = wasmi::Store::new(&engine, ());
        store.set_fuel(1_000_000).unwrap();
        let inst = wasmi::Linker::new(&engine)
            .instantiate_and_start(&mut store, &m.module)
            .unwrap();
        let table = inst.get_table(&store, TABLE_EXPORT).unwrap();
        let f = match table.get(&store, 1).unwrap() {
            wasmi::Ref::Func(f) => Option::<wasmi::Func>::from(f).unwrap(),
            _ => panic!("not a funcref"),
        };
        f.typed::<i32, ()>(&store)
            .unwrap()
            .call(&mut store, 42)
            .unwrap();
        let g = inst.get_global(&store, "__canvid_global_0").unwrap();
        assert_eq!(g.get(&store).i32(), Some(42));
    }

    #[test]
    fn gzip_modules_are_decoded() {
        use std::io::Write;
        let wasm = wat::parse_str("(module)").unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&wasm).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decode_module(&gz).unwrap(), wasm);
        assert_eq!(decode_module(&wasm).unwrap(), wasm);
        assert!(decode_module(&[0x1f, 0x8b, 0, 1]).is_err());
    }
}
