//! GS1 element strings (GS1-128, GS1 DataMatrix, GS1 QR, DataBar): application identifiers.
//!
//! Input is the data after any AIM prefix: a run of `AI data` fields, where variable-length
//! fields end with FNC1, transmitted as ASCII 29 (GS), or with the end of the string. The
//! human-readable form with parentheses, `(01)08412345678905(17)251231`, is accepted too.
//! AIs 01, 10, 17, 21 and 310n are decoded into typed fields; other known AIs are kept as text.

use super::gtin::Gtin14;
use super::BarcodeError;

/// FNC1 as transmitted by scanners: the ASCII group separator.
pub const GS: char = '\u{1d}';
/// Most AI fields a single element string may carry.
pub const GS1_FIELDS_MAX: usize = 16;

/// A date in an AI such as 17 (expiry): `YYMMDD`, where day 00 means the end of the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gs1Date {
    /// Full year. The domain has no clock, so years are read as 2000 + YY (GS1's sliding
    /// window only differs for YY more than 50 years away from today).
    pub year: u16,
    /// Month, 1 to 12.
    pub month: u8,
    /// Day, 1 to 31, or 0 for "end of month".
    pub day: u8,
}

/// A decoded GS1 element string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gs1 {
    /// AI 01: the trade item.
    pub gtin: Option<Gtin14>,
    /// AI 10: batch or lot number.
    pub batch: Option<String>,
    /// AI 17: expiry date.
    pub expiry: Option<Gs1Date>,
    /// AI 21: serial number.
    pub serial: Option<String>,
    /// AI 310n: net weight in grams (kilograms with three decimals).
    pub net_weight_kg_milli: Option<u64>,
    /// Every other AI, in scan order, as (AI, data).
    pub other: Vec<(String, String)>,
}

/// How long the data of an AI is.
#[derive(Clone, Copy)]
enum DataLen {
    Fixed(usize),
    Variable(usize),
}

/// Digits in the AI and the length of its data, from the GS1 General Specifications table
/// (the subset a store meets). `None` for AIs we do not know.
fn ai_shape(s: &str) -> Option<(usize, DataLen)> {
    use DataLen::{Fixed, Variable};
    let two = s.get(..2)?;
    let shape = match two {
        "00" => (2, Fixed(18)),
        "01" | "02" => (2, Fixed(14)),
        "10" | "21" | "22" => (2, Variable(20)),
        "11" | "12" | "13" | "15" | "16" | "17" => (2, Fixed(6)),
        "20" => (2, Fixed(2)),
        "30" | "37" => (2, Variable(8)),
        "90" | "91" | "92" | "93" | "94" | "95" | "96" | "97" | "98" | "99" => (2, Variable(90)),
        "41" => (3, Fixed(13)),
        "23" | "24" | "25" | "40" | "42" => (3, Variable(30)),
        "31" | "32" | "33" | "34" | "35" | "36" => (4, Fixed(6)),
        "39" => (4, Variable(15)),
        "70" | "71" | "72" | "80" | "81" | "82" => (4, Variable(70)),
        _ => return None,
    };
    if s.len() < shape.0 || !s.as_bytes()[..shape.0].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(shape)
}

/// Parses a GS1 element string (FNC1/GS-separated or with parentheses).
pub fn parse_gs1(data: &str) -> Result<Gs1, BarcodeError> {
    let data = data.trim_start_matches(GS);
    let fields = if data.starts_with('(') {
        split_parenthesised(data)?
    } else {
        split_raw(data)?
    };
    if fields.is_empty() {
        return Err(BarcodeError::Gs1Empty);
    }
    let mut gs1 = Gs1::default();
    for (ai, value) in fields {
        apply_field(&mut gs1, ai, value)?;
    }
    Ok(gs1)
}

fn split_raw(mut rest: &str) -> Result<Vec<(String, String)>, BarcodeError> {
    let mut fields = Vec::new();
    while !rest.is_empty() {
        if fields.len() == GS1_FIELDS_MAX {
            return Err(BarcodeError::Gs1TooManyFields(GS1_FIELDS_MAX));
        }
        let Some((ai_len, len)) = ai_shape(rest) else {
            return Err(BarcodeError::UnknownAi(rest.chars().take(4).collect()));
        };
        let (ai, after) = rest.split_at(ai_len);
        let (value, next) = match len {
            DataLen::Fixed(n) => {
                let Some(value) = after.get(..n).filter(|v| !v.contains(GS)) else {
                    return Err(BarcodeError::AiLength {
                        ai: ai.to_string(),
                        expected: n,
                        got: after.split(GS).next().map_or(0, |v| v.chars().count()),
                    });
                };
                (value, &after[n..])
            }
            DataLen::Variable(_) => match after.find(GS) {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            },
        };
        check_len(ai, value, len)?;
        fields.push((ai.to_string(), value.to_string()));
        rest = next.trim_start_matches(GS);
    }
    Ok(fields)
}

fn split_parenthesised(mut rest: &str) -> Result<Vec<(String, String)>, BarcodeError> {
    let mut fields = Vec::new();
    while let Some(after_open) = rest.strip_prefix('(') {
        if fields.len() == GS1_FIELDS_MAX {
            return Err(BarcodeError::Gs1TooManyFields(GS1_FIELDS_MAX));
        }
        let Some(close) = after_open.find(')') else {
            return Err(BarcodeError::Gs1Syntax("missing ')'".into()));
        };
        let ai = &after_open[..close];
        let after = &after_open[close + 1..];
        let end = after.find('(').unwrap_or(after.len());
        let value = &after[..end];
        match ai_shape(ai) {
            Some((ai_len, len)) if ai_len == ai.len() => check_len(ai, value, len)?,
            _ => return Err(BarcodeError::UnknownAi(ai.chars().take(4).collect())),
        }
        fields.push((ai.to_string(), value.to_string()));
        rest = &after[end..];
    }
    if !rest.is_empty() {
        return Err(BarcodeError::Gs1Syntax(format!(
            "text outside an ai: {:?}",
            rest.chars().take(20).collect::<String>()
        )));
    }
    Ok(fields)
}

fn check_len(ai: &str, value: &str, len: DataLen) -> Result<(), BarcodeError> {
    let got = value.chars().count();
    match len {
        DataLen::Fixed(n) if got != n => Err(BarcodeError::AiLength {
            ai: ai.to_string(),
            expected: n,
            got,
        }),
        DataLen::Variable(max) if got == 0 || got > max => Err(BarcodeError::AiTooLong {
            ai: ai.to_string(),
            max,
            got,
        }),
        _ => Ok(()),
    }
}

fn apply_field(gs1: &mut Gs1, ai: String, value: String) -> Result<(), BarcodeError> {
    let duplicate = |ai: &str| BarcodeError::DuplicateAi(ai.to_string());
    match ai.as_str() {
        "01" => {
            if gs1.gtin.is_some() {
                return Err(duplicate(&ai));
            }
            gs1.gtin = Some(Gtin14::parse(&value)?);
        }
        "10" => set_once(&mut gs1.batch, value).map_err(|()| duplicate(&ai))?,
        "21" => set_once(&mut gs1.serial, value).map_err(|()| duplicate(&ai))?,
        "17" => {
            let date = parse_date(&ai, &value)?;
            set_once(&mut gs1.expiry, date).map_err(|()| duplicate(&ai))?;
        }
        _ if ai.starts_with("310") => {
            let grams = parse_weight(&ai, &value)?;
            set_once(&mut gs1.net_weight_kg_milli, grams).map_err(|()| duplicate(&ai))?;
        }
        _ => gs1.other.push((ai, value)),
    }
    Ok(())
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), ()> {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(value);
    Ok(())
}

fn digits(ai: &str, value: &str) -> Result<u64, BarcodeError> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BarcodeError::AiNotDigits {
            ai: ai.to_string(),
            value: value.to_string(),
        });
    }
    // At most 18 digits reach here (fixed lengths), which fits in u64.
    value.parse().map_err(|_| BarcodeError::AiNotDigits {
        ai: ai.to_string(),
        value: value.to_string(),
    })
}

fn parse_date(ai: &str, value: &str) -> Result<Gs1Date, BarcodeError> {
    let n = digits(ai, value)?;
    let (yy, mm, dd) = (n / 10_000, (n / 100) % 100, n % 100);
    if !(1..=12).contains(&mm) || dd > 31 {
        return Err(BarcodeError::AiDate {
            ai: ai.to_string(),
            value: value.to_string(),
        });
    }
    // Bounded above by the checks, so the casts cannot truncate.
    Ok(Gs1Date {
        year: 2000 + yy as u16,
        month: mm as u8,
        day: dd as u8,
    })
}

/// AI 310n: kilograms with n decimals; converted to grams, n above 3 rounds down.
fn parse_weight(ai: &str, value: &str) -> Result<u64, BarcodeError> {
    let n = digits(ai, value)?;
    let decimals = ai.as_bytes()[3] - b'0';
    Ok(match decimals {
        0..=3 => n * 10u64.pow(u32::from(3 - decimals)),
        _ => n / 10u64.pow(u32::from(decimals - 3)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gs1_128_with_batch_expiry_serial_and_weight() {
        let s = "0108412345678905172512311012AB\u{1d}3103001250\u{1d}21SN-77";
        let gs1 = parse_gs1(s).unwrap();
        assert_eq!(gs1.gtin.unwrap().as_str(), "08412345678905");
        assert_eq!(
            gs1.expiry,
            Some(Gs1Date {
                year: 2025,
                month: 12,
                day: 31
            })
        );
        assert_eq!(gs1.batch.as_deref(), Some("12AB"));
        assert_eq!(gs1.net_weight_kg_milli, Some(1250));
        assert_eq!(gs1.serial.as_deref(), Some("SN-77"));
    }

    #[test]
    fn parenthesised_form_is_accepted() {
        let gs1 = parse_gs1("(01)08412345678905(3102)000125(10)L1").unwrap();
        assert_eq!(gs1.net_weight_kg_milli, Some(1250));
        assert_eq!(gs1.batch.as_deref(), Some("L1"));
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(
            parse_gs1("0108412345678901").unwrap_err().to_string(),
            "check digit 1, expected 5 in 08412345678901"
        );
        assert_eq!(
            parse_gs1("17251331").unwrap_err().to_string(),
            "gs1 ai 17 has invalid date \"251331\""
        );
        assert_eq!(
            parse_gs1("0108412345").unwrap_err().to_string(),
            "gs1 ai 01 needs 14 characters, got 8"
        );
        assert!(matches!(parse_gs1("5512"), Err(BarcodeError::UnknownAi(_))));
        assert!(matches!(
            parse_gs1("10A\u{1d}10B"),
            Err(BarcodeError::DuplicateAi(_))
        ));
        assert!(parse_gs1("10ABCDEFGHIJKLMNOPQRSTUVW").is_err());
    }
}
