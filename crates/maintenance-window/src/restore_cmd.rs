//! `maintenance-window restore`: put back what a window changed, from the journal or from
//! the values its printed restore command carries.

use cli_kit::{api_client, confirm_destructive, refused, usage, Exit, Output};

use crate::live::{self, restore_command, Live};
use crate::render::Restoring;
use crate::report::{RestoreReport, RestoreSource};
use crate::{cli, finish, journal, window, TOOL};

/// `restore`: what this machine's journal recorded, or the values given (the window's printed
/// restore command, run from another machine).
pub fn run(args: cli::RestoreArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    let app = args.app.resolve()?;
    args.confirm.check(&app)?;
    let local = journal::load(&app)?;
    let client = api_client(TOOL, env!("CARGO_PKG_VERSION"), &out)?;
    let (j, from_journal) = match (local, args.maintenance) {
        (Some(j), None) => (j, true),
        (local, Some(m)) => {
            let live = Live::read(&client, &app)?;
            let given = journal::Journal {
                version: journal::VERSION,
                app: app.clone(),
                opened_at: String::new(),
                pid: 0,
                maintenance_before: m == cli::OnOff::On,
                scaled: live::parse_scale(&args.scale, &live)?,
                steps: Vec::new(),
                promotion: None,
                command: Vec::new(),
            };
            if let Some(j) = local {
                if (j.maintenance_before, &j.scaled) != (given.maintenance_before, &given.scaled) {
                    return Err(usage(format!(
                        "a window journal for {app} is on this machine and records other values ({}); run `maintenance-window restore -a {app}` to put back what it recorded; nothing was changed",
                        restore_command(&j)
                    )));
                }
                (j, true)
            } else {
                (given, false)
            }
        }
        (None, None) => {
            let live = Live::read(&client, &app)?;
            if live.maintenance {
                return Err(refused(format!(
                    "{}; give the values to put back, as the window printed them: maintenance-window restore -a {app} --maintenance off --scale TYPE=N,… --confirm {app}; nothing was changed",
                    live.unjournaled(&app)
                )));
            }
            out.show(&Restoring::NothingOpen { app: &app });
            let report = RestoreReport {
                schema_version: cli_kit::SCHEMA_VERSION,
                app,
                restored: false,
                source: None,
                journal: None,
            };
            return Ok(finish(&out, &report, Exit::Success));
        }
    };
    let plan = describe_restore(&j);
    out.show(&Restoring::WillRestore { app: &app, plan: &plan, from_journal });
    if from_journal {
        // This machine recorded these values itself: restoring them is what the journal is for.
        out.begin_change();
    } else {
        confirm_destructive(&out, &app, args.confirm.answer(), &format!("Put back {plan} on {app}?"))?;
    }
    window::close(&client, &j)?;
    out.show(&Restoring::Restored { app: &app, plan: &plan });
    let report = RestoreReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        app,
        restored: true,
        source: Some(if from_journal { RestoreSource::Journal } else { RestoreSource::Flags }),
        journal: Some(j),
    };
    Ok(finish(&out, &report, Exit::Success))
}

/// `maintenance off, clock=1, worker=3`.
fn describe_restore(j: &journal::Journal) -> String {
    let scaled: Vec<String> = j.scaled.iter().map(|s| format!("{}={}", s.process_type, s.quantity_before)).collect();
    format!(
        "maintenance {}{}",
        if j.maintenance_before { "left on (it was on before the window)" } else { "off" },
        if scaled.is_empty() { String::new() } else { format!(", {}", scaled.join(", ")) }
    )
}
