//! Comparison semantics that must agree with ORDER BY (Ids, text
//! collation), string escapes, and the select, group, filter and sort
//! checks of field types.

use serde_json::{Value, json};

use super::fixture::{acct, error, id, options, org, rows};
use super::query;
use crate::record::Record;

fn names(soql: &str) -> Vec<String> {
    rows(soql)
        .into_iter()
        .map(|r| r["Name"].as_str().unwrap_or("<null>").to_owned())
        .collect()
}

fn ids_of(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["Id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn id_ranges_compare_case_sensitively_like_order_by_id() {
    // Serial 11 ends in `B`, serial 36 in `a`: `a` sorts after `B` byte-wise
    // (and in ORDER BY Id), but before it case-insensitively.
    let mut org = org();
    for n in [11, 36] {
        let id = id("001", n);
        org.records.push(Record {
            id: id.clone(),
            object: "Account".into(),
            fields: [
                ("Id".to_owned(), json!(id)),
                ("Name".to_owned(), json!(format!("Serial {n}"))),
            ]
            .into_iter()
            .collect(),
            deleted: false,
        });
    }
    let run = |soql: &str| ids_of(&query(&org, soql, &options()).unwrap().records);
    let ordered = run("SELECT Id FROM Account ORDER BY Id");
    assert_eq!(
        ordered,
        [1, 2, 3, 4, 5, 11, 36].map(|n| id("001", n)).to_vec()
    );
    // Every suffix of the ORDER BY Id order is exactly `Id > previous`.
    for (i, last) in ordered.iter().enumerate() {
        let after = run(&format!(
            "SELECT Id FROM Account WHERE Id > '{last}' ORDER BY Id"
        ));
        assert_eq!(after, ordered[i + 1..].to_vec(), "Id > {last}");
        let upto = run(&format!(
            "SELECT Id FROM Account WHERE Id <= '{}' ORDER BY Id",
            &last[..15]
        ));
        assert_eq!(upto, ordered[..=i].to_vec(), "Id <= {last} (15 chars)");
    }
    assert_eq!(
        run(&format!(
            "SELECT Id FROM Account WHERE Id > '{}'",
            id("001", 11)
        )),
        [id("001", 36)]
    );
    // A malformed Id is an error for ranges too.
    let e = error("SELECT Id FROM Account WHERE Id > 'abc'");
    assert_eq!(
        (e.error_code, e.message.as_str()),
        ("INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: abc")
    );
    assert_eq!(
        run(&format!(
            "SELECT Id FROM Account WHERE OwnerId >= '{}' ORDER BY Id",
            id("005", 2)
        )),
        [acct(2)]
    );
}

#[test]
fn text_ranges_use_the_order_by_collation() {
    let sorted = names("SELECT Name FROM Account ORDER BY Name");
    assert_eq!(
        sorted,
        [
            "Ålesund Fiskeri AS",
            "Burlington Textiles Corp of America",
            "Edge Communications",
            "GenePoint",
            "O'Brien & Sons \\ Logistics",
        ]
    );
    // `Å` collates with `a`: before `B`, not after `O` by code point.
    assert_eq!(
        names("SELECT Name FROM Account WHERE Name < 'B'"),
        ["Ålesund Fiskeri AS"]
    );
    assert_eq!(
        names("SELECT Name FROM Account WHERE Name > 'n' ORDER BY Name"),
        ["O'Brien & Sons \\ Logistics"]
    );
    for (i, name) in sorted.iter().enumerate() {
        let literal = name.replace('\\', "\\\\").replace('\'', "\\'");
        let after = names(&format!(
            "SELECT Name FROM Account WHERE Name > '{literal}' ORDER BY Name"
        ));
        assert_eq!(after, sorted[i + 1..].to_vec(), "Name > {name}");
        let before = names(&format!(
            "SELECT Name FROM Account WHERE Name <= '{}' ORDER BY Name",
            literal.to_uppercase()
        ));
        assert_eq!(before, sorted[..=i].to_vec(), "Name <= {name}");
    }
    // Equality stays case-insensitive but accent-sensitive.
    assert_eq!(
        names("SELECT Name FROM Account WHERE Name = 'ÅLESUND FISKERI AS'"),
        ["Ålesund Fiskeri AS"]
    );
    assert!(names("SELECT Name FROM Account WHERE Name = 'Alesund Fiskeri AS'").is_empty());
}

#[test]
fn upper_case_escapes_are_accepted() {
    let mut org = org();
    let id = acct(1);
    let record = org.records.iter_mut().find(|r| r.id == id).unwrap();
    record
        .fields
        .insert("BillingCity".into(), json!("a\nb\rc\td\u{8}e\u{c}f"));
    for literal in ["a\\nb\\rc\\td\\be\\ff", "a\\Nb\\Rc\\Td\\Be\\Ff"] {
        let soql = format!("SELECT Id FROM Account WHERE BillingCity = '{literal}'");
        let r = query(&org, &soql, &options()).unwrap();
        assert_eq!(ids_of(&r.records), vec![id.clone()], "{soql}");
    }
}

#[test]
fn a_field_selected_twice_is_malformed() {
    for (soql, field) in [
        ("SELECT Id, Id FROM Account", "Id"),
        ("SELECT Name, Id, name FROM Account", "name"),
        (
            "SELECT Account.Name, account.NAME FROM Contact",
            "account.NAME",
        ),
        (
            "SELECT Id, (SELECT LastName, LastName FROM Contacts) FROM Account",
            "LastName",
        ),
    ] {
        let e = error(soql);
        assert_eq!(e.error_code, "MALFORMED_QUERY", "{soql}");
        assert!(
            e.message
                .ends_with(&format!("\nduplicate field selected: {field}")),
            "{soql}: {}",
            e.message
        );
    }
    assert_eq!(
        error("SELECT Id, Id FROM Account").message,
        "\nSELECT Id, Id FROM Account\n       ^\nERROR at Row:1:Column:8\nduplicate field selected: Id"
    );
    // The same field through two paths is not a duplicate.
    assert_eq!(
        rows("SELECT Name, Account.Name FROM Contact WHERE LastName = 'Barr'")[0]["Account"]["Name"],
        "Burlington Textiles Corp of America"
    );
}

#[test]
fn grouping_filtering_and_sorting_respect_field_types() {
    for (soql, field) in [
        (
            "SELECT Amount, COUNT(Id) FROM Opportunity GROUP BY Amount",
            "Amount",
        ),
        (
            "SELECT COUNT(Id) FROM Account GROUP BY AnnualRevenue",
            "AnnualRevenue",
        ),
        (
            "SELECT COUNT(Id) FROM Account GROUP BY CreatedDate",
            "CreatedDate",
        ),
        (
            "SELECT COUNT(Id) FROM Account GROUP BY Description",
            "Description",
        ),
        (
            "SELECT COUNT(Id) FROM Contact GROUP BY Account.Description",
            "Description",
        ),
    ] {
        let e = error(soql);
        assert_eq!(e.error_code, "MALFORMED_QUERY", "{soql}");
        assert!(
            e.message.ends_with(&format!(
                "\nfield '{field}' can not be grouped in a query call"
            )),
            "{soql}: {}",
            e.message
        );
    }
    let e = error("SELECT COUNT(Id) FROM Opportunity GROUP BY Amount");
    assert_eq!(
        e.message,
        "\nSELECT COUNT(Id) FROM Opportunity GROUP BY Amount\n                                           ^\nERROR at Row:1:Column:44\nfield 'Amount' can not be grouped in a query call"
    );
    // Groupable types still group.
    assert_eq!(
        rows("SELECT Active__c, COUNT(Id) n FROM Account GROUP BY Active__c").len(),
        2
    );
    for (soql, verb) in [
        ("SELECT Id FROM Account WHERE Description = 'x'", "filtered"),
        (
            "SELECT Id FROM Account WHERE Description LIKE 'F%'",
            "filtered",
        ),
        (
            "SELECT Id FROM Account WHERE Description IN ('x')",
            "filtered",
        ),
        (
            "SELECT Id FROM Contact WHERE Account.Description != null",
            "filtered",
        ),
        ("SELECT Id FROM Account ORDER BY Description", "sorted"),
        (
            "SELECT Id FROM Account ORDER BY Name, Description DESC",
            "sorted",
        ),
    ] {
        let e = error(soql);
        assert_eq!(e.error_code, "INVALID_FIELD", "{soql}");
        assert!(
            e.message.ends_with(&format!(
                "\nfield 'Description' can not be {verb} in a query call"
            )),
            "{soql}: {}",
            e.message
        );
    }
    // Selecting long text is fine.
    assert_eq!(
        rows("SELECT Description FROM Account WHERE Name = 'Edge Communications'")[0]["Description"],
        "Fiber and routers"
    );
}
