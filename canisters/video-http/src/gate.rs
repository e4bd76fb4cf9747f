//! Private and paid videos: who may receive media bytes past a public preview.
//!
//! A browser's `<video>` element cannot sign IC calls, so a viewer of a video that is not public
//! gets a short-lived *playback token* from an authenticated canister call and plays
//! `https://<canister>.icp0.io/?token=<token>` (or `/video?token=…`). The canister, not this
//! crate, decides whether a token is valid: it reads the token with [`playback_token`], judges
//! it, and hands the verdict to the HTTP functions as a [`Gate`]. This crate only turns the
//! verdict into answers:
//!
//! - the bytes `[0, preview_end)` stay public (a teaser), so an answer that carries only those
//!   is served as for a public video, token or not;
//! - any other answer that would carry media bytes is replaced by a 401 (no token) or a 403
//!   (a token that does not let its holder watch), which carry none;
//! - answers without media bytes (HEAD, 304, 416, the 503 while uploading, metadata, poster,
//!   404, 405) are unchanged: they give nothing away that a public video would not.
//!
//! The 401/403 answers are certified response-only at each video path
//! ([`crate::Certifier::certify_gate`]) so the gateway accepts them from a query: a refusal
//! costs the canister a query, never an update call. A valid token is served from the very
//! entries a public video's answers use, because the query string is not part of any certified
//! request (canvid's CEL expressions certify no query parameters).
//!
//! Named files (HLS playlists, segments, subtitles, thumbnails) are gated *per path*: the
//! canister tells each request's [`GateFor`] which gate applies at a path. A named file has no
//! preview: a gated one is refused as a whole (its `preview_end` is taken as 0 whatever the gate
//! says), a free one (`AccessPolicy::free_paths`, matched by [`is_free_path`]) is served as for
//! a public video. Their 401/403 answers are certified at every gated named path too.
//!
//! Certification proves an answer is the canister's; it does not restrict who may read it. The
//! refusal happens when the canister answers, with the viewer the token names.

/// How the HTTP layer treats a video that is not public (private or paid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gate {
    /// File bytes [0, preview_end) are public: a teaser. The canister rounds it up to the
    /// chunk grid (a multiple of `VideoInfo::chunk_size`, or the file size); 0 = no preview.
    pub preview_end: u64,
    /// The viewer this request speaks for, by its playback token.
    pub viewer: Viewer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// A valid token of a viewer who may watch now: served exactly as a public video.
    Allowed,
    /// No token in the request: 401 past the preview.
    NoToken,
    /// A token that is unknown, expired or revoked, or whose viewer may no longer watch: 403.
    Denied,
}

/// Which [`Gate`] applies to a request, by its path: what the HTTP entry points take.
///
/// `Option<&Gate>` converts into one (`None` or `Some(&gate)`), applying that gate to every
/// path: the main file's paths with its preview, every named file as a whole. That is the safe
/// default of a video without free paths. [`GateFor::per_path`] lets the canister decide per
/// path (a free named file: `None`).
#[derive(Clone, Copy)]
pub struct GateFor<'a>(GateForInner<'a>);

#[derive(Clone, Copy)]
enum GateForInner<'a> {
    Every(Option<Gate>),
    PerPath(&'a dyn Fn(&str) -> Option<Gate>),
}

impl<'a> GateFor<'a> {
    /// `gate(path)` for each request; `path` is the decoded request path without query string
    /// (`/video`, `/hls/720p/seg-00042.m4s`). Called at most once per request.
    pub fn per_path(gate: &'a dyn Fn(&str) -> Option<Gate>) -> Self {
        GateFor(GateForInner::PerPath(gate))
    }

    /// The gate at `path`.
    pub(crate) fn at(&self, path: &str) -> Option<Gate> {
        match self.0 {
            GateForInner::Every(gate) => gate,
            GateForInner::PerPath(gate) => gate(path),
        }
    }
}

impl<'a> From<Option<&'a Gate>> for GateFor<'a> {
    fn from(gate: Option<&'a Gate>) -> Self {
        GateFor(GateForInner::Every(gate.copied()))
    }
}

impl std::fmt::Debug for GateFor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            GateForInner::Every(gate) => f.debug_tuple("GateFor::Every").field(&gate).finish(),
            GateForInner::PerPath(_) => f.write_str("GateFor::PerPath(..)"),
        }
    }
}

/// Is `path` one of `free_paths` (an exact path, or a prefix ending in `/`)? The rule of
/// `canvid_types::access::AccessPolicy::is_free_path` for a video that is not public (a test
/// checks that they agree); [`crate::Certifier::certify_gate`] keeps the list as data, so that it
/// can tell when it changed and certify the refusals of newly built files by it.
pub fn is_free_path(free_paths: &[String], path: &str) -> bool {
    free_paths.iter().any(|free| {
        if free.ends_with('/') {
            path.starts_with(free.as_str())
        } else {
            path == free
        }
    })
}

impl Gate {
    /// Must an answer that carries file bytes `offset..offset + len` be refused? Only bytes at
    /// or past `preview_end` are private, so an answer entirely inside the preview is served.
    pub(crate) fn refuses(&self, offset: u64, len: u64) -> bool {
        self.viewer != Viewer::Allowed && len > 0 && offset.saturating_add(len) > self.preview_end
    }
}

/// Longest token [`playback_token`] accepts: tokens are the canister's own (short, random), so
/// anything longer is not one and is not worth looking up.
pub(crate) const MAX_TOKEN_LEN: usize = 128;

/// The value of the `token` query parameter of a request URL (`/?token=…`, `/video?x=1&token=…`):
/// the first parameter named exactly `token`, if its value is 1..=128 characters
/// of `[A-Za-z0-9_-]`; `None` otherwise (no such parameter, or a first one that is not a
/// token: a later one is not looked at, so a URL cannot carry two candidates).
///
/// Tokens are URL-safe as issued, so no percent-decoding is needed: a `%` is simply not a token
/// character. A `#fragment` is not part of the query (browsers never send one, but a URL may).
pub fn playback_token(url: &str) -> Option<&str> {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let (_, query) = url.split_once('?')?;
    let value = query
        .split('&')
        .find_map(|param| match param.split_once('=') {
            Some(("token", value)) => Some(value),
            None if param == "token" => Some(""),
            _ => None,
        })?;
    let valid = (1..=MAX_TOKEN_LEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    valid.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_url() {
        for (url, want) in [
            ("/?token=ab", Some("ab")),
            ("/video?token=ab", Some("ab")),
            ("/video?x=1&token=ab", Some("ab")),
            ("/video?token=ab&x=1", Some("ab")),
            ("/?token=A-z_09", Some("A-z_09")),
            ("/?token=ab#frag", Some("ab")),
            ("/?token=ab#token=cd", Some("ab")),
            ("https://x.icp0.io/video?token=ab", Some("ab")),
            // First occurrence only, even when it is not a token.
            ("/?token=ab&token=cd", Some("ab")),
            ("/?token=&token=cd", None),
            ("/?token&token=cd", None),
            ("/?token=a%2Bb", None),
            ("/?token=a+b", None),
            ("/?token=a.b", None),
            ("/?token=a=b", None),
            ("/?tokens=ab", None),
            ("/?xtoken=ab", None),
            ("/?Token=ab", None),
            ("/?%74oken=ab", None),
            ("/?token=", None),
            ("/?token", None),
            ("/", None),
            ("/video", None),
            ("/token=ab", None),
            ("/#?token=ab", None),
            ("/?x=1#&token=ab", None),
            ("", None),
        ] {
            assert_eq!(playback_token(url), want, "{url}");
        }
        let max = "a".repeat(MAX_TOKEN_LEN);
        assert_eq!(
            playback_token(&format!("/?token={max}")),
            Some(max.as_str())
        );
        assert_eq!(playback_token(&format!("/?token={max}a")), None);
    }

    /// The certifier's rule is the canister's (`AccessPolicy::is_free_path`) for a gated video.
    #[test]
    fn free_paths_agree_with_the_access_policy() {
        use canvid_types::access::{AccessMode, AccessPolicy};
        let free: Vec<String> = ["/hls/master.m3u8", "/hls/480p/", "/subs/"]
            .into_iter()
            .map(String::from)
            .collect();
        let policy = AccessPolicy {
            mode: AccessMode::Private,
            preview_bytes: None,
            free_paths: Some(free.clone()),
        };
        let paths = [
            "/hls/master.m3u8",
            "/hls/master.m3u8x",
            "/hls/480p/index.m3u8",
            "/hls/480p",
            "/hls/4800p/index.m3u8",
            "/hls/720p/seg-00001.m4s",
            "/subs/en.vtt",
            "/thumbs/sprite.jpg",
        ];
        let mut free_count = 0;
        for path in paths {
            assert_eq!(
                is_free_path(&free, path),
                policy.is_free_path(path),
                "{path}"
            );
            free_count += usize::from(is_free_path(&free, path));
        }
        assert_eq!(free_count, 3);
        assert!(!is_free_path(&[], "/hls/master.m3u8"));
    }

    #[test]
    fn gate_for_every_path_or_per_path() {
        let gate = Gate {
            preview_end: 7,
            viewer: Viewer::NoToken,
        };
        assert_eq!(GateFor::from(None).at("/video"), None);
        assert_eq!(GateFor::from(Some(&gate)).at("/hls/a.m3u8"), Some(gate));
        let per = |path: &str| (path != "/free").then_some(gate);
        let g = GateFor::per_path(&per);
        assert_eq!(g.at("/free"), None);
        assert_eq!(g.at("/video"), Some(gate));
    }

    #[test]
    fn refuses_only_bytes_past_the_preview() {
        let gate = |viewer| Gate {
            preview_end: 2_000,
            viewer,
        };
        for viewer in [Viewer::NoToken, Viewer::Denied] {
            assert!(!gate(viewer).refuses(0, 2_000));
            assert!(!gate(viewer).refuses(1_000, 1_000));
            assert!(gate(viewer).refuses(1_000, 1_001));
            assert!(gate(viewer).refuses(2_000, 1));
            assert!(!gate(viewer).refuses(5_000, 0));
        }
        assert!(!gate(Viewer::Allowed).refuses(0, u64::MAX));
        assert!(Gate {
            preview_end: 0,
            viewer: Viewer::NoToken
        }
        .refuses(0, 1));
    }
}
