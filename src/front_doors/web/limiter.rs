//! Wrong sign-in tokens, counted per client address.
//!
//! After `sign_in_attempts` wrong tokens from one address within `sign_in_window` (counted from
//! the first of them), that address is refused until the window has passed, without its token
//! even being looked at — so guessing right during the lockout gains nothing. A right token
//! clears the address's count.
//!
//! Written here rather than with a general rate-limiting crate: those count every check, where
//! only wrong tokens must count, and have no way to ask "is this address locked out?" without
//! spending an attempt. They also track keys without a bound.
//!
//! Memory is bounded: at most [`MAX_CLIENTS`] addresses are tracked, each in a few bytes. When
//! the table is full, entries whose window has passed are pruned; if it is still full, the entry
//! closest to expiry makes room. IPv6 clients are counted per /64, the block one host is
//! usually given, so walking through one's own addresses does not buy more attempts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Addresses tracked at once: about 64 bytes each, so well under a megabyte.
pub const MAX_CLIENTS: usize = 10_000;

/// What became of one sign-in attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The token was right.
    Accepted,
    /// The token was wrong; `remaining` more wrong ones are allowed in this window.
    Wrong { remaining: u32 },
    /// Too many wrong tokens lately; the token was not checked.
    Refused { retry_after: Duration },
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    /// When the first wrong token of this window came.
    since: Instant,
    count: u32,
}

/// Sign-in attempts, shared by every HTTP worker.
#[derive(Debug)]
pub struct SignInLimiter {
    attempts: u32,
    window: Duration,
    max_clients: usize,
    clients: Mutex<HashMap<IpAddr, Failures>>,
}

/// The address attempts are counted against: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by /64.
pub fn counted_address(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

impl SignInLimiter {
    pub fn new(attempts: u32, window: Duration) -> Self {
        Self::with_capacity(attempts, window, MAX_CLIENTS)
    }

    fn with_capacity(attempts: u32, window: Duration, max_clients: usize) -> Self {
        Self { attempts, window, max_clients: max_clients.max(1), clients: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Failures>> {
        // Each update is a single map operation, so a panic elsewhere cannot have left the map
        // half-changed: keep counting rather than stop every sign-in.
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One attempt from `client`: `token_is_right` is called only if the client is not locked
    /// out. It runs under the limiter's lock, so simultaneous attempts from one address cannot
    /// all slip in before the first of them is counted.
    pub fn attempt(&self, client: IpAddr, token_is_right: impl FnOnce() -> bool) -> Attempt {
        self.attempt_at(client, Instant::now(), token_is_right)
    }

    fn attempt_at(&self, client: IpAddr, now: Instant, token_is_right: impl FnOnce() -> bool) -> Attempt {
        let client = counted_address(client);
        let mut clients = self.lock();
        if let Some(failures) = clients.get(&client).copied() {
            let ends = failures.since + self.window;
            if now >= ends {
                clients.remove(&client);
            } else if failures.count >= self.attempts {
                return Attempt::Refused { retry_after: ends - now };
            }
        }
        if token_is_right() {
            clients.remove(&client);
            return Attempt::Accepted;
        }
        if !clients.contains_key(&client) && clients.len() >= self.max_clients {
            self.make_room(&mut clients, now);
        }
        let failures = clients.entry(client).or_insert(Failures { since: now, count: 0 });
        failures.count = failures.count.saturating_add(1);
        Attempt::Wrong { remaining: self.attempts.saturating_sub(failures.count) }
    }

    fn make_room(&self, clients: &mut HashMap<IpAddr, Failures>, now: Instant) {
        clients.retain(|_, failures| now < failures.since + self.window);
        if clients.len() < self.max_clients {
            return;
        }
        // Still full of live windows: give up the one that would have expired first.
        if let Some(oldest) = clients.iter().min_by_key(|(_, failures)| failures.since).map(|(client, _)| *client) {
            clients.remove(&oldest);
            tracing::warn!(max_clients = self.max_clients, "sign-in limiter full, forgetting the oldest address");
        }
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::cell::Cell;
    use std::net::Ipv4Addr;

    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    fn address(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    // N wrong tokens lock the address out for the rest of the window, right token or not.
    #[test]
    fn the_limit_locks_an_address_out_until_the_window_passes() {
        let limiter = SignInLimiter::new(3, WINDOW);
        let start = Instant::now();
        let client = address(1);
        for (second, remaining) in [(0, 2), (10, 1), (20, 0)] {
            let at = start + Duration::from_secs(second);
            assert_eq!(limiter.attempt_at(client, at, || false), Attempt::Wrong { remaining });
        }
        let checked = Cell::new(false);
        let refused = limiter.attempt_at(client, start + Duration::from_secs(30), || {
            checked.set(true);
            true
        });
        assert_eq!(refused, Attempt::Refused { retry_after: Duration::from_secs(30) });
        assert!(!checked.get(), "the token is not even checked while locked out");
        assert_eq!(limiter.attempt_at(address(2), start, || false), Attempt::Wrong { remaining: 2 }, "per address");

        assert_eq!(limiter.attempt_at(client, start + WINDOW, || true), Attempt::Accepted, "the window has passed");
    }

    // The window counts from the first wrong token; after it, counting starts afresh.
    #[test]
    fn wrong_tokens_spread_beyond_the_window_never_lock_out() {
        let limiter = SignInLimiter::new(2, WINDOW);
        let start = Instant::now();
        let client = address(1);
        assert_eq!(limiter.attempt_at(client, start, || false), Attempt::Wrong { remaining: 1 });
        let next_window = start + WINDOW + Duration::from_secs(1);
        assert_eq!(limiter.attempt_at(client, next_window, || false), Attempt::Wrong { remaining: 1 });
        assert_eq!(limiter.attempt_at(client, next_window, || false), Attempt::Wrong { remaining: 0 });
        assert!(matches!(limiter.attempt_at(client, next_window, || true), Attempt::Refused { .. }));
    }

    // A right token before the limit clears the address's count.
    #[test]
    fn a_right_token_clears_the_count() {
        let limiter = SignInLimiter::new(2, WINDOW);
        let start = Instant::now();
        let client = address(1);
        assert_eq!(limiter.attempt_at(client, start, || false), Attempt::Wrong { remaining: 1 });
        assert_eq!(limiter.attempt_at(client, start, || true), Attempt::Accepted);
        assert_eq!(limiter.tracked(), 0);
        assert_eq!(limiter.attempt_at(client, start, || false), Attempt::Wrong { remaining: 1 });
    }

    // The table never grows past its cap: expired entries go first, then the oldest.
    #[test]
    fn tracked_addresses_are_bounded() {
        let limiter = SignInLimiter::with_capacity(3, WINDOW, 4);
        let start = Instant::now();
        for last in 0..4 {
            limiter.attempt_at(address(last), start + Duration::from_secs(u64::from(last)), || false);
        }
        assert_eq!(limiter.tracked(), 4);
        limiter.attempt_at(address(10), start + Duration::from_secs(10), || false);
        assert_eq!(limiter.tracked(), 4, "the oldest made room");
        assert!(!limiter.lock().contains_key(&address(0)));

        limiter.attempt_at(address(20), start + 2 * WINDOW, || false);
        assert_eq!(limiter.tracked(), 1, "every expired window was pruned");
        for last in 100..200 {
            limiter.attempt_at(address(last), start + 2 * WINDOW, || false);
        }
        assert_eq!(limiter.tracked(), 4);
    }

    // One IPv6 host holds a whole /64; it counts as one address.
    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(counted_address(a), counted_address(b));
        assert_ne!(counted_address(a), counted_address(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(counted_address(mapped), address(7));

        let limiter = SignInLimiter::new(2, WINDOW);
        let now = Instant::now();
        limiter.attempt_at(a, now, || false);
        assert_eq!(limiter.attempt_at(b, now, || false), Attempt::Wrong { remaining: 0 });
    }
}
