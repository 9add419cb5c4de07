//! The daemon's own hardening, observed from outside: no core dumps or same-uid ptrace, and a
//! state directory whose files must be private and real (no planted symbolic links).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use credd_e2e::TestDaemon;
use credd_e2e::bins::skip_unless_root;

fn refused_start(d: &TestDaemon) -> String {
    let out = d.command().output().unwrap();
    assert!(!out.status.success(), "credd started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn nobody() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

/// PR_SET_DUMPABLE 0 is visible in /proc: the files of a non-dumpable process belong to root
/// whatever its uid (proc(5)), so its own uid can neither read its memory nor attach to it.
#[test]
fn the_daemon_is_not_dumpable_even_for_its_own_uid() {
    if skip_unless_root("the_daemon_is_not_dumpable_even_for_its_own_uid") {
        return;
    }
    let d = TestDaemon::start();
    let (uid, gid) = nobody();
    // A second daemon, run as nobody on directories of its own.
    let base = d.root().join("as-nobody");
    for dir in ["", "/state", "/run"] {
        let path = format!("{}{dir}", base.display());
        std::fs::create_dir(&path).unwrap();
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = base.join("credd.toml");
    std::fs::write(
        &config,
        "[hashing]\niterations = 1000\n[audit]\nsyslog = \"none\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A copy nobody can run: the build tree may sit in a private directory (a CI checkout in a
    // 0700 mktemp dir).
    let credd = d.public_copy(&credd_e2e::bins::credd());
    let mut child = Command::new(credd)
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(base.join("state"))
        .arg("--runtime-dir")
        .arg(base.join("run"))
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.starts_with("credd: ready"));
    assert!(ready, "credd as nobody did not become ready");
    let pid = child.id();

    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains(&format!("Uid:\t{uid}\t{uid}")), "{status}");
    for file in ["environ", "mem", "maps"] {
        let meta = std::fs::metadata(format!("/proc/{pid}/{file}")).unwrap();
        assert_eq!(
            meta.uid(),
            0,
            "/proc/{pid}/{file} belongs to uid {}",
            meta.uid()
        );
    }
    // And so nobody cannot read its own daemon's memory map.
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", "cat"])
        .arg(format!("/proc/{pid}/maps"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "nobody read the daemon's memory map");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_database_others_can_read_is_refused() {
    let mut d = TestDaemon::start();
    d.stop();
    let db = d.state_dir().join("credd.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = refused_start(&d);
    assert!(err.contains("lets others read password hashes"), "{err}");
}

#[test]
fn symbolic_links_planted_in_the_state_directory_are_refused() {
    let mut d = TestDaemon::start();
    d.add_user("alice", "a perfectly good passphrase", &[]);
    d.stop();
    let state = d.state_dir();
    let elsewhere = d.root().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();

    // The database replaced by a link to a copy: refused, and the copy is untouched.
    let db = state.join("credd.db");
    let copy = elsewhere.join("credd.db");
    std::fs::rename(&db, &copy).unwrap();
    std::os::unix::fs::symlink(&copy, &db).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let err = refused_start(&d);
    assert!(err.contains("is a symbolic link"), "{err}");
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    std::fs::remove_file(&db).unwrap();
    std::fs::rename(&copy, &db).unwrap();

    // A link where SQLite's write-ahead log would go.
    // (The real log, if any, holds committed rows: it is kept aside, not deleted.)
    let wal = state.join("credd.db-wal");
    let kept = elsewhere.join("kept-wal");
    let had_wal = std::fs::rename(&wal, &kept).is_ok();
    let target = elsewhere.join("wal");
    std::os::unix::fs::symlink(&target, &wal).unwrap();
    let err = refused_start(&d);
    assert!(
        err.contains("credd.db-wal") && err.contains("symbolic link"),
        "{err}"
    );
    assert!(!target.exists(), "credd wrote through the planted link");
    std::fs::remove_file(&wal).unwrap();
    if had_wal {
        std::fs::rename(&kept, &wal).unwrap();
    }

    // The audit key as a link to a key of the attacker's choosing.
    let key = state.join("audit.key");
    let chosen = elsewhere.join("audit.key");
    std::fs::copy(&key, &chosen).unwrap();
    std::fs::remove_file(&key).unwrap();
    std::os::unix::fs::symlink(&chosen, &key).unwrap();
    let err = refused_start(&d);
    assert!(err.contains("audit.key"), "{err}");
    std::fs::remove_file(&key).unwrap();
    std::fs::rename(&chosen, &key).unwrap();

    // Everything back in place: credd starts and the account is still there.
    d.restart();
    let out = d.ctl(&["user", "show", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_config_file_others_can_write_is_refused() {
    let mut d = TestDaemon::start();
    d.stop();
    std::fs::set_permissions(d.config_path(), std::fs::Permissions::from_mode(0o664)).unwrap();
    let err = refused_start(&d);
    assert!(err.contains("writable by group or others"), "{err}");
}
