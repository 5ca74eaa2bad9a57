//! What a connection may cost before it has logged in.
//!
//! Anyone who can reach the port can open connections, so until a key is accepted a connection
//! is held to two bounds: a place under [`PreauthGate`]'s caps (in total and per client address),
//! and a deadline counted from the moment of accept that covers the banner, the key exchange and
//! the login ([`LoginDeadline`]). A peer that connects and sends nothing therefore holds one
//! descriptor for at most `login_grace`, and never more than the caps allow at once: idle
//! connections can no longer use up the process's descriptors and take HTTP down with them.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why a connection was closed at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("too many connections not yet logged in (the limit is {limit})")]
    Total { limit: usize },
    #[error("too many connections not yet logged in from this address (the limit is {limit})")]
    Address { limit: usize },
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Counts the connections that have not logged in yet.
#[derive(Debug)]
pub struct PreauthGate {
    max_total: usize,
    max_per_address: usize,
    counts: Mutex<Counts>,
}

impl PreauthGate {
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self { max_total, max_per_address, counts: Mutex::default() })
    }

    /// A place for a new connection from `address`, or why there is none.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<PreauthPermit, Refusal> {
        // `::ffff:10.0.0.1` and `10.0.0.1` are one client.
        let address = address.to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.max_total {
            return Err(Refusal::Total { limit: self.max_total });
        }
        let from_address = counts.by_address.entry(address).or_default();
        if *from_address >= self.max_per_address {
            return Err(Refusal::Address { limit: self.max_per_address });
        }
        *from_address += 1;
        counts.total += 1;
        Ok(PreauthPermit { gate: Some(self.clone()), address })
    }

    /// Connections holding a place now.
    pub fn waiting(&self) -> usize {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).total
    }

    fn release(&self, address: IpAddr) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(from_address) = counts.by_address.get_mut(&address) {
            *from_address = from_address.saturating_sub(1);
            if *from_address == 0 {
                // Forget addresses with nothing pending, so the map stays as small as the load.
                counts.by_address.remove(&address);
            }
        }
    }
}

/// One connection's place under the caps: given back at login, or when the connection ends.
#[derive(Debug)]
pub struct PreauthPermit {
    gate: Option<Arc<PreauthGate>>,
    address: IpAddr,
}

impl PreauthPermit {
    /// The connection has logged in: it now counts against `max_sessions` instead.
    pub fn release(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.release(self.address);
        }
    }
}

impl Drop for PreauthPermit {
    fn drop(&mut self) {
        self.release();
    }
}

/// A socket that fails every read and write once `deadline` has passed without a login.
///
/// A timer around the handshake alone is not enough: russh reads the client's banner inside
/// `run_stream` and then runs the session on a task of its own, and a polite disconnect can
/// itself wait forever on a peer that never reads. Failing the socket ends that task wherever
/// it is waiting, which drops its handler and with it the connection's [`PreauthPermit`].
pub struct LoginDeadline<S> {
    inner: S,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    logged_in: Arc<AtomicBool>,
}

impl<S> LoginDeadline<S> {
    pub fn new(inner: S, deadline: tokio::time::Instant, logged_in: Arc<AtomicBool>) -> Self {
        Self { inner, deadline: Some(Box::pin(tokio::time::sleep_until(deadline))), logged_in }
    }

    /// `Err` once the deadline has passed and nobody logged in. Polling the timer also
    /// registers this task to wake at the deadline, so an idle peer is closed on time.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.logged_in.load(Ordering::SeqCst) {
            self.deadline = None;
            return Ok(());
        }
        let passed = self.deadline.as_mut().is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
        if passed {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no login before the login grace ran out"));
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LoginDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LoginDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::Ipv4Addr;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    fn address(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    // One address cannot take every place, and places come back when permits go.
    #[test]
    fn the_gate_caps_each_address_and_the_total() {
        let gate = PreauthGate::new(3, 2);
        let first = gate.admit(address(1)).unwrap();
        let _second = gate.admit(address(1)).unwrap();
        assert_eq!(gate.admit(address(1)).unwrap_err(), Refusal::Address { limit: 2 });
        let _third = gate.admit(address(2)).unwrap();
        assert_eq!(gate.admit(address(3)).unwrap_err(), Refusal::Total { limit: 3 });
        drop(first);
        assert_eq!(gate.waiting(), 2);
        let _again = gate.admit(address(1)).unwrap();
    }

    // A login gives the place back once; dropping the connection later does not give it twice.
    #[test]
    fn a_permit_is_released_once() {
        let gate = PreauthGate::new(1, 1);
        let mut permit = gate.admit(address(1)).unwrap();
        permit.release();
        let other = gate.admit(address(2)).unwrap();
        drop(permit);
        assert_eq!(gate.waiting(), 1);
        assert!(gate.admit(address(3)).is_err());
        drop(other);
        assert_eq!(gate.waiting(), 0);
    }

    // An IPv4 client seen through an IPv6 socket is the same client.
    #[test]
    fn mapped_addresses_count_as_one() {
        let gate = PreauthGate::new(10, 1);
        let _v4 = gate.admit(address(7)).unwrap();
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 7).to_ipv6_mapped());
        assert!(gate.admit(mapped).is_err());
    }

    // A peer that sends nothing is cut off at the deadline even while nothing is being read.
    #[tokio::test(start_paused = true)]
    async fn an_idle_peer_is_cut_off_at_the_deadline() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut stream = LoginDeadline::new(ours, deadline, Arc::default());
        let mut buffer = [0u8; 8];
        let error = stream.read(&mut buffer).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(tokio::time::Instant::now() >= deadline);
    }

    // After a login the deadline no longer applies.
    #[tokio::test(start_paused = true)]
    async fn a_logged_in_peer_outlives_the_deadline() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let logged_in = Arc::new(AtomicBool::new(false));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        let mut stream = LoginDeadline::new(ours, deadline, logged_in.clone());
        stream.write_all(b"hello").await.unwrap();
        logged_in.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(5)).await;
        theirs.write_all(b"late").await.unwrap();
        let mut buffer = [0u8; 4];
        stream.read_exact(&mut buffer).await.unwrap();
        assert_eq!(&buffer, b"late");
    }
}
