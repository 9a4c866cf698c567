//! The decoding and shaping of one query answer, before and after issue
//! 17's one-pass reading, for `examples/shape_bench.rs` to time side by
//! side. Not part of the gateway's interface.
//!
//! Both take a query answer's body and return what `salesforce_query`
//! returns for it (the structured result and the text), with no record or
//! byte cap in the way: [`shape_page_before`] reads the body into a
//! `Value`, copies each record, shapes the copy, prints it to measure its
//! size, and copies the records again into the result (`json!`);
//! [`shape_page_after`] reads the body once, keeping records as raw JSON,
//! decodes and shapes each record in one pass, counts its size without
//! printing it, and moves the records into the result.

use bytes::Bytes;
use serde_json::{Value, json};

use super::{paging, shape};

fn no_cursor(_: &str) -> Option<String> {
    None
}

/// The issue-16 path. `None` when the body is not JSON.
pub fn shape_page_before(body: &[u8]) -> Option<(Value, String)> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    let total = value.get("totalSize").and_then(Value::as_u64).unwrap_or(0);
    let records = match value.get_mut("records").map(Value::take) {
        Some(Value::Array(records)) => records,
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    let mut bytes = 0;
    for record in &records {
        let shaped = shape::record_with(record.clone(), &no_cursor);
        bytes += serde_json::to_string(&shaped).map_or(0, |s| s.len());
        out.push(shaped);
    }
    std::hint::black_box(bytes);
    let lines: Vec<String> = out.iter().map(shape::record_line).collect();
    let text = shape::bounded_lines(&format!("{} of {total}", out.len()), lines);
    let structured =
        json!({"total_size": total, "done": true, "records": out, "next_cursor": null});
    Some((structured, text))
}

/// The issue-17 path. `None` when the body is not JSON.
pub fn shape_page_after(body: &[u8]) -> Option<(Value, String)> {
    let page = paging::decode_page(Bytes::copy_from_slice(body))?;
    let mut out = Vec::with_capacity(page.len());
    let mut bytes = 0;
    for i in 0..page.len() {
        let shaped = shape::decode_record(page.record(i), &no_cursor).ok()?;
        bytes += shape::json_len(&shaped);
        out.push(shaped);
    }
    std::hint::black_box(bytes);
    let total = page.total_size();
    let lines: Vec<String> = out.iter().map(shape::record_line).collect();
    let text = shape::bounded_lines(&format!("{} of {total}", out.len()), lines);
    let mut structured = serde_json::Map::new();
    structured.insert("total_size".into(), Value::from(total));
    structured.insert("done".into(), Value::Bool(true));
    structured.insert("records".into(), Value::Array(out));
    structured.insert("next_cursor".into(), Value::Null);
    Some((Value::Object(structured), text))
}

/// A query answer of `n` Account records shaped like Salesforce's
/// (query_page1.json of the REST API Developer Guide's "Query": each
/// record with `attributes {type, url}`, Id, Name, BillingCity, Industry
/// and AnnualRevenue), as compact JSON.
pub fn query_page(n: usize) -> Vec<u8> {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let id = format!("0015g{i:010}AAZ");
            json!({
                "attributes": {"type": "Account", "url": format!("/services/data/v66.0/sobjects/Account/{id}")},
                "Id": id,
                "Name": format!("Ålesund Fiskeri AS {i}"),
                "BillingCity": "Ålesund",
                "Industry": "Agriculture",
                "AnnualRevenue": 12500000.0 + i as f64,
            })
        })
        .collect();
    serde_json::to_vec(&json!({"totalSize": n, "done": true, "records": records}))
        .unwrap_or_default()
}
