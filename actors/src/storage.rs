//! A storage failure with its cause kept.
//!
//! The engine knows no database, yet its errors (a stage's, the ledger's) must carry the
//! database's own error: a log line then shows the whole chain, and code that knows the
//! backend can look at the kind (`downcast_ref`) instead of matching words in a message.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// A failure of the storage behind a stage or the ledger. Cheap to clone (stage errors travel
/// in messages); two are equal when they read the same.
#[derive(Clone)]
pub struct StorageFailure {
    cause: Arc<dyn Error + Send + Sync>,
}

impl StorageFailure {
    pub fn new(cause: impl Error + Send + Sync + 'static) -> Self {
        Self { cause: Arc::new(cause) }
    }

    /// The cause, if it is an error of type `E`.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.cause.downcast_ref::<E>()
    }
}

impl fmt::Debug for StorageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.cause, f)
    }
}

/// Reads as its cause, and hands out the cause's own source: wrapping adds no link to the chain.
impl fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.cause, f)
    }
}

impl Error for StorageFailure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.source()
    }
}

impl PartialEq for StorageFailure {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cause, &other.cause) || self.to_string() == other.to_string()
    }
}

impl Eq for StorageFailure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct DiskFull;

    #[derive(Debug, thiserror::Error)]
    #[error("insert failed")]
    struct Insert(#[source] DiskFull);

    // The cause's kind can be matched and its chain walked, through a clone too.
    #[test]
    fn the_cause_stays_reachable() {
        let failure = StorageFailure::new(Insert(DiskFull)).clone();
        assert!(failure.downcast_ref::<Insert>().is_some());
        assert_eq!(failure.to_string(), "insert failed");
        assert_eq!(failure.source().map(ToString::to_string).as_deref(), Some("disk full"));
        assert_eq!(failure, StorageFailure::new(Insert(DiskFull)));
    }
}
