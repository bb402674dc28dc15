//! Console logins: accounts from `[console]` (argon2 password hashes), server-side sessions
//! whose token only the `HttpOnly` cookie holds (the table keeps its SHA-256), and a lockout
//! after repeated failures.
//!
//! Invariants: an unknown account fails exactly like a wrong password (same work, same
//! answer, counts towards lockout); a locked account is refused even with the right
//! password; the role is checked on the server for every change. Sessions live in memory,
//! bounded: restarting HQ logs everybody out.

use crate::config::{ConsoleConfig, ConsoleRole};
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use axum::http::{header, HeaderMap};
use rand::RngCore;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// Name of the console's session cookie (the terminal's is `sn_session`).
pub const COOKIE: &str = "sn_console";
/// Failures allowed before an account is locked out.
pub const FAILURES_MAX: u32 = 5;
/// How long a lockout lasts.
pub const LOCKOUT_MS: u64 = 60_000;
/// Sessions kept at once; the oldest is dropped beyond it.
pub const SESSIONS_MAX: usize = 1_000;
/// Longest password accepted (argon2 takes any length; this bounds the work).
pub const PASSWORD_LEN_MAX: usize = 256;

/// A logged-in console user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub user: String,
    pub name: String,
    pub role: ConsoleRole,
}

impl ConsoleSession {
    pub fn is_admin(&self) -> bool {
        self.role == ConsoleRole::Admin
    }
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Unknown account or wrong password (never says which).
    #[error("wrong user or password")]
    BadCredentials,
    /// Too many failures: try again after this many seconds.
    #[error("too many failed logins: try again in {0} s")]
    LockedOut(u64),
}

struct Entry {
    session: ConsoleSession,
    expires_ms: u64,
}

/// Accounts, sessions and failure counts of the console.
pub struct ConsoleAuth {
    config: ConsoleConfig,
    sessions: Mutex<HashMap<String, Entry>>,
    /// user -> (failures, locked until ms).
    failures: Mutex<HashMap<String, (u32, u64)>>,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// An argon2id PHC string for `password` (config tooling and the demo).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A throwaway hash verified for unknown accounts, so they cost the same as known ones.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$mPJcWO0y8M4JmavqsPBudQ$La2MA8lSSOedwNST+u8HnJZbbqunV9omzXvbyeMB1xY";

impl ConsoleAuth {
    pub fn new(config: ConsoleConfig) -> ConsoleAuth {
        ConsoleAuth {
            config,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the cookie should carry `Secure`.
    pub fn secure_cookie(&self) -> bool {
        self.config.secure_cookie
    }

    /// Check `user` and `password` at `now_ms` (blocking: argon2 takes tens of ms); a new
    /// session token on success.
    pub fn login(
        &self,
        user: &str,
        password: &str,
        now_ms: u64,
    ) -> Result<(String, ConsoleSession), LoginError> {
        let key = user.trim().to_ascii_lowercase();
        if let Some(&(_, until)) = self.lock_failures().get(&key) {
            if until > now_ms {
                return Err(LoginError::LockedOut((until - now_ms).div_ceil(1000)));
            }
        }
        let account = self.config.account(&key);
        let password = if password.len() > PASSWORD_LEN_MAX {
            ""
        } else {
            password
        };
        let ok = match account {
            Some(a) => verify(password, &a.password_hash),
            None => {
                let _ = verify(password, DUMMY_PHC);
                false
            }
        };
        let account = match (account, ok) {
            (Some(a), true) => a,
            _ => return Err(self.fail(&key, now_ms)),
        };
        self.lock_failures().remove(&key);
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let session = ConsoleSession {
            user: account.user.clone(),
            name: account.name.clone(),
            role: account.role,
        };
        let mut sessions = self.lock_sessions();
        sessions.retain(|_, e| e.expires_ms > now_ms);
        if sessions.len() >= SESSIONS_MAX {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, e)| e.expires_ms)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                sessions.remove(&k);
            }
        }
        sessions.insert(
            token_hash(&token),
            Entry {
                session: session.clone(),
                expires_ms: now_ms.saturating_add(self.config.session_ttl_s * 1000),
            },
        );
        Ok((token, session))
    }

    fn fail(&self, key: &str, now_ms: u64) -> LoginError {
        let mut failures = self.lock_failures();
        // Bounded like the sessions: a flood of invented names cannot grow memory forever.
        if failures.len() >= SESSIONS_MAX && !failures.contains_key(key) {
            failures.retain(|_, (_, until)| *until > now_ms);
        }
        let entry = failures.entry(key.to_string()).or_insert((0, 0));
        entry.0 += 1;
        if entry.0 >= FAILURES_MAX {
            entry.1 = now_ms + LOCKOUT_MS;
            entry.0 = 0;
            return LoginError::LockedOut(LOCKOUT_MS / 1000);
        }
        LoginError::BadCredentials
    }

    /// The session the request's cookie names, if it is live at `now_ms`.
    pub fn session(&self, headers: &HeaderMap, now_ms: u64) -> Option<ConsoleSession> {
        let token = cookie_token(headers)?;
        let sessions = self.lock_sessions();
        let entry = sessions.get(&token_hash(&token))?;
        (entry.expires_ms > now_ms).then(|| entry.session.clone())
    }

    /// End the session the request's cookie names.
    pub fn logout(&self, headers: &HeaderMap) {
        if let Some(token) = cookie_token(headers) {
            self.lock_sessions().remove(&token_hash(&token));
        }
    }

    /// The `Set-Cookie` value for `token` (empty and expired to clear it).
    pub fn cookie(&self, token: &str) -> String {
        let max_age = if token.is_empty() {
            0
        } else {
            self.config.session_ttl_s
        };
        let secure = if self.config.secure_cookie {
            "; Secure"
        } else {
            ""
        };
        format!(
            "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={max_age}{secure}"
        )
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, u64)>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The value of a cookie named `name` in the request, if present.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsoleAccount;
    use axum::http::HeaderValue;

    fn auth() -> ConsoleAuth {
        ConsoleAuth::new(ConsoleConfig {
            accounts: vec![ConsoleAccount {
                user: "ana".into(),
                name: "Ana García".into(),
                role: ConsoleRole::Admin,
                password_hash: hash_password("s3cret-pass").unwrap(),
            }],
            session_ttl_s: 60,
            secure_cookie: false,
        })
    }

    fn with_cookie(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("other=1; {COOKIE}={token}");
        h.insert(header::COOKIE, HeaderValue::from_str(&v).unwrap());
        h
    }

    #[test]
    fn a_login_opens_a_session_that_expires_and_ends_at_logout() {
        let a = auth();
        let (token, s) = a.login("ana", "s3cret-pass", 1_000).unwrap();
        assert_eq!((s.user.as_str(), s.role), ("ana", ConsoleRole::Admin));
        let h = with_cookie(&token);
        assert_eq!(a.session(&h, 2_000), Some(s));
        assert_eq!(a.session(&h, 61_001), None, "expired");
        assert_eq!(a.session(&with_cookie("forged"), 2_000), None);
        a.logout(&h);
        assert_eq!(a.session(&h, 2_000), None);
    }

    #[test]
    fn unknown_accounts_fail_like_wrong_passwords_and_five_failures_lock_out() {
        let a = auth();
        assert_eq!(
            a.login("nobody", "x", 0).unwrap_err(),
            LoginError::BadCredentials
        );
        for _ in 0..4 {
            assert_eq!(
                a.login("ana", "wrong", 0).unwrap_err(),
                LoginError::BadCredentials
            );
        }
        assert_eq!(
            a.login("ana", "wrong", 0).unwrap_err(),
            LoginError::LockedOut(60)
        );
        assert_eq!(
            a.login("ana", "s3cret-pass", 1_000).unwrap_err(),
            LoginError::LockedOut(59),
            "locked even with the right password"
        );
        assert!(a.login("ana", "s3cret-pass", 61_000).is_ok());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped_to_the_console() {
        let a = auth();
        assert_eq!(
            a.cookie("t"),
            "sn_console=t; HttpOnly; SameSite=Strict; Path=/console; Max-Age=60"
        );
        assert!(a.cookie("").contains("Max-Age=0"));
    }
}
