//! `gzip-wasm IN OUT`: gzips a canister module exactly as the deploy recipe does
//! ([`canvid_devkit::gzip`]), so that `scripts/build-wasm.sh`'s `<name>.wasm.gz` and its printed
//! sha256 are byte for byte the module the spawn canister installs into every video canister
//! (`video_wasm_info`, and the module hash `icp canister status` shows for a spawned video).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: gzip-wasm IN OUT");
        std::process::exit(2);
    };
    let wasm = std::fs::read(input).unwrap_or_else(|e| {
        eprintln!("gzip-wasm: reading {input}: {e}");
        std::process::exit(1)
    });
    std::fs::write(output, canvid_devkit::gzip(&wasm)).unwrap_or_else(|e| {
        eprintln!("gzip-wasm: writing {output}: {e}");
        std::process::exit(1)
    });
}
