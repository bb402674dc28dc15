//! The printer emulator's ESC/POS decoder: any byte stream, in any chunking, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storenode::devices::printer_sim::decoder::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut decoder = Decoder::new();
    let cut = usize::from(split).min(rest.len());
    let (a, b) = rest.split_at(cut);
    let _ = decoder.feed(a);
    let _ = decoder.feed(b);
    let mut whole = Decoder::new();
    let _ = whole.feed(rest);
});
