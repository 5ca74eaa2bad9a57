//! Complete or failed: a guard under awc's HTTP/1.1 client that checks every response body
//! against its framing.
//!
//! awc (actix-http 3) ends a response body quietly when the connection closes, whether or not
//! the body was complete: a body shorter than its `Content-Length`, or a chunked body without
//! its final chunk, reads as a shorter body and a successful fetch. It also reads an HTTP/1.1
//! body delimited by the connection's close (no `Content-Length`, no chunking; valid per
//! RFC 9112 §6.3) as empty. Both turn a broken transfer into data that looks real.
//!
//! [`Guarded`] wraps the plain TCP stream awc reads from and follows each response's framing
//! itself: when the connection ends before the body does, the read fails (so awc reports a
//! payload error and the fetch is retried as transient), and a close-delimited HTTP/1.1 answer
//! is handed on with its status line marked `HTTP/1.0`, which makes awc read it to the close —
//! the two framings mean the same thing. Nothing else is changed.
//!
//! Over TLS the guard sees only ciphertext, so it stands aside: there, TLS itself reports a
//! connection cut without `close_notify`, HTTP/2 frames every body, and the fetch still counts
//! the bytes of every body that announces its length.
//!
//! The guard assumes what Hayloft sends: GET requests only (a `HEAD` answer carries a length
//! but no body) and no protocol upgrades.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use actix_rt::net::{ActixStream, TcpStream};
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, ConnectorService};
use awc::http::Uri;
use bytes::{Buf, BytesMut};
use futures::future::LocalBoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, Ready};

/// A response head larger than this is refused (actix-http's own limit is 32 KiB of headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Why a response could not be read whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("the connection closed after {received} of the {announced} body bytes announced")]
    ShortBody { received: u64, announced: u64 },
    #[error("the connection closed before the final chunk of a chunked body")]
    UnfinishedChunks,
    #[error("the connection closed in the middle of a response head")]
    UnfinishedHead,
    #[error("malformed response head: {0}")]
    BadHead(String),
    #[error("malformed chunked body: {0}")]
    BadChunk(&'static str),
    #[error("the response head is larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
}

impl From<FramingError> for io::Error {
    fn from(error: FramingError) -> Self {
        let kind = match error {
            FramingError::ShortBody { .. } | FramingError::UnfinishedChunks | FramingError::UnfinishedHead => {
                io::ErrorKind::UnexpectedEof
            }
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, error)
    }
}

/// Where the reader stands in the chunked coding (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hexadecimal size; `digits` read so far.
    Size {
        size: u64,
        digits: u32,
    },
    /// After the size: an extension (ignored) up to the line end.
    Extension {
        size: u64,
    },
    /// The `\n` ending the size line.
    SizeEnd {
        size: u64,
    },
    Data {
        left: u64,
    },
    /// The `\r\n` after a chunk's data; `seen_cr` once the `\r` came.
    DataEnd {
        seen_cr: bool,
    },
    /// After the last chunk: trailer lines; `line` bytes of the current one read.
    Trailer {
        line: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Collecting a response head (kept back until complete, so its status line can be marked).
    Head,
    Length {
        left: u64,
        announced: u64,
    },
    Chunked(Chunk),
    /// Close-delimited: the connection's end is the body's end.
    UntilClose,
}

/// Follows the framing of the responses read from one connection, one after another.
#[derive(Debug)]
pub struct ResponseFraming {
    state: State,
    head: Vec<u8>,
}

impl Default for ResponseFraming {
    fn default() -> Self {
        Self { state: State::Head, head: Vec::new() }
    }
}

impl ResponseFraming {
    /// Takes the next bytes read from the connection and appends what may be handed on to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut BytesMut) -> Result<(), FramingError> {
        while !input.is_empty() {
            match &mut self.state {
                State::Head => {
                    // A head ends at the first blank line; look only where it can newly appear.
                    let searched_from = self.head.len().saturating_sub(3);
                    self.head.extend_from_slice(input);
                    let Some(end) = find_head_end(&self.head, searched_from) else {
                        if self.head.len() > MAX_HEAD_BYTES {
                            return Err(FramingError::HeadTooLarge);
                        }
                        return Ok(());
                    };
                    let rest = self.head.split_off(end);
                    let mut head = std::mem::take(&mut self.head);
                    self.state = framing_of(&mut head)?;
                    out.extend_from_slice(&head);
                    // What followed the head is read in the new state (with `self.head` empty).
                    return self.feed(&rest, out);
                }
                State::Length { left, .. } => {
                    let taken = input.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&input[..taken]);
                    *left -= taken as u64;
                    input = &input[taken..];
                    if *left == 0 {
                        self.state = State::Head;
                    }
                }
                State::UntilClose => {
                    out.extend_from_slice(input);
                    return Ok(());
                }
                State::Chunked(chunk) => {
                    if let Chunk::Data { left } = chunk {
                        let taken = input.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                        out.extend_from_slice(&input[..taken]);
                        *left -= taken as u64;
                        input = &input[taken..];
                        if *left == 0 {
                            *chunk = Chunk::DataEnd { seen_cr: false };
                        }
                        continue;
                    }
                    let byte = input[0];
                    out.extend_from_slice(&input[..1]);
                    input = &input[1..];
                    match step_chunk(*chunk, byte)? {
                        Some(next) => *chunk = next,
                        None => self.state = State::Head,
                    }
                }
            }
        }
        Ok(())
    }

    /// The connection ended: fine between responses and for a close-delimited body, a
    /// [`FramingError`] anywhere else.
    pub fn finish(&self) -> Result<(), FramingError> {
        match &self.state {
            State::Head if self.head.is_empty() => Ok(()),
            State::Head => Err(FramingError::UnfinishedHead),
            State::UntilClose => Ok(()),
            State::Length { left, announced } => {
                Err(FramingError::ShortBody { received: announced - left, announced: *announced })
            }
            State::Chunked(_) => Err(FramingError::UnfinishedChunks),
        }
    }
}

fn find_head_end(head: &[u8], from: usize) -> Option<usize> {
    head.get(from..)?.windows(4).position(|window| window == b"\r\n\r\n").map(|at| from + at + 4)
}

/// Reads a complete head and decides how its body is framed; marks a close-delimited HTTP/1.1
/// answer as HTTP/1.0 so that awc reads it to the end.
fn framing_of(head: &mut [u8]) -> Result<State, FramingError> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(FramingError::BadHead("incomplete head".to_owned())),
        Err(error) => return Err(FramingError::BadHead(error.to_string())),
    }
    let status = response.code.unwrap_or_default();
    // 1xx, 204 and 304 answers have no body (RFC 9112 §6.3, rule 1).
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(State::Head);
    }
    let mut chunked = false;
    let mut length: Option<u64> = None;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            let value = String::from_utf8_lossy(header.value);
            // Chunked is the final coding when it is there at all (RFC 9112 §6.1).
            chunked = value.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value).unwrap_or_default().trim();
            let parsed = value
                .parse::<u64>()
                .map_err(|_| FramingError::BadHead(format!("content-length {value:?} is not a number")))?;
            if length.is_some_and(|seen| seen != parsed) {
                return Err(FramingError::BadHead("two different content-length values".to_owned()));
            }
            length = Some(parsed);
        }
    }
    if chunked {
        return Ok(State::Chunked(Chunk::Size { size: 0, digits: 0 }));
    }
    if let Some(announced) = length {
        return Ok(if announced == 0 { State::Head } else { State::Length { left: announced, announced } });
    }
    if response.version == Some(1) {
        // "HTTP/1.1" → "HTTP/1.0": same length, same meaning for a body that ends with the
        // connection, and the one form of it actix-http reads.
        if let Some(minor) = head.get_mut(7) {
            *minor = b'0';
        }
    }
    Ok(State::UntilClose)
}

/// One byte of the chunked coding outside chunk data; `None` once the final chunk and its
/// trailers are complete.
fn step_chunk(chunk: Chunk, byte: u8) -> Result<Option<Chunk>, FramingError> {
    let next = match chunk {
        Chunk::Size { size, digits } => match byte {
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                if digits >= 15 {
                    return Err(FramingError::BadChunk("chunk size too large"));
                }
                let digit = u64::from(char::from(byte).to_digit(16).unwrap_or_default());
                Chunk::Size { size: size * 16 + digit, digits: digits + 1 }
            }
            _ if digits == 0 => return Err(FramingError::BadChunk("chunk size missing")),
            b'\r' => Chunk::SizeEnd { size },
            b';' | b' ' | b'\t' => Chunk::Extension { size },
            _ => return Err(FramingError::BadChunk("invalid chunk size")),
        },
        Chunk::Extension { size } => match byte {
            b'\r' => Chunk::SizeEnd { size },
            b'\n' => return Err(FramingError::BadChunk("bare line feed after a chunk size")),
            _ => Chunk::Extension { size },
        },
        Chunk::SizeEnd { size } => match byte {
            b'\n' if size == 0 => Chunk::Trailer { line: 0 },
            b'\n' => Chunk::Data { left: size },
            _ => return Err(FramingError::BadChunk("chunk size line not ended by CRLF")),
        },
        Chunk::DataEnd { seen_cr: false } if byte == b'\r' => Chunk::DataEnd { seen_cr: true },
        Chunk::DataEnd { seen_cr: true } if byte == b'\n' => Chunk::Size { size: 0, digits: 0 },
        Chunk::DataEnd { .. } => return Err(FramingError::BadChunk("chunk data not followed by CRLF")),
        Chunk::Trailer { line } => match byte {
            b'\n' if line == 0 => return Ok(None),
            b'\n' => Chunk::Trailer { line: 0 },
            // The `\r` of a line end does not count as content.
            b'\r' => Chunk::Trailer { line },
            _ => Chunk::Trailer { line: line + 1 },
        },
        Chunk::Data { .. } => chunk,
    };
    Ok(Some(next))
}

/// A connection whose responses are checked by [`ResponseFraming`] (or passed through as they
/// are, for TLS connections).
pub struct Guarded<T> {
    inner: T,
    /// `None`: pass through (the bytes are TLS records).
    framing: Option<ResponseFraming>,
    /// Checked bytes not yet handed to the reader.
    ready: BytesMut,
    read_buffer: Box<[u8]>,
}

impl<T> Guarded<T> {
    pub fn new(inner: T, check: bool) -> Self {
        Self {
            inner,
            framing: check.then(ResponseFraming::default),
            ready: BytesMut::new(),
            read_buffer: vec![0; 16 * 1024].into_boxed_slice(),
        }
    }
}

impl<T> std::fmt::Debug for Guarded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded").field("checked", &self.framing.is_some()).finish_non_exhaustive()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.framing.is_none() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        loop {
            if !this.ready.is_empty() {
                let handed = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..handed]);
                this.ready.advance(handed);
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut this.read_buffer);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let Some(framing) = this.framing.as_mut() else { return Poll::Ready(Ok(())) };
            if read.filled().is_empty() {
                // The connection ended: an end of stream only where a response may end.
                framing.finish()?;
                return Poll::Ready(Ok(()));
            }
            framing.feed(read.filled(), &mut this.ready)?;
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<T: ActixStream> ActixStream for Guarded<T> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        if !self.ready.is_empty() {
            return Poll::Ready(Ok(Ready::READABLE));
        }
        self.inner.poll_read_ready(cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        self.inner.poll_write_ready(cx)
    }
}

/// awc's TCP connector with every plain-HTTP connection wrapped in [`Guarded`].
#[derive(Clone, Default)]
pub struct GuardedConnector {
    tcp: ConnectorService,
}

impl Service<ConnectInfo<Uri>> for GuardedConnector {
    type Response = Connection<Uri, Guarded<TcpStream>>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_service::always_ready!();

    fn call(&self, request: ConnectInfo<Uri>) -> Self::Future {
        // TLS is layered on top of this connection by awc: only plain HTTP can be read here.
        let plain = request.request().scheme_str() != Some("https");
        let connecting = self.tcp.call(request);
        Box::pin(async move {
            let connection = connecting.await?;
            let (tcp, connection) = connection.replace_io(());
            Ok(connection.replace_io(Guarded::new(tcp, plain)).1)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Feeds `response` in pieces of `piece` bytes, then the connection's end.
    fn read(response: &[u8], piece: usize) -> (Vec<u8>, Result<(), FramingError>) {
        let mut framing = ResponseFraming::default();
        let mut out = BytesMut::new();
        for part in response.chunks(piece) {
            if let Err(error) = framing.feed(part, &mut out) {
                return (out.to_vec(), Err(error));
            }
        }
        (out.to_vec(), framing.finish())
    }

    fn every_piece_size(response: &[u8], check: impl Fn(Vec<u8>, Result<(), FramingError>)) {
        for piece in [1, 2, 3, 7, 64, response.len().max(1)] {
            let (out, result) = read(response, piece);
            check(out, result);
        }
    }

    // A body as long as announced reads through unchanged; a shorter one fails on the close.
    #[test]
    fn content_length_must_be_met() {
        let whole = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        every_piece_size(whole, |out, result| {
            assert_eq!(result, Ok(()));
            assert_eq!(out, whole);
        });
        every_piece_size(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", |_, result| {
            assert_eq!(result, Err(FramingError::ShortBody { received: 3, announced: 5 }));
        });
    }

    // A chunked body needs its final zero chunk (and trailers' end); cut anywhere before, it fails.
    #[test]
    fn chunked_bodies_need_their_final_chunk() {
        let whole = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nExpires: never\r\n\r\n";
        every_piece_size(whole, |out, result| {
            assert_eq!(result, Ok(()));
            assert_eq!(out, whole);
        });
        for cut in 1..whole.len() {
            let (_, result) = read(&whole[..cut], 3);
            assert!(result.is_err(), "cut at {cut} was accepted");
        }
        let (_, bad) = read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 4);
        assert_eq!(bad, Err(FramingError::BadChunk("chunk size missing")));
    }

    // Without a length or chunking, an HTTP/1.1 body ends with the connection: it is passed on
    // marked HTTP/1.0, which awc reads to the end.
    #[test]
    fn close_delimited_bodies_are_marked_and_read_to_the_end() {
        let (out, result) = read(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"items\": []}", 5);
        assert_eq!(result, Ok(()));
        assert_eq!(out, b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n{\"items\": []}");
    }

    // Responses follow each other on a kept-alive connection; no-body answers need no body.
    #[test]
    fn responses_follow_each_other() {
        let two = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n";
        every_piece_size(two, |out, result| {
            assert_eq!(result, Ok(()));
            assert_eq!(out, two);
        });
        let (_, cut_head) = read(b"HTTP/1.1 200 OK\r\nContent-Le", 4);
        assert_eq!(cut_head, Err(FramingError::UnfinishedHead));
    }

    // Conflicting lengths and endless heads are refused.
    #[test]
    fn malformed_heads_are_refused() {
        let (_, two) = read(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", 100);
        assert!(matches!(two, Err(FramingError::BadHead(_))), "{two:?}");
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        endless.extend(std::iter::repeat_n(b'x', MAX_HEAD_BYTES + 10));
        let (_, result) = read(&endless, 1000);
        assert_eq!(result, Err(FramingError::HeadTooLarge));
    }
}
