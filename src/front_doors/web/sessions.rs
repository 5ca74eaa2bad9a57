//! Dashboard sessions: who has signed in with the admin token, kept in memory.
//!
//! A session id is 32 random bytes from the operating system (`getrandom`), sent to the browser
//! base64url-encoded in the cookie. The store keeps only the SHA-256 of each id: what the server
//! holds (in memory, in a core dump, in a debug print) cannot be replayed as a cookie.
//!
//! A session ends at the first of: `session_lifetime` after sign-in, `session_idle` without a
//! request, sign-out, or being the oldest when `max_sessions` are live and someone signs in.
//! Sessions do not survive a restart of the process; everyone signs in again, which is the safe
//! way to fail.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Random bytes in a session id: 256 bits, beyond guessing.
const ID_BYTES: usize = 32;

/// What the store keys a session by: the SHA-256 of its id.
type IdHash = [u8; 32];

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the operating system gave no randomness for a session id: {0}")]
    Random(getrandom::Error),
}

/// How long sessions last and how many may be live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// From sign-in, however busy the session is.
    pub lifetime: Duration,
    /// Without a request.
    pub idle: Duration,
    /// Live at once; signing in beyond it ends the oldest.
    pub max_sessions: usize,
}

#[derive(Debug, Clone, Copy)]
struct Session {
    created: Instant,
    last_seen: Instant,
}

impl Session {
    fn expired(&self, now: Instant, limits: &SessionLimits) -> bool {
        now.saturating_duration_since(self.created) >= limits.lifetime
            || now.saturating_duration_since(self.last_seen) >= limits.idle
    }
}

/// The live sessions, shared by every HTTP worker.
pub struct SessionStore {
    limits: SessionLimits,
    sessions: Mutex<HashMap<IdHash, Session>>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore").field("limits", &self.limits).field("live", &self.lock().len()).finish()
    }
}

fn hash(id: &[u8]) -> IdHash {
    Sha256::digest(id).into()
}

/// The stored hash for a cookie value, if it can be a session id at all.
fn hash_of_cookie(cookie: &str) -> Option<IdHash> {
    let id = URL_SAFE_NO_PAD.decode(cookie.as_bytes()).ok()?;
    (id.len() == ID_BYTES).then(|| hash(&id))
}

impl SessionStore {
    pub fn new(limits: SessionLimits) -> Self {
        Self { limits, sessions: Mutex::new(HashMap::new()) }
    }

    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IdHash, Session>> {
        // Every update below is a single map operation, so a panic elsewhere while the lock was
        // held cannot have left the map half-changed: keep serving it rather than fail sign-ins.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session and returns the cookie value that carries it.
    pub fn create(&self) -> Result<String, SessionError> {
        self.create_at(Instant::now())
    }

    fn create_at(&self, now: Instant) -> Result<String, SessionError> {
        let mut id = [0u8; ID_BYTES];
        getrandom::fill(&mut id).map_err(SessionError::Random)?;
        let mut sessions = self.lock();
        if sessions.len() >= self.limits.max_sessions {
            sessions.retain(|_, session| !session.expired(now, &self.limits));
        }
        while sessions.len() >= self.limits.max_sessions.max(1) {
            // A linear scan, only when the store is full: sessions need the admin token, so
            // filling the store is not something a stranger can do to slow it down.
            let Some(oldest) = sessions.iter().min_by_key(|(_, session)| session.created).map(|(key, _)| *key) else {
                break;
            };
            sessions.remove(&oldest);
            tracing::info!(max_sessions = self.limits.max_sessions, "oldest dashboard session ended to make room");
        }
        sessions.insert(hash(&id), Session { created: now, last_seen: now });
        Ok(URL_SAFE_NO_PAD.encode(id))
    }

    /// Whether `cookie` carries a live session; a live one counts as used now.
    pub fn check(&self, cookie: &str) -> bool {
        self.check_at(cookie, Instant::now())
    }

    fn check_at(&self, cookie: &str, now: Instant) -> bool {
        let Some(key) = hash_of_cookie(cookie) else { return false };
        let mut sessions = self.lock();
        // A map lookup by hash, not a constant-time comparison: the key is the SHA-256 of 256
        // random bits, so how long a lookup takes says nothing an attacker can build on.
        let Some(session) = sessions.get_mut(&key) else { return false };
        if session.expired(now, &self.limits) {
            sessions.remove(&key);
            return false;
        }
        session.last_seen = now;
        true
    }

    /// Ends the session `cookie` carries, if any: the cookie stops working everywhere at once.
    pub fn end(&self, cookie: &str) -> bool {
        let Some(key) = hash_of_cookie(cookie) else { return false };
        self.lock().remove(&key).is_some()
    }

    /// Sessions held, expired ones included until they are next looked at or pruned.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn store(max_sessions: usize) -> SessionStore {
        SessionStore::new(SessionLimits { lifetime: 60 * MINUTE, idle: 10 * MINUTE, max_sessions })
    }

    // Ids are random, long, and never stored as they are.
    #[test]
    fn ids_are_random_and_only_their_hash_is_kept() {
        let store = store(10);
        let (first, second) = (store.create().unwrap(), store.create().unwrap());
        assert_ne!(first, second);
        assert_eq!(URL_SAFE_NO_PAD.decode(&first).unwrap().len(), ID_BYTES);
        assert!(store.check(&first) && store.check(&second));
        let held = store.lock();
        assert!(held.keys().all(|key| key != URL_SAFE_NO_PAD.decode(&first).unwrap().as_slice()));
        assert!(held.contains_key(&hash_of_cookie(&first).unwrap()));
    }

    // Anything that is not a live id is refused, including near misses.
    #[test]
    fn unknown_and_malformed_cookies_are_refused() {
        let store = store(10);
        let id = store.create().unwrap();
        assert!(!store.check(""));
        assert!(!store.check("not base64 !"));
        assert!(!store.check(&id[..id.len() - 2]));
        assert!(!store.check(&URL_SAFE_NO_PAD.encode([0u8; ID_BYTES])));
        assert!(store.check(&id));
    }

    // Use keeps a session alive past the idle limit, but never past its lifetime.
    #[test]
    fn sessions_expire_when_idle_and_at_the_end_of_their_lifetime() {
        let store = store(10);
        let start = Instant::now();
        let idle = store.create_at(start).unwrap();
        let busy = store.create_at(start).unwrap();
        for minute in (5..60).step_by(5) {
            assert!(store.check_at(&busy, start + minute * MINUTE), "used every 5 minutes: alive at {minute}");
        }
        assert!(!store.check_at(&idle, start + 10 * MINUTE), "idle for 10 minutes");
        assert!(!store.check_at(&busy, start + 60 * MINUTE), "an hour after sign-in");
        assert!(store.is_empty(), "expired sessions are dropped when seen");
    }

    // Past the cap the oldest session goes; expired ones go first.
    #[test]
    fn the_oldest_session_is_evicted_beyond_the_cap() {
        let store = store(2);
        let start = Instant::now();
        let first = store.create_at(start).unwrap();
        let second = store.create_at(start + MINUTE).unwrap();
        assert!(store.check_at(&first, start + 2 * MINUTE));
        let third = store.create_at(start + 3 * MINUTE).unwrap();
        assert_eq!(store.len(), 2);
        assert!(!store.check_at(&first, start + 4 * MINUTE), "oldest by sign-in, however recently used");
        assert!(store.check_at(&second, start + 4 * MINUTE) && store.check_at(&third, start + 4 * MINUTE));

        // Idle long enough, both expire; a new sign-in prunes them instead of evicting by age.
        let later = start + 30 * MINUTE;
        let fourth = store.create_at(later).unwrap();
        assert_eq!(store.len(), 1);
        assert!(store.check_at(&fourth, later));
    }

    // Signing out ends that session only.
    #[test]
    fn ending_a_session_invalidates_its_cookie() {
        let store = store(10);
        let (mine, theirs) = (store.create().unwrap(), store.create().unwrap());
        assert!(store.end(&mine));
        assert!(!store.check(&mine));
        assert!(!store.end(&mine), "already ended");
        assert!(store.check(&theirs));
    }
}
