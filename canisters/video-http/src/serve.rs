//! Routing and response construction.
//!
//! [`plan`] turns (method, path, headers) into a [`Plan`]: status, headers, a body *reference*
//! (video bytes are read only once the plan is final) and, if the answer is one of the
//! pre-certified shapes, the [`CertSpec`] that names its certification-tree entry. The query
//! path, the update path and the certification-tree builder all use `plan`, so the response a
//! client gets is by construction the one that was certified.

use crate::certify::{CelKind, CertPath, CertSpec, Certifier, ChunkRange, RangeForm};
use crate::range::{self, RangeRequest};
use crate::{
    etag, GateFor, HttpRequest, HttpResponse, HttpUpdateRequest, NamedFile, VideoSource,
    VideoStatus, Viewer, MAX_BODY, METADATA_PATH, POSTER_PATH, VIDEO_PATHS,
};

pub(crate) const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
pub(crate) const NOT_FOUND_BODY: &str = "not found\n";
pub(crate) const UPLOADING_BODY: &str = "this video is still being uploaded\n";
/// The `Sec-Fetch-Dest` value of a `<video>` element's requests (set by the browser; page
/// scripts cannot set it).
pub(crate) const MEDIA_DEST: &str = "video";
/// Seconds a client should wait before asking again for a video that is still uploading.
pub(crate) const RETRY_AFTER_SECS: &str = "30";
pub(crate) const NO_TOKEN_BODY: &str =
    "a playback token is required to watch this video past its preview: see docs/access.md\n";
pub(crate) const DENIED_BODY: &str = "this playback token is not valid for this video (unknown, expired or revoked, or its viewer may no longer watch)\n";
/// The `WWW-Authenticate` challenge of the 401 (RFC 9110 §11.6.1 requires one): a bearer
/// token, which the viewer passes as the `token` query parameter.
pub(crate) const PLAYBACK_CHALLENGE: &str = "Bearer realm=\"canvid-playback\"";

/// Headers every answer carries (security review L1), certified with the rest: browsers must
/// take the `Content-Type` as it is (`nosniff`: no video or JSON is ever sniffed into HTML),
/// and whatever a browser renders from the canister's origin, e.g. an SVG poster opened as a
/// page or a `text/html` type stored by an older module, runs as a sandboxed document: no
/// script, a unique opaque origin (no access to the origin's storage or cookies). A media
/// element or `<img>` ignores the policy of what it loads, so playing and embedding work as
/// before; `sandbox` alone (no fetch directives) still lets a browser play a video opened as a
/// page.
pub const SECURITY_HEADERS: [(&str, &str); 2] = [
    ("x-content-type-options", "nosniff"),
    ("content-security-policy", "sandbox"),
];

/// CORS headers every answer carries, certified with the rest: an HLS player (hls.js, Shaka)
/// on another origin fetches playlists, segments and subtitles with `fetch`/XHR, which may read
/// an answer only if it allows that origin, and may read the headers it needs to follow ranges
/// only if they are exposed. `*` without credentials: the canister sets no cookies, and a
/// playback token rides in the URL, so no answer depends on the requesting origin (a `Vary:
/// Origin` would be needed otherwise) and every origin may read what any origin may.
pub const CORS_HEADERS: [(&str, &str); 2] = [
    ("access-control-allow-origin", "*"),
    (
        "access-control-expose-headers",
        "Content-Range, Content-Length, Accept-Ranges, ETag",
    ),
];

/// The CORS preflight's own headers (the 204 answer to `OPTIONS` at any path): a player's
/// `fetch` with a `Range` header that is not CORS-safelisted (`bytes=-n`, several ranges) or an
/// `If-None-Match` triggers one. A day's `max-age`: the answer never changes.
pub const PREFLIGHT_HEADERS: [(&str, &str); 3] = [
    ("access-control-allow-methods", "GET, HEAD, OPTIONS"),
    ("access-control-allow-headers", "Range, If-None-Match"),
    ("access-control-max-age", "86400"),
];

/// The `Allow` header of a 405.
pub(crate) const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    Empty,
    Static(&'static str),
    Bytes(Vec<u8>),
    /// Bytes whose SHA-256 is already known (the poster: no hashing in queries).
    Prehashed(Vec<u8>, [u8; 32]),
    /// Bytes `offset..offset+len` of the video file.
    Video {
        offset: u64,
        len: u64,
    },
    /// Bytes `offset..offset+len` of the named file at `path`.
    Named {
        path: String,
        offset: u64,
        len: u64,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub cert: Option<CertSpec>,
    /// May the query upgrade this answer to `http_request_update` when it is not certified?
    /// `false` for error answers (400, 405, odd `If-None-Match` forms): the update path
    /// would give the same error, paid by the canister, so the query serves them uncertified
    /// (the verified gateway domain then reports a verification failure, the raw domain the
    /// answer) and `inspect_message` refuses them as updates.
    pub upgradable: bool,
}

/// `headers` followed by [`SECURITY_HEADERS`] and [`CORS_HEADERS`].
fn with_security_headers(mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers.extend(
        SECURITY_HEADERS
            .iter()
            .chain(&CORS_HEADERS)
            .map(|(n, v)| h(n, *v)),
    );
    headers
}

impl Plan {
    fn new(status: u16, headers: Vec<(String, String)>, body: Body) -> Self {
        Plan {
            status,
            headers: with_security_headers(headers),
            body,
            cert: None,
            upgradable: true,
        }
    }

    /// Marks an error answer that is never worth an update call (see [`Plan::upgradable`]).
    fn never_upgraded(mut self) -> Self {
        self.upgradable = false;
        self
    }

    fn certified(
        mut self,
        path: CertPath,
        kind: CelKind,
        request_header: Option<(&'static str, String)>,
    ) -> Self {
        self.headers.push((
            ic_http_certification::CERTIFICATE_EXPRESSION_HEADER_NAME.to_ascii_lowercase(),
            kind.cel_string().to_string(),
        ));
        self.cert = Some(CertSpec {
            path,
            kind,
            request_header,
            chunk: None,
        });
        self
    }

    /// Marks a certified `Range` answer as the one for upload chunk `index` (≥ 1), so the
    /// query finds its certification by index instead of by value.
    fn for_chunk(mut self, index: u64, form: RangeForm) -> Self {
        if let Some(spec) = &mut self.cert {
            spec.chunk = Some(ChunkRange { index, form });
        }
        self
    }
}

fn h(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_string(), value.into())
}

/// The first header named `name` (case-insensitive).
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The request path without query string, percent-decoded as the certification verifier
/// decodes it. `None` for a URL that does not parse.
pub(crate) fn request_path(url: &str) -> Option<String> {
    HttpRequest::get(url.to_string()).build().get_path().ok()
}

/// The HTTP grid: upload chunks when they fit one body, else `MAX_BODY`-sized pieces.
pub(crate) fn grid(chunk_size: u64) -> u64 {
    if (1..=MAX_BODY).contains(&chunk_size) {
        chunk_size
    } else {
        MAX_BODY
    }
}

/// A file served with `Range` support: the main file or a named file.
pub(crate) struct Served {
    pub mime_type: String,
    pub size: u64,
    pub chunk_size: u64,
    pub digest: [u8; 32],
    /// `Some(path)` for a named file.
    pub named: Option<String>,
}

impl Served {
    fn body(&self, offset: u64, len: u64) -> Body {
        match &self.named {
            None => Body::Video { offset, len },
            Some(path) => Body::Named {
                path: path.clone(),
                offset,
                len,
            },
        }
    }
}

impl From<NamedFile> for Served {
    fn from(f: NamedFile) -> Self {
        Served {
            mime_type: f.mime_type,
            size: f.size,
            chunk_size: f.chunk_size,
            digest: f.digest,
            named: Some(f.path),
        }
    }
}

/// The named file at `path`, if the video is Ready (named files are served only from then on,
/// all together) and `path` is not one of the canister's own paths.
pub(crate) fn ready_named_file(path: &str, video: &dyn VideoSource) -> Option<NamedFile> {
    if VIDEO_PATHS.contains(&path) || path == METADATA_PATH || path == POSTER_PATH {
        return None;
    }
    if !video.named_files_ready() {
        return None;
    }
    video.named_file(path).filter(|f| f.path == path)
}

/// Is this a media element's request that may be answered from an earlier byte? Safari's media
/// stack (AVFoundation, whose requests carry `X-Playback-Session-Id`) is left out: it was not
/// tested with such answers.
fn is_media_element_request(headers: &[(String, String)]) -> bool {
    header(headers, "sec-fetch-dest") == Some(MEDIA_DEST)
        && header(headers, "x-playback-session-id").is_none()
}

/// Does `If-None-Match` (a list of entity tags or `*`) match `etag`? Weak comparison, as
/// RFC 9110 §13.1.2 prescribes for If-None-Match.
fn if_none_match_matches(value: &str, etag: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Methods other than GET, HEAD and OPTIONS whose 405 answer (to a request without body) is
/// pre-certified at the canister's own paths, so that the most common wrong methods get a
/// verifiable answer instead of an update call (security review M2). Any other method, and any
/// at a named file's path (4 entries per file saved), gets the same 405, uncertified: it is
/// never upgraded, so it costs the canister a query either way.
pub(crate) const CERTIFIED_405_METHODS: [&str; 4] = ["POST", "PUT", "DELETE", "PATCH"];

/// Where the certified answers for `path` live: its exact entry when the tree has one, else
/// the wildcard every unknown path falls back on. Must agree with what the certifier inserts.
pub(crate) fn cert_path(path: &str, video: &dyn VideoSource) -> CertPath {
    let exact = VIDEO_PATHS.contains(&path)
        || path == METADATA_PATH
        || (path == POSTER_PATH && video.poster().is_some())
        || ready_named_file(path, video).is_some();
    if exact {
        CertPath::Exact(path.to_string())
    } else {
        CertPath::NotFound
    }
}

/// Decides the answer to a request. `method` is compared case-sensitively, as HTTP methods are.
/// `gate` says which gate applies at the request's path (`None` everywhere for a public video).
///
/// Every answer to GET or HEAD that a client can get from a finished video has a
/// certification-tree entry, except `Range` answers that a pre-certified shape cannot hold
/// (docs/http.md, "What is not certified").
pub(crate) fn plan(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    video: &dyn VideoSource,
    gate: GateFor,
) -> Plan {
    let Some(path) = request_path(url) else {
        return Plan::new(
            400,
            vec![h("content-type", "text/plain; charset=utf-8")],
            Body::Static("bad url\n"),
        )
        .never_upgraded();
    };
    let is_head = match method {
        "GET" => false,
        "HEAD" => true,
        "OPTIONS" => {
            // The CORS preflight, at any path (a 404 answers the real request, with CORS headers
            // so the page can see it). Fully certified with its method, not response-only: a
            // response-only 204 at a path could be served for a GET of it and still verify.
            let headers = PREFLIGHT_HEADERS.iter().map(|(n, v)| h(n, *v)).collect();
            return Plan::new(204, headers, Body::Empty)
                .certified(cert_path(&path, video), CelKind::Plain, None)
                .never_upgraded();
        }
        _ => {
            let plan = Plan::new(
                405,
                vec![
                    h("allow", ALLOWED_METHODS),
                    h("content-type", "text/plain; charset=utf-8"),
                ],
                Body::Static("method not allowed\n"),
            )
            .never_upgraded();
            return if CERTIFIED_405_METHODS.contains(&method) {
                plan.certified(cert_path(&path, video), CelKind::Plain, None)
            } else {
                plan
            };
        }
    };

    if let Some(file) = ready_named_file(&path, video) {
        let plan = video_plan(is_head, path.clone(), headers, Some(file.into()));
        // A named file has no preview: a gate refuses any answer that carries its bytes.
        return match (gate.at(&path), &plan.body) {
            (Some(gate), Body::Named { len, .. }) if gate.viewer != Viewer::Allowed && *len > 0 => {
                refusal(path, gate.viewer)
            }
            _ => plan,
        };
    }
    if VIDEO_PATHS.contains(&path.as_str()) {
        let served = video
            .info()
            .filter(|i| i.status == VideoStatus::Ready)
            .map(|info| Served {
                mime_type: info.mime_type,
                size: info.size,
                chunk_size: info.chunk_size,
                digest: info.digest,
                named: None,
            });
        let plan = video_plan(is_head, path.clone(), headers, served);
        let gate = gate.at(&path);
        // The gate judges the answer, not the request: whatever Range, If-None-Match or
        // realignment made of it, only an answer carrying bytes past the preview is refused
        // (HEAD, 304, 416 and 503 carry none).
        // A GET without Range asks for the whole file: its first answer carries chunk 0 only,
        // but the gateway then fetches the rest and would fail midway at the preview's end, so
        // it is refused at once unless the whole file is public.
        let whole_file = !is_head && header(headers, "range").is_none();
        let size = video.info().map_or(0, |i| i.size);
        return match (&gate, &plan.body) {
            (Some(gate), Body::Video { offset, len })
                if gate.refuses(*offset, *len) || (whole_file && gate.refuses(0, size)) =>
            {
                refusal(path, gate.viewer)
            }
            _ => plan,
        };
    }
    if path == METADATA_PATH {
        let json = video.metadata_json().into_bytes();
        return Plan::new(
            200,
            vec![
                h("content-type", "application/json; charset=utf-8"),
                h("content-length", json.len().to_string()),
                // Metadata is editable: caches must revalidate.
                h("cache-control", "no-cache"),
            ],
            if is_head {
                Body::Empty
            } else {
                Body::Bytes(json)
            },
        )
        .certified(CertPath::Exact(path), CelKind::Plain, None);
    }
    if path == POSTER_PATH {
        if let Some(poster) = video.poster() {
            return Plan::new(
                200,
                vec![
                    h("content-type", poster.mime_type),
                    h("content-length", poster.bytes.len().to_string()),
                    h("cache-control", "no-cache"),
                ],
                if is_head {
                    Body::Empty
                } else {
                    Body::Prehashed(poster.bytes, poster.sha256)
                },
            )
            .certified(CertPath::Exact(path), CelKind::Plain, None);
        }
    }
    not_found(is_head)
}

/// The answer to a GET of a gated video's bytes past its preview, for a `viewer` other than
/// [`Viewer::Allowed`]: 401 without token, 403 with one that does not let its viewer watch.
///
/// Certified response-only at the exact video path (the body says nothing about the request,
/// so any GET of the path may get it), when the certifier knows the video is gated
/// (`Certifier::certify_gate`). Never upgraded: the update path would give the same refusal
/// at the canister's cost. `no-store`: the same URL answers with the video once the viewer
/// may watch (a new token, a payment), so no cache may keep the refusal.
pub(crate) fn refusal(path: String, viewer: Viewer) -> Plan {
    let mut headers = vec![
        h("content-type", "text/plain; charset=utf-8"),
        h("cache-control", "no-store"),
    ];
    let (status, body) = match viewer {
        Viewer::NoToken => {
            headers.push(h("www-authenticate", PLAYBACK_CHALLENGE));
            (401, NO_TOKEN_BODY)
        }
        // `Allowed` is never refused (`Gate::refuses`); if asked, the refusal that gives
        // nothing away is the safe one.
        Viewer::Denied | Viewer::Allowed => (403, DENIED_BODY),
    };
    Plan::new(status, headers, Body::Static(body))
        .certified(CertPath::Exact(path), CelKind::ResponseOnly, None)
        .never_upgraded()
}

fn not_found(is_head: bool) -> Plan {
    // One wildcard entry per method covers every unknown path. The verifier only accepts a
    // wildcard when the witness proves no more specific path exists, so it cannot stand in for
    // `/video` (whose exact entries exist). Response-only: the GET answer could be served to a
    // HEAD request and the reverse, both of which are true answers.
    Plan::new(
        404,
        vec![
            h("content-type", "text/plain; charset=utf-8"),
            h("cache-control", "no-cache"),
        ],
        if is_head {
            Body::Empty
        } else {
            Body::Static(NOT_FOUND_BODY)
        },
    )
    .certified(CertPath::NotFound, CelKind::ResponseOnly, None)
}

/// The answer to GET or HEAD of a file served with `Range` support: the main file (`None`
/// while it is not Ready: 503) or a named file.
fn video_plan(
    is_head: bool,
    path: String,
    headers: &[(String, String)],
    served: Option<Served>,
) -> Plan {
    let info = match served {
        Some(info) => info,
        None => {
            // 503 rather than 409: the resource exists and will be served; the client may retry.
            return Plan::new(
                503,
                vec![
                    h("content-type", "text/plain; charset=utf-8"),
                    h("cache-control", "no-store"),
                    h("retry-after", RETRY_AFTER_SECS),
                ],
                if is_head {
                    Body::Empty
                } else {
                    Body::Static(UPLOADING_BODY)
                },
            )
            .certified(CertPath::Exact(path), CelKind::ResponseOnly, None);
        }
    };
    let size = info.size;
    let grid = grid(info.chunk_size);
    let tag = etag(&info.digest);
    let mut common = vec![
        h("content-type", info.mime_type.clone()),
        h("accept-ranges", "bytes"),
        h("etag", tag.clone()),
        h("cache-control", CACHE_IMMUTABLE),
    ];

    // If-None-Match is evaluated before Range (RFC 9110 §13.2.2).
    if let Some(inm) = header(headers, "if-none-match") {
        if if_none_match_matches(inm, &tag) {
            let plan = Plan::new(
                304,
                vec![h("etag", tag.clone()), h("cache-control", CACHE_IMMUTABLE)],
                Body::Empty,
            );
            // Only the exact form a browser echoes back (`"<hex>"`) is pre-certified; the other
            // matching forms (`*`, `W/…`, lists) get the same 304, uncertified.
            return if inm == tag {
                plan.certified(
                    CertPath::Exact(path),
                    CelKind::IfNoneMatch,
                    Some(("if-none-match", tag)),
                )
            } else {
                plan.never_upgraded()
            };
        }
    }

    // RFC 9110 §14.2: range handling is defined for GET only, so HEAD ignores `Range` and
    // answers with the whole representation's headers (its one certified answer).
    let range_header = if is_head {
        None
    } else {
        header(headers, "range")
    };
    match range::evaluate(range_header, size) {
        RangeRequest::Whole => {
            if is_head {
                // HEAD of the whole video: 200 with the full length (what `curl -I` expects);
                // the 206-first-chunk answer of GET is a gateway streaming device, not a
                // property of the resource.
                common.push(h("content-length", size.to_string()));
                return Plan::new(200, common, Body::Empty).certified(
                    CertPath::Exact(path),
                    CelKind::Plain,
                    None,
                );
            }
            // A named file that fits one body is answered whole even when it spans several
            // upload chunks: HLS players fetch segments and playlists without `Range` and take
            // a 206 as the whole file. The main file keeps its chunk-sized first answer.
            let whole = if info.named.is_some() {
                size <= MAX_BODY
            } else {
                size <= grid
            };
            let plan = if whole {
                common.push(h("content-length", size.to_string()));
                Plan::new(200, common, info.body(0, size))
            } else {
                common.push(h("content-range", format!("bytes 0-{}/{}", grid - 1, size)));
                common.push(h("content-length", grid.to_string()));
                Plan::new(206, common, info.body(0, grid))
            };
            plan.certified(CertPath::Exact(path), CelKind::Plain, None)
        }
        RangeRequest::Unsatisfiable => Plan::new(
            416,
            vec![
                h("content-range", format!("bytes */{size}")),
                h("accept-ranges", "bytes"),
                h("content-type", "text/plain; charset=utf-8"),
            ],
            Body::Static("range not satisfiable\n"),
        ),
        // Only GET gets here with a range (HEAD ignores it above).
        // 416 stays on the update path (a client resuming a download past the end gets the
        // real answer on the verified domain), with the other uncertifiable ranges.
        RangeRequest::Satisfiable { start, end } => {
            // A `<video>` element's request that reaches at least to the end of the grid chunk
            // holding `start` (a seek, `bytes=B-`, or filling a gap before bytes it has) gets
            // that whole chunk: the answer may start before the byte asked for, which
            // Chromium's and Firefox's media loaders accept (they place the bytes by
            // `Content-Range`), and it is pre-certified, so it costs a query, not an update.
            // Other clients get exactly what they asked for (docs/http.md, "Seeking").
            let chunk_first = start / grid * grid;
            let realign =
                end >= (chunk_first + grid - 1).min(size - 1) && is_media_element_request(headers);
            let start = if realign { chunk_first } else { start };
            // Cut the body at the end of the grid chunk holding `start`: at most one grid chunk
            // (≤ MAX_BODY), and the client's next request starts on the grid, where answers
            // are pre-certified.
            let chunk_last = ((start / grid + 1) * grid - 1).min(size - 1);
            let end = end.min(chunk_last);
            let len = end - start + 1;
            common.push(h("content-range", format!("bytes {start}-{end}/{size}")));
            common.push(h("content-length", len.to_string()));
            let plan = Plan::new(206, common, info.body(start, len));
            let whole_chunk = start % grid == 0 && end == chunk_last;
            if !whole_chunk {
                return plan;
            }
            if start == 0 {
                // The first chunk is certified without request certification, so `bytes=0-`
                // (the first request of Chrome and Firefox media players) verifies too.
                return plan.certified(CertPath::Exact(path), CelKind::Plain, None);
            }
            // Only the exact header strings of the forms are certified: the request hash covers
            // the header's bytes, so `bytes=N-` and `bytes= N-` are different requests.
            let value = range_header.unwrap_or_default();
            let form = RangeForm::BY_HEADER
                .into_iter()
                .find(|f| value == f.header_value(start, end, size));
            match form {
                Some(form) => plan
                    .certified(
                        CertPath::Exact(path),
                        CelKind::Range,
                        Some(("range", value.to_string())),
                    )
                    .for_chunk(start / grid, form),
                None if realign => plan
                    .certified(
                        CertPath::Exact(path),
                        CelKind::Media,
                        Some(("sec-fetch-dest", MEDIA_DEST.to_string())),
                    )
                    .for_chunk(start / grid, RangeForm::Media),
                None => plan,
            }
        }
    }
}

/// Materialises a plan (reads the video bytes) into a response without certificate header.
fn materialise(plan: &Plan, video: &dyn VideoSource) -> HttpResponse<'static> {
    let body = match &plan.body {
        Body::Empty => Vec::new(),
        Body::Static(s) => s.as_bytes().to_vec(),
        Body::Bytes(b) | Body::Prehashed(b, _) => b.clone(),
        Body::Video { offset, len } => match video.read(*offset, *len) {
            Ok(bytes) if bytes.len() as u64 == *len => bytes,
            Ok(bytes) => {
                return internal_error(&format!("short read: {} of {len} bytes", bytes.len()))
            }
            Err(e) => return internal_error(&e.to_string()),
        },
        Body::Named { path, offset, len } => match video.read_named(path, *offset, *len) {
            Ok(bytes) if bytes.len() as u64 == *len => bytes,
            Ok(bytes) => {
                return internal_error(&format!("short read: {} of {len} bytes", bytes.len()))
            }
            Err(e) => return internal_error(&e.to_string()),
        },
    };
    build(plan.status, plan.headers.clone(), body)
}

fn build(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> HttpResponse<'static> {
    let status = ic_http_certification::StatusCode::from_u16(status)
        .unwrap_or(ic_http_certification::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::builder()
        .with_status_code(status)
        .with_headers(headers)
        .with_body(body)
        .build()
}

fn internal_error(message: &str) -> HttpResponse<'static> {
    build(
        500,
        with_security_headers(vec![
            h("content-type", "text/plain; charset=utf-8"),
            h("cache-control", "no-store"),
        ]),
        format!("internal error: {message}\n").into_bytes(),
    )
}

/// Whether a request is worth an `http_request_update` call, for the canister's
/// `inspect_message`: ingress is paid by the receiving canister, so the update path takes only
/// what the query could not answer (security review M2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateNeed {
    /// The query answers it (a certified answer, or an error served uncertified): as an
    /// update it would only cost the canister cycles. Refuse it.
    None,
    /// A certified shape whose entry is not in the tree yet (the tree is still being built
    /// after `finish_upload` or an upgrade, or the metadata changed since the last
    /// certification): until it is, the update path is how clients get this answer.
    NotCertifiedYet,
    /// An answer no pre-certified entry can hold (a `Range` that starts off the chunk grid or
    /// ends inside a chunk, from a client other than a media element; a 416): only the update path
    /// answers it on the verified gateway domain. Anyone can send such requests, so the
    /// canister bounds how many it accepts.
    Uncertifiable,
}

/// What `http_request` does with a request.
enum Decision {
    Certified(Plan, String),
    /// Why, and the body size of the update path's answer.
    Upgrade(UpdateNeed, u64),
    Uncertified(Plan),
}

impl Body {
    /// Bytes of the body (video bodies are not read).
    fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Static(s) => s.len() as u64,
            Body::Bytes(b) | Body::Prehashed(b, _) => b.len() as u64,
            Body::Video { len, .. } | Body::Named { len, .. } => *len,
        }
    }
}

fn decide(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    video: &dyn VideoSource,
    gate: GateFor,
    certifier: &Certifier,
    data_certificate: &[u8],
) -> Decision {
    let plan = plan(method, url, headers, video, gate);
    if plan.cert.is_none() {
        return if plan.upgradable {
            Decision::Upgrade(UpdateNeed::Uncertifiable, plan.body.len())
        } else {
            Decision::Uncertified(plan)
        };
    }
    let path = request_path(url).unwrap_or_default();
    // Look the certificate up before reading any video bytes: an answer the tree does not hold
    // (yet) is upgraded to an update call, which vouches for it through consensus.
    match certifier.certificate_header(method, &path, &plan, video, data_certificate) {
        Some(certificate) => Decision::Certified(plan, certificate),
        None if plan.upgradable => Decision::Upgrade(UpdateNeed::NotCertifiedYet, plan.body.len()),
        None => Decision::Uncertified(plan),
    }
}

/// The `http_request` query.
///
/// Returns a certified response when the answer is one of the pre-certified shapes and the
/// certification tree holds it; an error answer that is not certified as it is (see
/// [`Plan::upgradable`]); otherwise `upgrade = true`, so the gateway repeats the request as
/// `http_request_update`, whose reply needs no certificate. `data_certificate` is
/// `ic_cdk::api::data_certificate()` (always `Some` in a query). `gate` says which gate applies
/// at the request's path: `None` (or a [`GateFor`] that answers `None`) for a public video or a
/// free named file, else the canister's verdict on the request's playback token (see [`crate::Gate`],
/// [`GateFor`]); a refusal is answered by the query, certified once
/// [`Certifier::certify_gate`] has put it in the tree.
pub fn http_request<'g>(
    req: &HttpRequest,
    video: &dyn VideoSource,
    gate: impl Into<GateFor<'g>>,
    certifier: &Certifier,
    data_certificate: Option<&[u8]>,
) -> HttpResponse<'static> {
    let gate = gate.into();
    let Some(data_certificate) = data_certificate else {
        // No certificate: the query runs replicated, where nothing is certified by the tree.
        // A gated path's refusal is still answered here (consensus vouches for it), never
        // upgraded; everything else is upgraded as before.
        let plan = plan(req.method().as_str(), req.url(), req.headers(), video, gate);
        if matches!(plan.status, 401 | 403) {
            return materialise(&plan, video);
        }
        return upgrade();
    };
    let decision = decide(
        req.method().as_str(),
        req.url(),
        req.headers(),
        video,
        gate,
        certifier,
        data_certificate,
    );
    match decision {
        Decision::Certified(plan, certificate) => {
            let mut response = materialise(&plan, video);
            if response.status_code().as_u16() != plan.status {
                // A read failed: the error response is not the certified one.
                return response;
            }
            response.add_header((
                ic_http_certification::CERTIFICATE_HEADER_NAME.to_string(),
                certificate,
            ));
            response
        }
        Decision::Upgrade(..) => upgrade(),
        Decision::Uncertified(plan) => materialise(&plan, video),
    }
}

/// Whether `http_request_update` should accept `req`, and the body size of its answer (for the
/// canister's cost estimate): decided by the same step as the query's answer, so the update path
/// accepts exactly the requests the query upgrades. Reads no video bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateCheck {
    pub need: UpdateNeed,
    /// 0 when `need` is [`UpdateNeed::None`].
    pub body_bytes: u64,
}

/// [`UpdateCheck`] for `req`. `gate` must be the one the query would get: a refused request
/// needs no update call ([`UpdateNeed::None`]).
pub fn update_check<'g>(
    req: &HttpUpdateRequest,
    video: &dyn VideoSource,
    gate: impl Into<GateFor<'g>>,
    certifier: &Certifier,
) -> UpdateCheck {
    let gate = gate.into();
    // The witness is built over the tree, not the certificate: any bytes do.
    match decide(
        req.method().as_str(),
        req.url(),
        req.headers(),
        video,
        gate,
        certifier,
        b"",
    ) {
        Decision::Upgrade(need, body_bytes) => UpdateCheck { need, body_bytes },
        Decision::Certified(..) | Decision::Uncertified(_) => UpdateCheck {
            need: UpdateNeed::None,
            body_bytes: 0,
        },
    }
}

/// [`update_check`]'s `need` alone.
pub fn update_need<'g>(
    req: &HttpUpdateRequest,
    video: &dyn VideoSource,
    gate: impl Into<GateFor<'g>>,
    certifier: &Certifier,
) -> UpdateNeed {
    update_check(req, video, gate, certifier).need
}

/// The `http_request_update` update: the same answers, uncertified (consensus certifies them),
/// refusals included.
pub fn http_request_update<'g>(
    req: &HttpUpdateRequest,
    video: &dyn VideoSource,
    gate: impl Into<GateFor<'g>>,
) -> HttpResponse<'static> {
    serve_uncertified(req.method().as_str(), req.url(), req.headers(), video, gate)
}

/// The answer to a request without any certification header: what `http_request_update`
/// returns, and what tests and local tools compare bodies against.
pub fn serve_uncertified<'g>(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    video: &dyn VideoSource,
    gate: impl Into<GateFor<'g>>,
) -> HttpResponse<'static> {
    materialise(&plan(method, url, headers, video, gate.into()), video)
}

fn upgrade() -> HttpResponse<'static> {
    HttpResponse::builder().with_upgrade(true).build()
}

#[cfg(test)]
mod tests;
