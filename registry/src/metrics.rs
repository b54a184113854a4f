//! Prometheus metrics at `GET /metrics`: requests by method, route group and
//! status, their latency, and bytes served and received by blob endpoints.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of one request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// Route group: base, blobs, uploads, manifests, tags, referrers, catalog, trust, token, other.
    pub route: &'static str,
    /// Status code.
    pub status: u16,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route group.
    pub route: &'static str,
}

/// The registry's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

fn route_group(path: &str) -> &'static str {
    if path == "/v2/" || path == "/v2" {
        return "base";
    }
    if path.starts_with("/token") {
        return "token";
    }
    if !path.starts_with("/v2/") {
        return "other";
    }
    if path.contains("/_trust/") {
        "trust"
    } else if path.contains("/blobs/uploads") {
        "uploads"
    } else if path.contains("/blobs/") {
        "blobs"
    } else if path.contains("/manifests/") {
        "manifests"
    } else if path.ends_with("/tags/list") {
        "tags"
    } else if path.contains("/referrers/") {
        "referrers"
    } else if path == "/v2/_catalog" {
        "catalog"
    } else {
        "other"
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register the metric families.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bay_registry");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 4.0, 10))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head, by route",
            latency.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Middleware recording every request.
pub async fn record(
    State(m): State<std::sync::Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = route_group(req.uri().path());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    m.latency
        .get_or_create(&RouteLabels { route })
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

/// `GET /metrics`
pub async fn serve(State(m): State<std::sync::Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_routes() {
        assert_eq!(route_group("/v2/"), "base");
        assert_eq!(route_group("/v2/a/b/blobs/uploads/x"), "uploads");
        assert_eq!(route_group("/v2/a/blobs/sha256:x"), "blobs");
        assert_eq!(route_group("/v2/a/manifests/v1"), "manifests");
        assert_eq!(route_group("/v2/a/tags/list"), "tags");
        assert_eq!(route_group("/v2/_catalog"), "catalog");
        assert_eq!(route_group("/token"), "token");
        assert_eq!(route_group("/v2/x/_trust/tuf/root.json"), "trust");
    }

    #[test]
    fn encodes_counters() {
        let m = Metrics::new();
        m.requests
            .get_or_create(&RequestLabels {
                method: "GET".into(),
                route: "blobs",
                status: 200,
            })
            .inc();
        let text = m.encode();
        assert!(
            text.contains(
                r#"bay_registry_http_requests_total{method="GET",route="blobs",status="200"} 1"#
            ),
            "{text}"
        );
    }
}
