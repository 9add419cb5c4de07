//! The daemon's side of the detectors: what the login and reset paths observe (one call per
//! decision), the audit events of the firings, the throttle, and the sources of successful logins.

use std::sync::Arc;

use credd_proto::{AuthRequest, ErrorKind, Reply};

use crate::alerts::detect::{Event, LoginOutcome, Source};
use crate::alerts::settings::Action;
use crate::alerts::{Firing, Kind};
use crate::audit::chain::Event as AuditEvent;
use crate::handlers::context::Context;
use crate::handlers::reply::{error, internal};
use crate::state::Daemon;
use crate::system::peer::Peer;
use crate::system::time::now_unix;

/// One decision, as the detectors see it.
pub enum Observation<'a> {
    /// An authentication's outcome. `known`: the name is a stored account this peer may use;
    /// `via_code`: the account's pending reset code was right.
    Login {
        peer: Peer,
        user: &'a str,
        rhost: Option<&'a str>,
        known: bool,
        outcome: LoginOutcome,
    },
    /// A reset requested by `admin_uid` (issued or refused by the reset rate limits).
    Reset { admin_uid: u32, account: &'a str },
    /// An administrator unlocked or reset the account.
    Cleared { account: &'a str },
}

/// An authentication's outcome, kept until its reply is sent (login.rs `AfterReply`): the
/// detectors are fed after the reply, off the login's latency.
pub struct PendingLogin {
    peer: Peer,
    user: String,
    rhost: Option<String>,
    known: bool,
    outcome: LoginOutcome,
}

impl PendingLogin {
    /// `known`: the name is a stored account this peer may use; `via_code`: the account's pending
    /// reset code was right. `None` for outcomes that guessed nothing (rate-limited, busy) or a
    /// right secret of an account that may not log in (disabled).
    pub fn of(
        peer: Peer,
        req: &AuthRequest,
        known: bool,
        outcome: &Reply,
        via_code: bool,
    ) -> Option<PendingLogin> {
        let outcome = match outcome {
            Reply::Ok | Reply::MustChange if via_code => LoginOutcome::CodeRedeemed,
            Reply::Ok | Reply::MustChange => LoginOutcome::Succeeded,
            Reply::Denied | Reply::UnknownUser | Reply::Locked { .. } => LoginOutcome::Failed,
            _ => return None,
        };
        Some(PendingLogin {
            peer,
            user: req.user.clone(),
            rhost: req.rhost.clone(),
            known,
            outcome,
        })
    }

    pub fn observation(&self) -> Observation<'_> {
        Observation::Login {
            peer: self.peer,
            user: &self.user,
            rhost: self.rhost.as_deref(),
            known: self.known,
            outcome: self.outcome,
        }
    }
}

/// The source of an attempt, [`Peer::source`] as the detectors key it (they add `All`).
pub fn source_of(peer: Peer, rhost: Option<&str>) -> Source {
    match peer.source(rhost) {
        crate::policy::source::Source::Remote(h) => Source::Remote(h),
        crate::policy::source::Source::Service => Source::Service,
        crate::policy::source::Source::Local(uid) => Source::Local(uid),
    }
}

impl Daemon {
    /// Before an authentication is checked: the throttle's delay while a detector with
    /// `action = "throttle"` has an episode open for this source (or, for `distributed`, this
    /// account). A delay only, before any hashing slot is taken, and bounded in threads
    /// ([`super::MAX_DELAYED_PER_SOURCE`], [`super::MAX_DELAYED`]).
    pub(crate) fn alerts_throttle(&self, ctx: &Context<'_>, req: &AuthRequest) {
        let peer = ctx.peer;
        let live = &ctx.live;
        let a = &live.config.alerts;
        if a.throttle_delay.is_zero()
            || ![a.spray.action, a.slow_spray.action, a.distributed.action]
                .contains(&Action::Throttle)
        {
            return;
        }
        let source = source_of(peer, req.rhost.as_deref());
        if self.alerts.is_throttled(&source, Some(&req.user), a) {
            self.alerts.delay(&source, a.throttle_delay);
        }
    }

    /// Feeds one decision to the detectors and records what fires.
    pub(crate) fn observe(&self, ctx: &Context<'_>, observation: &Observation<'_>) {
        let live = &ctx.live;
        let a = &live.config.alerts;
        let now = now_unix();
        let fired = match *observation {
            Observation::Login {
                peer,
                user,
                rhost,
                known,
                outcome,
            } => {
                let source = source_of(peer, rhost);
                let label = source.label();
                let remembers = known && a.unexpected_code.threshold > 0;
                let since = now.saturating_sub(a.unexpected_code.window.as_secs() as i64);
                let source_known = match outcome {
                    LoginOutcome::CodeRedeemed if remembers => {
                        match self.store().login_source_known(user, &label, since) {
                            Ok(known) => known,
                            Err(e) => {
                                eprintln!("credd: reading the login sources failed: {e}");
                                None
                            }
                        }
                    }
                    _ => None,
                };
                if outcome == LoginOutcome::Succeeded
                    && remembers
                    && self.alerts.note_source(user, &label)
                {
                    self.record_login_source(user, &label, now);
                }
                let shown = (known || live.config.audit.log_unknown_names).then_some(user);
                self.alerts.feed(
                    &Event::Login {
                        account: self.alerts.key(user),
                        shown,
                        source: &source,
                        outcome,
                        source_known,
                    },
                    a,
                    now,
                )
            }
            Observation::Reset { admin_uid, account } => {
                let fired = self
                    .alerts
                    .feed(&Event::Reset { admin_uid, account }, a, now);
                if self.alerts.is_admin_throttled(admin_uid, a) {
                    self.alerts
                        .delay(&Source::Local(admin_uid), a.throttle_delay);
                }
                fired
            }
            Observation::Cleared { account } => self.alerts.feed(
                &Event::Cleared {
                    account: self.alerts.key(account),
                },
                a,
                now,
            ),
        };
        self.record_firings(fired);
    }

    /// Episodes due by now (the alerts thread, every second).
    pub fn alerts_tick(&self) {
        let live = self.current_policy();
        let fired = self.alerts.tick(&live.config.alerts, now_unix());
        self.record_firings(fired);
    }

    fn record_firings(&self, fired: Vec<Firing>) {
        for f in fired {
            let detail = f.detail();
            let line = format!("credd: {} {detail}\n", f.kind.event());
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
            let event = AuditEvent {
                name: f.kind.event(),
                actor_uid: None,
                target: f.target.as_deref(),
                rhost: f.source.rhost(),
                outcome: if f.kind == Kind::SuccessAfterFailures {
                    "possible_compromise"
                } else {
                    "detected"
                },
                detail,
                ..Default::default()
            };
            crate::audit::chain::aside_request_id(|| self.record(&event));
        }
    }

    /// `credctl alerts ack ID`: the alert must exist; the acknowledgement is audited.
    pub(crate) fn ack_alert(&self, ctx: &Context<'_>, id: &str) -> Reply {
        let peer = ctx.peer;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return error(
                ErrorKind::InvalidArgument,
                "an alert id is the 32 hex digits of its audit event id (credctl alerts)",
            );
        }
        let id = id.to_ascii_lowercase();
        self.flush_audit();
        let found = self.store().alert_event(&id);
        match found {
            Err(e) => internal(e),
            Ok(None) => error(ErrorKind::NotFound, format!("no alert with id {id}")),
            Ok(Some(event)) => {
                self.record(&AuditEvent {
                    name: "alert_acked",
                    actor_uid: Some(peer.uid),
                    outcome: "ok",
                    detail: format!("alert={id} event={event}"),
                    ..Default::default()
                });
                self.flush_audit();
                Reply::Ok
            }
        }
    }
}

/// The thread that fires settled episodes; one tick a second.
pub fn spawn_ticker(daemon: Arc<Daemon>) {
    let spawned = std::thread::Builder::new()
        .name("alerts".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                daemon.alerts_tick();
            }
        });
    if let Err(e) = spawned {
        eprintln!("credd: cannot start the alerts task: {e}");
    }
}
