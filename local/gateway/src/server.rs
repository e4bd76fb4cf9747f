//! The loopback server: a tiny_http server on a loopback address whose worker threads hand each
//! request to a handler. The gateway's own server ([`serve_backend`]) and the HTTP interface of
//! `canvid-http-interface` (the IC HTTP interface plus this gateway on one port) both run on it.

use candid::Principal;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{Backend, Gateway, LogEntry};

/// Worker threads serving connections (a browser opens several for one video).
const WORKERS: usize = 4;

/// A tiny_http server bound to a loopback address, and the threads serving it. Dropping it (or
/// [`LoopbackServer::shutdown`]) stops every thread: each finishes its current request.
pub struct LoopbackServer {
    server: Arc<tiny_http::Server>,
    port: u16,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Binds `addr` (port 0 picks a free port). Refuses non-loopback addresses: `what` names
    /// the server in that error ("the gateway").
    pub fn bind(addr: SocketAddr, what: &str) -> io::Result<LoopbackServer> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what} binds loopback addresses only, not {addr}"),
            ));
        }
        let server = tiny_http::Server::http(addr).map_err(|e| io::Error::other(e.to_string()))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| io::Error::other("no IP listen address"))?;
        Ok(LoopbackServer {
            server: Arc::new(server),
            port,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Set when the server stops: a thread added with [`LoopbackServer::add_thread`] polls it
    /// (it is also unparked at the stop).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// A thread of the caller's (a driver) to stop and join with the workers.
    pub fn add_thread(&mut self, thread: JoinHandle<()>) {
        self.threads.push(thread);
    }

    /// Starts `count` worker threads named `<name>-<i>`, each passing the requests it receives
    /// to `handler` until the server stops.
    pub fn spawn_workers<F>(&mut self, count: usize, name: &str, handler: F) -> io::Result<()>
    where
        F: Fn(tiny_http::Request) + Clone + Send + 'static,
    {
        for i in 0..count {
            let (server, stop, handler) = (self.server.clone(), self.stop.clone(), handler.clone());
            self.threads.push(
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        while !stop.load(Ordering::SeqCst) {
                            match server.recv_timeout(Duration::from_millis(50)) {
                                Ok(Some(request)) => handler(request),
                                Ok(None) => {}
                                Err(_) => break,
                            }
                        }
                    })?,
            );
        }
        Ok(())
    }

    /// Stops accepting requests and waits for the threads (each finishes its current request).
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// A running gateway.
pub struct GatewayHandle {
    log: Arc<Mutex<Vec<LogEntry>>>,
    server: LoopbackServer,
}

impl GatewayHandle {
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Base URL of `canister` behind this gateway (browsers resolve `*.localhost` to loopback).
    pub fn url_for(&self, canister: Principal) -> String {
        format!("http://{canister}.localhost:{}/", self.port())
    }

    /// Calls made so far, oldest first.
    pub fn log(&self) -> Vec<LogEntry> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stops accepting requests and waits for the workers (each finishes its current request).
    pub fn shutdown(self) {
        self.server.shutdown();
    }
}

/// Starts a gateway over any [`Backend`] on `addr` (port 0 picks a free port). Refuses
/// non-loopback addresses.
pub fn serve_backend<B: Backend>(backend: Arc<B>, addr: SocketAddr) -> io::Result<GatewayHandle> {
    let mut server = LoopbackServer::bind(addr, "the gateway")?;
    let gateway = Gateway::new(backend);
    let log = gateway.log_handle();
    server.spawn_workers(WORKERS, "gateway", move |request| gateway.handle(request))?;
    Ok(GatewayHandle { log, server })
}
