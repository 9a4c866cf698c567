//! Query paging: keyset paging by Id, and the query cursors' owner and
//! per-user limit.

mod common;

use std::collections::HashSet;

use common::*;
use reqwest::Method;
use serde_json::Value;

const V: &str = "/services/data/v66.0";
const CHLOE: &str = "chloe.martin@acme-demo.example";

fn q(soql: &str) -> String {
    format!(
        "{V}/query?q={}",
        url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
    )
}

async fn json_of(r: reqwest::RequestBuilder) -> (u16, Value) {
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn token(sim: &sfsim::Running, username: &str) -> String {
    login(sim, username).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn keyset_paging_by_id_visits_every_contact_exactly_once() {
    let sim = start().await;
    let token = token(&sim, ANA).await;
    let (_, count) = json_of(rest(
        &sim,
        &token,
        Method::GET,
        &q("SELECT COUNT() FROM Contact"),
    ))
    .await;
    let total = count["totalSize"].as_u64().unwrap() as usize;
    assert!(total > 100, "{total}");
    let mut seen: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let filter = last
            .as_ref()
            .map(|l| format!(" WHERE Id > '{l}'"))
            .unwrap_or_default();
        let (status, page) = json_of(rest(
            &sim,
            &token,
            Method::GET,
            &q(&format!(
                "SELECT Id FROM Contact{filter} ORDER BY Id LIMIT 7"
            )),
        ))
        .await;
        assert_eq!(status, 200, "{page}");
        let ids: Vec<String> = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Id"].as_str().unwrap().to_owned())
            .collect();
        let Some(next) = ids.last().cloned() else {
            break;
        };
        seen.extend(ids);
        last = Some(next);
        assert!(seen.len() <= total, "paging does not end");
    }
    assert_eq!(seen.len(), total);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), total);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages come in byte order of the Ids");
    // The Ids differ in case only where case matters: both upper- and
    // lower-case letters sit in the same position of some pair.
    let at = |id: &String| id.as_bytes()[14];
    assert!(seen.iter().any(|id| at(id).is_ascii_uppercase()));
    assert!(seen.iter().any(|id| at(id).is_ascii_lowercase()));
}

async fn first_page(sim: &sfsim::Running, token: &str) -> String {
    let (status, page) = json_of(
        rest(sim, token, Method::GET, &q("SELECT Id FROM Contact"))
            .header("Sforce-Query-Options", "batchSize=200"),
    )
    .await;
    assert_eq!(status, 200);
    page["nextRecordsUrl"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_cursor_belongs_to_its_user_and_each_user_keeps_ten() {
    let sim = start_with(|c| c.seed_accounts = 120).await;
    let ana = token(&sim, ANA).await;
    let chloe = token(&sim, CHLOE).await;
    let next = first_page(&sim, &ana).await;
    let (status, err) = json_of(rest(&sim, &chloe, Method::GET, &next)).await;
    assert_eq!(
        (status, err[0]["errorCode"].as_str()),
        (400, Some("INVALID_QUERY_LOCATOR"))
    );
    let (status, page) = json_of(rest(&sim, &ana, Method::GET, &next)).await;
    assert_eq!(status, 200, "{page}");
    // Ana opens ten more: her first cursor is dropped, the rest live on;
    // Chloé's own cursor is untouched.
    let chloes = first_page(&sim, &chloe).await;
    let mut later = Vec::new();
    for _ in 0..10 {
        later.push(first_page(&sim, &ana).await);
    }
    let (status, err) = json_of(rest(&sim, &ana, Method::GET, &next)).await;
    assert_eq!(
        (status, err[0]["errorCode"].as_str()),
        (400, Some("INVALID_QUERY_LOCATOR"))
    );
    for url in later.iter().chain([&chloes]) {
        let owner = if url == &chloes { &chloe } else { &ana };
        let (status, page) = json_of(rest(&sim, owner, Method::GET, url)).await;
        assert_eq!(status, 200, "{url}: {page}");
    }
    let state: Value = client()
        .get(format!("{}/_sfsim/state", sim.login_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["live_query_cursors"], 11);
}
