//! Spanish tax ids: NIF of a person (DNI), NIE of a foreigner, and CIF of a company, each
//! checked by its control character. A `TaxId` exists only once its check passes, so an
//! invoice can never carry an issuer or customer id with a wrong check letter.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Check letters of DNI and NIE numbers, indexed by the number modulo 23.
const DNI_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
/// Check letters of CIFs whose control is a letter, indexed by the control digit.
const CIF_LETTERS: &[u8; 10] = b"JABCDEFGHI";

/// Why a tax id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NifError {
    /// Not 9 characters of the NIF, NIE or CIF shape.
    #[error("{0:?} is not a NIF, NIE or CIF (9 characters: 8 digits and a letter, X/Y/Z + 7 digits + letter, or a letter + 7 digits + control)")]
    Shape(String),
    /// The control character does not match the digits.
    #[error("check character {got}, expected {expected} in {id}")]
    Check {
        id: String,
        got: char,
        expected: char,
    },
}

/// A validated Spanish tax id, uppercase, without spaces or dashes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaxId(String);

impl TaxId {
    /// Parse `89890001K`, `X1234567L`, `B12345674` (spaces and dashes ignored, any case).
    pub fn parse(raw: &str) -> Result<TaxId, NifError> {
        let id: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .flat_map(char::to_uppercase)
            .collect();
        let b = id.as_bytes();
        if b.len() != 9 || !id.is_ascii() {
            return Err(NifError::Shape(raw.to_string()));
        }
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        let got = b[8] as char;
        let expected = match b[0] {
            b'0'..=b'9' if digits(0..8) => dni_letter(&id[..8]),
            b'X' | b'Y' | b'Z' if digits(1..8) => {
                let lead = (b[0] - b'X') as char;
                let lead = char::from_digit(lead as u32, 10).unwrap_or('0');
                dni_letter(&format!("{lead}{}", &id[1..8]))
            }
            b'A'..=b'W' if digits(1..8) && !b"IOTU".contains(&b[0]) => {
                return check_cif(&id, b[0], got);
            }
            _ => return Err(NifError::Shape(raw.to_string())),
        };
        if got == expected {
            Ok(TaxId(id))
        } else {
            Err(NifError::Check { id, got, expected })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn dni_letter(eight_digits: &str) -> char {
    let n: u32 = eight_digits.parse().unwrap_or(0);
    DNI_LETTERS[(n % 23) as usize] as char
}

/// CIF control: digits in even places summed, digits in odd places doubled and their digits
/// summed; the control is 10 minus the last digit of the total. Companies of kinds A, B, E, H
/// carry it as a digit; P, Q, R, S, N, W (and K, L, M) as a letter; others may use either.
fn check_cif(id: &str, kind: u8, got: char) -> Result<TaxId, NifError> {
    let digits: Vec<u32> = id[1..8].chars().filter_map(|c| c.to_digit(10)).collect();
    let mut sum = 0;
    for (i, d) in digits.iter().enumerate() {
        if i % 2 == 0 {
            let twice = d * 2;
            sum += twice / 10 + twice % 10;
        } else {
            sum += d;
        }
    }
    let control = (10 - sum % 10) % 10;
    let as_digit = char::from_digit(control, 10).unwrap_or('0');
    let as_letter = CIF_LETTERS[control as usize] as char;
    let ok = match kind {
        b'A' | b'B' | b'E' | b'H' => got == as_digit,
        b'K' | b'L' | b'M' | b'N' | b'P' | b'Q' | b'R' | b'S' | b'W' => got == as_letter,
        _ => got == as_digit || got == as_letter,
    };
    if ok {
        Ok(TaxId(id.to_string()))
    } else {
        let expected = if matches!(kind, b'K'..=b'N' | b'P'..=b'S' | b'W') {
            as_letter
        } else {
            as_digit
        };
        Err(NifError::Check {
            id: id.to_string(),
            got,
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aeat_test_nif_and_valid_nie_and_cifs_are_accepted() {
        assert_eq!(TaxId::parse("89890001K").unwrap().as_str(), "89890001K");
        assert_eq!(TaxId::parse(" 12345678-z ").unwrap().as_str(), "12345678Z");
        assert!(TaxId::parse("X1234567L").is_ok());
        assert!(TaxId::parse("B12345674").is_ok());
        assert!(TaxId::parse("A58818501").is_ok());
        assert!(TaxId::parse("Q2826000H").is_ok());
    }

    #[test]
    fn a_wrong_check_letter_is_refused_naming_the_expected_one() {
        let err = TaxId::parse("89890001A").unwrap_err();
        assert_eq!(
            err.to_string(),
            "check character A, expected K in 89890001A"
        );
        let err = TaxId::parse("B12345675").unwrap_err();
        assert_eq!(
            err.to_string(),
            "check character 5, expected 4 in B12345675"
        );
        assert!(matches!(
            TaxId::parse("Q2826000A"),
            Err(NifError::Check { expected: 'H', .. })
        ));
    }

    #[test]
    fn ids_of_the_wrong_shape_are_refused() {
        for bad in [
            "",
            "1234",
            "1234567890",
            "I1234567A",
            "ÑÑÑÑÑÑÑÑÑ",
            "X1234A67L",
        ] {
            assert!(
                matches!(TaxId::parse(bad), Err(NifError::Shape(_))),
                "{bad}"
            );
        }
    }
}
