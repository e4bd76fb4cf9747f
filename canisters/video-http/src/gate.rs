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
