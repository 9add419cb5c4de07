//! Command-line grammar (DESIGN.md §9). Names and flags here are a contract: tests, docs and
//! scripts rely on them.

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use credd_proto::paths::{ADMIN_SOCKET_ENV, DEFAULT_ADMIN_SOCKET};

/// The command line as clap sees it. [`Cli::resolve`] turns it into an [`Invocation`]: a
/// subcommand, or the operator guide's `--modify-user-state` form mapped onto one.
#[derive(Debug, Parser)]
#[command(
    name = "credctl",
    version,
    about = "Administer credd, the credential daemon",
    propagate_version = true,
    arg_required_else_help = true,
    override_usage = "credctl [OPTIONS] <COMMAND>\n       \
                      credctl [OPTIONS] --modify-user-state --uid <N> --action <ACTION> [--json]"
)]
pub struct Cli {
    /// credd's admin socket
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = ADMIN_SOCKET_ENV,
        default_value = DEFAULT_ADMIN_SOCKET
    )]
    pub socket: PathBuf,

    #[command(flatten)]
    pub modify: ModifyUserState,

    /// Absent only with `--modify-user-state` (checked by [`Cli::resolve`]).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A command line clap accepted, with the operator guide's form resolved to the subcommand it
/// stands for.
#[derive(Debug)]
pub struct Invocation {
    pub socket: PathBuf,
    pub command: Command,
}

impl Cli {
    /// Parses the process's arguments. Usage errors, `--help` and `--version` end the process
    /// through clap (usage errors exit 2).
    pub fn invocation() -> Invocation {
        Cli::try_parse()
            .and_then(Cli::resolve)
            .unwrap_or_else(|e| e.exit())
    }

    /// What clap cannot check itself: `--modify-user-state` stands in for a subcommand, so it
    /// conflicts with every subcommand, and one of the two is required.
    pub fn resolve(self) -> Result<Invocation, clap::Error> {
        let Cli {
            socket,
            modify,
            command,
        } = self;
        let command = match (modify.modify_user_state, command) {
            (false, Some(command)) => command,
            (true, None) => modify.command()?,
            (true, Some(sub)) => {
                return Err(Cli::command().error(
                    ErrorKind::ArgumentConflict,
                    format!(
                        "the argument '--modify-user-state' cannot be used with the subcommand \
                         '{}'",
                        sub.name()
                    ),
                ));
            }
            // clap's own --modify-user-state requirements make --uid, --action and --json
            // impossible here; only --socket (or nothing at all) can be left.
            (false, None) => {
                return Err(Cli::command().error(
                    ErrorKind::MissingSubcommand,
                    "'credctl' requires a subcommand (or --modify-user-state) but none was \
                     provided",
                ));
            }
        };
        Ok(Invocation { socket, command })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Set an account's password, read from standard input
    Passwd(PasswdArgs),
    /// Show lockout state: of one account, of every account with failures or a lock, or the
    /// daemon's counters
    Status(StatusArgs),
    /// Lock an account until an administrator unlocks it
    Lock(LockArgs),
    /// Lift an account's lock and clear its failure count
    Unlock(TargetArgs),
    /// Issue a temporary access code; standard output gets the code alone
    ///
    /// The password is removed (unless --keep-password), a new one is required at the next
    /// login, locks are cleared and the account's sessions revoked. The code is shown once;
    /// standard error gets the account, the expiry and the number of sessions revoked.
    Reset(ResetArgs),
    /// List registered login sessions: of one account, or of every account
    Sessions(SessionsArgs),
    /// Show audit events, oldest first, or verify the audit chain (`audit verify`)
    ///
    /// Without a subcommand: every event, or those about --user, since --since. `audit verify`
    /// walks the chain of MACs and exits 3 when a row was edited, deleted or reordered.
    #[command(args_conflicts_with_subcommands = true)]
    Audit(AuditArgs),
    /// List the alerts of credd's detectors (sprays, distributed guessing, reset bursts, …),
    /// oldest first, or acknowledge one (`alerts ack ID`, audited)
    ///
    /// Each alert is an audit event `alert_<kind>`; its id is the event's id. docs/alerts.md.
    #[command(args_conflicts_with_subcommands = true)]
    Alerts(AlertsArgs),
    /// Check the database, its schema, the audit chain and file permissions; exit 3 on a finding
    Check(CheckArgs),
    /// Apply a CSV file of account changes in one transaction (docs/import.md), or take over the
    /// hashes of a shadow file (--from-shadow, docs/migration.md)
    ///
    /// The whole file is checked first; every problem is shown as FILE:LINE: field: message and
    /// nothing is changed. Columns: user, action (add, remove, reset, lock, unlock, disable,
    /// enable, set-hash), and optionally uid, password_hash, must_change, ttl, reason. The codes of
    /// reset rows go only to the --codes-out file.
    Import(ImportArgs),
    /// Write a consistent copy of the live database to FILE (new, mode 0600); root only
    ///
    /// credd takes the snapshot while logins go on and checks it; credctl checks its size and
    /// SHA-256. The copy holds every password hash: keep it as safe as the database. Back up
    /// audit.key (and the pepper file, if any) once, separately: they do not change.
    Backup(BackupArgs),
    /// Replace the database with a backup, credd stopped (docs/operations.md)
    ///
    /// The copy is checked — SQLite's integrity check; exactly the schema credd creates, no
    /// trigger, view or extra table or index; the backup's HMAC and the audit chain under this
    /// host's audit key — and put in place atomically; refused while a credd holds the state
    /// directory. credd records the restore (`backup_restored`) at its next start.
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to create; an existing file is never replaced
    pub file: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file written by `credctl backup`
    pub file: std::path::PathBuf,
    /// credd's state directory
    #[arg(long, default_value = credd_proto::paths::DEFAULT_STATE_DIR)]
    pub state_dir: std::path::PathBuf,
    /// Restore a copy whose HMAC or audit chain does not verify under this host's audit key
    /// (another host's backup, an edited one, or a plain copy of credd.db); audited as forced.
    /// A copy whose schema is not credd's is refused even so
    #[arg(long)]
    pub force_foreign: bool,
}

impl Command {
    /// The subcommand's name on the command line, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::User(_) => "user",
            Command::Passwd(_) => "passwd",
            Command::Status(_) => "status",
            Command::Lock(_) => "lock",
            Command::Unlock(_) => "unlock",
            Command::Reset(_) => "reset",
            Command::Sessions(_) => "sessions",
            Command::Audit(_) => "audit",
            Command::Alerts(_) => "alerts",
            Command::Check(_) => "check",
            Command::Import(_) => "import",
            Command::Backup(_) => "backup",
            Command::Restore(_) => "restore",
        }
    }
}

/// The operator guide's form: `credctl --modify-user-state --uid=N --action=reset|lock|unlock`,
/// the same as `credctl reset|lock|unlock --uid N`. Top-level flags rather than a subcommand;
/// they need each other, and [`Cli::resolve`] keeps them apart from every subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "The operator guide's form (instead of a command)")]
pub struct ModifyUserState {
    /// Reset, lock or unlock the account with --uid: `reset --uid N`, `lock --uid N` or
    /// `unlock --uid N`
    #[arg(long, requires_all = ["modify_uid", "action"])]
    pub modify_user_state: bool,
    /// The account's uid
    #[arg(
        id = "modify_uid",
        long = "uid",
        value_name = "N",
        value_parser = uid_parser(),
        requires = "modify_user_state"
    )]
    pub uid: Option<u32>,
    /// What to do to the account
    #[arg(
        long,
        value_enum,
        value_name = "ACTION",
        requires = "modify_user_state"
    )]
    pub action: Option<Action>,
    /// With --action=reset: print the code as a JSON object
    #[arg(id = "modify_json", long = "json", requires = "modify_user_state")]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Action {
    Reset,
    Lock,
    Unlock,
}

impl ModifyUserState {
    /// The subcommand this form stands for.
    fn command(self) -> Result<Command, clap::Error> {
        // clap makes --modify-user-state require both.
        let (Some(uid), Some(action)) = (self.uid, self.action) else {
            return Err(Cli::command().error(
                ErrorKind::MissingRequiredArgument,
                "--modify-user-state needs --uid=N and --action=reset|lock|unlock",
            ));
        };
        let target = TargetArgs {
            name: None,
            uid: Some(uid),
        };
        match action {
            Action::Reset => Ok(Command::Reset(ResetArgs {
                target,
                ttl_seconds: None,
                keep_password: false,
                json: self.json,
            })),
            _ if self.json => Err(Cli::command().error(
                ErrorKind::ArgumentConflict,
                "the argument '--json' applies only to --action=reset",
            )),
            Action::Lock => Ok(Command::Lock(LockArgs {
                target,
                reason: None,
            })),
            Action::Unlock => Ok(Command::Unlock(target)),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (without --password-stdin it has no password and cannot log in yet)
    Add(UserAddArgs),
    /// Delete an account
    Remove(NameArg),
    /// List every account
    List(JsonFlag),
    /// Show one account
    Show(UserShowArgs),
    /// Refuse logins to an account
    Disable(NameArg),
    /// Allow logins to a disabled account again
    Enable(NameArg),
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// Account name
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// Account name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Numeric uid, when NSS does not know the name
    #[arg(long, value_name = "N", value_parser = uid_parser())]
    pub uid: Option<u32>,
    /// Read the initial password from standard input (one line)
    #[arg(long)]
    pub password_stdin: bool,
    /// Require a new password at the next login
    #[arg(long)]
    pub must_change: bool,
}

#[derive(Debug, Args)]
pub struct UserShowArgs {
    /// Account name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Print the account as a JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Account name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Read the new password from standard input (one line); required
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// Require a new password at the next login
    #[arg(long)]
    pub must_change: bool,
}

/// `status [NAME | --uid N] [--json]` and `status --daemon [--json]`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Account name; without NAME or --uid, every account with failures or a lock
    #[arg(value_name = "NAME", conflicts_with = "uid")]
    pub name: Option<String>,
    /// The account with this uid, instead of NAME
    #[arg(long, value_name = "N", value_parser = uid_parser())]
    pub uid: Option<u32>,
    /// Show the daemon's counters instead of accounts
    #[arg(long, conflicts_with_all = ["name", "uid"])]
    pub daemon: bool,
    /// Print JSON: an object for one account or the daemon, an array for the listing
    #[arg(long)]
    pub json: bool,
}

/// Exactly one of NAME and `--uid`: the account `lock`, `unlock` and `reset` act on.
#[derive(Debug, Args)]
#[group(id = "target", required = true, multiple = false)]
pub struct TargetArgs {
    /// Account name
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// The account with this uid, instead of NAME
    #[arg(long, value_name = "N", value_parser = uid_parser())]
    pub uid: Option<u32>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Why, kept with the lock and shown by `status` (at most 255 bytes, no control characters)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// `reset NAME | --uid N [--ttl DUR] [--keep-password] [--json]`
#[derive(Debug, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How long the code is valid, from 1m to 24h, e.g. 90s, 15m, 1h30m (default: credd's
    /// [codes] ttl)
    #[arg(long = "ttl", value_name = "DUR", value_parser = parse_ttl)]
    pub ttl_seconds: Option<u64>,
    /// Keep the current password usable next to the code
    #[arg(long)]
    pub keep_password: bool,
    /// Print the code, the account and the expiry as a JSON object
    #[arg(long)]
    pub json: bool,
}

/// `sessions [NAME] [--json]`
#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// Account name; without it, every account's sessions
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

/// `audit [--user NAME] [--since TIME] [--json]` and `audit verify [--json]`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// `verify`; absent: list events
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    #[command(flatten)]
    pub list: AuditListArgs,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the audit chain; exit 3 when it is broken
    Verify(ReportArgs),
}

/// `audit [--user NAME] [--since TIME] [--json]`
#[derive(Debug, Args)]
pub struct AuditListArgs {
    /// Only events about this account
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only events at or after TIME: RFC 3339 (2026-01-02T03:04:05Z, or with an offset such as
    /// +02:00), or how long ago (30m, 1h, 2d, 1d12h)
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<String>,
    /// Print a JSON array of events instead of one line per event
    #[arg(long)]
    pub json: bool,
}

/// `alerts [--since TIME] [--json]` and `alerts ack ID`.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// `ack`; absent: list alerts
    #[command(subcommand)]
    pub command: Option<AlertsCommand>,
    /// Only alerts at or after TIME: RFC 3339, or how long ago (30m, 1h, 2d)
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<String>,
    /// Print a JSON array of alerts instead of one line per alert
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Acknowledge the alert with this id (32 hex digits, from `credctl alerts`)
    Ack {
        /// The alert's id
        id: String,
    },
}

/// `audit verify [--json]` and `check [--json]`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Print the report as a JSON object (the exit status still tells about a finding)
    #[arg(long)]
    pub json: bool,
}

/// `check [--json]`
pub type CheckArgs = ReportArgs;

/// `import FILE|- [--dry-run] [--codes-out FILE] [--ttl DUR] [--allow-bulk] [--json]` and
/// `import --from-shadow [FILE|-] [--users A,B] [--replace] [--lock-shadow] [--dry-run] [--json]`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file, or - for standard input; with --from-shadow, the shadow file (default
    /// /etc/shadow), or - for `getent shadow` output on standard input
    #[arg(value_name = "FILE", required_unless_present = "from_shadow")]
    pub file: Option<PathBuf>,
    /// Check everything, credd included, and show what would happen; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// A new file (mode 0600, never overwritten) for the codes of reset rows, as CSV
    /// user,code,expires_at; required when the file has reset rows
    #[arg(long, value_name = "FILE", conflicts_with = "from_shadow")]
    pub codes_out: Option<PathBuf>,
    /// Lifetime of the codes of reset rows without a ttl, from 1m to 24h (default: credd's
    /// [codes] ttl)
    #[arg(long = "ttl", value_name = "DUR", value_parser = parse_ttl, conflicts_with = "from_shadow")]
    pub ttl_seconds: Option<u64>,
    /// Let the reset rows exceed the reset rate limits (audited as such)
    #[arg(long, conflicts_with = "from_shadow")]
    pub allow_bulk: bool,
    /// Print credd's summary as a JSON object, with "codes_out"
    #[arg(long)]
    pub json: bool,
    /// Take over the password hashes of a shadow file (docs/migration.md): each account's hash
    /// as it is, upgraded to credd's own at its first login; locked, empty and unknown entries
    /// are skipped with their reason
    #[arg(long)]
    pub from_shadow: bool,
    /// With --from-shadow: only these accounts (comma-separated); each must have an entry
    #[arg(
        long,
        value_name = "A,B",
        value_delimiter = ',',
        requires = "from_shadow"
    )]
    pub users: Vec<String>,
    /// With --from-shadow: give accounts credd already holds the shadow hash (otherwise they are
    /// skipped)
    #[arg(long, requires = "from_shadow")]
    pub replace: bool,
    /// With --from-shadow, from /etc/shadow itself, as root: once the import is done, lock each
    /// imported account's entry in /etc/shadow (usermod -L), so that no PAM stack can fall
    /// through to it
    #[arg(long, requires = "from_shadow", conflicts_with = "dry_run")]
    pub lock_shadow: bool,
}

/// Shortest and longest lifetime `reset --ttl` accepts, in seconds.
pub const MIN_TTL_SECONDS: u64 = 60;
pub const MAX_TTL_SECONDS: u64 = 24 * 3600;

/// `reset --ttl`, `import --ttl` and an import file's `ttl` column: a duration from 1m to 24h, in
/// seconds.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let seconds = parse_duration(text)?;
    if (MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err("a code's lifetime must be from 1m to 24h".into())
    }
}

/// A duration as credd's config writes them, in seconds: NUMBER UNIT pairs with the units `h`,
/// `m` and `s`, each at most once and in that order, nothing else ("90s", "15m", "1h", "1h30m").
/// Too large a number saturates, so that range checks refuse it.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    parse_units(text, &CONFIG_UNITS)
        .ok_or_else(|| "not a duration like 90s, 15m, 1h or 1h30m".to_string())
}

/// Units of credd's config durations, largest first, with their length in seconds.
const CONFIG_UNITS: [(u8, u64); 3] = [(b'h', 3600), (b'm', 60), (b's', 1)];

/// Units of `audit --since`'s "that long ago": the config's and days.
const AGO_UNITS: [(u8, u64); 4] = [(b'd', 86_400), (b'h', 3600), (b'm', 60), (b's', 1)];

/// NUMBER UNIT pairs with the given units, each at most once and largest first; the total in
/// seconds, saturating. `None` for anything else.
fn parse_units(text: &str, units: &[(u8, u64)]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total: u64 = 0;
    // The scale of the previous unit: each unit must be smaller than the one before it.
    let mut previous = u64::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, tail) = rest.split_at(digits);
        let unit = *tail.as_bytes().first()?;
        let &(_, scale) = units.iter().find(|(u, _)| *u == unit)?;
        if number.is_empty() || scale >= previous {
            return None;
        }
        previous = scale;
        // Only ASCII digits, so the only possible failure is overflow.
        let number: u64 = number.parse().unwrap_or(u64::MAX);
        total = total.saturating_add(number.saturating_mul(scale));
        rest = &tail[1..];
    }
    Some(total)
}

/// `audit --since`: the time as the canonical RFC 3339 UTC text credd expects
/// (`2026-01-02T03:04:05Z`), from the clock for "that long ago".
fn parse_since(text: &str) -> Result<String, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    since_at(text, now)
}

/// [`parse_since`] with the current time given, in seconds since the epoch. A duration longer
/// than the time since 1970 means everything: the epoch.
pub fn since_at(text: &str, now: u64) -> Result<String, String> {
    if let Some(ago) = parse_units(text, &AGO_UNITS) {
        return Ok(format_rfc3339(now.saturating_sub(ago)));
    }
    match parse_rfc3339(text) {
        Some(Ok(unix)) => Ok(format_rfc3339(unix)),
        Some(Err(why)) => Err(why.into()),
        None => Err("not a time like 2026-01-02T03:04:05Z or a duration like 30m, 1h or 2d".into()),
    }
}

/// Strict RFC 3339: `YYYY-MM-DDTHH:MM:SS`, optional fractional seconds (dropped), then `Z` or
/// `+HH:MM`/`-HH:MM`; upper-case `T` and `Z`, no leap second. Seconds since the epoch; `None`
/// when the text does not have that shape, `Some(Err)` when it does but names no usable time.
fn parse_rfc3339(text: &str) -> Option<Result<u64, &'static str>> {
    let b = text.as_bytes();
    let number = |at: usize, len: usize| -> Option<i64> {
        let digits = b.get(at..at + len)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    let mut i = 19;
    if at(i, b'.') {
        let fraction = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if fraction == 0 {
            return None;
        }
        i += 1 + fraction;
    }
    let offset = match b.get(i..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (number(i + 1, 2)?, number(i + 4, 2)?);
            if hours > 23 || minutes > 59 {
                return Some(Err("the offset from UTC is out of range"));
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Some(Err("no such date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Some(Err("no such time of day"));
    }
    let unix =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(u64::try_from(unix).map_err(|_| "a time before 1970"))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch as RFC 3339 UTC, `2026-01-02T03:04:05Z` (Hinnant's `civil_from_days`).
pub fn format_rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A uid as given on the command line. u32::MAX is (uid_t)-1, the "no uid" sentinel of chown(2)
/// and setresuid(2), so it is refused.
fn uid_parser() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(..i64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Invocation, clap::Error> {
        Cli::try_parse_from(std::iter::once("credctl").chain(args.iter().copied()))
            .and_then(Cli::resolve)
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn user_add_with_every_flag() {
        let cli = parse(&[
            "user",
            "add",
            "alice",
            "--uid",
            "1001",
            "--password-stdin",
            "--must-change",
        ])
        .unwrap();
        match cli.command {
            Command::User(UserCommand::Add(a)) => {
                assert_eq!(a.name, "alice");
                assert_eq!(a.uid, Some(1001));
                assert!(a.password_stdin && a.must_change);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn user_add_defaults() {
        let cli = parse(&["user", "add", "bob"]).unwrap();
        match cli.command {
            Command::User(UserCommand::Add(a)) => {
                assert_eq!(a.uid, None);
                assert!(!a.password_stdin && !a.must_change);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn uid_must_be_a_real_uid() {
        for bad in ["-1", "4294967295", "4294967296", "abc"] {
            let err = parse(&["user", "add", "bob", "--uid", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        assert!(parse(&["user", "add", "bob", "--uid", "0"]).is_ok());
        assert!(parse(&["user", "add", "bob", "--uid", "4294967294"]).is_ok());
    }

    #[test]
    fn listing_and_show_take_json() {
        match parse(&["user", "list", "--json"]).unwrap().command {
            Command::User(UserCommand::List(f)) => assert!(f.json),
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["user", "show", "carol"]).unwrap().command {
            Command::User(UserCommand::Show(s)) => {
                assert_eq!(s.name, "carol");
                assert!(!s.json);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn enable_disable_remove_take_a_name() {
        for (verb, name) in [("enable", "a"), ("disable", "b"), ("remove", "c")] {
            let cli = parse(&["user", verb, name]).unwrap();
            let got = match cli.command {
                Command::User(UserCommand::Enable(n))
                | Command::User(UserCommand::Disable(n))
                | Command::User(UserCommand::Remove(n)) => n.name,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(got, name);
            assert_eq!(parse(&["user", verb]).unwrap_err().exit_code(), 2);
        }
    }

    #[test]
    fn passwd_requires_password_stdin() {
        let err = parse(&["passwd", "alice"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        assert_eq!(err.exit_code(), 2);
        match parse(&["passwd", "alice", "--password-stdin", "--must-change"])
            .unwrap()
            .command
        {
            Command::Passwd(p) => assert!(p.password_stdin && p.must_change),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn status(args: &[&str]) -> StatusArgs {
        let mut all = vec!["status"];
        all.extend_from_slice(args);
        match parse(&all).unwrap().command {
            Command::Status(s) => s,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn status_takes_a_name_a_uid_or_nothing() {
        let s = status(&[]);
        assert_eq!(
            (s.name, s.uid, s.daemon, s.json),
            (None, None, false, false)
        );
        let s = status(&["alice", "--json"]);
        assert_eq!(
            (s.name.as_deref(), s.uid, s.json),
            (Some("alice"), None, true)
        );
        let s = status(&["--uid", "1001"]);
        assert_eq!((s.name, s.uid), (None, Some(1001)));
        let s = status(&["--daemon", "--json"]);
        assert!(s.daemon && s.json);
    }

    #[test]
    fn status_refuses_conflicting_selections() {
        for args in [
            &["status", "alice", "--uid", "1001"][..],
            &["status", "--daemon", "alice"],
            &["status", "--uid", "1001", "--daemon"],
            &["status", "alice", "bob"],
            &["status", "--uid", "4294967295"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
        let err = parse(&["status", "alice", "--uid", "1"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    }

    #[test]
    fn lock_and_unlock_take_exactly_one_target() {
        match parse(&["lock", "alice", "--reason", "left the company"])
            .unwrap()
            .command
        {
            Command::Lock(l) => {
                assert_eq!(l.target.name.as_deref(), Some("alice"));
                assert_eq!(l.target.uid, None);
                assert_eq!(l.reason.as_deref(), Some("left the company"));
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["lock", "--uid", "1001"]).unwrap().command {
            Command::Lock(l) => {
                assert_eq!(
                    (l.target.name, l.target.uid, l.reason),
                    (None, Some(1001), None)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["unlock", "--uid", "0"]).unwrap().command {
            Command::Unlock(t) => assert_eq!((t.name, t.uid), (None, Some(0))),
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["unlock", "bob"]).unwrap().command {
            Command::Unlock(t) => assert_eq!((t.name.as_deref(), t.uid), (Some("bob"), None)),
            other => panic!("unexpected {other:?}"),
        }

        for verb in ["lock", "unlock"] {
            let err = parse(&[verb]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{verb}");
            assert_eq!(err.exit_code(), 2);
            let err = parse(&[verb, "alice", "--uid", "1001"]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ArgumentConflict, "{verb}");
            assert_eq!(err.exit_code(), 2);
            assert_eq!(
                parse(&[verb, "--json", "alice"]).unwrap_err().exit_code(),
                2
            );
            assert_eq!(parse(&[verb, "--daemon"]).unwrap_err().exit_code(), 2);
        }
        // A reason alone names no account.
        let err = parse(&["lock", "--reason", "x"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            parse(&["unlock", "bob", "--reason", "x"])
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    fn reset(args: &[&str]) -> ResetArgs {
        let mut all = vec!["reset"];
        all.extend_from_slice(args);
        match parse(&all).unwrap().command {
            Command::Reset(r) => r,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reset_takes_exactly_one_target_and_its_options() {
        let r = reset(&["alice"]);
        assert_eq!(r.target.name.as_deref(), Some("alice"));
        assert_eq!(
            (r.target.uid, r.ttl_seconds, r.keep_password, r.json),
            (None, None, false, false)
        );
        let r = reset(&[
            "--uid",
            "1001",
            "--ttl",
            "1h30m",
            "--keep-password",
            "--json",
        ]);
        assert_eq!(
            (
                r.target.name,
                r.target.uid,
                r.ttl_seconds,
                r.keep_password,
                r.json
            ),
            (None, Some(1001), Some(5400), true, true)
        );
        let err = parse(&["reset"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        let err = parse(&["reset", "alice", "--uid", "1001"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
        for args in [
            &["reset", "alice", "bob"][..],
            &["reset", "--ttl", "15m"],
            &["reset", "alice", "--reason", "x"],
            &["reset", "--uid", "4294967295"],
        ] {
            assert_eq!(parse(args).unwrap_err().exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn reset_ttl_is_one_minute_to_one_day() {
        for (text, seconds) in [
            ("1m", 60),
            ("60s", 60),
            ("90s", 90),
            ("15m", 900),
            ("1h", 3600),
            ("1h30m", 5400),
            ("1h0m30s", 3630),
            ("23h59m59s", 86_399),
            ("24h", 86_400),
            ("1440m", 86_400),
            ("086400s", 86_400),
        ] {
            assert_eq!(
                reset(&["alice", "--ttl", text]).ttl_seconds,
                Some(seconds),
                "{text}"
            );
        }
        for text in [
            "59s",
            "0m",
            "0s",
            "24h1s",
            "25h",
            "1441m",
            "99999999999999999999999h",
        ] {
            let err = parse(&["reset", "alice", "--ttl", text]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{text}");
            assert_eq!(err.exit_code(), 2);
            let message = err.to_string();
            assert!(message.contains("from 1m to 24h"), "{text}: {message}");
        }
        for text in [
            "", "15", "m", "15min", "1.5h", "1H", " 15m", "15m ", "+15m", "-15m", "15m30", "30m1h",
            "1h1h", "1m1m", "15mm", "1d", "1h 30m", "١٥m",
        ] {
            let ttl = format!("--ttl={text}");
            let err = parse(&["reset", "alice", &ttl]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{text:?}");
            assert!(
                err.to_string().contains("not a duration like"),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn durations_saturate_instead_of_wrapping() {
        assert_eq!(parse_duration("18446744073709551615s"), Ok(u64::MAX));
        assert_eq!(parse_duration("18446744073709551615h"), Ok(u64::MAX));
        assert_eq!(parse_duration("5124095576030431h59m"), Ok(u64::MAX));
    }

    #[test]
    fn sessions_takes_an_optional_name() {
        match parse(&["sessions"]).unwrap().command {
            Command::Sessions(s) => assert_eq!((s.name, s.json), (None, false)),
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["sessions", "alice", "--json"]).unwrap().command {
            Command::Sessions(s) => assert_eq!((s.name.as_deref(), s.json), (Some("alice"), true)),
            other => panic!("unexpected {other:?}"),
        }
        for args in [
            &["sessions", "alice", "bob"][..],
            &["sessions", "--uid", "1001"],
        ] {
            assert_eq!(parse(args).unwrap_err().exit_code(), 2, "{args:?}");
        }
    }

    fn audit_list(args: &[&str]) -> AuditListArgs {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        match parse(&all).unwrap().command {
            Command::Audit(AuditArgs {
                command: None,
                list,
            }) => list,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn audit_lists_with_its_filters_or_verifies() {
        let a = audit_list(&[]);
        assert_eq!((a.user, a.since, a.json), (None, None, false));
        let a = audit_list(&[
            "--user",
            "alice",
            "--since",
            "2026-01-02T03:04:05Z",
            "--json",
        ]);
        assert_eq!(
            (a.user.as_deref(), a.since.as_deref(), a.json),
            (Some("alice"), Some("2026-01-02T03:04:05Z"), true)
        );
        let a = audit_list(&["--since=2026-01-02T04:04:05+01:00"]);
        assert_eq!(a.since.as_deref(), Some("2026-01-02T03:04:05Z"));
        // Relative times are resolved on the spot, to RFC 3339.
        let since = audit_list(&["--since", "2d"]).since.unwrap();
        assert!(parse_rfc3339(&since).unwrap().is_ok(), "{since}");

        for (args, json) in [
            (&["audit", "verify"][..], false),
            (&["audit", "verify", "--json"], true),
        ] {
            match parse(args).unwrap().command {
                Command::Audit(AuditArgs {
                    command: Some(AuditCommand::Verify(v)),
                    list,
                }) => {
                    assert_eq!(v.json, json, "{args:?}");
                    assert_eq!((list.user, list.since, list.json), (None, None, false));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        for (args, json) in [(&["check"][..], false), (&["check", "--json"], true)] {
            match parse(args).unwrap().command {
                Command::Check(c) => assert_eq!(c.json, json),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn audit_and_check_usage_errors_exit_2() {
        for args in [
            &["audit", "--user", "alice", "verify"][..],
            &["audit", "--json", "verify"],
            &["audit", "verify", "--user", "alice"],
            &["audit", "verify", "--since", "1h"],
            &["audit", "frob"],
            &["audit", "alice"],
            &["audit", "--user"],
            &["audit", "--uid", "1001"],
            &["audit", "--since", "1.5h"],
            &["audit", "--since", "yesterday"],
            &["check", "alice"],
            &["check", "--user", "alice"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
        }
        let err = parse(&["audit", "--since", "soon"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        assert!(
            err.to_string()
                .contains("not a time like 2026-01-02T03:04:05Z or a duration like 30m, 1h or 2d"),
            "{err}"
        );
        let err = parse(&["audit", "--since", "2026-02-30T00:00:00Z"]).unwrap_err();
        assert!(err.to_string().contains("no such date"), "{err}");
    }

    const NOW: u64 = 1_767_323_045; // 2026-01-02T03:04:05Z

    #[test]
    fn since_takes_a_duration_ago_with_days() {
        assert_eq!(format_rfc3339(NOW), "2026-01-02T03:04:05Z");
        for (text, expected) in [
            ("0s", "2026-01-02T03:04:05Z"),
            ("5s", "2026-01-02T03:04:00Z"),
            ("30m", "2026-01-02T02:34:05Z"),
            ("1h", "2026-01-02T02:04:05Z"),
            ("2d", "2025-12-31T03:04:05Z"),
            ("1d12h", "2025-12-31T15:04:05Z"),
            ("1d0h0m5s", "2026-01-01T03:04:00Z"),
            ("48h", "2025-12-31T03:04:05Z"),
            ("365d", "2025-01-02T03:04:05Z"),
            // Further back than 1970: everything.
            ("100000d", "1970-01-01T00:00:00Z"),
            ("99999999999999999999999d", "1970-01-01T00:00:00Z"),
        ] {
            assert_eq!(since_at(text, NOW).as_deref(), Ok(expected), "{text}");
        }
        for text in [
            "", "1", "d", "1D", "1w", "1y", " 1h", "1h ", "-1h", "+1h", "1h1d", "1m1m", "1.5d",
            "1d 2h", "1dd", "١d",
        ] {
            let err = since_at(text, NOW).unwrap_err();
            assert!(err.starts_with("not a time like"), "{text:?}: {err}");
        }
    }

    #[test]
    fn since_takes_strict_rfc3339_and_sends_it_in_utc() {
        for (text, expected) in [
            ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"),
            ("2026-01-02T03:04:05.999999Z", "2026-01-02T03:04:05Z"),
            ("2026-01-02T05:04:05+02:00", "2026-01-02T03:04:05Z"),
            ("2026-01-01T21:34:05-05:30", "2026-01-02T03:04:05Z"),
            ("2026-01-02T03:04:05.5-00:00", "2026-01-02T03:04:05Z"),
            ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"),
            ("2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"),
            ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
            ("1970-01-01T01:00:00+01:00", "1970-01-01T00:00:00Z"),
            ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(since_at(text, NOW).as_deref(), Ok(expected), "{text}");
        }
        for (text, why) in [
            ("2023-02-29T00:00:00Z", "no such date"),
            ("1900-02-29T00:00:00Z", "no such date"),
            ("2026-04-31T00:00:00Z", "no such date"),
            ("2026-00-10T00:00:00Z", "no such date"),
            ("2026-13-10T00:00:00Z", "no such date"),
            ("2026-01-00T00:00:00Z", "no such date"),
            ("2026-01-02T24:00:00Z", "no such time of day"),
            ("2026-01-02T03:60:00Z", "no such time of day"),
            ("2026-12-31T23:59:60Z", "no such time of day"),
            (
                "2026-01-02T03:04:05+24:00",
                "the offset from UTC is out of range",
            ),
            (
                "2026-01-02T03:04:05+01:60",
                "the offset from UTC is out of range",
            ),
            ("1969-12-31T23:59:59Z", "a time before 1970"),
            ("1970-01-01T00:00:00+00:01", "a time before 1970"),
            ("0000-01-01T00:00:00Z", "a time before 1970"),
        ] {
            assert_eq!(since_at(text, NOW), Err(why.to_string()), "{text}");
        }
        for text in [
            "2026-01-02",
            "2026-01-02T03:04Z",
            "2026-01-02T03:04:05",
            "2026-01-02 03:04:05Z",
            "2026-01-02t03:04:05Z",
            "2026-01-02T03:04:05z",
            "2026-1-02T03:04:05Z",
            "2026-01-02T03:04:05.Z",
            "2026-01-02T03:04:05Zx",
            " 2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05+0100",
            "2026-01-02T03:04:05+01",
            "+2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05UTC",
            "20260-01-02T03:04:05Z",
            "2026-01-02T03:04:0５Z",
        ] {
            let err = since_at(text, NOW).unwrap_err();
            assert!(err.starts_with("not a time like"), "{text:?}: {err}");
        }
    }

    #[test]
    fn rfc3339_round_trips() {
        for (unix, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(format_rfc3339(unix), text);
            assert_eq!(parse_rfc3339(text), Some(Ok(unix)));
        }
        // Many days from 1970 to 2103 (leap years and 2100 included), at both ends of the day.
        let mut unix = 0;
        while unix < 4_200_000_000 {
            for t in [unix, unix + 86_399] {
                let text = format_rfc3339(t);
                assert_eq!(parse_rfc3339(&text), Some(Ok(t)), "{text}");
            }
            unix += 86_400 * 7 + 3_601;
        }
    }

    #[test]
    fn ttl_durations_still_have_no_days() {
        assert_eq!(
            parse_duration("1d"),
            Err("not a duration like 90s, 15m, 1h or 1h30m".to_string())
        );
        assert_eq!(parse_units("1d", &AGO_UNITS), Some(86_400));
        assert_eq!(parse_units("1d", &CONFIG_UNITS), None);
    }

    #[test]
    fn modify_user_state_is_reset_lock_or_unlock_by_uid() {
        for args in [
            &["--modify-user-state", "--uid=5", "--action=reset"][..],
            &["--modify-user-state", "--uid", "5", "--action", "reset"],
            &["--action=reset", "--uid=5", "--modify-user-state"],
        ] {
            match parse(args).unwrap().command {
                Command::Reset(r) => {
                    assert_eq!((r.target.name, r.target.uid), (None, Some(5)), "{args:?}");
                    assert_eq!(
                        (r.ttl_seconds, r.keep_password, r.json),
                        (None, false, false)
                    );
                }
                other => panic!("{args:?}: unexpected {other:?}"),
            }
        }
        match parse(&["--modify-user-state", "--uid=5", "--action=reset", "--json"])
            .unwrap()
            .command
        {
            Command::Reset(r) => assert!(r.json),
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["--modify-user-state", "--uid=0", "--action=lock"])
            .unwrap()
            .command
        {
            Command::Lock(l) => {
                assert_eq!(
                    (l.target.name, l.target.uid, l.reason),
                    (None, Some(0), None)
                )
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["--modify-user-state", "--uid", "7", "--action", "unlock"])
            .unwrap()
            .command
        {
            Command::Unlock(t) => assert_eq!((t.name, t.uid), (None, Some(7))),
            other => panic!("unexpected {other:?}"),
        }
        let cli = parse(&[
            "--socket",
            "/tmp/m.sock",
            "--modify-user-state",
            "--uid=5",
            "--action=lock",
        ])
        .unwrap();
        assert_eq!(cli.socket, PathBuf::from("/tmp/m.sock"));
    }

    #[test]
    fn modify_user_state_needs_uid_and_action_and_no_subcommand() {
        let cases: [(&[&str], ErrorKind); 14] = [
            (&["--modify-user-state"], ErrorKind::MissingRequiredArgument),
            (
                &["--modify-user-state", "--uid=5"],
                ErrorKind::MissingRequiredArgument,
            ),
            (
                &["--modify-user-state", "--action=lock"],
                ErrorKind::MissingRequiredArgument,
            ),
            (
                &["--uid=5", "--action=lock"],
                ErrorKind::MissingRequiredArgument,
            ),
            (&["--uid=5"], ErrorKind::MissingRequiredArgument),
            (
                &["--modify-user-state", "--uid=5", "--action=delete"],
                ErrorKind::InvalidValue,
            ),
            (
                &["--modify-user-state", "--uid=5", "--action=RESET"],
                ErrorKind::InvalidValue,
            ),
            (
                &["--modify-user-state", "--uid=-1", "--action=lock"],
                ErrorKind::ValueValidation,
            ),
            (
                &["--modify-user-state", "--uid=4294967295", "--action=lock"],
                ErrorKind::ValueValidation,
            ),
            (
                &["--modify-user-state", "--uid=5", "--action=lock", "--json"],
                ErrorKind::ArgumentConflict,
            ),
            (
                &[
                    "--modify-user-state",
                    "--uid=5",
                    "--action=unlock",
                    "--json",
                ],
                ErrorKind::ArgumentConflict,
            ),
            (
                &[
                    "--modify-user-state",
                    "--uid=5",
                    "--action=lock",
                    "lock",
                    "--uid=5",
                ],
                ErrorKind::ArgumentConflict,
            ),
            (
                &[
                    "--modify-user-state",
                    "--uid=5",
                    "--action=reset",
                    "user",
                    "list",
                ],
                ErrorKind::ArgumentConflict,
            ),
            (
                &["--json", "user", "list"],
                ErrorKind::MissingRequiredArgument,
            ),
        ];
        for (args, kind) in cases {
            let err = parse(args).unwrap_err();
            assert_eq!(err.kind(), kind, "{args:?}: {err}");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
        // The form's flags belong to credctl itself, not to a subcommand.
        for args in [
            &["lock", "--uid=5", "--modify-user-state", "--action=lock"][..],
            &["reset", "--uid=5", "--action=reset"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{args:?}");
        }
        // --socket alone names no command.
        let err = parse(&["--socket", "/tmp/a.sock"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingSubcommand);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn unknown_subcommands_and_flags_are_usage_errors() {
        for args in [
            &["frobnicate"][..],
            &["user"],
            &["user", "list", "--csv"],
            &[],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    fn import(args: &[&str]) -> ImportArgs {
        let mut all = vec!["import"];
        all.extend_from_slice(args);
        match parse(&all).unwrap().command {
            Command::Import(i) => i,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn import_takes_a_file_or_stdin_and_its_flags() {
        let i = import(&["users.csv"]);
        assert_eq!(i.file, Some(PathBuf::from("users.csv")));
        assert!(!i.from_shadow && !i.replace && !i.lock_shadow && i.users.is_empty());
        assert_eq!(
            (i.dry_run, i.codes_out, i.ttl_seconds, i.allow_bulk, i.json),
            (false, None, None, false, false)
        );
        let i = import(&[
            "-",
            "--dry-run",
            "--codes-out",
            "/root/codes.csv",
            "--ttl",
            "1h30m",
            "--allow-bulk",
            "--json",
        ]);
        assert_eq!(i.file, Some(PathBuf::from("-")));
        assert_eq!(
            (i.dry_run, i.codes_out, i.ttl_seconds, i.allow_bulk, i.json),
            (
                true,
                Some(PathBuf::from("/root/codes.csv")),
                Some(5400),
                true,
                true
            )
        );
        for args in [
            &["import"][..],
            &["import", "a.csv", "b.csv"],
            &["import", "a.csv", "--ttl", "30s"],
            &["import", "a.csv", "--ttl", "1d"],
            &["import", "a.csv", "--codes-out"],
            &["import", "a.csv", "--replace"],
            &["import", "a.csv", "--users", "alice"],
            &["import", "a.csv", "--lock-shadow"],
            &["import", "--from-shadow", "--codes-out", "c.csv"],
            &["import", "--from-shadow", "--ttl", "1h"],
            &["import", "--from-shadow", "--allow-bulk"],
            &["import", "--from-shadow", "--lock-shadow", "--dry-run"],
            &["import", "--from-shadow", "a", "b"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
        }
    }

    #[test]
    fn import_from_shadow_takes_an_optional_file_and_its_flags() {
        let i = import(&["--from-shadow"]);
        assert!(i.from_shadow);
        assert_eq!(i.file, None);
        let i = import(&[
            "--from-shadow",
            "-",
            "--users",
            "alice,bob",
            "--users=carol",
            "--replace",
            "--lock-shadow",
            "--json",
        ]);
        assert_eq!(i.file, Some(PathBuf::from("-")));
        assert_eq!(i.users, ["alice", "bob", "carol"]);
        assert!(i.replace && i.lock_shadow && i.json && !i.dry_run);
        let i = import(&["/srv/old/shadow", "--from-shadow", "--dry-run"]);
        assert_eq!(i.file, Some(PathBuf::from("/srv/old/shadow")));
        assert!(i.dry_run);
    }

    #[test]
    fn socket_flag_works_before_and_after_the_subcommand() {
        let cli = parse(&["--socket", "/tmp/a.sock", "user", "list"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from("/tmp/a.sock"));
        let cli = parse(&["user", "list", "--socket", "/tmp/b.sock"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from("/tmp/b.sock"));
    }

    #[test]
    fn socket_comes_from_the_environment_when_not_given() {
        // The only test in this crate that touches the environment, so no other test races it;
        // std serialises its own environment accesses, and nothing here calls C's getenv.
        let arg = Cli::command()
            .get_arguments()
            .find(|a| a.get_id() == "socket")
            .cloned()
            .unwrap();
        assert_eq!(arg.get_env(), Some(std::ffi::OsStr::new(ADMIN_SOCKET_ENV)));
        // SAFETY: see above; no other thread of this test binary reads or writes this variable.
        unsafe { std::env::remove_var(ADMIN_SOCKET_ENV) };
        let cli = parse(&["user", "list"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from(DEFAULT_ADMIN_SOCKET));
        // SAFETY: as above.
        unsafe { std::env::set_var(ADMIN_SOCKET_ENV, "/tmp/from-env.sock") };
        let from_env = parse(&["user", "list"]).map(|c| c.socket);
        let flag_wins = parse(&["--socket", "/tmp/flag.sock", "user", "list"]).map(|c| c.socket);
        // SAFETY: as above.
        unsafe { std::env::remove_var(ADMIN_SOCKET_ENV) };
        assert_eq!(from_env.unwrap(), PathBuf::from("/tmp/from-env.sock"));
        assert_eq!(flag_wins.unwrap(), PathBuf::from("/tmp/flag.sock"));
    }
}
