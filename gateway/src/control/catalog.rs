//! `CatalogService`: the built-in server kinds.

use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::catalog_service_server::CatalogService;

use super::Control;
use super::convert::classification_to_proto;
use super::error::ControlError;
use super::servers::login_host_kind;
use crate::catalog::{self, CatalogEntry};
use crate::model::{Classification, LoginHost, ToolAnnotations};

/// Domain annotations to proto (absent hints read as false).
pub(super) fn annotations_to_proto(a: &ToolAnnotations) -> v1::ToolAnnotations {
    v1::ToolAnnotations {
        title: a.title.clone().unwrap_or_default(),
        read_only_hint: a.read_only_hint.unwrap_or(false),
        destructive_hint: a.destructive_hint.unwrap_or(false),
        idempotent_hint: a.idempotent_hint.unwrap_or(false),
        open_world_hint: a.open_world_hint.unwrap_or(false),
    }
}

fn entry_to_proto(
    entry: &CatalogEntry,
    callback_url: String,
    default_classification: Classification,
) -> v1::CatalogEntry {
    v1::CatalogEntry {
        kind: entry.kind.into(),
        display_name: entry.display_name.into(),
        description: entry.description.into(),
        auth_modes: vec![v1::AuthMode::PerUserOauth.into()],
        default_scopes: entry.default_scopes.iter().map(|s| s.to_string()).collect(),
        login_hosts: entry
            .login_hosts
            .iter()
            .map(|host| v1::LoginHostOption {
                kind: login_host_kind(host).into(),
                url: host.url().to_owned(),
                description: match host {
                    LoginHost::Production => "Production orgs and Developer Edition",
                    LoginHost::Sandbox => "Sandbox orgs (tokens from a sandbox do not work on production)",
                    LoginHost::MyDomain(_) => {
                        "The org's My Domain URL, e.g. https://acme.my.salesforce.com (required when the org blocks the generic login hosts)"
                    }
                }
                .into(),
            })
            .collect(),
        callback_url,
        default_tool_prefix: entry.default_tool_prefix.into(),
        default_api_version: entry.default_api_version.into(),
        tools: entry
            .tools
            .iter()
            .map(|tool| v1::CatalogTool {
                name: tool.name.clone(),
                title: tool.title.clone(),
                description: tool.description.clone(),
                annotations: Some(annotations_to_proto(&tool.annotations)),
                default_classification: Some(classification_to_proto(
                    catalog::default_classification(tool, default_classification),
                )),
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl CatalogService for Control {
    async fn list_catalog_entries(
        &self,
        _request: Request<v1::ListCatalogEntriesRequest>,
    ) -> Result<Response<v1::ListCatalogEntriesResponse>, Status> {
        let settings = self.store.settings().await.map_err(ControlError::from)?;
        let entries = catalog::entries()
            .iter()
            .map(|entry| {
                entry_to_proto(entry, self.callback_url(), settings.default_classification)
            })
            .collect();
        Ok(Response::new(v1::ListCatalogEntriesResponse { entries }))
    }
}
