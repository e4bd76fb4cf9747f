//! The crate's candid types against the published ICRC-3 interface: a service built from them
//! (the four `icrc3_` methods, as the index canister will declare them) must be a candid subtype
//! of `ICRC-3.did` as published, i.e. accept every call a client of the standard makes and
//! answer replies that client decodes.

use candid::types::internal::TypeContainer;
use candid::types::{FuncMode, Function, Type, TypeInner};
use canvid_icrc3::types::{
    DataCertificate, GetArchivesArgs, GetArchivesResult, GetBlocksArgs, GetBlocksResult,
    SupportedBlockType,
};

/// The published standards' candid files (copied unchanged from DFINITY's repositories), from
/// `canvid_did_check::standards_dir`.
fn published() -> (String, Option<String>) {
    match canvid_did_check::standards_dir() {
        Some(dir) => {
            let path = dir.join("ICRC-3.did");
            let text = std::fs::read_to_string(&path).ok();
            (path.display().to_string(), text)
        }
        None => ("../shared/standards/ICRC-3.did".into(), None),
    }
}

/// `service : { icrc3_...: ... }` in candid text, generated from the crate's Rust types.
fn our_service() -> String {
    let mut env = TypeContainer::new();
    let query = |args: Vec<Type>, rets: Vec<Type>| -> Type {
        TypeInner::Func(Function {
            modes: vec![FuncMode::Query],
            args,
            rets,
        })
        .into()
    };
    let mut methods = vec![
        (
            "icrc3_get_archives".to_string(),
            query(
                vec![env.add::<GetArchivesArgs>()],
                vec![env.add::<GetArchivesResult>()],
            ),
        ),
        (
            "icrc3_get_tip_certificate".to_string(),
            query(vec![], vec![env.add::<Option<DataCertificate>>()]),
        ),
        (
            "icrc3_get_blocks".to_string(),
            query(
                vec![env.add::<GetBlocksArgs>()],
                vec![env.add::<GetBlocksResult>()],
            ),
        ),
        (
            "icrc3_supported_block_types".to_string(),
            query(vec![], vec![env.add::<Vec<SupportedBlockType>>()]),
        ),
    ];
    methods.sort_by(|a, b| a.0.cmp(&b.0));
    let actor: Type = TypeInner::Service(methods).into();
    candid::pretty::candid::compile(&env.env, &Some(actor))
}

#[test]
fn types_are_a_subtype_of_the_published_icrc3_interface() {
    let ours = our_service();
    let (path, Some(published)) = published() else {
        // Not silent: the check did not run, and the output says so.
        skip("types_are_a_subtype_of_the_published_icrc3_interface");
        return;
    };
    println!("checked against {path}");
    if let Err(e) = canvid_did_check::implements(&ours, &published) {
        panic!("our ICRC-3 types are not compatible with ICRC-3.did: {e}\n--- ours ---\n{ours}");
    }
}

#[test]
fn the_check_catches_a_wrong_type() {
    // The same service with `log_length : nat64` must be rejected, or the test above proves nothing.
    let (_, Some(published)) = published() else {
        skip("the_check_catches_a_wrong_type");
        return;
    };
    let ours = our_service();
    assert!(ours.contains("log_length : nat;"), "{ours}");
    let broken = ours.replace("log_length : nat;", "log_length : nat64;");
    assert!(canvid_did_check::implements(&broken, &published).is_err());
}

fn skip(test: &str) {
    let (path, _) = published();
    canvid_did_check::skipped(
        test,
        &format!("{path} not found; set ICRC_STANDARDS_DIR to the published .did files"),
    );
}

#[test]
#[ignore = "prints the generated interface"]
fn print_our_service() {
    println!("{}", our_service());
}
