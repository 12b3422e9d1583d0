//! The exit-code contract. Scripts depend on these numbers; docs/exit-codes.md is checked
//! against this table by a test.

/// How a tool ended. The numbers are a public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: done, and the effect was observed.
    Success,
    /// 1: the operation failed (API error, command failed, database error).
    Failed,
    /// 2: usage error: bad flag, bad value, nothing matched.
    Usage,
    /// 3: requested but not verified: the effect was not observed before the deadline.
    NotVerified,
    /// 4: not authenticated or not allowed (401, 403, no credentials).
    NotAuthenticated,
    /// 5: refused for safety (needs `--confirm`, preflight found blockers, a journal is open); nothing was changed.
    Refused,
    /// 6: blocking was found (pg-blockers `--exit-status`; migrate-restart `plan`: the migration would wait).
    BlockingFound,
    /// 7: maintenance-window `status` only: a window is open, or the app looks like one is.
    WindowOpen,
    /// 8: migrate-restart `plan` only: the migration breaks queries the running release sends.
    WouldBreak,
    /// 10: migrate-restart `plan` only: a statement would hold a lock the site queues behind
    /// for longer than the lock-wait budget.
    WouldBlock,
    /// 130: interrupted; what the tool had started was cleaned up or reported.
    Interrupted,
    /// Another status passed through unchanged (maintenance-window returns its COMMAND's).
    Other(u8),
}

impl Exit {
    /// Every code, in table order.
    pub const ALL: [Exit; 11] = [
        Exit::Success,
        Exit::Failed,
        Exit::Usage,
        Exit::NotVerified,
        Exit::NotAuthenticated,
        Exit::Refused,
        Exit::BlockingFound,
        Exit::WindowOpen,
        Exit::WouldBreak,
        Exit::WouldBlock,
        Exit::Interrupted,
    ];

    /// Where the code stands in [`Exit::ALL`] (`None` for [`Exit::Other`], which is not one
    /// code). Exhaustive, so a new variant does not compile until it has a place, and the
    /// test below fails until `ALL` holds it there: the table cannot drift from the enum.
    pub const fn position(self) -> Option<usize> {
        match self {
            Exit::Success => Some(0),
            Exit::Failed => Some(1),
            Exit::Usage => Some(2),
            Exit::NotVerified => Some(3),
            Exit::NotAuthenticated => Some(4),
            Exit::Refused => Some(5),
            Exit::BlockingFound => Some(6),
            Exit::WindowOpen => Some(7),
            Exit::WouldBreak => Some(8),
            Exit::WouldBlock => Some(9),
            Exit::Interrupted => Some(10),
            Exit::Other(_) => None,
        }
    }

    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::NotVerified => 3,
            Exit::NotAuthenticated => 4,
            Exit::Refused => 5,
            Exit::BlockingFound => 6,
            Exit::WindowOpen => 7,
            Exit::WouldBreak => 8,
            Exit::WouldBlock => 10,
            Exit::Interrupted => 130,
            Exit::Other(code) => code,
        }
    }

    /// One line for the docs table.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "done, and the effect was observed",
            Exit::Failed => "the operation failed (API error, command failed, database error)",
            Exit::Usage => "usage error: bad flag, bad value, nothing matched",
            Exit::NotVerified => {
                "requested but not verified: the tool could not observe the effect before its deadline"
            }
            Exit::NotAuthenticated => "not authenticated or not allowed (401, 403, no credentials)",
            Exit::Refused => {
                "refused for safety: needs --confirm, preflight found blockers (with `--plan`: a session in a planned lock's way), a journal is open, `plan` while a migration runs, `plan --scratch-url` reaching the app's own database, a run while a release phase runs, a lock watch that cannot reach the database, a contract step (`--plan`) while the running release still sends a query it breaks; nothing was changed"
            }
            Exit::BlockingFound => {
                "blocking found: pg-blockers --exit-status (sessions block others), migrate-restart plan (the migration would wait)"
            }
            Exit::WindowOpen => {
                "maintenance-window status only: a window is open, or the app is in maintenance with no journal here"
            }
            Exit::WouldBreak => {
                "migrate-restart plan only: the migration breaks queries the running release sends (each prepared on the migrated copy fails)"
            }
            Exit::WouldBlock => {
                "migrate-restart plan only: a statement would hold a lock the site's queries queue behind for longer than --lock-wait (estimated on a sample shaped like production's data)"
            }
            Exit::Interrupted => "interrupted; what the tool had started was cleaned up or reported",
            Exit::Other(_) => "maintenance-window only: the status of the COMMAND it ran",
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// The `Examples:` and `Exit codes:` text of a tool's `--help`. The numbers come from
/// [`Exit`], so the help cannot drift from the contract; each tool says in `codes` which codes
/// it returns and what each means for it.
pub fn after_help(examples: &str, codes: &[(Exit, &str)]) -> String {
    let mut text = format!("Examples:\n{}\n\nExit codes (docs/exit-codes.md):", comments_above(examples.trim_end()));
    for (exit, meaning) in codes {
        let code = match exit {
            Exit::Other(_) => "N".to_string(),
            e => e.code().to_string(),
        };
        text.push_str(&format!("\n  {code:<4}{meaning}"));
    }
    text
}

/// Each example's trailing `# comment` moved onto its own line above it, and a long command
/// continued with ` \` on indented lines: an 80-column terminal would otherwise wrap them, and
/// a wrapped piece of a comment or a command reads like a command of its own. Pasted, the
/// continued command runs as printed.
fn comments_above(examples: &str) -> String {
    examples
        .lines()
        .map(|line| match line.split_once("  # ") {
            Some((command, comment)) if !command.trim().is_empty() => {
                format!("  # {}\n{}", comment.trim(), continued(command.trim()))
            }
            _ if line.trim_start().starts_with('#') => line.to_string(),
            _ => continued(line.trim()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `  command`, broken at spaces into lines of at most [`EXAMPLE_WIDTH`] with ` \` continuations.
fn continued(command: &str) -> String {
    let mut lines: Vec<String> = vec![String::from("  ")];
    for word in command.split(' ') {
        let last = lines.last_mut().expect("one line");
        if last.trim().is_empty() || last.len() + 1 + word.len() + 2 <= EXAMPLE_WIDTH {
            if !last.trim().is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        } else {
            last.push_str(" \\");
            lines.push(format!("      {word}"));
        }
    }
    lines.join("\n")
}

/// The widest an example line may be (an 80-column terminal, less clap's indent).
const EXAMPLE_WIDTH: usize = 76;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_holds_every_code_at_the_place_the_enum_gives_it() {
        for (i, e) in Exit::ALL.iter().enumerate() {
            assert_eq!(e.position(), Some(i), "{e:?} is not at its place in Exit::ALL");
        }
        // Every place the match gives is filled: the highest position is the last entry.
        let highest = Exit::ALL.iter().filter_map(|e| e.position()).max();
        assert_eq!(highest, Some(Exit::ALL.len() - 1));
        assert_eq!(Exit::Other(9).position(), None);
    }

    #[test]
    fn an_examples_comment_goes_on_its_own_line_above_it() {
        let text = after_help("  tool -a acme          # the usual\n  tool check -a acme\n", &[]);
        assert_eq!(
            text,
            "Examples:\n  # the usual\n  tool -a acme\n  tool check -a acme\n\nExit codes (docs/exit-codes.md):"
        );
        let long = after_help(&format!("  tool {}\n", "--flag value ".repeat(10).trim_end()), &[]);
        let lines: Vec<&str> = long.lines().skip(1).take_while(|l| !l.is_empty()).collect();
        assert!(lines.len() > 1 && lines.iter().all(|l| l.len() <= EXAMPLE_WIDTH), "{long}");
        assert!(lines[..lines.len() - 1].iter().all(|l| l.ends_with(" \\")), "{long}");
        assert!(lines[1..].iter().all(|l| l.starts_with("      ")), "{long}");
    }

    #[test]
    fn after_help_numbers_come_from_the_contract() {
        let text = after_help(
            "  tool -a acme\n",
            &[(Exit::Success, "done"), (Exit::Interrupted, "interrupted"), (Exit::Other(9), "COMMAND's status")],
        );
        assert_eq!(
            text,
            "Examples:\n  tool -a acme\n\nExit codes (docs/exit-codes.md):\n  0   done\n  130 interrupted\n  N   COMMAND's status"
        );
    }
}
