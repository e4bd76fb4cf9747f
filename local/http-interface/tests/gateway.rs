//! Requests outside `/api/` reach the HTTP gateway on the same port; `/api/` ones do not.

mod common;

use canvid_devkit::raw_http::Request;
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

    // `?canisterId=` on the API's origin is not served there (one origin for every canister,
    // security review L2) but redirected to the canister's own origin, with the other parameters.
    let r = Request::get(&format!("/index.html?canisterId={}&a=1", s.canister)).send(port);
    assert_eq!(r.status, 307);
    assert_eq!(
        r.header("location"),
        Some(format!("http://{}.localhost:{port}/index.html?a=1", s.canister).as_str())
    );
    let log = s.server.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].status, log[0].canister), (307, None));

    // The probe has no `http_request`: the gateway calls it, logs the call and answers with its
    // error status (not the IC API's 404 for unknown endpoints).
    let r = Request::get("/index.html?a=1")
        .host(&format!("{}.localhost:{port}", s.canister))
        .send(port);
    let log = s.server.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[1].canister, Some(s.canister));
    assert_eq!(log[1].url, "/index.html?a=1");
    assert_eq!(
        r.status,
        log[1].status,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(r.status >= 400);

    // No canister named: the gateway's own 400.
    let (status, _) = common::http(port, "GET", "/", b"");
    assert_eq!(status, 400);

    // /api/ paths are the IC interface and never reach the gateway.
    let before = s.server.log().len();
    let (status, _) = common::http(port, "GET", "/api/v2/status", b"");
    assert_eq!(status, 200);
    assert_eq!(s.server.log().len(), before);
}
