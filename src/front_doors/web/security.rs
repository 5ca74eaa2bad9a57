//! What every response and every state-changing request goes through: the security headers,
//! the cross-site check, and the two facts about a request that may come from a reverse proxy
//! (the client's address, and whether it arrived over TLS).
//!
//! The cross-site check ([`SameOrigin`]) keeps another site from making a signed-in browser
//! post to the dashboard. SameSite=Strict on the cookie already does most of that; the check
//! also covers browsers that ignore SameSite, and `same-site` requests from sibling subdomains,
//! which SameSite lets through. Clients that are not browsers send neither `Sec-Fetch-Site`
//! nor `Origin` and pass: they authenticate with a bearer token, which no other site can
//! make a browser attach.

use std::future::{ready, Ready};
use std::net::{IpAddr, Ipv4Addr};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::WebState;

/// Why a state-changing request was refused as cross-site.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrossSite {
    #[error("refused: this request came from another site (Sec-Fetch-Site: {0}); use the dashboard itself")]
    FetchSite(String),
    #[error("refused: this request came from another site (Origin: {origin}, but this server is {host}); use the dashboard itself")]
    Origin { origin: String, host: String },
}

impl ResponseError for CrossSite {
    fn status_code(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::Forbidden().content_type("text/plain; charset=utf-8").body(format!("{self}\n"))
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim)
}

/// The first entry of a comma-separated header (`X-Forwarded-For`, `X-Forwarded-Proto`).
fn first_entry<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    header_text(headers, name)?.split(',').next().map(str::trim).filter(|entry| !entry.is_empty())
}

/// The `host[:port]` of an `Origin` value, without the scheme's default port; `None` for an
/// opaque origin (`null`) or anything unreadable.
fn origin_authority(origin: &str) -> Option<(&str, String)> {
    let (scheme, rest) = origin.split_once("://")?;
    let authority = rest.split('/').next().filter(|authority| !authority.is_empty())?;
    Some((scheme, without_default_port(scheme, authority)))
}

fn without_default_port(scheme: &str, authority: &str) -> String {
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => "",
    };
    let authority = authority.to_ascii_lowercase();
    match authority.strip_suffix(default) {
        Some(bare) if !default.is_empty() => bare.to_owned(),
        _ => authority,
    }
}

/// The cross-site rules, on headers alone (see the module doc).
pub fn check_same_origin(headers: &HeaderMap, behind_proxy: bool) -> Result<(), CrossSite> {
    if let Some(site) = header_text(headers, "sec-fetch-site") {
        // `none`: the user typed the address or used a bookmark.
        return match site.to_ascii_lowercase().as_str() {
            "same-origin" | "none" => Ok(()),
            _ => Err(CrossSite::FetchSite(site.to_owned())),
        };
    }
    let Some(origin) = header_text(headers, header::ORIGIN.as_str()) else { return Ok(()) };
    // Behind a proxy the Host header may be the proxy's upstream name; the host the browser
    // used is in X-Forwarded-Host.
    let forwarded_host = behind_proxy.then(|| first_entry(headers, "x-forwarded-host")).flatten();
    let host = forwarded_host.or_else(|| header_text(headers, header::HOST.as_str())).unwrap_or_default();
    let same = match origin_authority(origin) {
        Some((scheme, authority)) => !host.is_empty() && authority == without_default_port(scheme, host),
        None => false,
    };
    if same {
        Ok(())
    } else {
        Err(CrossSite::Origin { origin: origin.to_owned(), host: host.to_owned() })
    }
}

/// An extractor that refuses cross-site requests with 403: put it first in a state-changing
/// handler's arguments, so the refusal comes before anything else is read.
pub struct SameOrigin;

impl FromRequest for SameOrigin {
    type Error = CrossSite;
    type Future = Ready<Result<Self, CrossSite>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let behind_proxy = request.app_data::<web::Data<WebState>>().is_some_and(|state| state.http.behind_proxy);
        let checked = check_same_origin(request.headers(), behind_proxy);
        if let Err(refusal) = &checked {
            tracing::warn!(path = request.path(), reason = %refusal, "cross-site request refused");
        }
        ready(checked.map(|()| SameOrigin))
    }
}

/// The client's address: the TCP peer, or — only `behind_proxy` — the first entry of
/// `X-Forwarded-For`, as the proxy saw the client.
pub fn client_address(request: &HttpRequest, behind_proxy: bool) -> IpAddr {
    let peer = request.peer_addr().map(|addr| addr.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !behind_proxy {
        return peer;
    }
    forwarded_for(request.headers()).unwrap_or(peer)
}

fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let entry = first_entry(headers, "x-forwarded-for")?;
    entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|addr| addr.ip()))
}

/// Whether the browser reached us over TLS: directly, or — only `behind_proxy` — as the proxy
/// reports in `X-Forwarded-Proto`. Decides the cookie's `Secure` flag.
pub fn came_over_tls(request: &HttpRequest, behind_proxy: bool) -> bool {
    if request.app_config().secure() {
        return true;
    }
    behind_proxy
        && first_entry(request.headers(), "x-forwarded-proto").is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// The text inside every bare `<tag>…</tag>` of `html`: the inline scripts or styles a
/// template carries.
pub(crate) fn inline_blocks<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut blocks = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        blocks.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    blocks
}

/// CSP source expressions (`'sha256-…'`) for every inline `<tag>` in `templates`.
fn hashes(templates: &[&str], tag: &str) -> String {
    templates
        .iter()
        .flat_map(|template| inline_blocks(template, tag))
        .map(|block| format!("'sha256-{}'", STANDARD.encode(Sha256::digest(block.as_bytes()))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Content-Security-Policy for pages built from `templates`: nothing but this origin, and
/// of inline code only the exact blocks the templates hold (by hash, so an injected `<script>`
/// does not run, which `'unsafe-inline'` would allow). No framing, no plugins, no `<base>`.
pub fn content_security_policy(templates: &[&str]) -> String {
    let scripts = hashes(templates, "script");
    let styles = hashes(templates, "style");
    format!(
        "default-src 'self'; script-src 'self' {scripts}; style-src 'self' {styles}; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Headers every response gets, unless its handler set its own (`/graphiql` sets its own CSP).
pub fn default_headers(content_security_policy: &str) -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::CONTENT_SECURITY_POLICY, content_security_policy.to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use actix_web::http::header::{HeaderName, HeaderValue};
    use actix_web::test::TestRequest;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    // Sec-Fetch-Site decides when present; Origin is compared with Host otherwise; neither passes.
    #[test]
    fn cross_site_rules() {
        let allowed = [
            vec![("sec-fetch-site", "same-origin")],
            vec![("sec-fetch-site", "none")],
            vec![("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")],
            vec![("origin", "https://Farm.Example"), ("host", "farm.example:443")],
            vec![("origin", "http://farm.example:80"), ("host", "farm.example")],
            vec![("host", "farm.example")],
            vec![],
        ];
        for pairs in allowed {
            assert_eq!(check_same_origin(&headers(&pairs), false), Ok(()), "{pairs:?}");
        }
        let refused = [
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site"), ("origin", "https://other.farm.example")],
            // Sec-Fetch-Site wins over a matching Origin.
            vec![("sec-fetch-site", "cross-site"), ("origin", "http://farm.example"), ("host", "farm.example")],
            vec![("origin", "https://evil.example"), ("host", "farm.example")],
            vec![("origin", "http://farm.example:8081"), ("host", "farm.example:8080")],
            vec![("origin", "https://farm.example"), ("host", "farm.example:80")],
            vec![("origin", "null"), ("host", "farm.example")],
            vec![("origin", "https://farm.example")],
        ];
        for pairs in refused {
            assert!(check_same_origin(&headers(&pairs), false).is_err(), "{pairs:?}");
        }
        let error = check_same_origin(&headers(&[("origin", "https://evil.example"), ("host", "a")]), false);
        assert!(error.unwrap_err().to_string().contains("https://evil.example"));
    }

    // X-Forwarded-Host stands in for Host only behind a proxy.
    #[test]
    fn the_forwarded_host_counts_only_behind_a_proxy() {
        let pairs =
            [("origin", "https://farm.example"), ("host", "127.0.0.1:8080"), ("x-forwarded-host", "farm.example")];
        assert!(check_same_origin(&headers(&pairs), false).is_err());
        assert_eq!(check_same_origin(&headers(&pairs), true), Ok(()));
    }

    // The peer address, unless behind a proxy with X-Forwarded-For: then its first entry.
    #[test]
    fn the_client_address_trusts_forwarded_for_only_behind_a_proxy() {
        let peer: std::net::SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let request = TestRequest::default()
            .peer_addr(peer)
            .insert_header(("x-forwarded-for", "203.0.113.7, 198.51.100.2"))
            .to_http_request();
        assert_eq!(client_address(&request, false), peer.ip());
        assert_eq!(client_address(&request, true), "203.0.113.7".parse::<IpAddr>().unwrap());

        let garbage =
            TestRequest::default().peer_addr(peer).insert_header(("x-forwarded-for", "nope")).to_http_request();
        assert_eq!(client_address(&garbage, true), peer.ip(), "an unreadable header falls back to the peer");
        let with_port = TestRequest::default()
            .peer_addr(peer)
            .insert_header(("x-forwarded-for", "[2001:db8::1]:443"))
            .to_http_request();
        assert_eq!(client_address(&with_port, true), "2001:db8::1".parse::<IpAddr>().unwrap());
    }

    // X-Forwarded-Proto: https makes the cookie Secure only behind a proxy.
    #[test]
    fn tls_is_taken_from_the_proxy_only_behind_one() {
        let request = TestRequest::default().insert_header(("x-forwarded-proto", "https")).to_http_request();
        assert!(!came_over_tls(&request, false));
        assert!(came_over_tls(&request, true));
        let plain = TestRequest::default().insert_header(("x-forwarded-proto", "http")).to_http_request();
        assert!(!came_over_tls(&plain, true));
    }

    // Every inline block is hashed, byte for byte, and nothing is allowed inline otherwise.
    #[test]
    fn the_policy_hashes_each_inline_block() {
        let page = "<style>a{}</style><p>x</p><script>go()</script><script src=\"/x.js\"></script>";
        assert_eq!(inline_blocks(page, "script"), vec!["go()"]);
        let policy = content_security_policy(&[page, "<style>b{}</style>"]);
        let hash = |text: &str| format!("'sha256-{}'", STANDARD.encode(Sha256::digest(text.as_bytes())));
        assert!(policy.contains(&format!("script-src 'self' {};", hash("go()"))), "{policy}");
        assert!(policy.contains(&format!("style-src 'self' {} {};", hash("a{}"), hash("b{}"))), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'") && !policy.contains("unsafe"), "{policy}");
    }
}
