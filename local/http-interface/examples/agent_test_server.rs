//! Starts an embedded replica with the probe canister installed, serves the IC HTTP interface on
//! a free loopback port, prints one JSON line `{"url", "canister", "root_key", "module_hash"}` and
//! runs until its standard input closes. The Node test (`replica-http/js-test`) drives it.
//!
//! `cargo run -p canvid-http-interface --example agent_test_server`

use canvid_replica::{CanisterSettings, Principal, Replica};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wasm = canvid_devkit::read_wasm(&canvid_devkit::wasm_dir(), "replica-probe")?;
    let replica = Arc::new(Replica::new());
    let canister = replica.create_canister_with_settings(
        None,
        Some(CanisterSettings {
            controllers: Some(vec![Principal::anonymous()]),
            ..CanisterSettings::default()
        }),
    );
    replica.add_cycles(canister, 100_000_000_000_000);
    replica.install_code(
        canvid_replica::InstallMode::Install,
        canister,
        wasm.clone(),
        candid::encode_args(())?,
        None,
    )?;
    let server = canvid_gateway::serve(replica.clone(), "127.0.0.1:0".parse()?)?;
    println!(
        "{}",
        serde_json::json!({
            "url": server.url(),
            "canister": canister.to_text(),
            "root_key": hex::encode(replica.root_key_der()),
            "module_hash": hex::encode(Sha256::digest(&wasm)),
        })
    );
    // Until the parent closes our stdin (or exits).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    server.shutdown();
    Ok(())
}
