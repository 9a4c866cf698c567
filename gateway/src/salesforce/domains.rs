//! Which URLs are Salesforce login hosts and instance URLs: the one check
//! that registering a My Domain login host, the callback's `instance_url`
//! and a refresh's `instance_url` all use, before toolgate sends a consumer
//! secret, an authorization code or a bearer token there.
//!
//! Accepted: `https` on a subdomain of a Salesforce domain family below,
//! or of a domain the admin added (`allowed_salesforce_domains`); `http`
//! or `https` on a loopback host (`localhost`, `127.0.0.0/8`, `::1`) as a
//! login host, which only a local simulator (trials, tests) can answer; an
//! `instance_url` or identity URL from a token response may be loopback
//! only when the server's login host is itself loopback
//! ([`SalesforceDomains::check_from`]), so a token response from a real
//! Salesforce login host never makes toolgate send a bearer token to a
//! local port. Refused: anything
//! else, Lightning Experience UI hosts (`*.lightning.force.com`: they
//! serve no OAuth or REST endpoints; the error names the My Domain URL to
//! use), URLs with a path, query, fragment or credentials.
//!
//! Source: Salesforce Help, "My Domain URL Formats" (with enhanced
//! domains: login `MyDomainName.my.salesforce.com`, sandbox
//! `MyDomainName--SandboxName.sandbox.my.salesforce.com`, Developer
//! Edition `MyDomainName-dev-ed.develop.my.salesforce.com`, scratch,
//! demo, free, patch and Trailhead `*.{scratch,demo,free,patch,trailblaze}
//! .my.salesforce.com`, Experience Cloud sites `MyDomainName.my.site.com`,
//! Salesforce Sites `MyDomainName.my.salesforce-sites.com`, Lightning
//! `MyDomainName.lightning.force.com`) and "OAuth Endpoints" (Experience
//! Cloud sites serve `/services/oauth2/` for their users); Salesforce
//! Help, "Set the My Domain Login Policy" (instanced URLs such as
//! `https://usa77.salesforce.com`); the legacy `force.com`,
//! `cloudforce.com` and `database.com` families and the U.S. government
//! `salesforce.mil` family were accepted before and are kept. Domains
//! not confirmed in Salesforce's documentation (e.g. Salesforce on Alibaba
//! Cloud's `sfcrmproducts.cn`) are not built in; an admin adds them.

use url::Url;

/// Built-in Salesforce domain families: a host must be a proper subdomain
/// of one (`acme.my.salesforce.com` under `salesforce.com`).
pub const SALESFORCE_DOMAINS: [&str; 7] = [
    "salesforce.com",
    "force.com",
    "salesforce.mil",
    "cloudforce.com",
    "database.com",
    "my.site.com",
    "my.salesforce-sites.com",
];

/// Hosts under these serve the Lightning Experience UI only, never
/// `/services/oauth2/` or `/services/data/` ("My Domain URL Formats":
/// `MyDomainName.lightning.force.com`).
const UI_ONLY_DOMAINS: [(&str, &str); 1] = [("lightning.force.com", "my.salesforce.com")];

/// Why a URL is not accepted as a Salesforce login host or instance URL.
/// `Display` says what to enter instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlError {
    /// Empty.
    #[error("is required, e.g. https://acme.my.salesforce.com")]
    Empty,
    /// Not a URL.
    #[error("{0}; expected a URL such as https://acme.my.salesforce.com")]
    NotUrl(String),
    /// A Lightning Experience UI host.
    #[error(
        "{host} is the Lightning Experience address, which serves no API or sign-in; use the My Domain URL {suggested}"
    )]
    UiHost {
        /// The host given.
        host: String,
        /// The My Domain URL to use, e.g. `https://acme.my.salesforce.com`.
        suggested: String,
    },
    /// Not https on a Salesforce (or admin-allowed) domain, nor loopback.
    #[error(
        "must be an https URL on a Salesforce domain such as https://acme.my.salesforce.com (accepted: {accepted}; http only on a loopback host)"
    )]
    NotSalesforce {
        /// The accepted domain families, comma-separated.
        accepted: String,
    },
    /// Has a path, query or fragment.
    #[error("must be the host's base URL, without a path, query or fragment")]
    HasPath,
    /// Carries credentials.
    #[error("must not contain credentials")]
    Credentials,
    /// A loopback URL named by a login host that is not itself loopback.
    #[error(
        "is a loopback address, accepted only from a login host that is itself loopback (a local simulator)"
    )]
    LoopbackFromRemote,
}

/// Whether `url`'s host is loopback (`localhost`, `127.0.0.0/8`, `::1`):
/// the one test deciding where loopback URLs are accepted.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The accepted domain families: [`SALESFORCE_DOMAINS`] plus the admin's
/// `allowed_salesforce_domains`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalesforceDomains {
    extra: Vec<String>,
}

/// A domain an admin may add: lowercase DNS labels (letters, digits,
/// hyphens), at least two of them; a leading `*.` or `.` is dropped.
fn normalize_domain(entry: &str) -> Result<String, String> {
    let d = entry
        .trim()
        .trim_start_matches("*.")
        .trim_start_matches('.');
    let d = d.to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let ok = labels.len() >= 2
        && d.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(d)
    } else {
        Err(format!(
            "'{entry}' is not a domain such as sfcrmproducts.cn (no scheme, path or port; at least two labels)"
        ))
    }
}

fn under(host: &str, domain: &str) -> bool {
    host.len() > domain.len() + 1
        && host.ends_with(domain)
        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
}

impl SalesforceDomains {
    /// The built-in families plus `extra` (e.g. `["sfcrmproducts.cn"]`).
    /// Errors: the first entry that is not a domain, as a message.
    pub fn with_extra(extra: Vec<String>) -> Result<Self, String> {
        let mut out: Vec<String> = Vec::new();
        for entry in &extra {
            let d = normalize_domain(entry)?;
            if !out.contains(&d) {
                out.push(d);
            }
        }
        Ok(Self { extra: out })
    }

    /// The domains the admin added, normalized.
    pub fn extra(&self) -> &[String] {
        &self.extra
    }

    fn families(&self) -> impl Iterator<Item = &str> {
        SALESFORCE_DOMAINS
            .iter()
            .copied()
            .chain(self.extra.iter().map(String::as_str))
    }

    /// Checks `value` as a Salesforce login host an admin registers
    /// (loopback accepted: a local simulator) and returns it without a
    /// trailing slash (e.g. `https://acme.my.salesforce.com`). Errors:
    /// [`UrlError`].
    pub(crate) fn check(&self, value: &str) -> Result<String, UrlError> {
        self.check_with(value, true)
    }

    /// Checks `value`, an `instance_url` (or identity URL origin) that the
    /// login host `login_host` answered, like [`Self::check`], except that
    /// a loopback URL is accepted only when `login_host` is itself
    /// loopback ([`is_loopback`]); otherwise [`UrlError::LoopbackFromRemote`].
    pub(crate) fn check_from(&self, value: &str, login_host: &str) -> Result<String, UrlError> {
        let local = Url::parse(login_host).is_ok_and(|u| is_loopback(&u));
        self.check_with(value, local)
    }

    fn check_with(&self, value: &str, allow_loopback: bool) -> Result<String, UrlError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(UrlError::Empty);
        }
        let url = Url::parse(value).map_err(|e| UrlError::NotUrl(e.to_string()))?;
        let loopback = is_loopback(&url);
        if loopback && !allow_loopback {
            return Err(UrlError::LoopbackFromRemote);
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            _ => String::new(),
        };
        if let Some((ui, api)) = UI_ONLY_DOMAINS.iter().find(|(ui, _)| under(&host, ui)) {
            let suggested = format!("https://{}.{api}", &host[..host.len() - ui.len() - 1]);
            return Err(UrlError::UiHost { host, suggested });
        }
        let salesforce = !host.is_empty() && self.families().any(|d| under(&host, d));
        let ok = (url.scheme() == "https" && (salesforce || loopback))
            || (url.scheme() == "http" && loopback);
        if !ok {
            return Err(UrlError::NotSalesforce {
                accepted: self
                    .families()
                    .map(|d| format!("*.{d}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(UrlError::HasPath);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_salesforce_family_is_accepted() {
        let d = SalesforceDomains::default();
        for url in [
            "https://login.salesforce.com",
            "https://test.salesforce.com",
            "https://acme.my.salesforce.com/",
            "https://acme--uat.sandbox.my.salesforce.com",
            "https://acme-dev-ed.develop.my.salesforce.com",
            "https://acme.scratch.my.salesforce.com",
            "https://usa77.salesforce.com",
            "https://acme.my.site.com",
            "https://acme--uat.sandbox.my.site.com",
            "https://acme.my.salesforce-sites.com",
            "https://agency.my.salesforce.mil",
            "https://na1.cloudforce.com",
            "https://acme.database.com",
            "https://ACME.MY.SALESFORCE.COM",
            "http://127.0.0.1:9000",
            "http://localhost:8443",
            "https://[::1]:8443",
        ] {
            assert!(d.check(url).is_ok(), "{url}: {:?}", d.check(url));
        }
        assert_eq!(
            d.check("https://acme.my.site.com/").unwrap(),
            "https://acme.my.site.com"
        );
    }

    #[test]
    fn other_hosts_ui_hosts_and_bad_shapes_are_refused() {
        let d = SalesforceDomains::default();
        for url in [
            "http://acme.my.salesforce.com",
            "https://evil.example.com",
            "https://my.salesforce.com.evil.example",
            "https://evilsalesforce.com",
            "https://salesforce.com",
            "https://my.site.com",
            "https://acme.site.com",
            "https://acme.salesforce-sites.com",
            "https://acme.my.sfcrmproducts.cn",
            "http://10.0.0.1",
        ] {
            assert!(
                matches!(d.check(url), Err(UrlError::NotSalesforce { .. })),
                "{url}: {:?}",
                d.check(url)
            );
        }
        assert_eq!(
            d.check("https://acme.lightning.force.com")
                .unwrap_err()
                .to_string(),
            "acme.lightning.force.com is the Lightning Experience address, which serves no API or sign-in; use the My Domain URL https://acme.my.salesforce.com"
        );
        assert_eq!(d.check(" ").unwrap_err(), UrlError::Empty);
        assert_eq!(
            d.check("https://acme.my.salesforce.com/path").unwrap_err(),
            UrlError::HasPath
        );
        assert_eq!(
            d.check("https://u:p@acme.my.salesforce.com").unwrap_err(),
            UrlError::Credentials
        );
        assert!(matches!(d.check("not a url"), Err(UrlError::NotUrl(_))));
    }

    #[test]
    fn loopback_instance_urls_only_from_a_loopback_login_host() {
        let d = SalesforceDomains::default();
        for url in [
            "http://127.0.0.1:9000",
            "http://localhost:8443",
            "https://[::1]:8443",
            "http://127.8.9.10",
        ] {
            for login in [
                "https://login.salesforce.com",
                "https://test.salesforce.com",
                "https://acme.my.salesforce.com",
            ] {
                assert_eq!(
                    d.check_from(url, login),
                    Err(UrlError::LoopbackFromRemote),
                    "{url} from {login}"
                );
            }
            assert!(d.check_from(url, "http://127.0.0.1:41234").is_ok(), "{url}");
            assert!(d.check_from(url, "http://localhost:41234").is_ok(), "{url}");
        }
        assert_eq!(
            d.check_from(
                "https://acme.my.salesforce.com/",
                "https://login.salesforce.com"
            ),
            Ok("https://acme.my.salesforce.com".into())
        );
        assert_eq!(
            d.check_from("https://acme.my.salesforce.com", "http://127.0.0.1:1"),
            Ok("https://acme.my.salesforce.com".into())
        );
        assert!(matches!(
            d.check_from("https://evil.example", "http://127.0.0.1:1"),
            Err(UrlError::NotSalesforce { .. })
        ));
    }

    #[test]
    fn admins_add_domains() {
        let d = SalesforceDomains::with_extra(vec![
            "*.SFCRMProducts.cn".into(),
            "sfcrmproducts.cn".into(),
        ])
        .unwrap();
        assert_eq!(d.extra(), ["sfcrmproducts.cn"]);
        assert_eq!(
            d.check("https://acme.my.sfcrmproducts.cn").unwrap(),
            "https://acme.my.sfcrmproducts.cn"
        );
        assert!(
            d.check("http://acme.my.sfcrmproducts.cn").is_err(),
            "https only"
        );
        let err = d.check("https://evil.example").unwrap_err().to_string();
        assert!(err.contains("*.sfcrmproducts.cn"), "{err}");
        for bad in [
            "cn",
            "https://x.example",
            "x.example/path",
            "x..example",
            "-x.example",
            "",
        ] {
            assert!(
                SalesforceDomains::with_extra(vec![bad.into()]).is_err(),
                "{bad}"
            );
        }
    }
}
