//! HTTP hardening shared by the associate terminal and the HQ API: token-bucket rate limits
//! per client (IP address or bearer token), and the security headers every response carries.
//!
//! A limit refuses with 429 and a `Retry-After` header (whole seconds); the JSON body is each
//! API's own error shape (`{"error": "rate_limited", "message", "retry_after_s"}`).

use axum::extract::{ConnectInfo, Request};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept before idle (full) ones are dropped, so a flood of addresses cannot grow
/// memory without bound.
const BUCKETS_MAX: usize = 10_000;

/// A token bucket: `burst` requests at once, refilled at `per_minute` a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

impl RateLimit {
    fn per_s(&self) -> f64 {
        f64::from(self.per_minute.max(1)) / 60.0
    }
    fn burst(&self) -> f64 {
        f64::from(self.burst.max(1))
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by client key (`ip:...`, `token:...`).
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Take one request from `key`'s bucket now; `Err(seconds)` to wait when it is empty.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    /// [`RateLimiter::check`] at a given instant (tests).
    pub fn check_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let (rate, burst) = (self.limit.per_s(), self.limit.burst());
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= BUCKETS_MAX && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / rate).ceil();
            // Saturating float-to-int cast; at least one second.
            Err((wait as u64).max(1))
        }
    }
}

/// The client's IP address as a limiter key: from the connection (`serve` records it), or
/// `ip:unknown` for a router driven without one (in-process tests).
pub fn client_key(request: &Request) -> String {
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => format!("ip:{}", addr.ip()),
        None => "ip:unknown".to_string(),
    }
}

/// Content-Security-Policy of JSON and other non-page answers: nothing may load or frame them.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Content-Security-Policy of the associate terminal's page: its own script, stylesheet,
/// fetch and event stream only; inline `style` attributes (progress bars) are allowed, inline
/// script is not.
pub const TERMINAL_CSP: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Content-Security-Policy of HQ's dashboard: one self-contained page whose inline style and
/// (demo only) inline script call the API on the same origin.
pub const DASHBOARD_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Add the security headers to a response: CSP (`page_csp` for HTML, [`API_CSP`] otherwise),
/// `nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, and
/// `Cache-Control: no-store` on everything under `/api/` and on JSON (unless the handler
/// chose a cache policy itself).
pub fn add_headers(headers: &mut HeaderMap, page_csp: &'static str, api: bool) {
    let html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let csp = if html { page_csp } else { API_CSP };
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if (api || json) && !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Middleware: [`add_headers`] on every response, with `page_csp` for HTML pages.
pub async fn security_headers(page_csp: &'static str, request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    add_headers(response.headers_mut(), page_csp, api);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_says_how_long_to_wait() {
        let limiter = RateLimiter::new(RateLimit {
            per_minute: 30,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check_at("ip:a", t0), Ok(()));
        }
        // Empty: one token comes back every 2 s.
        assert_eq!(limiter.check_at("ip:a", t0), Err(2));
        // Another client has its own bucket.
        assert_eq!(limiter.check_at("ip:b", t0), Ok(()));
        assert_eq!(
            limiter.check_at("ip:a", t0 + Duration::from_millis(1_500)),
            Err(1)
        );
        assert_eq!(
            limiter.check_at("ip:a", t0 + Duration::from_secs(2)),
            Ok(())
        );
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(3_600);
        for _ in 0..3 {
            assert_eq!(limiter.check_at("ip:a", later), Ok(()));
        }
        assert!(limiter.check_at("ip:a", later).is_err());
    }

    #[test]
    fn idle_buckets_are_dropped_when_too_many_clients_appear() {
        let limiter = RateLimiter::new(RateLimit {
            per_minute: 60,
            burst: 1,
        });
        let t0 = Instant::now();
        for i in 0..BUCKETS_MAX {
            let _ = limiter.check_at(&format!("ip:{i}"), t0);
        }
        let later = t0 + Duration::from_secs(5);
        assert_eq!(limiter.check_at("ip:new", later), Ok(()));
        let kept = limiter.buckets.lock().unwrap().len();
        assert!(kept < 10, "kept {kept} buckets");
    }

    #[test]
    fn pages_get_their_policy_and_api_answers_are_not_stored() {
        let mut page = HeaderMap::new();
        page.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        page.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        add_headers(&mut page, TERMINAL_CSP, false);
        assert_eq!(page[CONTENT_SECURITY_POLICY], TERMINAL_CSP);
        assert_eq!(page[CACHE_CONTROL], "no-cache");
        assert_eq!(page[X_FRAME_OPTIONS], "DENY");
        let mut api = HeaderMap::new();
        api.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        add_headers(&mut api, TERMINAL_CSP, true);
        assert_eq!(api[CONTENT_SECURITY_POLICY], API_CSP);
        assert_eq!(api[CACHE_CONTROL], "no-store");
        assert_eq!(api[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(api[REFERRER_POLICY], "no-referrer");
    }
}
