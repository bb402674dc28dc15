//! `storenode decode`: print any sync payload as JSON, for debugging a broker capture.
//!
//! Input is either a file holding the raw payload bytes or hex text on stdin (whitespace and a
//! leading `0x` ignored). Decoding goes through `wire::decode`, so what is printed is exactly
//! what a node would accept, and a refused payload prints the node's reason.

use super::wire::{decode, to_json, WireError};
use std::io::Read;
use std::path::Path;
use thiserror::Error;

/// Why a payload could not be printed.
#[derive(Debug, Error)]
pub enum InspectError {
    /// The input is not hex.
    #[error("input is not hex: {0}")]
    Hex(#[from] hex::FromHexError),
    /// The payload does not decode.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The file or stdin could not be read.
    #[error("cannot read {what}: {source}")]
    Read {
        what: String,
        source: std::io::Error,
    },
}

/// Raw payload bytes (`hex_text = false`) or hex text to pretty JSON.
pub fn inspect(input: &[u8], hex_text: bool) -> Result<String, InspectError> {
    let bytes = if hex_text {
        let text: String = String::from_utf8_lossy(input)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        hex::decode(text.strip_prefix("0x").unwrap_or(&text))?
    } else {
        input.to_vec()
    };
    let msg = decode(&bytes)?;
    Ok(serde_json::to_string_pretty(&to_json(&msg)).unwrap_or_default())
}

/// The `decode` command: a payload file, or hex on stdin when `file` is `None`.
pub fn decode_command(file: Option<&Path>) -> Result<String, InspectError> {
    match file {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| InspectError::Read {
                what: path.display().to_string(),
                source,
            })?;
            inspect(&bytes, false)
        }
        None => {
            let mut text = Vec::new();
            std::io::stdin()
                .read_to_end(&mut text)
                .map_err(|source| InspectError::Read {
                    what: "stdin".to_string(),
                    source,
                })?;
            inspect(&text, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::op::Payload;
    use crate::domain::{CustomerId, Hlc, Op, Sku, StoreId};
    use crate::sync::wire::{encode, Message, UpBatch};

    fn cart_op() -> Op {
        Op {
            actor: StoreId::parse("norte").unwrap().actor(),
            seq: 1,
            hlc: Hlc::new(1_000, 0),
            payload: Payload::CartSet {
                customer: CustomerId::parse("c-1").unwrap(),
                sku: Sku::parse("SKU-1").unwrap(),
                qty: 3,
            },
        }
    }

    #[test]
    fn inspect_reads_hex_with_whitespace_and_raw_files() {
        let bytes = encode(&Message::Up(UpBatch {
            store: StoreId::parse("norte").unwrap(),
            ops: vec![cart_op()],
        }))
        .unwrap();
        let text = format!("0x{}\n", hex::encode(&bytes));
        let json = inspect(text.as_bytes(), true).unwrap();
        assert!(json.contains("\"type\": \"up\""), "{json}");
        assert!(json.contains("CartSet"), "{json}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payload.bin");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(decode_command(Some(&path)).unwrap(), json);
    }

    #[test]
    fn inspect_names_what_is_wrong() {
        assert!(matches!(inspect(b"zz", true), Err(InspectError::Hex(_))));
        let err = inspect(b"09ff", true).unwrap_err().to_string();
        assert!(err.contains("unknown payload version 9"), "{err}");
    }
}
