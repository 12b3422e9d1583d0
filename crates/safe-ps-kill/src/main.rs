//! `safe-ps-kill`: stop a dyno by id and prove it stopped.

fn main() -> std::process::ExitCode {
    match cli_kit::args::parse::<safe_ps_kill::Args>() {
        Ok(args) => cli_kit::run_main(|| safe_ps_kill::run(args)),
        Err(code) => code,
    }
}
