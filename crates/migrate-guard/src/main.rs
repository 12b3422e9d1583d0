//! `migrate-guard`: runs inside the dyno (the release phase, or a one-off) as the wrapper of
//! the migration command, so the lock-wait budget holds on deploys nobody watches.

fn main() -> std::process::ExitCode {
    match migrate_guard::Args::parse_from_env() {
        Ok(args) => cli_kit::run_main(|| migrate_guard::run(args)),
        Err(code) => code,
    }
}
