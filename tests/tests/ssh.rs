//! OpenSSH's keyboard-interactive login with a forced password change (root only): a real sshd,
//! started under its own program name so that it reads its own PAM service file, and a scripted
//! client answering the prompts as a user would.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use credd_e2e::TestDaemon;
use credd_e2e::bins::{self, skip_unless_root};
use credd_e2e::libpam::system_module;
use credd_e2e::system_pam::SystemService;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a fresh passphrase 42";
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

struct Sshd {
    child: Child,
    port: u16,
    _service: SystemService,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// sshd copied to `dir` under a unique name, with a PAM service file of that name holding the
/// credd stack, listening on loopback; returns once sshd says it listens.
fn start_sshd(d: &TestDaemon, dir: &Path) -> Sshd {
    let name = format!("credd-sshd-{}", std::process::id());
    let binary = dir.join(&name);
    std::fs::copy("/usr/sbin/sshd", &binary).expect("copy /usr/sbin/sshd");
    let module = d.public_copy(&bins::pam_module());
    let permit = system_module("pam_permit.so").expect("pam_permit.so");
    let service = SystemService::install_named(
        &name,
        &[
            d.module_line_for(&module, "auth", "required", ""),
            d.module_line_for(&module, "account", "required", ""),
            d.module_line_for(&module, "password", "required", ""),
            format!("session optional {}", permit.display()),
        ],
    );
    let key = dir.join("host_key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::create_dir_all("/run/sshd").unwrap(); // privilege separation directory
    let port = free_port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nUsePAM yes\n\
             KbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
             PubkeyAuthentication no\nPermitRootLogin no\nStrictModes no\nLogLevel VERBOSE\n",
            key.display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(&binary)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sshd");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("[sshd] {line}");
            if line.contains("Server listening")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("sshd did not start listening");
    Sshd {
        child,
        port,
        _service: service,
    }
}

fn client() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ssh_kbdint.py")
}

fn ssh_login(port: u16, user: &str, answers: &[&str]) -> Value {
    let out = Command::new(SYSTEM_PYTHON)
        .arg(client())
        .args(["127.0.0.1", &port.to_string(), user])
        .args(answers)
        .output()
        .expect("run the ssh client");
    assert!(
        out.status.success(),
        "ssh client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client prints JSON")
}

#[test]
fn keyboard_interactive_login_with_a_code_forces_the_change() {
    if skip_unless_root("keyboard_interactive_login_with_a_code_forces_the_change") {
        return;
    }
    assert!(
        Path::new("/usr/sbin/sshd").exists(),
        "openssh-server is missing (make test installs it)"
    );
    let has_paramiko = Command::new(SYSTEM_PYTHON)
        .args(["-c", "import paramiko"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_paramiko,
        "python3-paramiko is missing (make test installs it)"
    );

    let d = TestDaemon::start();
    // sshd needs a system account; `nobody` is one everywhere, and credd takes its uid from NSS.
    d.add_user("nobody", PASSWORD, &[]);
    let dir = tempfile::tempdir().unwrap();
    let sshd = start_sshd(&d, dir.path());

    let before = ssh_login(sshd.port, "nobody", &[PASSWORD]);
    assert_eq!(before["authenticated"], true, "{before}");

    let out = d.ctl(&["reset", "nobody"]);
    assert!(out.status.success());
    let code = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let old = ssh_login(sshd.port, "nobody", &[PASSWORD]);
    assert_eq!(
        old["authenticated"], false,
        "the old password is invalidated: {old}"
    );

    let changed = ssh_login(sshd.port, "nobody", &[&code, NEW_PASSWORD, NEW_PASSWORD]);
    assert_eq!(changed["authenticated"], true, "{changed}");
    let prompts: Vec<&str> = changed["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        prompts.iter().any(|p| p.contains("New password")),
        "{prompts:?}"
    );
    assert!(
        prompts.iter().any(|p| p.contains("Retype new password")),
        "{prompts:?}"
    );

    let after = ssh_login(sshd.port, "nobody", &[NEW_PASSWORD]);
    assert_eq!(after["authenticated"], true, "{after}");
    let reused = ssh_login(sshd.port, "nobody", &[&code]);
    assert_eq!(reused["authenticated"], false, "{reused}");
}
