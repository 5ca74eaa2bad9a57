//! A scriptable local upstream that misbehaves on purpose, and what Hayloft does about each way
//! a transfer can go wrong: a body cut short of its `Content-Length`, a chunked body without its
//! final chunk, a reset mid-body, a close-delimited body, a trickle, an endless body and slow
//! headers. The rule under test: a body is complete or the fetch fails, and a failed fetch
//! never changes stored rows.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use hayloft::pipelines::cards::{CardCombo, CardComboCard};

use crate::helpers::{stored_rows, TestEnv};

/// How the upstream answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The whole body with its `Content-Length`.
    Whole,
    /// The whole body, chunked, with its final chunk.
    Chunked,
    /// The full `Content-Length`, then `percent` % of the body, then the connection closes.
    Truncated { percent: usize },
    /// A `Content-Length` larger than the body by `extra` bytes; the body, then the close.
    WrongLength { extra: usize },
    /// The body in chunks, then the close without the final zero chunk.
    ChunkedWithoutEnd,
    /// Half the body, then a TCP reset.
    ResetMidBody,
    /// HTTP/1.1 with no length and no chunking: the body ends with the connection (RFC 9112 §6.3).
    CloseDelimited,
    /// The head, then one body byte every `every_ms` milliseconds.
    Trickle { every_ms: u64 },
    /// Chunks of filler, forever (until the client goes away).
    Endless,
    /// The head one byte every `every_ms` milliseconds.
    SlowHeaders { every_ms: u64 },
}

type Pages = dyn Fn(&str) -> Option<(Vec<u8>, String)> + Send + Sync;

/// A local upstream on 127.0.0.1 whose answers are scripted per request target; requests with
/// no script answer [`Fault::Whole`].
pub struct FaultUpstream {
    pub url: String,
    script: Arc<Mutex<HashMap<String, Fault>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl FaultUpstream {
    /// Serves the bodies `pages` gives for each request target (`/manage_hoc.php`), or 404.
    pub fn start(pages: impl Fn(&str) -> Option<(Vec<u8>, String)> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(HashMap::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let pages: Arc<Pages> = Arc::new(pages);
        let (script_for_server, seen_by_server) = (script.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (script, seen, pages) = (script_for_server.clone(), seen_by_server.clone(), pages.clone());
                std::thread::spawn(move || serve_connection(stream, &script, &seen, &*pages));
            }
        });
        Self { url, script, seen }
    }

    /// Serves Hayloft's own sample pages (as `hayloft serve` with no upstream does).
    pub fn sample() -> Self {
        let samples = hayloft::pipelines::registry::sample_pages();
        Self::start(move |request| {
            if request == "/api.php?method=items" {
                return Some((hayloft::upstream::demo_data::items_body(1).to_vec(), "application/json".to_owned()));
            }
            samples.page(request).map(|page| (page.body.into_bytes(), page.content_type.to_owned()))
        })
    }

    /// From now on, answers `target` with `fault`.
    pub fn set(&self, target: &str, fault: Fault) {
        self.script.lock().unwrap().insert(target.to_owned(), fault);
    }

    /// How many requests for `target` arrived.
    pub fn requests_for(&self, target: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|seen| *seen == target).count()
    }
}

/// Reads one request head and answers it as scripted; one request per connection.
fn serve_connection(
    mut stream: TcpStream,
    script: &Mutex<HashMap<String, Fault>>,
    seen: &Mutex<Vec<String>>,
    pages: &Pages,
) {
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    seen.lock().unwrap().push(target.clone());
    let fault = script.lock().unwrap().get(&target).copied().unwrap_or(Fault::Whole);
    let Some((body, content_type)) = pages(&target) else {
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    };
    let head_with_length = |length: usize| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
        )
    };
    let chunked_head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    let write_chunks = |stream: &mut TcpStream, body: &[u8]| {
        for chunk in body.chunks(1000) {
            stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
            stream.write_all(chunk)?;
            stream.write_all(b"\r\n")?;
        }
        Ok::<_, std::io::Error>(())
    };
    // Write errors mean the client gave up, which is what several faults provoke.
    let _ = (|| -> std::io::Result<()> {
        match fault {
            Fault::Whole => {
                stream.write_all(head_with_length(body.len()).as_bytes())?;
                stream.write_all(&body)?;
            }
            Fault::Chunked => {
                stream.write_all(chunked_head.as_bytes())?;
                write_chunks(&mut stream, &body)?;
                stream.write_all(b"0\r\n\r\n")?;
            }
            Fault::Truncated { percent } => {
                stream.write_all(head_with_length(body.len()).as_bytes())?;
                stream.write_all(&body[..body.len() * percent / 100])?;
            }
            Fault::WrongLength { extra } => {
                stream.write_all(head_with_length(body.len() + extra).as_bytes())?;
                stream.write_all(&body)?;
            }
            Fault::ChunkedWithoutEnd => {
                stream.write_all(chunked_head.as_bytes())?;
                write_chunks(&mut stream, &body)?;
            }
            Fault::ResetMidBody => {
                stream.write_all(head_with_length(body.len()).as_bytes())?;
                stream.write_all(&body[..body.len() / 2])?;
                stream.flush()?;
                reset(&stream);
            }
            Fault::CloseDelimited => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n");
                stream.write_all(head.as_bytes())?;
                stream.write_all(&body)?;
            }
            // The two slow faults sleep on the upstream's own thread: the delay is the fault
            // being served, not a test waiting for something (the test waits on the run).
            Fault::Trickle { every_ms } => {
                stream.write_all(head_with_length(body.len()).as_bytes())?;
                for byte in &body {
                    stream.write_all(std::slice::from_ref(byte))?;
                    std::thread::sleep(Duration::from_millis(every_ms));
                }
            }
            Fault::Endless => {
                stream.write_all(chunked_head.as_bytes())?;
                let filler = vec![b' '; 64 * 1024];
                loop {
                    write_chunks(&mut stream, &filler)?;
                }
            }
            Fault::SlowHeaders { every_ms } => {
                for byte in head_with_length(body.len()).as_bytes() {
                    stream.write_all(std::slice::from_ref(byte))?;
                    std::thread::sleep(Duration::from_millis(every_ms));
                }
                stream.write_all(&body)?;
            }
        }
        stream.flush()
    })();
}

/// Closes `stream` with a TCP reset rather than an orderly close.
fn reset(stream: &TcpStream) {
    let linger = nix::libc::linger { l_onoff: 1, l_linger: 0 };
    nix::sys::socket::setsockopt(stream, nix::sys::socket::sockopt::Linger, &linger).unwrap();
    let _ = stream.shutdown(std::net::Shutdown::Read);
}

const CARDS: &str = "/manage_hoc.php";

fn cards_env(upstream: &FaultUpstream) -> Option<TestEnv> {
    Some(
        TestEnv::new()?
            .env("HAYLOFT_UPSTREAM_URL", &upstream.url)
            .only(&["cards"])
            .env("HAYLOFT_UPSTREAM__RETRIES", "1")
            .env("HAYLOFT_UPSTREAM__TIMEOUT", "2s")
            .env("HAYLOFT_UPSTREAM__IDLE_TIMEOUT", "1s")
            .env("HAYLOFT_UPSTREAM__MAX_BODY_BYTES", "1000000"),
    )
}

fn run_cards(env: &TestEnv) -> (Option<i32>, Value) {
    let output = env.command().args(["run", "cards", "--json"]).output().unwrap();
    let run = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!("no JSON: {}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    });
    (output.status.code(), run)
}

/// What the cards pipeline has stored, row by row.
fn stored_cards(env: &TestEnv) -> (Vec<Value>, Vec<Value>) {
    (stored_rows::<CardCombo>(env), stored_rows::<CardComboCard>(env))
}

// Every way a transfer can be cut short fails the run as a transient error (retried) and keeps
// every stored row; the same bodies served whole, chunked or close-delimited load fine.
#[test]
fn a_body_is_complete_or_the_fetch_fails() {
    let upstream = FaultUpstream::sample();
    let Some(env) = cards_env(&upstream) else { return };
    let (code, first) = run_cards(&env);
    assert_eq!(code, Some(0), "{first}");
    assert!(first["inserted"].as_i64().unwrap() > 0, "{first}");
    let stored = stored_cards(&env);

    let cut_short = [
        (Fault::Truncated { percent: 80 }, "cut short"),
        (Fault::Truncated { percent: 90 }, "cut short"),
        (Fault::WrongLength { extra: 100 }, "cut short"),
        (Fault::ChunkedWithoutEnd, "cut short"),
        (Fault::ResetMidBody, "cut short"),
        (Fault::Endless, "larger than the 1000000-byte limit"),
        (Fault::Trickle { every_ms: 200 }, "did not answer within 2s"),
        (Fault::SlowHeaders { every_ms: 200 }, "did not answer within 2s"),
    ];
    for (fault, expected) in cut_short {
        let before = upstream.requests_for(CARDS);
        upstream.set(CARDS, fault);
        let started = Instant::now();
        let (code, run) = run_cards(&env);
        assert_eq!(code, Some(1), "{fault:?}: {run}");
        let error = run["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{fault:?}: {error}");
        assert_eq!(stored_cards(&env), stored, "{fault:?} changed the stored rows");
        if expected == "cut short" {
            assert_eq!(upstream.requests_for(CARDS) - before, 2, "{fault:?}: retried once as a transient error");
        }
        // Two attempts of at most 2 s each, a backoff and process start-up: far below the
        // 10-minute run timeout this used to take for a trickle.
        assert!(started.elapsed() < Duration::from_secs(60), "{fault:?} took {:?}", started.elapsed());
    }

    for fault in [Fault::Chunked, Fault::CloseDelimited, Fault::Whole] {
        upstream.set(CARDS, fault);
        let (code, run) = run_cards(&env);
        assert_eq!(code, Some(0), "{fault:?}: {run}");
        assert_eq!(run["deleted"], 0, "{fault:?}: {run}");
        assert_eq!(stored_cards(&env), stored, "{fault:?}");
    }
}
