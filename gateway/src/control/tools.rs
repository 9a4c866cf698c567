//! `ToolService`: listing, reviewing and classifying discovered tools.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::tool_service_server::ToolService;

use super::Control;
use super::auth::actor;
use super::catalog::annotations_to_proto;
use super::convert::{action_from_proto, classification_to_proto, timestamp};
use super::error::{ControlError, Result, require};
use super::validate;
use crate::audit::Action;
use crate::governance::edit::{self, ClassificationEdit, ToolEdit};
use crate::model::{AuditEvent, Tool, ToolState, now_ms};
use crate::store::{Batch, ToolQuery};

const MAX_BATCH: usize = 10_000;

/// Domain tool to proto; `with_schemas` false leaves the schemas empty.
pub(super) fn tool_to_proto(t: &Tool, with_schemas: bool) -> v1::Tool {
    let schema = |v: Option<&serde_json::Value>| {
        v.filter(|_| with_schemas)
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    v1::Tool {
        id: t.id.clone(),
        server_id: t.server_id.clone(),
        upstream_name: t.definition.name.clone(),
        name: t.name.clone(),
        title: t.definition.title.clone(),
        description: t.definition.description.clone(),
        input_schema_json: schema(Some(&t.definition.input_schema)),
        output_schema_json: schema(t.definition.output_schema.as_ref()),
        annotations: Some(annotations_to_proto(&t.definition.annotations)),
        definition_hash: t.definition_hash.clone(),
        state: state_to_proto(t.state).into(),
        classification: Some(classification_to_proto(t.classification)),
        discovered_at: Some(timestamp(t.discovered_at)),
        updated_at: Some(timestamp(t.updated_at)),
        updated_by: t.updated_by.clone(),
        drift: t.drift.clone(),
    }
}

fn state_to_proto(s: ToolState) -> v1::ToolState {
    match s {
        ToolState::PendingReview => v1::ToolState::PendingReview,
        ToolState::Approved => v1::ToolState::Approved,
        ToolState::Disabled => v1::ToolState::Disabled,
        ToolState::Removed => v1::ToolState::Removed,
    }
}

/// Proto state to domain; `None` for UNSPECIFIED.
fn state_from_proto(value: i32, field: &str) -> Result<Option<ToolState>> {
    match v1::ToolState::try_from(value) {
        Ok(v1::ToolState::Unspecified) => Ok(None),
        Ok(v1::ToolState::PendingReview) => Ok(Some(ToolState::PendingReview)),
        Ok(v1::ToolState::Approved) => Ok(Some(ToolState::Approved)),
        Ok(v1::ToolState::Disabled) => Ok(Some(ToolState::Disabled)),
        Ok(v1::ToolState::Removed) => Ok(Some(ToolState::Removed)),
        Err(_) => Err(ControlError::invalid(
            field,
            format!("unknown value {value}"),
        )),
    }
}

/// A state an admin may set: PENDING_REVIEW, APPROVED or DISABLED.
fn settable_state(value: i32, field: &str) -> Result<ToolState> {
    match state_from_proto(value, field)? {
        Some(ToolState::Removed) => Err(ControlError::invalid(
            field,
            "REMOVED is set by discovery only; use DISABLED to stop a tool",
        )),
        Some(state) => Ok(state),
        None => Err(ControlError::invalid(
            field,
            "must be PENDING_REVIEW, APPROVED or DISABLED",
        )),
    }
}

/// The change an `UpdateTool` request asks for, validated; `prefix` goes
/// before field names in errors (the preview names its nested requests).
pub(super) fn tool_edit(req: &v1::UpdateToolRequest, prefix: &str) -> Result<ToolEdit> {
    let id = validate::id(&format!("{prefix}id"), &req.id)?.to_owned();
    let state = req
        .state
        .map(|s| settable_state(s, &format!("{prefix}state")))
        .transpose()?;
    // The action may be left UNSPECIFIED to keep the current one.
    let classification = req
        .classification
        .as_ref()
        .map(|c| {
            Ok::<_, ControlError>(ClassificationEdit {
                action: action_from_proto(c.action, &format!("{prefix}classification.action"))?,
                sensitive: c.sensitive,
                dangerous: c.dangerous,
            })
        })
        .transpose()?;
    Ok(ToolEdit {
        id,
        state,
        classification,
    })
}

/// The ids and state a `BatchUpdateTools` request asks for, validated (no
/// duplicates); `prefix` as for [`tool_edit`].
pub(super) fn batch_states(
    req: &v1::BatchUpdateToolsRequest,
    prefix: &str,
) -> Result<(Vec<String>, ToolState)> {
    let field = format!("{prefix}ids");
    let ids = validate::ids(&field, &req.ids, true, MAX_BATCH)?;
    let mut seen = HashSet::new();
    if let Some(dup) = ids.iter().find(|id| !seen.insert(id.as_str())) {
        return Err(ControlError::invalid(
            field,
            format!("{dup} is listed twice"),
        ));
    }
    let state = settable_state(req.state, &format!("{prefix}state"))?;
    Ok((ids, state))
}

fn state_event(actor: &str, tool: &Tool, from: ToolState) -> AuditEvent {
    AuditEvent::allowed(actor, Action::ToolUpdate, format!("tool/{}", tool.id))
        .with_reason(format!(
            "{}: {} -> {}",
            tool.name,
            from.as_str(),
            tool.state.as_str()
        ))
        .with_details(json!({"tool": tool.name, "from": from.as_str(), "to": tool.state.as_str()}))
}

fn encode_page_token(tool: &Tool) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}\n{}", tool.name, tool.id))
}

fn decode_page_token(token: &str) -> Result<(String, String)> {
    let bad = || ControlError::invalid("page_token", "is not a token from a previous response");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (name, id) = text.split_once('\n').ok_or_else(bad)?;
    Ok((name.to_owned(), id.to_owned()))
}

#[tonic::async_trait]
impl ToolService for Control {
    async fn list_tools(
        &self,
        request: Request<v1::ListToolsRequest>,
    ) -> Result<Response<v1::ListToolsResponse>, Status> {
        let req = request.into_inner();
        let page_size = validate::page_size("page_size", req.page_size, 100, 1000)?;
        let state = state_from_proto(req.state, "state")?;
        let action = action_from_proto(req.action, "action")?;
        let after = if req.page_token.is_empty() {
            None
        } else {
            Some(decode_page_token(&req.page_token)?)
        };
        let page = self
            .store
            .tool_page(&ToolQuery {
                server_id: (!req.server_id.is_empty()).then(|| req.server_id.clone()),
                state,
                action,
                sensitive: req.sensitive,
                dangerous: req.dangerous,
                name_contains: req.name_contains.clone(),
                after,
                limit: page_size,
            })
            .await
            .map_err(ControlError::from)?;
        let total_size = u32::try_from(page.total).unwrap_or(u32::MAX);
        let next_page_token = match page.tools.last() {
            Some(last) if page.more => encode_page_token(last),
            _ => String::new(),
        };
        Ok(Response::new(v1::ListToolsResponse {
            tools: page
                .tools
                .iter()
                .map(|t| tool_to_proto(t, !req.omit_schemas))
                .collect(),
            next_page_token,
            total_size,
        }))
    }

    async fn get_tool(
        &self,
        request: Request<v1::GetToolRequest>,
    ) -> Result<Response<v1::GetToolResponse>, Status> {
        let id = validate::id("id", &request.get_ref().id)?;
        let tool = require::<Tool>(&self.store.reader(), id).await?;
        Ok(Response::new(v1::GetToolResponse {
            tool: Some(tool_to_proto(&tool, true)),
        }))
    }

    async fn update_tool(
        &self,
        request: Request<v1::UpdateToolRequest>,
    ) -> Result<Response<v1::UpdateToolResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let ToolEdit {
            id,
            state,
            classification,
        } = tool_edit(&req, "")?;
        let tool = self
            .store
            .write(|store| async move {
                let mut tool = require::<Tool>(&store, &id).await?;
                let now = now_ms();
                let mut batch = Batch::default();
                if let Some(state) = state {
                    let from = tool.state;
                    if edit::set_state(&mut tool, state, &actor, now)? {
                        batch.audit(state_event(&actor, &tool, from));
                    }
                }
                if let Some(c) = classification
                    && let Some(from) = edit::classify(&mut tool, c, &actor, now)
                {
                    batch.audit(
                        AuditEvent::allowed(
                            &actor,
                            Action::ToolClassify,
                            format!("tool/{}", tool.id),
                        )
                        .with_reason(format!("{}: classification changed", tool.name))
                        .with_details(
                            json!({"tool": tool.name, "from": from, "to": tool.classification}),
                        ),
                    );
                }
                if !batch.is_empty() {
                    batch.put(&tool);
                }
                Ok::<_, ControlError>((batch, tool))
            })
            .await?;
        Ok(Response::new(v1::UpdateToolResponse {
            tool: Some(tool_to_proto(&tool, true)),
        }))
    }

    async fn batch_update_tools(
        &self,
        request: Request<v1::BatchUpdateToolsRequest>,
    ) -> Result<Response<v1::BatchUpdateToolsResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let (ids, state) = batch_states(&req, "")?;
        let tools = self
            .store
            .write(|store| async move {
                let now = now_ms();
                let mut batch = Batch::default();
                let mut tools = Vec::with_capacity(ids.len());
                for id in &ids {
                    let mut tool = require::<Tool>(&store, id).await?;
                    let from = tool.state;
                    if edit::set_state(&mut tool, state, &actor, now)? {
                        batch.audit(state_event(&actor, &tool, from));
                        batch.put(&tool);
                    }
                    tools.push(tool);
                }
                Ok::<_, ControlError>((batch, tools))
            })
            .await?;
        Ok(Response::new(v1::BatchUpdateToolsResponse {
            tools: tools.iter().map(|t| tool_to_proto(t, false)).collect(),
        }))
    }
}
