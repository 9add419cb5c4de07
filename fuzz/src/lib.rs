//! The invariants the fuzz targets check, shared by the four of them. A broken invariant panics:
//! libFuzzer records the input as a crash under `fuzz/artifacts/TARGET/`.
//!
//! The same properties, with generated inputs, are in `proto/tests/prop_frames.rs`,
//! `ctl/tests/prop_csv.rs` and `daemon/tests/prop_config.rs`.

use std::io::Cursor;

use credd_proto::{MAX_FRAME, ProtoError, decode_request_full, encode_request_with_id, read_frame};

/// What an error message shown to a person or written to a log must be: something, on one line.
pub fn assert_one_line(what: &str, message: &str) {
    assert!(!message.trim().is_empty(), "{what}: empty error message");
    assert!(
        !message.contains(['\n', '\r']),
        "{what}: error message spans lines: {message:?}"
    );
}

/// Every message the frame reader and the request decoder may give, with each number as `N`.
/// Nothing else may appear: in particular no part of the frame, which can hold a password.
const PROTO_TEMPLATES: &[&str] = &[
    "frame of N bytes exceeds the N-byte limit",
    "connection closed in the middle of a frame",
    "malformed message: invalid JSON at line N column N",
    "malformed message: unexpected field or value at line N column N",
    "malformed message: incomplete JSON at line N column N",
    "malformed message: I/O error at line N column N",
    "malformed message: request id must be N lower-case hex digits",
    "protocol version N is not supported (this side speaks N to N)",
];

/// The message with every run of ASCII digits replaced by `N`.
pub fn shape(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_number = false;
    for c in message.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            out.push(c);
            in_number = false;
        }
    }
    out
}

/// A protocol error is clean: one line, and one of the fixed messages (so it echoes nothing).
pub fn assert_clean_proto_error(err: &ProtoError) {
    let message = err.to_string();
    assert_one_line("protocol error", &message);
    let shaped = shape(&message);
    assert!(
        PROTO_TEMPLATES.contains(&shaped.as_str()),
        "protocol error is not one of the fixed messages (it may echo input): {message:?}"
    );
}

/// Decodes a request body as credd does; an error must be clean, and a request that decodes must
/// encode again into a body that decodes to the same encoding (no value is lost or changed).
pub fn check_request_body(body: &[u8]) {
    match decode_request_full(body) {
        Err(e) => assert_clean_proto_error(&e),
        Ok(decoded) => {
            let again = encode_request_with_id(&decoded.request, decoded.id.as_deref())
                .expect("a decoded request encodes");
            let twice = decode_request_full(&again).expect("a re-encoded request decodes");
            assert_eq!(twice.id, decoded.id);
            let thrice = encode_request_with_id(&twice.request, twice.id.as_deref())
                .expect("a decoded request encodes");
            assert!(
                *again == *thrice,
                "encoding is not stable across a round trip"
            );
            assert_eq!(twice.request.name(), decoded.request.name());
        }
    }
}

/// Reads frames from `input` until its end or the first error, checking each step; bodies are
/// decoded as requests. A length over [`MAX_FRAME`] must be refused with only the prefix read.
pub fn check_frames(input: &[u8]) {
    let mut cursor = Cursor::new(input);
    loop {
        let start = cursor.position();
        match read_frame(&mut cursor) {
            Ok(None) => {
                assert_eq!(start as usize, input.len(), "end of stream before the end");
                return;
            }
            Ok(Some(body)) => {
                assert!(
                    body.len() <= MAX_FRAME,
                    "a body over MAX_FRAME was accepted"
                );
                let prefix = &input[start as usize..start as usize + 4];
                let len = u32::from_be_bytes(prefix.try_into().unwrap()) as usize;
                assert_eq!(body.len(), len, "body length differs from its prefix");
                assert_eq!(cursor.position(), start + 4 + len as u64);
                check_request_body(&body);
            }
            Err(e) => {
                assert_clean_proto_error(&e);
                match e {
                    ProtoError::FrameTooLarge { len, max } => {
                        assert_eq!(max, MAX_FRAME);
                        assert!(len > MAX_FRAME);
                        assert_eq!(
                            cursor.position(),
                            start + 4,
                            "an oversized frame's body was read"
                        );
                    }
                    ProtoError::Truncated => {
                        assert!(input.len() - (start as usize) >= 1);
                    }
                    other => panic!("reading from memory gave {other:?}"),
                }
                return;
            }
        }
    }
}

/// Lines of a file as an editor counts them: line feeds, plus one for a last line without one.
pub fn line_count(input: &[u8]) -> u64 {
    let feeds = input.iter().filter(|&&b| b == b'\n').count() as u64;
    feeds + u64::from(!input.is_empty() && !input.ends_with(b"\n"))
}

/// Checks an import file as `credctl import` does. Reading from memory cannot fail; every problem
/// names a line of the file (0: the file as a whole) and a field, on one line; rows are kept only
/// when there is no problem, and then cut into frames within the budget.
pub fn check_csv(input: &[u8]) {
    use credctl::import::{FRAME_BUDGET, Frames, MAX_PROBLEMS, check_csv};
    let checked = check_csv(input).expect("reading an import file from memory cannot fail");
    let lines = line_count(input);
    let problems = &checked.problems;
    assert!(problems.shown.len() <= MAX_PROBLEMS);
    assert!(problems.total >= problems.shown.len() as u64);
    let mut previous = 0;
    for p in &problems.shown {
        assert!(
            p.line <= lines,
            "problem on line {} of a {lines}-line file: {p:?}",
            p.line
        );
        // Line 0 ("no rows") comes last; the others are in line order.
        if p.line > 0 {
            assert!(p.line >= previous, "problems out of line order: {p:?}");
            previous = p.line;
            assert!(!p.field.is_empty(), "problem names no field: {p:?}");
        }
        assert!(!p.field.contains(char::is_control), "field: {p:?}");
        assert_one_line("import problem", &p.message);
        assert!(!p.message.contains(char::is_control), "message: {p:?}");
    }
    if problems.is_empty() {
        assert!(!checked.rows.is_empty(), "no problem and no row");
        // In line order; two rows may share a line (of LF-counted lines): the csv reader also
        // ends a record at a lone CR, which editors do not show as a line break.
        let mut previous = 1;
        for row in &checked.rows {
            assert!(
                row.line >= previous && row.line <= lines,
                "row line {}",
                row.line
            );
            previous = row.line;
        }
        let mut sent = 0;
        for frame in Frames::new(&checked.rows) {
            let frame = frame.expect("checked rows fit in frames");
            let body = credd_proto::encode_request(&frame.request).unwrap();
            assert!(body.len() <= FRAME_BUDGET);
            sent += frame.rows;
        }
        assert_eq!(sent, checked.rows.len());
    } else {
        assert!(checked.rows.is_empty(), "rows kept despite problems");
    }
}

/// Parses a config text as credd does at start: a config or a one-line error.
pub fn check_config(text: &str) {
    if let Err(message) = credd::config::Config::parse(text) {
        assert_one_line("config error", &message);
    }
}
