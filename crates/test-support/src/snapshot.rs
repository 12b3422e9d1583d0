//! Whole-output snapshot tests (insta): what a tool printed, compared whole with
//! `tests/snapshots/*.snap` beside the suite — alignment, order and stray lines included.
//! What changes from run to run is replaced first (ports, pids, dyno numbers, ids, durations,
//! timestamps, temporary paths), as uv's and nextest's snapshot tests do, so a snapshot holds
//! the wording and shape only.
//!
//! After an intended change: `INSTA_UPDATE=always cargo nextest run -p CRATE`, then review the
//! diff of `tests/snapshots/` before committing it. A new snapshot is never written in CI.

/// The replacements, in order: each (pattern, replacement).
pub const FILTERS: &[(&str, &str)] = &[
    // Timestamps first (their digits would match the rules below).
    (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", "[timestamp]"),
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[uuid]"),
    // Commits: a repository made by a test has new ones every run.
    (r"\b[0-9a-f]{40}\b", "[commit]"),
    (r"\b[0-9a-f]{12}\.\.", "[commit].."),
    (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
    (r"Request-Id sim-\d+", "Request-Id [n]"),
    // The psql a test's migration runs: the system's, a pinned build's, or sandbox-psql.
    (r"[^\s'`\x22]*/(sandbox-)?psql\b", "[psql]"),
    (r"/tmp/[^\s'`\x22)]+", "[tmp]"),
    (r"\b(run|release)\.\d+\b", "$1.[n]"),
    (r"\b(pids?) \d+", "$1 [pid]"),
    (r"--(cancel|terminate) \d+", "--$1 [pid]"),
    // pg-blockers' tree: each session's line starts with its pid.
    (r"(● |└─ |├─ )\d+ ", "$1[pid] "),
    (r", … \d+", ", … [pid]"),
    (r"\bpid(s)? \[pid\](, \d+)+", "pid$1 [pid]"),
    (r"\(pids [\d, ]+\)", "(pids [pid])"),
    // Durations as the tools print them: 1.2s, 850ms, 3m 2s, 20m, 1h 5m.
    (r"\b\d+(\.\d+)?(ms|s)\b", "[dur]"),
    (r"\b\d+(h|m) \[dur\]", "[dur]"),
    (r"\b\d+(h|m)\b", "[dur]"),
];

/// insta settings with [`FILTERS`], snapshots in the suite's `tests/snapshots`.
pub fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    for (pattern, replacement) in FILTERS {
        s.add_filter(pattern, *replacement);
    }
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

/// Compares `text` whole with the snapshot `name`, after the filters.
#[macro_export]
macro_rules! assert_whole {
    ($name:expr, $text:expr) => {{
        let text: String = $text.into();
        $crate::snapshot::settings().bind(|| {
            $crate::insta::assert_snapshot!($name, text);
        });
    }};
}

/// `text` with every run of two or more spaces made two: a table whose column widths follow
/// what changes between runs (an age of `2m` or `2m 1s`) compares the same, its columns still
/// in order.
pub fn columns_collapsed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut spaces = 0;
    for c in text.chars() {
        if c == ' ' {
            spaces += 1;
            continue;
        }
        out.push_str(if spaces >= 2 {
            "  "
        } else if spaces == 1 {
            " "
        } else {
            ""
        });
        spaces = 0;
        out.push(c);
    }
    out.push_str(if spaces >= 2 {
        "  "
    } else if spaces == 1 {
        " "
    } else {
        ""
    });
    out
}

/// Several runs of a tool in one document — each command line, its exit code, and what it
/// printed — for a snapshot of every refusal a tool makes: one file to read to see how a
/// user is told no, and a test that fails when any of the lines changes.
#[derive(Default)]
pub struct Transcript {
    text: String,
}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Transcript {
        Transcript::default()
    }

    /// One run: `$ tool ARGS`, `exit N`, then stderr and stdout as printed (each only when
    /// not empty).
    pub fn record(&mut self, tool: &str, args: &[&str], out: &std::process::Output) {
        use crate::tool::OutputExt;
        self.text.push_str(&format!("$ {tool} {}\nexit {}\n", args.join(" "), out.code()));
        for (stream, text) in [("stderr", out.stderr_text()), ("stdout", out.stdout_text())] {
            if !text.is_empty() {
                self.text.push_str(&format!("[{stream}]\n{}", text));
                if !text.ends_with('\n') {
                    self.text.push('\n');
                }
            }
        }
        self.text.push('\n');
    }

    /// The document.
    pub fn text(&self) -> String {
        self.text.clone()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_changes_between_runs_is_replaced() {
        let text = "✓ release.2343 stopped (gone after 825ms) at 2026-12-06T06:00:01Z on 127.0.0.1:54321, pid 10185 held it 20m 2s";
        super::settings().bind(|| {
            insta::assert_snapshot!(text, @"✓ release.[n] stopped (gone after [dur]) at [timestamp] on 127.0.0.1:[port], pid [pid] held it [dur]");
        });
    }
}
