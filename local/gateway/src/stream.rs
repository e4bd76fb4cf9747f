//! Streaming: a plain `GET` the canister answered with its first chunk (206) is completed with
//! `Range: bytes=N-` queries while the client reads, and sent as one 200; and the reply types
//! written back to tiny_http.

use candid::Principal;
use ic_http_certification::HttpRequest;
use std::io::{self, Read};

use crate::request::{header, Ctx};
use crate::Backend;

/// Chunks fetched for one streamed 206 answer before giving up (as the IC gateway bounds it).
const MAX_STREAM_CHUNKS: usize = 100_000;

/// `(start, end, total)` of a `Content-Range: bytes start-end/total` header.
pub fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, total) = (
        start.trim().parse().ok()?,
        end.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (start <= end && end < total).then_some((start, end, total))
}

/// Lazily fetches `Range: bytes=N-` chunks while the client reads.
pub(crate) struct Stream<B: Backend> {
    pub(crate) ctx: Ctx<B>,
    pub(crate) canister: Principal,
    pub(crate) request: HttpRequest<'static>,
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
    pub(crate) fetched: u64,
    pub(crate) total: u64,
    pub(crate) chunks: usize,
    /// Verify the continuation answers too (the IC's gateway does not yet; canvid certifies
    /// them, so the local gateway is stricter).
    pub(crate) verify: bool,
}

impl<B: Backend> Read for Stream<B> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.fetched >= self.total {
                return Ok(0);
            }
            if self.chunks >= MAX_STREAM_CHUNKS {
                return Err(io::Error::other("too many chunks"));
            }
            let mut headers: Vec<(String, String)> = self
                .request
                .headers()
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("range"))
                .cloned()
                .collect();
            headers.push(("Range".into(), format!("bytes={}-", self.fetched)));
            let mut request = self.request.clone();
            *request.headers_mut() = headers;
            let response = self
                .ctx
                .call(self.canister, &request, true, self.verify)
                .map_err(|(s, m)| io::Error::other(format!("{s}: {m}")))?;
            // Only a 206 continuing exactly where the previous chunk ended is accepted: anything
            // else would corrupt the stream silently.
            let ok = response.status_code().as_u16() == 206
                && header(response.headers(), "content-range")
                    .and_then(parse_content_range)
                    .is_some_and(|(s, e, t)| {
                        s == self.fetched
                            && t == self.total
                            && e - s + 1 == response.body().len() as u64
                    });
            if !ok || response.body().is_empty() {
                return Err(io::Error::other(format!(
                    "bad continuation at byte {}",
                    self.fetched
                )));
            }
            self.fetched += response.body().len() as u64;
            self.buf = response.body().to_vec();
            self.pos = 0;
            self.chunks += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

pub(crate) enum Body {
    Bytes(Vec<u8>),
    Stream(Box<dyn Read + Send>, u64),
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Body,
    /// HEAD: keep the canister's Content-Length (tiny_http sends no body for HEAD).
    pub(crate) head: bool,
}

impl Reply {
    pub(crate) fn error(status: u16, message: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: Body::Bytes(format!("{message}\n").into_bytes()),
            head: false,
        }
    }

    /// A 307 to `location` (the canister's own origin: [`crate::own_origin_redirect`]). 307
    /// rather than 308: both keep the method and body, but browsers cache a 308 as permanent,
    /// and a later server on the same loopback port (another gateway, dfx, PocketIC) may route
    /// that URL differently; 307 is asked again each time.
    pub(crate) fn redirect(location: String) -> Reply {
        Reply {
            status: 307,
            body: Body::Bytes(format!("see {location}\n").into_bytes()),
            headers: vec![
                ("location".into(), location),
                ("content-type".into(), "text/plain; charset=utf-8".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            head: false,
        }
    }

    pub(crate) fn into_tiny(self) -> tiny_http::Response<Box<dyn Read + Send>> {
        let (reader, len): (Box<dyn Read + Send>, Option<usize>) = match self.body {
            Body::Bytes(b) => {
                let len = b.len();
                (Box::new(io::Cursor::new(b)), Some(len))
            }
            Body::Stream(r, len) => (r, usize::try_from(len).ok()),
        };
        let mut headers = Vec::new();
        let mut head_length = None;
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case("content-length") {
                // tiny_http derives Content-Length from the body length, except for HEAD.
                head_length = v.parse::<usize>().ok();
                continue;
            }
            // A canister's header with a control character (CR/LF: response splitting) or a
            // name that is not a token is dropped, not written (security review L1).
            if !is_safe_header(n, v) {
                continue;
            }
            if let Ok(h) = tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()) {
                headers.push(h);
            }
        }
        let len = if self.head { head_length.or(len) } else { len };
        tiny_http::Response::new(
            tiny_http::StatusCode(self.status),
            headers,
            reader,
            len,
            None,
        )
        .with_chunked_threshold(usize::MAX)
    }
}

/// May this header be written to the wire as it is? The name must be an RFC 9110 token; the
/// value must not contain control characters (HTAB aside) or DEL: tiny_http writes both raw,
/// so a CR/LF would end the header and start another (or the body).
pub(crate) fn is_safe_header(name: &str, value: &str) -> bool {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let value_ok = value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    token && value_ok
}
