//! The gateway's agent talks to the IC HTTP interface in-process: an ic-agent 0.46
//! [`HttpService`] that hands each request to [`canvid_http_interface::answer`] (on tokio's
//! blocking pool: a synchronous call waits for its round) instead of sending it over a socket.
//! The agent sees exactly the bytes a client of the HTTP port would see.

use async_trait::async_trait;
use bytes::Bytes;
use canvid_http_interface::api::ApiState;
use canvid_replica::Replica;
use ic_agent::agent::HttpService;
use ic_agent::agent_error::TransportError;
use ic_agent::AgentError;
use std::sync::Arc;

/// The in-process transport.
pub(crate) struct InProcess {
    pub(crate) replica: Arc<Replica>,
    pub(crate) state: Arc<ApiState>,
    /// The replica driver's thread, unparked when a message is queued.
    pub(crate) driver: std::thread::Thread,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess(canvid-http-interface)")
    }
}

#[async_trait]
impl HttpService for InProcess {
    async fn call<'a>(
        &'a self,
        req: &'a (dyn Fn() -> Result<http::Request<Bytes>, AgentError> + Send + Sync),
        _max_retries: usize,
        _size_limit: Option<usize>,
    ) -> Result<http::Response<Bytes>, AgentError> {
        let request = req()?;
        let method = request.method().as_str().to_string();
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let body = request.into_body();
        let (replica, state, driver) = (
            self.replica.clone(),
            self.state.clone(),
            self.driver.clone(),
        );
        tokio::task::spawn_blocking(move || {
            canvid_http_interface::answer(&replica, &state, &method, &path, &body, &|| {
                driver.unpark()
            })
        })
        .await
        .map_err(|e| AgentError::TransportError(TransportError::Generic(e.to_string())))
    }
}
