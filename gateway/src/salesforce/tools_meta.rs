//! The metadata tools: `list_objects`, `describe_object`, `get_user_info`,
//! `get_limits`.
//!
//! Must not: return Salesforce's raw describe bodies (they are large);
//! each tool maps them onto its catalog `output_schema`.
//!
//! Sources: REST API Developer Guide, "Describe Global", "sObject
//! Describe", "Limits"; Salesforce Help, "UserInfo Endpoint".

use serde_json::{Map, Value, json};

use super::describe::{self, Described};
use super::shape::{bounded_lines, clip, plural};
use super::{Ctx, SfError, ToolOutput, args};

fn bool_of(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `list_objects {name_contains?, custom_only?}` -> `{objects: [{name,
/// label, custom, key_prefix, queryable, createable, updateable,
/// deletable}]}` from describe global (cached).
pub(crate) async fn list_objects(ctx: &Ctx<'_>, args: &Value) -> Result<ToolOutput, SfError> {
    let contains = args::opt_str(args, "name_contains")?.map(str::to_lowercase);
    let custom_only = args::opt_bool(args, "custom_only", false)?;
    let (list, _) = describe::objects_list(ctx, false).await?;
    let empty = Vec::new();
    let objects: Vec<Value> = list
        .get("sobjects")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .filter(|o| !custom_only || bool_of(o, "custom"))
        .filter(|o| {
            contains.as_deref().is_none_or(|c| {
                str_of(o, "name").to_lowercase().contains(c)
                    || str_of(o, "label").to_lowercase().contains(c)
            })
        })
        .map(|o| {
            json!({
                "name": str_of(o, "name"),
                "label": str_of(o, "label"),
                "custom": bool_of(o, "custom"),
                "key_prefix": o.get("keyPrefix").cloned().unwrap_or(Value::Null),
                "queryable": bool_of(o, "queryable"),
                "createable": bool_of(o, "createable"),
                "updateable": bool_of(o, "updateable"),
                "deletable": bool_of(o, "deletable"),
            })
        })
        .collect();
    let header = format!(
        "{} {}",
        objects.len(),
        plural(objects.len() as u64, "object")
    );
    let lines = objects.iter().map(|o| {
        let can: Vec<&str> = [
            ("queryable", "query"),
            ("createable", "create"),
            ("updateable", "update"),
            ("deletable", "delete"),
        ]
        .iter()
        .filter(|(k, _)| bool_of(o, k))
        .map(|(_, word)| *word)
        .collect();
        format!(
            "{} ({}){} [{}]",
            str_of(o, "name"),
            str_of(o, "label"),
            if bool_of(o, "custom") { " custom" } else { "" },
            can.join(",")
        )
    });
    let text = bounded_lines(&header, lines);
    Ok(ToolOutput {
        structured: json!({ "objects": objects }),
        text,
    })
}

/// One field of a describe, as `describe_object` returns it.
fn field_summary(f: &Value) -> Value {
    let mut out = Map::new();
    for (from, to) in [("name", "name"), ("label", "label"), ("type", "type")] {
        out.insert(to.into(), json!(str_of(f, from)));
    }
    out.insert(
        "length".into(),
        f.get("length").cloned().unwrap_or(json!(0)),
    );
    for (from, to) in [
        ("nillable", "nillable"),
        ("createable", "createable"),
        ("updateable", "updateable"),
        ("custom", "custom"),
        ("externalId", "external_id"),
    ] {
        out.insert(to.into(), json!(bool_of(f, from)));
    }
    // Required on create: not nillable, createable, no default.
    let required =
        !bool_of(f, "nillable") && bool_of(f, "createable") && !bool_of(f, "defaultedOnCreate");
    out.insert("required".into(), json!(required));
    let picklist: Vec<Value> = f
        .get("picklistValues")
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter(|p| p.get("active").and_then(Value::as_bool) != Some(false))
                .filter_map(|p| p.get("value").cloned())
                .collect()
        })
        .unwrap_or_default();
    if !picklist.is_empty() {
        out.insert("picklist_values".into(), Value::Array(picklist));
    }
    let reference_to = f
        .get("referenceTo")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !reference_to.is_empty() {
        out.insert("reference_to".into(), Value::Array(reference_to));
        out.insert(
            "relationship_name".into(),
            f.get("relationshipName").cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(out)
}

fn field_line(f: &Value) -> String {
    let mut line = format!("{} {}", str_of(f, "name"), str_of(f, "type"));
    if let Some(n) = f.get("length").and_then(Value::as_u64).filter(|n| *n > 0) {
        line.push_str(&format!("({n})"));
    }
    if bool_of(f, "required") {
        line.push_str(" required");
    }
    if !bool_of(f, "createable") && !bool_of(f, "updateable") {
        line.push_str(" read-only");
    }
    if bool_of(f, "external_id") {
        line.push_str(" external-id");
    }
    if let Some(to) = f.get("reference_to").and_then(Value::as_array) {
        let to: Vec<&str> = to.iter().filter_map(Value::as_str).collect();
        line.push_str(&format!(" -> {}", to.join("|")));
        if let Some(r) = f.get("relationship_name").and_then(Value::as_str) {
            line.push_str(&format!(" via {r}"));
        }
    }
    if let Some(values) = f.get("picklist_values").and_then(Value::as_array) {
        let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        line.push_str(&format!(" [{}]", clip(&values.join("|"), 200)));
    }
    format!("{line} \"{}\"", str_of(f, "label"))
}

/// `describe_object {object_name}` -> `{name, label, key_prefix, custom,
/// fields: [{name, label, type, length, nillable, createable, updateable,
/// custom, external_id, required, picklist_values?, reference_to?,
/// relationship_name?}], child_relationships: [{relationship_name,
/// child_object, field}]}` from the (cached) sObject Describe.
pub(crate) async fn describe_object(ctx: &Ctx<'_>, args: &Value) -> Result<ToolOutput, SfError> {
    let name = args::req_name(args, "object_name")?;
    let Described { name, describe, .. } =
        describe::described_object(ctx, "object_name", name).await?;
    let fields: Vec<Value> = describe
        .get("fields")
        .and_then(Value::as_array)
        .map(|f| f.iter().map(field_summary).collect())
        .unwrap_or_default();
    let children: Vec<Value> = describe
        .get("childRelationships")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|c| c.get("relationshipName").is_some_and(Value::is_string))
                .map(|c| {
                    json!({
                        "relationship_name": str_of(c, "relationshipName"),
                        "child_object": str_of(c, "childSObject"),
                        "field": str_of(c, "field"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let label = str_of(&describe, "label").to_owned();
    let key_prefix = describe.get("keyPrefix").cloned().unwrap_or(Value::Null);
    let header = format!(
        "{name} ({label}), key prefix {}, {} {}",
        key_prefix.as_str().unwrap_or("none"),
        fields.len(),
        plural(fields.len() as u64, "field"),
    );
    let mut lines: Vec<String> = fields.iter().map(field_line).collect();
    if !children.is_empty() {
        let list: Vec<String> = children
            .iter()
            .map(|c| {
                format!(
                    "{} ({}.{})",
                    str_of(c, "relationship_name"),
                    str_of(c, "child_object"),
                    str_of(c, "field")
                )
            })
            .collect();
        lines.push(format!("Child relationships: {}", list.join(", ")));
    }
    Ok(ToolOutput {
        structured: json!({
            "name": name.as_str(),
            "label": label,
            "key_prefix": key_prefix,
            "custom": bool_of(&describe, "custom"),
            "fields": fields,
            "child_relationships": children,
        }),
        text: bounded_lines(&header, lines),
    })
}

/// The part of an identity URL (`.../id/{orgId}/{userId}`) at `index`
/// from the end (0: user, 1: org).
fn from_identity_url(sub: &str, index: usize) -> Option<String> {
    sub.trim_end_matches('/')
        .rsplit('/')
        .nth(index)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `get_user_info {}` -> `{user_id, organization_id, username, name,
/// email, locale, time_zone, user_type, active}` from
/// `GET {instance}/services/oauth2/userinfo`.
pub(crate) async fn get_user_info(ctx: &Ctx<'_>) -> Result<ToolOutput, SfError> {
    let url = ctx.rest.url_for_path("/services/oauth2/userinfo")?;
    let info = ctx.rest.get(url).await?.body;
    let sub = str_of(&info, "sub");
    let user_id = info
        .get("user_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| from_identity_url(sub, 0))
        .ok_or_else(|| SfError::Transport("the userinfo answer has no user_id".into()))?;
    let organization_id = info
        .get("organization_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| from_identity_url(sub, 1))
        .ok_or_else(|| SfError::Transport("the userinfo answer has no organization_id".into()))?;
    let mut out = Map::new();
    out.insert("user_id".into(), json!(user_id));
    out.insert("organization_id".into(), json!(organization_id));
    for (from, to) in [
        ("preferred_username", "username"),
        ("name", "name"),
        ("email", "email"),
        ("locale", "locale"),
        ("zoneinfo", "time_zone"),
        ("user_type", "user_type"),
    ] {
        if let Some(v) = info.get(from).and_then(Value::as_str) {
            out.insert(to.into(), json!(v));
        }
    }
    if let Some(active) = info.get("active").and_then(Value::as_bool) {
        out.insert("active".into(), json!(active));
    }
    let structured = Value::Object(out);
    let text = format!(
        "{} <{}> user {} in org {} (username {}, locale {}, time zone {})",
        str_of(&structured, "name"),
        str_of(&structured, "email"),
        user_id,
        organization_id,
        str_of(&structured, "username"),
        str_of(&structured, "locale"),
        str_of(&structured, "time_zone"),
    );
    Ok(ToolOutput { structured, text })
}

/// `get_limits {}` -> `{limits: {Name: {Max, Remaining}, ...}}`, the
/// `GET .../limits` body as Salesforce sends it.
pub(crate) async fn get_limits(ctx: &Ctx<'_>) -> Result<ToolOutput, SfError> {
    let url = ctx.rest.data_url(&[("limits", "limits")])?;
    let limits = ctx.rest.get(url).await?.body;
    let mut names: Vec<(&String, &Value)> = limits
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    names.sort_by(|a, b| a.0.cmp(b.0));
    let lines = names.iter().map(|(name, v)| {
        let max = v.get("Max").map(Value::to_string).unwrap_or_default();
        let remaining = v.get("Remaining").map(Value::to_string).unwrap_or_default();
        format!("{name}: {remaining} of {max} remaining")
    });
    let text = bounded_lines(&format!("{} limits", names.len()), lines);
    Ok(ToolOutput {
        structured: json!({ "limits": limits }),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_summarise_the_describe_shape() {
        // A field of describe_opportunity_excerpt.json (sObject Describe).
        let stage = json!({
            "name": "StageName", "label": "Stage", "type": "picklist", "length": 255,
            "nillable": false, "createable": true, "updateable": true, "custom": false,
            "externalId": false, "referenceTo": [], "relationshipName": null,
            "picklistValues": [
                {"active": true, "defaultValue": false, "label": "Prospecting", "value": "Prospecting"},
                {"active": false, "defaultValue": false, "label": "Old", "value": "Old"},
                {"active": true, "defaultValue": false, "label": "Closed Won", "value": "Closed Won"}
            ],
            "defaultedOnCreate": false
        });
        let s = field_summary(&stage);
        assert_eq!(s["required"], true);
        assert_eq!(s["picklist_values"], json!(["Prospecting", "Closed Won"]));
        assert!(s.get("reference_to").is_none());
        assert_eq!(
            field_line(&s),
            "StageName picklist(255) required [Prospecting|Closed Won] \"Stage\""
        );
        let account = json!({
            "name": "AccountId", "label": "Account ID", "type": "reference", "length": 18,
            "nillable": true, "createable": true, "updateable": true,
            "referenceTo": ["Account"], "relationshipName": "Account", "picklistValues": []
        });
        let s = field_summary(&account);
        assert_eq!(
            (s["required"].clone(), s["reference_to"].clone()),
            (json!(false), json!(["Account"]))
        );
        assert_eq!(
            field_line(&s),
            "AccountId reference(18) -> Account via Account \"Account ID\""
        );
    }

    #[test]
    fn identity_urls_yield_org_and_user() {
        let sub = "https://login.salesforce.com/id/00D5g000004AbCdEAK/0055g00000F1a2bAAB";
        assert_eq!(
            from_identity_url(sub, 0).as_deref(),
            Some("0055g00000F1a2bAAB")
        );
        assert_eq!(
            from_identity_url(sub, 1).as_deref(),
            Some("00D5g000004AbCdEAK")
        );
    }
}
