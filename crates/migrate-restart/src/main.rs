//! `migrate-restart`: the migration on a one-off dyno with lock safety, then restart and
//! prove no dyno is stale.

fn main() -> std::process::ExitCode {
    match cli_kit::args::parse::<migrate_restart::Args>() {
        Ok(args) => cli_kit::run_main(|| migrate_restart::run(args)),
        Err(code) => code,
    }
}
