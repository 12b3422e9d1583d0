//! The API token: `HEROKU_API_KEY`, else the `~/.netrc` entry `heroku login` wrote.

use std::fmt;
use std::path::PathBuf;

use crate::Error;

/// An API token. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token value.
    pub fn new(value: impl Into<String>) -> Self {
        Token(value.into())
    }

    /// The secret itself, for the Authorization header and for redaction lists only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a token came from, for `-v` and for error hints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The `HEROKU_API_KEY` environment variable.
    EnvVar,
    /// A `machine` entry in a netrc file.
    Netrc(PathBuf),
}

/// Finds the token for an API host: a non-empty `HEROKU_API_KEY` wins; otherwise the password
/// of the first of `machines` with an entry in `~/.netrc` (or the file `NETRC` names).
pub fn find_token_for(machines: &[&str]) -> Result<(Token, TokenSource), Error> {
    if let Ok(key) = std::env::var("HEROKU_API_KEY") {
        let key = key.trim();
        if !key.is_empty() {
            return Ok((Token::new(key), TokenSource::EnvVar));
        }
    }
    if let Some(path) = netrc_path() {
        if let Ok(text) = std::fs::read_to_string(&path) {
            for m in machines {
                if let Some(password) = netrc_password(&text, m) {
                    return Ok((Token::new(password), TokenSource::Netrc(path)));
                }
            }
        }
    }
    let host = machines.first().copied().unwrap_or("the API host");
    Err(Error::NotLoggedIn(format!("no Heroku credentials found for {host}: run `heroku login` or set HEROKU_API_KEY")))
}

/// [`find_token_for`] with one machine name.
pub fn find_token(api_host: &str) -> Result<(Token, TokenSource), Error> {
    find_token_for(&[api_host])
}

/// The netrc file to read: `$NETRC` when set, else `~/.netrc`.
pub fn netrc_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETRC").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    dirs::home_dir().map(|home| home.join(".netrc"))
}

/// The password of the first `machine HOST` entry (or `default`) in netrc text.
///
/// netrc is whitespace-separated tokens; `macdef` bodies run to the next blank line.
pub fn netrc_password(text: &str, host: &str) -> Option<String> {
    let mut tokens = Tokens::new(text);
    let mut current_matches = false;
    let mut default_password = None;
    let mut in_default = false;
    while let Some(tok) = tokens.next() {
        match tok {
            "machine" => {
                let name = tokens.next()?;
                current_matches = name.eq_ignore_ascii_case(host);
                in_default = false;
            }
            "default" => {
                current_matches = false;
                in_default = true;
            }
            "password" => {
                let value = tokens.next()?;
                if current_matches {
                    return Some(value.to_string());
                }
                if in_default && default_password.is_none() {
                    default_password = Some(value.to_string());
                }
            }
            "login" | "account" => {
                tokens.next();
            }
            "macdef" => {
                tokens.next();
                tokens.skip_macro_body();
            }
            _ => {}
        }
    }
    default_password
}

struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Self {
        Tokens { rest: text }
    }

    fn next(&mut self) -> Option<&'a str> {
        loop {
            self.rest = self.rest.trim_start();
            if self.rest.starts_with('#') {
                // Comment to the end of the line.
                self.rest = self.rest.split_once('\n').map(|x| x.1).unwrap_or("");
                continue;
            }
            break;
        }
        if self.rest.is_empty() {
            return None;
        }
        let end = self.rest.find(char::is_whitespace).unwrap_or(self.rest.len());
        let (tok, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(tok)
    }

    fn skip_macro_body(&mut self) {
        self.rest = self.rest.split_once("\n\n").map(|x| x.1).unwrap_or("");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_machine_entry_heroku_login_writes() {
        let text = "machine api.heroku.com\n  login me@example.com\n  password abc-123\nmachine git.heroku.com\n  login me@example.com\n  password git-456\n";
        assert_eq!(netrc_password(text, "api.heroku.com").as_deref(), Some("abc-123"));
        assert_eq!(netrc_password(text, "git.heroku.com").as_deref(), Some("git-456"));
        assert_eq!(netrc_password(text, "api.other.com"), None);
    }

    #[test]
    fn one_line_entries_comments_macdef_and_default() {
        let text = "# mine\nmacdef init\ncd /tmp\n\nmachine a.test login x password pa\ndefault login y password pd\n";
        assert_eq!(netrc_password(text, "a.test").as_deref(), Some("pa"));
        assert_eq!(netrc_password(text, "b.test").as_deref(), Some("pd"));
    }

    #[test]
    fn token_debug_and_display_never_show_the_value() {
        let t = Token::new("s3cret-token");
        assert_eq!(format!("{t:?}"), "Token(***)");
        assert_eq!(format!("{t}"), "***");
    }
}
