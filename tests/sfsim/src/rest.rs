//! The instance URL: the REST API endpoints toolgate uses, with their
//! Salesforce status codes and error bodies, the `Sforce-Limit-Info` header,
//! and the injected faults.
//! The query endpoints and their cursors are in [`crate::paging`].
//! Source: Salesforce REST API Developer Guide (Resources: Versions,
//! Describe Global, sObject Describe, sObject Rows, sObject Rows by External
//! ID, sObject Relationships, Search, Parameterized Search, Recently Viewed
//! Items, Limits).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::error::RestError;
use crate::record::{DataSource, with_attributes};
use crate::soql::{self, QueryOptions};
use crate::sosl;
use crate::state::{Sim, State as SimState};
use crate::writes;

type Params = HashMap<String, String>;
type RestResult = Result<Response, RestError>;

/// The authenticated caller of a REST request.
pub struct Caller {
    /// User index.
    pub user: usize,
    /// API version without the `v`, e.g. `66.0`.
    pub version: String,
}

/// Waits the injected latency when the latency fault picks this REST call.
async fn maybe_delay(sim: &Sim) {
    let ms = {
        let mut state = sim.lock();
        state.fault_tick += 1;
        let f = &state.faults;
        if f.latency_every > 0
            && f.latency_ms > 0
            && state.fault_tick.is_multiple_of(u64::from(f.latency_every))
        {
            f.latency_ms
        } else {
            0
        }
    };
    if ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// Counts the call, checks the version, the bearer token, the API limit
/// and the injected server errors, then waits any injected latency.
pub(crate) async fn begin(
    sim: &Sim,
    headers: &HeaderMap,
    version: &str,
    endpoint: &str,
) -> Result<Caller, RestError> {
    let caller = {
        let mut state = sim.lock();
        state.count(endpoint);
        let version = crate::versions::check(version)?;
        let user = crate::oauth::bearer_token(headers)
            .and_then(|token| state.access_tokens.get(token))
            .map(|a| a.user)
            .ok_or_else(RestError::invalid_session)?;
        if state.faults.api_limit_exhausted || state.api_usage >= sim.config.daily_api_limit {
            return Err(RestError::new(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ));
        }
        state.api_usage += 1;
        let every = u64::from(state.faults.server_error_every);
        if every > 0 && state.api_usage.is_multiple_of(every) {
            state.count("injected_server_error");
            return Err(RestError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_UNAVAILABLE",
                "Service temporarily unavailable; please try again.",
            ));
        }
        Caller { user, version }
    };
    maybe_delay(sim).await;
    Ok(caller)
}

/// Middleware: `Sforce-Limit-Info: api-usage=<used>/<max>` on every
/// response; counts the request's host and records its `traceparent`
/// header, if any ([`crate::state::State::traceparents`]).
pub async fn limit_header(State(sim): State<Arc<Sim>>, request: Request, next: Next) -> Response {
    // Only known host names get their own counter: the key set must not
    // grow with what clients send.
    let host = request
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(|h| match h.rsplit_once(':').map_or(h, |(name, _)| name) {
            "127.0.0.1" => "host:127.0.0.1",
            "localhost" => "host:localhost",
            _ => "host:other",
        });
    if let Some(host) = host {
        sim.lock().count(host);
    }
    if let Some(traceparent) = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        sim.lock()
            .record_traceparent(request.uri().path(), traceparent);
    }
    let mut response = next.run(request).await;
    let usage = sim.lock().api_usage;
    if let Ok(value) =
        HeaderValue::from_str(&format!("api-usage={usage}/{}", sim.config.daily_api_limit))
    {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response
}

/// `GET /services/data/`: every served API version, oldest first (see
/// [`crate::versions`]); no authentication needed, as on a real org.
pub async fn versions(State(sim): State<Arc<Sim>>) -> Response {
    sim.lock().count("versions");
    Json(
        crate::versions::served()
            .map(|(label, v)| json!({"label": label, "url": format!("/services/data/v{v}"), "version": v}))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

/// `GET /services/data/vXX.X`: the resources of a version.
pub async fn resources(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(v): Path<String>,
) -> RestResult {
    let c = begin(&sim, &headers, &v, "resources").await?;
    let base = format!("/services/data/v{}", c.version);
    let mut out = Map::new();
    for name in [
        "sobjects",
        "query",
        "queryAll",
        "search",
        "parameterizedSearch",
        "recent",
        "limits",
    ] {
        out.insert(name.into(), json!(format!("{base}/{name}")));
    }
    Ok(Json(Value::Object(out)).into_response())
}

/// `GET .../sobjects`: describe global.
pub async fn describe_global(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(v): Path<String>,
) -> RestResult {
    let c = begin(&sim, &headers, &v, "describe_global").await?;
    let state = sim.lock();
    let objects: Vec<Value> = state
        .schema
        .objects
        .iter()
        .map(|o| o.describe_global_entry(&c.version))
        .collect();
    Ok(
        Json(json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects}))
            .into_response(),
    )
}

/// `GET .../sobjects/{Name}/describe`.
pub async fn describe(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((v, object)): Path<(String, String)>,
) -> RestResult {
    let c = begin(&sim, &headers, &v, "describe").await?;
    let state = sim.lock();
    let def = state
        .schema
        .object(&object)
        .ok_or_else(RestError::not_found)?;
    Ok(Json(def.describe(&c.version)).into_response())
}

fn fields_param(p: &Params) -> Option<Vec<String>> {
    p.get("fields").map(|f| {
        f.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// A record as the sObject Rows resource shows it: `attributes`, the
/// requested fields (or all), and `Id` last if not requested.
fn record_json(
    state: &SimState,
    object: &str,
    id: &str,
    fields: Option<&[String]>,
    version: &str,
) -> Result<Value, RestError> {
    let def = state
        .schema
        .object(object)
        .ok_or_else(RestError::not_found)?;
    let record = state
        .record(id)
        .filter(|r| r.object == def.name && !r.deleted)
        .ok_or_else(RestError::not_found)?;
    let mut out = with_attributes(&def.name, id, version);
    match fields {
        Some(fields) => {
            for name in fields {
                let f = def.field(name).ok_or_else(|| {
                    RestError::new(
                        StatusCode::BAD_REQUEST,
                        "INVALID_FIELD",
                        format!("No such column '{name}' on sobject of type {}", def.name),
                    )
                })?;
                out.insert(f.name.clone(), record.get(&f.name).clone());
            }
            if !out.contains_key("Id") {
                out.insert("Id".into(), json!(id));
            }
        }
        None => {
            for f in &def.fields {
                out.insert(f.name.clone(), record.get(&f.name).clone());
            }
        }
    }
    Ok(Value::Object(out))
}

/// Resolves a path id (15 or 18 characters) to 18, or the Salesforce error
/// for a malformed one.
fn path_id(raw: &str) -> Result<String, RestError> {
    crate::ids::to_18(raw).ok_or_else(|| {
        RestError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {raw}"),
        )
    })
}

/// `GET .../sobjects/{Name}/{id}?fields=`.
pub async fn get_record(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((v, object, id)): Path<(String, String, String)>,
    Query(p): Query<Params>,
) -> RestResult {
    let c = begin(&sim, &headers, &v, "record_get").await?;
    let id = path_id(&id)?;
    let mut state = sim.lock();
    let body = record_json(
        &state,
        &object,
        &id,
        fields_param(&p).as_deref(),
        &c.version,
    )?;
    state.touch(c.user, &id);
    Ok(Json(body).into_response())
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, RestError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(RestError::json(
            "The request body must be a JSON object of field values",
        )),
        Err(e) => Err(RestError::json(format!("Unexpected character: {e}"))),
    }
}

/// `POST .../sobjects/{Name}`: create; 201 `{id, success, errors}`.
pub async fn create(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((v, object)): Path<(String, String)>,
    body: Bytes,
) -> RestResult {
    let c = begin(&sim, &headers, &v, "record_create").await?;
    let fields = parse_body(&body)?;
    let mut state = sim.lock();
    let id = writes::create(&mut state, &sim, c.user, &object, fields)?;
    state.touch(c.user, &id);
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "success": true, "errors": []})),
    )
        .into_response())
}

/// `PATCH .../sobjects/{Name}/{id}` (204) and `DELETE` (204).
pub async fn update_or_delete(
    State(sim): State<Arc<Sim>>,
    method: Method,
    headers: HeaderMap,
    Path((v, object, id)): Path<(String, String, String)>,
    body: Bytes,
) -> RestResult {
    let endpoint = if method == Method::DELETE {
        "record_delete"
    } else {
        "record_update"
    };
    let c = begin(&sim, &headers, &v, endpoint).await?;
    let id = path_id(&id)?;
    let mut state = sim.lock();
    if method == Method::DELETE {
        writes::delete(&mut state, c.user, &object, &id)?;
    } else {
        let fields = parse_body(&body)?;
        writes::update(&mut state, c.user, &object, &id, fields)?;
        state.touch(c.user, &id);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PATCH .../sobjects/{Name}/{Field}/{value}`: upsert by external Id
/// (201 created, 200 updated; before API version 46.0 an update is 204
/// with no body and a creation's body has no `created`, as the REST API
/// Developer Guide's "Insert or Update (Upsert) a Record Using an External
/// ID" describes for each version); `GET` of the same shape follows a
/// relationship (`.../sobjects/Account/{id}/Contacts`).
pub async fn upsert_or_relationship(
    State(sim): State<Arc<Sim>>,
    method: Method,
    headers: HeaderMap,
    Path((v, object, a, b)): Path<(String, String, String, String)>,
    Query(p): Query<Params>,
    body: Bytes,
) -> RestResult {
    if method == Method::GET {
        let c = begin(&sim, &headers, &v, "relationship").await?;
        let id = path_id(&a)?;
        let state = sim.lock();
        return relationship(&state, &c, &object, &id, &b, fields_param(&p))
            .map(|v| Json(v).into_response());
    }
    let c = begin(&sim, &headers, &v, "record_upsert").await?;
    let fields = parse_body(&body)?;
    let mut state = sim.lock();
    let (id, created) = writes::upsert(&mut state, &sim, c.user, &object, &a, &b, fields)?;
    state.touch(c.user, &id);
    if major_version(&c.version) < 46 {
        return Ok(if created {
            (
                StatusCode::CREATED,
                Json(json!({"id": id, "success": true, "errors": []})),
            )
                .into_response()
        } else {
            StatusCode::NO_CONTENT.into_response()
        });
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"id": id, "success": true, "errors": [], "created": created})),
    )
        .into_response())
}

/// `66` for `66.0` (a version [`crate::versions::check`] accepted).
fn major_version(version: &str) -> u32 {
    version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(crate::versions::LATEST)
}

fn relationship(
    state: &SimState,
    c: &Caller,
    object: &str,
    id: &str,
    name: &str,
    fields: Option<Vec<String>>,
) -> Result<Value, RestError> {
    let def = state
        .schema
        .object(object)
        .ok_or_else(RestError::not_found)?;
    state
        .record(id)
        .filter(|r| r.object == def.name && !r.deleted)
        .ok_or_else(RestError::not_found)?;
    if let Some(child) = def.child_relationship(name) {
        let child_def = state
            .schema
            .object(&child.child_sobject)
            .ok_or_else(RestError::not_found)?;
        let list =
            fields.unwrap_or_else(|| child_def.fields.iter().map(|f| f.name.clone()).collect());
        let soql = format!(
            "SELECT {} FROM {} WHERE {} = '{}'",
            list.join(", "),
            child_def.name,
            child.field,
            id
        );
        let result = soql::query(state, &soql, &options(c, false))?;
        return Ok(
            json!({"totalSize": result.total_size, "done": true, "records": result.records}),
        );
    }
    if let Some(parent) = def.parent_relationship(name) {
        let record = state.record(id).ok_or_else(RestError::not_found)?;
        let parent_id = record
            .get(&parent.name)
            .as_str()
            .ok_or_else(RestError::not_found)?
            .to_owned();
        let parent_object = parent.reference_to.first().cloned().unwrap_or_default();
        return record_json(
            state,
            &parent_object,
            &parent_id,
            fields.as_deref(),
            &c.version,
        );
    }
    Err(RestError::not_found())
}

/// The query options of a request by `c`.
pub(crate) fn options(c: &Caller, include_deleted: bool) -> QueryOptions {
    QueryOptions {
        include_deleted,
        api_version: c.version.clone(),
        now: Utc::now(),
    }
}

/// `GET .../search?q=`: SOSL.
pub async fn search(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(v): Path<String>,
    Query(p): Query<Params>,
) -> RestResult {
    let c = begin(&sim, &headers, &v, "search").await?;
    let q = p.get("q").cloned().unwrap_or_default();
    let state = sim.lock();
    let records = sosl::search(&*state, &q, &options(&c, false))?;
    Ok(Json(json!({"searchRecords": records})).into_response())
}

/// `GET` (query parameters) or `POST` (JSON body) `.../parameterizedSearch`.
pub async fn parameterized_search(
    State(sim): State<Arc<Sim>>,
    method: Method,
    headers: HeaderMap,
    Path(v): Path<String>,
    Query(p): Query<Params>,
    body: Bytes,
) -> RestResult {
    let c = begin(&sim, &headers, &v, "parameterized_search").await?;
    let search = if method == Method::POST {
        let body: Value =
            serde_json::from_slice(&body).map_err(|e| RestError::json(e.to_string()))?;
        parameterized_from_json(&body)?
    } else {
        parameterized_from_query(&p)
    };
    if search.q.trim().is_empty() {
        return Err(RestError::new(
            StatusCode::BAD_REQUEST,
            "MISSING_ARGUMENT",
            "q: A search string must be specified",
        ));
    }
    let state = sim.lock();
    let records = sosl::parameterized_search(&*state, &search, &options(&c, false))?;
    Ok(Json(json!({"searchRecords": records})).into_response())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn parameterized_from_json(body: &Value) -> Result<sosl::ParameterizedSearch, RestError> {
    let q = body
        .get("q")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let sobjects = body
        .get("sobjects")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|o| sosl::SearchObject {
                    name: o
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    fields: strings(o.get("fields").unwrap_or(&Value::Null)),
                    limit: o.get("limit").and_then(Value::as_u64).map(|n| n as usize),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(sosl::ParameterizedSearch {
        q,
        scope: body.get("in").and_then(Value::as_str).map(String::from),
        sobjects,
        overall_limit: body
            .get("overallLimit")
            .and_then(Value::as_u64)
            .map(|n| n as usize),
        default_fields: strings(body.get("fields").unwrap_or(&Value::Null)),
    })
}

fn parameterized_from_query(p: &Params) -> sosl::ParameterizedSearch {
    let split = |s: &str| {
        s.split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
    };
    let sobjects = p
        .get("sobject")
        .map(|s| split(s))
        .unwrap_or_default()
        .into_iter()
        .map(|name| sosl::SearchObject {
            fields: p
                .get(&format!("{name}.fields"))
                .map(|f| split(f))
                .unwrap_or_default(),
            limit: p.get(&format!("{name}.limit")).and_then(|l| l.parse().ok()),
            name,
        })
        .collect();
    sosl::ParameterizedSearch {
        q: p.get("q").cloned().unwrap_or_default(),
        scope: p.get("in").cloned(),
        sobjects,
        overall_limit: p.get("overallLimit").and_then(|l| l.parse().ok()),
        default_fields: p.get("fields").map(|f| split(f)).unwrap_or_default(),
    }
}

/// `GET .../recent?limit=`: the caller's recently viewed or changed records.
pub async fn recent(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(v): Path<String>,
    Query(p): Query<Params>,
) -> RestResult {
    let c = begin(&sim, &headers, &v, "recent").await?;
    let limit = p
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(200)
        .min(200);
    let state = sim.lock();
    let ids = state.recent.get(&c.user).cloned().unwrap_or_default();
    let out: Vec<Value> = ids
        .iter()
        .filter_map(|id| state.record(id))
        .filter(|r| !r.deleted)
        .take(limit)
        .map(|r| {
            let mut m = with_attributes(&r.object, &r.id, &c.version);
            m.insert("Id".into(), json!(r.id));
            let name = state
                .schema
                .object(&r.object)
                .and_then(|o| o.name_fields().next().map(|f| f.name.clone()))
                .unwrap_or_else(|| "Name".into());
            m.insert(name.clone(), r.get(&name).clone());
            Value::Object(m)
        })
        .collect();
    Ok(Json(out).into_response())
}

/// `GET .../limits`.
pub async fn limits(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(v): Path<String>,
) -> RestResult {
    begin(&sim, &headers, &v, "limits").await?;
    let used = sim.lock().api_usage;
    let max = sim.config.daily_api_limit;
    Ok(Json(json!({
        "DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(used)},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DataStorageMB": {"Max": 5, "Remaining": 4},
        "FileStorageMB": {"Max": 20, "Remaining": 20},
    }))
    .into_response())
}
