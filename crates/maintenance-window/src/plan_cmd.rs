//! `maintenance-window plan`: whether a window is needed, and which files make it so.

use cli_kit::output::bold;
use cli_kit::{api_client, Exit, Output};

use crate::report::PlanReport;
use crate::{cli, finish, plan, TOOL};

/// Says whether a window is needed and why.
pub fn run(args: cli::PlanArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    let app = args.app.resolve()?;
    let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;
    let d = plan::decide(&client, &app, &args.diff, &std::env::current_dir()?)?;
    report_decision(&out, &app, &d);
    Ok(finish(&out, &PlanReport { schema_version: cli_kit::SCHEMA_VERSION, app, decision: d }, Exit::Success))
}

/// The decision, said.
pub fn report_decision(out: &Output, app: &str, d: &plan::Decision) {
    for line in decision_lines(app, d) {
        out.say(line);
    }
}

/// Whether a window is needed and which files make it so, for people.
pub fn decision_lines(app: &str, d: &plan::Decision) -> Vec<String> {
    let range = format!("{}..{}", short(&d.base), d.target);
    if !d.needed {
        return vec![format!(
            "No window needed for {app}: nothing changed under {} ({range}, base = {}).",
            cli_kit::shell::join(&d.pathspecs),
            d.base_source
        )];
    }
    let mut lines = vec![format!(
        "{} for {app}: {} changed under {} ({range}, base = {}):",
        bold().apply_to("A window is needed"),
        cli_kit::output::count(d.files.len(), "file"),
        cli_kit::shell::join(&d.pathspecs),
        d.base_source
    )];
    lines.extend(d.files.iter().map(|f| format!("  {f}")));
    lines
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
