//! The JSON examples in docs/json: each ```json block follows a `<!-- type: Name -->` line
//! naming the report type it shows, so a test can parse every example into that type and the
//! docs cannot drift from the code.

/// (type name, JSON text) for every example in `docs/json/<tool>.md`. Panics on a ```json
/// block without its type line: an example nobody checks is how docs drift.
pub fn json_examples(tool: &str) -> Vec<(String, String)> {
    let path = crate::workspace_root().join("docs/json").join(format!("{tool}.md"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    let mut block: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some((ty, body)) = block.as_mut() {
            if line.trim() == "```" {
                out.push((ty.clone(), body.clone()));
                block = None;
            } else {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        }
        let t = line.trim();
        if let Some(ty) = t.strip_prefix("<!-- type: ").and_then(|r| r.strip_suffix(" -->")) {
            pending = Some(ty.to_string());
        } else if t == "```json" {
            let ty = pending
                .take()
                .unwrap_or_else(|| panic!("{}: a ```json block without a <!-- type: Name --> line", path.display()));
            block = Some((ty, String::new()));
        } else if !t.is_empty() {
            pending = None;
        }
    }
    assert!(!out.is_empty(), "{} has no JSON example", path.display());
    out
}

/// Parses `text` as `T` and checks that writing it back gives the same document: fields the
/// type lacks fail the parse (`deny_unknown_fields`), fields the example lacks fail the
/// comparison.
pub fn parses_exactly<T: serde::de::DeserializeOwned + serde::Serialize>(name: &str, text: &str) -> T {
    let value: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: the example is not JSON: {e}\n{text}"));
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{name}: the example does not parse into the type: {e}\n{text}"));
    let back = serde_json::to_value(&typed).expect("serialises");
    assert_eq!(back, value, "{name}: the example and the type disagree (left: the type, right: the docs)");
    assert_eq!(value["schema_version"], 1, "{name}: every document carries schema_version");
    typed
}
