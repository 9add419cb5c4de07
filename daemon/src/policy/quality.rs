//! Password quality rules for new passwords (`[password]`). Each rejection says why, in words a
//! user can act on; none of them repeats the password.

use std::collections::HashSet;
use std::path::Path;

use crate::config;
use crate::error::{DaemonError, Result};

/// User names shorter than this are not searched for in passwords.
const MIN_NAME_FOR_USERCHECK: usize = 3;

pub struct Quality {
    min_length: usize,
    max_length: usize,
    /// Lower-cased forbidden passwords.
    blocklist: HashSet<String>,
}

impl Quality {
    pub fn from_config(c: &config::Password) -> Result<Quality> {
        let blocklist = if c.blocklist.as_os_str().is_empty() {
            HashSet::new()
        } else {
            load_blocklist(&c.blocklist)?
        };
        Ok(Quality {
            min_length: c.min_length,
            max_length: c.max_length,
            blocklist,
        })
    }

    pub fn check(&self, user: &str, new: &str) -> std::result::Result<(), String> {
        let chars = new.chars().count();
        if chars < self.min_length {
            return Err(format!(
                "The password is shorter than {} characters",
                self.min_length
            ));
        }
        if new.len() > self.max_length {
            return Err(format!(
                "The password is longer than {} bytes",
                self.max_length
            ));
        }
        if new.chars().any(char::is_control) {
            return Err("The password contains a control character".into());
        }
        let lower = new.to_lowercase();
        // Short names would match ordinary words ("al" in "totally"); pam_pwquality's usercheck
        // has the same blind spot the other way round.
        if user.chars().count() >= MIN_NAME_FOR_USERCHECK && lower.contains(&user.to_lowercase()) {
            return Err("The password contains the user name in some form".into());
        }
        if self.blocklist.contains(&lower) {
            return Err("The password is on the list of forbidden passwords".into());
        }
        Ok(())
    }
}

fn load_blocklist(path: &Path) -> Result<HashSet<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| DaemonError::Config {
        path: path.to_path_buf(),
        message: format!("password.blocklist: {e}"),
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_lowercase)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quality(blocklist: &[&str]) -> Quality {
        Quality {
            min_length: 12,
            max_length: 64,
            blocklist: blocklist.iter().map(|s| s.to_lowercase()).collect(),
        }
    }

    #[test]
    fn each_rule_says_why() {
        let q = quality(&["Correct Horse Battery"]);
        assert!(q.check("alice", "a long enough phrase").is_ok());
        assert!(
            q.check("alice", "short")
                .unwrap_err()
                .contains("shorter than 12")
        );
        assert!(
            q.check("alice", &"x".repeat(65))
                .unwrap_err()
                .contains("longer")
        );
        assert!(
            q.check("alice", "my name is ALICE!!")
                .unwrap_err()
                .contains("user name")
        );
        assert!(
            q.check("alice", "correct horse battery")
                .unwrap_err()
                .contains("forbidden")
        );
        assert!(
            q.check("alice", "tab\there is bad")
                .unwrap_err()
                .contains("control")
        );
    }

    #[test]
    fn very_short_names_are_not_searched_for() {
        let q = quality(&[]);
        assert!(q.check("al", "a totally fine passphrase").is_ok());
        assert!(q.check("bob", "bob's own passphrase").is_err());
    }

    #[test]
    fn blocklist_file_is_read_case_insensitively() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("block.txt");
        std::fs::write(&path, "Password123456\n\n  letmein-please  \n").unwrap();
        let q = Quality::from_config(&config::Password {
            min_length: 12,
            max_length: 100,
            blocklist: path,
        })
        .unwrap();
        assert!(q.check("bob", "PASSWORD123456").is_err());
        assert!(q.check("bob", "LetMeIn-Please").is_err());
        assert!(q.check("bob", "something else entirely").is_ok());
    }

    #[test]
    fn a_missing_blocklist_is_a_config_error() {
        let err = Quality::from_config(&config::Password {
            min_length: 12,
            max_length: 100,
            blocklist: "/nonexistent/blocklist".into(),
        })
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("password.blocklist"), "{err}");
    }
}
