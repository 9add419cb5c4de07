//! `import --codes-out FILE`: where the codes of an import's reset rows go, and nowhere else.
//!
//! The file is created new, with mode 0600, before the import is committed, so that a file that
//! cannot be created stops the import before anything changes. `O_CREAT|O_EXCL` never opens an
//! existing file, nor follows a symlink planted where the file should be: someone who can write
//! the directory cannot redirect the codes. Until [`CodesFile::keep`] the file is removed when
//! dropped, so a refused or failed import leaves nothing behind.
//!
//! The file is CSV, `user,code,expires_at` with that header, one line per code. Each line is
//! rendered into a buffer that is wiped when dropped and written straight to the file descriptor:
//! a `BufWriter` (or the csv crate's writer) would keep copies of codes in a buffer nobody wipes.
//! [`CodesFile::finish`] flushes and fsyncs the file (and, as far as it can, its directory).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use credd_proto::IssuedCode;
use zeroize::Zeroizing;

/// The file's permissions: the administrator who ran the import, no one else.
pub const MODE: u32 = 0o600;

pub const HEADER: &[u8] = b"user,code,expires_at\n";

/// Lines are gathered up to this size before a write, so that 100 000 codes are not 100 000
/// system calls.
const BUFFER: usize = 16 * 1024;

pub struct CodesFile {
    path: PathBuf,
    file: File,
    /// Allocated once at [`BUFFER`] bytes and never grown, so no reallocation leaves a copy.
    pending: Zeroizing<Vec<u8>>,
    written: u64,
    keep: bool,
}

impl CodesFile {
    /// Creates the file, which must not exist, and writes the header.
    pub fn create(path: &Path) -> io::Result<CodesFile> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(path)?;
        let mut codes = CodesFile {
            path: path.to_path_buf(),
            file,
            pending: Zeroizing::new(Vec::with_capacity(BUFFER)),
            written: 0,
            keep: false,
        };
        // On failure, dropping `codes` removes the file again.
        codes.file.write_all(HEADER)?;
        Ok(codes)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Codes taken by [`CodesFile::write`] so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The import was committed: the file stays, whatever happens next.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Adds one code. A code that is not one printable word, or a user or expiry with a control
    /// character, is refused (`InvalidData`) and not written.
    pub fn write(&mut self, issued: &IssuedCode) -> io::Result<()> {
        let code = issued.code.expose();
        if code.is_empty() || code.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "credd sent a code that is not one printable word",
            ));
        }
        if [&issued.user, &issued.expires_at]
            .iter()
            .any(|text| text.chars().any(char::is_control))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "credd sent a code with a control character in its user or expiry",
            ));
        }
        let fields = [issued.user.as_str(), code, issued.expires_at.as_str()];
        let len = fields.iter().map(|f| csv_len(f)).sum::<usize>() + fields.len();
        if self.pending.len() + len > self.pending.capacity() {
            self.flush_pending()?;
        }
        if len > self.pending.capacity() {
            let mut line = Zeroizing::new(Vec::with_capacity(len));
            push_line(&mut line, &fields);
            self.file.write_all(&line)?;
        } else {
            push_line(&mut self.pending, &fields);
        }
        self.written += 1;
        Ok(())
    }

    /// Writes what is pending and makes the file durable.
    pub fn finish(&mut self) -> io::Result<()> {
        self.flush_pending()?;
        self.file.sync_all()?;
        // The directory entry too; some file systems cannot sync a directory, and the file's
        // content is what matters most, so a failure here is not reported.
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        let written = self.file.write_all(&self.pending);
        // `clear` keeps the allocation; the bytes are overwritten by later lines or wiped on drop.
        self.pending.clear();
        written
    }
}

impl Drop for CodesFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// RFC 4180: a field with a comma, a quote or a line end is quoted, its quotes doubled.
fn needs_quotes(field: &str) -> bool {
    field.contains([',', '"', '\r', '\n'])
}

fn csv_len(field: &str) -> usize {
    if needs_quotes(field) {
        field.len() + 2 + field.matches('"').count()
    } else {
        field.len()
    }
}

/// Appends `fields` as one CSV line; the caller has made room for it.
fn push_line(out: &mut Vec<u8>, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if needs_quotes(field) {
            out.push(b'"');
            for byte in field.bytes() {
                if byte == b'"' {
                    out.push(b'"');
                }
                out.push(byte);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(field.as_bytes());
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use credd_proto::Secret;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "credctl-codesfile-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn code(user: &str, code: &str) -> IssuedCode {
        IssuedCode {
            user: user.into(),
            code: Secret::new(code.into()),
            expires_at: "2026-01-02T03:19:05Z".into(),
        }
    }

    #[test]
    fn a_kept_file_has_mode_0600_the_header_and_every_code() {
        let dir = TempDir::new();
        let path = dir.0.join("codes.csv");
        let mut file = CodesFile::create(&path).unwrap();
        assert_eq!(file.path(), path);
        file.write(&code("alice", "7KQ4-M2XD-9RTV-H3PE")).unwrap();
        file.write(&code("o\"neil,jr", "AAAA-BBBB")).unwrap();
        file.keep();
        file.finish().unwrap();
        assert_eq!(file.written(), 2);
        drop(file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !MODE, 0, "{mode:o}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "user,code,expires_at\n\
             alice,7KQ4-M2XD-9RTV-H3PE,2026-01-02T03:19:05Z\n\
             \"o\"\"neil,jr\",AAAA-BBBB,2026-01-02T03:19:05Z\n"
        );
        // What it wrote reads back as CSV.
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let users: Vec<String> = reader
            .records()
            .map(|r| r.unwrap()[0].to_string())
            .collect();
        assert_eq!(users, ["alice", "o\"neil,jr"]);
    }

    #[test]
    fn many_codes_cross_the_buffer() {
        let dir = TempDir::new();
        let path = dir.0.join("codes.csv");
        let mut file = CodesFile::create(&path).unwrap();
        for i in 0..2000 {
            file.write(&code(&format!("user{i}"), "7KQ4-M2XD-9RTV-H3PE"))
                .unwrap();
        }
        // A line larger than the buffer is written on its own.
        let long = "x".repeat(BUFFER + 10);
        file.write(&code(&long, "CODE")).unwrap();
        file.write(&code("last", "CODE")).unwrap();
        file.keep();
        file.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2003);
        assert_eq!(
            lines[2000],
            "user1999,7KQ4-M2XD-9RTV-H3PE,2026-01-02T03:19:05Z"
        );
        assert!(
            lines[2001].starts_with("xxx") && lines[2001].ends_with(",CODE,2026-01-02T03:19:05Z")
        );
        assert_eq!(lines[2002], "last,CODE,2026-01-02T03:19:05Z");
        assert_eq!(file.pending.capacity(), BUFFER, "the buffer never grew");
    }

    #[test]
    fn an_existing_file_or_symlink_is_never_opened() {
        let dir = TempDir::new();
        let path = dir.0.join("codes.csv");
        std::fs::write(&path, "precious\n").unwrap();
        let err = CodesFile::create(&path).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");

        let target = dir.0.join("target");
        let link = dir.0.join("link.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = CodesFile::create(&link).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(!target.exists());
    }

    #[test]
    fn a_file_not_kept_is_removed() {
        let dir = TempDir::new();
        let path = dir.0.join("codes.csv");
        let mut file = CodesFile::create(&path).unwrap();
        file.write(&code("alice", "7KQ4")).unwrap();
        assert!(path.exists());
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn codes_that_are_not_one_printable_word_are_refused() {
        let dir = TempDir::new();
        let path = dir.0.join("codes.csv");
        let mut file = CodesFile::create(&path).unwrap();
        for bad in ["", "7KQ4 M2XD", "7KQ4\nM2XD", "\x1b[2J"] {
            let err = file.write(&code("alice", bad)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{bad:?}");
            assert!(!err.to_string().contains(bad) || bad.is_empty());
        }
        let err = file.write(&code("a\nb", "CODE")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(file.written(), 0);
        file.keep();
        file.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), HEADER);
    }
}
