//! Length-prefixed JSON frames.
//!
//! The length is checked against [`MAX_FRAME`] before a single body byte is read or any memory is
//! reserved, so a peer announcing 4 GiB costs us four bytes of reading.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::message::{OLDEST_SUPPORTED_VERSION, PROTOCOL_VERSION};
use crate::{ProtoError, Reply, Request};

/// Largest body accepted or sent: listings stream row by row, so nothing legitimate comes close.
pub const MAX_FRAME: usize = 64 * 1024;

const LEN_PREFIX: usize = 4;

#[derive(Serialize)]
struct RequestOut<'a> {
    v: u32,
    req: &'a Request,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestIn {
    v: u32,
    req: Request,
    #[serde(default)]
    id: Option<String>,
}

/// A request with its envelope: the version it was sent in (the reply goes back in it) and the
/// caller's request id, which credd uses as the audit event id of the change it makes, so that
/// credctl's own syslog record and credd's audit row carry the same id.
pub struct DecodedRequest {
    pub version: u32,
    pub request: Request,
    pub id: Option<String>,
}

/// Request ids are 32 lower-case hex digits (128 random bits), as credctl makes them.
pub fn valid_request_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[derive(Serialize)]
struct ReplyOut<'a> {
    v: u32,
    reply: &'a Reply,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyIn {
    #[allow(dead_code)]
    v: u32,
    reply: Reply,
}

/// Only the version, read first so that a newer peer gets "version mismatch" rather than
/// "unknown variant".
/// Other fields are skipped by serde without being buffered (no `flatten`, which would copy them).
#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

/// Writes one frame. Refuses bodies over the limit rather than sending what the peer must reject.
pub fn write_frame<W: Write>(w: &mut W, body: &[u8]) -> Result<(), ProtoError> {
    if body.len() > MAX_FRAME {
        return Err(ProtoError::FrameTooLarge {
            len: body.len(),
            max: MAX_FRAME,
        });
    }
    let len = u32::try_from(body.len()).expect("MAX_FRAME fits in u32");
    let mut buf = Zeroizing::new(Vec::with_capacity(LEN_PREFIX + body.len()));
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(body);
    w.write_all(&buf).map_err(map_io)?;
    w.flush().map_err(map_io)
}

/// Reads one frame. `Ok(None)` is a clean end of stream between frames; a stream that ends inside
/// a frame is [`ProtoError::Truncated`]. The body is wiped when dropped: it may hold a password.
pub fn read_frame<R: Read>(r: &mut R) -> Result<Option<Zeroizing<Vec<u8>>>, ProtoError> {
    let mut prefix = [0u8; LEN_PREFIX];
    let mut got = 0;
    while got < LEN_PREFIX {
        match r.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ProtoError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(map_io(e)),
        }
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(ProtoError::FrameTooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    let mut body = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ProtoError::Truncated,
        _ => map_io(e),
    })?;
    Ok(Some(body))
}

fn map_io(e: io::Error) -> ProtoError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ProtoError::Timeout,
        _ => ProtoError::Io(e),
    }
}

fn check_version(body: &[u8]) -> Result<(), ProtoError> {
    let head: VersionOnly = serde_json::from_slice(body).map_err(|e| ProtoError::from_json(&e))?;
    if (OLDEST_SUPPORTED_VERSION..=PROTOCOL_VERSION).contains(&head.v) {
        Ok(())
    } else {
        Err(ProtoError::VersionMismatch {
            got: head.v,
            oldest: OLDEST_SUPPORTED_VERSION,
            newest: PROTOCOL_VERSION,
        })
    }
}

/// Encodes a request into a buffer sized for the largest frame up front: a growing `Vec` would
/// leave unwiped copies of the password behind in freed memory (in sshd's heap, for the module).
pub fn encode_request(req: &Request) -> Result<Zeroizing<Vec<u8>>, ProtoError> {
    encode_request_with_id(req, None)
}

/// As [`encode_request`], with a request id in the envelope (see [`DecodedRequest`]).
pub fn encode_request_with_id(
    req: &Request,
    id: Option<&str>,
) -> Result<Zeroizing<Vec<u8>>, ProtoError> {
    let out = RequestOut {
        v: PROTOCOL_VERSION,
        req,
        id,
    };
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_FRAME));
    serde_json::to_writer(&mut *buf, &out).map_err(|e| ProtoError::from_json(&e))?;
    Ok(buf)
}

pub fn decode_request(body: &[u8]) -> Result<Request, ProtoError> {
    decode_request_versioned(body).map(|(_, req)| req)
}

/// The request and the protocol version it was sent in; the reply goes back in that version, so
/// a client one release behind keeps understanding the daemon.
pub fn decode_request_versioned(body: &[u8]) -> Result<(u32, Request), ProtoError> {
    decode_request_full(body).map(|d| (d.version, d.request))
}

/// The request with its envelope. An id that is not 32 lower-case hex digits is malformed.
pub fn decode_request_full(body: &[u8]) -> Result<DecodedRequest, ProtoError> {
    check_version(body)?;
    let msg: RequestIn = serde_json::from_slice(body).map_err(|e| ProtoError::from_json(&e))?;
    if let Some(id) = &msg.id
        && !valid_request_id(id)
    {
        return Err(ProtoError::Malformed(
            "request id must be 32 lower-case hex digits".into(),
        ));
    }
    Ok(DecodedRequest {
        version: msg.v,
        request: msg.req,
        id: msg.id,
    })
}

pub fn encode_reply(reply: &Reply) -> Result<Vec<u8>, ProtoError> {
    encode_reply_as(PROTOCOL_VERSION, reply)
}

/// Encodes a reply in `version`, which must be one this build supports.
pub fn encode_reply_as(version: u32, reply: &Reply) -> Result<Vec<u8>, ProtoError> {
    let out = ReplyOut { v: version, reply };
    serde_json::to_vec(&out).map_err(|e| ProtoError::from_json(&e))
}

pub fn decode_reply(body: &[u8]) -> Result<Reply, ProtoError> {
    check_version(body)?;
    let msg: ReplyIn = serde_json::from_slice(body).map_err(|e| ProtoError::from_json(&e))?;
    Ok(msg.reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthRequest, Secret};
    use std::io::Cursor;

    fn auth(user: &str) -> Request {
        Request::Authenticate(AuthRequest {
            user: user.into(),
            secret: Secret::new("correct horse".into()),
            service: "sshd".into(),
            rhost: Some("192.0.2.1".into()),
            tty: None,
            ruser: None,
        })
    }

    #[test]
    fn several_frames_decode_in_order_and_leave_nothing() {
        let mut wire = Vec::new();
        for name in ["alice", "bob"] {
            write_frame(&mut wire, &encode_request(&auth(name)).unwrap()).unwrap();
        }
        write_frame(&mut wire, &encode_request(&Request::Ping).unwrap()).unwrap();
        let mut r = Cursor::new(wire);
        let mut names = Vec::new();
        while let Some(body) = read_frame(&mut r).unwrap() {
            match decode_request(&body).unwrap() {
                Request::Authenticate(a) => names.push(a.user),
                Request::Ping => names.push("ping".into()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(names, ["alice", "bob", "ping"]);
    }

    #[test]
    fn oversized_length_is_refused_before_reading_the_body() {
        let mut wire = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(b"{}");
        let err = read_frame(&mut Cursor::new(wire)).unwrap_err();
        assert!(matches!(err, ProtoError::FrameTooLarge { len, .. } if len == MAX_FRAME + 1));
    }

    #[test]
    fn oversized_body_is_not_sent() {
        let body = vec![b' '; MAX_FRAME + 1];
        assert!(matches!(
            write_frame(&mut Vec::new(), &body),
            Err(ProtoError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn truncated_frames_are_errors_and_clean_eof_is_not() {
        assert!(read_frame(&mut Cursor::new(Vec::new())).unwrap().is_none());
        assert!(matches!(
            read_frame(&mut Cursor::new(vec![0, 0])),
            Err(ProtoError::Truncated)
        ));
        let mut wire = 10u32.to_be_bytes().to_vec();
        wire.extend_from_slice(b"{\"v\"");
        assert!(matches!(
            read_frame(&mut Cursor::new(wire)),
            Err(ProtoError::Truncated)
        ));
    }

    #[test]
    fn wrong_version_is_named_as_such() {
        let body = br#"{"v":99,"req":{"something_new":{}}}"#;
        match decode_request(body) {
            Err(ProtoError::VersionMismatch { got: 99, .. }) => {}
            other => panic!("expected version mismatch, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_error_does_not_echo_content() {
        let body = br#"{"v":1,"req":{"authenticate":{"user":"a","secret":12345678}}}"#;
        let err = decode_request(body).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        assert!(!err.contains("12345678"), "{err}");
        let body = br#"{"v":1,"req":{"user_show":{"user":"a","extra":"hunter2"}}}"#;
        let err = decode_request(body).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn the_reply_goes_back_in_the_request_version() {
        let (v, req) = decode_request_versioned(br#"{"v":1,"req":"ping"}"#).unwrap();
        assert_eq!(v, 1);
        assert!(matches!(req, Request::Ping));
        let body = encode_reply_as(v, &Reply::Ok).unwrap();
        assert!(
            body.starts_with(br#"{"v":1,"#),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }

    #[test]
    fn request_ids_travel_in_the_envelope_and_are_checked() {
        let id = "0123456789abcdef0123456789abcdef";
        let body = encode_request_with_id(&Request::Ping, Some(id)).unwrap();
        let decoded = decode_request_full(&body).unwrap();
        assert_eq!(decoded.id.as_deref(), Some(id));
        assert!(
            decode_request_full(&encode_request(&Request::Ping).unwrap())
                .unwrap()
                .id
                .is_none()
        );
        let bad = br#"{"v":1,"req":"ping","id":"not-hex"}"#;
        assert!(matches!(
            decode_request_full(bad),
            Err(ProtoError::Malformed(_))
        ));
    }

    #[test]
    fn encoded_requests_never_reallocate() {
        let body = encode_request(&auth("alice")).unwrap();
        assert_eq!(
            body.capacity(),
            MAX_FRAME,
            "a reallocation leaves unwiped copies behind"
        );
    }

    #[test]
    fn replies_round_trip() {
        for reply in [
            Reply::Ok,
            Reply::Locked {
                until: None,
                unknown: true,
            },
            Reply::Error {
                kind: crate::ErrorKind::NotFound,
                message: "no such user".into(),
            },
            Reply::End { count: 3 },
        ] {
            let body = encode_reply(&reply).unwrap();
            assert_eq!(decode_reply(&body).unwrap(), reply);
        }
    }
}
