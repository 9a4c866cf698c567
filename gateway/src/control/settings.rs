//! `SettingsService`: the kill switch and the defaults for new tools.

use serde_json::json;
use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::settings_service_server::SettingsService;

use super::Control;
use super::auth::actor;
use super::convert::{classification_from_proto, classification_to_proto};
use super::error::ControlError;
use crate::audit::Action;
use crate::model::{AuditEvent, Settings};
use crate::store::Batch;

fn to_proto(s: &Settings) -> v1::Settings {
    v1::Settings {
        mcp_traffic_enabled: s.mcp_traffic_enabled,
        require_tool_approval: s.require_tool_approval,
        default_classification: Some(classification_to_proto(s.default_classification)),
    }
}

#[tonic::async_trait]
impl SettingsService for Control {
    async fn get_settings(
        &self,
        _request: Request<v1::GetSettingsRequest>,
    ) -> Result<Response<v1::GetSettingsResponse>, Status> {
        let settings = self.store.settings().await.map_err(ControlError::from)?;
        Ok(Response::new(v1::GetSettingsResponse {
            settings: Some(to_proto(&settings)),
        }))
    }

    async fn update_settings(
        &self,
        request: Request<v1::UpdateSettingsRequest>,
    ) -> Result<Response<v1::UpdateSettingsResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let classification = req
            .default_classification
            .as_ref()
            .map(|c| classification_from_proto(c, "default_classification"))
            .transpose()?;
        let settings = self
            .store
            .write(|store| async move {
                let before = store.settings().await?;
                let mut after = before.clone();
                if let Some(on) = req.mcp_traffic_enabled {
                    after.mcp_traffic_enabled = on;
                }
                if let Some(require) = req.require_tool_approval {
                    after.require_tool_approval = require;
                }
                if let Some(c) = classification {
                    after.default_classification = c;
                }
                let mut batch = Batch::default();
                if after != before {
                    let mut changed = Vec::new();
                    if after.mcp_traffic_enabled != before.mcp_traffic_enabled {
                        changed.push(format!(
                            "MCP traffic {}",
                            if after.mcp_traffic_enabled {
                                "enabled"
                            } else {
                                "DISABLED (kill switch)"
                            }
                        ));
                    }
                    if after.require_tool_approval != before.require_tool_approval {
                        changed.push(format!(
                            "require tool approval {}",
                            after.require_tool_approval
                        ));
                    }
                    if after.default_classification != before.default_classification {
                        changed.push("default classification changed".into());
                    }
                    batch.put_settings(&after);
                    batch.audit(
                        AuditEvent::allowed(&actor, Action::SettingsUpdate, "settings")
                            .with_reason(changed.join("; "))
                            .with_details(json!({"before": before, "after": after})),
                    );
                }
                Ok::<_, ControlError>((batch, after))
            })
            .await?;
        Ok(Response::new(v1::UpdateSettingsResponse {
            settings: Some(to_proto(&settings)),
        }))
    }
}
