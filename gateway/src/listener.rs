//! The public HTTP listener's accept loop: a connection cap, a header-read
//! timeout and an idle timeout, so clients that open connections and stall
//! cannot use up the process's file descriptors (which the control
//! listener, the store and outbound Salesforce calls need too); and the
//! start-up raise of the soft open-files limit.
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
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
