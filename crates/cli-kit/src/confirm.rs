//! Confirmation before anything destructive: a prompt that defaults to No on a terminal,
//! `--confirm APP` in scripts, and a refusal (exit 5, nothing changed) otherwise.

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Select};

use crate::error::{refused, usage};
use crate::output::Output;

/// `--confirm APP`: the answer a script gives to the confirmation prompt. Every changing
/// command flattens this one definition, so the flag reads and fails the same everywhere.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfirmArgs {
    /// Answer the confirmation with the app's name (required without a terminal)
    #[arg(long, value_name = "APP")]
    pub confirm: Option<String>,
}

impl ConfirmArgs {
    /// The given answer, if any.
    pub fn answer(&self) -> Option<&str> {
        self.confirm.as_deref()
    }

    /// Checks a given answer against `name` before anything is read or changed: a mismatch is a
    /// refusal (exit 5) that says nothing was changed.
    pub fn check(&self, name: &str) -> anyhow::Result<()> {
        match self.answer() {
            Some(given) if given != name => {
                Err(refused(format!("--confirm {given} does not match the app {name}; nothing was changed")))
            }
            _ => Ok(()),
        }
    }
}

/// Asks before a destructive action on `app`.
///
/// - `confirm` given: it must equal `app`, otherwise refused (exit 5);
/// - no `confirm`, terminal: a yes/no prompt defaulting to No; No → refused;
/// - no `confirm`, no terminal (or `--json`): refused with the flag to add.
///
/// A yes marks the start of the change on `out` ([`Output::begin_change`]).
pub fn confirm_destructive(out: &Output, app: &str, confirm: Option<&str>, question: &str) -> anyhow::Result<()> {
    let answer = ask(out, app, confirm, question);
    if answer.is_ok() {
        out.begin_change();
    }
    answer
}

fn ask(out: &Output, app: &str, confirm: Option<&str>, question: &str) -> anyhow::Result<()> {
    if let Some(given) = confirm {
        if given == app {
            return Ok(());
        }
        return Err(refused(format!("--confirm {given} does not match the app {app}; nothing was changed")));
    }
    if !out.can_prompt() {
        return Err(refused(format!(
            "this needs confirmation and there is no terminal to ask on: re-run with --confirm {app}; nothing was changed"
        )));
    }
    let yes = Confirm::with_theme(&ColorfulTheme::default())
        .with_prompt(question)
        .default(false)
        .interact_on(&console::Term::stderr())
        .map_err(|e| refused(format!("no answer ({e}); nothing was changed")))?;
    if yes {
        Ok(())
    } else {
        Err(refused("not confirmed; nothing was changed"))
    }
}

/// Lets the user pick one of `items` on a terminal; `None` when they cancel (Esc / q).
pub fn pick(out: &Output, prompt: &str, items: &[String]) -> anyhow::Result<Option<usize>> {
    if !out.can_prompt() {
        return Err(usage(format!("{prompt}: no terminal to choose on; name one explicitly")));
    }
    Select::with_theme(&ColorfulTheme::default())
        .with_prompt(prompt)
        .items(items)
        .default(0)
        .interact_on_opt(&console::Term::stderr())
        .map_err(|e| usage(format!("no choice made ({e})")))
}
