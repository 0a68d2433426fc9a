//! The error type every driver and the engine return.

/// `Result` with docket's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to storage or validating a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be reached, or the connection broke. Callers retry with backoff:
    /// nothing was written.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A request was refused before it reached storage; the message says why.
    #[error("invalid request: {0}")]
    Invalid(String),

    /// A job payload is larger than [`crate::MAX_PAYLOAD_BYTES`].
    #[error("job payload is {size} bytes, above the limit of {max} bytes")]
    PayloadTooLarge {
        /// The payload's size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },

    /// A cron expression or time zone could not be parsed.
    #[error("invalid cron schedule {name:?}: {reason}")]
    InvalidCron {
        /// The schedule's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A stored value could not be decoded (a corrupt row, or a payload of the wrong shape).
    #[error("decode error: {0}")]
    Decode(String),

    /// The database aborted the transaction to settle a conflict with another one (a
    /// deadlock, a serialization failure): nothing was written, and running the same
    /// transaction again normally succeeds.
    #[error("transaction aborted by a conflict: {0}")]
    Conflict(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Whether the failure is transient (the connection), so that the same call may succeed
    /// later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }

    /// Whether the transaction lost a conflict with another and may simply run again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict(_))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Decode(e.to_string())
    }
}
