//! Staff login: argon2 PIN hashes, lockout with growing backoff after repeated failures, and
//! server-side sessions whose token only the cookie holds (the table keeps its SHA-256).
//!
//! Invariants: a locked-out staff number is refused even with the right PIN; an unknown staff
//! number fails exactly like a wrong PIN (and counts towards lockout), so numbers cannot be
//! probed; roles are checked on the server for every call that needs one.

use super::error::ApiError;
use super::TerminalState;
use crate::domain::ids::TillId;
use crate::store::now_ms;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use rand::RngCore;
use rusqlite::OptionalExtension;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// Name of the session cookie.
pub const COOKIE: &str = "sn_session";
/// Failures allowed before a staff number is locked out.
pub const FAILURES_MAX: u32 = 5;
/// First lockout; each further failure doubles it, up to `LOCKOUT_MS_MAX`.
pub const LOCKOUT_MS_MIN: u64 = 30_000;
pub const LOCKOUT_MS_MAX: u64 = 3_600_000;

/// What a staff member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Associate,
    Manager,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Associate => "associate",
            Role::Manager => "manager",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "associate" => Some(Role::Associate),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }
}

/// Why staff could not be added.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("invalid staff number {0:?}: expected 1-16 digits")]
    Number(String),
    #[error("invalid pin for staff {0}: expected 4-8 digits")]
    Pin(String),
    #[error("hashing the pin failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub fn valid_staff(s: &str) -> bool {
    (1..=16).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

pub fn valid_pin(s: &str) -> bool {
    (4..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// The argon2id PHC string of a PIN, with a random salt.
pub fn hash_pin(pin: &str) -> Result<String, StaffError> {
    Argon2::default()
        .hash_password(pin.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| StaffError::Hash(e.to_string()))
}

fn pin_matches(pin: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(pin.as_bytes(), phc)
        .is_ok()
}

/// A logged-in staff member, extracted from the session cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub staff: String,
    pub role: Role,
    /// The till this terminal works at (its drawer, its sales): named at login, else the
    /// store's first till.
    pub till: TillId,
}

impl Session {
    pub fn require_manager(&self, what: &str) -> Result<(), ApiError> {
        match self.role {
            Role::Manager => Ok(()),
            Role::Associate => Err(ApiError::forbidden(what)),
        }
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn cookie_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

impl FromRequestParts<TerminalState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &TerminalState,
    ) -> Result<Session, ApiError> {
        let token = cookie_token(parts).ok_or_else(ApiError::unauthorized)?;
        let hash = token_hash(&token);
        let now = now_ms();
        let row = state
            .db_read(move |c| {
                c.query_row(
                    "SELECT staff, role, till FROM terminal_sessions
                     WHERE token_sha256 = ?1 AND expires_ms > ?2",
                    rusqlite::params![hash, now as i64],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                        ))
                    },
                )
                .optional()
            })
            .await?;
        let till_cfg = &state.config().till;
        match row {
            Some((staff, role, till)) => Ok(Session {
                staff,
                role: Role::parse(&role).ok_or_else(ApiError::unauthorized)?,
                // A till no longer configured falls back to the main one.
                till: till
                    .and_then(|t| TillId::parse(&t).ok())
                    .filter(|t| till_cfg.knows(t))
                    .unwrap_or_else(|| till_cfg.main_till()),
            }),
            None => Err(ApiError::unauthorized()),
        }
    }
}

/// A successful login: the session token to set as a cookie.
pub struct Login {
    pub token: String,
    pub staff: String,
    pub name: String,
    pub role: Role,
    pub till: TillId,
}

fn lockout_ms(failures: u32) -> u64 {
    let extra = failures.saturating_sub(FAILURES_MAX).min(20);
    LOCKOUT_MS_MIN
        .saturating_mul(1u64 << extra)
        .min(LOCKOUT_MS_MAX)
}

fn locked_out(until_ms: u64, now: u64) -> ApiError {
    let secs = until_ms.saturating_sub(now).div_ceil(1000).max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "locked_out",
        format!("too many wrong PINs: try again in {secs} s"),
    )
    .retry_after(secs)
}

type StaffRow = (String, String, String);

/// The staff row (if any) and when the number's lockout ends (0: not locked).
async fn load(state: &TerminalState, staff: &str) -> Result<(Option<StaffRow>, u64), ApiError> {
    let key = staff.to_string();
    state
        .db_read(move |c| {
            let row = c
                .query_row(
                    "SELECT name, role, pin_hash FROM terminal_staff WHERE staff = ?1",
                    [&key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let until: i64 = c
                .query_row(
                    "SELECT locked_until_ms FROM terminal_login_failures WHERE staff = ?1",
                    [&key],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0);
            Ok((row, until.max(0) as u64))
        })
        .await
}

/// Count one more failure (atomically in the writer, so parallel guesses all count) and
/// lock the number from the fifth on. Always an error: 401, or 429 once locked.
async fn record_failure(state: &TerminalState, staff: &str, now: u64) -> ApiError {
    let key = staff.to_string();
    let counted = state
        .db(move |c| {
            let failures: i64 = c.query_row(
                "INSERT INTO terminal_login_failures (staff, failures, locked_until_ms)
                 VALUES (?1, 1, 0)
                 ON CONFLICT(staff) DO UPDATE SET failures = failures + 1
                 RETURNING failures",
                [&key],
                |r| r.get(0),
            )?;
            let failures = failures.clamp(0, i64::from(u32::MAX)) as u32;
            let until = if failures >= FAILURES_MAX {
                now + lockout_ms(failures)
            } else {
                0
            };
            c.execute(
                "UPDATE terminal_login_failures SET locked_until_ms = ?2 WHERE staff = ?1",
                rusqlite::params![key, until as i64],
            )?;
            Ok((failures, until))
        })
        .await;
    match counted {
        Err(e) => e,
        Ok((_, until)) if until > 0 => locked_out(until, now),
        Ok((failures, _)) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong staff number or PIN",
        )
        .with("attempts_left", FAILURES_MAX.saturating_sub(failures)),
    }
}

/// A new session for `staff`; its failures are forgotten and expired sessions swept.
async fn open_session(
    state: &TerminalState,
    staff: &str,
    role: Role,
    till: &TillId,
    now: u64,
) -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = token_hash(&token);
    let expires = now + state.config().session_ttl_ms;
    let key = staff.to_string();
    let till = till.to_string();
    state
        .db(move |c| {
            c.execute(
                "DELETE FROM terminal_login_failures WHERE staff = ?1",
                [&key],
            )?;
            c.execute(
                "DELETE FROM terminal_sessions WHERE expires_ms <= ?1",
                [now as i64],
            )?;
            c.execute(
                "INSERT INTO terminal_sessions
                 (token_sha256, staff, role, created_ms, expires_ms, till)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![hash, key, role.as_str(), now as i64, expires as i64, till],
            )
            .map(|_| ())
        })
        .await?;
    Ok(token)
}

/// Check a staff number and PIN; record the failure or open a session at `till` (checked
/// against the store's tills by the caller).
pub async fn login(
    state: &TerminalState,
    staff: String,
    pin: String,
    till: TillId,
) -> Result<Login, ApiError> {
    let now = now_ms();
    let (name, role) = credentials(state, &staff, pin, now).await?;
    let token = open_session(state, &staff, role, &till, now).await?;
    Ok(Login {
        token,
        staff,
        name,
        role,
        till,
    })
}

/// A manager's approval given on the associate's screen (their staff number and PIN), checked
/// like a login (failures count towards the same lockout) but opening no session. Someone who
/// is not a manager gets `403 manager_required`.
pub async fn manager_approval(
    state: &TerminalState,
    staff: &str,
    pin: String,
) -> Result<String, ApiError> {
    let (_, role) = credentials(state, staff, pin, now_ms()).await?;
    match role {
        Role::Manager => Ok(staff.to_string()),
        Role::Associate => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "manager_required",
            format!("staff {staff} is not a manager"),
        )),
    }
}

/// The name and role of `staff` if `pin` is theirs; a failure is recorded (401, or 429 once
/// locked out).
async fn credentials(
    state: &TerminalState,
    staff: &str,
    pin: String,
    now: u64,
) -> Result<(String, Role), ApiError> {
    let (row, locked_until) = load(state, staff).await?;
    if locked_until > now {
        return Err(locked_out(locked_until, now));
    }
    let ok = match &row {
        Some((_, _, phc)) => {
            let (pin, phc) = (pin.clone(), phc.clone());
            tokio::task::spawn_blocking(move || pin_matches(&pin, &phc))
                .await
                .map_err(ApiError::internal)?
        }
        None => {
            // Spend the same time as a real check so unknown numbers do not stand out.
            let _ = tokio::task::spawn_blocking(move || hash_pin(&pin)).await;
            false
        }
    };
    let (Some((name, role, _)), true) = (row, ok) else {
        return Err(record_failure(state, staff, now).await);
    };
    let role = Role::parse(&role).ok_or_else(|| ApiError::internal("bad role in staff table"))?;
    Ok((name, role))
}

/// End the session named by the request's cookie, if any.
pub async fn logout(state: &TerminalState, parts: &Parts) -> Result<(), ApiError> {
    if let Some(token) = cookie_token(parts) {
        let hash = token_hash(&token);
        state
            .db(move |c| {
                c.execute(
                    "DELETE FROM terminal_sessions WHERE token_sha256 = ?1",
                    [hash],
                )
                .map(|_| ())
            })
            .await?;
    }
    Ok(())
}

/// Move the caller's session to another till of the store (the caller checked it is one).
pub async fn switch_till(
    state: &TerminalState,
    parts: &Parts,
    till: &TillId,
) -> Result<(), ApiError> {
    let token = cookie_token(parts).ok_or_else(ApiError::unauthorized)?;
    let hash = token_hash(&token);
    let till = till.to_string();
    state
        .db(move |c| {
            c.execute(
                "UPDATE terminal_sessions SET till = ?2 WHERE token_sha256 = ?1",
                rusqlite::params![hash, till],
            )
            .map(|_| ())
        })
        .await
}

/// The `Set-Cookie` value for a session (or for clearing it, with an empty token).
pub fn cookie(token: &str, max_age_s: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}{secure}")
}

/// Add or replace a staff member (config and demo seeding).
pub async fn upsert_staff(
    state: &TerminalState,
    staff: &str,
    name: &str,
    role: Role,
    pin: &str,
) -> Result<(), StaffError> {
    if !valid_staff(staff) {
        return Err(StaffError::Number(staff.to_string()));
    }
    if !valid_pin(pin) {
        return Err(StaffError::Pin(staff.to_string()));
    }
    let pin = pin.to_string();
    let phc = tokio::task::spawn_blocking(move || hash_pin(&pin))
        .await
        .map_err(|e| StaffError::Hash(e.to_string()))??;
    let (staff, name) = (staff.to_string(), name.to_string());
    state
        .node()
        .write(move |c| {
            c.execute(
                "INSERT INTO terminal_staff (staff, name, role, pin_hash) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(staff) DO UPDATE SET name = ?2, role = ?3, pin_hash = ?4",
                rusqlite::params![staff, name, role.as_str(), phc],
            )
            .map(|_| ())
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_starts_at_the_fifth_failure_and_doubles_up_to_an_hour() {
        assert_eq!(lockout_ms(5), 30_000);
        assert_eq!(lockout_ms(6), 60_000);
        assert_eq!(lockout_ms(7), 120_000);
        assert_eq!(lockout_ms(40), LOCKOUT_MS_MAX);
    }

    #[test]
    fn pins_are_stored_as_argon2id_and_verify() {
        let phc = hash_pin("1234").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(pin_matches("1234", &phc));
        assert!(!pin_matches("4321", &phc));
        assert!(!pin_matches("1234", "not a hash"));
    }

    #[test]
    fn the_cookie_is_secure_only_over_tls() {
        let plain = cookie("t", 60, false);
        assert_eq!(
            plain,
            "sn_session=t; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"
        );
        assert!(cookie("t", 60, true).ends_with("; Secure"));
    }
}
