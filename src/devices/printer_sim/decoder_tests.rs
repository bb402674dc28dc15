use super::*;
use crate::devices::escpos::{EscPos, QrEcc};
use proptest::prelude::*;

fn text_of(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Line { runs, .. } => Some(runs.iter().map(|r| r.text.as_str()).collect()),
            _ => None,
        })
        .collect()
}

#[test]
fn builder_output_decodes_back_to_text_styles_qr_and_cut() {
    let bytes = EscPos::new()
        .init()
        .bold(true)
        .size(2, 2)
        .line("Año €")
        .size(1, 1)
        .bold(false)
        .qr("PU1:x", 6, QrEcc::M)
        .drawer_kick(100, 100)
        .cut()
        .finish();
    let mut d = Decoder::new();
    // Split at every byte to prove commands survive any fragmentation.
    let mut out = Vec::new();
    for b in &bytes {
        out.extend(d.feed(std::slice::from_ref(b)));
    }
    let [Output::Job(items)] = &out[..] else {
        panic!("expected one job, got {out:?}")
    };
    assert_eq!(text_of(items), ["Año €"]);
    let Item::Line { runs, .. } = &items[0] else {
        panic!()
    };
    assert!(runs[0].bold && runs[0].width == 2);
    assert!(items.contains(&Item::Qr {
        align: Align::Left,
        module_dots: 6,
        data: "PU1:x".into()
    }));
    assert!(items.contains(&Item::DrawerKick { pin: 2, on_ms: 100 }));
    assert_eq!(items.last(), Some(&Item::Cut));
    assert_eq!(d.finish(), None);
}

#[test]
fn status_queries_are_surfaced_and_long_lines_wrap() {
    let mut d = Decoder::new();
    let out = d.feed(&[DLE, EOT, 4, b'x']);
    assert_eq!(out, [Output::Status(StatusKind::Paper)]);
    d.feed(&[b'y'; SIM_COLUMNS]);
    let items = d.finish().unwrap();
    assert_eq!(text_of(&items).len(), 2);
    assert_eq!(status_byte(StatusKind::Paper, true, false), 0x7e);
    assert_eq!(status_byte(StatusKind::Printer, false, false), 0x12);
}

#[test]
fn cp1252_is_decoded_when_selected() {
    let mut d = Decoder::new();
    d.feed(&[ESC, b't', 16, 0x80, 0xf1, b'\n']);
    assert_eq!(text_of(&d.finish().unwrap()), ["€ñ"]);
}

proptest! {
    #[test]
    fn random_bytes_never_panic_the_decoder(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
        let mut d = Decoder::new();
        for chunk in &chunks {
            let _ = d.feed(chunk);
        }
        let _ = d.finish();
    }

    #[test]
    fn command_heavy_bytes_never_panic(bytes in proptest::collection::vec(prop_oneof![Just(ESC), Just(GS), Just(DLE), Just(EOT), Just(b'('), Just(b'k'), Just(b'V'), any::<u8>()], 0..400)) {
        let mut d = Decoder::new();
        let _ = d.feed(&bytes);
        let _ = d.finish();
    }
}
