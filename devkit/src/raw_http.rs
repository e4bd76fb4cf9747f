//! A raw HTTP/1.1 client for tests that need the bytes on the wire: one request per connection
//! (`Connection: close`), the answer read to EOF.
//!
//! Every part of a request is named by a method, so a host cannot be passed as a method:
//!
//! ```no_run
//! use canvid_devkit::raw_http::Request;
//! # let port = 8080;
//! let r = Request::get("/video")
//!     .host("rrkah-fqaaa-aaaaa-aaaaq-cai.localhost:8080")
//!     .header("Range", "bytes=0-99")
//!     .send(port);
//! assert_eq!(r.status, 206);
//! ```
//!
//! Test support: I/O errors and malformed answers panic.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One request to `127.0.0.1:<port>`.
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    path: String,
    host: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Duration,
}

impl Request {
    /// `method` (`GET`, `POST`, ...) on `path` (starting with `/`).
    pub fn new(method: &str, path: &str) -> Self {
        assert!(
            !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()),
            "{method:?} is not an HTTP method"
        );
        assert!(path.starts_with('/'), "{path:?} is not a request path");
        Request {
            method: method.into(),
            path: path.into(),
            host: None,
            headers: Vec::new(),
            body: None,
            timeout: Duration::from_secs(120),
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub fn head(path: &str) -> Self {
        Self::new("HEAD", path)
    }

    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    /// The `Host` header; `127.0.0.1:<port>` when not given.
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.into());
        self
    }

    /// One more header line.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Several header lines.
    pub fn headers(mut self, headers: &[(&str, &str)]) -> Self {
        for (name, value) in headers {
            self = self.header(name, value);
        }
        self
    }

    /// A body, sent with its `Content-Length` (without a body, no `Content-Length` is sent).
    pub fn body(mut self, body: &[u8]) -> Self {
        self.body = Some(body.to_vec());
        self
    }

    /// How long to wait for each read of the answer (default 120 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The request's bytes as sent to `port`.
    pub fn to_bytes(&self, port: u16) -> Vec<u8> {
        let host = self
            .host
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{port}"));
        let mut head = format!("{} {} HTTP/1.1\r\nHost: {host}\r\n", self.method, self.path);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = &self.body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_deref().unwrap_or_default());
        bytes
    }

    /// Sends the request to `127.0.0.1:<port>` and reads the answer to EOF.
    pub fn send(&self, port: u16) -> Response {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        s.set_read_timeout(Some(self.timeout)).unwrap();
        s.write_all(&self.to_bytes(port))
            .unwrap_or_else(|e| panic!("send {} {}: {e}", self.method, self.path));
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("read the answer to {} {}: {e}", self.method, self.path));
        Response::parse(&raw)
    }
}

/// An HTTP/1.1 answer.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// The status line and the header lines, as received (without the blank line).
    pub head: String,
    /// Header names and values, trimmed, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body; a `Transfer-Encoding: chunked` body is decoded.
    pub body: Vec<u8>,
}

impl Response {
    /// Parses a whole answer (head, blank line, body to EOF).
    pub fn parse(raw: &[u8]) -> Response {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer: no end of the head");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("an HTTP status line: {head:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        let chunked = headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        });
        if chunked {
            body = dechunk(&body);
        }
        Response {
            status,
            head,
            headers,
            body,
        }
    }

    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes a `Transfer-Encoding: chunked` body.
pub fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size_line = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("a chunk size: {size_line:?}"));
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn the_request_names_every_part() {
        let r = Request::post("/api/v2/status")
            .host("example.localhost:1")
            .header("Content-Type", "application/cbor")
            .body(b"abc")
            .to_bytes(9);
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "POST /api/v2/status HTTP/1.1\r\nHost: example.localhost:1\r\n\
             Content-Type: application/cbor\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        );
        let r = Request::get("/").to_bytes(9);
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:9\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    #[should_panic(expected = "is not an HTTP method")]
    fn a_host_in_place_of_the_method_is_refused() {
        Request::new("x.localhost:8080", "/");
    }

    #[test]
    fn answers_are_parsed_and_chunked_bodies_decoded() {
        let r = Response::parse(
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-4/10\r\n\
              transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        );
        assert_eq!(r.status, 206);
        assert_eq!(r.header("content-range"), Some("bytes 0-4/10"));
        assert_eq!(r.body, b"abcde");
        assert!(r.head.starts_with("HTTP/1.1 206"));
    }

    #[test]
    fn a_round_trip_over_a_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0; 1024];
            while !got.ends_with(b"\r\n\r\nhi") {
                let n = c.read(&mut buf).unwrap();
                assert!(n > 0, "request cut short: {got:?}");
                got.extend_from_slice(&buf[..n]);
            }
            c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
            got
        });
        let r = Request::post("/x").body(b"hi").send(port);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        let sent = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(sent.starts_with("POST /x HTTP/1.1\r\n"), "{sent}");
    }
}
