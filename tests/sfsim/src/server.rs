//! Listeners and routes: the login host and the instance URL, each on its
//! own port, both also serving the `/_sfsim/` test-control endpoints.

use std::sync::Arc;

use axum::Router;
use axum::ServiceExt;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

use crate::config::SimConfig;
use crate::error::RestError;
use crate::state::Sim;
use crate::{admin, oauth, paging, rest};

fn admin_routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sfsim/state", get(admin::state))
        .route("/_sfsim/faults", post(admin::set_faults))
        .route(
            "/_sfsim/expire-access-tokens",
            post(admin::expire_access_tokens),
        )
        .route(
            "/_sfsim/revoke-refresh-tokens",
            post(admin::revoke_refresh_tokens),
        )
        .route("/_sfsim/reset-counters", post(admin::reset_counters))
}

/// The login host's routes.
pub fn login_router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(
            "/services/oauth2/authorize",
            get(oauth::authorize_page).post(oauth::authorize_submit),
        )
        .route("/services/oauth2/token", post(oauth::token))
        .route("/services/oauth2/revoke", post(oauth::revoke))
        .route("/services/oauth2/userinfo", get(oauth::userinfo))
        .route("/id/{org}/{user}", get(oauth::identity))
        .merge(admin_routes())
        .fallback(not_found)
        .with_state(sim)
}

/// The instance URL's routes.
pub fn instance_router(sim: Arc<Sim>) -> Router {
    let data = "/services/data/{v}";
    Router::new()
        .route("/services/data", get(rest::versions))
        .route(data, get(rest::resources))
        .route(&format!("{data}/sobjects"), get(rest::describe_global))
        .route(&format!("{data}/sobjects/{{object}}"), post(rest::create))
        .route(
            &format!("{data}/sobjects/{{object}}/describe"),
            get(rest::describe),
        )
        .route(
            &format!("{data}/sobjects/{{object}}/{{id}}"),
            get(rest::get_record)
                .patch(rest::update_or_delete)
                .delete(rest::update_or_delete),
        )
        .route(
            &format!("{data}/sobjects/{{object}}/{{a}}/{{b}}"),
            get(rest::upsert_or_relationship).patch(rest::upsert_or_relationship),
        )
        .route(&format!("{data}/query"), get(paging::query))
        .route(&format!("{data}/queryAll"), get(paging::query_all))
        .route(
            &format!("{data}/{{kind}}/{{cursor}}"),
            get(paging::query_more),
        )
        .route(&format!("{data}/search"), get(rest::search))
        .route(
            &format!("{data}/parameterizedSearch"),
            get(rest::parameterized_search).post(rest::parameterized_search),
        )
        .route(&format!("{data}/recent"), get(rest::recent))
        .route(&format!("{data}/limits"), get(rest::limits))
        .route("/services/oauth2/userinfo", get(oauth::userinfo))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            rest::limit_header,
        ))
        .merge(admin_routes())
        .with_state(sim)
}

/// Any path no route serves: Salesforce's 404 body.
async fn not_found() -> Response {
    RestError::not_found().into_response()
}

/// Middleware around a whole router (outside it: axum adds the `Allow`
/// header after its own layers ran): a 405 (a known path, another method)
/// gets Salesforce's body, naming the method and the allowed ones from the
/// `Allow` header; other headers stay.
async fn method_not_allowed(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let allowed = parts
        .headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .replace(' ', "");
    let body = RestError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
    )
    .body();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// A running simulator.
#[derive(Debug)]
pub struct Running {
    /// The login host, e.g. `http://127.0.0.1:9410`.
    pub login_url: String,
    /// The instance URL, e.g. `http://127.0.0.1:9411`.
    pub instance_url: String,
    /// The simulator, for in-process inspection and fault switches.
    pub sim: Arc<Sim>,
    shutdown: CancellationToken,
    tasks: JoinSet<std::io::Result<()>>,
}

impl Running {
    /// Requests served by `endpoint` (see the counter names in the README).
    pub fn counter(&self, endpoint: &str) -> u64 {
        self.sim.lock().counters.get(endpoint).copied().unwrap_or(0)
    }

    /// Stops both listeners.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Checks `config` (see [`SimConfig::validate`]), binds its login and
/// instance listeners (port 0 picks free ports), seeds the org and serves it.
pub async fn start(config: SimConfig) -> anyhow::Result<Running> {
    config.validate()?;
    let login = TcpListener::bind(config.login_addr).await?;
    let instance = TcpListener::bind(config.instance_addr).await?;
    let login_url = format!("http://{}", login.local_addr()?);
    let instance_port = instance.local_addr()?.port();
    let sim = Arc::new(Sim::new(config, login_url.clone(), instance_port));
    let instance_url = sim.instance_url.clone();
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    for (listener, router) in [
        (login, login_router(sim.clone())),
        (instance, instance_router(sim.clone())),
    ] {
        let stop = shutdown.clone();
        // Salesforce accepts a trailing slash on every resource
        // (`.../query/`, `.../sobjects/Account/`); clients send them.
        let app = NormalizePathLayer::trim_trailing_slash()
            .layer(axum::middleware::from_fn(method_not_allowed).layer(router));
        tasks.spawn(async move {
            axum::serve(listener, ServiceExt::<Request>::into_make_service(app))
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
    }
    Ok(Running {
        login_url,
        instance_url,
        sim,
        shutdown,
        tasks,
    })
}
