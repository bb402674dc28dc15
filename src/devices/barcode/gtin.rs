//! GTIN numbers (EAN-13, EAN-8, UPC-A, GTIN-14) and their mod-10 check digit.
//!
//! Each type holds only digit strings of its length whose last digit is the GS1 check digit of
//! the others; construct through `parse`, which names the expected digit when it is wrong.

use super::BarcodeError;

/// The GS1 mod-10 check digit of `body` (all digits before the check digit).
///
/// Weights alternate 3, 1, 3, ... from the rightmost digit of the body, which makes the same
/// function right for GTIN-8, -12, -13 and -14. Returns `None` if `body` holds a non-digit.
pub fn gs1_check_digit(body: &str) -> Option<u8> {
    let mut sum: u32 = 0;
    for (i, b) in body.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = u32::from(b - b'0');
        sum += if i % 2 == 0 { 3 * d } else { d };
    }
    // sum % 10 < 10, so the cast cannot truncate.
    Some(((10 - sum % 10) % 10) as u8)
}

/// Check digit for the first 12 digits of an EAN-13 (for seed data and CSV import).
pub fn ean13_check_digit(first12: &str) -> Result<u8, BarcodeError> {
    body_check_digit("ean-13", first12, 12)
}

/// Check digit for the first 7 digits of an EAN-8.
pub fn ean8_check_digit(first7: &str) -> Result<u8, BarcodeError> {
    body_check_digit("ean-8", first7, 7)
}

/// Completes 12 digits into a valid EAN-13 by appending the check digit.
pub fn ean13_complete(first12: &str) -> Result<Ean13, BarcodeError> {
    let check = ean13_check_digit(first12)?;
    Ok(Ean13(format!("{first12}{check}")))
}

fn body_check_digit(kind: &'static str, body: &str, len: usize) -> Result<u8, BarcodeError> {
    if body.len() != len {
        return Err(BarcodeError::Length {
            kind,
            expected: len,
            got: body.len(),
        });
    }
    gs1_check_digit(body).ok_or_else(|| BarcodeError::NotDigits {
        kind,
        value: body.to_string(),
    })
}

/// Validates length, digits and check digit of a GTIN of any length.
fn validate(kind: &'static str, s: &str, len: usize) -> Result<(), BarcodeError> {
    let got = s.chars().count();
    if got != len {
        return Err(BarcodeError::Length {
            kind,
            expected: len,
            got,
        });
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BarcodeError::NotDigits {
            kind,
            value: s.to_string(),
        });
    }
    let (body, last) = s.split_at(len - 1);
    let expected = gs1_check_digit(body).unwrap_or(0);
    let got = last.as_bytes()[0] - b'0';
    if got != expected {
        return Err(BarcodeError::CheckDigit {
            got,
            expected,
            code: s.to_string(),
        });
    }
    Ok(())
}

macro_rules! gtin_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $len:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Number of digits, check digit included.
            pub const LEN: usize = $len;

            /// Parses digits, checking length and check digit.
            pub fn parse(s: &str) -> Result<$name, BarcodeError> {
                validate($kind, s, $len)?;
                Ok($name(s.to_string()))
            }

            /// The digits, check digit included.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

gtin_type!(
    /// A European Article Number of 13 digits (GTIN-13); Spanish ones start with 84.
    Ean13, "ean-13", 13
);
gtin_type!(
    /// An 8-digit EAN for small packs (GTIN-8).
    Ean8, "ean-8", 8
);
gtin_type!(
    /// A 12-digit UPC-A (GTIN-12), the North American form of EAN-13 with a leading 0.
    UpcA, "upc-a", 12
);
gtin_type!(
    /// A 14-digit GTIN as carried by GS1 AI 01: an indicator digit then a GTIN-13 body.
    Gtin14, "gtin-14", 14
);

impl UpcA {
    /// The same number as an EAN-13 (a leading zero; the check digit does not change).
    pub fn to_ean13(&self) -> Ean13 {
        Ean13(format!("0{}", self.0))
    }
}

impl Gtin14 {
    /// The trade item as an EAN-13 or EAN-8 string, when the indicator digit is 0 (a single
    /// consumer unit). Cases (indicator 1-8) and variable-measure items (9) have none.
    pub fn to_product_ean(&self) -> Option<String> {
        let rest = self.0.strip_prefix('0')?;
        match rest.strip_prefix("00000") {
            Some(ean8) => Some(ean8.to_string()),
            None => Some(rest.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spanish_eans_from_the_seed_catalog_validate() {
        for ean in [
            "8410000810004",
            "8480000123455",
            "8411700000018",
            "8412345678905",
            "8437000123455",
        ] {
            let body = &ean[..12];
            let check = ean13_check_digit(body).unwrap();
            assert_eq!(
                ean13_complete(body).unwrap().as_str(),
                format!("{body}{check}")
            );
        }
        assert!(Ean13::parse("8412345678905").is_ok());
        assert!(Ean13::parse("4006381333931").is_ok());
    }

    #[test]
    fn wrong_check_digit_names_the_expected_one() {
        let err = Ean13::parse("8412345678901").unwrap_err();
        assert_eq!(
            err.to_string(),
            "check digit 1, expected 5 in 8412345678901"
        );
    }

    #[test]
    fn ean8_upca_and_gtin14_validate() {
        assert!(Ean8::parse("96385074").is_ok());
        assert!(Ean8::parse("96385075").is_err());
        let upc = UpcA::parse("036000291452").unwrap();
        assert_eq!(upc.to_ean13().as_str(), "0036000291452");
        assert!(Ean13::parse(upc.to_ean13().as_str()).is_ok());
        assert!(UpcA::parse("036000291453").is_err());
        let case = Gtin14::parse("18412345678902").unwrap();
        assert_eq!(case.to_product_ean(), None);
        let unit = Gtin14::parse("08412345678905").unwrap();
        assert_eq!(unit.to_product_ean().as_deref(), Some("8412345678905"));
        let small = Gtin14::parse("00000096385074").unwrap();
        assert_eq!(small.to_product_ean().as_deref(), Some("96385074"));
    }

    #[test]
    fn length_and_digit_errors_are_specific() {
        assert_eq!(
            Ean13::parse("841234567890").unwrap_err().to_string(),
            "ean-13 must have 13 digits, got 12"
        );
        assert_eq!(
            Ean13::parse("84123456789O5").unwrap_err().to_string(),
            "ean-13 must be digits only, got \"84123456789O5\""
        );
        assert!(ean13_check_digit("84123").is_err());
    }
}
