//! Card number blocking (a BEFORE built-in): a call whose arguments hold a
//! payment card number is denied. A card number is 13 to 19 digits,
//! optionally grouped by single spaces or dashes, passing the Luhn check
//! (ISO/IEC 7812-1); JSON numbers count too. The reason names where the
//! number was (the argument path), never the number.

use serde_json::Value;

use super::pii::{card_digits, find_cards};

/// The argument path (`fields.Description`, `items[2]`) of the first card
/// number in `args`, if any.
pub fn find_card(args: &Value) -> Option<String> {
    fn walk(value: &Value, path: &mut String) -> bool {
        match value {
            Value::Object(map) => map.iter().any(|(k, v)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                let found = walk(v, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Array(items) => items.iter().enumerate().any(|(i, v)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(v, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::String(s) => find_cards(s).next().is_some(),
            Value::Number(n) => card_digits(&n.to_string()).is_some(),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(args, &mut path).then(|| {
        if path.is_empty() {
            "(the arguments)".to_owned()
        } else {
            path
        }
    })
}

/// The denial reason for a card number found at `path`.
pub fn reason(path: &str) -> String {
    format!(
        "the argument {path} holds a payment card number; card numbers may not be sent to Salesforce through toolgate"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_grouped_and_plain_card_numbers_by_path() {
        let args = json!({"object_name": "Case", "fields": {"Subject": "refund", "Description": "card 4111-1111-1111-1111 exp 12/29"}});
        assert_eq!(find_card(&args).as_deref(), Some("fields.Description"));
        let args = json!({"items": ["a", {"n": 378282246310005u64}]});
        assert_eq!(find_card(&args).as_deref(), Some("items[1].n"));
        let r = reason("fields.Description");
        assert!(r.contains("fields.Description") && !r.contains("4111"));
    }

    #[test]
    fn luhn_failures_and_short_numbers_pass() {
        let args = json!({"fields": {"Description": "4111 1111 1111 1112", "Phone": "415-555-0100", "Amount": 1234567890123u64}});
        assert_eq!(find_card(&args), None);
    }
}
