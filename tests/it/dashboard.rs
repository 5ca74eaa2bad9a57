//! Dashboard sign-in against a real server: the attempt limit, sessions, the cross-site check
//! and the security headers. Cookies are handled by hand (no cookie store), so each test says
//! exactly which cookie a request carries.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::helpers::{eventually, Server, TestEnv};

const TOKEN: &str = "dashboard-test-token";
const SESSION: &str = "hayloft_session";

fn env() -> Option<TestEnv> {
    Some(
        TestEnv::new()?
            .only(&["demo"])
            .env("HAYLOFT_PIPELINES__DEMO__ROWS", "5")
            .env("HAYLOFT_PIPELINES__DEMO__SCHEDULE", "never")
            .env("HAYLOFT_ADMIN_TOKEN", TOKEN)
            .env("HAYLOFT_SSH__ENABLED", "false"),
    )
}

/// No redirects followed (the 303 and its cookie are what the tests look at), no cookie store.
fn client() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(30)).build().unwrap()
}

fn sign_in(server: &Server, token: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = client().post(format!("{}/login", server.base_url)).form(&[("token", token)]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().unwrap()
}

/// The session cookie a response sets: its value and its attributes (lowercase).
fn session_cookie(response: &Response) -> (String, Vec<String>) {
    let header = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{SESSION}=")))
        .unwrap_or_else(|| panic!("no {SESSION} cookie in {:?}", response.headers()))
        .to_owned();
    let mut parts = header.split(';').map(str::trim);
    let value = parts.next().unwrap().trim_start_matches(&format!("{SESSION}=")).to_owned();
    (value, parts.map(str::to_ascii_lowercase).collect())
}

fn signed_in(server: &Server) -> String {
    let response = sign_in(server, TOKEN, &[]);
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    session_cookie(&response).0
}

fn post(server: &Server, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = client().post(format!("{}{path}", server.base_url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().unwrap()
}

fn with_session(session: &str) -> String {
    format!("{SESSION}={session}")
}

fn admin_buttons(server: &Server, session: &str) -> bool {
    let page = client()
        .get(format!("{}/dashboard/pipelines", server.base_url))
        .header(COOKIE, with_session(session))
        .send()
        .unwrap()
        .text()
        .unwrap();
    page.contains("button class=\"run\"")
}

// Wrong tokens get 401 after the delay; past the limit the address gets 429 with Retry-After,
// the right token included and whatever X-Forwarded-For says, until the window has passed.
#[test]
fn sign_in_brute_force_is_locked_out_for_the_window() {
    let Some(env) = env() else { return };
    // Long enough that the attempts below fit in it on a busy machine.
    let window = Duration::from_secs(10);
    let delay = Duration::from_millis(200);
    let env = env
        .env("HAYLOFT_HTTP__SIGN_IN_ATTEMPTS", "3")
        .env("HAYLOFT_HTTP__SIGN_IN_WINDOW", "10s")
        .env("HAYLOFT_HTTP__SIGN_IN_DELAY", "200ms");
    let server = env.serve();

    let first_wrong = Instant::now();
    for guess in ["guess-1", "guess-2", "guess-3"] {
        let started = Instant::now();
        let response = sign_in(&server, guess, &[]);
        assert!(started.elapsed() >= delay, "a wrong token is answered only after the delay");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get(SET_COOKIE).is_none());
        assert!(response.text().unwrap().contains("not the admin token"));
    }

    for (token, headers) in [(TOKEN, vec![]), ("guess-4", vec![]), (TOKEN, vec![("x-forwarded-for", "203.0.113.9")])] {
        let started = Instant::now();
        let response = sign_in(&server, token, &headers);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{token} {headers:?}");
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=window.as_secs()).contains(&retry_after), "Retry-After: {retry_after}");
        assert!(response.headers().get(SET_COOKIE).is_none());
        assert!(response.text().unwrap().contains("Too many wrong tokens"));
        assert!(started.elapsed() < Duration::from_secs(20), "a refusal does not wait for the token check");
    }
    assert!(server.logs().contains("too many wrong tokens"), "{}", server.logs());

    // Refusals are not counted, so the lockout ends with the window.
    let response = eventually(window + Duration::from_secs(60), || {
        let response = sign_in(&server, TOKEN, &[]);
        (response.status() != StatusCode::TOO_MANY_REQUESTS).then_some(response)
    })
    .expect("the lockout ends");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(first_wrong.elapsed() >= window, "not let in before the window passed");
}

// Behind a proxy, X-Forwarded-For names the client and X-Forwarded-Proto: https makes the
// cookie Secure.
#[test]
fn behind_a_proxy_the_forwarded_headers_count() {
    let Some(env) = env() else { return };
    let env = env
        .env("HAYLOFT_HTTP__BEHIND_PROXY", "true")
        .env("HAYLOFT_HTTP__SIGN_IN_ATTEMPTS", "1")
        .env("HAYLOFT_HTTP__SIGN_IN_DELAY", "10ms");
    let server = env.serve();

    let attacker = [("x-forwarded-for", "203.0.113.1, 10.0.0.1")];
    assert_eq!(sign_in(&server, "guess", &attacker).status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in(&server, TOKEN, &attacker).status(), StatusCode::TOO_MANY_REQUESTS);

    let user = [("x-forwarded-for", "198.51.100.2"), ("x-forwarded-proto", "https")];
    let response = sign_in(&server, TOKEN, &user);
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "another client is not locked out");
    let (_, attributes) = session_cookie(&response);
    assert!(attributes.contains(&"secure".to_owned()), "{attributes:?}");
}

// Each sign-in gets its own random cookie; it runs a pipeline, and after sign-out it is
// worthless while other sessions carry on.
#[test]
fn sessions_are_per_sign_in_and_end_at_sign_out() {
    let Some(env) = env() else { return };
    let env = env.env("HAYLOFT_HTTP__SESSION_LIFETIME", "2h");
    let server = env.serve();

    let response = sign_in(&server, TOKEN, &[("x-forwarded-proto", "https")]);
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    let (mine, attributes) = session_cookie(&response);
    for expected in ["httponly", "samesite=strict", "path=/", "max-age=7200"] {
        assert!(attributes.contains(&expected.to_owned()), "{expected} in {attributes:?}");
    }
    assert!(!attributes.contains(&"secure".to_owned()), "plain HTTP, and no proxy is trusted: {attributes:?}");
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&mine).unwrap();
    assert_eq!(id.len(), 32, "a 256-bit id");
    assert!(!mine.contains(TOKEN));

    let theirs = signed_in(&server);
    assert_ne!(mine, theirs, "two sign-ins, two cookies");
    assert!(admin_buttons(&server, &mine) && admin_buttons(&server, &theirs));
    assert!(!admin_buttons(&server, "forged"));

    let run = post(&server, "/dashboard/run/demo", &[("cookie", &with_session(&mine))]);
    assert_eq!(run.status(), StatusCode::ACCEPTED, "{:?}", run.text());

    let logout = post(&server, "/logout", &[("cookie", &with_session(&mine))]);
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let (cleared, attributes) = session_cookie(&logout);
    assert!(cleared.is_empty() && attributes.contains(&"max-age=0".to_owned()), "{attributes:?}");

    // A client that kept the old cookie gets nothing for it.
    let refused = post(&server, "/dashboard/run/demo", &[("cookie", &with_session(&mine))]);
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().unwrap().contains("admin token"));
    assert!(!admin_buttons(&server, &mine));
    assert!(admin_buttons(&server, &theirs), "signing out ends that session only");
}

// A POST another site makes a browser send is refused with 403, whatever it carries; the same
// POST from the dashboard's own origin, or from a script without browser headers, goes through.
#[test]
fn cross_site_posts_are_refused() {
    let Some(env) = env() else { return };
    let server = env.serve();
    let session = signed_in(&server);
    let cookie = with_session(&session);
    let bearer = format!("Bearer {TOKEN}");
    let evil_origin = [("origin", "https://evil.example")];
    let cross_site = [("sec-fetch-site", "cross-site")];
    let same_site = [("sec-fetch-site", "same-site")];

    for attack in [&evil_origin[..], &cross_site[..], &same_site[..]] {
        for path in ["/dashboard/run/demo", "/logout"] {
            let mut headers = attack.to_vec();
            headers.push(("cookie", &cookie));
            let response = post(&server, path, &headers);
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {attack:?}");
            assert!(response.text().unwrap().contains("came from another site"));
        }
        let mut headers = attack.to_vec();
        headers.push(("authorization", &bearer));
        assert_eq!(post(&server, "/dashboard/run/demo", &headers).status(), StatusCode::FORBIDDEN, "{attack:?}");
        let response = sign_in(&server, TOKEN, attack);
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{attack:?}");
        assert!(response.headers().get(SET_COOKIE).is_none());
    }
    assert!(admin_buttons(&server, &session), "the refused sign-out did not end the session");

    // The dashboard's own origin, and a script with a bearer token, are let through.
    let origin = server.base_url.clone();
    let run = post(&server, "/dashboard/run/demo", &[("origin", &origin), ("cookie", &cookie)]);
    assert_eq!(run.status(), StatusCode::ACCEPTED, "{:?}", run.text());
    let again = post(&server, "/dashboard/run/demo", &[("sec-fetch-site", "same-origin"), ("authorization", &bearer)]);
    assert_ne!(again.status(), StatusCode::FORBIDDEN, "{:?}", again.text());
    let signed_out = post(&server, "/logout", &[("sec-fetch-site", "same-origin"), ("cookie", &cookie)]);
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert!(!admin_buttons(&server, &session));
}

fn assert_security_headers(path: &str, headers: &HeaderMap) {
    let header = |name: &str| headers.get(name).map(|value| value.to_str().unwrap().to_owned());
    assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{path}");
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{path}");
    assert_eq!(header("referrer-policy").as_deref(), Some("same-origin"), "{path}");
    let policy = header("content-security-policy").unwrap_or_else(|| panic!("no CSP on {path}"));
    assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
    assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
}

/// The text of every bare `<tag>` in `html`.
fn inline(html: &str, tag: &str) -> Vec<String> {
    html.split(&format!("<{tag}>"))
        .skip(1)
        .filter_map(|rest| Some(rest.split_once(&format!("</{tag}>"))?.0.to_owned()))
        .collect()
}

// Every response forbids framing and sniffing; the pages' policy allows exactly their own
// inline script and styles, by hash; GraphiQL keeps its CDN scripts but may not be framed.
#[test]
fn security_headers_are_on_every_response() {
    let Some(env) = env() else { return };
    let server = env.serve();
    for path in ["/", "/healthz", "/login", "/metrics", "/nowhere"] {
        let response = server.get(path);
        assert_security_headers(path, response.headers());
    }
    let wrong = sign_in(&server, "wrong", &[]);
    assert_security_headers("POST /login", wrong.headers());

    for path in ["/", "/login"] {
        let response = server.get(path);
        let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(policy.starts_with("default-src 'self';"), "{policy}");
        let page = response.text().unwrap();
        let blocks: Vec<_> = inline(&page, "script").into_iter().chain(inline(&page, "style")).collect();
        assert!(!blocks.is_empty(), "{path} has inline code");
        for block in blocks {
            let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(block.as_bytes()));
            assert!(policy.contains(&format!("'sha256-{hash}'")), "{path}: a block not in {policy}");
        }
    }

    let graphiql = server.get("/graphiql");
    assert_eq!(graphiql.status(), StatusCode::OK);
    assert_security_headers("/graphiql", graphiql.headers());
    let policy = graphiql.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        policy.starts_with("default-src 'none'; script-src 'self';"),
        "GraphiQL loads only its own files: {policy}"
    );
    let page = graphiql.text().unwrap();
    assert!(!page.contains("https://") && !page.contains("//unpkg"), "no CDN: {page}");
    for asset in ["react.production.min.js", "graphiql.min.js", "graphiql.min.css", "start.js"] {
        let response = server.get(&format!("/graphiql/assets/{asset}"));
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
    }
    assert_eq!(server.get("/graphiql/assets/nope.js").status(), StatusCode::NOT_FOUND);
}
