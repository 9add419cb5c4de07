//! Validation of caller-supplied strings before they reach the store or a log line: a user name
//! with a newline in it could otherwise forge an audit entry.

/// Linux's LOGIN_NAME_MAX is 256 including the terminator.
pub const MAX_NAME_LEN: usize = 255;
/// Upper bound for service, tty, rhost and ruser strings.
pub const MAX_FIELD_LEN: usize = 255;
/// Upper bound for a password or code on the wire; the policy limit may be lower.
pub const MAX_SECRET_LEN: usize = 4096;

/// Accepts what shadow-utils and NSS accept in practice, refuses what could break a log line,
/// a CSV row or a command line.
pub fn validate_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("user name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("user name is longer than {MAX_NAME_LEN} bytes"));
    }
    if name.starts_with('-') {
        return Err("user name starts with '-'".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, ':' | ',' | '/' | '\\'))
    {
        return Err(format!("user name contains the character {c:?}"));
    }
    Ok(())
}

/// Service, tty, rhost, ruser: free text from PAM items, bounded and free of control characters.
pub fn validate_field(what: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_FIELD_LEN {
        return Err(format!("{what} is longer than {MAX_FIELD_LEN} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} contains a control character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for n in ["alice", "bob.smith", "svc_backup", "user@REALM", "j-doe$"] {
            assert!(validate_user_name(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn dangerous_names_fail() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for n in [
            "",
            "-rf",
            "a b",
            "a\nb",
            "a\0b",
            "a:b",
            "../x",
            long.as_str(),
        ] {
            assert!(validate_user_name(n).is_err(), "{n:?}");
        }
    }

    #[test]
    fn fields_refuse_control_characters() {
        assert!(validate_field("rhost", "10.0.0.1").is_ok());
        assert!(validate_field("tty", "pts/0\r\nforged").is_err());
    }
}
