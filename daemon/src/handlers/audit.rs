//! `credctl audit`, `credctl audit verify` and `credctl check`.

use std::time::SystemTime;

use credd_proto::{CheckReport, ErrorKind, ProtoError, Reply, validate_user_name};

use crate::audit::chain::Event;
use crate::handlers::context::Context;
use crate::handlers::reply::{LIST_PAGE, Respond, error, internal};
use crate::state::Daemon;

impl Daemon {
    pub(crate) fn audit_list(
        &self,
        user: Option<&str>,
        since: Option<&str>,
        respond: &mut Respond<'_>,
    ) -> Result<(), ProtoError> {
        if let Some(user) = user
            && let Err(message) = validate_user_name(user)
        {
            return respond(&error(ErrorKind::InvalidArgument, message));
        }
        let since = match since.map(parse_time).transpose() {
            Ok(since) => since,
            Err(message) => return respond(&error(ErrorKind::InvalidArgument, message)),
        };
        self.flush_audit();
        let mut after = 0i64;
        let mut count = 0u64;
        loop {
            let page = match self.store().audit_page(user, since, after, LIST_PAGE) {
                Ok(page) => page,
                Err(e) => return respond(&internal(e)),
            };
            let Some(last) = page.last() else { break };
            after = last.seq as i64;
            for entry in page {
                respond(&Reply::AuditItem(Box::new(entry)))?;
                count += 1;
            }
        }
        respond(&Reply::End { count })
    }

    pub(crate) fn audit_verify(&self) -> Reply {
        self.flush_audit();
        let verified = self.store().audit_verify();
        let report = match verified {
            Ok(report) => report,
            Err(e) => return internal(e),
        };
        if let (Some(seq), Some(problem)) = (report.first_bad_seq, &report.problem) {
            self.integrity_failure(format!("audit chain broken at row {seq}: {problem}"));
        }
        Reply::AuditVerified(Box::new(report))
    }

    pub(crate) fn check(&self, ctx: &Context<'_>) -> Reply {
        self.flush_audit();
        // Bound first: the store lock must be released before `integrity_failure` records.
        let hasher = ctx.live.hasher.clone();
        let checked = {
            let mut store = self.store();
            store.check(&self.audit_key_path).and_then(|found| {
                let over = store.accounts_over_cap(&hasher)?;
                Ok((found, over))
            })
        };
        let ((mut checks, mut findings), (accounts, over)) = match checked {
            Ok(result) => result,
            Err(e) => {
                // A database too damaged to be checked is itself the finding.
                let finding = format!("the database could not be checked: {e}");
                self.integrity_failure(finding.clone());
                return Reply::CheckReport(Box::new(CheckReport {
                    checks: vec![],
                    findings: vec![finding],
                }));
            }
        };
        // Issue 15 R3: hashes that logins would refuse to run (they fail every time).
        checks.push(format!(
            "hash costs within the [hashing] caps: {accounts} accounts"
        ));
        findings.extend(over.into_iter().map(|(name, why)| {
            format!(
                "account {name}: its hash is over the cost cap ({why}); its logins fail until it \
                 gets a new password (credctl passwd or reset)"
            )
        }));
        for finding in &findings {
            self.integrity_failure(finding.clone());
        }
        Reply::CheckReport(Box::new(CheckReport { checks, findings }))
    }

    /// A critical event: to the audit table if it can still be written, and to syslog always.
    fn integrity_failure(&self, detail: String) {
        self.record(&Event {
            name: "integrity_failure",
            outcome: "failed",
            detail,
            ..Default::default()
        });
    }
}

fn parse_time(s: &str) -> Result<i64, String> {
    humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("since: {s:?} is not an RFC 3339 time: {e}"))
        .map(|t| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        })
}
