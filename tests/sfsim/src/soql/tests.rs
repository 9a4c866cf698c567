//! SOQL behaviour against the fixture org (see `fixture`).

use serde_json::{Value, json};

use super::fixture::{acct, column, contact, id, options, org, rows, run};
use super::query;

fn names(soql: &str) -> Vec<String> {
    column(soql, "Name")
        .into_iter()
        .map(|v| v.as_str().unwrap_or("<null>").to_string())
        .collect()
}

fn url(object: &str, id: &str) -> String {
    format!("/services/data/v66.0/sobjects/{object}/{id}")
}

#[test]
fn records_have_attributes_then_fields_in_select_order_with_canonical_names() {
    let r =
        rows("select name, ID, annualrevenue, BillingCity from account where name = 'GENEPOINT'");
    assert_eq!(
        r,
        vec![json!({
            "attributes": {"type": "Account", "url": url("Account", &acct(4))},
            "Name": "GenePoint",
            "Id": acct(4),
            "AnnualRevenue": 30000000.0,
            "BillingCity": "Mountain View",
        })]
    );
    let keys: Vec<&String> = r[0]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        ["attributes", "Name", "Id", "AnnualRevenue", "BillingCity"]
    );
    // Null fields come out as null; non-ASCII and backslashes intact.
    let r = rows("SELECT Name, BillingCity, Industry FROM Account WHERE AnnualRevenue = null");
    assert_eq!(r[0]["Name"], "O'Brien & Sons \\ Logistics");
    assert_eq!(r[0]["BillingCity"], Value::Null);
}

#[test]
fn api_version_goes_into_urls() {
    let mut o = options();
    o.api_version = "60.0".into();
    let r = query(&org(), "SELECT Id FROM User LIMIT 1", &o).unwrap();
    assert_eq!(
        r.records[0]["attributes"]["url"],
        format!("/services/data/v60.0/sobjects/User/{}", id("005", 1))
    );
}

#[test]
fn comparison_operators() {
    let base = "SELECT Name FROM Account WHERE ";
    let q = |w: &str| names(&format!("{base}{w} ORDER BY Name"));
    assert_eq!(q("NumberOfEmployees = 1000"), ["Edge Communications"]);
    assert_eq!(
        q("NumberOfEmployees > 1000"),
        ["Burlington Textiles Corp of America"]
    );
    assert_eq!(
        q("NumberOfEmployees >= 1000"),
        ["Burlington Textiles Corp of America", "Edge Communications"]
    );
    assert_eq!(q("NumberOfEmployees < 265"), ["Ålesund Fiskeri AS"]);
    assert_eq!(
        q("NumberOfEmployees <= 265"),
        ["Ålesund Fiskeri AS", "GenePoint"]
    );
    // != and <> include nulls (O'Brien has no Industry).
    assert_eq!(q("Industry != 'Apparel'").len(), 4);
    assert_eq!(q("Industry <> 'apparel'").len(), 4);
    assert_eq!(q("Industry = null"), ["O'Brien & Sons \\ Logistics"]);
    assert_eq!(q("Industry != null").len(), 4);
    assert_eq!(
        q("AnnualRevenue > 100000000.5"),
        ["Burlington Textiles Corp of America", "Edge Communications"]
    );
    assert_eq!(
        q("Active__c = true"),
        ["Ålesund Fiskeri AS", "Edge Communications", "GenePoint"]
    );
    assert_eq!(q("Active__c = FALSE").len(), 2);
    // Text comparison is case-insensitive, including ordering operators.
    assert_eq!(q("Name = 'edge communications'"), ["Edge Communications"]);
    assert_eq!(q("Name = 'ÅLESUND FISKERI AS'"), ["Ålesund Fiskeri AS"]);
    // Ordering operators collate as ORDER BY does: `Å` with the a's.
    assert_eq!(
        q("Name < 'c'"),
        ["Ålesund Fiskeri AS", "Burlington Textiles Corp of America"]
    );
    assert_eq!(
        q("BillingCity IN ('austin', 'BURLINGTON')"),
        ["Burlington Textiles Corp of America", "Edge Communications"]
    );
    assert_eq!(q("BillingCity NOT IN ('Austin', 'Burlington')").len(), 3);
    assert_eq!(q("Industry IN ('Apparel', null)").len(), 2);
    assert_eq!(
        q("NumberOfEmployees IN (40, 265)"),
        ["Ålesund Fiskeri AS", "GenePoint"]
    );
}

#[test]
fn and_or_not_and_parentheses() {
    let q = |w: &str| names(&format!("SELECT Name FROM Account WHERE {w} ORDER BY Name"));
    assert_eq!(
        q("Active__c = true AND NumberOfEmployees > 100 AND Industry != null"),
        ["Edge Communications", "GenePoint"]
    );
    assert_eq!(
        q("BillingCity = 'Austin' OR BillingCity = 'Ålesund' OR Name LIKE 'Gene%'"),
        ["Ålesund Fiskeri AS", "Edge Communications", "GenePoint"]
    );
    assert_eq!(
        q("Active__c = true AND (BillingCity = 'Austin' OR BillingCity = 'Ålesund')"),
        ["Ålesund Fiskeri AS", "Edge Communications"]
    );
    assert_eq!(
        q("(Active__c = false OR Industry = 'Electronics') AND NOT Name LIKE 'O%'"),
        ["Burlington Textiles Corp of America", "Edge Communications"]
    );
    assert_eq!(
        q("NOT Active__c = true"),
        [
            "Burlington Textiles Corp of America",
            "O'Brien & Sons \\ Logistics"
        ]
    );
    assert_eq!(
        q("NOT (Active__c = true OR Industry = null)"),
        ["Burlington Textiles Corp of America"]
    );
    assert_eq!(q("((Name = 'GenePoint'))"), ["GenePoint"]);
    assert_eq!(
        q("(Name = 'GenePoint' OR (Name = 'Edge Communications' AND Active__c = false))"),
        ["GenePoint"]
    );
}

#[test]
fn like_wildcards_and_escaped_wildcards() {
    let q = |w: &str| {
        names(&format!(
            "SELECT Name FROM Opportunity WHERE Name LIKE {w} ORDER BY Name"
        ))
    };
    assert_eq!(q("'edge%'"), ["Edge Emergency Generator", "Edge Fiber"]);
    assert_eq!(q("'%BOATS'"), ["Ålesund Boats"]);
    assert_eq!(q("'%point%'"), ["GenePoint Lab", "GenePoint Reagents"]);
    assert_eq!(q("'Edge Fibe_'"), ["Edge Fiber"]);
    assert_eq!(q("'Edge Fib_'"), Vec::<String>::new());
    assert_eq!(q("'_lesund%'"), ["Ålesund Boats", "Ålesund Nets"]);
    assert_eq!(q("'100\\%%'"), ["100% Renewal_2026"]);
    assert_eq!(q("'%\\_2026'"), ["100% Renewal_2026"]);
    assert_eq!(q("'%\\%'"), Vec::<String>::new());
    assert_eq!(q("'O\\'Brien%'"), ["O'Brien Trucks"]);
    assert_eq!(q("'%'").len(), 11);
    let a = names("SELECT Name FROM Account WHERE Name LIKE '%\\\\%'");
    assert_eq!(a, ["O'Brien & Sons \\ Logistics"]);
}

#[test]
fn string_escapes_decode() {
    let q = |lit: &str| names(&format!("SELECT Name FROM Account WHERE Name = {lit}"));
    assert_eq!(
        q("'O\\'Brien & Sons \\\\ Logistics'"),
        ["O'Brien & Sons \\ Logistics"]
    );
    assert_eq!(q("'\\u00c5lesund Fiskeri AS'"), ["Ålesund Fiskeri AS"]);
    assert_eq!(q("'Gene\\u0050oint'"), ["GenePoint"]);
    for esc in ["\\n", "\\r", "\\t", "\\b", "\\f", "\\\"", "\\%", "\\_"] {
        let soql = format!("SELECT Name FROM Account WHERE Name = 'x{esc}y'");
        assert!(run(&soql).is_ok(), "{soql}");
    }
    assert_eq!(q("'100\\% x'"), Vec::<String>::new());
}

#[test]
fn date_literals_on_date_fields() {
    let q = |w: &str| {
        names(&format!(
            "SELECT Name FROM Opportunity WHERE {w} ORDER BY CloseDate, Name"
        ))
    };
    assert_eq!(q("CloseDate = 2026-03-18"), ["Edge Emergency Generator"]);
    assert_eq!(
        q("CloseDate > 2026-03-25"),
        ["O'Brien Trucks", "Edge Fiber"]
    );
    assert_eq!(
        q("CloseDate >= 2026-03-25"),
        ["GenePoint Lab", "O'Brien Trucks", "Edge Fiber"]
    );
    assert_eq!(q("CloseDate < 2026-02-15"), ["GenePoint Reagents"]);
    assert_eq!(
        q("CloseDate <= 2026-02-15"),
        ["GenePoint Reagents", "Ålesund Nets"]
    );
    assert_eq!(q("CloseDate != 2026-03-18").len(), 10);
    assert_eq!(
        q("CloseDate IN (2026-03-04, 2026-03-19)"),
        ["Burlington Uniforms", "Ålesund Boats"]
    );
}

#[test]
fn date_keywords_against_the_injected_now() {
    // now = Wednesday 2026-03-18T12:00:00Z.
    let q = |w: &str| {
        names(&format!(
            "SELECT Name FROM Opportunity WHERE CloseDate {w} ORDER BY CloseDate"
        ))
    };
    assert_eq!(q("= TODAY"), ["Edge Emergency Generator"]);
    assert_eq!(q("= yesterday"), ["Burlington Scarves"]);
    assert_eq!(q("= TOMORROW"), ["Ålesund Boats"]);
    assert_eq!(q("< TODAY").len(), 6);
    assert_eq!(q("<= TODAY").len(), 7);
    assert_eq!(
        q("> TODAY"),
        [
            "Ålesund Boats",
            "GenePoint Lab",
            "O'Brien Trucks",
            "Edge Fiber"
        ]
    );
    assert_eq!(q(">= TODAY").len(), 5);
    assert_eq!(
        q("= LAST_N_DAYS:7"),
        [
            "Unassigned Lead",
            "100% Renewal_2026",
            "Burlington Scarves",
            "Edge Emergency Generator"
        ]
    );
    assert_eq!(q("= LAST_N_DAYS:0"), ["Edge Emergency Generator"]);
    assert_eq!(q("= NEXT_N_DAYS:7"), ["Ålesund Boats", "GenePoint Lab"]);
    assert_eq!(q("= THIS_MONTH").len(), 8);
    assert_eq!(q("= LAST_MONTH"), ["Ålesund Nets"]);
    assert_eq!(q("= NEXT_MONTH"), ["Edge Fiber"]);
    assert_eq!(q("< THIS_MONTH"), ["GenePoint Reagents", "Ålesund Nets"]);
    assert_eq!(q("> THIS_MONTH"), ["Edge Fiber"]);
    assert_eq!(
        q("= THIS_WEEK"),
        [
            "Burlington Scarves",
            "Edge Emergency Generator",
            "Ålesund Boats"
        ]
    );
    assert_eq!(q("= N_DAYS_AGO:7"), ["Unassigned Lead"]);
    assert_eq!(q("= THIS_YEAR").len(), 11);
    assert_eq!(q("= LAST_YEAR").len(), 0);
}

#[test]
fn datetime_fields_with_literals_and_keywords() {
    let q = |w: &str| {
        names(&format!(
            "SELECT Name FROM Account WHERE CreatedDate {w} ORDER BY CreatedDate"
        ))
    };
    assert_eq!(q("= TODAY"), ["Ålesund Fiskeri AS"]);
    assert_eq!(q("= YESTERDAY"), ["Burlington Textiles Corp of America"]);
    assert_eq!(
        q("= LAST_N_DAYS:1"),
        ["Burlington Textiles Corp of America", "Ålesund Fiskeri AS"]
    );
    assert_eq!(
        q("= THIS_MONTH"),
        [
            "GenePoint",
            "Burlington Textiles Corp of America",
            "Ålesund Fiskeri AS"
        ]
    );
    assert_eq!(q("= LAST_YEAR"), ["O'Brien & Sons \\ Logistics"]);
    assert_eq!(q("> 2026-03-17T23:59:59Z"), ["Ålesund Fiskeri AS"]);
    assert_eq!(q(">= 2026-03-17T23:59:59Z").len(), 2);
    assert_eq!(q("= 2026-03-18T09:00:00+01:00"), ["Ålesund Fiskeri AS"]);
    assert_eq!(q("= 2026-03-18T08:00:00.000+0000"), ["Ålesund Fiskeri AS"]);
    assert_eq!(
        q("< 2026-01-01T00:00:00-02:00"),
        ["O'Brien & Sons \\ Logistics"]
    );
}

#[test]
fn order_by_nulls_desc_multiple_keys_and_paths() {
    let asc = names("SELECT Name FROM Account ORDER BY Industry");
    assert_eq!(
        asc[0], "O'Brien & Sons \\ Logistics",
        "nulls first by default"
    );
    let desc = names("SELECT Name FROM Account ORDER BY Industry DESC");
    assert_eq!(
        desc.last().map(String::as_str),
        Some("O'Brien & Sons \\ Logistics")
    );
    assert_eq!(desc[0], "Edge Communications");
    let n = names("SELECT Name FROM Account ORDER BY Industry DESC NULLS FIRST");
    assert_eq!(n[0], "O'Brien & Sons \\ Logistics");
    let n = names("SELECT Name FROM Account ORDER BY Industry ASC NULLS LAST");
    assert_eq!(
        n.last().map(String::as_str),
        Some("O'Brien & Sons \\ Logistics")
    );
    // Case- and accent-insensitive text order, as in query_page1/2.json:
    // Ålesund sorts with the A's.
    assert_eq!(
        names("SELECT Name FROM Account ORDER BY Name"),
        [
            "Ålesund Fiskeri AS",
            "Burlington Textiles Corp of America",
            "Edge Communications",
            "GenePoint",
            "O'Brien & Sons \\ Logistics"
        ]
    );
    assert_eq!(
        names(
            "SELECT Name FROM Account WHERE Name IN ('alpha', 'GenePoint', 'Edge Communications') ORDER BY Name DESC"
        ),
        ["GenePoint", "Edge Communications"]
    );
    assert_eq!(
        names(
            "SELECT Name FROM Opportunity WHERE Amount >= 20000 ORDER BY StageName DESC, Amount, Name"
        ),
        [
            "Burlington Scarves",
            "Unassigned Lead",
            "O'Brien Trucks",
            "Edge Fiber",
            "GenePoint Lab",
            "Ålesund Nets",
            "Burlington Uniforms",
            "Edge Emergency Generator"
        ]
    );
    assert_eq!(
        names("SELECT Name FROM Contact ORDER BY Account.Name DESC NULLS LAST, Name"),
        ["Rita Souza", "Tim Barr", "Kari Nordmann", "João Souza"]
    );
    assert_eq!(
        column(
            "SELECT Amount FROM Opportunity ORDER BY Amount DESC LIMIT 2",
            "Amount"
        ),
        [json!(500000.0), json!(250000.0)]
    );
}

#[test]
fn limit_and_offset() {
    let all = names("SELECT Name FROM Opportunity ORDER BY Name");
    assert_eq!(
        names("SELECT Name FROM Opportunity ORDER BY Name LIMIT 3"),
        all[..3]
    );
    assert_eq!(
        names("SELECT Name FROM Opportunity ORDER BY Name LIMIT 3 OFFSET 2"),
        all[2..5]
    );
    assert_eq!(
        names("SELECT Name FROM Opportunity ORDER BY Name OFFSET 9"),
        all[9..]
    );
    assert_eq!(names("SELECT Name FROM Opportunity OFFSET 2000").len(), 0);
    assert_eq!(names("SELECT Name FROM Opportunity LIMIT 0").len(), 0);
    let r = run("SELECT Id FROM Opportunity LIMIT 4").unwrap();
    assert_eq!(r.total_size, 4);
}

#[test]
fn count_star_and_count_field() {
    let r = run("SELECT COUNT() FROM Opportunity").unwrap();
    assert_eq!((r.total_size, r.records.len()), (11, 0));
    assert_eq!(
        run("SELECT count() FROM Account WHERE Industry = null")
            .unwrap()
            .total_size,
        1
    );
    assert_eq!(
        run("SELECT COUNT() FROM Account WHERE Name = 'nobody'")
            .unwrap()
            .total_size,
        0
    );
    assert_eq!(
        run("SELECT COUNT() FROM Opportunity LIMIT 5")
            .unwrap()
            .total_size,
        5
    );
    let r = rows("SELECT COUNT(Industry), COUNT(Id) total FROM Account");
    assert_eq!(
        r,
        [json!({"attributes": {"type": "AggregateResult"}, "expr0": 4, "total": 5})]
    );
    let r = rows("SELECT COUNT_DISTINCT(StageName) stages, COUNT(Name) FROM Opportunity");
    assert_eq!(
        r,
        [json!({"attributes": {"type": "AggregateResult"}, "stages": 2, "expr0": 11})]
    );
}

#[test]
fn grouped_aggregates_match_the_reference_shape() {
    // ../shared/salesforce/query_aggregate.json
    let r = run("SELECT StageName,COUNT(Id) n,SUM(Amount) FROM Opportunity GROUP BY StageName")
        .unwrap();
    let expected = json!([
        {"attributes": {"type": "AggregateResult"}, "StageName": "Closed Won", "n": 4, "expr0": 915000.0},
        {"attributes": {"type": "AggregateResult"}, "StageName": "Prospecting", "n": 7, "expr0": 120500.0}
    ]);
    assert_eq!(r.total_size, 2);
    assert_eq!(Value::Array(r.records.clone()), expected);
    assert_eq!(
        serde_json::to_string(&r.records[0]).unwrap(),
        r#"{"attributes":{"type":"AggregateResult"},"StageName":"Closed Won","n":4,"expr0":915000.0}"#
    );
}

#[test]
fn aggregates_naming_min_max_avg_and_empty_input() {
    let r = rows(
        "SELECT MIN(Amount), MAX(Amount) biggest, AVG(Amount), MIN(CloseDate), MAX(Name) FROM Opportunity WHERE StageName = 'Closed Won'",
    );
    assert_eq!(
        r,
        [json!({
            "attributes": {"type": "AggregateResult"},
            "expr0": 65000.0, "biggest": 500000.0, "expr1": 228750.0,
            "expr2": "2026-02-15", "expr3": "GenePoint Lab",
        })]
    );
    let r = rows(
        "SELECT COUNT(Id), SUM(Amount), AVG(Amount), MIN(Amount), MAX(Amount) FROM Opportunity WHERE Name = 'none'",
    );
    assert_eq!(
        r,
        [
            json!({"attributes": {"type": "AggregateResult"}, "expr0": 0, "expr1": null, "expr2": null, "expr3": null, "expr4": null})
        ]
    );
    let r = rows("SELECT SUM(NumberOfEmployees) FROM Account");
    assert_eq!(r[0]["expr0"], json!(10305.0));
}

#[test]
fn group_by_order_limit_nulls_and_parent_paths() {
    let r = rows("SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry");
    let industries: Vec<&Value> = r.iter().map(|x| &x["Industry"]).collect();
    assert_eq!(
        industries,
        [
            &Value::Null,
            &json!("Agriculture"),
            &json!("Apparel"),
            &json!("Biotechnology"),
            &json!("Electronics")
        ]
    );
    let r = rows(
        "SELECT StageName s, COUNT(Id) FROM Opportunity GROUP BY StageName ORDER BY COUNT(Id) DESC LIMIT 1",
    );
    assert_eq!(
        r,
        [json!({"attributes": {"type": "AggregateResult"}, "s": "Prospecting", "expr0": 7})]
    );
    let r = rows(
        "SELECT StageName, SUM(Amount) total FROM Opportunity GROUP BY StageName ORDER BY SUM(Amount) ASC",
    );
    assert_eq!(r[0]["StageName"], "Prospecting");
    let r = rows(
        "SELECT Account.Name, COUNT(Id) FROM Opportunity WHERE Account.Name LIKE 'Edge%' GROUP BY Account.Name",
    );
    assert_eq!(
        r,
        [
            json!({"attributes": {"type": "AggregateResult"}, "Name": "Edge Communications", "expr0": 2})
        ]
    );
    let r = rows(
        "SELECT StageName FROM Opportunity GROUP BY StageName ORDER BY StageName DESC OFFSET 1",
    );
    assert_eq!(
        r,
        [json!({"attributes": {"type": "AggregateResult"}, "StageName": "Closed Won"})]
    );
    assert_eq!(
        run("SELECT COUNT() FROM Opportunity GROUP BY StageName")
            .unwrap()
            .total_size,
        2
    );
}

#[test]
fn parent_paths_nest_merge_and_null() {
    let r = rows(
        "SELECT Id, Account.Name, Name, account.BillingCity, Account.Owner.Name FROM Contact WHERE LastName = 'Souza' ORDER BY Name DESC",
    );
    assert_eq!(
        r,
        [
            json!({
                "attributes": {"type": "Contact", "url": url("Contact", &contact(1))},
                "Id": contact(1),
                "Account": {
                    "attributes": {"type": "Account", "url": url("Account", &acct(3))},
                    "Name": "Edge Communications",
                    "BillingCity": "Austin",
                    "Owner": {
                        "attributes": {"type": "User", "url": url("User", &id("005", 1))},
                        "Name": "Ada Admin",
                    },
                },
                "Name": "Rita Souza",
            }),
            json!({
                "attributes": {"type": "Contact", "url": url("Contact", &contact(2))},
                "Id": contact(2),
                "Account": null,
                "Name": "João Souza",
            }),
        ]
    );
    // A null grandparent is null inside the parent.
    let r = rows("SELECT Account.Owner.Name FROM Opportunity WHERE Name = 'GenePoint Lab'");
    assert_eq!(r[0]["Account"]["Owner"], Value::Null);
    // Filters through relationships; a null parent is a null value.
    assert_eq!(
        names("SELECT Name FROM Contact WHERE Account.Industry = 'Electronics'"),
        ["Rita Souza"]
    );
    assert_eq!(
        names("SELECT Name FROM Contact WHERE Account.Name = null"),
        ["João Souza"]
    );
    assert_eq!(
        names(
            "SELECT Name FROM Opportunity WHERE Account.Owner.Name = 'Bob Builder' ORDER BY Name"
        )
        .len(),
        3
    );
    // Object-qualified field names.
    assert_eq!(
        names("SELECT Account.Name FROM Account WHERE Account.Name = 'GenePoint'"),
        ["GenePoint"]
    );
}

#[test]
fn child_subqueries_match_the_reference_shape() {
    // ../shared/salesforce/query_relationships.json
    let r = run("SELECT Id,Name,Account.Name,(SELECT Id,Subject FROM Cases) FROM Contact WHERE LastName='Souza'").unwrap();
    let expected = json!([
        {
            "attributes": {"type": "Contact", "url": url("Contact", &contact(1))},
            "Id": contact(1),
            "Name": "Rita Souza",
            "Account": {
                "attributes": {"type": "Account", "url": url("Account", &acct(3))},
                "Name": "Edge Communications"
            },
            "Cases": {
                "totalSize": 1,
                "done": true,
                "records": [{
                    "attributes": {"type": "Case", "url": url("Case", &id("500", 1))},
                    "Id": id("500", 1),
                    "Subject": "Router keeps rebooting"
                }]
            }
        },
        {
            "attributes": {"type": "Contact", "url": url("Contact", &contact(2))},
            "Id": contact(2),
            "Name": "João Souza",
            "Account": null,
            "Cases": null
        }
    ]);
    assert_eq!(r.total_size, 2);
    assert_eq!(Value::Array(r.records), expected);
}

#[test]
fn child_subqueries_filter_order_and_limit() {
    let r = rows(
        "SELECT Name, (SELECT Name, Amount FROM Opportunities WHERE Amount > 15000 ORDER BY Amount DESC LIMIT 1), (select LastName from contacts) FROM Account WHERE Name = 'Edge Communications'",
    );
    let opps = &r[0]["Opportunities"];
    assert_eq!(opps["totalSize"], 1);
    assert_eq!(opps["records"][0]["Name"], "Edge Emergency Generator");
    // The deleted contact "Old Souza" is not a child.
    assert_eq!(r[0]["Contacts"]["totalSize"], 1);
    assert_eq!(r[0]["Contacts"]["records"][0]["LastName"], "Souza");
    let keys: Vec<&String> = r[0]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["attributes", "Name", "Opportunities", "Contacts"]);
    let r = rows("SELECT Name, (SELECT Id FROM Contacts) FROM Account WHERE Name = 'GenePoint'");
    assert_eq!(r[0]["Contacts"], Value::Null);
}

#[test]
fn ids_15_and_18_characters() {
    let full = acct(3);
    let short = &full[..15];
    assert_eq!(
        names(&format!("SELECT Name FROM Account WHERE Id = '{short}'")),
        ["Edge Communications"]
    );
    assert_eq!(
        names(&format!("SELECT Name FROM Account WHERE Id = '{full}'")),
        ["Edge Communications"]
    );
    let lower_checksum = format!("{short}{}", full[15..].to_lowercase());
    assert_eq!(
        names(&format!(
            "SELECT Name FROM Account WHERE Id = '{lower_checksum}'"
        )),
        ["Edge Communications"]
    );
    assert_eq!(
        names(&format!(
            "SELECT Name FROM Contact WHERE AccountId = '{short}'"
        )),
        ["Rita Souza"]
    );
    assert_eq!(
        names(&format!(
            "SELECT Name FROM Contact WHERE AccountId IN ('{short}', '{}') ORDER BY Name",
            acct(1)
        )),
        ["Kari Nordmann", "Rita Souza"]
    );
    assert_eq!(
        names(&format!(
            "SELECT Name FROM Contact WHERE AccountId != '{full}'"
        ))
        .len(),
        3
    );
    assert_eq!(
        names("SELECT Name FROM Contact WHERE AccountId = null"),
        ["João Souza"]
    );
}

#[test]
fn deleted_records_only_with_include_deleted() {
    let org = org();
    let mut o = options();
    assert_eq!(
        query(&org, "SELECT COUNT() FROM Account", &o)
            .unwrap()
            .total_size,
        5
    );
    o.include_deleted = true;
    assert_eq!(
        query(&org, "SELECT COUNT() FROM Account", &o)
            .unwrap()
            .total_size,
        6
    );
    let r = query(
        &org,
        "SELECT Name FROM Account WHERE Name LIKE 'Deleted%'",
        &o,
    )
    .unwrap();
    assert_eq!(r.records[0]["Name"], "Deleted Industries");
    let r = query(
        &org,
        "SELECT Id, (SELECT Subject FROM Cases) FROM Contact WHERE Name = 'Rita Souza'",
        &o,
    )
    .unwrap();
    assert_eq!(r.records[0]["Cases"]["totalSize"], 2);
    let r = query(
        &org,
        "SELECT SUM(Amount) FROM Opportunity WHERE StageName = 'Closed Won'",
        &o,
    )
    .unwrap();
    assert_eq!(r.records[0]["expr0"], json!(1915000.0));
}

#[test]
fn keywords_and_whitespace_are_flexible() {
    let soql = "select\n  Name\nfrom   Account\nwhere Name like 'gene%'\norder by Name asc nulls last\nlimit 1";
    assert_eq!(names(soql), ["GenePoint"]);
    assert_eq!(
        names("SELECT Name FROM Account WHERE Name='GenePoint'"),
        ["GenePoint"]
    );
}
