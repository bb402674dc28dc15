//! Contact fields of a customer profile: an email address and a phone number, checked in
//! shape only (nobody is contacted to confirm them).

use crate::domain::error::DomainError;

/// Fewest and most digits of a phone number (E.164 allows 15).
pub const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 6..=15;

/// An email address: one `@`, something before it, a dotted domain after it, no spaces.
pub fn check_email(email: &str) -> Result<(), DomainError> {
    let ok = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(DomainError::InvalidField {
            field: "email",
            reason: format!("not an email address: {email:?}"),
        })
    }
}

/// A phone number: an optional leading `+`, then 6-15 digits; spaces, dots, dashes and
/// parentheses may group them.
pub fn check_phone(phone: &str) -> Result<(), DomainError> {
    let rest = phone.strip_prefix('+').unwrap_or(phone);
    let digits = rest.chars().filter(char::is_ascii_digit).count();
    let only_allowed = rest
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'));
    if only_allowed && PHONE_DIGITS.contains(&digits) {
        Ok(())
    } else {
        Err(DomainError::InvalidField {
            field: "phone",
            reason: format!(
                "not a phone number ({}-{} digits, optional leading +): {phone:?}",
                PHONE_DIGITS.start(),
                PHONE_DIGITS.end()
            ),
        })
    }
}

#[cfg(test)]
mod contact_field_tests {
    use super::*;

    #[test]
    fn emails_need_one_at_and_a_dotted_domain() {
        for ok in ["ana@example.com", "luis.gil+shop@mail.example.es"] {
            assert_eq!(check_email(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a@b@c.com",
            "ana @x.com",
            "ana@.com",
            "ana@x.",
        ] {
            assert!(
                matches!(
                    check_email(bad),
                    Err(DomainError::InvalidField { field: "email", .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn phones_are_six_to_fifteen_digits_with_common_grouping() {
        for ok in [
            "+34619892561",
            "+34 600 111 222",
            "611 000 222",
            "+34 (600) 111-222",
            "600.111.222",
        ] {
            assert_eq!(check_phone(ok), Ok(()), "{ok}");
        }
        for bad in [
            "call me",
            "12345",
            "+34 600 111 222 333 44",
            "600111222 ext 5",
            "++34600111222",
            "",
        ] {
            assert!(
                matches!(
                    check_phone(bad),
                    Err(DomainError::InvalidField { field: "phone", .. })
                ),
                "{bad}"
            );
        }
    }
}
