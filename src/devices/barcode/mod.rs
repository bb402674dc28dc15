//! Barcode scans: from the raw text a scanner sends to a typed [`Scan`].
//!
//! A scan may start with an AIM symbology identifier (`]E0` EAN-13, `]E4` EAN-8, `]C1`
//! GS1-128, `]d2` GS1 DataMatrix, `]e0` GS1 DataBar, `]Q3` GS1 QR, ...), which is stripped and
//! reported beside the scan. Retail codes are checked (length, digits, check digit), GS1
//! element strings are split into application identifiers, and our pickup QR and typed pickup
//! codes are recognised. Parsing is pure and never panics; every refusal says why.

mod gs1;
mod gtin;

pub use gs1::{parse_gs1, Gs1, Gs1Date, GS};
pub use gtin::{
    ean13_check_digit, ean13_complete, ean8_check_digit, gs1_check_digit, Ean13, Ean8, Gtin14, UpcA,
};

use crate::domain::pickup::{verify_qr, PickupCode, PickupError, PickupQr};

/// Longest raw scan accepted; longer input is refused before parsing.
pub const SCAN_LEN_MAX: usize = 512;

/// Why a scan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarcodeError {
    /// Nothing but whitespace was scanned.
    #[error("empty scan")]
    Empty,
    /// The scan is longer than [`SCAN_LEN_MAX`].
    #[error("scan has {0} bytes, at most {SCAN_LEN_MAX} allowed")]
    TooLong(usize),
    /// A GTIN has the wrong number of digits.
    #[error("{kind} must have {expected} digits, got {got}")]
    Length {
        /// The kind of code, e.g. `ean-13`.
        kind: &'static str,
        /// Digits required.
        expected: usize,
        /// Characters received.
        got: usize,
    },
    /// A GTIN contains something other than digits.
    #[error("{kind} must be digits only, got {value:?}")]
    NotDigits {
        /// The kind of code, e.g. `ean-13`.
        kind: &'static str,
        /// What was received.
        value: String,
    },
    /// The check digit does not match the other digits.
    #[error("check digit {got}, expected {expected} in {code}")]
    CheckDigit {
        /// The check digit scanned.
        got: u8,
        /// The check digit the other digits call for.
        expected: u8,
        /// The whole code.
        code: String,
    },
    /// An AIM identifier is cut short (`]` needs two more characters).
    #[error("truncated aim symbology identifier {0:?}")]
    AimPrefix(String),
    /// A GS1 element string holds no field.
    #[error("empty gs1 element string")]
    Gs1Empty,
    /// A GS1 element string is malformed (e.g. unbalanced parentheses).
    #[error("malformed gs1 element string: {0}")]
    Gs1Syntax(String),
    /// A GS1 element string has more fields than we accept.
    #[error("gs1 element string has more than {0} fields")]
    Gs1TooManyFields(usize),
    /// The application identifier is not one we know.
    #[error("unknown gs1 application identifier at {0:?}")]
    UnknownAi(String),
    /// A fixed-length AI has the wrong length.
    #[error("gs1 ai {ai} needs {expected} characters, got {got}")]
    AiLength {
        /// The AI.
        ai: String,
        /// Characters required.
        expected: usize,
        /// Characters received.
        got: usize,
    },
    /// A variable-length AI is empty or longer than allowed.
    #[error("gs1 ai {ai} takes 1 to {max} characters, got {got}")]
    AiTooLong {
        /// The AI.
        ai: String,
        /// Most characters allowed.
        max: usize,
        /// Characters received.
        got: usize,
    },
    /// A numeric AI holds non-digits.
    #[error("gs1 ai {ai} must be digits, got {value:?}")]
    AiNotDigits {
        /// The AI.
        ai: String,
        /// What was received.
        value: String,
    },
    /// A date AI is not a valid YYMMDD.
    #[error("gs1 ai {ai} has invalid date {value:?}")]
    AiDate {
        /// The AI.
        ai: String,
        /// What was received.
        value: String,
    },
    /// The same AI appears twice.
    #[error("gs1 ai {0} appears twice")]
    DuplicateAi(String),
    /// The scan is none of the codes we know.
    #[error("unrecognised scan {0:?}")]
    Unrecognised(String),
    /// A pickup QR or code is invalid.
    #[error(transparent)]
    Pickup(#[from] PickupError),
    /// A pickup QR check was asked of a scan that is not a pickup QR.
    #[error("not a pickup qr")]
    NotPickup,
}

/// An AIM symbology identifier such as `]E0`: `]`, a code character and a modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AimId {
    /// Symbology: `E` EAN/UPC, `C` Code 128, `d` DataMatrix, `e` DataBar, `Q` QR, ...
    pub code: char,
    /// Modifier: e.g. `1` after `C` means GS1-128.
    pub modifier: char,
}

impl AimId {
    /// True for identifiers that announce a GS1 element string.
    pub fn is_gs1(&self) -> bool {
        matches!(
            (self.code, self.modifier),
            ('C', '1') | ('d', '2') | ('e', '0') | ('Q', '3') | ('J', '1')
        )
    }
}

impl std::fmt::Display for AimId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "]{}{}", self.code, self.modifier)
    }
}

/// What a scan turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// An EAN-13 (GTIN-13).
    Ean13(Ean13),
    /// An EAN-8.
    Ean8(Ean8),
    /// A UPC-A.
    UpcA(UpcA),
    /// A GS1 element string (GS1-128, DataMatrix, GS1 QR, DataBar) or a bare GTIN-14.
    Gs1(Gs1),
    /// Our pickup QR `PU1:...`, not yet verified: see [`verify_pickup`].
    Pickup(String),
    /// A pickup code typed or scanned on its own.
    PickupCode(PickupCode),
    /// The reference QR of a till receipt, `SR1:<store>:<sale>`: starts a return.
    SaleReceipt {
        /// The store that printed the receipt.
        store: String,
        /// The sale (or collected order) id.
        sale: String,
    },
}

impl Scan {
    /// What kind of code this is, as the terminal names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Scan::Ean13(_) => "ean13",
            Scan::Ean8(_) => "ean8",
            Scan::UpcA(_) => "upca",
            Scan::Gs1(_) => "gs1",
            Scan::Pickup(_) => "pickup_qr",
            Scan::PickupCode(_) => "pickup_code",
            Scan::SaleReceipt { .. } => "sale_receipt",
        }
    }

    /// The EAN a product is looked up by: EAN-13 as is, UPC-A and unit-level GTIN-14 turned
    /// into EAN-13, EAN-8 as its 8 digits. `None` for pickups and for GS1 strings without a
    /// consumer-unit GTIN (cases, variable-measure items).
    pub fn product_ean(&self) -> Option<String> {
        match self {
            Scan::Ean13(e) => Some(e.as_str().to_string()),
            Scan::Ean8(e) => Some(e.as_str().to_string()),
            Scan::UpcA(u) => Some(u.to_ean13().as_str().to_string()),
            Scan::Gs1(g) => g.gtin.as_ref().and_then(Gtin14::to_product_ean),
            Scan::Pickup(_) | Scan::PickupCode(_) | Scan::SaleReceipt { .. } => None,
        }
    }
}

/// Splits off an AIM symbology identifier, if the scan starts with `]`.
pub fn split_aim(raw: &str) -> Result<(Option<AimId>, &str), BarcodeError> {
    let Some(rest) = raw.strip_prefix(']') else {
        return Ok((None, raw));
    };
    let mut chars = rest.chars();
    match (chars.next(), chars.next()) {
        (Some(code), Some(modifier)) if code.is_ascii_alphabetic() => {
            Ok((Some(AimId { code, modifier }), chars.as_str()))
        }
        _ => Err(BarcodeError::AimPrefix(raw.chars().take(3).collect())),
    }
}

/// Parses a raw scan (trailing CR/LF and surrounding spaces ignored).
pub fn parse_scan(raw: &str) -> Result<Scan, BarcodeError> {
    parse_scan_with_aim(raw).map(|(_, scan)| scan)
}

/// Parses a raw scan and also returns the AIM identifier it carried.
pub fn parse_scan_with_aim(raw: &str) -> Result<(Option<AimId>, Scan), BarcodeError> {
    if raw.len() > SCAN_LEN_MAX {
        return Err(BarcodeError::TooLong(raw.len()));
    }
    let trimmed = raw.trim_matches(|c: char| c == ' ' || c == '\r' || c == '\n' || c == '\t');
    if trimmed.is_empty() {
        return Err(BarcodeError::Empty);
    }
    let (aim, data) = split_aim(trimmed)?;
    let scan = match aim {
        Some(id) if id.is_gs1() => Scan::Gs1(parse_gs1(data)?),
        Some(AimId {
            code: 'E',
            modifier,
        }) => parse_ean_family(modifier, data)?,
        _ => classify(data)?,
    };
    Ok((aim, scan))
}

/// `]E0` carries EAN-13 (or UPC-A as 12 or 13 digits), `]E4` EAN-8; add-on modifiers fall
/// back to the plain classification.
fn parse_ean_family(modifier: char, data: &str) -> Result<Scan, BarcodeError> {
    match modifier {
        '0' if data.len() == UpcA::LEN => Ok(Scan::UpcA(UpcA::parse(data)?)),
        '0' => Ok(Scan::Ean13(Ean13::parse(data)?)),
        '4' => Ok(Scan::Ean8(Ean8::parse(data)?)),
        _ => classify(data),
    }
}

/// Recognises a scan without (or with a non-GS1, non-EAN) AIM identifier by its content.
fn classify(data: &str) -> Result<Scan, BarcodeError> {
    if data.starts_with("PU1:") {
        verify_shape(data)?;
        return Ok(Scan::Pickup(data.to_string()));
    }
    if let Some(rest) = data.strip_prefix("SR1:") {
        return sale_receipt(rest).ok_or_else(|| unrecognised(data));
    }
    if data.contains(GS) || data.starts_with('(') {
        return Ok(Scan::Gs1(parse_gs1(data)?));
    }
    let all_digits = data.bytes().all(|b| b.is_ascii_digit());
    if all_digits {
        return match data.len() {
            8 => Ok(Scan::Ean8(Ean8::parse(data)?)),
            12 => Ok(Scan::UpcA(UpcA::parse(data)?)),
            13 => Ok(Scan::Ean13(Ean13::parse(data)?)),
            14 => Ok(Scan::Gs1(Gs1 {
                gtin: Some(Gtin14::parse(data)?),
                ..Gs1::default()
            })),
            n if n > 14 && data.starts_with("01") => Ok(Scan::Gs1(parse_gs1(data)?)),
            _ => Err(unrecognised(data)),
        };
    }
    if data.chars().count() == 6 {
        if let Ok(code) = PickupCode::parse(data) {
            return Ok(Scan::PickupCode(code));
        }
    }
    Err(unrecognised(data))
}

/// Checks a `PU1:` payload's shape without keys, so a damaged QR is reported at scan time.
/// `<store>:<sale>` of a receipt reference, both valid ids.
fn sale_receipt(rest: &str) -> Option<Scan> {
    let (store, sale) = rest.split_once(':')?;
    crate::domain::StoreId::parse(store).ok()?;
    crate::domain::SaleId::parse(sale).ok()?;
    Some(Scan::SaleReceipt {
        store: store.to_string(),
        sale: sale.to_string(),
    })
}

fn verify_shape(data: &str) -> Result<(), BarcodeError> {
    match verify_qr(data, &[]) {
        Err(PickupError::MacMismatch(_)) => Ok(()),
        Err(e) => Err(e.into()),
        // With no keys nothing can match; kept total for safety.
        Ok(_) => Ok(()),
    }
}

fn unrecognised(data: &str) -> BarcodeError {
    BarcodeError::Unrecognised(data.chars().take(40).collect())
}

/// Verifies a pickup QR scan against the chain's key ring (current key first).
pub fn verify_pickup(scan: &Scan, keys: &[&[u8]]) -> Result<PickupQr, BarcodeError> {
    match scan {
        Scan::Pickup(payload) => Ok(verify_qr(payload, keys)?),
        _ => Err(BarcodeError::NotPickup),
    }
}

#[cfg(test)]
mod tests;
