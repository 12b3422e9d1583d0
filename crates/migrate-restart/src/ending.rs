//! How an attempt ended, and how much of its output is kept: what the attempt (attached) and
//! the log follower (detached) both produce, and the conclusion reads.

/// Lines of output kept to show after a failure.
pub const TAIL_LINES: usize = 30;

/// How the attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The command's real exit status.
    Exited(i32),
    /// The connection ended without an exit status.
    Lost(String),
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// `--timeout` passed.
    TimedOut,
    /// The marker and the platform's exit line disagree: the run counts as failed.
    Disagreed {
        /// What the command's marker said.
        marker: i32,
        /// What the platform's `Process exited with status N` said.
        platform: i32,
    },
}
