//! Parsing a tool's arguments so that bad input is one line: what was wrong (clap's first
//! line), then the documented exit code 2 — not clap's usage block and tip, and never a tip
//! that is wrong for us (clap suggests `-- -1` for a negative duration; the value parser says
//! it is negative instead).

use std::ffi::OsString;
use std::process::ExitCode;

/// Parses `argv`; on `--help`/`--version` prints them and returns exit 0, on an error prints
/// `PREFIX error: <first line>` (or `hint`'s line, when it has a better one) and returns 2.
pub fn parse_from<T, I>(
    argv: I,
    prefix: &str,
    hint: impl Fn(&clap::Error, &[OsString]) -> Option<String>,
) -> Result<T, ExitCode>
where
    T: clap::Parser,
    I: IntoIterator,
    I::Item: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    match T::try_parse_from(&argv) {
        Ok(a) => Ok(a),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            let line = hint(&e, &argv).or_else(|| negative_value(&e, &argv)).unwrap_or_else(|| {
                let text = e.to_string();
                crate::printable(text.lines().next().unwrap_or_default().trim_start_matches("error: "))
            });
            let styled = crate::output::red().apply_to("error:");
            eprintln!("{prefix}{styled} {}", crate::redact(&crate::invocation::as_invoked(&line)));
            if asks_for_json(&argv) {
                // `--json` always ends with one document, a usage error's too.
                crate::output::write_error_document(&crate::redact(&line), crate::Exit::Usage);
            }
            Err(ExitCode::from(crate::Exit::Usage.code()))
        }
    }
}

/// A negative value after a flag whose value is optional or a time (`--watch -1s`, `--since
/// -5m`) reads to clap as an unknown short flag (`unexpected argument '-1'`): said as what it is.
fn negative_value(e: &clap::Error, argv: &[OsString]) -> Option<String> {
    if e.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let args: Vec<String> =
        argv.iter().skip(1).take_while(|a| *a != "--").map(|a| a.to_string_lossy().into_owned()).collect();
    let at = args.iter().position(|a| a.starts_with('-') && a[1..].starts_with(|c: char| c.is_ascii_digit()))?;
    let flag = at.checked_sub(1).map(|i| args[i].as_str()).filter(|f| f.starts_with("--"))?;
    Some(crate::printable(&format!(
        "{flag} {}: `{}` is negative; give a positive value (a duration such as 2s, 5m)",
        args[at], args[at]
    )))
}

/// `--json` among the tool's own arguments (before a `--` that starts a COMMAND).
fn asks_for_json(argv: &[OsString]) -> bool {
    argv.iter().skip(1).take_while(|a| *a != "--").any(|a| a == "--json")
}

/// [`parse_from`] over the process's arguments, no prefix, no hint.
pub fn parse<T: clap::Parser>() -> Result<T, ExitCode> {
    parse_from(std::env::args_os(), "", |_, _| None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Demo {
        #[arg(long, num_args = 0..=1, default_missing_value = "2s")]
        watch: Option<String>,
    }

    #[test]
    fn a_negative_value_after_a_flag_is_said_as_negative() {
        let argv: Vec<OsString> = ["demo", "--watch", "-1s"].iter().map(OsString::from).collect();
        let e = Demo::try_parse_from(&argv).unwrap_err();
        assert_eq!(
            negative_value(&e, &argv).as_deref(),
            Some("--watch -1s: `-1s` is negative; give a positive value (a duration such as 2s, 5m)")
        );
        let argv: Vec<OsString> = ["demo", "--bogus"].iter().map(OsString::from).collect();
        let e = Demo::try_parse_from(&argv).unwrap_err();
        assert_eq!(negative_value(&e, &argv), None);
    }
}
