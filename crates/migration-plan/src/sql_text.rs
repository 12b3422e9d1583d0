//! SQL text split as the server would read its top-level statements: strings, dollar-quoted
//! bodies and comments skipped, `;` outside them ending a statement. Enough to find the first
//! words and the relation names of a statement; never a parser.

/// A word, a quoted identifier, or punctuation of one top-level statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A word: a keyword or an unquoted identifier.
    Word(String),
    /// A double-quoted identifier, unquoted.
    Quoted(String),
    /// Punctuation.
    Punct(char),
}

/// The top-level statements of `text`, each as its tokens (strings, dollar-quoted bodies and
/// comments skipped; `;` outside them ends a statement).
pub(crate) fn statements(text: &str) -> Vec<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<Vec<Token>> = vec![Vec::new()];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '-' if next == Some('-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            '\'' => {
                i += 1;
                while i < chars.len() && !(chars[i] == '\'' && chars.get(i + 1) != Some(&'\'')) {
                    i += if chars[i] == '\'' { 2 } else { 1 };
                }
                i += 1;
            }
            '"' => {
                let mut word = String::new();
                i += 1;
                while i < chars.len() && !(chars[i] == '"' && chars.get(i + 1) != Some(&'"')) {
                    word.push(chars[i]);
                    i += if chars[i] == '"' { 2 } else { 1 };
                }
                i += 1;
                out.last_mut().expect("one open").push(Token::Quoted(word));
            }
            '$' => {
                let tag_end = chars[i + 1..].iter().position(|c| *c == '$').map(|p| i + 1 + p);
                let tag: Option<String> = tag_end
                    .map(|e| chars[i..=e].iter().collect::<String>())
                    .filter(|t| t[1..t.len() - 1].chars().all(|c| c.is_alphanumeric() || c == '_'));
                match tag {
                    Some(tag) => {
                        let body_start = i + tag.chars().count();
                        let rest: String = chars[body_start..].iter().collect();
                        i = body_start
                            + rest
                                .find(&tag)
                                .map(|p| rest[..p].chars().count() + tag.chars().count())
                                .unwrap_or(rest.chars().count());
                    }
                    None => i += 1,
                }
            }
            ';' => {
                out.push(Vec::new());
                i += 1;
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                    i += 1;
                }
                out.last_mut().expect("one open").push(Token::Word(chars[start..i].iter().collect()));
            }
            c if c.is_whitespace() => i += 1,
            c => {
                out.last_mut().expect("one open").push(Token::Punct(c));
                i += 1;
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out
}
