//! The daemon's life from start to stop: open the store, check it against the configuration,
//! start the background threads, bind the sockets, serve until a signal, and close in order.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use credd_proto::paths;

use crate::audit::chain::{AuditKey, Event};
use crate::audit::syslog::{Outgoing, Sink};
use crate::config::Config;
use crate::error::{DaemonError, Result};
use crate::server::{self, Server};
use crate::state::Daemon;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use crate::system::peer::SocketKind;
use crate::system::{dirs, hardening, notify};

mod checks;
mod tasks;

/// What the command line chose.
pub struct Options {
    pub config: PathBuf,
    pub runtime_dir: PathBuf,
    pub state_dir: PathBuf,
    /// Validate the configuration, print the result and exit.
    pub check_config: bool,
}

/// How long a shutdown waits for open connections before closing the store anyway; every write is
/// a transaction, so cutting one short loses nothing that was acknowledged.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The audit chain key, next to (never inside) the database.
const AUDIT_KEY_NAME: &str = "audit.key";

pub fn run(opts: &Options) -> Result<()> {
    let config = Config::load(&opts.config)?;
    if opts.check_config {
        // Files the config names are part of it: a missing blocklist must fail here, not at start.
        config.password.quality()?;
        println!("credd: configuration {} is valid", opts.config.display());
        return Ok(());
    }
    hardening::harden_process();

    dirs::make_dir(&opts.state_dir, 0o700)?;
    dirs::make_dir(&opts.runtime_dir, 0o755)?;
    // Both directories are locked: a second daemon with another state directory must not rename
    // its sockets over ours.
    let _state_lock = dirs::lock_dir(&opts.state_dir)?;
    let _runtime_lock = dirs::lock_dir(&opts.runtime_dir)?;
    let db_path = opts.state_dir.join(paths::DATABASE_NAME);
    let key_path = opts.state_dir.join(AUDIT_KEY_NAME);
    // Both were validated with the config.
    let target = config.audit.target().map_err(DaemonError::Startup)?;
    let format = config.audit.format().map_err(DaemonError::Startup)?;
    let sink = Sink::start(target, format);
    let (audit_key, key_created) = AuditKey::load_or_create_reporting(&key_path)?;
    let mut store: Box<dyn Store> = match SqliteStore::open(&db_path, audit_key, Arc::clone(&sink))
    {
        Ok(store) => Box::new(store),
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
    crate::handlers::backup::record_restore_note(&opts.state_dir, store.as_mut())?;
    let damage = store.damage().map(str::to_owned);
    // A fresh key over an existing chain: the old key is gone and the old rows unverifiable.
    let orphaned = if key_created {
        store.audit_head().map(|(seq, _)| seq).unwrap_or(0)
    } else {
        0
    };
    let pepper = checks::apply_pepper(&config, store.as_mut())?;
    checks::warn_of_legacy_hashes(&config, store.as_mut());
    checks::warn_of_hashes_over_cap(&config, store.as_mut());
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

    let signal_thread = tasks::spawn_signal_thread(Arc::clone(&daemon), server.stopper(), opts)?;

    daemon.start_audit_writer();
    let writer = Arc::clone(&daemon);
    std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || {
            crate::crypto::pool::lower_priority();
            writer.run_audit_writer()
        })
        .map_err(|e| DaemonError::Startup(format!("cannot start the audit writer: {e}")))?;
    tasks::spawn_maintenance(Arc::clone(&daemon));
    crate::handlers::alerts::spawn_ticker(Arc::clone(&daemon));

    let admin_gid = daemon.admin_group.as_ref().map(|g| g.gid);
    // The sockets appear only now, with their final modes: a client that can connect can be served.
    let sockets = vec![
        server::bind(
            &opts.runtime_dir,
            paths::PAM_SOCKET_NAME,
            0o666,
            None,
            SocketKind::Pam,
        )?,
        server::bind(
            &opts.runtime_dir,
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
        opts.runtime_dir.display()
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
    if let Err(e) = daemon.store().checkpoint() {
        eprintln!("credd: cannot checkpoint the store at stop: {e}");
    }
    sink.drain(SHUTDOWN_GRACE);
    drop(signal_thread);
    eprintln!("credd: stopped");
    Ok(())
}
