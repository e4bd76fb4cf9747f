//! Which canister a client request is for: the Host (`<id>.localhost`, `<id>.raw.localhost`), and
//! the redirect of a `?canisterId=<id>` request on another host to the canister's own origin.

use candid::Principal;

/// The canister a request names: the first label of a `<id>.localhost[:port]` (or
/// `<id>.raw.localhost`) Host, else a `canisterId` query parameter. Only the Host form is
/// served; the `canisterId` form is redirected to it ([`own_origin_redirect`]).
pub fn resolve_canister(host: Option<&str>, url: &str) -> Option<Principal> {
    host_canister(host).or_else(|| query_canister(url))
}

/// The canister of a `<id>.localhost[:port]` or `<id>.raw.localhost[:port]` Host.
pub(crate) fn host_canister(host: Option<&str>) -> Option<Principal> {
    let host = host_name(host?);
    let id = host
        .strip_suffix(".raw.localhost")
        .or_else(|| host.strip_suffix(".localhost"))?;
    if id.contains('.') {
        return None;
    }
    Principal::from_text(id).ok()
}

/// The canister of the first valid `canisterId` query parameter.
fn query_canister(url: &str) -> Option<Principal> {
    let url = origin_form(url);
    let (_, query) = split_query(&url);
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "canisterId")
            .then(|| Principal::from_text(v).ok())
            .flatten()
    })
}

/// `(path, query)` of an origin-form URL, without the fragment.
fn split_query(url: &str) -> (&str, Option<&str>) {
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    }
}

/// The path-and-query of a request target (an absolute-form one is reduced to its path and
/// query).
fn origin_form(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string()),
        None => url.to_string(),
    }
}

/// Where a `?canisterId=<id>` request on a host that is not the canister's own subdomain is
/// sent (security review L2): `http://<id>.localhost[:port]<path>?<the other parameters>`,
/// keeping the Host's port. Serving it there would put every canister on one origin (the
/// replica API's or the gateway's), where one canister's page could read what another dApp keeps
/// in that origin's storage (an agent's delegation, say). `None` when the Host already names a
/// canister (the `canisterId` parameter is then passed on as any other) or no valid `canisterId`
/// is given, or there is no Host to take the port from.
pub fn own_origin_redirect(host: Option<&str>, url: &str) -> Option<String> {
    let host = host?;
    if host_canister(Some(host)).is_some() {
        return None;
    }
    let canister = query_canister(url)?;
    let port = host
        .rsplit_once(':')
        .filter(|(h, p)| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']'))
        })
        .map_or(String::new(), |(_, p)| format!(":{p}"));
    let target = origin_form(url);
    let (path, query) = split_query(&target);
    let rest: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some("canisterId"))
        .collect();
    let path = if path.starts_with('/') { path } else { "/" };
    let query = if rest.is_empty() {
        String::new()
    } else {
        format!("?{}", rest.join("&"))
    };
    Some(format!("http://{canister}.localhost{port}{path}{query}"))
}

/// A Host header's name: without the port and a trailing dot, lowercase.
fn host_name(host: &str) -> String {
    let host = host
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Is the Host a raw domain (`<id>.raw.localhost`): answers are served unverified?
pub(crate) fn is_raw_host(host: Option<&str>) -> bool {
    host.is_some_and(|h| host_name(h).ends_with(".raw.localhost"))
}
