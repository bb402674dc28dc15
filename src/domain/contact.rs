//! The contact policy (DESIGN.md section 14): whether a customer may be contacted on a channel
//! now. Consent granted, not erased, fewer than `max_per_week` contacts in the last seven days,
//! and outside the quiet hours. A pure decision; HQ keeps the record of contacts.

use super::customer::Customer;
use super::op::Channel;

/// The window `max_per_week` counts over.
pub const WEEK_MS: u64 = 7 * 24 * 3_600_000;
const DAY_MIN: i64 = 24 * 60;

/// Hours during which nobody is contacted, in local time at a fixed UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start_min: u16,
    end_min: u16,
    offset_min: i16,
}

fn minutes(hhmm: &str) -> Option<u16> {
    let (h, m) = hhmm.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && hhmm.trim().len() == 5).then_some(h * 60 + m)
}

impl QuietHours {
    /// `range` as `"21:00-09:00"` (it may wrap past midnight), `offset` as `"+01:00"`.
    pub fn parse(range: &str, offset: &str) -> Result<QuietHours, String> {
        let (start, end) = range
            .split_once('-')
            .and_then(|(s, e)| Some((minutes(s)?, minutes(e)?)))
            .ok_or_else(|| format!("expected \"HH:MM-HH:MM\", got {range:?}"))?;
        if start == end {
            return Err(format!("empty range {range:?}"));
        }
        let bad_offset = || format!("expected a UTC offset like \"+01:00\", got {offset:?}");
        let (sign, rest) = match offset.as_bytes().first() {
            Some(b'+') => (1, &offset[1..]),
            Some(b'-') => (-1, &offset[1..]),
            _ => return Err(bad_offset()),
        };
        let abs = minutes(rest)
            .filter(|m| *m <= 14 * 60)
            .ok_or_else(bad_offset)?;
        Ok(QuietHours {
            start_min: start,
            end_min: end,
            offset_min: sign * abs as i16,
        })
    }

    /// Whether `now_ms` (Unix epoch) falls in the quiet hours.
    pub fn contains(&self, now_ms: u64) -> bool {
        let utc_min = (now_ms / 60_000) as i64;
        let local = (utc_min + i64::from(self.offset_min)).rem_euclid(DAY_MIN) as u16;
        if self.start_min < self.end_min {
            (self.start_min..self.end_min).contains(&local)
        } else {
            local >= self.start_min || local < self.end_min
        }
    }
}

/// What the chain allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactPolicy {
    pub max_per_week: u32,
    pub quiet_hours: Option<QuietHours>,
}

/// Why a contact is not allowed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The customer was erased: never contacted again.
    #[error("the customer was erased")]
    CustomerErased,
    /// No consent on this channel (never given, or withdrawn).
    #[error("no consent on this channel")]
    NoConsent,
    /// `max_per_week` contacts already in the last seven days.
    #[error("contact limit reached for this week")]
    ContactLimit,
    /// Inside the quiet hours.
    #[error("inside the quiet hours")]
    QuietHours,
}

impl Refusal {
    /// API error code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::CustomerErased => "customer_erased",
            Refusal::NoConsent => "no_consent",
            Refusal::ContactLimit => "contact_limit",
            Refusal::QuietHours => "quiet_hours",
        }
    }
}

impl ContactPolicy {
    /// Whether `customer` may be contacted on `channel` at `now_ms`, having been contacted
    /// `contacts_last_week` times (any channel) in the seven days before.
    pub fn check(
        &self,
        customer: &Customer,
        channel: Channel,
        contacts_last_week: u32,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        if customer.is_erased() {
            return Err(Refusal::CustomerErased);
        }
        if !customer.consent(channel).is_some_and(|c| c.granted) {
            return Err(Refusal::NoConsent);
        }
        if contacts_last_week >= self.max_per_week {
            return Err(Refusal::ContactLimit);
        }
        if self.quiet_hours.is_some_and(|q| q.contains(now_ms)) {
            return Err(Refusal::QuietHours);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::customer::Consent;
    use crate::domain::hlc::Hlc;
    use crate::domain::ids::ActorId;

    const HOUR_MS: u64 = 3_600_000;

    fn consenting(channel: Channel) -> Customer {
        let mut c = Customer::default();
        c.set_consent(
            channel,
            Consent {
                granted: true,
                at_ms: 1,
                source: "shop".into(),
            },
            &(Hlc::new(1, 0), ActorId::hq()),
        );
        c
    }

    fn policy(quiet: Option<QuietHours>) -> ContactPolicy {
        ContactPolicy {
            max_per_week: 2,
            quiet_hours: quiet,
        }
    }

    #[test]
    fn quiet_hours_wrap_past_midnight_in_local_time() {
        let q = QuietHours::parse("21:00-09:00", "+01:00").unwrap();
        assert!(q.contains(20 * HOUR_MS), "21:00 local");
        assert!(q.contains(7 * HOUR_MS), "08:00 local");
        assert!(!q.contains(8 * HOUR_MS), "09:00 local");
        assert!(!q.contains(19 * HOUR_MS + 59 * 60_000), "20:59 local");
    }

    #[test]
    fn quiet_hours_refuse_malformed_ranges_and_offsets() {
        assert!(QuietHours::parse("9-21", "+00:00").is_err());
        assert!(QuietHours::parse("21:00-21:00", "+00:00").is_err());
        assert!(QuietHours::parse("25:00-09:00", "+00:00").is_err());
        assert!(QuietHours::parse("21:00-09:00", "01:00").is_err());
        assert!(QuietHours::parse("21:00-09:00", "+15:00").is_err());
    }

    #[test]
    fn a_contact_needs_consent_on_that_channel() {
        let c = consenting(Channel::Email);
        assert_eq!(policy(None).check(&c, Channel::Email, 0, HOUR_MS), Ok(()));
        assert_eq!(
            policy(None).check(&c, Channel::Sms, 0, HOUR_MS),
            Err(Refusal::NoConsent)
        );
    }

    #[test]
    fn the_weekly_limit_and_quiet_hours_refuse_with_their_reason() {
        let c = consenting(Channel::Sms);
        assert_eq!(
            policy(None).check(&c, Channel::Sms, 2, HOUR_MS),
            Err(Refusal::ContactLimit)
        );
        let quiet = QuietHours::parse("00:00-06:00", "+00:00").ok();
        assert_eq!(
            policy(quiet).check(&c, Channel::Sms, 0, HOUR_MS),
            Err(Refusal::QuietHours)
        );
        assert_eq!(
            policy(quiet).check(&c, Channel::Sms, 0, 7 * HOUR_MS),
            Ok(())
        );
    }

    #[test]
    fn an_erased_customer_is_never_contacted() {
        let mut c = consenting(Channel::Email);
        c.erase();
        assert_eq!(
            policy(None).check(&c, Channel::Email, 0, HOUR_MS),
            Err(Refusal::CustomerErased)
        );
    }
}
