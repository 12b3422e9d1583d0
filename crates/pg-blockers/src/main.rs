//! `pg-blockers`: who blocks whom in Postgres, and the smallest safe fix.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = pg_blockers::Args::parse();
    cli_kit::run_main(|| pg_blockers::run(args))
}
