//! The Platform API's `Range` / `Next-Range` list pagination.

use serde_json::Value;
use std::cmp::Ordering;

/// A parsed `Range` header: `FIELD [[]START]..[END][; max=N][, order=asc|desc]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSpec {
    /// Sort field.
    pub field: String,
    /// Start key and whether it is exclusive (`]key`).
    pub start: Option<(String, bool)>,
    /// Descending order.
    pub desc: bool,
    /// Page size asked for.
    pub max: Option<usize>,
}

/// Parses a Range header; `None` when it is not one.
pub fn parse_range(header: &str) -> Option<RangeSpec> {
    let (bounds, params) = header.split_once(';').unwrap_or((header, ""));
    let bounds = bounds.trim();
    let (field, rest) = bounds.split_once(char::is_whitespace).unwrap_or((bounds, ".."));
    let (start, _end) = rest.trim().split_once("..")?;
    let start = match start.trim() {
        "" => None,
        s => match s.strip_prefix(']') {
            Some(k) => Some((k.to_string(), true)),
            None => Some((s.to_string(), false)),
        },
    };
    let mut spec = RangeSpec { field: field.to_string(), start, desc: false, max: None };
    for kv in params.split(',') {
        let Some((k, v)) = kv.split_once('=') else { continue };
        match k.trim() {
            "max" => spec.max = v.trim().parse().ok(),
            "order" => spec.desc = v.trim() == "desc",
            _ => {}
        }
    }
    Some(spec)
}

fn key_of(v: &Value, field: &str) -> Value {
    v.get(field).cloned().unwrap_or(Value::Null)
}

fn cmp_keys(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => key_text(a).cmp(&key_text(b)),
    }
}

fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn key_from_text(text: &str, like: &Value) -> Value {
    if like.is_number() {
        text.parse::<f64>().map(Value::from).unwrap_or(Value::String(text.into()))
    } else {
        Value::String(text.into())
    }
}

/// One page of `items` for `range` (or the default), with the status and headers to send.
pub fn page(
    mut items: Vec<Value>,
    range: Option<&str>,
    default_field: &str,
    page_size: usize,
) -> (u16, Vec<(String, String)>, Vec<Value>) {
    let spec = range.and_then(parse_range).unwrap_or(RangeSpec {
        field: default_field.to_string(),
        start: None,
        desc: false,
        max: None,
    });
    let field = spec.field.clone();
    items.sort_by(|a, b| cmp_keys(&key_of(a, &field), &key_of(b, &field)));
    if spec.desc {
        items.reverse();
    }
    if let Some((start, exclusive)) = &spec.start {
        let probe = items.first().map(|i| key_of(i, &field)).unwrap_or(Value::Null);
        let start = key_from_text(start, &probe);
        items.retain(|i| {
            let ord = cmp_keys(&key_of(i, &field), &start);
            let ord = if spec.desc { ord.reverse() } else { ord };
            ord == Ordering::Greater || (!exclusive && ord == Ordering::Equal)
        });
    }
    let max = spec.max.unwrap_or(200).clamp(1, 1000).min(page_size.max(1));
    let total = items.len();
    let page: Vec<Value> = items.into_iter().take(max).collect();
    let mut headers = vec![("Accept-Ranges".to_string(), field.clone())];
    if total > max {
        let last = page.last().map(|i| key_text(&key_of(i, &field))).unwrap_or_default();
        let order = if spec.desc { ", order=desc" } else { "" };
        let next = format!("{field} ]{last}..; max={max}{order}");
        headers.push(("Next-Range".into(), next));
        let first = page.first().map(|i| key_text(&key_of(i, &field))).unwrap_or_default();
        headers.push(("Content-Range".into(), format!("{field} {first}..{last}; max={max}")));
        (206, headers, page)
    } else {
        (200, headers, page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_forms_clients_send() {
        let r = parse_range("version ..; max=15, order=desc").unwrap();
        assert_eq!((r.field.as_str(), r.desc, r.max, r.start), ("version", true, Some(15), None));
        let r = parse_range("id ]abc..; max=2").unwrap();
        assert_eq!(r.start, Some(("abc".into(), true)));
    }

    #[test]
    fn pages_follow_next_range_to_the_end() {
        let items: Vec<Value> = (1..=5).map(|v| json!({ "version": v })).collect();
        let (s, h, p) = page(items.clone(), Some("version ..; order=desc, max=2"), "id", 1000);
        assert_eq!(s, 206);
        assert_eq!(p, vec![json!({"version": 5}), json!({"version": 4})]);
        let next = h.iter().find(|(k, _)| k == "Next-Range").unwrap().1.clone();
        let (_, _, p) = page(items.clone(), Some(&next), "id", 1000);
        assert_eq!(p, vec![json!({"version": 3}), json!({"version": 2})]);
        let (s, _, p) = page(items, Some("version ]2..; max=2, order=desc"), "id", 1000);
        assert_eq!((s, p), (200, vec![json!({"version": 1})]));
    }
}
