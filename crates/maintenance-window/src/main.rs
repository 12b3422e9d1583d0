//! `maintenance-window`: the shortest maintenance window, only when needed, journaled.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = maintenance_window::Args::parse();
    cli_kit::run_main(|| maintenance_window::run(args))
}
