//! HQ settings for customers: the contact policy (`[contact_policy]`) and the webhook's
//! signing secret and abandoned-cart events (`[webhook] secret`, `abandoned_cart_hours`).

use super::{push, ConfigError};
use crate::domain::contact::{ContactPolicy, QuietHours};
use serde::Deserialize;

/// Shortest webhook secret accepted, in characters.
pub const WEBHOOK_SECRET_LEN_MIN: usize = 16;

/// `[contact_policy]`: how often and when a customer may be contacted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactPolicyConfig {
    /// Contacts allowed per customer in any seven days, all channels together.
    #[serde(default = "default_max_per_week")]
    pub max_per_week: u32,
    /// `"HH:MM-HH:MM"` in local time (may wrap past midnight); none when absent.
    #[serde(default)]
    pub quiet_hours: Option<String>,
    /// UTC offset of the quiet hours' local time, `"+01:00"`.
    #[serde(default = "default_utc_offset")]
    pub utc_offset: String,
}

fn default_max_per_week() -> u32 {
    2
}

fn default_utc_offset() -> String {
    "+00:00".to_string()
}

impl Default for ContactPolicyConfig {
    fn default() -> Self {
        ContactPolicyConfig {
            max_per_week: default_max_per_week(),
            quiet_hours: None,
            utc_offset: default_utc_offset(),
        }
    }
}

impl ContactPolicyConfig {
    /// The policy; quiet hours that do not parse count as none (`check` refuses them first).
    pub fn policy(&self) -> ContactPolicy {
        ContactPolicy {
            max_per_week: self.max_per_week,
            quiet_hours: self
                .quiet_hours
                .as_deref()
                .and_then(|q| QuietHours::parse(q, &self.utc_offset).ok()),
        }
    }

    pub(super) fn check(&self, errs: &mut Vec<ConfigError>) {
        if self.max_per_week > 100 {
            push(
                errs,
                "contact_policy.max_per_week",
                format!("must be 0-100, got {}", self.max_per_week),
            );
        }
        let offset_ok = QuietHours::parse("00:00-01:00", &self.utc_offset).is_ok();
        if !offset_ok {
            push(
                errs,
                "contact_policy.utc_offset",
                format!(
                    "expected \"+HH:MM\" or \"-HH:MM\", got {:?}",
                    self.utc_offset
                ),
            );
        }
        if let Some(q) = &self.quiet_hours {
            if let (Err(e), true) = (QuietHours::parse(q, "+00:00"), offset_ok) {
                push(errs, "contact_policy.quiet_hours", e);
            }
        }
    }
}

/// Check the webhook's secret (required with a URL) and abandoned-cart hours.
pub(super) fn check_webhook(
    url: Option<&str>,
    secret: Option<&str>,
    abandoned_cart_hours: Option<u32>,
    errs: &mut Vec<ConfigError>,
) {
    match (url, secret) {
        (Some(_), None) => push(
            errs,
            "webhook.secret",
            format!(
                "required with webhook.url: every delivery is signed with it \
                 ({WEBHOOK_SECRET_LEN_MIN}+ characters; `storenode new-qr-key` prints a good one)"
            ),
        ),
        (_, Some(s)) if s.chars().count() < WEBHOOK_SECRET_LEN_MIN => push(
            errs,
            "webhook.secret",
            format!("must be at least {WEBHOOK_SECRET_LEN_MIN} characters"),
        ),
        _ => {}
    }
    if let Some(h) = abandoned_cart_hours {
        if !(1..=24 * 90).contains(&h) {
            push(
                errs,
                "webhook.abandoned_cart_hours",
                format!("must be 1-2160, got {h}"),
            );
        }
    }
}
