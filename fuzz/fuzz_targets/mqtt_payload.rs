//! MQTT sync payloads as they come off the broker: decoding never panics, a decoded message
//! re-encodes and decodes to itself, a signed batch's inner bytes open or fail cleanly, and the
//! JSON view (`storenode decode`) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storenode::sync::wire::{decode, encode, open_signed_up, to_json, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = decode(data) else {
        return;
    };
    if let Ok(bytes) = encode(&msg) {
        assert_eq!(decode(&bytes).as_ref(), Ok(&msg));
    }
    if let Message::SignedUp(signed) = &msg {
        let _ = open_signed_up(signed);
    }
    let _ = to_json(&msg);
});
