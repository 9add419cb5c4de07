//! credd: the privileged credential daemon. docs/architecture.md has the map.

use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use credd::server;
use credd::system::{notify, procinfo, time as timefmt};
use credd_proto::paths;

use credd::audit::chain::{AuditKey, Event};
use credd::audit::syslog::{Outgoing, Sink};
use credd::config::Config;
use credd::crypto::hashing::{Hasher, Pepper};
use credd::error::{DaemonError, Result};
use credd::server::Server;
use credd::state::Daemon;
use credd::store::Store;
use credd::system::peer::SocketKind;

/// How long a shutdown waits for open connections before closing the store anyway; every write is
/// a transaction, so cutting one short loses nothing that was acknowledged.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The audit chain key, next to (never inside) the database.
const AUDIT_KEY_NAME: &str = "audit.key";

#[derive(Parser, Debug)]
#[command(
    name = "credd",
    version,
    about = "credd: the credential daemon behind pam_credd.so"
)]
struct Args {
    /// Configuration file; a missing file means the defaults.
    #[arg(long, value_name = "FILE", default_value = paths::DEFAULT_CONFIG)]
    config: PathBuf,
    /// Directory for pam.sock and admin.sock.
    #[arg(long, value_name = "DIR", default_value = paths::DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
    /// Directory for the database and the lock file.
    #[arg(long, value_name = "DIR", default_value = paths::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Validate the configuration, print the result and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("credd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    let config = Config::load(&args.config)?;
    if args.check_config {
        // Files the config names are part of it: a missing blocklist must fail here, not at start.
        config.password.quality()?;
        println!("credd: configuration {} is valid", args.config.display());
        return Ok(());
    }
    harden_process();

    make_dir(&args.state_dir, 0o700)?;
    make_dir(&args.runtime_dir, 0o755)?;
    // Both directories are locked: a second daemon with another state directory must not rename
    // its sockets over ours.
    let _state_lock = lock_dir(&args.state_dir)?;
    let _runtime_lock = lock_dir(&args.runtime_dir)?;
    let db_path = args.state_dir.join(paths::DATABASE_NAME);
    let key_path = args.state_dir.join(AUDIT_KEY_NAME);
    // Both were validated with the config.
    let target = config.audit.target().map_err(DaemonError::Startup)?;
    let format = config.audit.format().map_err(DaemonError::Startup)?;
    let sink = Sink::start(target, format);
    let (audit_key, key_created) = AuditKey::load_or_create_reporting(&key_path)?;
    let mut store = match Store::open(&db_path, audit_key, Arc::clone(&sink)) {
        Ok(store) => store,
        Err(e) => {
            // The audit table cannot be trusted or written: tell syslog directly.
            sink.publish([Outgoing::Critical {
                event: "integrity_failure",
                detail: e.to_string(),
            }]);
            sink.drain(Duration::from_secs(2));
            return Err(e);
        }
    };

    // A restore made while credd was stopped is audited now, in this chain.
    credd::handlers::backup::record_restore_note(&args.state_dir, &mut store)?;
    let damage = store.damage().map(str::to_owned);
    // A fresh key over an existing chain: the old key is gone and the old rows unverifiable.
    let orphaned = if key_created {
        store.audit_head().map(|(seq, _)| seq).unwrap_or(0)
    } else {
        0
    };
    let pepper = apply_pepper(&config, &mut store)?;
    warn_of_legacy_hashes(&config, &store);
    warn_of_hashes_over_cap(&config, &store);
    let daemon = Arc::new(Daemon::new(
        config,
        store,
        Arc::clone(&sink),
        key_path,
        pepper,
    )?);
    if orphaned > 0 {
        daemon.record(&Event {
            name: "integrity_failure",
            outcome: "failed",
            detail: format!(
                "the audit key {} was missing and a new one was created: rows 1 to {orphaned} can no longer be verified",
                daemon.audit_key_path.display()
            ),
            ..Default::default()
        });
    }
    if let Some(damage) = damage {
        eprintln!(
            "credd: the database failed its quick check; serving on, changes may fail: {damage}"
        );
        daemon.record(&Event {
            name: "integrity_failure",
            outcome: "failed",
            detail: format!("quick_check at start: {damage}"),
            ..Default::default()
        });
    }
    daemon.record(&Event {
        name: "daemon_started",
        outcome: "ok",
        detail: format!(
            "pid={} version={}",
            std::process::id(),
            env!("CARGO_PKG_VERSION")
        ),
        ..Default::default()
    });
    daemon.checkpoint("start");
    let server = Arc::new(Server::new(Arc::clone(&daemon)));

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|e| DaemonError::Startup(format!("cannot install signal handlers: {e}")))?;
    let stop = server.stopper();
    let reloading = Arc::clone(&daemon);
    let config_path = args.config.clone();
    let runtime_dir = args.runtime_dir.clone();
    let signal_thread = std::thread::spawn(move || {
        let mut reloads = 0u64;
        for sig in signals.forever() {
            if sig == signal_hook::consts::SIGHUP {
                reloads += 1;
                notify::reloading();
                let refused = reload(&reloading, &config_path);
                notify::reloaded(match refused {
                    None => "serving; configuration reloaded",
                    Some(_) => {
                        "serving; the last reload was refused, the running configuration stays"
                    }
                });
                notify::write_reload_status(&runtime_dir, reloads, refused.as_deref());
                continue;
            }
            notify::stopping();
            eprintln!("credd: received signal {sig}, shutting down");
            stop();
            break;
        }
    });

    daemon.start_audit_writer();
    let writer = Arc::clone(&daemon);
    std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || {
            credd::crypto::pool::lower_priority();
            writer.run_audit_writer()
        })
        .map_err(|e| DaemonError::Startup(format!("cannot start the audit writer: {e}")))?;
    spawn_maintenance(Arc::clone(&daemon));
    credd::handlers::alerts::spawn_ticker(Arc::clone(&daemon));

    let admin_gid = daemon.admin_group.as_ref().map(|g| g.gid);
    // The sockets appear only now, with their final modes: a client that can connect can be served.
    let sockets = vec![
        server::bind(
            &args.runtime_dir,
            paths::PAM_SOCKET_NAME,
            0o666,
            None,
            SocketKind::Pam,
        )?,
        server::bind(
            &args.runtime_dir,
            paths::ADMIN_SOCKET_NAME,
            if admin_gid.is_some() { 0o660 } else { 0o600 },
            admin_gid,
            SocketKind::Admin,
        )?,
    ];
    eprintln!(
        "credd: ready (pid {}, database {}, sockets in {})",
        std::process::id(),
        db_path.display(),
        args.runtime_dir.display()
    );
    // systemd (Type=notify): `systemctl start` returns now, not before.
    notify::ready("serving");
    server.run(sockets, SHUTDOWN_GRACE);
    daemon.pool.shutdown();
    daemon.record(&Event {
        name: "daemon_stopped",
        outcome: "ok",
        ..Default::default()
    });
    daemon.stop_audit();
    daemon.checkpoint("stop");
    if let Err(e) = daemon.store().truncate_wal() {
        eprintln!("credd: cannot checkpoint the write-ahead log at stop: {e}");
    }
    sink.drain(SHUTDOWN_GRACE);
    drop(signal_thread);
    eprintln!("credd: stopped");
    Ok(())
}

/// SIGHUP: reads the config file again and applies it from the next request on. A file that does
/// not load (syntax, a value out of range, a blocklist that cannot be read, a config others can
/// write) changes nothing: credd goes on with what it has and says why (returned, for the
/// reload status the unit's `ExecReload=` reads).
fn reload(daemon: &Daemon, path: &Path) -> Option<String> {
    let loaded = Config::load(path).and_then(|config| daemon.reload(config));
    match loaded {
        Ok(needs_restart) => {
            let pending = if needs_restart.is_empty() {
                String::new()
            } else {
                format!(" needs_restart={}", needs_restart.join(","))
            };
            eprintln!(
                "credd: configuration reloaded from {}{pending}",
                path.display()
            );
            daemon.record(&Event {
                name: "config_reloaded",
                outcome: "ok",
                detail: format!("path={}{pending}", path.display()),
                ..Default::default()
            });
            None
        }
        Err(e) => {
            eprintln!("credd: configuration not reloaded, the running one stays: {e}");
            daemon.record(&Event {
                name: "config_reloaded",
                outcome: "refused",
                detail: format!("path={} error={e}", path.display()),
                ..Default::default()
            });
            Some(e.to_string())
        }
    }
}

/// How often the maintenance task runs: expired reset codes are deleted (each with a
/// `code_expired` audit row; an expired code is refused from the moment it expires, the purge only
/// tidies and records), syslog drops are audited once delivery works again, and the audit chain
/// head is checkpointed to syslog every `[audit] checkpoint_interval`.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(10);

fn spawn_maintenance(daemon: Arc<Daemon>) {
    let spawned = std::thread::Builder::new()
        .name("maintenance".into())
        .spawn(move || {
            let mut last_checkpoint = std::time::Instant::now();
            loop {
                if let Err(e) = daemon.store().purge_expired_codes(timefmt::now_unix()) {
                    eprintln!("credd: purging expired codes failed: {e}");
                }
                if let Err(e) = daemon
                    .store()
                    .prune_sessions(procinfo::alive, timefmt::now_unix())
                {
                    eprintln!("credd: pruning ended sessions failed: {e}");
                }
                let dropped = daemon.sink.take_unreported_drops_if_delivering();
                if dropped > 0 {
                    daemon.record(&Event {
                        name: "syslog_dropped",
                        outcome: "dropped",
                        detail: format!("{dropped} events could not be queued for syslog"),
                        ..Default::default()
                    });
                }
                if last_checkpoint.elapsed()
                    >= daemon.current_policy().config.audit.checkpoint_interval
                {
                    daemon.checkpoint("periodic");
                    last_checkpoint = std::time::Instant::now();
                }
                std::thread::sleep(MAINTENANCE_INTERVAL);
            }
        });
    if let Err(e) = spawned {
        eprintln!("credd: cannot start the maintenance task: {e}");
    }
}

/// New files private by default (database, WAL, sockets before their chmod), and no core dumps or
/// ptrace by other same-uid processes: memory holds passwords in flight.
fn harden_process() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("credd: cannot make the process undumpable: {e}");
    }
}

/// Accounts whose hash credd keeps but will not verify: legacy crypt(3) hashes imported while
/// `[hashing] accept_legacy` was on, which was turned off since. Their users cannot log in until
/// it is on again or they get a new password; say so at start rather than at their first login.
fn warn_of_legacy_hashes(config: &Config, store: &Store) {
    if config.hashing.accept_legacy {
        return;
    }
    let legacy: Vec<String> = match store.accounts_per_scheme() {
        Ok(schemes) => schemes
            .into_iter()
            .filter(|(scheme, _)| {
                credd_proto::HashScheme::ALL
                    .iter()
                    .any(|s| s.is_legacy() && s.name() == scheme)
            })
            .map(|(scheme, n)| format!("{n} {scheme}"))
            .collect(),
        Err(e) => {
            eprintln!("credd: cannot count the stored hash schemes: {e}");
            return;
        }
    };
    if !legacy.is_empty() {
        eprintln!(
            "credd: accounts with legacy hashes that do not verify while [hashing] \
             accept_legacy = false: {}; reset them (credctl reset) or turn it on",
            legacy.join(", ")
        );
    }
}

/// Accounts whose stored hash asks for more work than `[hashing]`'s cost caps (issue 15 R3): their
/// logins fail without running it. Said at start, as `credctl check` says it.
fn warn_of_hashes_over_cap(config: &Config, store: &Store) {
    let hasher = Hasher::new(config.hashing.iterations, None)
        .accepting_legacy(config.hashing.accept_legacy)
        .with_caps(config.hashing.cost_caps());
    match store.accounts_over_cap(&hasher) {
        Ok((_, over)) if over.is_empty() => {}
        Ok((_, over)) => {
            let mut names: Vec<&str> = over
                .iter()
                .take(20)
                .map(|(name, _)| name.as_str())
                .collect();
            if over.len() > 20 {
                names.push("…");
            }
            eprintln!(
                "credd: {} accounts have hashes over the [hashing] cost caps, which logins never \
                 run (they fail): {}; the first: {}; give them new passwords (credctl passwd or \
                 reset) or raise the cap; credctl check lists them",
                over.len(),
                names.join(", "),
                over[0].1
            );
        }
        Err(e) => eprintln!("credd: cannot check the stored hashes' costs: {e}"),
    }
}

/// Loads `[hashing] pepper_file` and seals every plain hash with it. Refuses to start when stored
/// hashes were sealed with a pepper other than the configured one (or with one while none is
/// configured): every such account would fail every login, silently.
fn apply_pepper(config: &Config, store: &mut Store) -> Result<Option<Pepper>> {
    let pepper = config
        .hashing
        .pepper_file
        .as_deref()
        .map(Pepper::load)
        .transpose()?;
    let ours = pepper.as_ref().map(|p| p.id().to_string());
    let foreign: Vec<String> = store
        .pepper_ids()?
        .into_iter()
        .filter(|(id, _)| Some(id) != ours.as_ref())
        .map(|(id, n)| format!("{n} with key id {id}"))
        .collect();
    if !foreign.is_empty() {
        return Err(DaemonError::Startup(format!(
            "stored hashes are peppered ({}) but hashing.pepper_file {}; restore the pepper file \
             these hashes were sealed with (they cannot be verified without it)",
            foreign.join(", "),
            match &ours {
                Some(id) => format!("has key id {id}"),
                None => "is not set".to_string(),
            }
        )));
    }
    if let Some(pepper) = pepper {
        let hasher = Hasher::new(config.hashing.iterations, Some(pepper));
        let sealed = store.seal_hashes(&hasher)?;
        if sealed > 0 {
            eprintln!("credd: sealed {sealed} stored hashes with the pepper");
        }
        return Ok(hasher.into_pepper());
    }
    Ok(None)
}

/// Creates `path` with exactly `mode` (the umask would otherwise narrow it: the runtime directory
/// must stay searchable so that every user can reach pam.sock). An existing directory keeps the
/// mode its owner gave it (e.g. systemd's RuntimeDirectory=), but must be ours and writable by
/// nobody else: whoever can write the runtime directory can put a fake pam.sock in it and collect
/// passwords.
fn make_dir(path: &Path, mode: u32) -> Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let me = nix::unistd::geteuid().as_raw();
        let problem = if !meta.is_dir() {
            Some("is not a directory".to_string())
        } else if meta.uid() != me && meta.uid() != 0 {
            Some(format!("is owned by uid {}", meta.uid()))
        } else if meta.mode() & 0o022 != 0 {
            Some(format!(
                "is writable by group or others (mode {:o})",
                meta.mode() & 0o7777
            ))
        } else {
            None
        };
        return match problem {
            Some(problem) => Err(DaemonError::Startup(format!(
                "{} {problem}; refusing to use it",
                path.display()
            ))),
            None => Ok(()),
        };
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| DaemonError::io(path, e))
}

/// One daemon per state directory (a second one would be a second writer) and per runtime
/// directory (it would replace our sockets).
fn lock_dir(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let path = dir.join(paths::LOCK_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| DaemonError::io(&path, e))?;
    // Held until the returned lock is dropped, that is for the daemon's whole life.
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(
        |(_, errno)| {
            if errno == nix::errno::Errno::EWOULDBLOCK {
                DaemonError::AlreadyRunning(dir.to_path_buf())
            } else {
                DaemonError::io(&path, std::io::Error::from(errno))
            }
        },
    )
}
