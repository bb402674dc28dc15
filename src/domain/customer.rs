//! Customers: profile fields and per-channel consent as last-writer-wins registers, and an
//! erasure tombstone that wins over every write, before or after it.
//!
//! Erasure keeps the customer id (a pseudonym orders refer to) and nothing personal: the
//! profile, consents and cart are dropped and later writes about the customer are ignored.

use super::catalog::Marker;
use super::op::{Channel, ProfilePatch};
use crdts::{CvRDT, LWWReg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A consent decision with when and where it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub granted: bool,
    pub at_ms: u64,
    pub source: String,
}

/// A customer as merged from every op about them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Customer {
    name: Option<LWWReg<String, Marker>>,
    email: Option<LWWReg<String, Marker>>,
    phone: Option<LWWReg<String, Marker>>,
    loyalty_card: Option<LWWReg<String, Marker>>,
    consent: BTreeMap<Channel, LWWReg<Consent, Marker>>,
    erased: bool,
}

fn merge_field(field: &mut Option<LWWReg<String, Marker>>, value: Option<&String>, m: &Marker) {
    let Some(value) = value else { return };
    let incoming = LWWReg {
        val: value.clone(),
        marker: m.clone(),
    };
    match field {
        Some(reg) => reg.merge(incoming),
        None => *field = Some(incoming),
    }
}

impl Customer {
    pub fn update(&mut self, patch: &ProfilePatch, marker: &Marker) {
        if self.erased {
            return;
        }
        merge_field(&mut self.name, patch.name.as_ref(), marker);
        merge_field(&mut self.email, patch.email.as_ref(), marker);
        merge_field(&mut self.phone, patch.phone.as_ref(), marker);
        merge_field(&mut self.loyalty_card, patch.loyalty_card.as_ref(), marker);
    }

    pub fn set_consent(&mut self, channel: Channel, consent: Consent, marker: &Marker) {
        if self.erased {
            return;
        }
        let incoming = LWWReg {
            val: consent,
            marker: marker.clone(),
        };
        match self.consent.get_mut(&channel) {
            Some(reg) => reg.merge(incoming),
            None => {
                self.consent.insert(channel, incoming);
            }
        }
    }

    /// Remove all personal data, for good.
    pub fn erase(&mut self) {
        *self = Customer {
            erased: true,
            ..Customer::default()
        };
    }

    pub fn is_erased(&self) -> bool {
        self.erased
    }
    pub fn name(&self) -> Option<&str> {
        self.name.as_ref().map(|r| r.val.as_str())
    }
    pub fn email(&self) -> Option<&str> {
        self.email.as_ref().map(|r| r.val.as_str())
    }
    pub fn phone(&self) -> Option<&str> {
        self.phone.as_ref().map(|r| r.val.as_str())
    }
    pub fn loyalty_card(&self) -> Option<&str> {
        self.loyalty_card.as_ref().map(|r| r.val.as_str())
    }
    pub fn consent(&self, channel: Channel) -> Option<&Consent> {
        self.consent.get(&channel).map(|r| &r.val)
    }

    /// Canonical contents for digests.
    pub fn canonical(&self) -> impl Serialize + '_ {
        (
            self.erased,
            [self.name(), self.email(), self.phone(), self.loyalty_card()],
            self.consent
                .iter()
                .map(|(c, r)| (*c, &r.val))
                .collect::<Vec<_>>(),
        )
    }

    /// Whether any field holds personal data.
    pub fn has_personal_data(&self) -> bool {
        self.name.is_some()
            || self.email.is_some()
            || self.phone.is_some()
            || self.loyalty_card.is_some()
            || !self.consent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::hlc::Hlc;
    use crate::domain::ids::ActorId;

    #[test]
    fn erasure_wins_over_writes_that_arrive_after_it() {
        let mut c = Customer::default();
        c.erase();
        c.update(
            &ProfilePatch {
                name: Some("Lucía Pérez".into()),
                ..Default::default()
            },
            &(Hlc::new(9, 0), ActorId::hq()),
        );
        assert!(!c.has_personal_data());
        assert!(c.is_erased());
    }
}

/// Longest exact identifier, in characters.
pub const EXACT_ID_CHARS_MAX: usize = 100;
/// Fewest digits of a phone or loyalty card search (shorter is a fishing expedition).
pub const EXACT_ID_DIGITS_MIN: usize = 6;

/// An exact identifier a customer hands over at the counter: the only searches a store may
/// send to HQ (DESIGN.md section 3; names never leave the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExactId {
    /// An email address, lowercased.
    Email(String),
    /// A digit string: a phone number (without `+` and spaces) or a loyalty card.
    Digits(String),
}

/// The exact identifier `query` is, if it is one.
pub fn exact_identifier(query: &str) -> Option<ExactId> {
    let q = query.trim();
    if q.chars().count() > EXACT_ID_CHARS_MAX {
        return None;
    }
    if let Some((user, domain)) = q.split_once('@') {
        let ok = !user.is_empty() && domain.contains('.') && !q.contains(char::is_whitespace);
        return ok.then(|| ExactId::Email(q.to_lowercase()));
    }
    let compact = q.trim_start_matches('+').replace(' ', "");
    let digits = compact.chars().all(|c| c.is_ascii_digit());
    (digits && compact.len() >= EXACT_ID_DIGITS_MIN).then_some(ExactId::Digits(compact))
}
