//! The audit log's vocabulary: every action toolgate records, as one typed
//! list. Events are built with [`crate::model::AuditEvent::allowed`] from an
//! [`Action`]; the stored and API form is its dotted name
//! ([`Action::as_str`], e.g. `tool.call`), so filters such as
//! `action_prefix = "tool."` keep working.

use std::fmt;

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $access:literal;)*) => {
        /// An audited action.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($(#[$doc])* $variant,)*
        }

        impl Action {
            /// Every action.
            pub const ALL: &[Action] = &[$(Action::$variant,)*];

            /// The dotted name stored in the log and shown by the API.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            /// Whether an event of this action may change which tools a
            /// user may list or call (so open MCP sessions must be told).
            pub const fn changes_access(self) -> bool {
                match self {
                    $(Action::$variant => $access,)*
                }
            }
        }
    };
}

actions! {
    /// An MCP `tools/call`, allowed, denied or failed.
    ToolCall = "tool.call", false;
    /// A tool's state or classification set by an admin.
    ToolUpdate = "tool.update", true;
    /// A tool classified at discovery.
    ToolClassify = "tool.classify", true;
    /// A tool first discovered.
    ToolDiscover = "tool.discover", true;
    /// A tool's definition changed upstream (back to review).
    ToolDrift = "tool.drift", true;
    /// A tool no longer offered.
    ToolRemove = "tool.remove", true;
    /// A server registered.
    ServerRegister = "server.register", true;
    /// A server's settings changed.
    ServerUpdate = "server.update", true;
    /// A server's consumer key and secret set.
    ServerConfigureAuth = "server.configure_auth", true;
    /// A server deleted.
    ServerDelete = "server.delete", true;
    /// A server's tools discovered again.
    ServerDiscover = "server.discover", true;
    /// Gateway settings changed (the kill switch among them).
    SettingsUpdate = "settings.update", true;
    /// A user created.
    UserCreate = "user.create", true;
    /// A user enabled.
    UserEnable = "user.enable", true;
    /// A user disabled.
    UserDisable = "user.disable", true;
    /// An MCP token issued.
    TokenIssue = "token.issue", false;
    /// An MCP token revoked.
    TokenRevoke = "token.revoke", false;
    /// An access profile created.
    ProfileCreate = "profile.create", true;
    /// An access profile renamed or re-described.
    ProfileUpdate = "profile.update", true;
    /// An access profile deleted.
    ProfileDelete = "profile.delete", true;
    /// Toolsets bound to a profile.
    ProfileBindToolsets = "profile.bind_toolsets", true;
    /// Toolsets unbound from a profile.
    ProfileUnbindToolsets = "profile.unbind_toolsets", true;
    /// A profile granted to a user.
    ProfileGrant = "profile.grant", true;
    /// A profile's grant to a user revoked.
    ProfileRevoke = "profile.revoke", true;
    /// A toolset created.
    ToolsetCreate = "toolset.create", true;
    /// A toolset renamed or re-described.
    ToolsetUpdate = "toolset.update", true;
    /// A toolset deleted.
    ToolsetDelete = "toolset.delete", true;
    /// Tools added to a toolset.
    ToolsetAddTools = "toolset.add_tools", true;
    /// Tools removed from a toolset.
    ToolsetRemoveTools = "toolset.remove_tools", true;
    /// A user connected Salesforce.
    ConnectionCreate = "connection.create", false;
    /// A connection's Salesforce tokens refreshed.
    ConnectionRefresh = "connection.refresh", false;
    /// A connection deleted (disconnect, revoked refresh token, deleted server).
    ConnectionDelete = "connection.delete", false;
    /// An MCP session refused (over a session cap).
    McpSessionOpen = "mcp.session.open", false;
    /// A one-time sign-in link issued to a user (`UserService.IssueSignInLink`).
    SignInLinkIssue = "signin.link_issue", false;
    /// A user signed in to the authorization server in a browser.
    SignIn = "signin.complete", false;
    /// A user allowed or denied an AI client at the consent page.
    ClientConsent = "client.consent", false;
    /// An OAuth client registered (RFC 7591 Dynamic Client Registration).
    ClientRegister = "client.register", false;
    /// An OAuth grant (refresh token family) revoked: reuse detected, a
    /// reused authorization code, or revocation by the client.
    GrantRevoke = "grant.revoke", false;
    /// An AI client's type, state, kill switch, idle limit or name changed
    /// by an admin (`ClientService.UpdateClient`).
    ClientUpdate = "client.update", false;
    /// An AI client's credentials revoked by an admin
    /// (`ClientService.RevokeClient`).
    ClientRevoke = "client.revoke", false;
    /// An idle AI client closed by the sweeper, its credentials revoked.
    ClientCloseIdle = "client.close_idle", false;
    /// An access request opened (by a user's tool call, ahead of time, or
    /// by an admin on a user's behalf).
    AccessRequestCreate = "access_request.create", false;
    /// An access request approved (by an admin, or automatically): the
    /// profile is granted.
    AccessRequestApprove = "access_request.approve", true;
    /// An access request denied by an admin.
    AccessRequestDeny = "access_request.deny", false;
    /// A pending access request nobody decided in time.
    AccessRequestExpire = "access_request.expire", false;
    /// A tool-call hook created.
    HookCreate = "hook.create", false;
    /// A tool-call hook changed.
    HookUpdate = "hook.update", false;
    /// A tool-call hook deleted.
    HookDelete = "hook.delete", false;
    /// A tool call held for a person's approval.
    HeldCallHold = "held_call.hold", false;
    /// A held call approved: the next retry with the same arguments runs
    /// once.
    HeldCallApprove = "held_call.approve", false;
    /// A held call denied.
    HeldCallDeny = "held_call.deny", false;
    /// A held call nobody decided, or nobody retried, in time.
    HeldCallExpire = "held_call.expire", false;
}

impl Action {
    /// The action named `name`, if toolgate writes it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_dotted_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for &action in Action::ALL {
            let name = action.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.contains('.')
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
            );
            assert_eq!(Action::parse(name), Some(action));
        }
        assert_eq!(Action::parse("tool."), None);
    }
}
