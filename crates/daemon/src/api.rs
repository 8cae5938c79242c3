//! The HTTPS admin API: hyper 1 over tokio-rustls, every client presents a
//! certificate from the cluster CA and its OU is its role (`read-only`,
//! `operator`, `admin`; `node` reads). JSON in, JSON out; each endpoint
//! bounds its request body ([`body_limit`], the sizes in
//! [`crate::limits`]) and refuses a larger one with 413 as soon as it is
//! declared or arrives. Changes are validated, and a new configuration is
//! scheduled in preview, before they are proposed, so a bad one changes
//! nothing.

use crate::executor::{ExecRequest, LocalExecutor};
use crate::view;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use tandem_cluster::{ClusterNode, Command, CommandResult};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Largest request body any endpoint accepts (a configuration document;
/// most endpoints accept far less, see [`body_limit`]).
pub const MAX_BODY_BYTES: usize = crate::limits::MAX_DOCUMENT_BODY_BYTES;

/// What a caller may do, from its certificate's OU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    ReadOnly,
    Operator,
    Admin,
}

impl Role {
    fn from_ou(ou: &str) -> Role {
        match ou {
            "admin" => Role::Admin,
            "operator" => Role::Operator,
            _ => Role::ReadOnly,
        }
    }
}

/// `PUT /config`.
#[derive(Serialize, Deserialize)]
pub struct PutConfig {
    /// The version the writer read; `None` overwrites whatever is there.
    pub expected_version: Option<u64>,
    pub text: String,
}

/// `POST /node/attribute`.
#[derive(Serialize, Deserialize)]
pub struct SetAttribute {
    pub node: String,
    pub name: String,
    pub value: Option<String>,
}

/// `POST /property`.
#[derive(Serialize, Deserialize)]
pub struct SetProperty {
    pub name: String,
    pub value: String,
}

/// What the API serves: the cluster member, and on data nodes the
/// executor the DC sends operations to.
#[derive(Clone)]
pub struct Services {
    pub node: Arc<ClusterNode>,
    pub executor: Option<Arc<LocalExecutor>>,
    /// This node's load balancer, when it runs one.
    pub lb: Option<Arc<tandem_lb::Lb>>,
}

/// Serves the API until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    services: Services,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
        };
        let (acceptor, services) = (acceptor.clone(), services.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::warn!(peer = %addr, "refused API client {addr}: TLS handshake failed: {e}");
                    return;
                }
            };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(tandem_cluster::identity_of);
            let role = identity
                .as_ref()
                .map_or(Role::ReadOnly, |i| Role::from_ou(&i.role));
            let is_node = identity.as_ref().is_some_and(|i| i.role == "node");
            let service = hyper::service::service_fn(move |req| {
                let services = services.clone();
                async move {
                    let reply = if req.uri().path() == "/execute" {
                        execute(&services, is_node, req).await
                    } else if req.uri().path() == "/node/fence" && req.method() == Method::POST {
                        fence(&services, role, req).await
                    } else if req.uri().path() == "/traffic" && req.method() == Method::GET {
                        // Any role may read this node's lb state (drain progress).
                        match &services.lb {
                            Some(lb) => json(StatusCode::OK, &lb.status()),
                            None => json(StatusCode::OK, &serde_json::json!({ "pools": [] })),
                        }
                    } else {
                        handle(&services.node, role, req).await
                    };
                    Ok::<_, std::convert::Infallible>(reply)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

pub(crate) type Reply = Response<Full<Bytes>>;

pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Reply {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Reply {
    json(status, &serde_json::json!({ "error": message.into() }))
}

/// Reads a bounded JSON body; the error is the reply to send.
async fn json_body<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, Reply> {
    let body = read_body(req).await?;
    serde_json::from_slice(&body).map_err(|e| error(StatusCode::BAD_REQUEST, format!("body: {e}")))
}

/// The largest request body `path` accepts: a whole configuration
/// document for the endpoints that carry one, a few names and values for
/// the rest.
pub fn body_limit(path: &str) -> usize {
    match path {
        "/config" | "/plan" | "/edit" => crate::limits::MAX_DOCUMENT_BODY_BYTES,
        "/execute" => crate::limits::MAX_EXECUTE_BODY_BYTES,
        _ => crate::limits::MAX_SMALL_BODY_BYTES,
    }
}

/// Reads the request body, at most [`body_limit`] bytes of it, as it
/// arrives: a declared length over the limit is refused before a byte is
/// kept, and an undeclared (chunked) one as soon as it passes the limit,
/// so an oversized body is never held in memory. The error is the reply.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, Reply> {
    let path = req.uri().path().to_string();
    let limit = body_limit(&path);
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut body = req.into_body();
    if declared.is_some_and(|n| n > limit as u64) {
        discard_rest(body);
        return Err(too_large(&path, limit));
    }
    let mut kept: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| error(StatusCode::BAD_REQUEST, format!("request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if kept.len() + data.len() > limit {
            discard_rest(body);
            return Err(too_large(&path, limit));
        }
        kept.extend_from_slice(&data);
    }
    Ok(Bytes::from(kept))
}

/// Reads and drops what is left of a refused body, for a while, in the
/// background. A client that sends its whole body before it reads the
/// answer (most do) would otherwise find the connection reset under it
/// and never see the 413; past the limits below it does.
fn discard_rest(mut body: Incoming) {
    tokio::spawn(async move {
        let mut seen = 0usize;
        let discard = async {
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, |d| d.len());
                if seen > crate::limits::MAX_DISCARDED_BODY_BYTES {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(crate::limits::DISCARD_BODY_TIMEOUT, discard).await;
    });
}

/// 413, naming the endpoint's limit.
fn too_large(path: &str, limit: usize) -> Reply {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body too large: {path} accepts at most {limit} bytes"),
    )
}

/// `POST /execute`: an operation from the DC. Only cluster nodes may send
/// one, and the executor refuses a stale term.
async fn execute(services: &Services, is_node: bool, req: Request<Incoming>) -> Reply {
    if !is_node || req.method() != Method::POST {
        return error(
            StatusCode::FORBIDDEN,
            "POST /execute is for the DC's node certificate only",
        );
    }
    let Some(executor) = &services.executor else {
        return error(StatusCode::CONFLICT, "a witness runs no resources");
    };
    let request: ExecRequest = match json_body(req).await {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    match crate::executor::serve_request(&services.node, executor, request).await {
        Ok(outcome) => json(StatusCode::OK, &outcome),
        Err(refusal) => {
            tracing::warn!("{refusal}");
            error(StatusCode::CONFLICT, refusal)
        }
    }
}

/// `POST /node/fence` `{"node": N, "action": "reboot"|"off"}`: fences a
/// node now with the configured devices, from this node (operators).
async fn fence(services: &Services, role: Role, req: Request<Incoming>) -> Reply {
    if role < Role::Operator {
        return error(
            StatusCode::FORBIDDEN,
            format!("role {role:?} may not fence a node; needs Operator"),
        );
    }
    let Some(executor) = &services.executor else {
        return error(
            StatusCode::CONFLICT,
            "a witness runs no fence devices; ask a data node",
        );
    };
    let request: FenceNode = match json_body(req).await {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let node = &services.node;
    let known = node
        .members()
        .values()
        .any(|m| m.name == request.node && !m.witness);
    if !known {
        return error(
            StatusCode::NOT_FOUND,
            format!("no data node named {:?}", request.node),
        );
    }
    if request.node == node.view().node_name {
        return error(
            StatusCode::CONFLICT,
            format!("{} does not fence itself: ask another node", request.node),
        );
    }
    let state = node.replicated();
    let cluster = match tandem_model::native::parse_toml(&state.config_text) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::CONFLICT, format!("no valid configuration: {e}")),
    };
    let action = match request.action.as_deref() {
        None => crate::fencing::configured_action(&cluster),
        Some("reboot") => tandem_agents::fence::FenceAction::Reboot,
        Some("off") => tandem_agents::fence::FenceAction::Off,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("fence action {other:?}: expected reboot or off"),
            )
        }
    };
    let result = crate::fencing::fence_and_record(
        node.clone(),
        cluster,
        executor.exec_config(),
        request.node.clone(),
        action,
    )
    .await;
    match result {
        // The attempts themselves: this node may not have applied the
        // committed record yet.
        Ok(history) => json(
            StatusCode::OK,
            &serde_json::json!({ "fenced": request.node, "history": history }),
        ),
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            format!("fencing {} failed: {e}", request.node),
        ),
    }
}

/// `POST /node/fence`.
#[derive(Serialize, Deserialize)]
pub struct FenceNode {
    pub node: String,
    /// `reboot` or `off`; default: the cluster's fencing-action.
    pub action: Option<String>,
}

async fn handle(node: &ClusterNode, role: Role, req: Request<Incoming>) -> Reply {
    let needed = match (req.method(), req.uri().path()) {
        (&Method::GET, _) => Role::ReadOnly,
        (_, "/config" | "/node/add" | "/node/remove" | "/node/confirm-down") => Role::Admin,
        _ => Role::Operator,
    };
    if role < needed {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "role {role:?} may not {} {}; needs {needed:?}",
                req.method(),
                req.uri().path()
            ),
        );
    }
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    match (method, path.as_str()) {
        (Method::GET, "/status") => json(
            StatusCode::OK,
            &view::status(node.view(), &node.replicated(), now()).await,
        ),
        (Method::GET, "/quorum") => json(StatusCode::OK, &node.view()),
        (Method::GET, "/config") => {
            let r = read_current(node).await;
            json(
                StatusCode::OK,
                &PutConfig {
                    expected_version: Some(r.config_version),
                    text: r.config_text,
                },
            )
        }
        (Method::PUT, "/config") => match serde_json::from_slice::<PutConfig>(&body) {
            Ok(put) => put_config(node, put).await,
            Err(e) => error(StatusCode::BAD_REQUEST, format!("body: {e}")),
        },
        (Method::POST, "/node/confirm-down") => match serde_json::from_slice::<FenceNode>(&body) {
            Ok(confirm) => match crate::fencing::confirm_down(node, &confirm.node).await {
                Ok(message) => json(StatusCode::OK, &serde_json::json!({ "message": message })),
                Err(e @ crate::fencing::ConfirmError::Unknown(_)) => {
                    error(StatusCode::NOT_FOUND, e.to_string())
                }
                Err(e) => error(StatusCode::CONFLICT, e.to_string()),
            },
            Err(e) => error(StatusCode::BAD_REQUEST, format!("body: {e}")),
        },
        (Method::POST, "/node/attribute") => match serde_json::from_slice::<SetAttribute>(&body) {
            Ok(set) => set_attribute(node, set).await,
            Err(e) => error(StatusCode::BAD_REQUEST, format!("body: {e}")),
        },
        (Method::POST, "/node/add") => match serde_json::from_slice(&body) {
            Ok(add) => crate::membership::add(node, add).await,
            Err(e) => error(StatusCode::BAD_REQUEST, format!("body: {e}")),
        },
        (Method::POST, "/node/remove") => match serde_json::from_slice(&body) {
            Ok(remove) => crate::membership::remove(node, remove).await,
            Err(e) => error(StatusCode::BAD_REQUEST, format!("body: {e}")),
        },
        (Method::POST, "/property") => match serde_json::from_slice::<SetProperty>(&body) {
            Ok(set) => set_property(node, set).await,
            Err(e) => error(StatusCode::BAD_REQUEST, format!("body: {e}")),
        },
        (m, p) if crate::admin::serves(&m, p) => {
            crate::admin::handle(node, role, &m, p, &body).await
        }
        (m, p) => error(StatusCode::NOT_FOUND, format!("no endpoint {m} {p}")),
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The replicated state with everything committed so far applied, for a
/// read an operator bases a write on (an export, a plan): a node still
/// catching up would answer an old configuration version, and the write
/// would conflict. Best effort: without a DC the local state is answered
/// (the write's version check still guards it).
pub(crate) async fn read_current(node: &ClusterNode) -> tandem_cluster::Replicated {
    if let Err(e) = node.read_barrier(READ_BARRIER_WITHIN).await {
        tracing::warn!("answering this node's state, which may be behind the DC's: {e}");
    }
    node.replicated()
}

/// How long [`read_current`] waits for the DC's read index and to apply it.
const READ_BARRIER_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

async fn commit(node: &ClusterNode, command: Command) -> Reply {
    match node.propose(command).await {
        Ok(CommandResult::Applied { config_version }) => json(StatusCode::OK, &serde_json::json!({ "config_version": config_version })),
        Ok(CommandResult::Conflict { expected, actual }) => error(
            StatusCode::CONFLICT,
            format!("configuration changed concurrently: expected version {expected}, it is now {actual}; re-read and retry"),
        ),
        Ok(CommandResult::Stale) => error(
            StatusCode::CONFLICT,
            "an operation record that is no longer news: nothing changed",
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn put_config(node: &ClusterNode, put: PutConfig) -> Reply {
    if let Err(e) = admitted(node, &put.text).await {
        return e;
    }
    commit(
        node,
        Command::PutConfig {
            expected_version: put.expected_version,
            text: put.text,
        },
    )
    .await
}

async fn set_attribute(node: &ClusterNode, set: SetAttribute) -> Reply {
    let known = node
        .members()
        .values()
        .any(|m| m.name == set.node && !m.witness);
    if !known {
        return error(
            StatusCode::NOT_FOUND,
            format!("no data node named {:?}", set.node),
        );
    }
    commit(
        node,
        Command::SetNodeAttribute {
            node: set.node,
            name: set.name,
            value: set.value,
        },
    )
    .await
}

async fn set_property(node: &ClusterNode, set: SetProperty) -> Reply {
    let state = node.replicated();
    let mut cluster = match tandem_model::native::parse_toml(&state.config_text) {
        Ok(c) => c,
        Err(e) => {
            return error(
                StatusCode::CONFLICT,
                format!("no valid configuration to change: {e}"),
            )
        }
    };
    if cluster.config.options.is_empty() {
        cluster.config.options.push(tandem_model::NvSet {
            id: "cluster-options".into(),
            ..Default::default()
        });
    }
    let pairs = &mut cluster.config.options[0].pairs;
    pairs.retain(|p| p.name != set.name);
    pairs.push(tandem_model::NvPair {
        name: set.name,
        value: Some(set.value),
    });
    let text = tandem_model::native::to_toml(&cluster);
    if let Err(e) = admitted(node, &text).await {
        return e;
    }
    commit(
        node,
        Command::PutConfig {
            expected_version: Some(state.config_version),
            text,
        },
    )
    .await
}

/// Whether `text` may be committed: it parses, is within the limits and
/// schedules within the admission budget on the live cluster. The error
/// is the reply (422 naming what is wrong, or 503 when busy).
async fn admitted(node: &ClusterNode, text: &str) -> Result<(), Reply> {
    let (view, state) = (node.view(), node.replicated());
    match crate::preview::plan(&view, &state, text, now()).await {
        Ok(_) => Ok(()),
        Err(e) => Err(crate::admin::preview_refused(
            "configuration rejected, nothing changed",
            &e,
        )),
    }
}
