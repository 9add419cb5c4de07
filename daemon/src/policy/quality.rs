//! Password quality rules for new passwords (`[password]`). Each rejection says why, in words a
//! user can act on; none of them repeats the password.

use std::collections::HashSet;

/// User names shorter than this are not searched for in passwords.
const MIN_NAME_FOR_USERCHECK: usize = 3;

pub struct Quality {
    min_length: usize,
    max_length: usize,
    /// Lower-cased forbidden passwords.
    blocklist: HashSet<String>,
}

impl Quality {
    /// `blocklist` holds forbidden passwords as [`parse_blocklist`] reads them.
    pub fn new(min_length: usize, max_length: usize, blocklist: HashSet<String>) -> Quality {
        Quality {
            min_length,
            max_length,
            blocklist,
        }
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

/// One forbidden password per line, compared case-insensitively; blank lines are ignored.
pub fn parse_blocklist(text: &str) -> HashSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_lowercase)
        .collect()
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
}
