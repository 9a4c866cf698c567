//! SOQL errors: codes and Salesforce's exact messages.

use super::SoqlError;
use super::fixture::{error, run};
use serde_json::json;

const FIELD_HINT: &str = "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.";
const REL_HINT: &str = "If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.";

fn assert_error(soql: &str, code: &str, message: &str) {
    let e = error(soql);
    assert_eq!(
        (e.error_code, e.message.as_str()),
        (code, message),
        "{soql}"
    );
}

fn assert_malformed(soql: &str) {
    let e = error(soql);
    assert_eq!(e.error_code, "MALFORMED_QUERY", "{soql}: {}", e.message);
}

fn ends_with(soql: &str, code: &str, suffix: &str) {
    let e = error(soql);
    assert_eq!(e.error_code, code, "{soql}: {}", e.message);
    assert!(e.message.ends_with(suffix), "{soql}: {}", e.message);
}

#[test]
fn reference_error_messages_exactly() {
    // ../shared/salesforce/error_invalid_field.json
    assert_error(
        "SELECT Id,Nme FROM Account",
        "INVALID_FIELD",
        &format!(
            "\nSELECT Id,Nme FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such column 'Nme' on entity 'Account'. {FIELD_HINT}"
        ),
    );
    // ../shared/salesforce/error_invalid_type.json
    assert_error(
        "SELECT Id FROM Invoce__c",
        "INVALID_TYPE",
        "\nSELECT Id FROM Invoce__c\n               ^\nERROR at Row:1:Column:16\nsObject type 'Invoce__c' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
    );
    // ../shared/salesforce/error_malformed_query.json
    assert_error(
        "SELEC Id FROM Account",
        "MALFORMED_QUERY",
        "unexpected token: SELEC",
    );
}

#[test]
fn unknown_fields_and_relationships_everywhere() {
    // Like Salesforce, errors in the SELECT list point at its start.
    assert_error(
        "SELECT Id, Acount.Name FROM Contact",
        "INVALID_FIELD",
        &format!(
            "\nSELECT Id, Acount.Name FROM Contact\n       ^\nERROR at Row:1:Column:8\nDidn't understand relationship 'Acount' in field path. {REL_HINT}"
        ),
    );
    assert_error(
        "SELECT Account.Nme FROM Contact",
        "INVALID_FIELD",
        &format!(
            "\nSELECT Account.Nme FROM Contact\n       ^\nERROR at Row:1:Column:8\nNo such column 'Nme' on entity 'Account'. {FIELD_HINT}"
        ),
    );
    assert_error(
        "SELECT\n  Id,\n  Nme\nFROM Account",
        "INVALID_FIELD",
        &format!(
            "\n  Id,\n  ^\nERROR at Row:2:Column:3\nNo such column 'Nme' on entity 'Account'. {FIELD_HINT}"
        ),
    );
    // Elsewhere they point at the field.
    assert_error(
        "SELECT Id\nFROM Account\nWHERE Name = 'x' AND\n   Nme = 'y'",
        "INVALID_FIELD",
        &format!(
            "\n   Nme = 'y'\n   ^\nERROR at Row:4:Column:4\nNo such column 'Nme' on entity 'Account'. {FIELD_HINT}"
        ),
    );
    assert_error(
        "SELECT Id\nFROM Acount",
        "INVALID_TYPE",
        "\nFROM Acount\n     ^\nERROR at Row:2:Column:6\nsObject type 'Acount' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
    );
    // Columns count characters, not bytes.
    ends_with(
        "SELECT Id FROM Account WHERE Name = 'Å' AND Nme = 'x'",
        "INVALID_FIELD",
        &format!("Row:1:Column:45\nNo such column 'Nme' on entity 'Account'. {FIELD_HINT}"),
    );
    ends_with(
        "SELECT Id FROM Account ORDER BY Nme",
        "INVALID_FIELD",
        "No such column 'Nme' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
    );
    ends_with(
        "SELECT COUNT(Id) FROM Account GROUP BY Nme",
        "INVALID_FIELD",
        "No such column 'Nme' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
    );
    ends_with(
        "SELECT Id, (SELECT Sbject FROM Cases) FROM Contact",
        "INVALID_FIELD",
        &format!("No such column 'Sbject' on entity 'Case'. {FIELD_HINT}"),
    );
    ends_with(
        "SELECT SUM(Amont) FROM Opportunity",
        "INVALID_FIELD",
        &format!("No such column 'Amont' on entity 'Opportunity'. {FIELD_HINT}"),
    );
    ends_with(
        "SELECT Account FROM Contact",
        "INVALID_FIELD",
        &format!("No such column 'Account' on entity 'Contact'. {FIELD_HINT}"),
    );
    assert_error(
        "SELECT Id, (SELECT Id FROM Casez) FROM Contact",
        "INVALID_TYPE",
        &format!(
            "\nSELECT Id, (SELECT Id FROM Casez) FROM Contact\n                           ^\nERROR at Row:1:Column:28\nDidn't understand relationship 'Casez' in FROM part of query call. {REL_HINT}"
        ),
    );
}

#[test]
fn parse_errors_name_the_unexpected_token() {
    assert_error(
        "SELECT Id FROM Account WHERE",
        "MALFORMED_QUERY",
        "\nSELECT Id FROM Account WHERE\n                            ^\nERROR at Row:1:Column:29\nunexpected token: <EOF>",
    );
    ends_with(
        "SELECT Id, FROM Account",
        "MALFORMED_QUERY",
        "unexpected token: FROM",
    );
    ends_with(
        "SELECT FROM Account",
        "MALFORMED_QUERY",
        "unexpected token: FROM",
    );
    ends_with(
        "SELECT Id FROM Account LIMIT x",
        "MALFORMED_QUERY",
        "unexpected token: x",
    );
    ends_with(
        "SELECT Id FROM Account WHERE Name = 'a' Industry = 'b'",
        "MALFORMED_QUERY",
        "unexpected token: Industry",
    );
    ends_with(
        "SELECT Id FROM Account WHERE Name == 'a'",
        "MALFORMED_QUERY",
        "unexpected token: =",
    );
    ends_with(
        "SELECT Id FROM Account WHERE (Name = 'a'",
        "MALFORMED_QUERY",
        "unexpected token: <EOF>",
    );
    let e = error("SELECT Id FROM Account WHERE Name = 'abc");
    assert_eq!(e.error_code, "MALFORMED_QUERY");
    assert_eq!(
        e.message,
        "line 1:40 mismatched character '<EOF>' expecting '''"
    );
}

#[test]
fn mixing_and_with_or_needs_parentheses() {
    assert_error(
        "SELECT Id FROM Account WHERE Name = 'a' AND Industry = 'b' OR Name = 'c'",
        "MALFORMED_QUERY",
        "\nSELECT Id FROM Account WHERE Name = 'a' AND Industry = 'b' OR Name = 'c'\n                                                           ^\nERROR at Row:1:Column:60\nunexpected token: OR",
    );
    ends_with(
        "SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b' AND Name = 'c'",
        "MALFORMED_QUERY",
        "unexpected token: AND",
    );
    ends_with(
        "SELECT Id FROM Account WHERE (Name = 'a' OR Name = 'b' AND Name = 'c')",
        "MALFORMED_QUERY",
        "unexpected token: AND",
    );
    assert!(
        run("SELECT Id FROM Account WHERE (Name = 'a' AND Industry = 'b') OR Name = 'c'").is_ok()
    );
    assert!(
        run("SELECT Id FROM Account WHERE Name = 'a' AND (Industry = 'b' OR Name = 'c')").is_ok()
    );
}

#[test]
fn illegal_escape_sequences() {
    for (lit, seq) in [
        ("a\\qb", "\\q"),
        ("\\x41", "\\x"),
        ("\\u12", "\\u"),
        ("\\uZZZZ", "\\u"),
        ("tab\\ ", "\\ "),
        ("\\U0041", "\\U"),
    ] {
        assert_error(
            &format!("SELECT Id FROM Account WHERE Name = '{lit}'"),
            "MALFORMED_QUERY",
            &format!(
                "Invalid string literal '{lit}'. Illegal character sequence '{seq}' in string literal."
            ),
        );
    }
}

#[test]
fn unsupported_syntax_is_malformed() {
    for soql in [
        "SELECT * FROM Account",
        "SELECT FIELDS(ALL) FROM Account LIMIT 200",
        "SELECT TYPEOF What WHEN Account THEN Name END FROM Event",
        "SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry HAVING COUNT(Id) > 1",
        "SELECT Id FROM Contact WHERE AccountId IN (SELECT Id FROM Account)",
        "SELECT Id FROM Account FOR VIEW",
        "SELECT Id FROM Account WITH SECURITY_ENFORCED",
        "SELECT FORMAT(AnnualRevenue) FROM Account",
        "SELECT toLabel(Industry) FROM Account",
        "SELECT Industry, COUNT(Id) FROM Account GROUP BY ROLLUP(Industry)",
        "SELECT CALENDAR_YEAR(CreatedDate), COUNT(Id) FROM Account GROUP BY CALENDAR_YEAR(CreatedDate)",
        "SELECT Id FROM Account USING SCOPE mine",
        "SELECT Id FROM Account WHERE Industry INCLUDES ('a')",
        "SELECT Id FROM Account WHERE Name NOT LIKE 'a%'",
        "SELECT Id FROM Account WHERE CreatedDate = THIS_DECADE",
        "SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS",
        "SELECT Id FROM Account WHERE CreatedDate = TODAY:3",
        "SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:1.5",
        "SELECT Id FROM Account LIMIT -1",
        "SELECT Id FROM Account a",
        "SELECT Id FROM Account; DROP",
        "SELECT SUM() FROM Opportunity",
        "SELECT Id, (SELECT Id, (SELECT Id FROM Cases) FROM Contacts) FROM Account",
        "SELECT Id, (SELECT COUNT(Id) FROM Contacts) FROM Account",
        "SELECT COUNT(), Name FROM Account",
        "SELECT Name n FROM Account",
        "SELECT Id FROM Account ORDER BY COUNT(Id)",
        "SELECT Id FROM Account WHERE Name = 'a' ORDER BY Name LIMIT 1 OFFSET 1 LIMIT 2",
    ] {
        assert_malformed(soql);
    }
}

#[test]
fn grouping_errors() {
    assert_error(
        "SELECT Name, COUNT(Id) FROM Account",
        "MALFORMED_QUERY",
        "Field must be grouped or aggregated: Name",
    );
    assert_error(
        "SELECT Industry, BillingCity, COUNT(Id) FROM Account GROUP BY Industry",
        "MALFORMED_QUERY",
        "Field must be grouped or aggregated: BillingCity",
    );
    assert_error(
        "SELECT Industry FROM Account GROUP BY Industry ORDER BY Name",
        "MALFORMED_QUERY",
        "Ordered field must be grouped or aggregated: Name",
    );
    ends_with(
        "SELECT SUM(Name) FROM Account",
        "INVALID_FIELD",
        "field Name does not support aggregate operator SUM",
    );
    ends_with(
        "SELECT AVG(CloseDate) FROM Opportunity",
        "INVALID_FIELD",
        "field CloseDate does not support aggregate operator AVG",
    );
}

#[test]
fn offset_limit() {
    assert!(run("SELECT Id FROM Account OFFSET 2000").is_ok());
    assert_error(
        "SELECT Id FROM Account OFFSET 2001",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "Maximum SOQL offset allowed is 2000",
    );
}

#[test]
fn invalid_id_literals() {
    assert_error(
        "SELECT Id FROM Account WHERE Id = '001abc'",
        "INVALID_QUERY_FILTER_OPERATOR",
        "invalid ID field: 001abc",
    );
    assert_error(
        "SELECT Id FROM Contact WHERE AccountId IN ('0015g00000Q1aAAAAA')",
        "INVALID_QUERY_FILTER_OPERATOR",
        "invalid ID field: 0015g00000Q1aAAAAA",
    );
    assert_error(
        "SELECT Id FROM Contact WHERE AccountId != ''",
        "INVALID_QUERY_FILTER_OPERATOR",
        "invalid ID field: ",
    );
    ends_with(
        "SELECT Id FROM Account WHERE Id = 5",
        "INVALID_FIELD",
        "value of filter criterion for field 'Id' must be of type id and should be enclosed in quotes",
    );
}

#[test]
fn literal_types_must_match_field_types() {
    let date = "value of filter criterion for field 'CloseDate' must be of type date and should not be enclosed in quotes";
    assert_error(
        "SELECT Id FROM Opportunity WHERE CloseDate = '2026-03-04'",
        "INVALID_FIELD",
        &format!(
            "\nSELECT Id FROM Opportunity WHERE CloseDate = '2026-03-04'\n                                             ^\nERROR at Row:1:Column:46\n{date}"
        ),
    );
    ends_with(
        "SELECT Id FROM Opportunity WHERE CloseDate > 2026-03-04T00:00:00Z",
        "INVALID_FIELD",
        date,
    );
    ends_with(
        "SELECT Id FROM Opportunity WHERE CloseDate IN (2026-03-04, 5)",
        "INVALID_FIELD",
        date,
    );
    ends_with(
        "SELECT Id FROM Account WHERE CreatedDate > 2026-03-04",
        "INVALID_FIELD",
        "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes",
    );
    ends_with(
        "SELECT Id FROM Account WHERE CreatedDate > '2026-03-04T00:00:00Z'",
        "INVALID_FIELD",
        "must be of type dateTime and should not be enclosed in quotes",
    );
    ends_with(
        "SELECT Id FROM Opportunity WHERE Amount > '5'",
        "INVALID_FIELD",
        "value of filter criterion for field 'Amount' must be of type double and should not be enclosed in quotes",
    );
    ends_with(
        "SELECT Id FROM Account WHERE NumberOfEmployees = 'x'",
        "INVALID_FIELD",
        "must be of type integer and should not be enclosed in quotes",
    );
    ends_with(
        "SELECT Id FROM Account WHERE Active__c = 'true'",
        "INVALID_FIELD",
        "value of filter criterion for field 'Active__c' must be of type boolean and should not be enclosed in quotes",
    );
    ends_with(
        "SELECT Id FROM Account WHERE Name = 5",
        "INVALID_FIELD",
        "value of filter criterion for field 'Name' must be of type string and should be enclosed in quotes",
    );
    ends_with(
        "SELECT Id FROM Account WHERE Name = TODAY",
        "INVALID_FIELD",
        "must be of type string and should be enclosed in quotes",
    );
    ends_with(
        "SELECT Id FROM Account WHERE AnnualRevenue LIKE '5%'",
        "INVALID_FIELD",
        "invalid operator on field: AnnualRevenue",
    );
    ends_with(
        "SELECT Id FROM Account WHERE Name LIKE 5",
        "INVALID_FIELD",
        "must be of type string and should be enclosed in quotes",
    );
}

#[test]
fn error_body_shape() {
    let e = SoqlError::new("MALFORMED_QUERY", "unexpected token: SELEC");
    assert_eq!(e.to_string(), "MALFORMED_QUERY: unexpected token: SELEC");
    let rest = crate::error::RestError::from(e);
    assert_eq!(rest.status, axum::http::StatusCode::BAD_REQUEST);
    assert_eq!(
        rest.body(),
        json!([{"message": "unexpected token: SELEC", "errorCode": "MALFORMED_QUERY"}])
    );
}

#[test]
fn deep_nesting_is_malformed_not_a_crash() {
    let too_deep = "nesting too deep: at most 32 levels of parentheses are supported";
    // Deep enough to overflow any thread's stack without the cap.
    let n = 200_000;
    let parens = format!(
        "SELECT Id FROM Account WHERE {}Name = 'x'{}",
        "(".repeat(n),
        ")".repeat(n)
    );
    assert_error(&parens, "MALFORMED_QUERY", too_deep);
    let nots = format!(
        "SELECT Id FROM Account WHERE {}Name = 'x'",
        "NOT ".repeat(n)
    );
    assert_error(&nots, "MALFORMED_QUERY", too_deep);
    let subqueries = format!(
        "SELECT Id, {}Id FROM Contacts{} FROM Account",
        "(SELECT ".repeat(n),
        ")".repeat(n)
    );
    assert_error(&subqueries, "MALFORMED_QUERY", too_deep);
    // 32 levels are fine and mean what they say; 33 are not.
    let at = |depth: usize| {
        format!(
            "SELECT Name FROM Account WHERE {}Name = 'GenePoint'{}",
            "(".repeat(depth),
            ")".repeat(depth)
        )
    };
    let names: Vec<_> = run(&at(32)).unwrap().records;
    assert_eq!(names.len(), 1);
    assert_eq!(names[0]["Name"], "GenePoint");
    assert_error(&at(33), "MALFORMED_QUERY", too_deep);
    let not_not = "SELECT Name FROM Account WHERE NOT NOT Name = 'GenePoint'";
    assert_eq!(run(not_not).unwrap().records[0]["Name"], "GenePoint");
}
