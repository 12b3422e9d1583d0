//! maintenance-window: decide whether a window is needed, open it journal-first, promote a
//! prebuilt slug, run the deploy step, close it, and report how long the site was down.
//!
//! One module per subcommand (`window_cmd`, `plan_cmd`, `status_cmd`, `restore_cmd`); what
//! they share beside them: the decision (`plan`), the journal, the live state, the window's
//! own API steps (`window`) and the typed reports.

mod cli;
mod command;
pub mod journal;
pub mod live;
pub mod plan;
mod plan_cmd;
mod render;
pub mod report;
mod restore_cmd;
mod status_cmd;
pub mod window;
mod window_cmd;

use cli_kit::{Exit, Output};

pub use cli::{Args, OnFailure, Sub};
pub use render::decision_lines;

const TOOL: &str = "maintenance-window";

/// Runs the command or one of its subcommands.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.sub {
        Some(Sub::Plan(p)) => plan_cmd::run(p),
        Some(Sub::Status(a)) => status_cmd::run(a),
        Some(Sub::Restore(a)) => restore_cmd::run(a),
        None => window_cmd::run(args.window),
    }
}

/// Prints the report (`--json`) and returns the exit code.
fn finish(out: &Output, report: &impl serde::Serialize, exit: Exit) -> Exit {
    out.report(report);
    exit
}
