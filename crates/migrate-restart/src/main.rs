//! `migrate-restart`: the migration on a one-off dyno with lock safety, then restart and
//! prove no dyno is stale.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = migrate_restart::Args::parse();
    cli_kit::run_main(|| migrate_restart::run(args))
}
