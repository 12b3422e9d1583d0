//! Log sessions: `POST /apps/{app}/log-sessions` (the schema's link; the Heroku CLI sends it
//! with the 3.sdk variant) and the stream at its `logplex_url`, read as server-sent events the
//! way the CLI's log displayer does. A detached one-off dyno's output and the platform's
//! `Process exited with status N` arrive this way.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{seg, Call, Client, Idempotency, ACCEPT_V3_SDK};
use crate::Error;

/// What a log session should show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogSessionCreate {
    /// Only this dyno (`run.1234`); on Cedar also a process type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dyno: Option<String>,
    /// Only this process type (how a Fir app is asked: lib/run/log-displayer.js sends `type`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub process_type: Option<String>,
    /// History lines to send first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<u32>,
    /// Keep streaming new lines.
    pub tail: bool,
    /// Only `app` or `heroku` lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A created log session.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogSession {
    /// UUID.
    pub id: String,
    /// Where the lines stream from (a secret: it grants read access to the app's log).
    pub logplex_url: String,
}

/// One parsed log line: `2026-11-22T06:00:01.123456+00:00 app[run.1234]: text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The timestamp as written.
    pub timestamp: String,
    /// `app` or `heroku`.
    pub source: String,
    /// `run.1234`.
    pub dyno: String,
    /// The text after `: `.
    pub text: String,
}

impl LogLine {
    /// Parses a line in the platform's format; `None` for anything else.
    pub fn parse(line: &str) -> Option<LogLine> {
        let (timestamp, rest) = line.split_once(' ')?;
        let (who, text) = rest
            .split_once(": ")
            .map(|(w, t)| (w, t.to_string()))
            .or_else(|| rest.strip_suffix(':').map(|w| (w, String::new())))?;
        let (source, dyno) = who.strip_suffix(']')?.split_once('[')?;
        Some(LogLine { timestamp: timestamp.to_string(), source: source.to_string(), dyno: dyno.to_string(), text })
    }

    /// The status of a platform `Process exited with status N` line.
    pub fn exit_status(&self) -> Option<i32> {
        if self.source != "heroku" {
            return None;
        }
        self.text.strip_prefix("Process exited with status ")?.trim().parse().ok()
    }
}

/// What a stream reader reports.
#[derive(Debug)]
pub enum StreamEvent {
    /// One line.
    Line(String),
    /// The stream ended: `None` when the server closed it, else what failed.
    Ended(Option<String>),
}

impl Client {
    /// `POST /apps/{app}/log-sessions`. Creating a session changes nothing, so it may be retried.
    pub fn create_log_session(&self, app: &str, spec: &LogSessionCreate) -> Result<LogSession, Error> {
        self.send(&Call {
            method: Method::POST,
            path: format!("/apps/{}/log-sessions", seg(app)),
            body: Some(serde_json::to_value(spec).unwrap_or_default()),
            idempotency: Idempotency::Idempotent,
            subject: format!("app `{app}`"),
            accept: ACCEPT_V3_SDK,
        })
    }

    /// Opens `logplex_url` and reads it on a thread: lines arrive on the returned channel, then
    /// one [`StreamEvent::Ended`]. The caller waits with a timeout, so it can watch its own
    /// deadline and interrupts while no line comes.
    pub fn stream_log(&self, logplex_url: &str) -> Result<mpsc::Receiver<StreamEvent>, Error> {
        let resp = self
            .stream_http()
            .get(logplex_url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .header(reqwest::header::USER_AGENT, self.user_agent())
            .send()
            .map_err(|e| Error::Transport {
                request: "GET the log stream".into(),
                detail: crate::client::transport_detail(&e),
                attempts: 1,
                not_retried_unsafe: false,
            })?;
        if !resp.status().is_success() {
            return Err(Error::Api {
                status: resp.status().as_u16(),
                id: String::new(),
                message: "the log stream refused the session".into(),
                request_id: None,
            });
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(resp);
            let mut line = String::new();
            let ended = loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) => break None,
                    Ok(_) => {
                        let l = line.trim_end_matches(['\r', '\n']);
                        // SSE: `data:` lines carry the text; ids, comments and blank lines do not.
                        if let Some(data) = l.strip_prefix("data:") {
                            let data = data.strip_prefix(' ').unwrap_or(data);
                            for part in data.split('\n').filter(|p| !p.is_empty()) {
                                if tx.send(StreamEvent::Line(part.to_string())).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    Err(e) => break Some(e.to_string()),
                }
            };
            let _ = tx.send(StreamEvent::Ended(ended));
        });
        Ok(rx)
    }
}

/// How long a caller waits for the next line before checking its deadline and interrupts.
pub const STREAM_POLL: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_in_the_platform_format() {
        let l = LogLine::parse("2026-11-22T06:00:01.123456+00:00 app[run.1234]: == AddNickname: migrating ==").unwrap();
        assert_eq!((l.source.as_str(), l.dyno.as_str()), ("app", "run.1234"));
        assert_eq!(l.text, "== AddNickname: migrating ==");
        assert_eq!(l.exit_status(), None);
        let exit =
            LogLine::parse("2026-11-22T06:00:02.000001+00:00 heroku[run.1234]: Process exited with status 3").unwrap();
        assert_eq!(exit.exit_status(), Some(3));
        let fake =
            LogLine::parse("2026-11-22T06:00:02.000001+00:00 app[run.1234]: Process exited with status 0").unwrap();
        assert_eq!(fake.exit_status(), None, "only the platform's own line counts");
        assert_eq!(LogLine::parse("2026-11-22T06:00:02+00:00 app[run.1]:").unwrap().text, "");
        assert!(LogLine::parse("garbage").is_none());
    }
}
