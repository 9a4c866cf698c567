//! The client side of the control API's admin authentication: an
//! interceptor that puts the admin token (and optionally an actor name for
//! the audit log) on every request, and [`Clients`] built over a channel
//! with it. Every program that calls the control API (the console, the
//! demo seeder, the benchmark, the integration tests) uses this one.
//!
//! The daemon's side of the same contract is
//! `toolgate_gateway::control::AdminAuth`: it requires
//! `authorization: Bearer <admin token>`, answers `UNAUTHENTICATED` when the
//! token is missing or wrong, and records the caller as `admin` or, with
//! [`ACTOR_HEADER`], as `admin:<actor>`.
//!
//! This module holds no secret longer than the header value it sends: the
//! formatted `Bearer ...` string is zeroized once it is parsed, the header
//! is marked sensitive (so `http`'s own `Debug` hides it), and
//! [`AdminToken`]'s `Debug` never shows it.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use zeroize::Zeroizing;

use crate::Clients;

/// Metadata key naming the admin in the audit log: the daemon records the
/// caller as `admin:<value>`. It accepts 1 to 64 characters of
/// `A-Z a-z 0-9 . _ @ -` and answers `INVALID_ARGUMENT` for anything else.
pub const ACTOR_HEADER: &str = "x-toolgate-actor";

/// The longest actor name the daemon accepts, in characters.
pub const ACTOR_MAX_CHARS: usize = 64;

/// Interceptor adding `authorization: Bearer <admin token>` and, when set,
/// [`ACTOR_HEADER`] to every request. Cloning is cheap (two header values).
/// Its `Debug` shows the actor but never the token.
///
/// ```
/// use toolgate_proto::admin::AdminToken;
/// let auth = AdminToken::new("tga_example")?.with_actor("ci-bot")?;
/// assert!(!format!("{auth:?}").contains("tga_example"));
/// # Ok::<(), toolgate_proto::admin::AdminTokenError>(())
/// ```
#[derive(Clone)]
pub struct AdminToken {
    authorization: MetadataValue<Ascii>,
    actor: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken")
            .field("authorization", &"<redacted>")
            .field("actor", &self.actor)
            .finish()
    }
}

/// Why an [`AdminToken`] cannot be built: a value that cannot be sent as an
/// HTTP header value, because it holds a control character other than a
/// tab (RFC 9110 section 5.5). The messages never repeat the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminTokenError {
    /// The admin token holds such characters.
    #[error("the admin token holds characters that cannot be sent in a header")]
    Token,
    /// The actor name holds such characters.
    #[error("the actor name holds characters that cannot be sent in a header")]
    Actor,
}

impl AdminToken {
    /// Sends `token` as the admin token; whitespace around it (such as the
    /// newline at the end of `admin.token`) is dropped. No actor is sent,
    /// so the daemon records the caller as `admin`.
    ///
    /// Errors: [`AdminTokenError::Token`] when the token cannot go in a
    /// header.
    pub fn new(token: &str) -> Result<Self, AdminTokenError> {
        let bearer = Zeroizing::new(format!("Bearer {}", token.trim()));
        let mut authorization: MetadataValue<Ascii> =
            bearer.parse().map_err(|_| AdminTokenError::Token)?;
        authorization.set_sensitive(true);
        Ok(Self {
            authorization,
            actor: None,
        })
    }

    /// Also sends `actor` as it is in [`ACTOR_HEADER`]. The daemon refuses
    /// a name it does not accept with `INVALID_ARGUMENT` rather than
    /// replacing it; use [`AdminToken::with_actor_lossy`] for a name typed
    /// by a person or taken from the environment.
    ///
    /// Errors: [`AdminTokenError::Actor`] when the name cannot go in a
    /// header at all.
    pub fn with_actor(mut self, actor: &str) -> Result<Self, AdminTokenError> {
        self.actor = Some(actor.parse().map_err(|_| AdminTokenError::Actor)?);
        Ok(self)
    }

    /// Also sends `actor`, reduced to what the daemon accepts: characters
    /// other than `A-Z a-z 0-9 . _ @ -` are dropped and the rest is cut to
    /// [`ACTOR_MAX_CHARS`]. When nothing is left, no actor is sent.
    pub fn with_actor_lossy(mut self, actor: &str) -> Self {
        let name: String = actor
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._@-".contains(*c))
            .take(ACTOR_MAX_CHARS)
            .collect();
        // Only ASCII is left, so the header value always parses.
        self.actor = name.parse().ok().filter(|_| !name.is_empty());
        self
    }
}

impl Interceptor for AdminToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.authorization.clone());
        if let Some(actor) = &self.actor {
            metadata.insert(ACTOR_HEADER, actor.clone());
        }
        Ok(request)
    }
}

/// A channel whose every request carries an [`AdminToken`].
pub type AdminService = InterceptedService<Channel, AdminToken>;

/// One client per `toolgate.v1` service, every request carrying the admin
/// token. Cloning is cheap.
pub type AdminClients = Clients<AdminService>;

impl Clients<AdminService> {
    /// Every service's client over `channel`, each request carrying `token`.
    /// Use this with a channel built to taste (for example
    /// `Endpoint::connect_lazy` with timeouts).
    pub fn with_admin_token(channel: Channel, token: AdminToken) -> Self {
        Self::new(InterceptedService::new(channel, token))
    }

    /// Connects to the control API at `addr` (`http://host:port`, or a bare
    /// `host:port`, which gets `http://`) and returns every service's
    /// client, each request carrying `token`. The connection is made before
    /// this returns; tonic reconnects after it breaks.
    ///
    /// Errors: `addr` is not a URI, or nothing answers there.
    pub async fn connect_admin(
        addr: &str,
        token: AdminToken,
    ) -> Result<Self, tonic::transport::Error> {
        let channel = endpoint(addr)?.connect().await?;
        Ok(Self::with_admin_token(channel, token))
    }
}

/// The endpoint of `addr`: `http://host:port` as it is, a bare `host:port`
/// with `http://` in front.
///
/// Errors: what is left is not a URI.
pub fn endpoint(addr: &str) -> Result<Endpoint, tonic::transport::Error> {
    if addr.contains("://") {
        Endpoint::from_shared(addr.to_owned())
    } else {
        Endpoint::from_shared(format!("http://{addr}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(mut auth: AdminToken) -> tonic::metadata::MetadataMap {
        auth.call(Request::new(())).unwrap().metadata().clone()
    }

    #[test]
    fn adds_the_bearer_token_trimmed_and_no_actor_by_default() {
        let metadata = sent(AdminToken::new(" tga_secret-value\n").unwrap());
        assert_eq!(
            metadata.get("authorization").unwrap(),
            "Bearer tga_secret-value"
        );
        assert!(metadata.get("authorization").unwrap().is_sensitive());
        assert!(metadata.get(ACTOR_HEADER).is_none());
    }

    #[test]
    fn with_actor_sends_the_name_as_it_is() {
        let metadata = sent(
            AdminToken::new("tga_x")
                .unwrap()
                .with_actor("bad actor!")
                .unwrap(),
        );
        assert_eq!(metadata.get(ACTOR_HEADER).unwrap(), "bad actor!");
        assert_eq!(
            AdminToken::new("tga_x")
                .unwrap()
                .with_actor("ci\nbot")
                .unwrap_err(),
            AdminTokenError::Actor
        );
    }

    #[test]
    fn with_actor_lossy_keeps_what_the_daemon_accepts() {
        let auth = AdminToken::new("tga_x").unwrap();
        let metadata = sent(auth.clone().with_actor_lossy("Jane Doé <jane@acme.io>"));
        assert_eq!(metadata.get(ACTOR_HEADER).unwrap(), "JaneDojane@acme.io");
        let long = "a".repeat(100);
        let metadata = sent(auth.clone().with_actor_lossy(&long));
        assert_eq!(metadata.get(ACTOR_HEADER).unwrap().len(), ACTOR_MAX_CHARS);
        let metadata = sent(auth.with_actor_lossy("!!! ***"));
        assert!(metadata.get(ACTOR_HEADER).is_none());
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused_without_repeating_it() {
        let err = AdminToken::new("tga_\u{7f}secret").unwrap_err();
        assert_eq!(err, AdminTokenError::Token);
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let auth = AdminToken::new("tga_very-secret")
            .unwrap()
            .with_actor("ci-bot")
            .unwrap();
        let debug = format!("{auth:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("ci-bot"), "{debug}");
    }

    #[test]
    fn endpoint_adds_http_to_a_bare_address() {
        assert_eq!(
            endpoint("127.0.0.1:50051").unwrap().uri().to_string(),
            "http://127.0.0.1:50051/"
        );
        assert_eq!(
            endpoint("https://toolgate.example.com:8443")
                .unwrap()
                .uri()
                .to_string(),
            "https://toolgate.example.com:8443/"
        );
        assert!(endpoint("http://bad host").is_err());
    }
}
