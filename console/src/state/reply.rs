//! Routing worker replies into the model: which request a reply answers,
//! stale and cancelled replies dropped, data stored, failures shown where
//! the admin looks (the form that asked, the list that failed, the status
//! line), and what a change makes stale reloaded.

use super::{App, Link, Load, Loadable, Overlay, Purpose, Screen, describe_report};
use crate::action::{Data, Reply, Scope};
use crate::client::ApiError;

impl App {
    pub(super) fn reply(&mut self, reply: Reply) {
        let purpose = if reply.last {
            self.pending.remove(&reply.id)
        } else {
            self.pending.get(&reply.id).cloned()
        };
        // Unknown ids are replies to cancelled requests.
        let Some(purpose) = purpose else {
            return;
        };
        if let Purpose::Load(load) = purpose
            && self.latest.get(&load) != Some(&reply.id)
        {
            return;
        }
        match reply.result {
            Ok(data) => {
                self.link = Link::Up;
                self.data(purpose, reply.id, reply.last, data);
            }
            Err(error) => {
                if error.code == tonic::Code::Unauthenticated {
                    self.link = Link::Refused(error.message.clone());
                } else if error.is_connection() {
                    self.link = Link::Down(error.message.clone());
                }
                self.failed(purpose, reply.id, error);
            }
        }
        self.clamp_cursors();
    }

    fn data(&mut self, purpose: Purpose, id: u64, last: bool, data: Data) {
        match data {
            Data::Settings(settings) => self.settings = Loadable::Ready(settings),
            Data::Catalog(entries) => self.catalog = Loadable::Ready(entries),
            Data::Servers(servers) => {
                self.servers = Loadable::Ready(servers);
                self.select_created(Screen::Servers);
            }
            Data::Toolsets(toolsets) => {
                self.toolsets = Loadable::Ready(toolsets);
                self.select_created(Screen::Toolsets);
            }
            Data::Profiles(profiles) => {
                self.profiles = Loadable::Ready(profiles);
                self.select_created(Screen::Profiles);
            }
            Data::Users(users) => {
                self.users = Loadable::Ready(users);
                self.select_created(Screen::Users);
                if self.screen == Screen::Users {
                    self.select_user_detail();
                }
            }
            Data::Clients(clients) => self.clients = Loadable::Ready(clients),
            Data::ToolsPage { tools, total } => self.tools_page(id, last, tools, total),
            Data::Tool(tool) => self.tools.detail_loaded(tool),
            Data::UserDetail(detail) => {
                if let Some((user_id, slot)) = &mut self.user_detail
                    && *user_id == detail.user_id
                {
                    *slot = Loadable::Ready(detail);
                }
            }
            Data::AuditBacklog(events) => self.audit_backlog(id, events),
            Data::AuditEvent(event) => self.audit_event(id, event),
            Data::Registered {
                server,
                report,
                credentials,
            } => self.registered(server, report, credentials),
            Data::Discovered(report) => {
                self.info(format!("rediscovered: {}", describe_report(&report)));
                self.reload(&Scope::Servers);
            }
            Data::SignInLinkIssued(link) => {
                self.overlay = Some(Overlay::SignInLink(link));
            }
            Data::TokenIssued(token) => {
                self.close_form(id);
                self.overlay = Some(Overlay::Token(token));
                self.reload(&Scope::Users);
            }
            Data::AccessPreview(preview) => self.preview_arrived(id, preview),
            Data::AccessRequests { requests, pending } => {
                self.access_requests = Loadable::Ready(requests);
                self.requests_pending = Some(pending);
            }
            Data::HeldCalls { calls, pending } => {
                self.held = Loadable::Ready(calls);
                self.held_pending = Some(pending);
                if self.screen == Screen::HeldCalls {
                    self.select_held_detail();
                }
            }
            Data::HeldCall(call) => {
                if let Some((held_id, slot)) = &mut self.held_detail
                    && *held_id == call.id
                {
                    *slot = Loadable::Ready(call);
                }
            }
            Data::Hooks(hooks) => {
                self.hooks = Loadable::Ready(hooks);
                self.select_created(Screen::Hooks);
            }
            Data::HookTested(answer) => {
                self.close_form(id);
                self.hook_test = Some(Loadable::Ready(answer));
                // Narrow terminals stack the panes: show the answer whole
                // (Esc goes back to the list).
                self.zoomed = self.size.width < crate::layout::WIDE;
                self.detail_scroll = 0;
                self.info("dry run done: nothing was called or audited");
            }
            Data::Changed { message, scope } => {
                if purpose == Purpose::Form {
                    self.close_form(id);
                }
                if scope == Scope::Tools {
                    self.tools.marked.clear();
                }
                self.info(message);
                self.reload(&scope);
            }
        }
    }

    fn close_form(&mut self, id: u64) {
        if let Some(Overlay::Form(form)) = &self.overlay
            && form.busy == Some(id)
        {
            self.overlay = None;
        }
    }

    fn failed(&mut self, purpose: Purpose, id: u64, error: ApiError) {
        let message = error.message.clone();
        match purpose {
            Purpose::Load(load) => {
                // Data already shown stays while the daemon is unreachable
                // (the header and status line say so); an empty list in its
                // place would read as real.
                let keep = error.is_connection();
                let failed = message.clone();
                match load {
                    Load::Settings => fail(&mut self.settings, keep, failed),
                    Load::Catalog => fail(&mut self.catalog, keep, failed),
                    Load::Servers => fail(&mut self.servers, keep, failed),
                    Load::Toolsets => fail(&mut self.toolsets, keep, failed),
                    Load::Profiles => fail(&mut self.profiles, keep, failed),
                    Load::Users => fail(&mut self.users, keep, failed),
                    Load::Clients => fail(&mut self.clients, keep, failed),
                    Load::AccessRequests => fail(&mut self.access_requests, keep, failed),
                    Load::HeldCalls => fail(&mut self.held, keep, failed),
                    Load::Hooks => fail(&mut self.hooks, keep, failed),
                }
                // A daemon without these services (an older toolgated)
                // says so on their screens only, not on every screen.
                let older = error.code == tonic::Code::Unimplemented
                    && matches!(load, Load::AccessRequests | Load::HeldCalls | Load::Hooks);
                if !error.is_connection() && !older {
                    self.error(message);
                }
            }
            Purpose::Tools => {
                if self.tools.load_id == Some(id) {
                    self.tools.load_failed(message);
                }
            }
            Purpose::Tool(tool_id) => self.tools.detail_failed(&tool_id, message),
            Purpose::UserDetail(user_id) => {
                if let Some((id, slot)) = &mut self.user_detail
                    && *id == user_id
                {
                    *slot = Loadable::Failed(message);
                }
            }
            Purpose::Tail => self.tail_failed(id, message),
            Purpose::Form => {
                if let Some(Overlay::Form(form)) = &mut self.overlay
                    && form.busy == Some(id)
                {
                    form.fail(message);
                } else {
                    self.error(message);
                }
            }
            Purpose::Preview => self.preview_failed(id, message),
            Purpose::HeldCall(held_id) => {
                if let Some((id, slot)) = &mut self.held_detail
                    && *id == held_id
                {
                    *slot = Loadable::Failed(message);
                }
            }

            Purpose::Change => {
                self.error(message);
                // Undo what the screens showed ahead of the daemon.
                self.reload(&Scope::Settings);
            }
        }
    }
}

/// Marks a load as failed, unless `keep` and data is already shown.
fn fail<T>(slot: &mut Loadable<T>, keep: bool, message: String) {
    if !(keep && matches!(slot, Loadable::Ready(_))) {
        *slot = Loadable::Failed(message);
    }
}
