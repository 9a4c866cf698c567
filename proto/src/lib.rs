//! The `toolgate.v1` control API: messages and tonic clients and servers
//! generated from `proto/toolgate/v1/*.proto`. Generated code is never edited
//! by hand; the daemon converts to and from its domain types in
//! `toolgate_gateway::control`.

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
    }
}
