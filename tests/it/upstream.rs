//! The HTTP upstream against a scripted local server: retries with backoff, headers, and the
//! per-host politeness limits.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hayloft::upstream::demo_pages::SamplePages;
use hayloft::upstream::{Upstream, UpstreamError, UpstreamSettings};

/// What the scripted server saw.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(Instant, String)>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// Answers each request with the next status of `statuses` (the last one repeats), after `delay`.
fn scripted_server(statuses: Vec<u16>, delay: Duration) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let served = seen.clone();
    std::thread::spawn(move || {
        for (index, stream) in listener.incoming().flatten().enumerate() {
            let status = *statuses.get(index).or(statuses.last()).unwrap_or(&200);
            let seen = served.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                seen.most_in_flight.fetch_max(now, Ordering::SeqCst);
                let mut buffer = [0_u8; 8192];
                let read = stream.read(&mut buffer).unwrap_or(0);
                seen.requests
                    .lock()
                    .unwrap()
                    .push((Instant::now(), String::from_utf8_lossy(&buffer[..read]).into_owned()));
                std::thread::sleep(delay);
                let body = "{\"ok\": true}";
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                let _ = stream.write_all(response.as_bytes());
            });
        }
    });
    (url, seen)
}

fn settings() -> UpstreamSettings {
    UpstreamSettings {
        timeout: Duration::from_secs(5),
        retries: 3,
        rate_per_second: 100,
        ..UpstreamSettings::default()
    }
}

// 5xx answers are retried with backoff until one succeeds; the User-Agent is always sent.
#[actix::test]
async fn server_errors_are_retried_until_success() {
    let (url, seen) = scripted_server(vec![503, 502, 200], Duration::ZERO);
    let upstream = Upstream::from_url(&url, &settings(), &SamplePages::default()).unwrap();
    let started = Instant::now();
    let fetched = upstream.fetch("/api.php?method=items").await.unwrap();
    assert_eq!(&fetched.body[..], b"{\"ok\": true}");
    let requests = seen.requests.lock().unwrap();
    assert_eq!(requests.len(), 3, "two failures, then the success");
    assert!(started.elapsed() >= Duration::from_millis(200), "backoff waits between attempts");
    assert!(requests[0].1.to_ascii_lowercase().contains("user-agent: hayloft/"), "{}", requests[0].1);
    assert!(requests[0].1.starts_with("GET /api.php?method=items "), "{}", requests[0].1);
}

// A 4xx is not worth retrying; a 5xx that persists fails after the configured retries.
#[actix::test]
async fn client_errors_fail_at_once_and_server_errors_give_up() {
    let (url, seen) = scripted_server(vec![404], Duration::ZERO);
    let error =
        Upstream::from_url(&url, &settings(), &SamplePages::default()).unwrap().fetch("/x.php").await.unwrap_err();
    assert!(matches!(error, UpstreamError::Status { status: 404, .. }), "{error}");
    assert_eq!(seen.requests.lock().unwrap().len(), 1);

    let (url, seen) = scripted_server(vec![500], Duration::ZERO);
    let settings = UpstreamSettings { retries: 2, ..settings() };
    let error =
        Upstream::from_url(&url, &settings, &SamplePages::default()).unwrap().fetch("/x.php").await.unwrap_err();
    assert!(error.to_string().contains("answered HTTP 500"), "{error}");
    assert_eq!(seen.requests.lock().unwrap().len(), 3, "the first attempt and two retries");
}

// The session cookie (from HAYLOFT_UPSTREAM_COOKIE in production) is sent with each request.
#[actix::test]
async fn the_session_cookie_is_sent() {
    let (url, seen) = scripted_server(vec![200], Duration::ZERO);
    let upstream =
        Upstream::with_cookie(&url, &settings(), &SamplePages::default(), Some("session=secret-value".to_owned()))
            .unwrap();
    upstream.fetch("/x.php").await.unwrap();
    let request = seen.requests.lock().unwrap()[0].1.to_ascii_lowercase();
    assert!(request.contains("cookie: session=secret-value"), "{request}");
    assert!(!format!("{upstream:?}").contains("secret"), "the cookie never shows in debug output");
}

// Requests to one host never exceed the concurrency limit, and the rate limit spaces them out.
#[actix::test]
async fn per_host_concurrency_and_rate_are_limited() {
    let (url, seen) = scripted_server(vec![200], Duration::from_millis(100));
    let settings = UpstreamSettings { concurrency: 2, rate_per_second: 5, ..settings() };
    let upstream = Upstream::from_url(&url, &settings, &SamplePages::default()).unwrap();
    let started = Instant::now();
    let fetches = (0..10).map(|index| {
        let upstream = upstream.clone();
        async move { upstream.fetch(&format!("/x.php?n={index}")).await }
    });
    for result in futures::future::join_all(fetches).await {
        result.unwrap();
    }
    assert!(seen.most_in_flight.load(Ordering::SeqCst) <= 2, "at most 2 requests in flight");
    // A burst of 5, then one every 200 ms: the tenth starts no sooner than 1 s in.
    assert!(started.elapsed() >= Duration::from_millis(950), "took only {:?}", started.elapsed());
    let requests = seen.requests.lock().unwrap();
    assert_eq!(requests.len(), 10);
}
