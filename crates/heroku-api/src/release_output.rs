//! A release command's output: the release's `output_stream_url`, read as `text/plain` the way
//! the Heroku CLI's `releases:output` does, resumable with `Range: bytes=N-` (the schema:
//! "clients should be prepared to handle disconnects and can resume the stream by sending a
//! Range header"). A 404 means the release command has not started yet.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;

use crate::client::Client;
use crate::Error;

/// What the output reader reports.
#[derive(Debug)]
pub enum OutputEvent {
    /// One line (without its newline) and the stream offset just after it.
    Line {
        /// The text.
        text: String,
        /// Bytes of the output read so far, to resume from.
        offset: u64,
    },
    /// The stream ended: `None` when the server closed it (the command may have ended, or the
    /// connection dropped: the release's status tells), else what failed.
    Ended(Option<String>),
}

/// Why the stream could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// 404: the release command has not started yet (try again shortly).
    NotStarted,
    /// Anything else.
    Failed(Error),
}

impl Client {
    /// Opens `url` from byte `from` and reads it on a thread: lines arrive on the returned
    /// channel, then one [`OutputEvent::Ended`].
    pub fn stream_release_output(&self, url: &str, from: u64) -> Result<mpsc::Receiver<OutputEvent>, OpenError> {
        let mut req = self
            .stream_http()
            .get(url)
            .header(reqwest::header::ACCEPT, "text/plain")
            .header(reqwest::header::USER_AGENT, self.user_agent());
        if from > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let resp = req.send().map_err(|e| {
            OpenError::Failed(Error::Transport {
                request: "GET the release output".into(),
                detail: crate::client::transport_detail(&e),
                attempts: 1,
                not_retried_unsafe: false,
            })
        })?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Err(OpenError::NotStarted);
        }
        if !resp.status().is_success() {
            return Err(OpenError::Failed(Error::Api {
                status,
                id: String::new(),
                message: "the release output stream refused the request".into(),
                request_id: None,
            }));
        }
        // A server that ignores Range answers 200 with the whole output: skip what was read.
        let skip = if status == 206 { 0 } else { from };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(resp);
            let mut buf = Vec::new();
            let mut offset = 0u64;
            let ended = loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) => break None,
                    Ok(n) => {
                        offset += n as u64;
                        if offset <= skip {
                            continue;
                        }
                        let text = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string();
                        let at = if status == 206 { from + offset } else { offset };
                        if tx.send(OutputEvent::Line { text, offset: at }).is_err() {
                            return;
                        }
                    }
                    Err(e) => break Some(e.to_string()),
                }
            };
            let _ = tx.send(OutputEvent::Ended(ended));
        });
        Ok(rx)
    }
}
