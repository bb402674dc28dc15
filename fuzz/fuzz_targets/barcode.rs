//! Scanner input: any text (EAN/UPC, GS1, AIM prefixes, pickup QR) parses or gives a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storenode::devices::barcode::{parse_gs1, parse_scan, parse_scan_with_aim};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_scan(&text);
    let _ = parse_scan_with_aim(&text);
    let _ = parse_gs1(&text);
});
