//! The credd wire protocol, shared by the daemon, the PAM module and `credctl`.
//!
//! A frame is a 4-byte big-endian length followed by a JSON body of at most [`MAX_FRAME`] bytes.
//! Every body is an envelope carrying the protocol version, so a peer from another release gets a
//! clear `version_mismatch` error instead of a confusing parse failure. Requests and replies are
//! typed enums ([`Request`], [`Reply`]); nobody parses human strings.
//!
//! Enums use serde's externally tagged form on purpose: unlike the internally tagged form it does not
//! buffer the body into an intermediate value, so a password is copied only into its [`Secret`].

mod client;
mod error;
mod frame;
mod hashes;
mod message;
mod names;
pub mod paths;
mod secret;

pub use client::{Client, DEFAULT_TIMEOUT};
pub use error::ProtoError;
pub use frame::{
    DecodedRequest, MAX_FRAME, decode_reply, decode_request, decode_request_full,
    decode_request_versioned, encode_reply, encode_reply_as, encode_request,
    encode_request_with_id, read_frame, valid_request_id, write_frame,
};
pub use hashes::{
    CryptCost, HashScheme, MODERN_CRYPT_SCHEMES, check_shape, crypt_cost, crypt_rounds,
};
pub use message::{
    AccountRequest, AccountStatus, AuditEntry, AuditReport, AuthRequest, ChangeRequest,
    CheckReport, DaemonCounters, ErrorKind, FailureInfo, ImportAction, ImportOptions,
    ImportProblem, ImportRow, ImportSkip, ImportSummary, IssuedCode, OLDEST_SUPPORTED_VERSION,
    PROTOCOL_VERSION, Reply, Request, ResetIssued, SessionInfo, SessionRequest, ShadowOptions,
    ShadowRow, Target, UserInfo,
};
pub use names::{
    MAX_FIELD_LEN, MAX_NAME_LEN, MAX_SECRET_LEN, escape_unsafe, is_format_or_separator,
    is_unsafe_char, validate_field, validate_user_name,
};
pub use secret::Secret;
