//! Raw HTTP against the simulator, as a client sees it (shared by the simulator's suites).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;

use heroku_sim::Sim;
use serde_json::Value;

/// A raw request; returns status, headers and body text.
pub fn raw(sim: &Sim, method: &str, path: &str, extra: &str, body: Option<Value>) -> (u16, String, String) {
    raw_accepting(sim, method, path, "application/vnd.heroku+json; version=3", extra, body)
}

/// [`raw`] with another `Accept` (the 3.sdk variant).
pub fn raw_accepting(
    sim: &Sim,
    method: &str,
    path: &str,
    accept: &str,
    extra: &str,
    body: Option<Value>,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", sim.port())).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\nAccept: {accept}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        sim.port(),
        sim.token(),
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status: u16 = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_string(), body.to_string())
}

pub fn json_of(sim: &Sim, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, _, body) = raw(sim, method, path, "", body);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// [`json_of`] under the 3.sdk variant.
pub fn sdk_json_of(sim: &Sim, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, _, body) = raw_accepting(sim, method, path, "application/vnd.heroku+json; version=3.sdk", "", body);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}
