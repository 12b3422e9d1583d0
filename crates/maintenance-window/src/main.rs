//! `maintenance-window`: the shortest maintenance window, only when needed, journaled.

fn main() -> std::process::ExitCode {
    match cli_kit::args::parse::<maintenance_window::Args>() {
        Ok(args) => cli_kit::run_main(|| maintenance_window::run(args)),
        Err(code) => code,
    }
}
