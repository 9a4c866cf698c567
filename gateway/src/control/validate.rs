//! Field validation shared by the services. Each check names the field in
//! its error.

use super::error::{ControlError, Result};
use crate::salesforce::domains::{SalesforceDomains, UrlError};

/// A required id: non-empty, at most 128 characters (connection ids are
/// two UUIDs).
pub(crate) fn id<'a>(field: &str, value: &'a str) -> Result<&'a str> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ControlError::invalid(field, "is required"));
    }
    if value.len() > 128 {
        return Err(ControlError::invalid(field, "is not a valid id"));
    }
    Ok(value)
}

/// A list of ids: at least one (when `non_empty`), at most `max`, each valid.
pub(crate) fn ids(
    field: &str,
    values: &[String],
    non_empty: bool,
    max: usize,
) -> Result<Vec<String>> {
    if non_empty && values.is_empty() {
        return Err(ControlError::invalid(field, "must name at least one id"));
    }
    if values.len() > max {
        return Err(ControlError::invalid(
            field,
            format!("at most {max} ids per request"),
        ));
    }
    values
        .iter()
        .map(|v| id(field, v).map(str::to_owned))
        .collect()
}

/// A human name: trimmed, 1 to 100 characters, no control characters.
pub(crate) fn name(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ControlError::invalid(field, "is required"));
    }
    if value.chars().count() > 100 {
        return Err(ControlError::invalid(
            field,
            "must be at most 100 characters",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ControlError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// Free text: at most 1000 characters.
pub(crate) fn description(field: &str, value: &str) -> Result<String> {
    if value.chars().count() > 1000 {
        return Err(ControlError::invalid(
            field,
            "must be at most 1000 characters",
        ));
    }
    Ok(value.trim().to_owned())
}

/// A tool prefix: a lowercase letter, then up to 31 of `a-z 0-9 _`.
pub(crate) fn tool_prefix(field: &str, value: &str) -> Result<String> {
    let ok = value.len() <= 32
        && value.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(ControlError::invalid(
            field,
            "must be a lowercase letter followed by up to 31 of a-z, 0-9 and _ (e.g. salesforce or sf_sandbox)",
        ));
    }
    Ok(value.to_owned())
}

/// A Salesforce API version: `66.0` or `v66.0`; returned without the `v`.
pub(crate) fn api_version(field: &str, value: &str) -> Result<String> {
    let bare = value.trim().trim_start_matches(['v', 'V']);
    let ok = bare.split_once('.').is_some_and(|(major, minor)| {
        (2..=3).contains(&major.len()) && major.chars().all(|c| c.is_ascii_digit()) && minor == "0"
    });
    if !ok {
        return Err(ControlError::invalid(
            field,
            format!("{value:?} is not a Salesforce API version such as 66.0"),
        ));
    }
    Ok(bare.to_owned())
}

/// A login host URL (My Domain): checked by
/// [`SalesforceDomains::check`], the one check every caller uses (https on
/// a Salesforce domain family or an admin-allowed domain; http only on a
/// loopback host, for local simulators). Returned without a trailing
/// slash. Errors: [`ControlError`] naming `field`.
pub(crate) fn login_url(field: &str, value: &str, domains: &SalesforceDomains) -> Result<String> {
    domains.check(value).map_err(|e| match e {
        UrlError::Empty => ControlError::invalid(
            field,
            "is required for a My Domain login host, e.g. https://acme.my.salesforce.com",
        ),
        other => ControlError::invalid(field, other.to_string()),
    })
}

/// An email address: one `@`, non-empty parts, no spaces, at most 254
/// characters. Returned lowercase.
pub(crate) fn email(field: &str, value: &str) -> Result<String> {
    let value = value.trim().to_lowercase();
    let ok = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if !ok {
        return Err(ControlError::invalid(
            field,
            "must be an email address such as ana@example.com",
        ));
    }
    Ok(value)
}

/// A page size: 0 means `default`; at most `max`.
pub(crate) fn page_size(field: &str, value: u32, default: usize, max: usize) -> Result<usize> {
    match value as usize {
        0 => Ok(default),
        n if n <= max => Ok(n),
        _ => Err(ControlError::invalid(
            field,
            format!("must be at most {max}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_accept_good_values_and_name_the_field_otherwise() {
        assert_eq!(api_version("api_version", "v66.0").unwrap(), "66.0");
        assert_eq!(api_version("api_version", "62.0").unwrap(), "62.0");
        assert!(api_version("api_version", "66").is_err());
        assert!(api_version("api_version", "66.1").is_err());
        assert_eq!(tool_prefix("p", "sf_prod2").unwrap(), "sf_prod2");
        for bad in ["", "SF", "2sf", "sf-prod", &"a".repeat(33)] {
            assert!(tool_prefix("tool_prefix", bad).is_err(), "{bad}");
        }
        let d = SalesforceDomains::default();
        assert_eq!(
            login_url("u", "https://acme.my.salesforce.com/", &d).unwrap(),
            "https://acme.my.salesforce.com"
        );
        assert_eq!(
            login_url("u", "http://127.0.0.1:9000", &d).unwrap(),
            "http://127.0.0.1:9000"
        );
        assert!(login_url("u", "http://acme.my.salesforce.com", &d).is_err());
        assert!(login_url("u", "https://evil.example.com", &d).is_err());
        assert!(login_url("u", "https://my.salesforce.com.evil.example", &d).is_err());
        assert!(login_url("u", "https://acme--dev.sandbox.my.salesforce.com", &d).is_ok());
        assert!(login_url("u", "https://acme.my.site.com", &d).is_ok());
        assert!(
            login_url("login_host.url", "", &d)
                .unwrap_err()
                .to_string()
                .contains("is required")
        );
        assert!(login_url("u", "https://acme.my.salesforce.com/path", &d).is_err());
        let err = login_url("login_host.url", "not a url", &d)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("login_host.url:"), "{err}");
        assert_eq!(
            email("email", " Ana@Example.COM ").unwrap(),
            "ana@example.com"
        );
        assert!(email("email", "ana").is_err());
        assert!(email("email", "a b@example.com").is_err());
        assert!(name("name", "  ").is_err());
        assert_eq!(page_size("page_size", 0, 100, 1000).unwrap(), 100);
        assert!(page_size("page_size", 1001, 100, 1000).is_err());
    }
}
