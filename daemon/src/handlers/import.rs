//! `credctl import`: rows staged on the connection, validated as a whole against the store, then
//! applied in one transaction (see `store::import`).
//!
//! Two kinds of import share the staging, the checks and the transaction: the rows of a CSV file
//! (every row applied, or none), and the entries of a shadow file (`import --from-shadow`), where
//! credd also decides what to leave out and says why — an account it already holds (unless
//! `replace`), a legacy hash its policy refuses — while anything malformed still refuses the
//! whole import.
//!
//! Nothing is written before the commit: a client that disconnects, or a daemon that dies while
//! rows are being staged, leaves the store as it was. The commit is one SQLite transaction, so a
//! crash during it leaves the old state or the new one, never a mix.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use credd_proto::{
    ErrorKind, ImportAction, ImportOptions, ImportProblem, ImportRow, ImportSkip, ImportSummary,
    IssuedCode, ProtoError, Reply, Secret, ShadowRow, validate_field, validate_user_name,
};

use crate::audit::chain::Event;
use crate::config::{MAX_CODE_TTL, MIN_CODE_TTL};
use crate::crypto::hashing::{self, Refusal};
use crate::handlers::context::Context;
use crate::handlers::reply::{Respond, error, internal};
use crate::policy::codes;
use crate::state::Daemon;
use crate::store::{Directory, ImportRun, Planned};
use crate::system::time::{now_unix, rfc3339};

/// Rows one import may stage: the memory a connection may hold is bounded.
const MAX_ROWS: usize = 1_000_000;
/// Problems reported at most; the rest are counted.
const MAX_PROBLEMS: usize = 100;
const HOUR: i64 = 3600;

/// Per-connection state: an import in progress.
#[derive(Default)]
pub struct Connection {
    staging: Option<Staging>,
}

impl Connection {
    /// The accounts the rows staged so far name, with the uid a row gives (none outside an
    /// import).
    pub fn staged_targets(&self) -> impl Iterator<Item = (&str, Option<u32>)> {
        self.staging.iter().flat_map(|s| {
            let rows = s.rows.iter().map(|r| (r.user.as_str(), r.uid));
            rows.chain(s.shadow.iter().map(|r| (r.user.as_str(), None)))
        })
    }

    /// The names of staged rows that would give an account a password hash (CSV `add` and
    /// `set-hash` with a hash, and every shadow entry).
    pub fn staged_credentials(&self) -> impl Iterator<Item = &str> {
        self.staging.iter().flat_map(|s| {
            let rows = s
                .rows
                .iter()
                .filter(|r| r.password_hash.is_some())
                .map(|r| r.user.as_str());
            rows.chain(s.shadow.iter().map(|r| r.user.as_str()))
        })
    }

    pub fn importing(&self) -> bool {
        self.staging.is_some()
    }
}

struct Staging {
    options: ImportOptions,
    /// A CSV import's rows.
    rows: Vec<ImportRow>,
    /// A shadow import's entries (`options.shadow` is set).
    shadow: Vec<ShadowRow>,
}

impl Staging {
    fn len(&self) -> usize {
        self.rows.len() + self.shadow.len()
    }
}

/// Problems found so far, capped.
#[derive(Default)]
struct Problems {
    list: Vec<ImportProblem>,
    more: usize,
}

impl Problems {
    fn add(&mut self, line: u64, field: &str, message: impl Into<String>) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(ImportProblem {
                line,
                field: field.to_string(),
                message: message.into(),
            });
        } else {
            self.more += 1;
        }
    }
}

impl Daemon {
    pub(crate) fn import_begin(&self, conn: &mut Connection, options: ImportOptions) -> Reply {
        if conn.staging.is_some() {
            return error(
                ErrorKind::BadRequest,
                "an import is already in progress on this connection",
            );
        }
        if let Err(message) = validate_field("source", &options.source) {
            return error(ErrorKind::BadRequest, message);
        }
        conn.staging = Some(Staging {
            options,
            rows: Vec::new(),
            shadow: Vec::new(),
        });
        Reply::Ok
    }

    pub(crate) fn import_rows(&self, conn: &mut Connection, rows: Vec<ImportRow>) -> Reply {
        match room_for(conn, rows.len(), false) {
            Ok(staging) => {
                staging.rows.extend(rows);
                Reply::Ok
            }
            Err(reply) => reply,
        }
    }

    pub(crate) fn import_shadow_rows(&self, conn: &mut Connection, rows: Vec<ShadowRow>) -> Reply {
        match room_for(conn, rows.len(), true) {
            Ok(staging) => {
                staging.shadow.extend(rows);
                Reply::Ok
            }
            Err(reply) => reply,
        }
    }

    pub(crate) fn import_commit(
        &self,
        ctx: &mut Context<'_>,
        respond: &mut Respond<'_>,
    ) -> Result<(), ProtoError> {
        let peer = ctx.peer;
        let Some(staging) = ctx.conn.staging.take() else {
            return respond(&error(ErrorKind::BadRequest, "no import in progress"));
        };
        let started = Instant::now();
        // Bulk changes are refused on a damaged database (docs/architecture.md#store).
        let damage = self.store().quick_check();
        match damage {
            Err(e) => return respond(&internal(e)),
            Ok(Some(found)) => {
                self.record(&Event {
                    name: "integrity_failure",
                    outcome: "failed",
                    detail: format!("quick_check before an import: {found}"),
                    ..Default::default()
                });
                return respond(&error(
                    ErrorKind::Internal,
                    "the import was refused: the database failed its integrity check (see credctl check)",
                ));
            }
            Ok(None) => {}
        }
        let checked_at = started.elapsed();
        let now = now_unix();
        let planned = if staging.options.shadow.is_some() {
            self.plan_shadow(ctx, &staging)
        } else {
            self.plan_import(ctx, &staging, now)
        };
        let plan = match planned {
            Err(reply) => return respond(&reply),
            Ok(plan) => plan,
        };
        if let Some(reply) = self.import_rate_limited(ctx, &staging, &plan, now) {
            return respond(&reply);
        }
        let mut actions: BTreeMap<String, u64> = BTreeMap::new();
        for (_, row) in &plan.rows {
            *actions
                .entry(row.action().as_str().to_string())
                .or_default() += 1;
        }
        let rows = plan.rows.len() as u64;
        let codes_count = plan.codes.len() as u64;
        if staging.options.dry_run {
            respond(&Reply::ImportSummary(Box::new(ImportSummary {
                dry_run: true,
                rows,
                actions,
                codes: codes_count,
                sessions_revoked: 0,
                milliseconds: started.elapsed().as_millis() as u64,
                skipped: plan.skipped,
            })))?;
            return respond(&Reply::End { count: 0 });
        }
        let summary = actions
            .iter()
            .map(|(action, n)| format!("{action}={n}"))
            .collect::<Vec<_>>()
            .join(" ");
        let skipped = if staging.options.shadow.is_some() {
            format!(" skipped={}", plan.skipped.len())
        } else {
            String::new()
        };
        let run = ImportRun {
            source: &staging.options.source,
            admin_uid: peer.uid,
            allow_bulk: staging.options.allow_bulk,
            now,
            summary: format!("rows={rows} {summary}{skipped}"),
        };
        let planned_at = started.elapsed();
        eprintln!(
            "credd: import of {rows} rows from {:?}: validated, applying in one transaction",
            staging.options.source
        );
        let applied = self.store().apply_import(&run, &plan.rows);
        eprintln!(
            "credd: import of {rows} rows: quick_check {} ms, validation {} ms, transaction {} ms",
            checked_at.as_millis(),
            (planned_at - checked_at).as_millis(),
            (started.elapsed() - planned_at).as_millis()
        );
        let revoked = match applied {
            Err(e) => return respond(&internal(e)),
            Ok(revoked) => revoked,
        };
        let sessions_revoked = revoked.len() as u64;
        self.end_sessions(ctx, revoked);
        respond(&Reply::ImportSummary(Box::new(ImportSummary {
            dry_run: false,
            rows,
            actions,
            codes: codes_count,
            sessions_revoked,
            milliseconds: started.elapsed().as_millis() as u64,
            skipped: plan.skipped,
        })))?;
        let mut sent = 0;
        for (user, code, expires_at) in plan.codes {
            respond(&Reply::ImportCode(Box::new(IssuedCode {
                user,
                code,
                expires_at: rfc3339(expires_at),
            })))?;
            sent += 1;
        }
        respond(&Reply::End { count: sent })
    }

    /// Checks every row against the store and the rules, all of them, before anything is written.
    fn plan_import(
        &self,
        ctx: &Context<'_>,
        staging: &Staging,
        now: i64,
    ) -> Result<ImportPlan, Reply> {
        if staging.rows.is_empty() {
            return Err(whole_file_problem("no rows"));
        }
        let directory: Directory = self.store().directory().map_err(internal)?;
        let accounts = crate::system::nss::Accounts::load();
        let mut problems = Problems::default();
        let mut seen: HashMap<&str, u64> = HashMap::new();
        let mut new_uids: HashSet<u32> = HashSet::new();
        let mut plan = ImportPlan::default();
        let resets = staging
            .rows
            .iter()
            .filter(|r| r.action == ImportAction::Reset)
            .count();
        let mut fresh_codes = codes::generate_many(resets).map_err(internal)?.into_iter();
        let default_ttl = staging
            .options
            .ttl_seconds
            .map(Duration::from_secs)
            .unwrap_or(ctx.live.config.codes.ttl);
        for row in &staging.rows {
            let line = row.line;
            if let Err(message) = validate_user_name(&row.user) {
                problems.add(line, "user", message);
                continue;
            }
            if let Some(first) = seen.insert(&row.user, line) {
                problems.add(
                    line,
                    "user",
                    format!("{} is named twice (first on line {first})", row.user),
                );
                continue;
            }
            let exists = directory.by_name.contains_key(&row.user);
            let name = row.user.clone();
            let planned = match row.action {
                ImportAction::Add => {
                    if exists {
                        problems.add(line, "user", format!("{} already exists", row.user));
                        continue;
                    }
                    let uid =
                        match crate::handlers::reply::resolve_uid_in(&accounts, &row.user, row.uid)
                        {
                            Ok(uid) => uid,
                            Err(message) => {
                                problems.add(line, "uid", message);
                                continue;
                            }
                        };
                    if let Some(uid) = uid {
                        if let Some(holder) = directory.by_uid.get(&uid) {
                            problems.add(
                                line,
                                "uid",
                                format!("uid {uid} already belongs to {holder}"),
                            );
                            continue;
                        }
                        if !new_uids.insert(uid) {
                            problems.add(
                                line,
                                "uid",
                                format!("uid {uid} is given to two accounts in this file"),
                            );
                            continue;
                        }
                    }
                    let hash = match row
                        .password_hash
                        .as_deref()
                        .map(|h| usable_hash(&ctx.live.hasher, h))
                        .transpose()
                    {
                        Ok(hash) => hash,
                        Err(message) => {
                            problems.add(line, "password_hash", message);
                            continue;
                        }
                    };
                    Planned::Add {
                        name,
                        uid,
                        hash,
                        must_change: row.must_change.unwrap_or(false),
                        disabled: false,
                    }
                }
                _ if !exists => {
                    problems.add(line, "user", format!("no such account: {}", row.user));
                    continue;
                }
                ImportAction::Remove => Planned::Remove { name },
                ImportAction::Reset => {
                    let ttl = row
                        .ttl_seconds
                        .map(Duration::from_secs)
                        .unwrap_or(default_ttl);
                    if !(MIN_CODE_TTL..=MAX_CODE_TTL).contains(&ttl) {
                        problems.add(line, "ttl", "a code's lifetime must be between 1m and 24h");
                        continue;
                    }
                    let code = fresh_codes
                        .next()
                        .ok_or_else(|| internal("fewer codes than reset rows"))?;
                    let normalized = codes::normalize(code.expose())
                        .ok_or_else(|| internal("a generated code did not normalise"))?;
                    let expires_at = now + ttl.as_secs() as i64;
                    let digest = codes::digest(&normalized);
                    plan.codes.push((row.user.clone(), code, expires_at));
                    Planned::Reset {
                        name,
                        digest,
                        expires_at,
                    }
                }
                ImportAction::Lock => {
                    if let Some(Err(message)) =
                        row.reason.as_deref().map(|r| validate_field("reason", r))
                    {
                        problems.add(line, "reason", message);
                        continue;
                    }
                    Planned::Lock {
                        name,
                        reason: row.reason.clone(),
                    }
                }
                ImportAction::Unlock => Planned::Unlock { name },
                ImportAction::Disable => Planned::Disable { name },
                ImportAction::Enable => Planned::Enable { name },
                ImportAction::SetHash => {
                    let Some(hash) = row.password_hash.as_deref() else {
                        problems.add(line, "password_hash", "set-hash needs a password_hash");
                        continue;
                    };
                    match usable_hash(&ctx.live.hasher, hash) {
                        Ok(hash) => Planned::SetHash {
                            name,
                            hash,
                            must_change: row.must_change.unwrap_or(false),
                            disable: false,
                        },
                        Err(message) => {
                            problems.add(line, "password_hash", message);
                            continue;
                        }
                    }
                }
            };
            plan.rows.push((line, planned));
        }
        if problems.list.is_empty() {
            Ok(plan)
        } else {
            Err(problems_reply(problems))
        }
    }

    /// Checks every entry of a shadow file against the store and the hashing policy, before
    /// anything is written. A malformed entry refuses the import as a CSV problem does; an
    /// account credd already holds (without `replace`) and a legacy hash the policy refuses are
    /// left out and reported.
    fn plan_shadow(&self, ctx: &Context<'_>, staging: &Staging) -> Result<ImportPlan, Reply> {
        let replace = staging.options.shadow.is_some_and(|s| s.replace);
        if !staging.rows.is_empty() {
            return Err(error(
                ErrorKind::BadRequest,
                "CSV rows in an import from a shadow file",
            ));
        }
        if staging.shadow.is_empty() {
            return Err(whole_file_problem("no entries to import"));
        }
        let directory: Directory = self.store().directory().map_err(internal)?;
        let accounts = crate::system::nss::Accounts::load();
        let mut problems = Problems::default();
        let mut seen: HashMap<&str, u64> = HashMap::new();
        let mut new_uids: HashSet<u32> = HashSet::new();
        let mut plan = ImportPlan::default();
        for row in &staging.shadow {
            let line = row.line;
            let skip = |plan: &mut ImportPlan, reason: String| {
                plan.skipped.push(ImportSkip {
                    line,
                    user: row.user.clone(),
                    reason,
                });
            };
            if let Err(message) = validate_user_name(&row.user) {
                problems.add(line, SHADOW_NAME, message);
                continue;
            }
            if let Some(first) = seen.insert(&row.user, line) {
                problems.add(
                    line,
                    SHADOW_NAME,
                    format!("{} has two entries (the first on line {first})", row.user),
                );
                continue;
            }
            let hash = match ctx.live.hasher.check(&row.password_hash) {
                Ok(()) => row.password_hash.clone(),
                Err(refusal @ Refusal::Legacy(_)) => {
                    skip(&mut plan, refusal.to_string());
                    continue;
                }
                Err(Refusal::Unusable(message)) => {
                    problems.add(line, SHADOW_HASH, message);
                    continue;
                }
            };
            let name = row.user.clone();
            let planned = if directory.by_name.contains_key(&row.user) {
                if !replace {
                    skip(
                        &mut plan,
                        "already in credd; --replace gives it the shadow hash".into(),
                    );
                    continue;
                }
                Planned::SetHash {
                    name,
                    hash,
                    must_change: row.must_change,
                    disable: row.expired,
                }
            } else {
                let uid = match crate::handlers::reply::resolve_uid_in(&accounts, &row.user, None) {
                    Ok(uid) => uid,
                    Err(message) => {
                        problems.add(line, SHADOW_NAME, message);
                        continue;
                    }
                };
                if let Some(uid) = uid {
                    if let Some(holder) = directory.by_uid.get(&uid) {
                        problems.add(
                            line,
                            SHADOW_NAME,
                            format!("uid {uid} of {} already belongs to {holder}", row.user),
                        );
                        continue;
                    }
                    if !new_uids.insert(uid) {
                        problems.add(
                            line,
                            SHADOW_NAME,
                            format!("uid {uid} is given to two accounts in this file"),
                        );
                        continue;
                    }
                }
                Planned::Add {
                    name,
                    uid,
                    hash: Some(hash),
                    must_change: row.must_change,
                    disabled: row.expired,
                }
            };
            plan.rows.push((line, planned));
        }
        if problems.list.is_empty() {
            Ok(plan)
        } else {
            Err(problems_reply(problems))
        }
    }

    /// Reset rows count toward the reset limits like single resets; past them the import is
    /// refused before anything changes, unless --allow-bulk (audited with the import).
    fn import_rate_limited(
        &self,
        ctx: &Context<'_>,
        staging: &Staging,
        plan: &ImportPlan,
        now: i64,
    ) -> Option<Reply> {
        let peer = ctx.peer;
        if plan.codes.is_empty() || staging.options.allow_bulk {
            return None;
        }
        let limits = &ctx.live.config.codes;
        let mut store = self.store();
        let per_account = match store.resets_per_account_since(now - HOUR) {
            Ok(counts) => counts,
            Err(e) => return Some(internal(e)),
        };
        let by_admin = match store.resets_since("", peer.uid, now - HOUR) {
            Ok((_, by_admin)) => by_admin,
            Err(e) => return Some(internal(e)),
        };
        drop(store);
        let over_account = plan.codes.iter().find(|(user, _, _)| {
            per_account.get(user).copied().unwrap_or(0) >= limits.per_account_per_hour
        });
        let over_admin = by_admin as usize + plan.codes.len() > limits.per_admin_per_hour as usize;
        let why = match (over_account, over_admin) {
            (Some((user, _, _)), _) => format!(
                "import would reset {user} past {} resets per hour",
                limits.per_account_per_hour
            ),
            (None, true) => format!(
                "import of {} resets would exceed {} resets per hour by uid {}",
                plan.codes.len(),
                limits.per_admin_per_hour,
                peer.uid
            ),
            (None, false) => return None,
        };
        self.record(&Event {
            name: "rate_limited",
            actor_uid: Some(peer.uid),
            outcome: "refused",
            detail: format!("limit=reset {why} source={:?}", staging.options.source),
            ..Default::default()
        });
        Some(Reply::RateLimited {
            unknown: false,
            retry_after: None,
        })
    }
}

#[derive(Default)]
struct ImportPlan {
    rows: Vec<(u64, Planned)>,
    codes: Vec<(String, Secret, i64)>,
    /// Entries of a shadow file left out, in line order.
    skipped: Vec<ImportSkip>,
}

/// How problems with a shadow file's entries name their field (shadow(5)'s `struct spwd`), as
/// credctl names them for the problems it finds itself.
const SHADOW_NAME: &str = "sp_namp";
const SHADOW_HASH: &str = "sp_pwdp";

/// The staging of the import in progress, if it is of the given kind and has room for `more`
/// rows. Too many rows end the import: the memory a connection may hold is bounded.
fn room_for(conn: &mut Connection, more: usize, shadow: bool) -> Result<&mut Staging, Reply> {
    let Some(staging) = conn.staging.as_mut() else {
        return Err(error(
            ErrorKind::BadRequest,
            "import rows without an import in progress",
        ));
    };
    if staging.options.shadow.is_some() != shadow {
        return Err(error(
            ErrorKind::BadRequest,
            if shadow {
                "shadow entries in an import of CSV rows"
            } else {
                "CSV rows in an import from a shadow file"
            },
        ));
    }
    if staging.len() + more > MAX_ROWS {
        conn.staging = None;
        return Err(error(
            ErrorKind::InvalidArgument,
            format!("an import may hold at most {MAX_ROWS} rows; split the file"),
        ));
    }
    // Reborrowed: the early return above needed `conn` itself.
    conn.staging
        .as_mut()
        .ok_or_else(|| internal("staging vanished"))
}

fn problems_reply(problems: Problems) -> Reply {
    Reply::ImportProblems {
        problems: problems.list,
        truncated: problems.more > 0,
    }
}

/// A problem with the import as a whole (line 0).
fn whole_file_problem(message: &str) -> Reply {
    problems_reply(Problems {
        list: vec![ImportProblem {
            line: 0,
            field: String::new(),
            message: message.into(),
        }],
        more: 0,
    })
}

/// A hash credd can verify, as it will be stored: a plain PBKDF2 PHC string is sealed with the
/// pepper when one is configured, so no plain hash enters a peppered store. A crypt(3) string is
/// stored as it is (the pepper cannot seal it; its first login replaces it with a sealed PBKDF2
/// hash), a legacy one only with `[hashing] accept_legacy`.
fn usable_hash(hasher: &hashing::Hasher, hash: &str) -> Result<String, String> {
    hasher.accepts(hash)?;
    Ok(hasher.seal(hash).unwrap_or_else(|| hash.to_string()))
}
