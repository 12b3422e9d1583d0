//! `safe-ps-kill`: stop a dyno by id and prove it stopped.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = safe_ps_kill::Args::parse();
    cli_kit::run_main(|| safe_ps_kill::run(args))
}
