//! Requests outside `/api/` reach the HTTP gateway on the same port; `/api/` ones do not.

mod common;

use canvid_replica::Principal;

#[test]
fn non_api_paths_go_to_the_gateway() {
    let s = common::setup(vec![Principal::anonymous()]);
    let port = s.server.port();
    assert!(s
        .server
        .url_for(s.canister)
        .starts_with(&format!("http://{}.localhost:", s.canister)));
    assert_eq!(s.server.url(), format!("http://127.0.0.1:{port}"));

    // The probe has no `http_request`: the gateway calls it, logs the call and answers with its
    // error status (not the IC API's 404 for unknown endpoints).
    let (status, body) = common::http(
        port,
        "GET",
        &format!("/index.html?canisterId={}", s.canister),
        b"",
    );
    let log = s.server.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].canister, Some(s.canister));
    assert_eq!(log[0].url, format!("/index.html?canisterId={}", s.canister));
    assert_eq!(status, log[0].status, "{}", String::from_utf8_lossy(&body));
    assert!(status >= 400);

    // No canister named: the gateway's own 400.
    let (status, _) = common::http(port, "GET", "/", b"");
    assert_eq!(status, 400);

    // /api/ paths are the IC interface and never reach the gateway.
    let before = s.server.log().len();
    let (status, _) = common::http(port, "GET", "/api/v2/status", b"");
    assert_eq!(status, 200);
    assert_eq!(s.server.log().len(), before);
}
