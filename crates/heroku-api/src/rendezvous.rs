//! Attaching to a one-off dyno: the rendezvous protocol the Heroku CLI's `heroku run` speaks,
//! and the exit-status marker that carries the command's real status back.
//!
//! TLS to the `attach_url`'s host and port (certificates verified: system roots plus
//! `SSL_CERT_FILE`), send the secret path and CRLF, read the banner line, then the stream is
//! the dyno's terminal: its output to read, its input to write.

use std::io::{self, BufRead, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use crate::Error;

/// What the Heroku CLI appends to a command (`heroku run --exit-code`) so the shell prints
/// the status on the stream after the command ends.
pub const EXIT_MARKER: &str = "\u{FFFF} heroku-command-exit-status: ";

/// `(CMD); echo "<marker>$?"`: the command as sent to the dyno. The subshell keeps a command
/// that calls `exit` from skipping the marker, which would lose its status.
pub fn with_exit_marker(command: &str) -> String {
    // The shell then exits with the command's status too, so the platform's own exit line (on a
    // detached dyno) carries the same number as the marker.
    format!("({command}\n); s=$?; echo \"{EXIT_MARKER}$s\"; exit $s")
}

/// A parsed `rendezvous://host:port/secret` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachUrl {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query without the leading slash: what is sent first.
    pub secret: String,
}

impl AttachUrl {
    /// Parses an `attach_url`; anything else is a one-line error.
    pub fn parse(url: &str) -> Result<AttachUrl, Error> {
        let bad = |why: &str| {
            Error::Config(format!("attach_url is not a rendezvous URL ({why}); expected rendezvous://HOST:PORT/SECRET"))
        };
        let rest = url.strip_prefix("rendezvous://").ok_or_else(|| bad("wrong scheme"))?;
        let (authority, secret) = rest.split_once('/').ok_or_else(|| bad("no secret"))?;
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        if host.is_empty() || secret.is_empty() {
            return Err(bad("empty host or secret"));
        }
        Ok(AttachUrl { host: host.trim_matches(['[', ']']).to_string(), port, secret: secret.to_string() })
    }
}

/// An attached dyno session.
pub struct Rendezvous {
    stream: StreamOwned<ClientConnection, TcpStream>,
    /// The banner line the rendezvous sent (normally `rendezvous`).
    pub banner: String,
    buffered: Vec<u8>,
}

impl std::fmt::Debug for Rendezvous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendezvous").field("banner", &self.banner).finish()
    }
}

/// Connects, authenticates with the secret and reads the banner.
pub fn attach(url: &AttachUrl, connect_timeout: Duration) -> Result<Rendezvous, Error> {
    let target = format!("{}:{}", url.host, url.port);
    let fail = |detail: String| Error::Transport {
        request: format!("attach to rendezvous {target}"),
        detail,
        attempts: 1,
        not_retried_unsafe: false,
    };
    let config = tls_roots::client_config().map_err(Error::Config)?;
    let name = ServerName::try_from(url.host.clone())
        .map_err(|e| Error::Config(format!("rendezvous host `{}`: {e}", url.host)))?;
    let conn = ClientConnection::new(Arc::new(config), name).map_err(|e| fail(format!("TLS: {e}")))?;
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve: {e}")))?
        .next()
        .ok_or_else(|| fail("no address".into()))?;
    let tcp =
        TcpStream::connect_timeout(&addr, connect_timeout).map_err(|e| fail(format!("could not connect: {e}")))?;
    tcp.set_read_timeout(Some(connect_timeout)).ok();
    let mut stream = StreamOwned::new(conn, tcp);
    stream
        .write_all(format!("{}\r\n", url.secret).as_bytes())
        .and_then(|_| stream.flush())
        .map_err(|e| fail(tls_detail(e)))?;
    // The first line is the banner; it is not the command's output.
    let mut reader = io::BufReader::new(&mut stream);
    let mut banner = String::new();
    match reader.read_line(&mut banner) {
        Ok(_) => {}
        // Closed before a banner: handled below with the likely cause.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => banner.clear(),
        Err(e) => return Err(fail(tls_detail(e))),
    }
    let buffered = reader.buffer().to_vec();
    if banner.is_empty() {
        return Err(fail("the rendezvous closed the connection before its banner (wrong or used secret?)".into()));
    }
    stream.sock.set_read_timeout(None).ok();
    Ok(Rendezvous { stream, banner: banner.trim_end().to_string(), buffered })
}

fn tls_detail(e: io::Error) -> String {
    match e.get_ref() {
        Some(inner) => format!("TLS: {inner}"),
        None => e.to_string(),
    }
}

impl Rendezvous {
    /// Limits how long one `read` blocks (to check for Ctrl-C between reads).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.stream.sock.set_read_timeout(t)
    }

    /// Tells the dyno its stdin is finished (what the Heroku CLI sends when stdin is not a terminal).
    pub fn send_eof(&mut self) -> io::Result<()> {
        self.stream.write_all(b"\x04")?;
        self.stream.flush()
    }
}

impl Read for Rendezvous {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.buffered.is_empty() {
            let n = buf.len().min(self.buffered.len());
            buf[..n].copy_from_slice(&self.buffered[..n]);
            self.buffered.drain(..n);
            return Ok(n);
        }
        match self.stream.read(buf) {
            // A peer that closes without close_notify has still ended the stream.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }
}

impl Write for Rendezvous {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Splits a dyno's output stream into lines for display and finds the exit-status marker,
/// also when it arrives split across reads.
#[derive(Debug, Default)]
pub struct OutputScanner {
    partial: Vec<u8>,
    /// The status from the marker, once seen.
    pub exit_status: Option<i32>,
}

impl OutputScanner {
    /// Feeds bytes; returns the complete lines (without the marker line), CRLF normalised.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(pos) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r']).to_string();
            if let Some(code) = self.marker(&text) {
                self.exit_status = Some(code);
            } else {
                lines.push(text);
            }
        }
        lines
    }

    /// What is left when the stream ends (a last line without a newline).
    pub fn finish(&mut self) -> Option<String> {
        if self.partial.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).trim_end_matches('\r').to_string();
        match self.marker(&text) {
            Some(code) => {
                self.exit_status = Some(code);
                None
            }
            None => Some(text),
        }
    }

    fn marker(&self, line: &str) -> Option<i32> {
        line.split_once(EXIT_MARKER).and_then(|(_, rest)| rest.trim().parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attach_urls() {
        let u = AttachUrl::parse("rendezvous://rendezvous.runtime.heroku.com:5000/abc123?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.secret.as_str()), ("rendezvous.runtime.heroku.com", 5000, "abc123?x=1"));
        for bad in
            ["https://x:5000/abc", "rendezvous://x/abc", "rendezvous://x:notaport/abc", "rendezvous://x:5000/", ""]
        {
            assert!(AttachUrl::parse(bad).unwrap_err().to_string().contains("not a rendezvous URL"), "{bad}");
        }
    }

    #[test]
    fn the_marker_is_found_even_split_across_reads_and_never_shown() {
        let mut s = OutputScanner::default();
        let mut lines = s.feed(b"== 20261122 AddNickname: migrating\r\n-- add_column(:users");
        lines.extend(s.feed(b", :nickname)\r\n\xef\xbf\xbf heroku-command-"));
        lines.extend(s.feed(b"exit-status: 1\r\n"));
        assert_eq!(lines, vec!["== 20261122 AddNickname: migrating", "-- add_column(:users, :nickname)"]);
        assert_eq!(s.exit_status, Some(1));
        assert_eq!(
            with_exit_marker("rake db:migrate"),
            "(rake db:migrate\n); s=$?; echo \"\u{FFFF} heroku-command-exit-status: $s\"; exit $s"
        );
    }
}
