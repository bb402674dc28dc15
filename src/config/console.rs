//! `[console]` of an HQ config: the staff accounts that may log into the HQ console (`/console`)
//! and how long a login lasts. Passwords are stored only as argon2 hashes, like the terminal's
//! PINs; `admin` accounts may resolve and change things, `read_only` ones only look.

use super::{push, ConfigError};
use serde::Deserialize;

/// Longest account name.
pub const USER_LEN_MAX: usize = 64;
/// Default console session lifetime: one working day.
pub const SESSION_TTL_S_DEFAULT: u64 = 12 * 3600;

/// What a console account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleRole {
    /// Sees every view.
    ReadOnly,
    /// Sees every view and resolves inbox items.
    Admin,
}

impl ConsoleRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            ConsoleRole::ReadOnly => "read_only",
            ConsoleRole::Admin => "admin",
        }
    }
}

/// One HQ staff account (`[[console.accounts]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleAccount {
    /// The login name: 1-64 of `a-z 0-9 . _ @ -`.
    pub user: String,
    /// Shown in the console's header.
    pub name: String,
    pub role: ConsoleRole,
    /// argon2 PHC string of the password (`$argon2id$...`).
    pub password_hash: String,
}

/// The HQ console (`[console]`, optional: without accounts nobody can log in).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    #[serde(default)]
    pub accounts: Vec<ConsoleAccount>,
    /// A login lasts this long.
    #[serde(default = "default_ttl")]
    pub session_ttl_s: u64,
    /// Mark the session cookie `Secure` (set when HQ is served over TLS).
    #[serde(default)]
    pub secure_cookie: bool,
}

fn default_ttl() -> u64 {
    SESSION_TTL_S_DEFAULT
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            accounts: Vec::new(),
            session_ttl_s: SESSION_TTL_S_DEFAULT,
            secure_cookie: false,
        }
    }
}

/// Whether `user` is an acceptable login name.
pub fn valid_user(user: &str) -> bool {
    (1..=USER_LEN_MAX).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._@-".contains(&b))
}

impl ConsoleConfig {
    /// The account named `user`, if any.
    pub fn account(&self, user: &str) -> Option<&ConsoleAccount> {
        self.accounts.iter().find(|a| a.user == user)
    }

    pub(super) fn check(&self, errs: &mut Vec<ConfigError>) {
        if !(60..=30 * 86_400).contains(&self.session_ttl_s) {
            push(
                errs,
                "console.session_ttl_s",
                format!("must be 60-2592000 seconds, got {}", self.session_ttl_s),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            let at = |k: &str| format!("console.accounts[{i}].{k}");
            if !valid_user(&a.user) {
                push(
                    errs,
                    &at("user"),
                    format!(
                        "expected 1-{USER_LEN_MAX} of a-z 0-9 . _ @ -, got {:?}",
                        a.user
                    ),
                );
            } else if !seen.insert(a.user.as_str()) {
                push(errs, &at("user"), format!("duplicate account {}", a.user));
            }
            if a.name.trim().is_empty() {
                push(errs, &at("name"), "must not be empty");
            }
            if argon2::PasswordHash::new(&a.password_hash).is_err()
                || !a.password_hash.starts_with("$argon2")
            {
                push(
                    errs,
                    &at("password_hash"),
                    "expected an argon2 PHC string ($argon2id$...)",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(user: &str, hash: &str) -> ConsoleAccount {
        ConsoleAccount {
            user: user.into(),
            name: "Ana".into(),
            role: ConsoleRole::Admin,
            password_hash: hash.into(),
        }
    }

    #[test]
    fn bad_accounts_are_named_by_their_key_path() {
        let good = "$argon2id$v=19$m=19456,t=2,p=1$mPJcWO0y8M4JmavqsPBudQ$La2MA8lSSOedwNST+u8HnJZbbqunV9omzXvbyeMB1xY";
        let c = ConsoleConfig {
            accounts: vec![
                account("ana", good),
                account("ana", good),
                account("Bad User", good),
                account("luis", "hunter2"),
            ],
            session_ttl_s: 5,
            secure_cookie: false,
        };
        let mut errs = Vec::new();
        c.check(&mut errs);
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "console.session_ttl_s",
                "console.accounts[1].user",
                "console.accounts[2].user",
                "console.accounts[3].password_hash"
            ]
        );
        assert!(errs[1].message.contains("duplicate account ana"));
    }
}
