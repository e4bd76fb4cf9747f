//! End to end through a real TCP socket: the gateway in front of a fake backend that runs the
//! video canister's HTTP logic (`canvid-video-http`) on an in-memory video, with certification.

use candid::Principal;
use canvid_devkit::raw_http::Request;
use canvid_gateway::{serve_backend, Backend, CallError};
use canvid_video_http::{
    Certifier, HttpRequest, HttpUpdateRequest, Poster, ReadError, VideoInfo, VideoSource,
    VideoStatus,
};
use std::sync::Arc;

const CHUNK: u64 = 100_000;

struct Video {
    bytes: Vec<u8>,
}

/// The chunk digests the video canister stores at upload.
fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

impl VideoSource for Video {
    fn info(&self) -> Option<VideoInfo> {
        let digests: Vec<u8> = self.bytes.chunks(CHUNK as usize).flat_map(sha256).collect();
        Some(VideoInfo {
            mime_type: "video/mp4".into(),
            size: self.bytes.len() as u64,
            chunk_size: CHUNK,
            digest: sha256(&digests),
            status: VideoStatus::Ready,
        })
    }
    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, ReadError> {
        self.bytes
            .get(offset as usize..(offset + len) as usize)
            .map(<[u8]>::to_vec)
            .ok_or(ReadError("range".into()))
    }
    fn chunk_digest(&self, index: u64) -> Option<[u8; 32]> {
        self.bytes
            .chunks(CHUNK as usize)
            .nth(index as usize)
            .map(sha256)
    }
    fn metadata_json(&self) -> String {
        r#"{"title":"tcp"}"#.into()
    }
    fn poster(&self) -> Option<Poster> {
        None
    }
}

struct Fake {
    canister: Principal,
    video: Video,
    certifier: Certifier,
}

impl Backend for Fake {
    fn query(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
        if canister != self.canister {
            return Err(CallError::CanisterNotFound(canister.to_text()));
        }
        assert_eq!(method, "http_request");
        let req: HttpRequest =
            candid::decode_one(&arg).map_err(|e| CallError::Rejected(e.to_string()))?;
        let r = canvid_video_http::http_request(&req, &self.video, &self.certifier, Some(b"cert"));
        Ok(candid::encode_one(&r).unwrap())
    }
    fn update(
        &self,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        assert_eq!((canister, method), (self.canister, "http_request_update"));
        let req: HttpUpdateRequest =
            candid::decode_one(&arg).map_err(|e| CallError::Rejected(e.to_string()))?;
        Ok(candid::encode_one(canvid_video_http::http_request_update(&req, &self.video)).unwrap())
    }
}

#[test]
fn video_over_tcp() {
    let canister = Principal::from_text("rrkah-fqaaa-aaaaa-aaaaq-cai").unwrap();
    let bytes: Vec<u8> = (0..350_123u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let video = Video {
        bytes: bytes.clone(),
    };
    let mut certifier = Certifier::new();
    certifier.certify_all(&video).unwrap();
    let gw = serve_backend(
        Arc::new(Fake {
            canister,
            video,
            certifier,
        }),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let port = gw.port();
    let host = format!("{canister}.localhost:{port}");
    assert_eq!(gw.url_for(canister), format!("http://{host}/"));

    // Plain GET: the canister answers 206 with chunk 0; the gateway streams the whole file.
    let r = Request::get("/video").host(&host).send(port);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("350123"));
    assert_eq!(r.header("content-range"), None);
    assert_eq!(r.body, bytes);
    let log = gw.log();
    assert_eq!(log.len(), 4, "{log:#?}");
    assert_eq!(log[0].range, None);
    assert_eq!(log[1].range.as_deref(), Some("bytes=100000-"));
    assert!(log[1..]
        .iter()
        .all(|e| e.streamed && e.status == 206 && !e.upgraded));
    assert_eq!(log[3].body_len, 50_123);

    // A client's own range request: the 206 passes through; off-grid ones go via the update.
    let r = Request::get("/video")
        .host(&host)
        .header("Range", "bytes=150000-150009")
        .send(port);
    assert_eq!(
        (r.status, r.header("content-range")),
        (206, Some("bytes 150000-150009/350123"))
    );
    assert_eq!(r.body, &bytes[150_000..150_010]);
    assert!(gw.log().last().unwrap().upgraded);
    let r = Request::get("/?canisterId=rrkah-fqaaa-aaaaa-aaaaq-cai")
        .host(&host)
        .header("Range", "bytes=200000-")
        .send(port);
    assert_eq!((r.status, r.body.len()), (206, 100_000));
    assert!(!gw.log().last().unwrap().upgraded);
    assert!(r.header("ic-certificate").is_some());

    // HEAD keeps the full Content-Length and sends no body.
    let r = Request::head("/video").host(&host).send(port);
    assert_eq!(
        (r.status, r.header("content-length"), r.body.len()),
        (200, Some("350123"), 0)
    );

    let r = Request::get("/metadata.json").host(&host).send(port);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &br#"{"title":"tcp"}"#[..])
    );
    assert_eq!(Request::get("/nope").host(&host).send(port).status, 404);
    assert_eq!(Request::post("/video").host(&host).send(port).status, 405);
    assert_eq!(
        Request::get("/video")
            .host(&host)
            .header("Range", "bytes=999999-")
            .send(port)
            .status,
        416
    );
    assert_eq!(
        Request::get("/")
            .host(&format!("aaaaa-aa.localhost:{port}"))
            .send(port)
            .status,
        404
    );
    assert_eq!(
        Request::get("/")
            .host(&format!("localhost:{port}"))
            .send(port)
            .status,
        400
    );
    gw.shutdown();
}
