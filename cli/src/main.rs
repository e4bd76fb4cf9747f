//! The `canvid` binary: parse, run, and turn any error into one line and an exit code.

use clap::Parser;

fn main() {
    // A panic is a bug in canvid or the replica, but the user still gets one line, not a trace
    // (set RUST_BACKTRACE=1 to get the trace when reporting it).
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            eprintln!(
                "error: internal error: {} (a bug; rerun with RUST_BACKTRACE=1 and report it)",
                canvid_cli::error::one_line(&msg)
            );
        }));
    }
    let cli = canvid_cli::cli::Cli::parse();
    if let Err(e) = canvid_cli::cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
