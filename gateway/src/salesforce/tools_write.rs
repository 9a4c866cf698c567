//! The write tools: `create_record`, `update_record`, `upsert_record`,
//! `delete_record`.
//!
//! Must not: retry a write (a write is not known to be idempotent at this
//! layer), report a create or upsert whose answer was lost as a plain
//! failure (it says the outcome is unknown and the record may exist, so
//! that an agent searches before it retries), or check field values itself: Salesforce's own errors
//! (`REQUIRED_FIELD_MISSING`, `INVALID_FIELD`,
//! `INSUFFICIENT_ACCESS_OR_READONLY`, ...) go back to the agent intact.
//! Object and external-Id field names in paths are checked against
//! describe first; path segments are percent-encoded.
//!
//! Sources: REST API Developer Guide, "sObject Basic Information" (create),
//! "sObject Rows" (update, delete), "sObject Rows by External ID"
//! (upsert: 201 created, 200 updated).

use serde_json::{Value, json};

use super::describe::{self, Name};
use super::{Ctx, SfError, ToolOutput, args, ids};

fn id_in(body: &Value) -> Option<String> {
    body.get("id").and_then(Value::as_str).map(str::to_owned)
}

/// A write error as the agent must read it: when the answer was lost after
/// the request may have reached Salesforce ([`SfError::answer_lost`]),
/// [`SfError::OutcomeUnknown`] (the record may exist); any other error
/// as it is.
fn lost_answer(err: SfError, operation: &'static str, object: &Name) -> SfError {
    if err.answer_lost() {
        SfError::OutcomeUnknown {
            operation,
            object: object.to_string(),
            cause: Box::new(err),
        }
    } else {
        err
    }
}

/// The field names, sorted (map order depends on serde_json features).
fn field_list(fields: &serde_json::Map<String, Value>) -> String {
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    names.join(", ")
}

/// `create_record {object_name, fields}` -> `{id, success}` from
/// `POST .../sobjects/{object}` (201 `{id, success, errors}`).
pub(crate) async fn create_record(ctx: &Ctx<'_>, args: &Value) -> Result<ToolOutput, SfError> {
    let object = args::req_name(args, "object_name")?;
    let fields = args::req_fields(args, "fields")?;
    let object = describe::object_name(ctx, "object_name", object).await?;
    let url = ctx.rest.data_url(&[
        ("object_name", "sobjects"),
        ("object_name", object.as_str()),
    ])?;
    let body = Value::Object(fields.clone());
    let reply = ctx
        .rest
        .send(reqwest::Method::POST, url, Some(&body))
        .await
        .map_err(|e| lost_answer(e, "create", &object))?;
    let id = id_in(&reply.body)
        .ok_or_else(|| SfError::Transport("the create answer has no id".into()))?;
    Ok(ToolOutput {
        text: format!("Created {object} {id} ({})", field_list(fields)),
        structured: json!({ "id": id, "success": true }),
    })
}

/// `update_record {object_name, record_id, fields}` -> `{id, success}`
/// from `PATCH .../sobjects/{object}/{id}` (204).
pub(crate) async fn update_record(ctx: &Ctx<'_>, args: &Value) -> Result<ToolOutput, SfError> {
    let object = args::req_name(args, "object_name")?;
    let id = args::req_id(args, "record_id")?;
    let fields = args::req_fields(args, "fields")?;
    let object = describe::object_name(ctx, "object_name", object).await?;
    ids::check_prefix(ctx, "record_id", id, &object).await?;
    let url = ctx.rest.data_url(&[
        ("object_name", "sobjects"),
        ("object_name", object.as_str()),
        ("record_id", id),
    ])?;
    let body = Value::Object(fields.clone());
    ctx.rest
        .send(reqwest::Method::PATCH, url, Some(&body))
        .await?;
    Ok(ToolOutput {
        text: format!("Updated {object} {id} ({})", field_list(fields)),
        structured: json!({ "id": id, "success": true }),
    })
}

/// `upsert_record {object_name, external_id_field, external_id, fields}`
/// -> `{id, created, success}` from `PATCH
/// .../sobjects/{object}/{field}/{value}` (201 created, 200 updated; the
/// value percent-encoded). The field must be an External ID field (or
/// `Id`) of the object and must not also appear in `fields`.
pub(crate) async fn upsert_record(ctx: &Ctx<'_>, args: &Value) -> Result<ToolOutput, SfError> {
    let object = args::req_name(args, "object_name")?;
    let field = args::req_name(args, "external_id_field")?;
    let value = args::req_str(args, "external_id")?;
    let fields = args::req_fields(args, "fields")?;
    if value.chars().count() > 255 {
        return Err(SfError::invalid(
            "external_id",
            "must be at most 255 characters",
        ));
    }
    let mut d = describe::described_object(ctx, "object_name", object).await?;
    let field = external_id_field(ctx, &mut d, field).await?;
    if field.as_str() == "Id" {
        // Upsert by Id: the value is a record Id of this object.
        ids::check_prefix(ctx, "external_id", value, &d.name).await?;
    }
    if fields
        .keys()
        .any(|k| k.eq_ignore_ascii_case(field.as_str()))
    {
        return Err(SfError::invalid(
            "fields",
            format!(
                "must not contain the external Id field {field}; its value goes in external_id"
            ),
        ));
    }
    let segments = [
        ("object_name", "sobjects"),
        ("object_name", d.name.as_str()),
        ("external_id_field", field.as_str()),
        ("external_id", value),
    ];
    let url = ctx.rest.data_url(&segments)?;
    let body = Value::Object(fields.clone());
    let reply = ctx
        .rest
        .send(reqwest::Method::PATCH, url, Some(&body))
        .await
        .map_err(|e| lost_answer(e, "upsert", &d.name))?;
    let created = reply.status == 201
        || reply
            .body
            .get("created")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let id = match id_in(&reply.body) {
        Some(id) => id,
        // API versions before 46.0 answer an update with 204 and no body.
        None => {
            let mut url = ctx.rest.data_url(&segments)?;
            url.query_pairs_mut().append_pair("fields", "Id");
            id_in(&ctx.rest.get(url).await?.body)
                .ok_or_else(|| SfError::Transport("the upsert answer has no id".into()))?
        }
    };
    let verb = if created { "Created" } else { "Updated" };
    Ok(ToolOutput {
        text: format!("{verb} {} {id} ({field} = {value})", d.name),
        structured: json!({ "id": id, "created": created, "success": true }),
    })
}

/// Checks that `wanted` is a field of `d` marked External ID (or `Id`).
async fn external_id_field(
    ctx: &Ctx<'_>,
    d: &mut describe::Described,
    wanted: &str,
) -> Result<Name, SfError> {
    let field = describe::field_names(ctx, d, "external_id_field", &[wanted.to_owned()])
        .await?
        .remove(0);
    let is_external = describe::field_describe(d, &field)
        .and_then(|f| f.get("externalId"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if is_external || field.as_str() == "Id" {
        return Ok(field);
    }
    let externals: Vec<&str> = d
        .describe
        .get("fields")
        .and_then(Value::as_array)
        .map(|fields| {
            fields
                .iter()
                .filter(|f| f.get("externalId").and_then(Value::as_bool) == Some(true))
                .filter_map(|f| f.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let hint = if externals.is_empty() {
        format!("{} has no External ID field; use Id", d.name)
    } else {
        format!("its External ID fields are {}", externals.join(", "))
    };
    Err(SfError::invalid(
        "external_id_field",
        format!("{field} is not an External ID field of {}; {hint}", d.name),
    ))
}

/// `delete_record {object_name, record_id}` -> `{id, deleted}` from
/// `DELETE .../sobjects/{object}/{id}` (204; the record goes to the
/// recycle bin).
pub(crate) async fn delete_record(ctx: &Ctx<'_>, args: &Value) -> Result<ToolOutput, SfError> {
    let object = args::req_name(args, "object_name")?;
    let id = args::req_id(args, "record_id")?;
    let object = describe::object_name(ctx, "object_name", object).await?;
    ids::check_prefix(ctx, "record_id", id, &object).await?;
    let url = ctx.rest.data_url(&[
        ("object_name", "sobjects"),
        ("object_name", object.as_str()),
        ("record_id", id),
    ])?;
    ctx.rest.send(reqwest::Method::DELETE, url, None).await?;
    Ok(ToolOutput {
        text: format!("Deleted {object} {id} (it is in the recycle bin)"),
        structured: json!({ "id": id, "deleted": true }),
    })
}
