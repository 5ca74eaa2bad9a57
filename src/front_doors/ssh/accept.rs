//! The SSH listener's accept loop, made safe for a flood.
//!
//! `accept` fails at once and again at once when the process is out of descriptors (EMFILE):
//! retried in a tight loop it spins a core and writes a log line per attempt (millions a
//! minute). So a failed accept waits before the next one, longer each time up to a second, and
//! repeated warnings (failed accepts, connections refused by the pre-login caps) are written
//! once per interval with a count of what was left out.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

/// The first wait after a failed accept, doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// The longest wait between accepts while they keep failing.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one line per kind of trouble in this long.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(5);

/// What the accept stream yields.
pub enum Accepted {
    Connection(tokio::net::TcpStream, SocketAddr),
    /// An accept failed; the stream has already waited before trying again.
    Failed(std::io::Error),
}

/// Accepts forever, waiting longer after each failure in a row.
pub fn accept_stream(listener: tokio::net::TcpListener) -> impl futures::Stream<Item = Accepted> {
    futures::stream::unfold((listener, Duration::ZERO), |(listener, backoff)| async move {
        if !backoff.is_zero() {
            tokio::time::sleep(backoff).await;
        }
        match listener.accept().await {
            Ok((stream, peer)) => Some((Accepted::Connection(stream, peer), (listener, Duration::ZERO))),
            Err(error) => Some((Accepted::Failed(error), (listener, next_backoff(backoff)))),
        }
    })
}

fn next_backoff(backoff: Duration) -> Duration {
    if backoff.is_zero() {
        FIRST_BACKOFF
    } else {
        (backoff * 2).min(MAX_BACKOFF)
    }
}

/// Decides when a repeated warning is written: the first at once, then one per interval.
#[derive(Debug)]
pub struct LogThrottle {
    interval: Duration,
    last_written: Option<Instant>,
    left_out: u64,
}

impl LogThrottle {
    pub fn new(interval: Duration) -> Self {
        Self { interval, last_written: None, left_out: 0 }
    }

    /// Counts one occurrence at `now`. `Some(n)` means write a line now, saying that `n` more
    /// happened since the last line; `None` means stay quiet.
    pub fn occurred(&mut self, now: Instant) -> Option<u64> {
        match self.last_written {
            Some(last) if now.duration_since(last) < self.interval => {
                self.left_out += 1;
                None
            }
            _ => {
                self.last_written = Some(now);
                Some(std::mem::take(&mut self.left_out))
            }
        }
    }

    /// What was left out since the last line, once the interval has passed: called on a timer,
    /// so the count of a burst is written even when nothing follows it.
    pub fn left_out(&mut self, now: Instant) -> Option<u64> {
        let due = self.last_written.is_none_or(|last| now.duration_since(last) >= self.interval);
        if self.left_out == 0 || !due {
            return None;
        }
        self.last_written = Some(now);
        Some(std::mem::take(&mut self.left_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Thousands of failures in one interval give one line now and one count later.
    #[test]
    fn a_burst_is_written_once_per_interval() {
        let start = Instant::now();
        let mut throttle = LogThrottle::new(Duration::from_secs(5));
        assert_eq!(throttle.occurred(start), Some(0));
        for step in 1..=10_000u64 {
            assert_eq!(throttle.occurred(start + Duration::from_micros(step)), None);
        }
        assert_eq!(throttle.occurred(start + Duration::from_secs(5)), Some(10_000));
        assert_eq!(throttle.occurred(start + Duration::from_secs(11)), Some(0));
    }

    // The timer writes a burst's count once the interval is over, and only once.
    #[test]
    fn a_burst_with_nothing_after_it_is_still_counted() {
        let start = Instant::now();
        let mut throttle = LogThrottle::new(Duration::from_secs(5));
        assert_eq!(throttle.occurred(start), Some(0));
        assert_eq!(throttle.occurred(start + Duration::from_secs(1)), None);
        assert_eq!(throttle.occurred(start + Duration::from_secs(2)), None);
        assert_eq!(throttle.left_out(start + Duration::from_secs(3)), None);
        assert_eq!(throttle.left_out(start + Duration::from_secs(5)), Some(2));
        assert_eq!(throttle.left_out(start + Duration::from_secs(20)), None);
    }

    // The wait grows from 10 ms to at most a second.
    #[test]
    fn the_backoff_doubles_up_to_a_second() {
        let mut backoff = Duration::ZERO;
        let mut waits = Vec::new();
        for _ in 0..10 {
            backoff = next_backoff(backoff);
            waits.push(backoff.as_millis());
        }
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
    }
}
