//! The admin endpoint: `GET /metrics` (Prometheus text) and `GET /status`
//! (JSON [`crate::Status`]) on the `[admin]` bind address. Read-only.

use crate::drain::DrainProgress;
use crate::LbShared;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::sync::watch;

pub async fn serve(listener: TcpListener, lb: Arc<LbShared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a { Ok(x) => x, Err(_) => continue },
            _ = shutdown.changed() => return,
        };
        let lb = lb.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let lb = lb.clone();
                async move { Ok::<_, Infallible>(answer(&lb, req.method(), req.uri().path())) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

type AdminBody = BoxBody<Bytes, Infallible>;

fn answer(lb: &LbShared, method: &Method, path: &str) -> Response<AdminBody> {
    if method == Method::POST {
        return control(lb, path);
    }
    let (status, ctype, body) = match path {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            lb.metrics_text(),
        ),
        "/status" => (
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&lb.status()).unwrap_or_default(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics or /status\n".into(),
        ),
    };
    text(status, ctype, body)
}

fn text(status: StatusCode, ctype: &str, body: String) -> Response<AdminBody> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = status;
    if let Ok(v) = ctype.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn control(lb: &LbShared, path: &str) -> Response<AdminBody> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (verb, pool, backend) = match parts.as_slice() {
        [verb, pool, backend] => (*verb, *pool, *backend),
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "text/plain",
                "POST /drain/POOL/BACKEND or /undrain/POOL/BACKEND\n".into(),
            )
        }
    };
    let result = match verb {
        "drain" => lb.drain(pool, backend).map(|rx| {
            let mut r = Response::new(ProgressBody { rx }.boxed());
            if let Ok(v) = "application/x-ndjson".parse() {
                r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
            }
            r
        }),
        "undrain" => lb
            .undrain(pool, backend)
            .map(|()| text(StatusCode::OK, "text/plain", "undrained\n".into())),
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "text/plain",
                format!("unknown action {verb}\n"),
            )
        }
    };
    result.unwrap_or_else(|e| text(StatusCode::NOT_FOUND, "text/plain", format!("{e}\n")))
}

/// Drain progress as JSON lines, ending when the drain does.
struct ProgressBody {
    rx: mpsc::Receiver<DrainProgress>,
}

impl Body for ProgressBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|p| {
            p.map(|p| {
                let mut line = serde_json::to_string(&p).unwrap_or_default();
                line.push('\n');
                Ok(Frame::data(Bytes::from(line)))
            })
        })
    }
}
