//! `--password-stdin`: one password, read from standard input to its end.
//!
//! Every buffer that ever holds the password is wiped: the read buffer is allocated once at its
//! final size (so it never reallocates and leaves a copy behind) and is a `Zeroizing`; the only
//! other copy is the `Secret` handed to the request, which wipes itself on drop.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;

use credd_proto::{MAX_SECRET_LEN, Secret};
use zeroize::Zeroizing;

use crate::error::CtlError;

/// Longest password accepted, in bytes, not counting the line ending.
pub const MAX_PASSWORD_BYTES: usize = MAX_SECRET_LEN;

/// Reads the password from standard input.
///
/// `io::stdin()` keeps an 8 KiB buffer of its own that nobody wipes, so the descriptor is read
/// directly, through a duplicate that leaves fd 0 itself open.
pub fn read_from_stdin() -> Result<Secret, CtlError> {
    let fd = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(CtlError::Stdin)?;
    read_password(File::from(fd))
}

/// Reads `input` to its end (at most [`MAX_PASSWORD_BYTES`] plus a line ending), strips one
/// trailing `"\n"` or `"\r\n"`, and refuses what cannot be a password.
pub fn read_password(mut input: impl Read) -> Result<Secret, CtlError> {
    // Room for the longest password, its "\r\n", and one byte more to detect overflow.
    let cap = MAX_PASSWORD_BYTES + 3;
    let mut buf = Zeroizing::new(vec![0u8; cap]);
    let mut len = 0;
    while len < cap {
        match input.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CtlError::Stdin(e)),
        }
    }
    let mut bytes = &buf[..len];
    if let Some(rest) = bytes.strip_suffix(b"\n") {
        bytes = rest.strip_suffix(b"\r").unwrap_or(rest);
    }
    if len == cap || bytes.len() > MAX_PASSWORD_BYTES {
        return Err(CtlError::BadPassword(
            "the password on standard input is longer than 4096 bytes",
        ));
    }
    if bytes.is_empty() {
        return Err(CtlError::BadPassword(
            "the password on standard input is empty",
        ));
    }
    if bytes.contains(&0) {
        return Err(CtlError::BadPassword(
            "the password on standard input contains a NUL byte",
        ));
    }
    // A carriage return cannot be typed at a terminal prompt either (ICRNL makes it a newline).
    if bytes.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Err(CtlError::BadPassword(
            "standard input holds more than one line; give the password alone, on one line",
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| CtlError::BadPassword("the password on standard input is not valid UTF-8"))?;
    Ok(Secret::new(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> Result<Secret, CtlError> {
        read_password(input)
    }

    fn refused(input: &[u8]) -> String {
        match read(input) {
            Ok(_) => panic!("accepted {input:?}"),
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn one_trailing_newline_is_stripped() {
        assert_eq!(read(b"hunter2\n").unwrap().expose(), "hunter2");
        assert_eq!(read(b"hunter2").unwrap().expose(), "hunter2");
    }

    #[test]
    fn crlf_is_stripped() {
        assert_eq!(read(b"hunter2\r\n").unwrap().expose(), "hunter2");
    }

    #[test]
    fn spaces_and_unicode_are_kept() {
        assert_eq!(
            read(" correct horse \u{e9}\n".as_bytes()).unwrap().expose(),
            " correct horse \u{e9}"
        );
    }

    #[test]
    fn empty_is_refused() {
        for input in [&b""[..], b"\n", b"\r\n"] {
            assert!(refused(input).contains("empty"), "{input:?}");
        }
    }

    #[test]
    fn only_one_line_ending_is_stripped() {
        assert!(refused(b"hunter2\n\n").contains("more than one line"));
        assert!(refused(b"hunter2\r\n\r\n").contains("more than one line"));
    }

    #[test]
    fn embedded_newlines_and_nul_are_refused() {
        assert!(refused(b"hun\nter2\n").contains("more than one line"));
        assert!(refused(b"hun\rter2").contains("more than one line"));
        assert!(refused(b"hunter2\r").contains("more than one line"));
        assert!(refused(b"hun\0ter2\n").contains("NUL"));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(refused(b"\xff\xfe\n").contains("UTF-8"));
    }

    #[test]
    fn length_limit() {
        let max = "a".repeat(MAX_PASSWORD_BYTES);
        assert_eq!(read(max.as_bytes()).unwrap().len(), MAX_PASSWORD_BYTES);
        assert_eq!(
            read(format!("{max}\r\n").as_bytes()).unwrap().len(),
            MAX_PASSWORD_BYTES
        );
        let over = "a".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(refused(over.as_bytes()).contains("longer than 4096"));
        assert!(refused(format!("{over}\n").as_bytes()).contains("longer than 4096"));
        let huge = vec![b'a'; 1 << 20];
        assert!(refused(&huge).contains("longer than 4096"));
    }

    #[test]
    fn short_reads_are_reassembled() {
        /// Hands out one byte per read, with an interruption in between.
        struct Trickle<'a>(&'a [u8], bool);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.1 = !self.1;
                if self.1 {
                    return Err(io::ErrorKind::Interrupted.into());
                }
                match self.0.split_first() {
                    Some((b, rest)) if !buf.is_empty() => {
                        buf[0] = *b;
                        self.0 = rest;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        let secret = read_password(Trickle(b"pass word\n", false)).unwrap();
        assert_eq!(secret.expose(), "pass word");
    }

    #[test]
    fn read_errors_are_failures_not_usage_errors() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(5))
            }
        }
        let err = read_password(Broken).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert_eq!(
            err.to_string(),
            "cannot read the password from standard input: Input/output error"
        );
    }
}
