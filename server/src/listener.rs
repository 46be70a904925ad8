//! Serving a router on a TCP listener, in plain HTTP/1.1 or over TLS, with the limits
//! that keep one client (or a crowd of idle sockets) from taking a node down.
//!
//! Owns: accepting connections, the TLS handshake, HTTP/1.1 framing, and the limits:
//! a cap on open connections (accepting waits for a free slot, as Go's
//! `netutil.LimitListener` does for etcd), a deadline for the TLS handshake and for each
//! request's headers (which also closes keep-alive connections left idle), and a deadline
//! for each request's answer. Puts the peer's TLS certificate into every request's
//! extensions ([`PeerCertificate`]). Must not touch: what requests mean (the routers).
//!
//! Upgraded connections (append streams) leave hyper when they upgrade: the service that
//! takes them over (`raft::service`) owns their limits.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower_service::Service;

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// A TLS handshake, and each request's headers (from the first byte a keep-alive
    /// connection waits for), must arrive within this; else the connection is closed.
    pub header_timeout: Duration,
    /// A request must be answered (headers of the response) within this; else `408`.
    pub request_timeout: Duration,
    /// Requests under this path carry files (up to `--max-upload-mib`): they get
    /// [`TRANSFER_TIMEOUT`] instead, as a 512 MiB body takes longer than any other.
    pub transfers: &'static str,
}

/// How long a request carrying a file may take (512 MiB at 1 MB/s).
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How long open connections get to finish their request once the node stops.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed accept (out of file descriptors: retrying at once would spin).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// The certificate the peer on a TLS connection presented (verified by the handshake).
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub CertificateDer<'static>);

/// Serves `router` on `listener` until `stopped` turns true.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), std::io::Error> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return Ok(()),
            accepted = accept(&listener, &slots) => accepted,
        };
        let Some((tcp, slot)) = accepted else {
            continue;
        };
        // Every answer here is small and wanted at once; without it, a reply written in
        // more than one piece can wait for the client's delayed ACK (Nagle).
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted connection");
        }
        let connection = Connection {
            router: router.clone(),
            limits,
            stopped: stopped.clone(),
            _slot: slot,
        };
        tokio::spawn(connection.run(tcp, tls.clone()));
    }
}

/// Waits for a free connection slot, then for a connection.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(tokio::net::TcpStream, OwnedSemaphorePermit)> {
    // The semaphore is never closed, so this cannot fail.
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((tcp, _)) => Some((tcp, slot)),
        Err(error) => {
            tracing::debug!(%error, "accept failed");
            tokio::time::sleep(ACCEPT_RETRY).await;
            None
        }
    }
}

/// One accepted connection; its slot is freed when it is dropped.
struct Connection {
    router: Router,
    limits: Limits,
    stopped: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(self, tcp: tokio::net::TcpStream, tls: Option<tokio_rustls::TlsAcceptor>) {
        let Some(acceptor) = tls else {
            return self.http(TokioIo::new(tcp), None).await;
        };
        let handshake = tokio::time::timeout(self.limits.header_timeout, acceptor.accept(tcp));
        let stream = match handshake.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%error, "TLS handshake refused");
                return;
            }
            Err(_) => return,
        };
        let certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| PeerCertificate(cert.clone().into_owned()));
        self.http(TokioIo::new(stream), certificate).await
    }

    async fn http<I>(self, io: TokioIo<I>, certificate: Option<PeerCertificate>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            router,
            limits,
            mut stopped,
            _slot,
        } = self;
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            if let Some(certificate) = &certificate {
                request.extensions_mut().insert(certificate.clone());
            }
            let mut router = router.clone();
            async move {
                let timeout = match request.uri().path().starts_with(limits.transfers) {
                    true => TRANSFER_TIMEOUT,
                    false => limits.request_timeout,
                };
                let answer = tokio::time::timeout(timeout, router.call(request));
                Ok::<Response<Body>, std::convert::Infallible>(match answer.await {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(_) => request_timeout(timeout),
                })
            }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(io, service)
            .with_upgrades();
        tokio::pin!(connection);
        let stop = async move {
            // The guard `wait_for` returns must not live across the awaits below.
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        tokio::select! {
            _ = connection.as_mut() => {}
            () = stop => {
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(STOP_GRACE, connection).await;
            }
        }
    }
}

fn request_timeout(after: Duration) -> Response<Body> {
    let why = format!("no answer within {} s", after.as_secs());
    (StatusCode::REQUEST_TIMEOUT, why).into_response()
}
