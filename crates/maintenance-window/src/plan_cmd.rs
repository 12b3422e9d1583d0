//! `maintenance-window plan`: whether a window is needed, and which files make it so.

use cli_kit::{api_client, Exit, Output};

use crate::report::PlanReport;
use crate::{cli, finish, plan, render, TOOL};

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
pub fn report_decision(out: &Output, app: &str, decision: &plan::Decision) {
    out.show(&render::Deciding::Decision { app, decision });
}
