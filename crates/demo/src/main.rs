//! `demo [--interactive] BIN_DIR`: replays the four incidents with the tools in a sandbox
//! (heroku-sim plus a throwaway PostgreSQL), narrating each step and checking its outcome.
//! Exits non-zero if any step did not behave; stops and cleans up on Ctrl-C.

mod story;

use cli_kit::output::{bold, green, red};

fn main() -> std::process::ExitCode {
    cli_kit::interrupt::install();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let interactive = args.iter().any(|a| a == "--interactive");
    let bins = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "target/debug".into());
    let bins = match bins.canonicalize() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("demo: {}: {e} (run scripts/demo, which builds the tools)", bins.display());
            return std::process::ExitCode::from(2);
        }
    };
    let mut demo = story::Demo::new(bins, interactive);
    let result = demo.run();
    println!();
    match (&result, demo.failures.is_empty()) {
        (Ok(()), true) => {
            println!("{}", green().apply_to(format!("✓ all {} steps behaved as described.", demo.checks)).bold());
            std::process::ExitCode::SUCCESS
        }
        (Ok(()), false) => {
            println!("{}", red().apply_to(format!("✗ {} of {} checks failed:", demo.failures.len(), demo.checks)));
            for f in &demo.failures {
                println!("  - {f}");
            }
            std::process::ExitCode::FAILURE
        }
        (Err(e), _) if cli_kit::interrupt::requested() => {
            println!("{} ({e}); everything the demo started has been stopped.", bold().apply_to("Interrupted"));
            std::process::ExitCode::from(130)
        }
        (Err(e), _) => {
            println!("{} {e:#}", red().apply_to("demo failed:"));
            std::process::ExitCode::FAILURE
        }
    }
}
