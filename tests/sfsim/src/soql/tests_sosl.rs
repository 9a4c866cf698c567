//! SOSL and parameterized search against the fixture org.

use serde_json::{Value, json};

use super::SoqlError;
use super::fixture::{acct, contact, options, org};
use crate::sosl::{ParameterizedSearch, SearchObject, parameterized_search, search};

fn find(sosl: &str) -> Vec<Value> {
    search(&org(), sosl, &options()).unwrap_or_else(|e| panic!("{sosl}: {e}"))
}

fn find_err(sosl: &str) -> SoqlError {
    match search(&org(), sosl, &options()) {
        Ok(r) => panic!("{sosl}: expected an error, got {r:?}"),
        Err(e) => e,
    }
}

/// `Type:Name` (or `Type:Id`) of each hit.
fn hits(sosl: &str) -> Vec<String> {
    summarize(&find(sosl))
}

fn summarize(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let label = r.get("Name").unwrap_or(&r["Id"]);
            format!(
                "{}:{}",
                r["attributes"]["type"].as_str().unwrap_or(""),
                label.as_str().unwrap_or("null")
            )
        })
        .collect()
}

#[test]
fn matches_the_reference_shape() {
    // ../shared/salesforce/search_sosl.json
    let r = find("FIND {Souza} IN NAME FIELDS RETURNING Contact(Id,Name)");
    let url = |id: &str| format!("/services/data/v66.0/sobjects/Contact/{id}");
    assert_eq!(
        Value::Array(r),
        json!([
            {"attributes": {"type": "Contact", "url": url(&contact(1))}, "Id": contact(1), "Name": "Rita Souza"},
            {"attributes": {"type": "Contact", "url": url(&contact(2))}, "Id": contact(2), "Name": "João Souza"}
        ])
    );
}

#[test]
fn scopes() {
    assert_eq!(
        hits("FIND {Austin} IN NAME FIELDS RETURNING Account(Name)"),
        Vec::<String>::new()
    );
    assert_eq!(
        hits("FIND {austin} IN ALL FIELDS RETURNING Account(Name)"),
        ["Account:Edge Communications"]
    );
    assert_eq!(
        hits("FIND {Austin} RETURNING Account(Name)"),
        ["Account:Edge Communications"]
    );
    assert_eq!(
        hits("find {ålesund} in name fields returning Account(Name), Opportunity(Name)"),
        [
            "Account:Ålesund Fiskeri AS",
            "Opportunity:Ålesund Nets",
            "Opportunity:Ålesund Boats"
        ]
    );
    assert_eq!(
        hits("FIND {edge.example} IN EMAIL FIELDS RETURNING Contact(Name), Account(Name)"),
        ["Contact:Rita Souza"]
    );
    assert_eq!(
        hits("FIND {rita.souza@edge.example} IN EMAIL FIELDS RETURNING Contact(Name)"),
        ["Contact:Rita Souza"]
    );
    assert_eq!(
        hits("FIND {rita.souza@edge.example} IN NAME FIELDS RETURNING Contact(Name)"),
        Vec::<String>::new()
    );
    assert_eq!(
        hits("FIND {555-0101} IN PHONE FIELDS RETURNING Contact(Name)"),
        ["Contact:Rita Souza"]
    );
    assert_eq!(
        hits("FIND {512} IN PHONE FIELDS RETURNING Account(Name), Contact(Name)"),
        ["Account:Edge Communications", "Contact:Rita Souza"]
    );
    assert_eq!(
        hits("FIND {512} IN EMAIL FIELDS RETURNING Account(Name), Contact(Name)"),
        Vec::<String>::new()
    );
    // Whole words only without wildcards; deleted records never match.
    assert_eq!(
        hits("FIND {Sou} RETURNING Contact(Name)"),
        Vec::<String>::new()
    );
    assert_eq!(
        hits("FIND {Deleted} RETURNING Account(Name), Contact(Name), Case(Subject)").len(),
        0
    );
}

#[test]
fn wildcards_words_phrases_and_operators() {
    let contacts = |term: &str| hits(&format!("FIND {{{term}}} RETURNING Contact(Name)"));
    assert_eq!(
        contacts("Sou*"),
        ["Contact:Rita Souza", "Contact:João Souza"]
    );
    assert_eq!(
        contacts("sou?a"),
        ["Contact:Rita Souza", "Contact:João Souza"]
    );
    assert_eq!(contacts("sou?"), Vec::<String>::new());
    assert_eq!(
        contacts("*uza"),
        ["Contact:Rita Souza", "Contact:João Souza"]
    );
    assert_eq!(contacts("Rita Souza"), ["Contact:Rita Souza"]);
    assert_eq!(contacts("Souza Rita"), ["Contact:Rita Souza"]);
    assert_eq!(contacts("\"Rita Souza\""), ["Contact:Rita Souza"]);
    assert_eq!(contacts("\"Souza Rita\""), Vec::<String>::new());
    assert_eq!(contacts("\"ri* souza\""), ["Contact:Rita Souza"]);
    assert_eq!(contacts("Rita AND Souza"), ["Contact:Rita Souza"]);
    assert_eq!(
        contacts("Rita OR Tim"),
        ["Contact:Rita Souza", "Contact:Tim Barr"]
    );
    assert_eq!(
        contacts("rita or tim or kari"),
        [
            "Contact:Rita Souza",
            "Contact:Tim Barr",
            "Contact:Kari Nordmann"
        ]
    );
    assert_eq!(contacts("Souza AND NOT Rita"), ["Contact:João Souza"]);
    assert_eq!(contacts("(Rita OR Tim) AND Souza"), ["Contact:Rita Souza"]);
    assert_eq!(contacts("João"), ["Contact:João Souza"]);
    // Words match across fields (name and email).
    assert_eq!(contacts("Rita edge"), ["Contact:Rita Souza"]);
}

#[test]
fn returning_fields_where_order_limit() {
    assert_eq!(
        hits(
            "FIND {Prospecting} RETURNING Opportunity(Name, Amount WHERE Amount > 15000 ORDER BY Amount DESC LIMIT 2)"
        ),
        ["Opportunity:Edge Fiber", "Opportunity:O'Brien Trucks"]
    );
    assert_eq!(
        hits("FIND {Prospecting} RETURNING Opportunity(Name ORDER BY Name LIMIT 2 OFFSET 1)"),
        [
            "Opportunity:Ålesund Boats",
            "Opportunity:Burlington Scarves"
        ]
    );
    let r = find("FIND {Souza} RETURNING Contact(Name, Account.Name WHERE Email LIKE '%edge%')");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["Account"]["Name"], "Edge Communications");
    let keys: Vec<&String> = r[0]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["attributes", "Name", "Account"]);
    // No field list: Id only.
    let r = find("FIND {Souza} RETURNING Contact");
    assert_eq!(
        r[0],
        json!({"attributes": {"type": "Contact", "url": format!("/services/data/v66.0/sobjects/Contact/{}", contact(1))}, "Id": contact(1)})
    );
    // No RETURNING: Id of every object, in schema order.
    let r = find("FIND {Edge}");
    let types: Vec<&str> = r
        .iter()
        .map(|x| x["attributes"]["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, ["Account", "Contact", "Opportunity", "Opportunity"]);
    assert!(
        r.iter()
            .all(|x| x.as_object().is_some_and(|m| m.len() == 2))
    );
    // Overall LIMIT, and object order follows RETURNING.
    assert_eq!(
        hits("FIND {Edge} RETURNING Opportunity(Name), Account(Name) LIMIT 2"),
        [
            "Opportunity:Edge Emergency Generator",
            "Opportunity:Edge Fiber"
        ]
    );
    assert_eq!(
        hits("FIND {Edge} RETURNING Opportunity(Name), Account(Name)").len(),
        3
    );
}

#[test]
fn escapes_in_the_term() {
    let both = |term: &str| {
        hits(&format!(
            "FIND {{{term}}} RETURNING Account(Name), Opportunity(Name)"
        ))
    };
    let obrien = [
        "Account:O'Brien & Sons \\ Logistics",
        "Opportunity:O'Brien Trucks",
    ];
    assert_eq!(both("O\\'Brien"), obrien);
    assert_eq!(both("O'Brien"), obrien);
    assert_eq!(
        both("Sons \\\\ Logistics"),
        ["Account:O'Brien & Sons \\ Logistics"]
    );
    assert_eq!(
        both("\"O\\'Brien & Sons\""),
        ["Account:O'Brien & Sons \\ Logistics"]
    );
    assert_eq!(
        both("\\{Edge\\}"),
        [
            "Account:Edge Communications",
            "Opportunity:Edge Emergency Generator",
            "Opportunity:Edge Fiber"
        ]
    );
    assert_eq!(both("Edge\\*"), both("Edge"));
    assert_eq!(both("Renewal\\_2026"), ["Opportunity:100% Renewal_2026"]);
    assert_eq!(both("100\\%"), ["Opportunity:100% Renewal_2026"]);
}

#[test]
fn errors() {
    let short = "search term must be longer than one character";
    for sosl in [
        "FIND {a}",
        "FIND {a*}",
        "FIND {*}",
        "FIND { ? }",
        "FIND {\"a\"} RETURNING Account",
    ] {
        let e = find_err(sosl);
        assert_eq!(
            (e.error_code, e.message.as_str()),
            ("INVALID_SEARCH", short),
            "{sosl}"
        );
    }
    let e = find_err("FIND Souza RETURNING Contact");
    assert_eq!(
        (e.error_code, e.message.as_str()),
        (
            "MALFORMED_SEARCH",
            "No search term found. The search term must be enclosed in braces."
        )
    );
    let e = find_err("FND {Souza}");
    assert_eq!(
        (e.error_code, e.message.as_str()),
        ("MALFORMED_SEARCH", "unexpected token: FND")
    );
    for sosl in [
        "FIND {Souza",
        "FIND {\"Souza} RETURNING Contact",
        "FIND {(Souza} RETURNING Contact",
        "FIND {Souza} IN BOGUS FIELDS",
        "FIND {Souza} IN NAME",
        "FIND {Souza} RETURNING Contact(Name WHERE)",
        "FIND {Souza} RETURNING Contact(Name",
        "FIND {Souza} RETURNING",
        "FIND {Souza} RETURNING Contact(Name) WITH HIGHLIGHT",
        "FIND {Souza} RETURNING Contact(Name WHERE Name = 'a' AND Name = 'b' OR Name = 'c')",
        "FIND {Souza} RETURNING Contact(Name WHERE Name = 'a\\q')",
    ] {
        assert_eq!(find_err(sosl).error_code, "MALFORMED_SEARCH", "{sosl}");
    }
    let e = find_err("FIND {Souza} IN NAME FIELDS RETURNING Contct(Name)");
    assert_eq!(e.error_code, "INVALID_TYPE");
    assert_eq!(
        e.message,
        "\nFIND {Souza} IN NAME FIELDS RETURNING Contct(Name)\n                                      ^\nERROR at Row:1:Column:39\nsObject type 'Contct' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
    );
    let e = find_err("FIND {Souza} RETURNING Contact(Id, Nme)");
    assert_eq!(e.error_code, "INVALID_FIELD");
    assert_eq!(
        e.message,
        "\nFIND {Souza} RETURNING Contact(Id, Nme)\n                               ^\nERROR at Row:1:Column:32\nNo such column 'Nme' on entity 'Contact'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
    );
    let e = find_err("FIND {Souza} RETURNING Contact(Name WHERE Account.Nam = 'x')");
    assert_eq!(e.error_code, "INVALID_FIELD");
    assert!(e.message.ends_with("No such column 'Nam' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."));
}

#[test]
fn deep_nesting_is_malformed_search_not_a_crash() {
    let too_deep = "nesting too deep: at most 32 levels of parentheses are supported";
    let n = 200_000;
    let term = format!("FIND {{{}Souza{}}}", "(".repeat(n), ")".repeat(n));
    let e = find_err(&term);
    assert_eq!(
        (e.error_code, e.message.as_str()),
        ("MALFORMED_SEARCH", too_deep)
    );
    let filter = format!(
        "FIND {{Souza}} RETURNING Contact(Name WHERE {}Name = 'x'{})",
        "(".repeat(n),
        ")".repeat(n)
    );
    let e = find_err(&filter);
    assert_eq!(
        (e.error_code, e.message.as_str()),
        ("MALFORMED_SEARCH", too_deep)
    );
    // Parentheses inside a phrase or escaped are text, not groups.
    let phrase = format!(
        "FIND {{\"{}\" Souza}} RETURNING Contact(Name)",
        "(".repeat(40)
    );
    assert_eq!(
        summarize(&find(&phrase)),
        hits("FIND {Souza} RETURNING Contact(Name)")
    );
    let nested = format!(
        "FIND {{{}Souza{}}} RETURNING Contact(Name)",
        "(".repeat(32),
        ")".repeat(32)
    );
    assert_eq!(
        summarize(&find(&nested)),
        hits("FIND {Souza} RETURNING Contact(Name)")
    );
    assert!(!hits("FIND {Souza} RETURNING Contact(Name)").is_empty());
}

fn psearch(s: &ParameterizedSearch) -> Result<Vec<Value>, SoqlError> {
    parameterized_search(&org(), s, &options())
}

fn object(name: &str, fields: &[&str], limit: Option<usize>) -> SearchObject {
    SearchObject {
        name: name.into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        limit,
    }
}

#[test]
fn parameterized_search_takes_text_literally() {
    let s = ParameterizedSearch {
        q: "O'Brien & Sons \\ Logistics".into(),
        sobjects: vec![object("Account", &["Name", "BillingCity"], None)],
        ..Default::default()
    };
    let r = psearch(&s).unwrap();
    assert_eq!(
        r,
        [json!({
            "attributes": {"type": "Account", "url": format!("/services/data/v66.0/sobjects/Account/{}", acct(5))},
            "Name": "O'Brien & Sons \\ Logistics",
            "BillingCity": null,
        })]
    );
    // Braces and quotes are just characters too.
    let s = ParameterizedSearch {
        q: "{Edge} \"Communications\"".into(),
        sobjects: vec![object("account", &["name"], None)],
        ..Default::default()
    };
    assert_eq!(
        summarize(&psearch(&s).unwrap()),
        ["Account:Edge Communications"]
    );
}

#[test]
fn parameterized_search_scope_objects_limits_and_defaults() {
    let s = ParameterizedSearch {
        q: "Sou*".into(),
        scope: Some("NAME".into()),
        sobjects: vec![object("Contact", &["Name", "Account.Name"], Some(1))],
        ..Default::default()
    };
    let r = psearch(&s).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["Account"]["Name"], "Edge Communications");
    let s = ParameterizedSearch {
        q: "edge".into(),
        default_fields: vec!["Id".into()],
        overall_limit: Some(3),
        ..Default::default()
    };
    let r = psearch(&s).unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(r[0]["attributes"]["type"], "Account");
    let s = ParameterizedSearch {
        q: "austin".into(),
        scope: Some("email".into()),
        ..Default::default()
    };
    assert!(psearch(&s).unwrap().is_empty());
    let s = ParameterizedSearch {
        q: "Prospecting".into(),
        sobjects: vec![
            object("Opportunity", &[], Some(2)),
            object("Account", &["Name"], None),
        ],
        default_fields: vec!["Name".into(), "Amount".into()],
        ..Default::default()
    };
    let r = psearch(&s).unwrap();
    assert_eq!(r.len(), 2);
    assert!(r[0]["Amount"].is_number());
}

#[test]
fn parameterized_search_errors() {
    let err = |s: ParameterizedSearch| psearch(&s).err().map(|e| (e.error_code, e.message));
    let e = err(ParameterizedSearch {
        q: "a".into(),
        ..Default::default()
    });
    assert_eq!(
        e,
        Some((
            "INVALID_SEARCH",
            "search term must be longer than one character".into()
        ))
    );
    let e = err(ParameterizedSearch {
        q: "Souza".into(),
        sobjects: vec![object("Contct", &[], None)],
        ..Default::default()
    });
    assert_eq!(e.map(|e| e.0), Some("INVALID_TYPE"));
    let e = err(ParameterizedSearch {
        q: "Souza".into(),
        sobjects: vec![object("Contact", &["Nme"], None)],
        ..Default::default()
    });
    assert_eq!(e, Some(("INVALID_FIELD", "No such column 'Nme' on entity 'Contact'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.".into())));
    let e = err(ParameterizedSearch {
        q: "Souza".into(),
        sobjects: vec![object("Contact", &["Name)"], None)],
        ..Default::default()
    });
    assert_eq!(e.map(|e| e.0), Some("INVALID_FIELD"));
    let e = err(ParameterizedSearch {
        q: "Souza".into(),
        scope: Some("BODY".into()),
        ..Default::default()
    });
    assert_eq!(e.map(|e| e.0), Some("MALFORMED_SEARCH"));
}
