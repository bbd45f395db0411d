//! The deliveries a sweep sends, and what came back, within a bound.

use std::io::{BufRead as _, BufReader, ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use crate::process::BOUND;

/// What one request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A response with this status.
    Status(u16),
    /// The connection closed (or was reset) before a response: Box
    /// retries.
    Closed,
    /// Nothing within [`BOUND`]: a hang.
    Hung,
}

impl Answer {
    /// A 2xx: the receiver promised the event is stored.
    pub fn acknowledged(self) -> bool {
        matches!(self, Self::Status(200..=299))
    }
}

/// One delivery: a signed V2 event, or a V1 callback.
#[derive(Debug, Clone)]
pub enum Item {
    V2 {
        /// Its event id (the inbox's key, with webhook `4133`).
        id: String,
        /// Its exact body.
        body: String,
    },
    V1 {
        /// Its `item_id`, which the inbox keeps as `source_id`.
        item_id: String,
        /// What the inbox must hold as its body: the query without the
        /// secret.
        stored: String,
    },
}

impl Item {
    /// A V2 `FILE.UPLOADED` event with id `id`.
    pub fn v2(id: &str) -> Self {
        let body = serde_json::json!({
            "type": "webhook_event",
            "id": id,
            "created_at": "2024-05-14T08:02:14-07:00",
            "trigger": "FILE.UPLOADED",
            "webhook": {"id": "4133", "type": "webhook"},
            "source": {"id": "f-1", "type": "file", "name": "a.txt"},
            "additional_info": []
        })
        .to_string();
        Self::V2 {
            id: id.to_owned(),
            body,
        }
    }

    /// A V1 `uploaded` callback for item `item_id`.
    pub fn v1(item_id: &str) -> Self {
        Self::V1 {
            item_id: item_id.to_owned(),
            stored: format!("event_type=uploaded&item_id={item_id}&item_type=file&item_name=a.txt"),
        }
    }

    /// Sends it to the receiver on `port` on a connection of its own
    /// (`v1`: the receiver's V1 path and secret).
    pub fn send(&self, port: u16, v1: Option<(&str, &str)>) -> Answer {
        self.send_within(port, v1, BOUND)
    }

    /// [`Item::send`], waiting up to `bound` for the answer.
    pub fn send_within(&self, port: u16, v1: Option<(&str, &str)>, bound: Duration) -> Answer {
        let request = match self {
            Self::V2 { body, .. } => {
                let delivery =
                    boxhook_testkit::Delivery::new(body.clone()).sent_at(chrono::Utc::now());
                raw_request(&delivery)
            }
            Self::V1 { stored, .. } => {
                let Some((path, secret)) = v1 else {
                    return Answer::Status(0);
                };
                format!("GET {path}?token={secret}&{stored} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
                    .into_bytes()
            }
        };
        exchange(port, &request, bound)
    }
}

/// `delivery` as raw HTTP/1.1 bytes for `/`.
fn raw_request(delivery: &boxhook_testkit::Delivery) -> Vec<u8> {
    let body = delivery.body();
    let mut request = b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\n".to_vec();
    for (name, value) in &delivery.headers() {
        if name != http::header::CONTENT_LENGTH {
            request.extend_from_slice(name.as_str().as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
    }
    request.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    request.extend_from_slice(&body);
    request
}

/// Sends `request` on a new connection and reads the status line, within
/// `bound` in all.
fn exchange(port: u16, request: &[u8], bound: Duration) -> Answer {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return Answer::Closed;
    };
    if stream.set_read_timeout(Some(bound)).is_err() || stream.write_all(request).is_err() {
        return Answer::Closed;
    }
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Answer::Closed,
        Ok(_) => line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .map_or(Answer::Closed, Answer::Status),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Answer::Hung,
        Err(_) => Answer::Closed,
    }
}

/// Reads a request's head and body from `stream` (for the double): the
/// body, or `None` when the peer went away or sent no Content-Length.
pub fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|n| n.trim().parse().ok())?;
    let mut body = vec![0_u8; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}
