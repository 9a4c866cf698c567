//! The query endpoints: `/query` and `/queryAll`, paged through
//! `nextRecordsUrl` (`.../query/<cursor>-<offset>`), and their cursors.
//!
//! A cursor shares the full result (`Arc<[Value]>`, no copy per page),
//! belongs to the user who ran the query, and, as in Salesforce, a user has
//! at most [`MAX_CURSORS_PER_USER`] (opening another drops their oldest)
//! and a cursor expires [`CURSOR_TTL_SECS`] after its last use.
//! Source: REST API Developer Guide, "Query" and "Execute a SOQL Query";
//! SOAP API Developer Guide, "queryMore()".

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::error::RestError;
use crate::rest::{begin, options};
use crate::soql;
use crate::state::{Sim, State as SimState};

type Params = HashMap<String, String>;
type RestResult = Result<Response, RestError>;

/// Most live query cursors per user (Salesforce: 10; the oldest goes).
pub const MAX_CURSORS_PER_USER: usize = 10;
/// A cursor expires this long after its last use (Salesforce: 15 minutes).
pub const CURSOR_TTL_SECS: i64 = 15 * 60;

/// A query cursor: the full result, its page size, and its owner.
#[derive(Debug, Clone)]
pub struct Locator {
    /// Every record of the result, shared by all its pages.
    pub records: Arc<[Value]>,
    /// The base page size.
    pub batch: usize,
    /// The user who ran the query; only they may read it.
    pub user: usize,
    /// Creation order, to drop a user's oldest cursor.
    pub serial: u64,
    /// When it was created or last read.
    pub last_used: DateTime<Utc>,
}

impl SimState {
    /// Drops cursors unused for [`CURSOR_TTL_SECS`] as of `now`.
    fn expire_locators(&mut self, now: DateTime<Utc>) {
        self.locators
            .retain(|_, l| (now - l.last_used).num_seconds() < CURSOR_TTL_SECS);
    }

    /// Stores a cursor for `user` (dropping expired ones, and the user's
    /// oldest if they have [`MAX_CURSORS_PER_USER`]); returns its id.
    pub fn add_locator(
        &mut self,
        user: usize,
        records: Arc<[Value]>,
        batch: usize,
        now: DateTime<Utc>,
    ) -> String {
        self.expire_locators(now);
        let mine: Vec<(u64, String)> = self
            .locators
            .iter()
            .filter(|(_, l)| l.user == user)
            .map(|(id, l)| (l.serial, id.clone()))
            .collect();
        if mine.len() >= MAX_CURSORS_PER_USER
            && let Some((_, oldest)) = mine.into_iter().min()
        {
            self.locators.remove(&oldest);
        }
        self.next_locator += 1;
        self.count("locators_created");
        let serial = self.next_locator;
        let id = crate::ids::make("01g", "RO", serial);
        self.locators.insert(
            id.clone(),
            Locator {
                records,
                batch,
                user,
                serial,
                last_used: now,
            },
        );
        id
    }

    /// The live cursor `id` if `user` owns it, marked used at `now`.
    pub fn use_locator(&mut self, id: &str, user: usize, now: DateTime<Utc>) -> Option<Locator> {
        self.expire_locators(now);
        let locator = self.locators.get_mut(id).filter(|l| l.user == user)?;
        locator.last_used = now;
        Some(locator.clone())
    }
}

/// The page size for this request: `Sforce-Query-Options: batchSize=N`
/// (Salesforce clamps it to 200..=2000), else the configured size. As in
/// Salesforce, which does not guarantee the requested size, the org may
/// send fewer: `query_batch_size` is the most it sends.
fn batch_size(sim: &Sim, headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|kv| kv.trim().strip_prefix("batchSize="))
                .and_then(|n| n.trim().parse::<usize>().ok())
        })
        .map(|n| n.clamp(200, 2000).min(sim.config.query_batch_size))
        .unwrap_or(sim.config.query_batch_size)
        .max(1)
}

/// The size of the page starting at `offset`: the batch size, or (uneven)
/// up to a quarter less, varying with the offset.
fn page_len(sim: &Sim, batch: usize, offset: usize) -> usize {
    if sim.config.uneven_batches && batch >= 4 {
        batch - (offset.wrapping_mul(31).wrapping_add(7)) % (batch / 4 + 1)
    } else {
        batch
    }
}

/// Where a page comes from: the endpoint kind (`query` or `queryAll`), API
/// version, the caller, and the cursor if one exists already.
struct PageSource<'a> {
    kind: &'a str,
    version: &'a str,
    user: usize,
    locator: Option<String>,
}

fn page(
    sim: &Sim,
    state: &mut SimState,
    source: PageSource<'_>,
    records: Arc<[Value]>,
    offset: usize,
    batch: usize,
) -> Value {
    let total = records.len();
    let len = page_len(sim, batch, offset).min(total.saturating_sub(offset));
    let slice: Vec<Value> = records[offset..offset + len].to_vec();
    let done = offset + len >= total;
    let mut out = Map::new();
    out.insert("totalSize".into(), json!(total));
    out.insert("done".into(), json!(done));
    if !done {
        let id = source
            .locator
            .unwrap_or_else(|| state.add_locator(source.user, records, batch, Utc::now()));
        let (version, kind) = (source.version, source.kind);
        out.insert(
            "nextRecordsUrl".into(),
            json!(format!(
                "/services/data/v{version}/{kind}/{id}-{}",
                offset + len
            )),
        );
    }
    out.insert("records".into(), Value::Array(slice));
    Value::Object(out)
}

async fn run_query(
    sim: Arc<Sim>,
    headers: HeaderMap,
    v: String,
    p: Params,
    include_deleted: bool,
) -> RestResult {
    let kind = if include_deleted { "queryAll" } else { "query" };
    let c = begin(&sim, &headers, &v, kind).await?;
    let q = p.get("q").filter(|q| !q.trim().is_empty()).ok_or_else(|| {
        RestError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        )
    })?;
    let batch = batch_size(&sim, &headers);
    let mut state = sim.lock();
    let result = soql::query(&*state, q, &options(&c, include_deleted))?;
    if result.records.is_empty() {
        return Ok(
            Json(json!({"totalSize": result.total_size, "done": true, "records": []}))
                .into_response(),
        );
    }
    let body = page(
        &sim,
        &mut state,
        PageSource {
            kind,
            version: &c.version,
            user: c.user,
            locator: None,
        },
        Arc::from(result.records),
        0,
        batch,
    );
    Ok(Json(body).into_response())
}

/// `GET .../query?q=`.
pub async fn query(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(v): Path<String>,
    Query(p): Query<Params>,
) -> RestResult {
    run_query(sim, headers, v, p, false).await
}

/// `GET .../queryAll?q=`.
pub async fn query_all(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(v): Path<String>,
    Query(p): Query<Params>,
) -> RestResult {
    run_query(sim, headers, v, p, true).await
}

/// `GET .../query/{locator}-{offset}` and `.../queryAll/...`: the next page,
/// for the user who ran the query only.
pub async fn query_more(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((v, kind, cursor)): Path<(String, String, String)>,
) -> RestResult {
    if kind != "query" && kind != "queryAll" {
        return Err(RestError::not_found());
    }
    let c = begin(&sim, &headers, &v, "query_more").await?;
    let invalid = || {
        RestError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        )
    };
    let (id, offset) = cursor.rsplit_once('-').ok_or_else(invalid)?;
    let offset: usize = offset.parse().map_err(|_| invalid())?;
    let mut state = sim.lock();
    let locator = state
        .use_locator(id, c.user, Utc::now())
        .ok_or_else(invalid)?;
    if offset >= locator.records.len() {
        return Err(invalid());
    }
    let body = page(
        &sim,
        &mut state,
        PageSource {
            kind: &kind,
            version: &c.version,
            user: c.user,
            locator: Some(id.to_owned()),
        },
        locator.records,
        offset,
        locator.batch,
    );
    Ok(Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;
    use chrono::Duration;

    fn sim() -> Sim {
        let mut config = SimConfig::for_tests("http://127.0.0.1:9/cb");
        config.seed_accounts = 1;
        Sim::new(config, "http://127.0.0.1:1".into(), 2)
    }

    fn rows(n: usize) -> Arc<[Value]> {
        (0..n).map(|i| json!({ "n": i })).collect()
    }

    #[test]
    fn cursors_share_the_result_instead_of_copying_it() {
        let sim = sim();
        let mut state = sim.lock();
        let records = rows(5);
        let now = Utc::now();
        let id = state.add_locator(0, records.clone(), 2, now);
        let got = state.use_locator(&id, 0, now).unwrap();
        assert!(Arc::ptr_eq(&got.records, &records));
        assert_eq!(got.records[4], json!({"n": 4}));
    }

    #[test]
    fn a_user_keeps_ten_cursors_and_loses_the_oldest() {
        let sim = sim();
        let mut state = sim.lock();
        let now = Utc::now();
        let ids: Vec<String> = (0..MAX_CURSORS_PER_USER + 1)
            .map(|_| state.add_locator(0, rows(3), 1, now))
            .collect();
        let other = state.add_locator(1, rows(3), 1, now);
        assert!(state.use_locator(&ids[0], 0, now).is_none());
        for id in &ids[1..] {
            assert!(state.use_locator(id, 0, now).is_some(), "{id}");
        }
        assert_eq!(state.locators.len(), MAX_CURSORS_PER_USER + 1);
        // Another user's cursor is theirs alone.
        assert!(state.use_locator(&other, 0, now).is_none());
        assert!(state.use_locator(&ids[1], 1, now).is_none());
        assert!(state.use_locator(&other, 1, now).is_some());
    }

    #[test]
    fn cursors_expire_fifteen_minutes_after_their_last_use() {
        let sim = sim();
        let mut state = sim.lock();
        let t0 = Utc::now();
        let a = state.add_locator(0, rows(3), 1, t0);
        let b = state.add_locator(0, rows(3), 1, t0);
        let t1 = t0 + Duration::minutes(10);
        assert!(state.use_locator(&a, 0, t1).is_some());
        let t2 = t0 + Duration::minutes(15);
        assert!(state.use_locator(&b, 0, t2).is_none(), "unused for 15 min");
        assert!(state.use_locator(&a, 0, t2).is_some(), "used 5 min ago");
        assert!(
            state
                .use_locator(&a, 0, t2 + Duration::minutes(15))
                .is_none()
        );
        assert!(state.locators.is_empty());
    }

    #[test]
    fn cursor_ids_stay_unique_when_counters_are_reset() {
        let sim = sim();
        let mut state = sim.lock();
        let now = Utc::now();
        let a = state.add_locator(0, rows(3), 1, now);
        state.counters.clear();
        let b = state.add_locator(0, rows(3), 1, now);
        assert_ne!(a, b);
        assert!(state.use_locator(&a, 0, now).is_some());
        assert_eq!(state.counters.get("locators_created"), Some(&1));
    }
}
