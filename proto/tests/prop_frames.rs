//! Property tests of the frame reader and the request decoder, on generated input: nothing
//! panics, every error is one of the fixed messages (so none echoes a byte of the frame, which may
//! hold a password), valid requests survive the whole wire path, and an oversized length is
//! refused after reading only the 4-byte prefix. The same invariants drive the fuzz targets
//! (`fuzz/`, docs/fuzzing.md).

use std::io::{self, Cursor, Read};

use credd_proto::{
    AuthRequest, ChangeRequest, ImportAction, ImportRow, MAX_FRAME, ProtoError, Request, Secret,
    SessionRequest, Target, decode_request_full, encode_request, encode_request_with_id,
    read_frame, write_frame,
};
use proptest::prelude::*;

/// Every message the frame reader and the decoder may give, each number written `N`.
const TEMPLATES: &[&str] = &[
    "frame of N bytes exceeds the N-byte limit",
    "connection closed in the middle of a frame",
    "malformed message: invalid JSON at line N column N",
    "malformed message: unexpected field or value at line N column N",
    "malformed message: incomplete JSON at line N column N",
    "malformed message: request id must be N lower-case hex digits",
    "protocol version N is not supported (this side speaks N to N)",
];

/// The message with each run of ASCII digits replaced by `N`.
fn shape(message: &str) -> String {
    let mut out = String::new();
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

/// Non-empty, one line, and one of [`TEMPLATES`].
fn check_clean(err: &ProtoError) -> Result<(), TestCaseError> {
    let message = err.to_string();
    prop_assert!(!message.is_empty());
    prop_assert!(!message.contains(['\n', '\r']), "{message:?}");
    prop_assert!(
        TEMPLATES.contains(&shape(&message).as_str()),
        "not a fixed message: {message:?}"
    );
    Ok(())
}

fn decode_cleanly(body: &[u8]) -> Result<(), TestCaseError> {
    if let Err(e) = decode_request_full(body) {
        check_clean(&e)?;
    }
    Ok(())
}

/// What `read_frame` made of a stream, comparable across readers.
#[derive(Debug, PartialEq)]
enum Outcome {
    Frames(Vec<Vec<u8>>),
    Failed(Vec<Vec<u8>>, String),
}

fn read_all(r: &mut impl Read) -> Outcome {
    let mut frames = Vec::new();
    loop {
        match read_frame(r) {
            Ok(Some(body)) => frames.push(body.to_vec()),
            Ok(None) => return Outcome::Frames(frames),
            Err(e) => return Outcome::Failed(frames, e.to_string()),
        }
    }
}

/// Hands out at most `chunk` bytes per read, with an `Interrupted` before every other read, as
/// a socket under signals may.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
    interrupt: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: usize,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, control characters, quotes and backslashes included, kept short.
    prop_oneof![any::<String>(), "[a-z0-9 \"\\\\\n\t\u{0}é€😀]{0,40}"]
        .prop_map(|s| s.chars().take(64).collect())
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn secret() -> impl Strategy<Value = Secret> {
    text().prop_map(Secret::new)
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        text().prop_map(Target::Name),
        any::<u32>().prop_map(Target::Uid)
    ]
}

fn import_row() -> impl Strategy<Value = ImportRow> {
    (
        any::<u64>(),
        text(),
        prop::sample::select(vec![
            ImportAction::Add,
            ImportAction::Remove,
            ImportAction::Reset,
            ImportAction::Lock,
            ImportAction::SetHash,
        ]),
        proptest::option::of(any::<u32>()),
        opt_text(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<u64>()),
        opt_text(),
    )
        .prop_map(
            |(line, user, action, uid, password_hash, must_change, ttl_seconds, reason)| {
                ImportRow {
                    line,
                    user,
                    action,
                    uid,
                    password_hash,
                    must_change,
                    ttl_seconds,
                    reason,
                }
            },
        )
}

/// Requests of several kinds, each with generated field values.
fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Ping),
        (text(), secret(), text(), opt_text(), opt_text(), opt_text()).prop_map(
            |(user, secret, service, rhost, tty, ruser)| {
                Request::Authenticate(AuthRequest {
                    user,
                    secret,
                    service,
                    rhost,
                    tty,
                    ruser,
                })
            }
        ),
        (
            text(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(secret()),
            any::<bool>()
        )
            .prop_map(|(user, uid, password, must_change)| Request::UserAdd {
                user,
                uid,
                password,
                must_change,
            }),
        (text(), secret(), any::<bool>()).prop_map(|(user, password, must_change)| {
            Request::SetPassword {
                user,
                password,
                must_change,
            }
        }),
        (target(), opt_text()).prop_map(|(target, reason)| Request::Lock { target, reason }),
        (target(), proptest::option::of(any::<u64>()), any::<bool>()).prop_map(
            |(target, ttl_seconds, keep_password)| Request::Reset {
                target,
                ttl_seconds,
                keep_password,
            }
        ),
        (
            text(),
            text(),
            proptest::option::of(secret()),
            proptest::option::of(secret())
        )
            .prop_map(|(user, service, old, new)| {
                Request::ChangePassword(ChangeRequest {
                    user,
                    service,
                    old,
                    new,
                })
            }),
        (text(), text(), opt_text(), opt_text()).prop_map(|(user, service, tty, rhost)| {
            Request::SessionOpen(SessionRequest {
                user,
                service,
                tty,
                rhost,
            })
        }),
        prop::collection::vec(import_row(), 0..4).prop_map(|rows| Request::ImportRows { rows }),
    ]
}

fn request_id() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[0-9a-f]{32}")
}

/// Structural equality: `Request` has no `PartialEq` (a `Secret` compares in constant time, and
/// nothing in credd compares whole requests), so both sides go through serde's data model.
fn same(a: &Request, b: &Request) -> bool {
    serde_json::to_value(a).unwrap() == serde_json::to_value(b).unwrap()
}

/// A string that cannot be mistaken for any part of a fixed message: it has upper-case letters.
fn marker() -> impl Strategy<Value = String> {
    "PW[A-Z][A-Za-z0-9]{8,20}"
}

/// Malformed bodies that carry `m` in a place serde would quote in its own messages.
fn malformed_with(m: &str, shape: usize) -> String {
    match shape {
        // A number where the secret belongs: serde_json says "invalid type: integer `N`".
        0 => format!(r#"{{"v":1,"req":{{"authenticate":{{"user":"{m}","secret":12345678}}}}}}"#),
        // An unknown field: serde says "unknown field `MARKER`".
        1 => format!(r#"{{"v":1,"req":{{"authenticate":{{"user":"a","secret":"s","{m}":1}}}}}}"#),
        // An unknown request: "unknown variant `MARKER`".
        2 => format!(r#"{{"v":1,"req":{{"{m}":{{}}}}}}"#),
        // A string where a number belongs: "invalid type: string \"MARKER\"".
        3 => {
            format!(r#"{{"v":1,"req":{{"user_add":{{"user":"a","uid":"{m}","password":null}}}}}}"#)
        }
        // The secret itself followed by broken JSON.
        4 => format!(r#"{{"v":1,"req":{{"authenticate":{{"user":"a","secret":"{m}"}},}}"#),
        // The secret in a frame cut short.
        5 => format!(r#"{{"v":1,"req":{{"authenticate":{{"user":"a","secret":"{m}"#),
        // An unknown envelope field.
        6 => format!(r#"{{"v":1,"req":"ping","{m}":true}}"#),
        // A request id that is not hex.
        7 => format!(r#"{{"v":1,"req":"ping","id":"{m}"}}"#),
        // A version that is not a number.
        8 => format!(r#"{{"v":"{m}","req":"ping"}}"#),
        // An unknown target kind.
        9 => format!(r#"{{"v":1,"req":{{"unlock":{{"target":{{"{m}":1}}}}}}}}"#),
        // The secret as a bare word.
        10 => format!(r#"{{"v":1,"req":{{"authenticate":{{"user":"a","secret":{m}}}}}}}"#),
        // An unknown action in an import row.
        _ => format!(
            r#"{{"v":1,"req":{{"import_rows":{{"rows":[{{"line":1,"user":"a","action":"{m}"}}]}}}}}}"#
        ),
    }
}

const MALFORMED_SHAPES: usize = 12;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes read as a stream of frames: no panic, a clean error or clean frames, and
    /// each body decoded as a request without a panic or an unclean error.
    #[test]
    fn arbitrary_streams_read_cleanly(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut cursor = Cursor::new(&data[..]);
        loop {
            match read_frame(&mut cursor) {
                Ok(None) => {
                    prop_assert_eq!(cursor.position() as usize, data.len());
                    break;
                }
                Ok(Some(body)) => {
                    prop_assert!(body.len() <= MAX_FRAME);
                    decode_cleanly(&body)?;
                }
                Err(e) => {
                    check_clean(&e)?;
                    break;
                }
            }
        }
    }

    /// Short reads and `EINTR` do not change what is read.
    #[test]
    fn short_reads_and_interrupts_change_nothing(
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
        chunk in 1usize..7,
    ) {
        let mut wire = Vec::new();
        for body in &bodies {
            write_frame(&mut wire, body).unwrap();
        }
        if truncate && !wire.is_empty() {
            wire.truncate(cut.index(wire.len()));
        }
        let whole = read_all(&mut Cursor::new(&wire[..]));
        let trickled = read_all(&mut Trickle { data: &wire, chunk, interrupt: false });
        prop_assert_eq!(&whole, &trickled);
        if !truncate {
            prop_assert_eq!(whole, Outcome::Frames(bodies));
        }
    }

    /// A length over MAX_FRAME is refused after the 4-byte prefix, whatever follows it.
    #[test]
    fn oversized_lengths_are_refused_without_reading_the_body(
        len in prop_oneof![
            Just(MAX_FRAME as u32 + 1),
            (MAX_FRAME as u32 + 1)..=(2 * MAX_FRAME as u32),
            (MAX_FRAME as u32 + 1)..=u32::MAX,
        ],
        rest in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut wire = len.to_be_bytes().to_vec();
        wire.extend_from_slice(&rest);
        let mut reader = Counting { inner: Cursor::new(&wire[..]), read: 0 };
        let err = read_frame(&mut reader).unwrap_err();
        check_clean(&err)?;
        let refused = matches!(
            err,
            ProtoError::FrameTooLarge { len: l, max } if l == len as usize && max == MAX_FRAME
        );
        prop_assert!(refused, "{:?}", err);
        prop_assert_eq!(reader.read, 4, "bytes of the body were read");
    }

    /// A length within the limit is read whole, or is `Truncated` when the stream ends first.
    #[test]
    fn lengths_within_the_limit_read_exactly_that_much(
        len in 0usize..=MAX_FRAME,
        have in 0usize..=MAX_FRAME,
    ) {
        let mut wire = (len as u32).to_be_bytes().to_vec();
        wire.resize(4 + have, b'x');
        let mut cursor = Cursor::new(&wire[..]);
        match read_frame(&mut cursor) {
            Ok(Some(body)) => {
                prop_assert!(have >= len);
                prop_assert_eq!(body.len(), len);
                prop_assert_eq!(cursor.position() as usize, 4 + len);
            }
            Err(ProtoError::Truncated) => prop_assert!(have < len),
            other => prop_assert!(false, "{:?}", other.map(|b| b.map(|b| b.len()))),
        }
    }

    /// Arbitrary bytes as a request body.
    #[test]
    fn arbitrary_bodies_decode_cleanly(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        decode_cleanly(&data)?;
    }

    /// Valid bodies damaged at one place (cut, byte changed, byte inserted) decode cleanly.
    #[test]
    fn damaged_bodies_decode_cleanly(
        req in request(),
        at in any::<prop::sample::Index>(),
        how in 0u8..3,
        byte in any::<u8>(),
    ) {
        let mut body = encode_request(&req).unwrap().to_vec();
        let i = at.index(body.len());
        match how {
            0 => body.truncate(i),
            1 => body[i] = byte,
            _ => body.insert(i, byte),
        }
        decode_cleanly(&body)?;
    }

    /// Whatever the malformed frame, its error never repeats the value it carried.
    #[test]
    fn errors_never_echo_the_frame(m in marker(), shape in 0..MALFORMED_SHAPES) {
        let body = malformed_with(&m, shape);
        let err = match decode_request_full(body.as_bytes()) {
            Err(e) => e,
            Ok(_) => return Err(TestCaseError::fail(format!("decoded: {body}"))),
        };
        check_clean(&err)?;
        let shown = err.to_string();
        prop_assert!(!shown.contains(&m), "{} echoes {}", shown, m);
        let debug = format!("{err:?}");
        prop_assert!(!debug.contains(&m), "{} echoes {}", debug, m);
    }

    /// encode_request -> write_frame -> read_frame -> decode_request_full gives the request back,
    /// with its id, for any field values, and leaves the stream at its end.
    #[test]
    fn requests_round_trip_through_frames(req in request(), id in request_id()) {
        let body = encode_request_with_id(&req, id.as_deref()).unwrap();
        prop_assert!(body.len() <= MAX_FRAME);
        let mut wire = Vec::new();
        write_frame(&mut wire, &body).unwrap();
        let mut cursor = Cursor::new(&wire[..]);
        let read = read_frame(&mut cursor).unwrap().unwrap();
        prop_assert!(read_frame(&mut cursor).unwrap().is_none());
        let decoded = decode_request_full(&read).unwrap();
        prop_assert_eq!(decoded.version, 1);
        prop_assert_eq!(decoded.id, id);
        prop_assert!(same(&decoded.request, &req), "{:?} != {:?}", decoded.request, req);
        // The secret itself, which serde's data model shows only through `Secret`'s Serialize.
        if let (Request::Authenticate(a), Request::Authenticate(b)) = (&decoded.request, &req) {
            prop_assert_eq!(a.secret.expose(), b.secret.expose());
            prop_assert_eq!(&a.user, &b.user);
            prop_assert_eq!(&a.rhost, &b.rhost);
        }
    }

    /// Several requests in one stream come back in order.
    #[test]
    fn request_streams_round_trip(reqs in prop::collection::vec(request(), 1..5)) {
        let mut wire = Vec::new();
        for req in &reqs {
            write_frame(&mut wire, &encode_request(req).unwrap()).unwrap();
        }
        let mut cursor = Cursor::new(&wire[..]);
        for req in &reqs {
            let body = read_frame(&mut cursor).unwrap().unwrap();
            let decoded = decode_request_full(&body).unwrap();
            prop_assert!(same(&decoded.request, req));
        }
        prop_assert!(read_frame(&mut cursor).unwrap().is_none());
    }

    /// Any other version is named as such, even for a request this build does not know.
    #[test]
    fn other_versions_are_a_version_mismatch(v in prop_oneof![0u32..16, any::<u32>()].prop_filter("not 1", |v| *v != 1)) {
        for req in [r#""ping""#, r#"{"something_new":{"x":1}}"#] {
            let body = format!(r#"{{"v":{v},"req":{req}}}"#);
            let Err(err) = decode_request_full(body.as_bytes()) else {
                return Err(TestCaseError::fail(format!("decoded: {body}")));
            };
            check_clean(&err)?;
            let named = matches!(err, ProtoError::VersionMismatch { got, .. } if got == v);
            prop_assert!(named, "{:?}", err);
        }
    }
}
