use std::path::PathBuf;

/// The daemon's error type. Variants that reach a peer are turned into a typed
/// `Reply::Error` by the handlers; none of them ever carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("database: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("database {path}: {message}")]
    StoreSetup { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another credd already serves {0} (its lock file is held)")]
    AlreadyRunning(PathBuf),
    #[error("password hashing: {0}")]
    Hashing(String),
    #[error("{0}")]
    Startup(String),
}

impl DaemonError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DaemonError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, DaemonError>;
