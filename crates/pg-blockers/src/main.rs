//! `pg-blockers`: who blocks whom in Postgres, and the smallest safe fix.

fn main() -> std::process::ExitCode {
    match cli_kit::args::parse::<pg_blockers::Args>() {
        Ok(args) => cli_kit::run_main(|| pg_blockers::run(args)),
        Err(code) => code,
    }
}
