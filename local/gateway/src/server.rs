//! The loopback server: hyper 1 (HTTP/1.1) on a tokio runtime of its own. `/api/...` is the IC
//! HTTP interface (`canvid-http-interface`); everything else is the gateway, whose agent talks to
//! that same interface in-process. A driver thread runs the replica's rounds.

use bytes::Bytes;
use candid::Principal;
use canvid_http_interface::api::{self, ApiState};
use canvid_replica::Replica;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use ic_http_gateway::HttpGatewayClient;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::gateway::{full, text, Gateway};
use crate::transport::InProcess;
use crate::LogEntry;

/// Every answer's body: a whole body, or the library's stream of a long 206's chunks.
pub(crate) type Body =
    http_body_util::combinators::UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// How long [`GatewayHandle::shutdown`] lets requests in flight finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A running server (IC HTTP interface + gateway on one loopback port). Dropping it stops it, as
/// [`GatewayHandle::shutdown`] does.
pub struct GatewayHandle {
    port: u16,
    log: Arc<Mutex<Vec<LogEntry>>>,
    stop: Arc<AtomicBool>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// `canvid_http_interface`'s former name for the server's handle (`canvid serve`, its tests).
pub type ServerHandle = GatewayHandle;

impl GatewayHandle {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`: the URL to give agents (`--network`, `host`, `with_url`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Base URL of `canister` behind this gateway (browsers resolve `*.localhost` to loopback).
    pub fn url_for(&self, canister: Principal) -> String {
        format!("http://{canister}.localhost:{}/", self.port)
    }

    /// The gateway's answers so far, oldest first.
    pub fn log(&self) -> Vec<LogEntry> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stops accepting requests, lets requests in flight finish (up to a grace period) and
    /// waits for the threads.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Serves the IC HTTP interface and the HTTP gateway for `replica` on `addr` (port 0 picks a
/// free port). Refuses non-loopback addresses: this is a development replica.
pub fn serve(replica: Arc<Replica>, addr: SocketAddr) -> io::Result<GatewayHandle> {
    let root_key = replica.root_key_der();
    serve_verifying_with(replica, addr, root_key)
}

/// [`serve`] with the root key the gateway verifies answers against (tests give a foreign one).
pub(crate) fn serve_verifying_with(
    replica: Arc<Replica>,
    addr: SocketAddr,
    root_key: Vec<u8>,
) -> io::Result<GatewayHandle> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the gateway binds loopback addresses only, not {addr}"),
        ));
    }
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));

    let driver = {
        let (replica, stop) = (replica.clone(), stop.clone());
        std::thread::Builder::new()
            .name("replica-driver".into())
            .spawn(move || canvid_http_interface::drive(&replica, &stop))?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("canvid-http")
        .enable_all()
        .build()?;
    let state = Arc::new(ApiState::default());
    let transport = Arc::new(InProcess {
        replica: replica.clone(),
        state: state.clone(),
        driver: driver.thread().clone(),
    });
    let agent = ic_agent::Agent::builder()
        .with_url(format!("http://127.0.0.1:{port}"))
        .with_arc_http_middleware(transport)
        .build()
        .map_err(|e| io::Error::other(format!("the gateway's agent: {e}")))?;
    agent.set_root_key(root_key);
    let client = HttpGatewayClient::builder()
        .with_agent(agent)
        .build()
        .map_err(|e| io::Error::other(format!("the gateway's client: {e}")))?;
    let gateway = Gateway {
        client,
        log: log.clone(),
        verbose: std::env::var_os("CANVID_GATEWAY_LOG").is_some(),
    };
    let app = App {
        replica,
        state,
        driver: driver.thread().clone(),
        gateway,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let server = std::thread::Builder::new()
        .name("canvid-http".into())
        .spawn(move || {
            runtime.block_on(accept(listener, app, rx));
            runtime.shutdown_timeout(SHUTDOWN_GRACE);
        })?;
    Ok(GatewayHandle {
        port,
        log,
        stop,
        shutdown: Some(tx),
        threads: vec![server, driver],
    })
}

/// Starts the server in front of an embedded replica (the same as [`serve`]).
pub fn serve_backend(replica: Arc<Replica>, addr: SocketAddr) -> io::Result<GatewayHandle> {
    serve(replica, addr)
}

#[derive(Clone)]
struct App {
    replica: Arc<Replica>,
    state: Arc<ApiState>,
    driver: std::thread::Thread,
    gateway: Gateway,
}

async fn accept(
    listener: std::net::TcpListener,
    app: App,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let app = app.clone();
                async move { Ok::<_, std::convert::Infallible>(app.answer(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl App {
    async fn answer(&self, request: Request<Incoming>) -> Response<Body> {
        if request.uri().path().starts_with("/api/") {
            self.api(request).await
        } else {
            self.gateway.handle(request).await
        }
    }

    /// The IC HTTP interface, on tokio's blocking pool (a synchronous call waits for its round).
    async fn api(&self, request: Request<Incoming>) -> Response<Body> {
        let method = request.method().as_str().to_string();
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let body = match Limited::new(request.into_body(), api::MAX_BODY + 1)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return canvid_http_interface::too_large().map(full)
            }
            Err(e) => return text(400, &format!("reading the request body: {e}")),
        };
        let (replica, state, driver) = (
            self.replica.clone(),
            self.state.clone(),
            self.driver.clone(),
        );
        let answer = tokio::task::spawn_blocking(move || {
            canvid_http_interface::answer(&replica, &state, &method, &path, &body, &|| {
                driver.unpark()
            })
        })
        .await;
        match answer {
            Ok(response) => response.map(full),
            Err(e) => text(500, &format!("the HTTP interface failed: {e}")),
        }
    }
}
