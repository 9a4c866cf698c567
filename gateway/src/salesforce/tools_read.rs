//! The read tools: `query`, `search`, `get_record`, `list_recent`,
//! `get_related_records`.
//!
//! Must not: alter the agent's SOQL or SOSL (passed through verbatim), or
//! put a name into a path or a composed query without checking it against
//! describe first.
//!
//! Sources: REST API Developer Guide, "Query", "QueryAll", "Search",
//! "Parameterized Search", "sObject Rows", "Recently Viewed Items".

use serde_json::{Map, Value, json};

use super::describe::{self, Described, Name};
use super::paging::{self, Caps, Page, Start};
use super::shape::{self, bounded_lines, plural};
use super::soql::Select;
use super::{Ctx, SfError, ToolOutput, args, ids};

/// Longest SOQL or SOSL statement accepted (characters; the catalog's
/// `maxLength`).
const MAX_STATEMENT: usize = 100_000;

fn caps(ctx: &Ctx<'_>, wanted: Option<usize>) -> Caps {
    Caps {
        max_records: wanted
            .map_or(ctx.limits.max_records, |n| n.min(ctx.limits.max_records))
            .max(1),
        max_bytes: ctx.limits.max_bytes,
    }
}

fn page_output(page: Page, header: String) -> ToolOutput {
    let lines: Vec<String> = page.records.iter().map(shape::record_line).collect();
    let text = bounded_lines(&header, lines);
    let next = page.next;
    ToolOutput {
        structured: json_object([
            ("total_size", Value::from(page.total_size)),
            ("done", Value::Bool(next.is_none())),
            ("records", Value::Array(page.records)),
            ("next_cursor", Value::from(next)),
        ]),
        text,
    }
}

/// A JSON object of `entries` in this order, the values moved in (where
/// `json!` would copy each value through the serializer).
fn json_object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// `query {soql | cursor, include_deleted?, max_records?}` ->
/// `{total_size, done, records, next_cursor}`. The SOQL goes to `/query`
/// (or `/queryAll`) verbatim, once; a cursor continues where the last call
/// stopped (Salesforce's locator, or the rest of the first page), with the
/// same `max_records` unless the call gives another. Errors:
/// [`SfError::InvalidArgument`] for neither or both of `soql` and
/// `cursor`, a cursor that is not one of ours, was altered, belongs to
/// another user or connection, or expired.
pub(crate) async fn query(ctx: &Ctx<'_>, args: &Value) -> Result<ToolOutput, SfError> {
    let soql = args::opt_str(args, "soql")?;
    let cursor = args::opt_str(args, "cursor")?;
    let include_deleted = args::opt_bool(args, "include_deleted", false)?;
    let wanted = args::opt_count(args, "max_records", 1, 2000)?;
    let start = match (soql, cursor) {
        (Some(soql), None) => {
            if soql.trim().is_empty() || soql.len() > MAX_STATEMENT {
                return Err(SfError::invalid(
                    "soql",
                    "must be a SOQL statement of 1 to 100000 characters",
                ));
            }
            Start::Query {
                soql,
                include_deleted,
                max_records: wanted,
            }
        }
        (None, Some(cursor)) => {
            let mut cursor = ctx.cursors.decode(ctx.owner, cursor)?;
            // A continuation keeps the page size the query started with.
            cursor.max_records = wanted.or(cursor.max_records);
            Start::Cursor(cursor)
        }
        (Some(_), Some(_)) => {
            return Err(SfError::invalid(
                "cursor",
                "give either soql or cursor, not both; to continue, pass only cursor",
            ));
        }
        (None, None) => {
            return Err(SfError::invalid(
                "soql",
                "is required (or pass cursor to continue a query)",
            ));
        }
    };
    let wanted = match &start {
        Start::Query { max_records, .. } => *max_records,
        Start::Cursor(c) => c.max_records,
    };
    let page = paging::run(ctx, start, caps(ctx, wanted)).await?;
    let header = paging::header(&page);
    Ok(page_output(page, header))
}

/// `search {sosl} | {text, objects?, limit?}` -> `{records}` (plus
/// `truncated: true` when the caps cut the list). SOSL goes to `/search`
/// verbatim; text goes to `POST /parameterizedSearch` as JSON (no SOSL
/// syntax to escape), with `objects` and their `fields` checked against
/// describe (default fields: Id and the name field).
pub(crate) async fn search(ctx: &Ctx<'_>, args: &Value) -> Result<ToolOutput, SfError> {
    let sosl = args::opt_str(args, "sosl")?;
    let text = args::opt_str(args, "text")?;
    let body = match (sosl, text) {
        (Some(sosl), None) => {
            if sosl.trim().is_empty() || sosl.len() > MAX_STATEMENT {
                return Err(SfError::invalid("sosl", "must be a SOSL statement"));
            }
            let mut url = ctx.rest.data_url(&[("sosl", "search")])?;
            url.query_pairs_mut().append_pair("q", sosl);
            ctx.rest.get(url).await?.body
        }
        (None, Some(text)) => {
            if text.trim().chars().count() < 2 {
                return Err(SfError::invalid("text", "must have at least 2 characters"));
            }
            let request = parameterized(ctx, args, text).await?;
            let url = ctx.rest.data_url(&[("text", "parameterizedSearch")])?;
            ctx.rest
                .send(reqwest::Method::POST, url, Some(&request))
                .await?
                .body
        }
        (Some(_), Some(_)) => {
            return Err(SfError::invalid(
                "text",
                "give either sosl or text, not both",
            ));
        }
        (None, None) => {
            return Err(SfError::invalid("text", "give sosl, or text to search for"));
        }
    };
    let found = match body {
        Value::Array(list) => list,
        mut other => match other.get_mut("searchRecords").map(Value::take) {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        },
    };
    let total = found.len();
    let records = capped(found, caps(ctx, None));
    let truncated = records.len() < total;
    let mut header = format!(
        "{} {}",
        records.len(),
        plural(records.len() as u64, "record")
    );
    if truncated {
        header.push_str(&format!(
            " (first {} of {total} found; narrow the search or set limit)",
            records.len()
        ));
    }
    let lines: Vec<String> = records.iter().map(shape::record_line).collect();
    let mut structured = json_object([("records", Value::Array(records))]);
    if truncated {
        structured["truncated"] = json!(true);
    }
    Ok(ToolOutput {
        structured,
        text: bounded_lines(&header, lines),
    })
}

/// Shapes records and keeps at most the caps' worth (at least one).
fn capped(raw: Vec<Value>, caps: Caps) -> Vec<Value> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for record in raw {
        if out.len() >= caps.max_records {
            break;
        }
        let shaped = shape::record(record);
        let size = shape::json_len(&shaped);
        if !out.is_empty() && bytes + size > caps.max_bytes {
            break;
        }
        bytes += size;
        out.push(shaped);
    }
    out
}

/// The JSON body of a parameterized search (REST API, "Parameterized
/// Search": `q`, `sobjects [{name, fields}]`, `overallLimit`).
async fn parameterized(ctx: &Ctx<'_>, args: &Value, text: &str) -> Result<Value, SfError> {
    let mut request = Map::new();
    request.insert("q".into(), json!(text));
    if let Some(limit) = args::opt_count(args, "limit", 1, 2000)? {
        request.insert("overallLimit".into(), json!(limit));
    }
    let objects = match args.get("objects") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Err(SfError::invalid("objects", "must be a list")),
    };
    let mut sobjects = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        let at = format!("objects[{i}]");
        let name = args::req_name(object, "name")
            .map_err(|_| SfError::invalid(&format!("{at}.name"), "must be an object API name"))?;
        let mut d = describe::described_object(ctx, &format!("{at}.name"), name).await?;
        let wanted = args::opt_str_list(object, "fields").map_err(|_| {
            SfError::invalid(&format!("{at}.fields"), "must be a list of field names")
        })?;
        let fields = match wanted {
            Some(list) if !list.is_empty() => {
                describe::field_names(ctx, &mut d, &format!("{at}.fields"), &list).await?
            }
            _ => default_fields(ctx, &mut d).await?,
        };
        sobjects.push(json!({
            "name": d.name.as_str(),
            "fields": fields.iter().map(Name::as_str).collect::<Vec<_>>(),
        }));
    }
    if !sobjects.is_empty() {
        request.insert("sobjects".into(), Value::Array(sobjects));
    }
    Ok(Value::Object(request))
}

/// `Id` and the object's name field, checked against its describe.
async fn default_fields(ctx: &Ctx<'_>, d: &mut Described) -> Result<Vec<Name>, SfError> {
    let mut wanted = vec!["Id".to_owned()];
    if let Some(name) = describe::name_field(d) {
        wanted.push(name.as_str().to_owned());
    }
    describe::field_names(ctx, d, "fields", &wanted).await
}

/// `get_record {object_name, record_id, fields?}` -> `{record}` from
/// `GET .../sobjects/{object}/{id}[?fields=...]`, fields checked against
/// describe.
pub(crate) async fn get_record(ctx: &Ctx<'_>, args: &Value) -> Result<ToolOutput, SfError> {
    let object = args::req_name(args, "object_name")?;
    let id = args::req_id(args, "record_id")?;
    let wanted = args::opt_str_list(args, "fields")?.filter(|f| !f.is_empty());
    let (object, fields) = match wanted {
        Some(list) => {
            let mut d = describe::described_object(ctx, "object_name", object).await?;
            let fields = describe::field_names(ctx, &mut d, "fields", &list).await?;
            (d.name, Some(fields))
        }
        None => (
            describe::object_name(ctx, "object_name", object).await?,
            None,
        ),
    };
    ids::check_prefix(ctx, "record_id", id, &object).await?;
    let mut url = ctx.rest.data_url(&[
        ("object_name", "sobjects"),
        ("object_name", object.as_str()),
        ("record_id", id),
    ])?;
    if let Some(fields) = &fields {
        let list: Vec<&str> = fields.iter().map(Name::as_str).collect();
        url.query_pairs_mut().append_pair("fields", &list.join(","));
    }
    let record = shape::record(ctx.rest.get(url).await?.body);
    let header = [record.get("type"), record.get("Id")]
        .iter()
        .filter_map(|v| v.and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let text = bounded_lines(&header, shape::field_pairs(&record));
    Ok(ToolOutput {
        structured: json_object([("record", record)]),
        text,
    })
}

/// `list_recent {limit?}` -> `{records}` from `GET .../recent?limit=n`
/// (default 20, at most the per-call record cap).
pub(crate) async fn list_recent(ctx: &Ctx<'_>, args: &Value) -> Result<ToolOutput, SfError> {
    let limit = args::opt_count(args, "limit", 1, 200)?
        .unwrap_or(20)
        .min(ctx.limits.max_records)
        .max(1);
    let mut url = ctx.rest.data_url(&[("limit", "recent")])?;
    url.query_pairs_mut()
        .append_pair("limit", &limit.to_string());
    let body = ctx.rest.get(url).await?.body;
    let list = match body {
        Value::Array(list) => list,
        _ => Vec::new(),
    };
    let records = capped(list, caps(ctx, Some(limit)));
    let header = format!(
        "{} recently viewed {}",
        records.len(),
        plural(records.len() as u64, "record")
    );
    let lines: Vec<String> = records.iter().map(shape::record_line).collect();
    Ok(ToolOutput {
        structured: json_object([("records", Value::Array(records))]),
        text: bounded_lines(&header, lines),
    })
}

/// `get_related_records {object_name, record_id, relationship_name,
/// fields?, limit?}` -> `{total_size, records, next_cursor}`.
///
/// Composes `SELECT <fields> FROM <child> WHERE <child field> = '<id>'
/// ORDER BY Id LIMIT <limit>` from the parent's describe (the child
/// relationship gives the child object and field; fields are checked
/// against the child's describe; the Id is a quoted literal) and pages it
/// like `query`, so `next_cursor` continues with the `query` tool.
pub(crate) async fn get_related_records(
    ctx: &Ctx<'_>,
    args: &Value,
) -> Result<ToolOutput, SfError> {
    let object = args::req_name(args, "object_name")?;
    let id = args::req_id(args, "record_id")?;
    let relationship = args::req_name(args, "relationship_name")?;
    let wanted = args::opt_str_list(args, "fields")?.filter(|f| !f.is_empty());
    let limit = args::opt_count(args, "limit", 1, 2000)?.unwrap_or(200);
    let mut parent = describe::described_object(ctx, "object_name", object).await?;
    ids::check_prefix(ctx, "record_id", id, &parent.name).await?;
    let (relationship, child, child_field) =
        describe::child_relationship(ctx, &mut parent, "relationship_name", relationship).await?;
    let mut child = describe::describe(ctx, &child, false).await?;
    let fields = match wanted {
        Some(list) => describe::field_names(ctx, &mut child, "fields", &list).await?,
        None => default_fields(ctx, &mut child).await?,
    };
    let order = describe::field_names(ctx, &mut child, "fields", &["Id".to_owned()]).await?;
    let mut select = Select::new(fields, child.name.clone())
        .where_equals(child_field, id)
        .limit(limit);
    if let Some(id_field) = order.into_iter().next() {
        select = select.order_by(id_field);
    }
    let soql = select.to_soql();
    let start = Start::Query {
        soql: &soql,
        include_deleted: false,
        max_records: Some(limit),
    };
    let page = paging::run(ctx, start, caps(ctx, Some(limit))).await?;
    let mut header = format!(
        "{relationship} of {} {id}: {} of {} {}",
        parent.name,
        page.records.len(),
        page.total_size,
        plural(page.total_size, "record")
    );
    if let Some(next) = &page.next {
        header.push_str(&format!(" (more: call query with cursor \"{next}\")"));
    }
    let mut out = page_output(page, header);
    if let Some(map) = out.structured.as_object_mut() {
        map.remove("done");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_keeps_at_least_one_record_and_respects_both_caps() {
        let raw: Vec<Value> = (0..10)
            .map(|i| json!({"attributes": {"type": "Account"}, "Id": format!("0015g00000Q1a{i:02}AAZ"), "Name": "x".repeat(100)}))
            .collect();
        let by_count = capped(
            raw.clone(),
            Caps {
                max_records: 3,
                max_bytes: 1 << 20,
            },
        );
        assert_eq!(by_count.len(), 3);
        assert_eq!(by_count[0]["type"], "Account");
        assert!(by_count[0].get("attributes").is_none());
        let by_bytes = capped(
            raw.clone(),
            Caps {
                max_records: 100,
                max_bytes: 1,
            },
        );
        assert_eq!(by_bytes.len(), 1);
        let some = capped(
            raw,
            Caps {
                max_records: 100,
                max_bytes: 400,
            },
        );
        assert_eq!(some.len(), 2, "two ~150-byte records fit in 400 bytes");
    }
}
