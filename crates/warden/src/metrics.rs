//! `warden run`'s Prometheus endpoint: `GET /metrics` in the text exposition format 0.0.4,
//! served on loopback by a small HTTP/1.1 responder on its own thread (no HTTP library).
//!
//! Off unless `metrics-listen` (config) / `--metrics-listen` / `WARDEN_METRICS_LISTEN` names an
//! address; an address that is not loopback is refused unless `metrics-allow-remote = true`
//! (or `--metrics-allow-remote`): the counters say when the node pays and how often the policy
//! refuses, which is nobody else's business.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `warden_requests_total{msg_type,name}` | counter | requests answered or refused, by hsmd message type |
//! | `warden_refusals_total{rule}` | counter | refusals, by the rule's tag (`node-permission` for a permission refusal) |
//! | `warden_request_errors_total` | counter | requests failed otherwise (malformed, not initialised, …) |
//! | `warden_request_duration_seconds` | histogram | time to answer a request |
//! | `warden_channels` | gauge | channels served since `warden run` started |
//! | `warden_store_head_sequence` | gauge | sequence number of the store's signed head |
//! | `warden_link_up` | gauge | 1 while the link to the proxy is up |
//! | `warden_link_reconnects_total` | counter | times the link came up again after the first |
//!
//! The responder answers one connection at a time, reads at most [`MAX_REQUEST`] bytes of
//! request head with a short timeout, answers `GET /metrics` (200), any other path (404),
//! any other method (405) or a malformed or oversized request (400 / 431), and closes the
//! connection. Nothing it reads can make it panic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::CliError;

/// The largest request head read (request line and headers).
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// The upper bounds of the latency histogram's buckets, in seconds (`+Inf` follows).
pub const BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The endpoint's address: `flag` (the command line or the environment) over `file` (the
/// config), `None` when neither names one. A non-loopback address needs `allow_remote`.
pub fn listen_addr(
    flag: Option<&str>,
    file: Option<&str>,
    allow_remote: bool,
) -> Result<Option<SocketAddr>, CliError> {
    let Some(text) = flag.or(file).map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let addr: SocketAddr = text.parse().map_err(|_| {
        CliError::new(format!(
            "metrics-listen {text:?} is not an IP:PORT address (for example 127.0.0.1:9464)"
        ))
    })?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(CliError::new(format!(
            "metrics-listen {addr} is not a loopback address: the metrics would be open to the \
             network. Use 127.0.0.1 (and a scraper on this host, or an SSH tunnel), or set \
             metrics-allow-remote = true if that is what you want"
        )));
    }
    Ok(Some(addr))
}

#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket (not cumulative), then the `+Inf` overflow.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

/// The counters `warden run` keeps for the endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    /// By message type: its CSV name (if known) and count.
    requests: Mutex<BTreeMap<u16, (&'static str, u64)>>,
    refusals: Mutex<BTreeMap<String, u64>>,
    errors: AtomicU64,
    latency: Mutex<Histogram>,
    link_up: AtomicBool,
    connects: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the daemon knows at scrape time, beyond the counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    /// Channels served since start.
    pub channels: u64,
    /// The store head's sequence number, once the signer is initialised.
    pub head_seq: Option<u64>,
}

/// The CSV name of request type `t` (decoding `body`, only the first time a type is seen).
fn name_of(body: &[u8]) -> &'static str {
    warden_wire::msg::Request::decode(body).map(|r| r.name()).unwrap_or("")
}

impl Metrics {
    /// Counts one request of `body`'s type that took `elapsed`.
    pub fn request(&self, body: &[u8], elapsed: Duration) {
        let t = warden_wire::frame::peek_type(body).unwrap_or(0);
        {
            let mut requests = lock(&self.requests);
            let entry = requests.entry(t).or_insert_with(|| (name_of(body), 0));
            entry.1 = entry.1.saturating_add(1);
        }
        let secs = elapsed.as_secs_f64();
        let mut h = lock(&self.latency);
        let bucket = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        if let Some(c) = h.counts.get_mut(bucket) {
            *c = c.saturating_add(1);
        }
        h.sum += secs;
        h.count = h.count.saturating_add(1);
    }

    /// Counts a refusal by rule `tag`.
    pub fn refused(&self, tag: &str) {
        let mut r = lock(&self.refusals);
        let n = r.entry(tag.to_owned()).or_default();
        *n = n.saturating_add(1);
    }

    /// Counts a request that failed for another reason than a refusal.
    pub fn failed(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the link going up or down.
    pub fn link(&self, up: bool) {
        self.link_up.store(up, Ordering::SeqCst);
        if up {
            self.connects.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The exposition text (format 0.0.4).
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(2048);
        let _ = writeln!(
            out,
            "# HELP warden_requests_total Requests from the proxy answered or refused, by hsmd \
             message type.\n# TYPE warden_requests_total counter"
        );
        for (t, (name, n)) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "warden_requests_total{{msg_type=\"{t}\",name=\"{}\"}} {n}",
                escape(name)
            );
        }
        let _ = writeln!(
            out,
            "# HELP warden_refusals_total Requests refused, by the rule's tag.\n# TYPE \
             warden_refusals_total counter"
        );
        for (rule, n) in lock(&self.refusals).iter() {
            let _ = writeln!(out, "warden_refusals_total{{rule=\"{}\"}} {n}", escape(rule));
        }
        let _ = writeln!(
            out,
            "# HELP warden_request_errors_total Requests that failed otherwise than by a \
             refusal.\n# TYPE warden_request_errors_total counter\nwarden_request_errors_total \
             {}",
            self.errors.load(Ordering::Relaxed)
        );
        {
            let h = lock(&self.latency);
            let _ = writeln!(
                out,
                "# HELP warden_request_duration_seconds Time to answer a request.\n# TYPE \
                 warden_request_duration_seconds histogram"
            );
            let mut cumulative = 0u64;
            for (bound, n) in BUCKETS.iter().zip(h.counts.iter()) {
                cumulative = cumulative.saturating_add(*n);
                let _ = writeln!(
                    out,
                    "warden_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "warden_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n\
                 warden_request_duration_seconds_sum {}\n\
                 warden_request_duration_seconds_count {}",
                h.count, h.sum, h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP warden_channels Channels served since warden run started.\n# TYPE \
             warden_channels gauge\nwarden_channels {}",
            gauges.channels
        );
        if let Some(seq) = gauges.head_seq {
            let _ = writeln!(
                out,
                "# HELP warden_store_head_sequence Sequence number of the store's signed head.\n\
                 # TYPE warden_store_head_sequence gauge\nwarden_store_head_sequence {seq}"
            );
        }
        let connects = self.connects.load(Ordering::SeqCst);
        let _ = writeln!(
            out,
            "# HELP warden_link_up Whether the link to the proxy is up.\n# TYPE warden_link_up \
             gauge\nwarden_link_up {}\n# HELP warden_link_reconnects_total Times the link came \
             up again after the first.\n# TYPE warden_link_reconnects_total counter\n\
             warden_link_reconnects_total {}",
            u8::from(self.link_up.load(Ordering::SeqCst)),
            connects.saturating_sub(1)
        );
        out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// What renders the page at each scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Binds `addr` (errors are the caller's to report at start).
pub fn bind(addr: SocketAddr) -> Result<TcpListener, CliError> {
    TcpListener::bind(addr)
        .map_err(|e| CliError::new(format!("cannot listen on {addr} for the metrics: {e}")))
}

/// Serves the listener on a thread until `stopping` (checked between connections).
pub fn spawn(
    listener: TcpListener,
    render: Render,
    stopping: impl Fn() -> bool + Send + 'static,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        while !stopping() {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = answer(stream, &render);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    })?;
    Ok(())
}

/// Reads one request head and answers it.
fn answer(mut stream: TcpStream, render: &Render) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
        if head.len() > MAX_REQUEST {
            break false;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break head.windows(2).any(|w| w == b"\n\n");
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    };
    let (status, body) = if !complete && head.len() > MAX_REQUEST {
        ("431 Request Header Fields Too Large", String::from("request too large\n"))
    } else {
        route(&head, render)
    };
    let content_type = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()?;
    // Read what the client still sends (bounded) so that closing does not reset the
    // connection before it reads the answer.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut drained = 0usize;
    while drained < 8 * MAX_REQUEST {
        match stream.read(&mut buf) {
            Ok(n @ 1..) => drained += n,
            _ => break,
        }
    }
    Ok(())
}

/// The status line and body for request head `head`.
fn route(head: &[u8], render: &Render) -> (&'static str, String) {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return ("400 Bad Request", "bad request\n".into());
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return ("400 Bad Request", "bad request\n".into());
    };
    if !version.starts_with("HTTP/1.") {
        return ("400 Bad Request", "bad request\n".into());
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => ("200 OK", render()),
        (_, "/metrics") => ("405 Method Not Allowed", "only GET\n".into()),
        _ => ("404 Not Found", "not found: try /metrics\n".into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn listen_addr_refuses_remote_unless_allowed() {
        assert_eq!(listen_addr(None, None, false).unwrap(), None);
        let a = listen_addr(None, Some("127.0.0.1:9464"), false).unwrap().unwrap();
        assert_eq!(a.port(), 9464);
        assert!(listen_addr(Some("[::1]:1"), Some("x"), false).unwrap().is_some());
        let e = listen_addr(Some("0.0.0.0:9464"), None, false).unwrap_err().to_string();
        assert!(e.contains("not a loopback"), "{e}");
        assert!(listen_addr(Some("0.0.0.0:9464"), None, true).unwrap().is_some());
        assert!(listen_addr(Some("localhost"), None, false).is_err());
    }

    #[test]
    fn render_counts_and_histogram() {
        let m = Metrics::default();
        let body =
            warden_wire::Message::encode(&warden_wire::msg::SignMessage { msg: b"x".to_vec() })
                .unwrap();
        m.request(&body, Duration::from_millis(3));
        m.request(&body, Duration::from_secs(20));
        m.request(&[0xff], Duration::ZERO);
        m.refused("close-value");
        m.link(true);
        m.link(false);
        m.link(true);
        let text = m.render(&Gauges { channels: 2, head_seq: Some(7) });
        let t = <warden_wire::msg::SignMessage as warden_wire::Message>::TYPE;
        assert!(
            text.contains(&format!(
                "warden_requests_total{{msg_type=\"{t}\",name=\"hsmd_sign_message\"}} 2"
            )),
            "{text}"
        );
        assert!(text.contains("warden_requests_total{msg_type=\"0\",name=\"\"} 1"), "{text}");
        assert!(text.contains("warden_refusals_total{rule=\"close-value\"} 1"));
        assert!(text.contains("warden_request_duration_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("warden_request_duration_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("warden_request_duration_seconds_bucket{le=\"10\"} 2"));
        assert!(text.contains("warden_request_duration_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("warden_request_duration_seconds_count 3"));
        assert!(text.contains("warden_channels 2\n"));
        assert!(text.contains("warden_store_head_sequence 7\n"));
        assert!(text.contains("warden_link_up 1\n"));
        assert!(text.contains("warden_link_reconnects_total 1\n"));
    }

    #[test]
    fn the_responder_answers_get_metrics_only() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        spawn(listener, Arc::new(|| "warden_up 1\n".to_owned()), move || {
            stop.load(Ordering::SeqCst)
        })
        .unwrap();
        let ok = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("version=0.0.4"));
        assert!(ok.ends_with("\r\n\r\nwarden_up 1\n"), "{ok}");
        assert!(get(addr, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get(addr, b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(get(addr, b"garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
        assert!(get(addr, b"\xff\xfe \r\n\r\n").starts_with("HTTP/1.1 400"));
        let big = vec![b'a'; MAX_REQUEST + 2048];
        assert!(get(addr, &big).starts_with("HTTP/1.1 431"));
        // A client that sends nothing is dropped after the timeout; the next one is served.
        let _idle = TcpStream::connect(addr).unwrap();
        assert!(get(addr, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200"));
        stopping.store(true, Ordering::SeqCst);
    }
}
