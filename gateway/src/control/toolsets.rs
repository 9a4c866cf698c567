//! `ToolsetService`: custom toolsets, and the maintained ones per server.

use serde_json::json;
use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::toolset_service_server::ToolsetService;

use super::Control;
use super::auth::actor;
use super::convert::timestamp;
use super::error::{ControlError, Result, require, require_name_free};
use super::records::{Edited, Target, edit_record};
use super::validate;
use crate::audit::Action;
use crate::governance::edit;
use crate::governance::{toolset_contains, toolset_members};
use crate::model::{AccessProfile, AuditEvent, Tool, Toolset, ToolsetKind, new_id, now_ms};
use crate::store::{Batch, Tx};

fn kind_to_proto(kind: ToolsetKind) -> v1::ToolsetKind {
    match kind {
        ToolsetKind::Custom => v1::ToolsetKind::Custom,
        ToolsetKind::AllApproved => v1::ToolsetKind::AllApproved,
        ToolsetKind::ReadOnly => v1::ToolsetKind::ReadOnly,
    }
}

/// Domain toolset to proto, with maintained membership computed from `tools`.
fn to_proto(t: &Toolset, tools: &[Tool]) -> v1::Toolset {
    v1::Toolset {
        revision: t.revision,
        id: t.id.clone(),
        name: t.name.clone(),
        description: t.description.clone(),
        kind: kind_to_proto(t.kind).into(),
        server_id: t.server_id.clone().unwrap_or_default(),
        tool_ids: toolset_members(t, tools),
        created_at: Some(timestamp(t.created_at)),
        updated_at: Some(timestamp(t.updated_at)),
    }
}

async fn custom_or_refuse(store: &Tx<'_>, id: &str) -> Result<Toolset> {
    let toolset = require::<Toolset>(store, id).await?;
    edit::require_custom(&toolset)?;
    Ok(toolset)
}

async fn check_name_free(store: &Tx<'_>, id: &str, name: &str) -> Result<()> {
    require_name_free::<Toolset>(store, id, name, |r| &r.name).await
}

/// Loads tools to add: each must exist and be APPROVED.
async fn approved_tools(store: &Tx<'_>, ids: &[String]) -> Result<Vec<Tool>> {
    let mut tools = Vec::with_capacity(ids.len());
    for id in ids {
        let tool = store
            .get::<Tool>(id)
            .await?
            .ok_or_else(|| ControlError::not_found("tool", id))?;
        edit::require_addable(&tool)?;
        tools.push(tool);
    }
    Ok(tools)
}

/// The toolset id and tool ids of an `AddToolsetTools` or
/// `RemoveToolsetTools` request, validated; `prefix` goes before field names
/// in errors (the preview names its nested requests).
pub(super) fn toolset_tools(
    toolset_id: &str,
    tool_ids: &[String],
    prefix: &str,
) -> Result<(String, Vec<String>)> {
    let id = validate::id(&format!("{prefix}toolset_id"), toolset_id)?.to_owned();
    let tool_ids = validate::ids(&format!("{prefix}tool_ids"), tool_ids, true, 10_000)?;
    Ok((id, tool_ids))
}

fn event(actor: &str, action: Action, toolset: &Toolset, reason: String) -> AuditEvent {
    AuditEvent::allowed(actor, action, format!("toolset/{}", toolset.id))
        .with_reason(reason)
        .with_details(json!({"name": toolset.name, "tool_ids": toolset.tool_ids}))
}

impl Control {
    /// Applies `edit` to a custom toolset, audits it as `action` when it
    /// changed, and answers with the result.
    async fn edit_toolset<'s, F, Fut>(
        &'s self,
        actor: String,
        target: Target<'_>,
        action: Action,
        edit: F,
    ) -> Result<v1::Toolset>
    where
        F: FnOnce(Tx<'s>, Toolset) -> Fut,
        Fut: std::future::Future<Output = Result<(Toolset, String)>>,
    {
        let toolset = edit_record(
            &self.store,
            &actor,
            target,
            action,
            |t| Ok(edit::require_custom(t)?),
            |tx, toolset| async move {
                let (toolset, reason) = edit(tx, toolset).await?;
                let details = json!({"name": toolset.name, "tool_ids": toolset.tool_ids});
                Ok((toolset, reason, details))
            },
        )
        .await?;
        let tools = self.store.list::<Tool>().await?;
        Ok(to_proto(&toolset, &tools))
    }
}

#[tonic::async_trait]
impl ToolsetService for Control {
    async fn create_toolset(
        &self,
        request: Request<v1::CreateToolsetRequest>,
    ) -> Result<Response<v1::CreateToolsetResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let name = validate::name("name", &req.name)?;
        let description = validate::description("description", &req.description)?;
        let tool_ids = validate::ids("tool_ids", &req.tool_ids, false, 10_000)?;
        let toolset = self
            .store
            .write(|store| async move {
                check_name_free(&store, "", &name).await?;
                approved_tools(&store, &tool_ids).await?;
                let now = now_ms();
                let mut seen = std::collections::HashSet::new();
                let ids: Vec<String> = tool_ids
                    .iter()
                    .filter(|id| seen.insert(id.as_str()))
                    .cloned()
                    .collect();
                let toolset = Toolset {
                    revision: 1,
                    id: new_id(),
                    name: name.clone(),
                    description: description.clone(),
                    kind: ToolsetKind::Custom,
                    server_id: None,
                    tool_ids: ids,
                    created_at: now,
                    updated_at: now,
                };
                let mut batch = Batch::default();
                batch.put(&toolset);
                batch.audit(event(
                    &actor,
                    Action::ToolsetCreate,
                    &toolset,
                    format!("created toolset {name:?}"),
                ));
                Ok::<_, ControlError>((batch, toolset))
            })
            .await?;
        let tools = self
            .store
            .list::<Tool>()
            .await
            .map_err(ControlError::from)?;
        Ok(Response::new(v1::CreateToolsetResponse {
            toolset: Some(to_proto(&toolset, &tools)),
        }))
    }

    async fn get_toolset(
        &self,
        request: Request<v1::GetToolsetRequest>,
    ) -> Result<Response<v1::GetToolsetResponse>, Status> {
        let id = validate::id("id", &request.get_ref().id)?;
        let toolset = require::<Toolset>(&self.store.reader(), id).await?;
        let tools = self
            .store
            .list::<Tool>()
            .await
            .map_err(ControlError::from)?;
        Ok(Response::new(v1::GetToolsetResponse {
            toolset: Some(to_proto(&toolset, &tools)),
        }))
    }

    async fn list_toolsets(
        &self,
        request: Request<v1::ListToolsetsRequest>,
    ) -> Result<Response<v1::ListToolsetsResponse>, Status> {
        let server_id = request.into_inner().server_id;
        let tools = self
            .store
            .list::<Tool>()
            .await
            .map_err(ControlError::from)?;
        let mut toolsets: Vec<Toolset> = self
            .store
            .list::<Toolset>()
            .await
            .map_err(ControlError::from)?
            .into_iter()
            .filter(|ts| {
                server_id.is_empty()
                    || ts.server_id.as_deref() == Some(server_id.as_str())
                    || tools
                        .iter()
                        .any(|t| t.server_id == server_id && toolset_contains(ts, t))
            })
            .collect();
        toolsets.sort_by_key(|a| a.name.to_lowercase());
        Ok(Response::new(v1::ListToolsetsResponse {
            toolsets: toolsets.iter().map(|t| to_proto(t, &tools)).collect(),
        }))
    }

    async fn update_toolset(
        &self,
        request: Request<v1::UpdateToolsetRequest>,
    ) -> Result<Response<v1::UpdateToolsetResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let id = validate::id("id", &req.id)?.to_owned();
        let name = req
            .name
            .as_deref()
            .map(|n| validate::name("name", n))
            .transpose()?;
        let description = req
            .description
            .as_deref()
            .map(|d| validate::description("description", d))
            .transpose()?;
        let toolset = self
            .edit_toolset(
                actor,
                Target {
                    id: &id,
                    expected_revision: req.expected_revision,
                },
                Action::ToolsetUpdate,
                |store, mut toolset| async move {
                    if let Some(name) = name {
                        check_name_free(&store, &toolset.id, &name).await?;
                        toolset.name = name;
                    }
                    if let Some(description) = description {
                        toolset.description = description;
                    }
                    Ok((toolset, "renamed or re-described".into()))
                },
            )
            .await?;
        Ok(Response::new(v1::UpdateToolsetResponse {
            toolset: Some(toolset),
        }))
    }

    async fn delete_toolset(
        &self,
        request: Request<v1::DeleteToolsetRequest>,
    ) -> Result<Response<v1::DeleteToolsetResponse>, Status> {
        let actor = actor(&request);
        let id = validate::id("id", &request.get_ref().id)?.to_owned();
        self.store
            .write(|store| async move {
                let toolset = custom_or_refuse(&store, &id).await?;
                let mut batch = Batch::default();
                let now = now_ms();
                let mut unbound = Vec::new();
                for mut profile in store.list::<AccessProfile>().await? {
                    if profile.toolset_ids.contains(&id) {
                        profile.toolset_ids.retain(|t| *t != id);
                        profile.touch(now);
                        unbound.push(profile.id.clone());
                        batch.put(&profile);
                    }
                }
                batch.delete::<Toolset>(&id);
                batch.audit(
                    event(
                        &actor,
                        Action::ToolsetDelete,
                        &toolset,
                        format!("deleted toolset {:?}", toolset.name),
                    )
                    .with_details(json!({
                        "name": toolset.name,
                        "tool_ids": toolset.tool_ids,
                        "unbound_from_profile_ids": unbound,
                    })),
                );
                Ok::<_, ControlError>((batch, ()))
            })
            .await?;
        Ok(Response::new(v1::DeleteToolsetResponse {}))
    }

    async fn add_toolset_tools(
        &self,
        request: Request<v1::AddToolsetToolsRequest>,
    ) -> Result<Response<v1::AddToolsetToolsResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let (id, tool_ids) = toolset_tools(&req.toolset_id, &req.tool_ids, "")?;
        let toolset = self
            .edit_toolset(
                actor,
                Target {
                    id: &id,
                    expected_revision: req.expected_revision,
                },
                Action::ToolsetAddTools,
                |store, mut toolset| async move {
                    let tools = approved_tools(&store, &tool_ids).await?;
                    let added = edit::add_tools(&mut toolset, &tools);
                    Ok((toolset, format!("added {}", added.join(", "))))
                },
            )
            .await?;
        Ok(Response::new(v1::AddToolsetToolsResponse {
            toolset: Some(toolset),
        }))
    }

    async fn remove_toolset_tools(
        &self,
        request: Request<v1::RemoveToolsetToolsRequest>,
    ) -> Result<Response<v1::RemoveToolsetToolsResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let (id, tool_ids) = toolset_tools(&req.toolset_id, &req.tool_ids, "")?;
        let toolset = self
            .edit_toolset(
                actor,
                Target {
                    id: &id,
                    expected_revision: req.expected_revision,
                },
                Action::ToolsetRemoveTools,
                |_, mut toolset| async move {
                    edit::remove_tools(&mut toolset, &tool_ids);
                    Ok((toolset, format!("removed {}", tool_ids.join(", "))))
                },
            )
            .await?;
        Ok(Response::new(v1::RemoveToolsetToolsResponse {
            toolset: Some(toolset),
        }))
    }
}
