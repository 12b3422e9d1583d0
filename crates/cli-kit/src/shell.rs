//! How a shell sees a command: its exit status, and quoting for the commands the tools print and send: a printed command, pasted into a
//! POSIX shell, runs the same argv (`sh -c 'echo a; b'` stays one argument, not four).

/// A process's exit status as a shell reports it: its code, or 128 + N after signal N.
pub fn status_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// One word quoted for a POSIX shell: as it is when it has only characters no shell treats
/// specially, else in single quotes (a `'` inside becomes `'\''`).
pub fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// An argv as one shell line that runs the same argv.
pub fn join(argv: &[String]) -> String {
    argv.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_that_need_no_quotes_stay_as_they_are() {
        assert_eq!(join(&["bin/rails".into(), "db:migrate".into(), "--trace".into()]), "bin/rails db:migrate --trace");
    }

    #[test]
    fn a_word_with_spaces_semicolons_or_quotes_stays_one_word() {
        let argv: Vec<String> = vec!["sh".into(), "-c".into(), "echo deploy step; sleep 1".into()];
        assert_eq!(join(&argv), "sh -c 'echo deploy step; sleep 1'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn the_printed_line_run_by_a_shell_gives_back_the_argv() {
        let argv: Vec<String> =
            vec!["printf".into(), "%s\\n".into(), "a b".into(), "it's".into(), "$x;`y`".into(), "".into()];
        let out = std::process::Command::new("sh").arg("-c").arg(join(&argv)).output().expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b\nit's\n$x;`y`\n\n");
    }
}
