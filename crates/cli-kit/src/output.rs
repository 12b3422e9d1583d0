//! How text reaches the user: human text on a terminal, exactly one JSON document with
//! `--json` (human text then goes to stderr), colour by meaning, spinners only on a terminal.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use console::Style;

use crate::redact::redact;

/// The output flags every tool takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Print exactly one JSON document on stdout; human text goes to stderr
    #[arg(long)]
    pub json: bool,
    /// Do not colour output (also honoured: NO_COLOR)
    #[arg(long)]
    pub no_color: bool,
    /// Log each API request and SQL statement to stderr (secrets are never shown)
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// Where and how to print.
///
/// A closed stdout (`tool | head`) never ends the process: only a binary's `main` decides the
/// exit code, from the operation's outcome. Once stdout is closed, later lines are dropped —
/// unless the tool has begun changing something ([`Output::begin_change`]), in which case the
/// rest of the report goes to stderr so the operator still sees how the change ended.
#[derive(Debug, Clone)]
pub struct Output {
    json: bool,
    verbose: bool,
    stdin_tty: bool,
    stderr_tty: bool,
    /// Shared by clones (a watcher thread prints through its own clone).
    stdout_state: Arc<StdoutState>,
    /// Where lines go instead of the process's stdout and stderr ([`Output::buffered`]).
    buffer: Option<Captured>,
}

/// A tool's whole output captured in memory (tests, goldens): what would have gone to stdout
/// and to stderr, in order. Clones share the buffers.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Captured {
    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Which stream a line is for.
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Default)]
struct StdoutState {
    /// A write to stdout failed with a broken pipe.
    closed: AtomicBool,
    /// The tool is changing something: its report must not be lost with the pipe.
    changing: AtomicBool,
    /// The one note saying where the report went has been written.
    told: AtomicBool,
}

/// `--json` was asked for and no document has been written yet: an error that ends the
/// process now still owes stdout one ([`crate::run_main`] writes it).
static JSON_OWED: AtomicBool = AtomicBool::new(false);

/// Whether the process still owes a `--json` document, clearing the debt.
pub fn take_json_owed() -> bool {
    JSON_OWED.swap(false, Ordering::SeqCst)
}

/// The document a `--json` run ends with when it fails before its own report: what went
/// wrong and the exit code (docs/json/error.md).
pub fn error_document(message: &str, exit: crate::Exit) -> serde_json::Value {
    serde_json::json!({
        "schema_version": crate::SCHEMA_VERSION,
        "error": { "message": message, "exit_code": exit.code() },
    })
}

/// Writes [`error_document`] to stdout; a closed stdout leaves the exit code to say it.
pub fn write_error_document(message: &str, exit: crate::Exit) {
    let text = serde_json::to_string_pretty(&error_document(message, exit)).unwrap_or_default();
    let _ = std::io::Write::write_fmt(&mut std::io::stdout().lock(), format_args!("{text}\n"));
}

impl Output {
    /// Sets up output for these flags and this process's terminals.
    pub fn new(args: &OutputArgs) -> Output {
        let no_color = args.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if no_color {
            console::set_colors_enabled(false);
            console::set_colors_enabled_stderr(false);
        }
        JSON_OWED.store(args.json, Ordering::SeqCst);
        Output {
            json: args.json,
            verbose: args.verbose,
            stdin_tty: std::io::stdin().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
            stdout_state: Arc::default(),
            buffer: None,
        }
    }

    /// An output that writes into memory instead of the process's streams, with no terminal
    /// and no colour: a tool's whole output can be captured in-process and compared whole.
    pub fn buffered(args: &OutputArgs) -> (Output, Captured) {
        console::set_colors_enabled(false);
        console::set_colors_enabled_stderr(false);
        let captured = Captured::default();
        let out = Output {
            json: args.json,
            verbose: args.verbose,
            stdin_tty: false,
            stderr_tty: false,
            stdout_state: Arc::default(),
            buffer: Some(captured.clone()),
        };
        (out, captured)
    }

    /// Writes one line to a stream (or to the buffer).
    fn write(&self, stream: Stream, line: &str) -> std::io::Result<()> {
        match (&self.buffer, stream) {
            (Some(b), Stream::Stdout) => push_line(&b.stdout, line),
            (Some(b), Stream::Stderr) => push_line(&b.stderr, line),
            (None, Stream::Stdout) => write_line(&mut std::io::stdout().lock(), line),
            (None, Stream::Stderr) => write_line(&mut std::io::stderr().lock(), line),
        }
    }

    /// Marks the start of a change (a stop, a cancel, a migration, a window): from here on a
    /// closed stdout moves the report to stderr instead of dropping it. Confirmation calls it.
    pub fn begin_change(&self) {
        self.stdout_state.changing.store(true, Ordering::SeqCst);
    }

    /// A reader closed stdout. Read-only loops (`--watch`) end when they see this.
    pub fn stdout_closed(&self) -> bool {
        self.stdout_state.closed.load(Ordering::SeqCst)
    }

    /// Writes one line to stdout, or, once stdout is closed, to stderr during a change (with one
    /// note saying so) and nowhere otherwise.
    fn to_stdout(&self, line: &str) {
        let state = &self.stdout_state;
        if !state.closed.load(Ordering::SeqCst) {
            match self.write(Stream::Stdout, line) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => state.closed.store(true, Ordering::SeqCst),
                _ => return,
            }
        }
        if !state.changing.load(Ordering::SeqCst) {
            return;
        }
        if !state.told.swap(true, Ordering::SeqCst) {
            self.note(format!(
                "{} stdout was closed; the rest of the report follows here, and the exit code is the operation's",
                yellow().apply_to("!")
            ));
        }
        self.note(line);
    }

    /// `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// `-v` was given.
    pub fn is_verbose(&self) -> bool {
        self.verbose
    }

    /// Prompts are allowed: stdin and stderr are terminals and the output is not JSON.
    pub fn can_prompt(&self) -> bool {
        self.stdin_tty && self.stderr_tty && !self.json
    }

    /// Spinners and in-place redraws are allowed.
    pub fn can_animate(&self) -> bool {
        self.stderr_tty && !self.json
    }

    /// Every line of something a tool says, each in its tone: the wording lives in the tool's
    /// renderer (`Render`), the orchestration only says what happened.
    pub fn show(&self, said: &impl Render) {
        for line in said.lines() {
            match line.tone {
                Tone::Say => self.say(&line.text),
                Tone::Note => self.note(&line.text),
                Tone::Ok => self.ok(&line.text),
                Tone::Bad => self.bad(&line.text),
                Tone::Warn => self.warn(&line.text),
            }
        }
    }

    /// A line of the human report: stdout normally, stderr under `--json`.
    pub fn say(&self, line: impl AsRef<str>) {
        let line = terminal_safe(&redact(&crate::invocation::as_invoked(line.as_ref())), console::colors_enabled());
        if self.json {
            self.note(line);
        } else {
            self.to_stdout(&line);
        }
    }

    /// Progress and notes: always stderr, so stdout stays clean for pipes. A closed stderr
    /// loses the line and nothing else.
    pub fn note(&self, line: impl AsRef<str>) {
        let line = crate::invocation::as_invoked(line.as_ref());
        let _ = self.write(Stream::Stderr, &terminal_safe(&redact(&line), console::colors_enabled_stderr()));
    }

    /// Redraws the screen with `text` (a `--watch` on a terminal): the tool's own cursor-home
    /// and clear, then the text made terminal-safe like every other line. Only when
    /// [`Output::can_animate`]; otherwise the text is said as lines.
    pub fn redraw(&self, text: &str) {
        if !self.can_animate() || self.json {
            return self.say(text);
        }
        let safe = terminal_safe(&redact(text), console::colors_enabled());
        self.to_stdout(&format!("\x1b[H\x1b[2J{safe}"));
    }

    /// `✓ text` in green.
    pub fn ok(&self, text: impl AsRef<str>) {
        self.say(format!("{} {}", green().apply_to("✓"), text.as_ref()));
    }

    /// `✗ text` in red.
    pub fn bad(&self, text: impl AsRef<str>) {
        self.say(format!("{} {}", red().apply_to("✗"), text.as_ref()));
    }

    /// `! text` in yellow, on stderr.
    pub fn warn(&self, text: impl AsRef<str>) {
        self.note(format!("{} {}", yellow().apply_to("!"), text.as_ref()));
    }

    /// A verbose line, only with `-v`.
    pub fn debug(&self, text: impl AsRef<str>) {
        if self.verbose {
            self.note(dim().apply_to(text.as_ref()).to_string());
        }
    }

    /// The one JSON document on stdout (dropped if a reader closed stdout: stderr is for
    /// humans, and a script that closed the pipe has the exit code).
    pub fn json(&self, value: &serde_json::Value) {
        self.write_json(&serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into()));
    }

    /// A tool's typed report as the one JSON document on stdout (only with `--json`).
    pub fn report(&self, report: &impl serde::Serialize) {
        if self.json {
            self.json(&serde_json::to_value(report).unwrap_or(serde_json::Value::Null));
        }
    }

    /// One compact JSON document as one stdout line (NDJSON, for `--watch --json`).
    pub fn json_line(&self, value: &serde_json::Value) {
        self.write_json(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()));
    }

    fn write_json(&self, text: &str) {
        JSON_OWED.store(false, Ordering::SeqCst);
        if let Err(e) = self.write(Stream::Stdout, &redact(text)) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                self.stdout_state.closed.store(true, Ordering::SeqCst);
            }
        }
    }

    /// A spinner on stderr while `message` is under way; silent without a terminal.
    pub fn spinner(&self, message: impl Into<String>) -> Spinner {
        Spinner::start(self.can_animate(), message.into())
    }
}

fn push_line(buffer: &Mutex<String>, line: &str) -> std::io::Result<()> {
    let mut b = buffer.lock().map_err(|_| std::io::Error::other("output buffer poisoned"))?;
    b.push_str(line);
    b.push('\n');
    Ok(())
}

/// Writes and flushes one line.
fn write_line(w: &mut dyn Write, line: &str) -> std::io::Result<()> {
    writeln!(w, "{line}").and_then(|_| w.flush())
}

/// How a line is shown: where it goes and the mark before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Part of the report: stdout (stderr under `--json`).
    Say,
    /// Progress: stderr.
    Note,
    /// `✓`, green: an effect seen.
    Ok,
    /// `✗`, red: a failure, or an effect not seen.
    Bad,
    /// `!`, yellow, on stderr: something the reader should know.
    Warn,
}

/// One line a tool says, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Where it goes and its mark.
    pub tone: Tone,
    /// The words (outside text in it is made terminal-safe when it is shown).
    pub text: String,
}

impl Line {
    /// A line in `tone`.
    pub fn new(tone: Tone, text: impl Into<String>) -> Line {
        Line { tone, text: text.into() }
    }
}

/// What most events say: one line in `tone`.
pub fn one(tone: Tone, text: impl Into<String>) -> Vec<Line> {
    vec![Line::new(tone, text)]
}

/// Something that happened, rendered as the lines a person reads: each tool's renderer
/// implements it for its typed events, so the wording has one place.
pub trait Render {
    /// The lines, in order.
    fn lines(&self) -> Vec<Line>;
}

/// `1 session`, `2 sessions`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Bold.
pub fn bold() -> Style {
    Style::new().bold()
}
/// Dim (ages, ids, hints).
pub fn dim() -> Style {
    Style::new().dim()
}
/// Success.
pub fn green() -> Style {
    Style::new().green()
}
/// Failure.
pub fn red() -> Style {
    Style::new().red().bold()
}
/// Caution.
pub fn yellow() -> Style {
    Style::new().yellow()
}
/// Names of things (apps, dynos, pids).
pub fn cyan() -> Style {
    Style::new().cyan()
}

/// A spinner that redraws one stderr line until finished.
pub struct Spinner {
    message: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    fn start(animate: bool, message: String) -> Spinner {
        let message = Arc::new(Mutex::new(message));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = animate.then(|| {
            let (message, stop) = (message.clone(), stop.clone());
            std::thread::spawn(move || {
                const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let m = message.lock().map(|m| m.clone()).unwrap_or_default();
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{} {}", cyan().apply_to(FRAMES[i % FRAMES.len()]), redact(&m));
                    let _ = err.flush();
                    drop(err);
                    i += 1;
                    std::thread::sleep(Duration::from_millis(80));
                }
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
            })
        });
        Spinner { message, stop, thread }
    }

    /// Changes the text.
    pub fn set_message(&self, message: impl Into<String>) {
        if let Ok(mut m) = self.message.lock() {
            *m = message.into();
        }
    }

    /// Clears the line.
    pub fn finish(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn a_buffered_output_keeps_each_stream_whole_and_in_order() {
        let (out, seen) = Output::buffered(&OutputArgs::default());
        out.say("plan");
        out.note("progress");
        out.ok("done");
        out.report(&serde_json::json!({ "ignored": true }));
        assert_eq!(seen.stdout(), "plan\n✓ done\n", "no JSON without --json");
        assert_eq!(seen.stderr(), "progress\n");

        let (out, seen) = Output::buffered(&OutputArgs { json: true, ..Default::default() });
        out.say("plan");
        out.report(&serde_json::json!({ "schema_version": 1 }));
        assert_eq!(seen.stderr(), "plan\n", "human text goes to stderr under --json");
        assert_eq!(seen.stdout(), "{\n  \"schema_version\": 1\n}\n");
    }
}

/// A human line as it may reach a terminal: text from outside (a query, an application name, a
/// release's output, a log line) cannot move the cursor, clear the screen, set the title or
/// overwrite a line — every control character is shown escaped, as [`printable`] does. Only
/// colour (SGR: `ESC [ … m`) passes, and only while colour is on: it is how the tools style
/// their own text (an outside colour code can change a colour, nothing else). Newlines and tabs
/// in a message are the tool's own layout.
pub fn terminal_safe(text: &str, keep_colour: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\u{1b}' if keep_colour => {
                let rest = &text[i + 1..];
                let sgr = rest.strip_prefix('[').and_then(|r| {
                    let len = r.find(|ch: char| !(ch.is_ascii_digit() || ch == ';'))?;
                    r[len..].starts_with('m').then_some(len + 2)
                });
                match sgr {
                    Some(len) => {
                        out.push(c);
                        for _ in 0..len {
                            if let Some((_, ch)) = chars.next() {
                                out.push(ch);
                            }
                        }
                    }
                    None => out.push_str("\\x1b"),
                }
            }
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_bidi_control(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The Unicode bidirectional controls (embeddings, overrides, isolates and marks): text from
/// outside that carries one can reverse a line on the terminal (a dyno command or a query
/// text that reads as something it is not), so each is shown escaped, like a C0/C1 control.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` safe to write to a terminal: every control character (ESC, CR, BEL, NUL…) and
/// newline is shown escaped (`\x1b`, `\r`, `\n`), so text from outside — a query from
/// `pg_stat_activity`, an application name, a log line — cannot move the cursor, clear the
/// screen or fake a line of the tool's own. Only the tool's own styling is applied after this.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push(' '),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_bidi_control(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod printable_tests {
    #[test]
    fn human_lines_keep_colour_and_lose_every_other_control() {
        use super::terminal_safe;
        let clear = "SELECT 1 /* \x1b[2J\x1b]0;pwned\x07 */";
        assert_eq!(terminal_safe(clear, true), "SELECT 1 /* \\x1b[2J\\x1b]0;pwned\\x07 */");
        assert_eq!(terminal_safe("\x1b[31mred\x1b[0m and\rover", true), "\x1b[31mred\x1b[0m and\\rover");
        assert_eq!(terminal_safe("\x1b[31mred\x1b[0m", false), "\\x1b[31mred\\x1b[0m", "no colour: nothing passes");
        assert_eq!(terminal_safe("two\n  lines\tand a tab", false), "two\n  lines\tand a tab");
        assert_eq!(terminal_safe("csi \u{9b}2J", true), "csi \\x9b2J");
    }

    #[test]
    fn bidi_controls_are_shown_not_obeyed() {
        // A right-to-left override would reverse the rest of a table row on the terminal.
        let sneaky = "rake db:migrate \u{202e}txt.exe\u{2066}x\u{2069}";
        assert_eq!(super::printable(sneaky), "rake db:migrate \\u{202e}txt.exe\\u{2066}x\\u{2069}");
        assert_eq!(super::terminal_safe(sneaky, true), "rake db:migrate \\u{202e}txt.exe\\u{2066}x\\u{2069}");
        assert_eq!(super::printable("café — naïve"), "café — naïve", "other text is left alone");
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(super::printable("ac\x1b[2Jme"), "ac\\x1b[2Jme");
        assert_eq!(super::printable("a\rb\nc\u{7}"), "a\\rb\\nc\\x07");
        assert_eq!(super::printable("ALTER TABLE \"users\" — ok"), "ALTER TABLE \"users\" — ok");
    }
}
