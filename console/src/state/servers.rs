//! The servers screen: registered Salesforce servers, registration (with
//! the callback URL to paste into the connected app), credentials and their
//! rotation, rediscovery, disabling and deletion.

use toolgate_proto::v1;

use super::{App, Confirm, Field, Form, FormKind, Overlay, Purpose, describe_report};
use crate::action::{Command, Credentials};
use crate::client::ApiError;
use crate::keymap::Intent;

fn login_hosts() -> Vec<(String, String)> {
    vec![
        (
            "Production (login.salesforce.com)".into(),
            "production".into(),
        ),
        ("Sandbox (test.salesforce.com)".into(), "sandbox".into()),
        ("My Domain URL".into(), "my_domain".into()),
    ]
}

fn enablements() -> Vec<(String, String)> {
    vec![
        ("Inherit the gateway setting".into(), "inherit".into()),
        ("Require approval".into(), "require".into()),
        ("Auto-approve".into(), "auto".into()),
    ]
}

fn enablement_value(e: i32) -> &'static str {
    match v1::ToolEnablement::try_from(e).unwrap_or_default() {
        v1::ToolEnablement::RequireApproval => "require",
        v1::ToolEnablement::AutoApprove => "auto",
        _ => "inherit",
    }
}

fn enablement_from(value: &str) -> v1::ToolEnablement {
    match value {
        "require" => v1::ToolEnablement::RequireApproval,
        "auto" => v1::ToolEnablement::AutoApprove,
        _ => v1::ToolEnablement::Inherit,
    }
}

fn login_host_value(host: Option<&v1::LoginHost>) -> &'static str {
    match host.map(|h| v1::LoginHostKind::try_from(h.kind).unwrap_or_default()) {
        Some(v1::LoginHostKind::Sandbox) => "sandbox",
        Some(v1::LoginHostKind::MyDomain) => "my_domain",
        _ => "production",
    }
}

fn login_host_from(form: &Form) -> Result<v1::LoginHost, String> {
    let (kind, url) = match form.choice("login_host").as_str() {
        "sandbox" => (v1::LoginHostKind::Sandbox, String::new()),
        "my_domain" => {
            let url = form.text("my_domain_url");
            if url.is_empty() {
                return Err(
                    "My Domain URL: required for a My Domain login host (https://<domain>.my.salesforce.com)"
                        .into(),
                );
            }
            (v1::LoginHostKind::MyDomain, url)
        }
        _ => (v1::LoginHostKind::Production, String::new()),
    };
    Ok(v1::LoginHost {
        kind: kind as i32,
        url,
    })
}

/// A login host in words.
pub fn describe_login_host(host: Option<&v1::LoginHost>) -> String {
    match host {
        None => "-".into(),
        Some(h) => match v1::LoginHostKind::try_from(h.kind).unwrap_or_default() {
            v1::LoginHostKind::Production => format!("production ({})", h.url),
            v1::LoginHostKind::Sandbox => format!("sandbox ({})", h.url),
            v1::LoginHostKind::MyDomain => format!("My Domain ({})", h.url),
            v1::LoginHostKind::Unspecified => h.url.clone(),
        },
    }
}

/// The first free server name and tool prefix among `servers`: `base`
/// and `prefix` themselves, else `base 2` and `prefix2`, `base 3` and
/// `prefix3` ... (one number for both, so they read as a pair). Names are
/// unique ignoring ASCII case and prefixes exactly, as the daemon checks
/// (gateway `control/servers.rs`); a digit suffix keeps a prefix valid
/// (`control/validate.rs`: a lowercase letter, then up to 31 of a-z 0-9 _).
pub fn free_name_and_prefix(servers: &[v1::Server], base: &str, prefix: &str) -> (String, String) {
    let taken = |name: &str, prefix: &str| {
        servers
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(name) || s.tool_prefix == prefix)
    };
    (1..)
        .map(|n| {
            if n == 1 {
                (base.to_owned(), prefix.to_owned())
            } else {
                let suffix = n.to_string();
                let room = 32usize.saturating_sub(suffix.len());
                let stem: String = prefix.chars().take(room).collect();
                (format!("{base} {n}"), format!("{stem}{suffix}"))
            }
        })
        .find(|(name, prefix)| !taken(name, prefix))
        .unwrap_or_default()
}

impl App {
    /// The servers shown (after the `/` filter), in daemon order (by name).
    pub fn servers_shown(&self) -> Vec<&v1::Server> {
        let needle = self.filter_text(super::Screen::Servers);
        self.servers
            .ready()
            .map(|all| {
                all.iter()
                    .filter(|s| {
                        needle.is_empty()
                            || s.name.to_lowercase().contains(&needle)
                            || s.tool_prefix.contains(&needle)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The selected server.
    pub fn selected_server(&self) -> Option<&v1::Server> {
        self.servers_shown()
            .get(self.servers_cursor.selected)
            .copied()
    }

    /// The callback URL to paste into the connected app (from the catalog
    /// until a server exists).
    pub fn callback_url(&self) -> String {
        self.selected_server()
            .map(|s| s.callback_url.clone())
            .or_else(|| {
                self.catalog
                    .ready()
                    .and_then(|c| c.first())
                    .map(|e| e.callback_url.clone())
            })
            .unwrap_or_default()
    }

    pub(super) fn servers_intent(&mut self, intent: Intent, rows: usize) {
        if self.navigate(intent, rows) {
            return;
        }
        let selected = self.selected_server().cloned();
        match (intent, selected) {
            (Intent::New, _) => self.open_register_form(),
            (Intent::Copy, _) => {
                let url = self.callback_url();
                if !url.is_empty() {
                    self.effects.push(crate::action::Effect::Copy(url.into()));
                    self.info(super::COPIED);
                }
            }
            (_, None) => self.info("no server selected: press n to register one"),
            (Intent::Edit, Some(server)) => self.open_edit_server_form(&server),
            (Intent::Credentials, Some(server)) => self.open_credentials_form(&server),
            (Intent::Rediscover, Some(server)) => {
                self.info(format!("rediscovering tools of {}…", server.name));
                self.send(
                    Command::DiscoverTools {
                        server_id: server.id,
                    },
                    Purpose::Change,
                );
            }
            (Intent::ToggleDisabled, Some(server)) => {
                let disable = !server.disabled;
                let command = Command::UpdateServer(v1::UpdateServerRequest {
                    id: server.id.clone(),
                    disabled: Some(disable),
                    ..Default::default()
                });
                let (title, lines) = if disable {
                    (
                        format!("Disable {}", server.name),
                        vec![
                            format!(
                                "No tool of {} can be listed or called until you enable it again.",
                                server.name
                            ),
                            "Live MCP sessions are told their tool list changed.".into(),
                        ],
                    )
                } else {
                    let approved = self
                        .tools
                        .all
                        .iter()
                        .filter(|t| {
                            t.server_id == server.id && t.state == v1::ToolState::Approved as i32
                        })
                        .count();
                    (
                        format!("Enable {}", server.name),
                        vec![
                            format!(
                                "Its {approved} approved tools can be listed and called again by the users whose access profiles include them."
                            ),
                            "Live MCP sessions are told their tool list changed.".into(),
                        ],
                    )
                };
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title,
                    lines,
                    command,
                }));
            }
            (Intent::Delete, Some(server)) => {
                let tools = self
                    .tools
                    .all
                    .iter()
                    .filter(|t| t.server_id == server.id)
                    .count();
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title: format!("Delete {}", server.name),
                    lines: vec![
                        format!(
                            "Deletes the server, its {tools} tools, its maintained toolsets and its sealed consumer secret."
                        ),
                        "Its users' Salesforce connections are deleted (not revoked at Salesforce).".into(),
                        "This cannot be undone.".into(),
                    ],
                    command: Command::DeleteServer { id: server.id },
                }));
            }
            _ => {}
        }
    }

    fn open_register_form(&mut self) {
        let entry = self
            .catalog
            .ready()
            .and_then(|c| c.iter().find(|e| e.kind == "salesforce"))
            .cloned()
            .unwrap_or_default();
        let base_prefix = if entry.default_tool_prefix.is_empty() {
            "salesforce"
        } else {
            &entry.default_tool_prefix
        };
        // Prefill only what is free (nothing while the servers are unknown).
        let (name, prefix) = self
            .servers
            .ready()
            .map(|servers| free_name_and_prefix(servers, "Salesforce", base_prefix))
            .unwrap_or_default();
        let callback = if entry.callback_url.is_empty() {
            "(loading…)".to_owned()
        } else {
            entry.callback_url.clone()
        };
        let mut form = Form::new(
            FormKind::RegisterServer,
            "Register Salesforce",
            vec![
                Field::text("name", "Name", &name, "unique, e.g. Salesforce production"),
                Field::text(
                    "tool_prefix",
                    "Tool prefix",
                    &prefix,
                    "tools are exposed as <prefix>_<tool>; lowercase, digits, _",
                ),
                Field::choice(
                    "login_host",
                    "Login host",
                    login_hosts(),
                    "production",
                    "←/→ to choose; where your users log in",
                ),
                Field::text(
                    "my_domain_url",
                    "My Domain URL",
                    "",
                    "https://<domain>.my.salesforce.com",
                ),
                Field::text(
                    "api_version",
                    "API version",
                    &entry.default_api_version,
                    "Salesforce REST API version, e.g. 66.0",
                ),
                Field::choice(
                    "enablement",
                    "New tools",
                    enablements(),
                    "inherit",
                    "←/→: how discovered tools start",
                ),
                Field::text(
                    "client_id",
                    "Consumer key",
                    "",
                    "from the connected app or External Client App (optional now; c later)",
                ),
                Field::secret(
                    "client_secret",
                    "Consumer secret",
                    "masked; sealed by the daemon, never shown again",
                ),
            ],
        )
        .with_intro(vec![
            "Callback URL to paste into the connected app or External Client App (y copies on the list):".into(),
            callback,
        ]);
        form.set_enabled("my_domain_url", false);
        self.overlay = Some(Overlay::Form(form));
    }

    fn open_edit_server_form(&mut self, server: &v1::Server) {
        let host = login_host_value(server.login_host.as_ref());
        let mut form = Form::new(
            FormKind::EditServer {
                id: server.id.clone(),
            },
            &format!("Edit {}", server.name),
            vec![
                Field::text("name", "Name", &server.name, "unique"),
                Field::text(
                    "tool_prefix",
                    "Tool prefix",
                    &server.tool_prefix,
                    "renames every exposed tool of this server",
                ),
                Field::choice("login_host", "Login host", login_hosts(), host, "←/→"),
                Field::text(
                    "my_domain_url",
                    "My Domain URL",
                    if host == "my_domain" {
                        server
                            .login_host
                            .as_ref()
                            .map(|h| h.url.as_str())
                            .unwrap_or("")
                    } else {
                        ""
                    },
                    "https://<domain>.my.salesforce.com",
                ),
                Field::text("api_version", "API version", &server.api_version, ""),
                Field::choice(
                    "enablement",
                    "New tools",
                    enablements(),
                    enablement_value(server.tool_enablement),
                    "←/→",
                ),
            ],
        )
        .with_intro(vec![
            "Callback URL for the connected app or External Client App:".into(),
            server.callback_url.clone(),
        ]);
        form.set_enabled("my_domain_url", host == "my_domain");
        self.overlay = Some(Overlay::Form(form));
    }

    fn open_credentials_form(&mut self, server: &v1::Server) {
        let auth = server.auth.clone().unwrap_or_default();
        let stored = if auth.client_secret_set {
            format!(
                "A secret is stored (fingerprint {}). Enter a new one to rotate it; leave it empty to keep it.",
                auth.client_secret_fingerprint
            )
        } else {
            "No secret stored yet.".into()
        };
        let form = Form::new(
            FormKind::Credentials {
                server_id: server.id.clone(),
            },
            &format!("Credentials of {}", server.name),
            vec![
                Field::text(
                    "client_id",
                    "Consumer key",
                    &auth.client_id,
                    "the consumer key (OAuth client id) of the connected app or External Client App",
                ),
                Field::secret(
                    "client_secret",
                    "Consumer secret",
                    "masked; used from the next token request on",
                ),
            ],
        )
        .with_intro(vec![
            stored,
            format!("Callback URL: {}", server.callback_url),
        ]);
        self.overlay = Some(Overlay::Form(form));
    }

    pub(super) fn submit_register(&mut self, form: &mut Form) -> Option<Command> {
        let login_host = match login_host_from(form) {
            Ok(h) => h,
            Err(message) => {
                form.fail(message);
                return None;
            }
        };
        let client_id = form.text("client_id");
        let has_secret = form.secret_len("client_secret") > 0;
        if client_id.is_empty() && has_secret {
            form.fail("consumer key: required when a consumer secret is given");
            return None;
        }
        if !client_id.is_empty() && !has_secret {
            form.fail("consumer secret: required with the consumer key");
            return None;
        }
        let credentials = (!client_id.is_empty()).then(|| Credentials {
            client_id,
            client_secret: form.take_secret("client_secret"),
        });
        Some(Command::RegisterServer {
            request: v1::RegisterServerRequest {
                catalog_kind: "salesforce".into(),
                name: form.text("name"),
                tool_prefix: form.text("tool_prefix"),
                login_host: Some(login_host),
                api_version: form.text("api_version"),
                tool_enablement: enablement_from(&form.choice("enablement")) as i32,
            },
            credentials,
        })
    }

    pub(super) fn submit_edit_server(&mut self, form: &mut Form, id: String) -> Option<Command> {
        let login_host = match login_host_from(form) {
            Ok(h) => h,
            Err(message) => {
                form.fail(message);
                return None;
            }
        };
        Some(Command::UpdateServer(v1::UpdateServerRequest {
            id,
            name: Some(form.text("name")),
            tool_prefix: Some(form.text("tool_prefix")),
            login_host: Some(login_host),
            api_version: Some(form.text("api_version")),
            tool_enablement: Some(enablement_from(&form.choice("enablement")) as i32),
            disabled: None,
        }))
    }

    pub(super) fn registered(
        &mut self,
        server: v1::Server,
        report: v1::DiscoveryReport,
        credentials: Option<Result<(), ApiError>>,
    ) {
        if matches!(self.overlay, Some(Overlay::Form(ref f)) if f.kind == FormKind::RegisterServer)
        {
            self.overlay = None;
        }
        let found = describe_report(&report);
        match credentials {
            Some(Err(error)) => self.error(format!(
                "press c: credentials not saved ({error}); {} registered, tools: {found}",
                server.name
            )),
            Some(Ok(())) => self.info(format!(
                "{} registered with its credentials; tools: {found}",
                server.name
            )),
            None => self.info(format!(
                "press c to enter the consumer key and secret; {} registered, tools: {found}",
                server.name
            )),
        }
        self.reload(&crate::action::Scope::Servers);
    }
}
