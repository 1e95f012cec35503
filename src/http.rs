//! The HTTP endpoint: `/metrics` (Prometheus text), `/healthz` (the process serves) and
//! `/readyz` (the MultiCasskop watch has listed once and, on the leader, every site's watch too).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::controller::Context;

/// Content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// Which paths an address serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoints {
    /// `/metrics`, `/healthz` and `/readyz`.
    All,
    /// `/healthz` and `/readyz` (the kubelet's probes), when `/metrics` has its own address.
    Health,
    /// `/metrics` only (e.g. on loopback behind kube-rbac-proxy).
    Metrics,
}

/// Answers one request on an address serving `endpoints`.
pub fn route_on(ctx: &Context, path: &str, endpoints: Endpoints) -> Response<Full<Bytes>> {
    let allowed = match endpoints {
        Endpoints::All => true,
        Endpoints::Health => path != "/metrics",
        Endpoints::Metrics => path == "/metrics",
    };
    if !allowed {
        return respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not served here\n".into(),
        );
    }
    match path {
        "/metrics" => respond(StatusCode::OK, PROMETHEUS_TEXT, ctx.metrics.encode()),
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => match ctx.readiness() {
            Ok(()) => respond(StatusCode::OK, "text/plain", "ready\n".into()),
            Err(why) => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

/// Binds `addr`, serves `endpoints` until the task is dropped, and returns the bound address.
pub async fn serve_on(
    addr: SocketAddr,
    ctx: Arc<Context>,
    endpoints: Endpoints,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    info!(%bound, ?endpoints, "serving HTTP");
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(error) => {
                    warn!(%error, "cannot accept an HTTP connection");
                    continue;
                }
            };
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let response = route_on(&ctx, request.uri().path(), endpoints);
                    async move { Ok::<_, Infallible>(response) }
                });
                if let Err(error) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    warn!(%error, "HTTP connection failed");
                }
            });
        }
    });
    Ok((bound, task))
}
