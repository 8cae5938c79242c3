//! The admin API client the CLI uses: reads `admin.toml` (endpoints and
//! certificate files written by `tandem cluster setup`), tries each
//! endpoint in turn and returns the JSON answer or the server's error.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tandem_cluster::TlsFiles;
use tokio_rustls::TlsConnector;

/// Where the API is and who the caller is.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub endpoints: Vec<String>,
    pub tls: TlsFiles,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{path}: {detail}")]
    File { path: PathBuf, detail: String },
    #[error("no node answered ({0})")]
    Unreachable(String),
    #[error("{status}: {message}")]
    Api { status: u16, message: String },
}

/// How long a call keeps trying while no node can answer (an election
/// takes well under a second; a dead cluster answers after this).
const ELECTION_WAIT: Duration = Duration::from_secs(3);

/// How long an ordinary API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A client bound to one admin identity.
pub struct ApiClient {
    endpoints: Vec<String>,
    tls: TlsConnector,
}

impl ApiClient {
    /// Reads `admin.toml`; relative certificate paths are from its directory.
    pub fn from_file(path: &Path) -> Result<ApiClient, ClientError> {
        let file_err = |detail: String| ClientError::File {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound => "; name the cluster's admin file with --admin FILE or TANDEM_ADMIN (`tandem cluster setup` writes admin.toml; `tandem demo` prints the export line to use)",
                _ => "",
            };
            file_err(format!("{e}{hint}"))
        })?;
        let mut file: AdminFile = toml::from_str(&text).map_err(|e| file_err(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut file.tls.ca, &mut file.tls.cert, &mut file.tls.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        ApiClient::new(file.endpoints, &file.tls).map_err(file_err)
    }

    /// A client presenting the certificate in `tls` to `endpoints`.
    pub fn new(endpoints: Vec<String>, tls: &TlsFiles) -> Result<ApiClient, String> {
        let config = tls.client_config().map_err(|e| e.to_string())?;
        Ok(ApiClient {
            endpoints,
            tls: TlsConnector::from(config),
        })
    }

    /// The admin API addresses, in the order they are tried.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Calls `method path` with an optional JSON body on the first node
    /// that answers. While no node can (an election in progress answers
    /// 503 everywhere), it tries again for up to [`ELECTION_WAIT`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let deadline = tokio::time::Instant::now() + ELECTION_WAIT;
        loop {
            match self.call_once(method.clone(), path, body.clone()).await {
                Err(ClientError::Unreachable(why)) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!("no node could answer yet: {why}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    async fn call_once(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut failures = Vec::new();
        for endpoint in &self.endpoints {
            match self
                .call_one(endpoint, method.clone(), path, body.clone(), CALL_TIMEOUT)
                .await
            {
                Ok((status, value)) if status < 400 => return Ok(value),
                Ok((status, value)) if status != 503 => {
                    let message = value["error"].as_str().unwrap_or("error").to_string();
                    return Err(ClientError::Api { status, message });
                }
                Ok((_, value)) => failures.push(format!("{endpoint}: {}", value["error"])),
                Err(e) => failures.push(format!("{endpoint}: {e}")),
            }
        }
        Err(ClientError::Unreachable(failures.join("; ")))
    }

    /// Calls one endpoint, at most `timeout`; answers the HTTP status and
    /// the JSON body.
    pub async fn call_one(
        &self,
        endpoint: &str,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        timeout: Duration,
    ) -> Result<(u16, serde_json::Value), String> {
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(endpoint)
                .await
                .map_err(|e| e.to_string())?;
            let tls = self
                .tls
                .connect(tandem_cluster::server_name(), tcp)
                .await
                .map_err(|e| e.to_string())?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let bytes = body.map(|b| b.to_string()).unwrap_or_default();
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("host", "tandem")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(bytes)))
                .map_err(|e| e.to_string())?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| error_chain(&e))?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), crate::api::MAX_BODY_BYTES * 4)
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            let value = serde_json::from_slice(&body.to_bytes()).map_err(|e| e.to_string())?;
            Ok((status, value))
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| "timed out".to_string())?
    }
}

/// An error with its causes: hyper's own message ("connection error")
/// hides what went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
