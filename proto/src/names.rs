//! Validation of caller-supplied strings before they reach the store or a log line: a user name
//! with a newline in it could otherwise forge an audit entry.

/// Linux's LOGIN_NAME_MAX is 256 including the terminator.
pub const MAX_NAME_LEN: usize = 255;
/// Upper bound for service, tty, rhost and ruser strings.
pub const MAX_FIELD_LEN: usize = 255;
/// Upper bound for a password or code on the wire; the policy limit may be lower.
pub const MAX_SECRET_LEN: usize = 4096;

/// The code points of Unicode's general categories Cf (format), Zl (line separator) and Zp
/// (paragraph separator), Unicode 15.1, as inclusive ranges. Invisible in a terminal, or worse:
/// the bidi controls (U+061C, U+200E–200F, U+202A–202E, U+2066–2069) reorder the text shown after
/// them, so `alice\u{202e}nimda` displays as another name, and U+2028/U+2029 break the line of a
/// viewer that follows Unicode. Zero-width ones (U+200B–200D, U+2060, U+FEFF) make two names that
/// look the same. A short explicit table rather than a dependency; the unit test pins the
/// characters that matter.
const FORMAT_AND_SEPARATORS: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// A Unicode format character (Cf: bidi controls, zero-width characters, …) or a line or
/// paragraph separator (Zl, Zp).
pub fn is_format_or_separator(c: char) -> bool {
    let c = u32::from(c);
    FORMAT_AND_SEPARATORS
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// A character no name or field may hold, and no display shows as it is: a control character
/// (Cc) or a format or separator character ([`is_format_or_separator`]).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || is_format_or_separator(c)
}

/// `text` with every [`is_unsafe_char`] written as a Rust escape (`\n`, `\u{202e}`), so that
/// text that got past validation (an older database, a detail credd composed) cannot reorder,
/// hide or break the line it is shown in. Borrowed when there is nothing to escape.
pub fn escape_unsafe(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

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
    if let Some(c) = name.chars().find(|&c| is_format_or_separator(c)) {
        return Err(format!(
            "user name contains the character {c:?} (an invisible format or separator character)"
        ));
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
    if let Some(c) = value.chars().find(|&c| is_format_or_separator(c)) {
        return Err(format!(
            "{what} contains the character {c:?} (an invisible format or separator character)"
        ));
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

    /// Issue 15 R11: format and separator characters passed validation and reached syslog and
    /// `credctl audit` as they were.
    const FORMAT_CHARACTERS: [char; 12] = [
        '\u{202e}',  // RIGHT-TO-LEFT OVERRIDE
        '\u{202a}',  // LEFT-TO-RIGHT EMBEDDING
        '\u{2066}',  // LEFT-TO-RIGHT ISOLATE
        '\u{2069}',  // POP DIRECTIONAL ISOLATE
        '\u{200e}',  // LEFT-TO-RIGHT MARK
        '\u{061c}',  // ARABIC LETTER MARK
        '\u{200b}',  // ZERO WIDTH SPACE
        '\u{200d}',  // ZERO WIDTH JOINER
        '\u{feff}',  // ZERO WIDTH NO-BREAK SPACE (BOM)
        '\u{2028}',  // LINE SEPARATOR (Zl)
        '\u{2029}',  // PARAGRAPH SEPARATOR (Zp)
        '\u{e0041}', // TAG LATIN CAPITAL LETTER A
    ];

    #[test]
    fn names_and_fields_refuse_format_and_separator_characters_naming_them() {
        for c in FORMAT_CHARACTERS {
            assert!(is_format_or_separator(c), "{c:?}");
            let name = format!("alice{c}nimda");
            let err = validate_user_name(&name).unwrap_err();
            assert!(
                err.starts_with("user name contains the character '\\u{"),
                "{c:?}: {err}"
            );
            assert!(!err.contains(c), "the message shows it escaped: {err:?}");
            for what in ["service", "rhost", "tty", "ruser", "reason"] {
                let err = validate_field(what, &format!("10.0.0.1{c}")).unwrap_err();
                assert!(
                    err.starts_with(&format!("{what} contains the character")),
                    "{err}"
                );
                assert!(!err.contains(c), "{err:?}");
            }
        }
    }

    #[test]
    fn ordinary_unicode_is_not_a_format_character() {
        for c in [
            'a',
            'é',
            'ß',
            'ж',
            '名',
            ' ',
            '\u{00a0}',
            '\u{0301}',
            '\u{1f600}',
            '\u{e0080}',
        ] {
            assert!(!is_format_or_separator(c), "{c:?}");
        }
        assert!(validate_field("tty", "pts/0 café").is_ok());
        assert!(validate_user_name("jürgen").is_ok());
    }

    #[test]
    fn unsafe_characters_are_escaped_for_display() {
        assert_eq!(escape_unsafe("plain"), "plain");
        assert!(matches!(
            escape_unsafe("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_unsafe("a\u{202e}b\u{2028}c\nd\u{200b}"),
            "a\\u{202e}b\\u{2028}c\\nd\\u{200b}"
        );
        for c in FORMAT_CHARACTERS {
            assert!(!escape_unsafe(&format!("x{c}y")).contains(c));
        }
    }
}
