//! Running a SOQL query across Salesforce's pages within the per-call
//! caps, and handing back a cursor for the rest.
//!
//! Owns: the first request of a query (with `Sforce-Query-Options:
//! batchSize=<max_records>`, so that Salesforce's own locator points where
//! a call stops by count whenever it can), following `nextRecordsUrl`
//! verbatim (after [`check_query_path`]) until `done`, stopping at
//! `max_records` records or about `max_bytes` of record JSON (always at
//! least one record), and the [`Cursor`] for where it stopped:
//! - inside a page read through a locator: that locator plus the
//!   position in its page (re-reading a locator returns the same page);
//! - inside the first page, which has no locator of its own: the rest of
//!   that page held by the gateway ([`super::held`]) plus the locator
//!   after it;
//! - at a page boundary: the next locator.
//!
//! A query is sent to Salesforce once: continuing never runs it again, so
//! rows inserted or deleted between calls neither repeat nor vanish (the
//! result is the one Salesforce's locator holds).
//!
//! Must not: construct locator URLs itself, call any path that did not
//! pass [`check_query_path`], or run a query's SOQL a second time.
//!
//! Source: REST API Developer Guide, "Query" and "QueryAll" (`totalSize`,
//! `done`, `nextRecordsUrl`; batch sizes vary) and "Query Options Header"
//! (`batchSize` from 200 to 2,000, not guaranteed).

use serde_json::Value;

use super::cursor::{Cursor, Source, check_query_path, query_digest};
use super::{Ctx, SfError, shape};

/// The most Salesforce pages fetched in one call before handing back a
/// cursor (bounds a call's latency when pages are tiny or empty).
pub(crate) const MAX_PAGES_PER_CALL: usize = 50;

/// Salesforce's smallest and largest query batch sizes ("Query Options
/// Header").
pub(crate) const BATCH_SIZES: std::ops::RangeInclusive<usize> = 200..=2000;

/// What one call returns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Page {
    /// Salesforce's `totalSize` of the whole query.
    pub total_size: u64,
    /// The records of this call, shaped by [`shape::record`].
    pub records: Vec<Value>,
    /// The signed cursor where the next call starts; `None` when the
    /// query is done.
    pub next: Option<String>,
    /// Records returned by earlier calls of this query.
    pub returned_before: u64,
}

/// The caps of one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    /// Most records (at least 1).
    pub max_records: usize,
    /// About the most bytes of record JSON.
    pub max_bytes: usize,
}

/// Where a call starts.
#[derive(Debug, Clone)]
pub(crate) enum Start<'a> {
    /// A new query: `/query` (or `/queryAll` when `include_deleted`).
    Query {
        /// The SOQL, sent verbatim.
        soql: &'a str,
        /// `queryAll`: deleted and archived records too.
        include_deleted: bool,
        /// The `max_records` to keep in its cursors.
        max_records: Option<usize>,
    },
    /// A decoded, verified cursor.
    Cursor(Cursor),
}

/// Which page is being read, for the cursor of a call that stops in it.
enum Reading<'a> {
    /// The query's first page: `GET .../{kind}?q=<soql>`.
    First { kind: &'static str, soql: &'a str },
    /// A page behind a Salesforce locator.
    Locator(String),
    /// A page the gateway holds.
    Held(String),
}

/// A page as read: `totalSize`, `nextRecordsUrl` (only when not `done`),
/// and the raw records.
struct Fetched {
    total_size: u64,
    next: Option<String>,
    records: Vec<Value>,
}

async fn fetch(
    ctx: &Ctx<'_>,
    query: &str,
    reading: &Reading<'_>,
    batch: usize,
) -> Result<Fetched, SfError> {
    let url = match reading {
        Reading::Held(id) => {
            let page = ctx.cursors.held().get(ctx.owner, query, id).ok_or_else(|| {
                SfError::invalid(
                    "cursor",
                    "this cursor expired (cursors last 15 minutes after their last use, and a restart of toolgate ends the ones for a query's first page); run the query again",
                )
            })?;
            return Ok(Fetched {
                total_size: page.total_size,
                next: page.next,
                records: page.records,
            });
        }
        Reading::First { kind, soql } => {
            let mut url = ctx.rest.data_url(&[("soql", kind)])?;
            url.query_pairs_mut().append_pair("q", soql);
            url
        }
        Reading::Locator(path) => {
            check_query_path(path)?;
            ctx.rest.url_for_path(path)?
        }
    };
    let mut body = ctx.rest.get_query(url, batch).await?.body;
    let done = body.get("done").and_then(Value::as_bool).unwrap_or(true);
    Ok(Fetched {
        total_size: body.get("totalSize").and_then(Value::as_u64).unwrap_or(0),
        next: body
            .get("nextRecordsUrl")
            .and_then(Value::as_str)
            .filter(|_| !done)
            .map(str::to_owned),
        records: match body.get_mut("records").map(Value::take) {
            Some(Value::Array(records)) => records,
            _ => Vec::new(),
        },
    })
}

/// Fetches from `start` on until the caps are reached or the query is
/// done. Errors: [`SfError::InvalidArgument`] (field `cursor`) for a held
/// page that expired or a path that is not a query path; Salesforce's
/// errors (e.g. `INVALID_QUERY_LOCATOR` once a locator expired).
pub(crate) async fn run(ctx: &Ctx<'_>, start: Start<'_>, caps: Caps) -> Result<Page, SfError> {
    let max_records = caps.max_records.max(1);
    let batch = max_records.clamp(*BATCH_SIZES.start(), *BATCH_SIZES.end());
    let (query, asked, returned_before, mut reading, mut offset) = match start {
        Start::Query {
            soql,
            include_deleted,
            max_records,
        } => {
            let kind = if include_deleted { "queryAll" } else { "query" };
            (
                query_digest(kind, soql),
                max_records,
                0,
                Reading::First { kind, soql },
                0,
            )
        }
        Start::Cursor(c) => {
            let reading = match c.source {
                Source::Locator(path) => Reading::Locator(path),
                Source::Held(id) => Reading::Held(id),
            };
            (c.query, c.max_records, c.returned, reading, c.offset)
        }
    };
    let mut out: Vec<Value> = Vec::new();
    let mut bytes = 0usize;
    let mut pages = 0usize;
    loop {
        let Fetched {
            total_size,
            next: next_url,
            mut records,
        } = fetch(ctx, &query, &reading, batch).await?;
        pages += 1;
        let page_len = records.len();
        let mut index = offset.min(page_len);
        // A child subquery's page continues with a cursor of its own.
        let sign = |next: &str| {
            Some(ctx.cursors.encode(
                ctx.owner,
                &Cursor {
                    source: Source::Locator(next.to_owned()),
                    offset: 0,
                    returned: 0,
                    max_records: None,
                    query: query.clone(),
                },
            ))
        };
        while index < page_len && out.len() < max_records {
            let shaped = shape::record_with(records[index].clone(), &sign);
            let size = serde_json::to_string(&shaped).map_or(0, |s| s.len());
            if !out.is_empty() && bytes + size > caps.max_bytes {
                break;
            }
            out.push(shaped);
            bytes += size;
            index += 1;
        }
        let returned = returned_before + out.len() as u64;
        let cursor = |source: Source, offset: usize| Cursor {
            source,
            offset,
            returned,
            max_records: asked,
            query: query.clone(),
        };
        let next = if index < page_len {
            Some(match reading {
                Reading::Locator(path) => cursor(Source::Locator(path), index),
                Reading::Held(id) => cursor(Source::Held(id), index),
                Reading::First { .. } => {
                    // The first page has no locator of its own: hold the
                    // rest of it, with the locator after it.
                    let rest = records.split_off(index);
                    let id = ctx
                        .cursors
                        .held()
                        .hold(ctx.owner, &query, &rest, next_url, total_size)?;
                    cursor(Source::Held(id), 0)
                }
            })
        } else {
            match next_url {
                None => None,
                Some(next) => {
                    check_query_path(&next)?;
                    let full = out.len() >= max_records || bytes >= caps.max_bytes;
                    if !full && pages < MAX_PAGES_PER_CALL {
                        reading = Reading::Locator(next);
                        offset = 0;
                        continue;
                    }
                    Some(cursor(Source::Locator(next), 0))
                }
            }
        };
        return Ok(Page {
            total_size,
            records: out,
            next: next.map(|c| ctx.cursors.encode(ctx.owner, &c)),
            returned_before,
        });
    }
}

/// The text header of a page: `3 of 42 records (more: pass cursor "...")`,
/// or `records 4-6 of 42` on later calls.
pub(crate) fn header(page: &Page) -> String {
    let n = page.records.len() as u64;
    let span = if page.returned_before == 0 || n == 0 {
        format!(
            "{n} of {} {}",
            page.total_size,
            shape::plural(page.total_size, "record")
        )
    } else {
        format!(
            "records {}-{} of {}",
            page.returned_before + 1,
            page.returned_before + n,
            page.total_size
        )
    };
    match &page.next {
        Some(next) => format!("{span} (more: pass cursor \"{next}\")"),
        None => span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_say_how_many_and_how_to_continue() {
        let mut page = Page {
            total_size: 42,
            records: vec![Value::Null; 3],
            next: None,
            returned_before: 0,
        };
        assert_eq!(header(&page), "3 of 42 records");
        page.returned_before = 3;
        page.next = Some("abc.def".into());
        assert_eq!(
            header(&page),
            "records 4-6 of 42 (more: pass cursor \"abc.def\")"
        );
    }

    #[test]
    fn batch_sizes_follow_salesforce_bounds() {
        for (max, batch) in [(1, 200), (7, 200), (200, 200), (750, 750), (5000, 2000)] {
            assert_eq!(max.clamp(*BATCH_SIZES.start(), *BATCH_SIZES.end()), batch);
        }
    }
}
