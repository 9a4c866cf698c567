//! What sign-in through the identity provider decides on: the email,
//! `email_verified`, the groups and the name, read from the verified ID
//! token's claims (and userinfo's for what it lacks), and the pure check
//! [`check_claims`] of them against the settings.
//!
//! Must not: talk to the provider or the store.

use std::collections::HashMap;

use serde_json::Value;

use super::OidcError;
use crate::model::IdentityProvider;

/// The claims sign-in decides on, read from the verified ID token and, for
/// what it lacks, userinfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The email as the provider gave it.
    pub email: Option<String>,
    /// `email_verified`, when the provider said.
    pub email_verified: Option<bool>,
    /// The groups claim (an array of strings, or one string); `None`: absent.
    pub groups: Option<Vec<String>>,
    /// `name`, for a created user's display name.
    pub name: Option<String>,
}

/// Whether `identity` may sign in under `idp`: the email is present and
/// not unverified, its domain is allowed (when `allowed_email_domains` is
/// set; case-insensitive), and one of its groups is allowed (when
/// `allowed_groups` is set; exact match). Returns the lowercased email.
///
/// Errors, in this order: [`OidcError::NoEmail`],
/// [`OidcError::EmailNotVerified`], [`OidcError::DomainNotAllowed`],
/// [`OidcError::GroupNotAllowed`].
pub fn check_claims(idp: &IdentityProvider, identity: &Identity) -> Result<String, OidcError> {
    let email = identity
        .email
        .as_deref()
        .map(|e| e.trim().to_lowercase())
        .filter(|e| e.contains('@'))
        .ok_or_else(|| OidcError::NoEmail(email_claim(idp).to_owned()))?;
    let verified = match identity.email_verified {
        Some(verified) => verified,
        None => idp.accept_unverified_email,
    };
    if !verified {
        return Err(OidcError::EmailNotVerified(email));
    }
    let domain = email.rsplit('@').next().unwrap_or_default();
    if !idp.allowed_email_domains.is_empty()
        && !idp.allowed_email_domains.iter().any(|d| {
            d.trim()
                .trim_start_matches('@')
                .eq_ignore_ascii_case(domain)
        })
    {
        return Err(OidcError::DomainNotAllowed(email));
    }
    if !idp.allowed_groups.is_empty() {
        let groups = identity.groups.as_deref().unwrap_or_default();
        if !groups.iter().any(|g| idp.allowed_groups.contains(g)) {
            return Err(OidcError::GroupNotAllowed(email));
        }
    }
    Ok(email)
}

fn email_claim(idp: &IdentityProvider) -> &str {
    if idp.email_claim.trim().is_empty() {
        "email"
    } else {
        idp.email_claim.trim()
    }
}

/// The groups in a claim's value: an array of strings, or one string.
fn groups_of(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

/// The identity in a set of claims: `standard_email` and
/// `standard_verified` are the crate's parsed `email` and
/// `email_verified`; `other` are the rest.
pub(super) fn identity_of(
    idp: &IdentityProvider,
    standard_email: Option<String>,
    standard_verified: Option<bool>,
    name: Option<String>,
    other: &HashMap<String, Value>,
) -> Identity {
    let claim = email_claim(idp);
    // `email_verified` speaks for the `email` claim only: another claim
    // (`upn`, `preferred_username`) has no verification status.
    let (email, email_verified) = if claim == "email" {
        (standard_email, standard_verified)
    } else {
        (
            other.get(claim).and_then(Value::as_str).map(str::to_owned),
            None,
        )
    };
    let groups = if idp.groups_claim.trim().is_empty() {
        None
    } else {
        other.get(idp.groups_claim.trim()).and_then(groups_of)
    };
    Identity {
        email,
        email_verified,
        groups,
        name,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::UnknownUsers;

    fn idp() -> IdentityProvider {
        IdentityProvider {
            issuer_url: "https://login.acme.example".into(),
            client_id: "toolgate".into(),
            client_secret_set_at: None,
            client_secret_fingerprint: None,
            scopes: vec!["openid".into(), "email".into()],
            email_claim: "email".into(),
            groups_claim: "groups".into(),
            allowed_email_domains: vec![],
            allowed_groups: vec![],
            unknown_users: UnknownUsers::Refuse,
            accept_unverified_email: false,
        }
    }

    fn who(email: &str, verified: Option<bool>, groups: Option<&[&str]>) -> Identity {
        Identity {
            email: Some(email.into()),
            email_verified: verified,
            groups: groups.map(|g| g.iter().map(|s| (*s).to_owned()).collect()),
            name: None,
        }
    }

    #[test]
    fn claims_are_checked_in_order() {
        let open = idp();
        let mut lenient = idp();
        lenient.accept_unverified_email = true;
        let mut restricted = idp();
        restricted.allowed_email_domains = vec!["Acme.example".into()];
        restricted.allowed_groups = vec!["sales".into()];
        let cases: Vec<(&IdentityProvider, Identity, Result<&str, &str>)> = vec![
            (
                &open,
                who("Ana@Acme.example", Some(true), None),
                Ok("ana@acme.example"),
            ),
            (
                &open,
                who("ana@acme.example", None, None),
                Err("email_not_verified"),
            ),
            (
                &lenient,
                who("ana@acme.example", None, None),
                Ok("ana@acme.example"),
            ),
            (
                &lenient,
                who("ana@acme.example", Some(false), None),
                Err("email_not_verified"),
            ),
            (&open, Identity::default(), Err("no_email")),
            (
                &open,
                who("not-an-email", Some(true), None),
                Err("no_email"),
            ),
            (
                &open,
                who("ana@acme.example", Some(false), None),
                Err("email_not_verified"),
            ),
            (
                &restricted,
                who("ana@acme.example", Some(true), Some(&["sales"])),
                Ok("ana@acme.example"),
            ),
            (
                &restricted,
                who("ana@evil.example", Some(true), Some(&["sales"])),
                Err("email_domain_not_allowed"),
            ),
            (
                &restricted,
                who("ana@sub.acme.example", Some(true), Some(&["sales"])),
                Err("email_domain_not_allowed"),
            ),
            (
                &restricted,
                who("ana@acme.example", Some(true), Some(&["Sales"])),
                Err("group_not_allowed"),
            ),
            (
                &restricted,
                who("ana@acme.example", Some(true), None),
                Err("group_not_allowed"),
            ),
            (
                &restricted,
                who("ana@evil.example", Some(false), None),
                Err("email_not_verified"),
            ),
        ];
        for (idp, identity, want) in cases {
            let got = check_claims(idp, &identity);
            match (want, got) {
                (Ok(email), Ok(got)) => assert_eq!(got, email),
                (Err(code), Err(err)) => assert_eq!(err.code(), code, "{identity:?}"),
                (want, got) => panic!("{identity:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn a_custom_email_claim_and_groups_are_read_from_other_claims() {
        let mut custom = idp();
        custom.email_claim = "upn".into();
        custom.groups_claim = "roles".into();
        let other: HashMap<String, Value> = serde_json::from_value(json!({
            "upn": "ana@acme.example", "roles": "sales"
        }))
        .unwrap();
        let identity = identity_of(
            &custom,
            Some("other@x.example".into()),
            Some(true),
            None,
            &other,
        );
        assert_eq!(identity.email.as_deref(), Some("ana@acme.example"));
        assert_eq!(
            identity.email_verified, None,
            "email_verified is about the email claim, not upn"
        );
        assert_eq!(identity.groups, Some(vec!["sales".to_owned()]));
        let mut no_groups = idp();
        no_groups.groups_claim = String::new();
        let identity = identity_of(&no_groups, Some("a@b.example".into()), None, None, &other);
        assert_eq!(identity.groups, None);
    }
}
