//! The gRPC control API (`toolgate.v1`): one tonic service per resource,
//! the admin bearer-token interceptor, and the conversions between proto
//! and domain types.
//!
//! Business rules live here, next to their validation; storage goes through
//! [`crate::store::Store::write`] so each change is atomic, flushed before
//! the answer, and audited with the admin actor. Errors become
//! `tonic::Status` in exactly one place ([`error`]). Nothing here logs or
//! returns a secret.

mod access_profiles;
mod access_requests;
mod audit;
mod auth;
mod catalog;
mod clients;
mod connections;
mod convert;
mod error;
mod held_calls;
mod hooks;
mod preview;
mod records;
mod servers;
mod settings;
mod tools;
mod toolsets;
mod users;
pub(crate) mod validate;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use toolgate_proto::v1;

use crate::store::Store;

pub(crate) use auth::AdminAuth;
pub(crate) use connections::Connections;
pub(crate) use servers::rediscover_after_upgrade;
pub(crate) use users::{TOKEN_PREFIX, token_client};

/// What every control service shares.
#[derive(Debug, Clone)]
pub(crate) struct Control {
    store: Arc<Store>,
    /// `<public URL>` without a trailing slash, for callback URLs.
    public_url: Arc<str>,
    /// Ends long-lived streams on shutdown.
    shutdown: CancellationToken,
    /// The domains a My Domain login host may be under.
    salesforce_domains: Arc<crate::salesforce::domains::SalesforceDomains>,
}

impl Control {
    /// Builds the shared state.
    pub(crate) fn new(store: Arc<Store>, public_url: &str, shutdown: CancellationToken) -> Self {
        Self {
            store,
            public_url: public_url.trim_end_matches('/').into(),
            shutdown,
            salesforce_domains: Arc::default(),
        }
    }

    /// Accepts My Domain login hosts under `domains` (Salesforce's own
    /// families plus the admin's `allowed_salesforce_domains`) instead of
    /// Salesforce's own only.
    pub(crate) fn with_salesforce_domains(
        mut self,
        domains: crate::salesforce::domains::SalesforceDomains,
    ) -> Self {
        self.salesforce_domains = Arc::new(domains);
        self
    }

    /// The OAuth callback URL users' browsers return to.
    pub(crate) fn callback_url(&self) -> String {
        format!("{}/auth/callback", self.public_url)
    }

    /// The MCP endpoint AI clients connect to.
    pub(crate) fn mcp_url(&self) -> String {
        format!("{}/mcp", self.public_url)
    }

    /// Every `toolgate.v1` service, each wrapped in the admin-token
    /// interceptor, as tonic routes.
    pub(crate) fn routes(&self, auth: AdminAuth) -> tonic::service::Routes {
        use tonic::service::Routes;
        use v1::access_profile_service_server::AccessProfileServiceServer;
        use v1::access_request_service_server::AccessRequestServiceServer;
        use v1::audit_service_server::AuditServiceServer;
        use v1::catalog_service_server::CatalogServiceServer;
        use v1::client_service_server::ClientServiceServer;
        use v1::hook_service_server::HookServiceServer;
        use v1::server_service_server::ServerServiceServer;
        use v1::settings_service_server::SettingsServiceServer;
        use v1::tool_service_server::ToolServiceServer;
        use v1::toolset_service_server::ToolsetServiceServer;
        use v1::user_service_server::UserServiceServer;

        Routes::new(SettingsServiceServer::with_interceptor(
            self.clone(),
            auth.clone(),
        ))
        .add_service(CatalogServiceServer::with_interceptor(
            self.clone(),
            auth.clone(),
        ))
        .add_service(ServerServiceServer::with_interceptor(
            self.clone(),
            auth.clone(),
        ))
        .add_service(ToolServiceServer::with_interceptor(
            self.clone(),
            auth.clone(),
        ))
        .add_service(ToolsetServiceServer::with_interceptor(
            self.clone(),
            auth.clone(),
        ))
        .add_service(AccessProfileServiceServer::with_interceptor(
            self.clone(),
            auth.clone(),
        ))
        .add_service(AccessRequestServiceServer::with_interceptor(
            self.clone(),
            auth.clone(),
        ))
        .add_service(UserServiceServer::with_interceptor(
            self.clone(),
            auth.clone(),
        ))
        .add_service(ClientServiceServer::with_interceptor(
            self.clone(),
            auth.clone(),
        ))
        .add_service(HookServiceServer::with_interceptor(
            self.clone(),
            auth.clone(),
        ))
        .add_service(AuditServiceServer::with_interceptor(
            self.clone(),
            auth.clone(),
        ))
        .add_service(
            v1::held_call_service_server::HeldCallServiceServer::with_interceptor(
                self.clone(),
                auth,
            ),
        )
    }

    /// [`Self::routes`] plus the `ConnectionService`, which needs the OAuth
    /// client to revoke tokens.
    pub(crate) fn routes_with(
        &self,
        auth: AdminAuth,
        connections: Connections,
    ) -> tonic::service::Routes {
        use v1::connection_service_server::ConnectionServiceServer;
        self.routes(auth.clone())
            .add_service(ConnectionServiceServer::with_interceptor(connections, auth))
    }
}

/// The names of the `toolgate.v1` services, for the health reporter.
pub(crate) const SERVICE_NAMES: [&str; 13] = [
    "toolgate.v1.SettingsService",
    "toolgate.v1.CatalogService",
    "toolgate.v1.ServerService",
    "toolgate.v1.ToolService",
    "toolgate.v1.ToolsetService",
    "toolgate.v1.AccessProfileService",
    "toolgate.v1.UserService",
    "toolgate.v1.AuditService",
    "toolgate.v1.ConnectionService",
    "toolgate.v1.ClientService",
    "toolgate.v1.HeldCallService",
    "toolgate.v1.AccessRequestService",
    "toolgate.v1.HookService",
];
