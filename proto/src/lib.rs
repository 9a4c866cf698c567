//! The `toolgate.v1` control API: messages and tonic clients and servers
//! generated from `proto/toolgate/v1/*.proto`. Generated code is never edited
//! by hand; the daemon converts to and from its domain types in
//! `toolgate_gateway::control`. Every generated service and client uses
//! [`codec::InvalidArgumentCodec`], so a request that does not decode
//! answers `INVALID_ARGUMENT`.
//!
//! [`admin`] is the client side of the admin token: the interceptor every
//! caller of the control API uses, and [`Clients`] connected with it.

pub mod admin;
pub mod codec;

pub use admin::{AdminClients, AdminToken, AdminTokenError};

/// Package `toolgate.v1`. See the `.proto` files for field meanings and errors.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("toolgate.v1");

    /// The encoded `FileDescriptorSet` of every `toolgate.v1` file, for server
    /// reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("toolgate_v1_descriptor");

    impl std::fmt::Debug for ConfigureAuthenticationRequest {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ConfigureAuthenticationRequest")
                .field("server_id", &self.server_id)
                .field("mode", &self.mode)
                .field("client_id", &self.client_id)
                .field(
                    "client_secret",
                    &if self.client_secret.is_empty() {
                        ""
                    } else {
                        "<redacted>"
                    },
                )
                .field("scopes", &self.scopes)
                .finish()
        }
    }

    impl std::fmt::Debug for IdentityProviderInput {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("IdentityProviderInput")
                .field("issuer_url", &self.issuer_url)
                .field("client_id", &self.client_id)
                .field(
                    "client_secret",
                    &match self.client_secret.as_deref() {
                        None => "<unset>",
                        Some("") => "",
                        Some(_) => "<redacted>",
                    },
                )
                .field("scopes", &self.scopes)
                .field("email_claim", &self.email_claim)
                .field("groups_claim", &self.groups_claim)
                .field("allowed_email_domains", &self.allowed_email_domains)
                .field("allowed_groups", &self.allowed_groups)
                .field("unknown_users", &self.unknown_users)
                .finish()
        }
    }

    impl std::fmt::Debug for IssueTokenResponse {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("IssueTokenResponse")
                .field("token", &self.token)
                .field("secret", &"<redacted>")
                .field("mcp_url", &self.mcp_url)
                .finish()
        }
    }
}

use tonic::codegen::{Body, Bytes, StdError};

/// One client per `toolgate.v1` service, all over one transport `S` (a
/// tonic `Channel`, usually wrapped in [`AdminToken`], which adds the admin
/// token as `authorization: Bearer ...`: see [`AdminClients`] and
/// [`Clients::connect_admin`]). Cloning is cheap when cloning `S` is (a
/// `Channel` is a handle).
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct Clients<S> {
    pub settings: v1::settings_service_client::SettingsServiceClient<S>,
    pub catalog: v1::catalog_service_client::CatalogServiceClient<S>,
    pub servers: v1::server_service_client::ServerServiceClient<S>,
    pub tools: v1::tool_service_client::ToolServiceClient<S>,
    pub toolsets: v1::toolset_service_client::ToolsetServiceClient<S>,
    pub profiles: v1::access_profile_service_client::AccessProfileServiceClient<S>,
    pub users: v1::user_service_client::UserServiceClient<S>,
    pub audit: v1::audit_service_client::AuditServiceClient<S>,
    pub connections: v1::connection_service_client::ConnectionServiceClient<S>,
    pub clients: v1::client_service_client::ClientServiceClient<S>,
    pub access_requests: v1::access_request_service_client::AccessRequestServiceClient<S>,
    pub hooks: v1::hook_service_client::HookServiceClient<S>,
    pub held_calls: v1::held_call_service_client::HeldCallServiceClient<S>,
}

impl<S> Clients<S>
where
    S: tonic::client::GrpcService<tonic::body::Body> + Clone,
    S::Error: Into<StdError>,
    S::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <S::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    /// Every service's client over clones of `service`.
    pub fn new(service: S) -> Self {
        use v1::access_profile_service_client::AccessProfileServiceClient;
        use v1::access_request_service_client::AccessRequestServiceClient;
        use v1::audit_service_client::AuditServiceClient;
        use v1::catalog_service_client::CatalogServiceClient;
        use v1::client_service_client::ClientServiceClient;
        use v1::connection_service_client::ConnectionServiceClient;
        use v1::held_call_service_client::HeldCallServiceClient;
        use v1::hook_service_client::HookServiceClient;
        use v1::server_service_client::ServerServiceClient;
        use v1::settings_service_client::SettingsServiceClient;
        use v1::tool_service_client::ToolServiceClient;
        use v1::toolset_service_client::ToolsetServiceClient;
        use v1::user_service_client::UserServiceClient;
        Self {
            settings: SettingsServiceClient::new(service.clone()),
            catalog: CatalogServiceClient::new(service.clone()),
            servers: ServerServiceClient::new(service.clone()),
            tools: ToolServiceClient::new(service.clone()),
            toolsets: ToolsetServiceClient::new(service.clone()),
            profiles: AccessProfileServiceClient::new(service.clone()),
            users: UserServiceClient::new(service.clone()),
            audit: AuditServiceClient::new(service.clone()),
            connections: ConnectionServiceClient::new(service.clone()),
            clients: ClientServiceClient::new(service.clone()),
            access_requests: AccessRequestServiceClient::new(service.clone()),
            hooks: HookServiceClient::new(service.clone()),
            held_calls: HeldCallServiceClient::new(service),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::v1;

    #[test]
    fn debug_output_never_shows_secrets() {
        let request = v1::ConfigureAuthenticationRequest {
            client_secret: "very-secret-value".into(),
            ..Default::default()
        };
        assert!(!format!("{request:?}").contains("very-secret-value"));
        let response = v1::IssueTokenResponse {
            token: None,
            secret: "tgp_secret_token".into(),
            mcp_url: "https://toolgate.example.com/mcp".into(),
        };
        assert!(!format!("{response:?}").contains("tgp_secret_token"));
        let provider = v1::UpdateSettingsRequest {
            identity_provider: Some(v1::IdentityProviderInput {
                client_secret: Some("idp-secret-value".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(!format!("{provider:?}").contains("idp-secret-value"));
    }
}
