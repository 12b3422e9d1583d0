//! How the user reached the tool: typed as a binary, or through the Heroku CLI plugin. The
//! commands a tool prints for the user to run must run as printed, and a plugin user may have
//! no binary on PATH: through the plugin (which sets [`VIA_PLUGIN_ENV`]) they are worded as the
//! plugin's `heroku …` commands.

use std::borrow::Cow;

/// Set by the plugin in the binary's environment.
pub const VIA_PLUGIN_ENV: &str = "HEROKU_DEPLOY_SAFETY_PLUGIN";

/// Each binary (and subcommand) with its plugin command, longest first so that a subcommand is
/// matched before its binary alone. Held together with `plugin-shim/manifest.json` by
/// cli-assets' manifest test.
pub const PLUGIN_COMMANDS: &[(&str, &str, &str)] = &[
    ("migrate-restart", "check", "migrate:check"),
    ("migrate-restart", "follow", "migrate:follow"),
    ("migrate-restart", "release", "migrate:release"),
    ("migrate-restart", "plan", "migrate:plan"),
    ("maintenance-window", "plan", "maintenance:window:plan"),
    ("maintenance-window", "status", "maintenance:window:status"),
    ("maintenance-window", "restore", "maintenance:window:restore"),
    ("migrate-restart", "", "migrate:restart"),
    ("maintenance-window", "", "maintenance:window"),
    ("safe-ps-kill", "", "ps:safe-kill"),
    ("pg-blockers", "", "pg:blockers"),
];

/// True when the plugin started this process.
pub fn via_plugin() -> bool {
    std::env::var_os(VIA_PLUGIN_ENV).is_some_and(|v| !v.is_empty())
}

/// `text` with every command it names worded for how the user reached the tool: unchanged for
/// a binary typed by hand, in the plugin's `heroku …` form through the plugin.
pub fn as_invoked(text: &str) -> Cow<'_, str> {
    if via_plugin() {
        Cow::Owned(heroku_form(text))
    } else {
        Cow::Borrowed(text)
    }
}

/// Every `binary [subcommand]` that stands as a command (at the start, or after a space, a
/// backtick, a quote or a parenthesis, and followed by a space, a backtick, a quote, a
/// parenthesis or the end) becomes `heroku ID`. Names inside other words
/// (`migrate-restart-watch`, `migrate-restart/run.1`) are left alone.
pub fn heroku_form(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    let mut prev: Option<char> = None;
    'scan: while !rest.is_empty() {
        let starts_a_word = prev.is_none_or(|c| matches!(c, ' ' | '`' | '\'' | '"' | '(' | '\n' | '\t'));
        if starts_a_word {
            for (binary, sub, id) in PLUGIN_COMMANDS {
                let name = if sub.is_empty() { binary.to_string() } else { format!("{binary} {sub}") };
                if let Some(after) = rest.strip_prefix(name.as_str()) {
                    if after
                        .chars()
                        .next()
                        .is_none_or(|c| matches!(c, ' ' | '`' | '\'' | '"' | ')' | '\n' | ',' | ';' | ':'))
                    {
                        out.push_str("heroku ");
                        out.push_str(id);
                        rest = after;
                        prev = id.chars().last();
                        continue 'scan;
                    }
                }
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        prev = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_commands_take_the_plugins_form() {
        assert_eq!(
            heroku_form("run:  pg-blockers -a acme --cancel 3456 --confirm acme"),
            "run:  heroku pg:blockers -a acme --cancel 3456 --confirm acme"
        );
        assert_eq!(
            heroku_form("Pick it up from any machine: migrate-restart follow -a acme run.1 --restart all"),
            "Pick it up from any machine: heroku migrate:follow -a acme run.1 --restart all"
        );
        assert_eq!(
            heroku_form("(maintenance-window restore -a acme --maintenance off --confirm acme)"),
            "(heroku maintenance:window:restore -a acme --maintenance off --confirm acme)"
        );
        assert_eq!(heroku_form("`migrate-restart check -a acme`."), "`heroku migrate:check -a acme`.");
        assert_eq!(
            heroku_form("check with safe-ps-kill run.1 -a acme"),
            "check with heroku ps:safe-kill run.1 -a acme"
        );
        assert_eq!(heroku_form("pg-blockers to check"), "heroku pg:blockers to check");
        // Names inside other words are not commands.
        for same in ["application_name migrate-restart-watch", "PGAPPNAME=migrate-restart/run.1", "my-pg-blockers -a x"]
        {
            assert_eq!(heroku_form(same), same);
        }
    }
}
