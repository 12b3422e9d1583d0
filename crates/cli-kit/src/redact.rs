//! Secrets never reach output: registered values (the API token, database passwords) and any
//! password inside a URL or a `password=` setting are replaced by `***` in everything printed.

use std::sync::{Mutex, OnceLock};

fn registry() -> &'static Mutex<Vec<String>> {
    static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Remembers a secret so that [`redact`] hides it wherever it appears.
pub fn register_secret(secret: &str) {
    // Very short values would blank out ordinary words.
    if secret.len() < 4 {
        return;
    }
    let mut s = registry().lock().unwrap_or_else(|e| e.into_inner());
    if !s.iter().any(|x| x == secret) {
        s.push(secret.to_string());
        // Longest first, so a secret containing another is hidden whole.
        s.sort_by_key(|x| std::cmp::Reverse(x.len()));
    }
}

/// Registers the password inside a database URL (`scheme://user:PASSWORD@host`), if any.
pub fn register_url_password(url: &str) {
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split('/').next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, password)) = userinfo.split_once(':') {
                register_secret(password);
            }
        }
    }
}

/// `text` with every registered secret and every URL or keyword password replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for secret in registry().lock().unwrap_or_else(|e| e.into_inner()).iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    redact_url_passwords(&redact_keyword_passwords(&out))
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
pub fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (before, after) = rest.split_at(pos + 3);
        out.push_str(before);
        // The authority ends at the first '/', whitespace or quote.
        let end = after.find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'').unwrap_or(after.len());
        let authority = &after[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon + 1]);
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `password=secret` (libpq keyword form) → `password=***`.
fn redact_keyword_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("password=") {
        let (before, after) = rest.split_at(pos + "password=".len());
        out.push_str(before);
        let end = after.find(|c: char| c.is_whitespace() || c == '&' || c == '"' || c == '\'').unwrap_or(after.len());
        if end > 0 {
            out.push_str("***");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_hidden_users_and_hosts_kept() {
        assert_eq!(
            redact("connect postgres://u8a:p4ss@w0rd@ec2.example.com:5432/db failed"),
            "connect postgres://u8a:***@ec2.example.com:5432/db failed"
        );
        assert_eq!(redact("https://api.heroku.com/apps"), "https://api.heroku.com/apps");
        assert_eq!(redact("postgres://user@host/db"), "postgres://user@host/db");
    }

    #[test]
    fn keyword_and_query_passwords_are_hidden() {
        assert_eq!(redact("host=h password=hunter22 dbname=x"), "host=h password=*** dbname=x");
        assert_eq!(
            redact("postgres://h/db?password=zz9&sslmode=require"),
            "postgres://h/db?password=***&sslmode=require"
        );
    }

    #[test]
    fn registered_secrets_are_hidden_anywhere() {
        register_secret("tok-0123456789abcdef");
        assert_eq!(redact("Authorization: Bearer tok-0123456789abcdef!"), "Authorization: Bearer ***!");
    }
}
