//! The public HTTP listener's accept loop: a connection cap, a header-read
//! timeout and an idle timeout, so clients that open connections and stall
//! cannot use up the process's file descriptors (which the control
//! listener, the store and outbound Salesforce calls need too); bounds on
//! every request it serves: header size (hyper: HTTP/1 `max_buf_size`,
//! HTTP/2 `max_header_list_size`; too large gets 431), body size
//! (tower-http's `RequestBodyLimit`: 413, for every route) and the time a
//! whole request may take to arrive ([`bound`]: a body still arriving when
//! it runs out fails to read, the route answers 408 or 400 and the
//! connection is closed); and the start-up raise of the soft open-files
//! limit. Responses are not timed: MCP event streams and long tool calls
//! run as long as they need.
//!
//! It serves whatever router it is given and owns no routes. The control
//! (gRPC) listener is served by tonic and is not capped here: it is
//! admin-only and, with the public listener capped, keeps its descriptors.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Limits of the public listener, from [`crate::config::Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// A request's headers must arrive within this time, counted from the
    /// connection's start or the end of its previous response (hyper
    /// starts the timer whenever it waits for a request head), so this also
    /// bounds how long an idle keep-alive connection is kept.
    pub header_read_timeout: Duration,
    /// A connection that moves no bytes either way for this long is closed
    /// (a stalled request body, a client that stopped reading). rmcp sends
    /// an SSE keep-alive comment every 15 s on open streams, so keep this
    /// above 15 s.
    pub idle_timeout: Duration,
    /// Most connections open at once; further clients wait in the kernel's
    /// accept queue until one closes (the idea of mini-redis's connection
    /// semaphore).
    pub max_connections: usize,
    /// Largest request body in bytes, on every route (413 beyond).
    pub max_body_bytes: usize,
    /// Largest request head in bytes (request line and headers; HTTP/2:
    /// the header list as RFC 9113 section 6.5.2 counts it); 431 beyond.
    /// At least 8192 (hyper's smallest HTTP/1 buffer).
    pub max_header_bytes: usize,
    /// A request's body must have arrived within this time of its headers
    /// (the headers themselves are bounded by `header_read_timeout`).
    pub request_timeout: Duration,
}

impl ListenerLimits {
    /// Default [`Self::max_body_bytes`]: 4 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
    /// Default [`Self::max_header_bytes`]: 64 KiB.
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
    /// Smallest [`Self::max_header_bytes`] hyper takes.
    pub const MIN_HEADER_BYTES: usize = 8 * 1024;
    /// Default [`Self::request_timeout`]: 30 s.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
}

/// The error a request body read gets once the request timeout
/// ([`ListenerLimits::request_timeout`]) has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request did not arrive within {} s", .0.as_secs())]
pub struct RequestTimedOut(pub Duration);

impl RequestTimedOut {
    /// Whether `err` (or an error it wraps) is a [`RequestTimedOut`].
    pub fn is_cause_of(err: &(dyn std::error::Error + 'static)) -> bool {
        let mut next = Some(err);
        while let Some(e) = next {
            if e.is::<Self>() {
                return true;
            }
            next = e.source();
        }
        false
    }
}

/// A request body that fails with [`RequestTimedOut`] once its deadline
/// passes.
struct Deadline {
    inner: axum::body::BodyDataStream,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    expired: bool,
}

impl tokio_stream::Stream for Deadline {
    type Item = Result<axum::body::Bytes, axum::BoxError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = std::pin::Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item.map(|r| r.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired = true;
            return Poll::Ready(Some(Err(Box::new(RequestTimedOut(self.timeout)))));
        }
        Poll::Pending
    }
}

/// Puts a request's body under `timeout`, counted from now (its headers
/// have arrived). A request without a body passes as it is.
async fn request_deadline(
    timeout: Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::body::HttpBody;
    let request = if request.body().is_end_stream() {
        request
    } else {
        request.map(|body| {
            axum::body::Body::from_stream(Deadline {
                inner: body.into_data_stream(),
                deadline: Box::pin(tokio::time::sleep(timeout)),
                timeout,
                expired: false,
            })
        })
    };
    next.run(request).await
}

/// `router` with the per-request bounds of `limits`: the body size on every
/// route (a `Content-Length` over it gets 413 at once, a longer chunked
/// body fails to read and gets 413 from the route; axum's own 2 MB default
/// for extractors is replaced by this one) and the request timeout.
pub fn bound(router: Router, limits: &ListenerLimits) -> Router {
    let timeout = limits.request_timeout;
    router
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                request_deadline(timeout, request, next)
            },
        ))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            limits.max_body_bytes,
        ))
}

/// Descriptors the process keeps for itself beyond the public connections:
/// the store's files, the control listener and its clients, outbound
/// Salesforce connections.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (getrlimit(2)), so the
/// connection cap, not the default soft limit (often 1024), is what bounds
/// connections. Returns the soft limit in force afterwards.
///
/// # Errors
/// When the limits cannot be read or set; the daemon runs on with the
/// limit it has.
pub fn raise_open_files_limit() -> io::Result<u64> {
    #[cfg(unix)]
    {
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
        if soft >= hard {
            // Nothing to raise (systemd's LimitNOFILE= sets both).
            return Ok(soft);
        }
        rlimit::increase_nofile_limit(hard)
    }
    #[cfg(not(unix))]
    {
        Ok(u64::MAX)
    }
}

/// A TCP stream that records when bytes last moved, for the idle timeout.
struct Tracked {
    io: TcpStream,
    started: Instant,
    /// Milliseconds since `started` of the last read or write.
    last: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, std::task::Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(polled, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(polled, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Whether an accept error concerns one connection only (retry at once)
/// rather than the process (back off).
fn connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves `router` on `listener` until `shutdown`, within `limits`; then
/// asks every connection to finish its in-flight requests and waits for
/// them (the caller bounds that wait).
///
/// # Errors
/// Never returns an error today; accept errors are logged and retried with
/// a backoff (a full descriptor table clears when connections close).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let router = bound(router, &limits);
    let header_bytes = limits
        .max_header_bytes
        .max(ListenerLimits::MIN_HEADER_BYTES);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(header_bytes).unwrap_or(u32::MAX));
    let mut connections = JoinSet::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let tcp = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    backoff = Duration::from_millis(10);
                    tcp
                }
                Err(err) if connection_error(&err) => continue,
                Err(err) => {
                    tracing::warn!(error = %err, ?backoff, "cannot accept a public connection; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        // No Nagle delay: an MCP answer is written as several small SSE
        // chunks; with Nagle on, each waits for the client's delayed ACK
        // (about 40 ms on Linux).
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let builder = builder.clone();
        let service = TowerToHyperService::new(router.clone());
        let stop = shutdown.clone();
        let idle = limits.idle_timeout;
        connections.spawn(async move {
            let _permit = permit;
            let last = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let io = TokioIo::new(Tracked {
                io: tcp,
                started,
                last: last.clone(),
            });
            let connection = builder.serve_connection_with_upgrades(io, service);
            tokio::pin!(connection);
            let check_every = (idle / 4).max(Duration::from_millis(50));
            let mut idle_check = tokio::time::interval(check_every);
            let mut draining = false;
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(err) = served {
                            tracing::debug!(error = %err, "public connection ended with an error");
                        }
                        return;
                    }
                    () = stop.cancelled(), if !draining => {
                        connection.as_mut().graceful_shutdown();
                        draining = true;
                    }
                    _ = idle_check.tick() => {
                        let last = Duration::from_millis(last.load(Ordering::Relaxed));
                        if started.elapsed().saturating_sub(last) >= idle {
                            tracing::debug!(?idle, "closing an idle public connection");
                            return;
                        }
                    }
                }
            }
        });
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}
