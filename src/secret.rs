//! [`Secret`]: a setting that must never reach a log line or an error message (tokens,
//! passwords). Its own module so every part that holds one (the configuration, the Discord bot,
//! the HTTP front doors) can name it without depending on the configuration.

use serde::{Deserialize, Serialize};

/// A value that is never printed: `Debug` and logs show `[redacted]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Printing a secret the way logs and errors do shows nothing of it.
    #[test]
    fn debug_output_is_redacted() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(secret.expose(), "hunter2");
    }
}
