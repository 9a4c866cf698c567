//! Running a SOQL query across Salesforce's pages within the per-call
//! caps, and handing back a cursor for the rest.
//!
//! Owns: following `nextRecordsUrl` verbatim (appended to the instance
//! URL, after [`check_query_path`]) until `done`, stopping at
//! `max_records` records or about `max_bytes` of record JSON (always at
//! least one record), and the [`Cursor`] for where it stopped: inside a
//! page (that page's path plus an offset) or at the next page.
//!
//! Must not: construct locator URLs itself, or call any path that did not
//! pass [`check_query_path`].
//!
//! Source: REST API Developer Guide, "Query" and "QueryAll" (`totalSize`,
//! `done`, `nextRecordsUrl`; batch sizes vary).

use serde_json::Value;
use url::form_urlencoded;

use super::cursor::{Cursor, check_query_path};
use super::http::Rest;
use super::{SfError, shape};

/// The most Salesforce pages fetched in one call before handing back a
/// cursor (bounds a call's latency when pages are tiny or empty).
pub const MAX_PAGES_PER_CALL: usize = 50;

/// What one call returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Salesforce's `totalSize` of the whole query.
    pub total_size: u64,
    /// The records of this call, shaped by [`shape::record`].
    pub records: Vec<Value>,
    /// Where the next call starts; `None` when the query is done.
    pub next: Option<Cursor>,
    /// Records returned by earlier calls of this query.
    pub returned_before: u64,
}

/// The caps of one call.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Most records (at least 1).
    pub max_records: usize,
    /// About the most bytes of record JSON.
    pub max_bytes: usize,
}

/// The cursor of a query's first page: `/services/data/vNN.N/query?q=...`
/// (or `queryAll` when `include_deleted`).
pub fn first_page(rest: &Rest<'_>, soql: &str, include_deleted: bool) -> Cursor {
    let kind = if include_deleted { "queryAll" } else { "query" };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("q", soql)
        .finish();
    Cursor {
        path: format!("{}/{kind}?{query}", rest.data_path()),
        offset: 0,
        returned: 0,
        max_records: None,
    }
}

/// Fetches from `start` on until the caps are reached or the query is
/// done. Errors: [`SfError::InvalidArgument`] (field `cursor`) for a path
/// that is not a query path; Salesforce's errors.
pub async fn run(rest: &Rest<'_>, start: Cursor, caps: Caps) -> Result<Page, SfError> {
    let max_records = caps.max_records.max(1);
    let returned_before = start.returned;
    let asked = start.max_records;
    let mut cursor = start;
    let mut out: Vec<Value> = Vec::new();
    let mut bytes = 0usize;
    let mut pages = 0usize;
    loop {
        check_query_path(&cursor.path)?;
        let url = rest.url_for_path(&cursor.path)?;
        let mut body = rest.get(url).await?.body;
        pages += 1;
        let total_size = body.get("totalSize").and_then(Value::as_u64).unwrap_or(0);
        let done = body.get("done").and_then(Value::as_bool).unwrap_or(true);
        let next_url = body
            .get("nextRecordsUrl")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let records = match body.get_mut("records").map(Value::take) {
            Some(Value::Array(records)) => records,
            _ => Vec::new(),
        };
        let page_len = records.len();
        let mut index = cursor.offset.min(page_len);
        for raw in records.into_iter().skip(index) {
            if out.len() >= max_records {
                break;
            }
            let shaped = shape::record(raw);
            let size = serde_json::to_string(&shaped).map_or(0, |s| s.len());
            if !out.is_empty() && bytes + size > caps.max_bytes {
                break;
            }
            out.push(shaped);
            bytes += size;
            index += 1;
        }
        let returned = returned_before + out.len() as u64;
        let page = |next: Option<Cursor>| Page {
            total_size,
            records: Vec::new(),
            next,
            returned_before,
        };
        let mut result = if index < page_len {
            page(Some(Cursor {
                path: cursor.path.clone(),
                offset: index,
                returned,
                max_records: asked,
            }))
        } else {
            match next_url.filter(|_| !done) {
                None => page(None),
                Some(next) => {
                    check_query_path(&next)?;
                    let next = Cursor {
                        path: next,
                        offset: 0,
                        returned,
                        max_records: asked,
                    };
                    let full = out.len() >= max_records || bytes >= caps.max_bytes;
                    if !full && pages < MAX_PAGES_PER_CALL {
                        cursor = next;
                        continue;
                    }
                    page(Some(next))
                }
            }
        };
        result.records = out;
        return Ok(result);
    }
}

/// The text header of a page: `3 of 42 records (more: pass cursor "...")`,
/// or `records 4-6 of 42` on later calls.
pub fn header(page: &Page) -> String {
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
        Some(next) => format!("{span} (more: pass cursor \"{}\")", next.encode()),
        None => span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::Session;

    #[test]
    fn the_first_page_cursor_is_a_checked_query_path() {
        let http = reqwest::Client::new();
        let session = Session {
            instance_url: "https://acme.my.salesforce.com",
            access_token: "t",
            api_version: "66.0",
        };
        let rest = Rest::new(&http, &session).unwrap();
        let c = first_page(
            &rest,
            "SELECT Id FROM Account WHERE Name = 'O\\'Brien / ..'",
            true,
        );
        assert!(
            c.path
                .starts_with("/services/data/v66.0/queryAll?q=SELECT+Id+FROM+Account"),
            "{}",
            c.path
        );
        check_query_path(&c.path).unwrap();
        let url = rest.url_for_path(&c.path).unwrap();
        let q: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert_eq!(
            q,
            [(
                "q".to_owned(),
                "SELECT Id FROM Account WHERE Name = 'O\\'Brien / ..'".to_owned()
            )]
        );
    }

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
        page.next = Some(Cursor {
            path: "/services/data/v66.0/query/01g-9".into(),
            offset: 0,
            returned: 6,
            max_records: None,
        });
        let h = header(&page);
        assert!(
            h.starts_with("records 4-6 of 42 (more: pass cursor \""),
            "{h}"
        );
    }
}
