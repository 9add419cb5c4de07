use std::io;

/// Everything that can go wrong between two credd peers.
///
/// Messages never contain frame contents: a JSON error from serde can quote the offending value,
/// which may be a password, so [`ProtoError::Malformed`] keeps only its category and position.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge { len: usize, max: usize },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("protocol version {got} is not supported (this side speaks {oldest} to {newest})")]
    VersionMismatch { got: u32, oldest: u32, newest: u32 },
    #[error("the peer closed the connection")]
    Closed,
    #[error("unexpected reply from credd: {0}")]
    Unexpected(String),
    #[error("timed out waiting for credd")]
    Timeout,
    /// The daemon answered before reading the request (and closed): see `Client::send`.
    #[error("credd refused the connection: {}", describe_refusal(.0))]
    Refused(crate::Reply),
}

fn describe_refusal(reply: &crate::Reply) -> String {
    match reply {
        crate::Reply::Error { message, .. } => message.clone(),
        crate::Reply::Busy => "too many connections; try again later".into(),
        other => format!("{other:?}"),
    }
}

impl ProtoError {
    /// True when the daemon could not be reached or did not answer in time: the PAM module maps
    /// this to `PAM_AUTHINFO_UNAVAIL`, never to success.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ProtoError::Io(_) | ProtoError::Closed | ProtoError::Timeout | ProtoError::Truncated
        )
    }

    pub(crate) fn from_json(err: &serde_json::Error) -> Self {
        let what = match err.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unexpected field or value",
            serde_json::error::Category::Eof => "incomplete JSON",
        };
        ProtoError::Malformed(format!(
            "{what} at line {} column {}",
            err.line(),
            err.column()
        ))
    }
}
