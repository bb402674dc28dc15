use super::*;
use crate::domain::pickup::qr_payload;
use proptest::prelude::*;

#[test]
fn plain_ean13_from_a_spanish_product_parses() {
    let scan = parse_scan("8410000810004\r\n").unwrap();
    assert_eq!(scan, Scan::Ean13(Ean13::parse("8410000810004").unwrap()));
    assert_eq!(scan.product_ean().as_deref(), Some("8410000810004"));
}

#[test]
fn ean13_with_bad_check_digit_is_explained() {
    assert_eq!(
        parse_scan("8412345678901").unwrap_err().to_string(),
        "check digit 1, expected 5 in 8412345678901"
    );
}

#[test]
fn aim_prefixes_are_stripped_and_reported() {
    let (aim, scan) = parse_scan_with_aim("]E08412345678905").unwrap();
    assert_eq!(aim.unwrap().to_string(), "]E0");
    assert_eq!(scan.product_ean().as_deref(), Some("8412345678905"));
    let (aim, scan) = parse_scan_with_aim("]E496385074").unwrap();
    assert_eq!(aim.unwrap().to_string(), "]E4");
    assert_eq!(scan, Scan::Ean8(Ean8::parse("96385074").unwrap()));
    let (_, scan) = parse_scan_with_aim("]E0036000291452").unwrap();
    assert!(matches!(scan, Scan::UpcA(_)));
    assert!(parse_scan("]E48412345678905").is_err());
    assert!(matches!(parse_scan("]E"), Err(BarcodeError::AimPrefix(_))));
}

#[test]
fn ean8_and_upca_parse_and_normalise() {
    assert_eq!(
        parse_scan("96385074").unwrap().product_ean().as_deref(),
        Some("96385074")
    );
    assert!(parse_scan("96385070").is_err());
    let upc = parse_scan("036000291452").unwrap();
    assert_eq!(upc.product_ean().as_deref(), Some("0036000291452"));
    assert!(parse_scan("036000291450").is_err());
}

#[test]
fn gs1_prefixes_decode_application_identifiers() {
    for prefix in ["]C1", "]d2", "]e0", "]Q3"] {
        let raw = format!("{prefix}0108412345678905172612001012AB\u{1d}3103000750\u{1d}21X9");
        let (aim, scan) = parse_scan_with_aim(&raw).unwrap();
        assert!(aim.unwrap().is_gs1());
        let Scan::Gs1(gs1) = &scan else {
            panic!("not gs1: {scan:?}")
        };
        assert_eq!(gs1.net_weight_kg_milli, Some(750));
        assert_eq!(gs1.serial.as_deref(), Some("X9"));
        assert_eq!(gs1.expiry.unwrap().day, 0);
        assert_eq!(scan.product_ean().as_deref(), Some("8412345678905"));
    }
    assert!(parse_scan("]C10108412345678906").is_err());
}

#[test]
fn gs1_without_prefix_is_recognised_by_gs_or_parentheses() {
    assert!(matches!(
        parse_scan("0108412345678905\u{1d}10LOT"),
        Ok(Scan::Gs1(_))
    ));
    assert!(matches!(
        parse_scan("(01)08412345678905(10)LOT"),
        Ok(Scan::Gs1(_))
    ));
    assert!(matches!(
        parse_scan("010841234567890517261231"),
        Ok(Scan::Gs1(_))
    ));
    let case = parse_scan("18412345678902").unwrap();
    assert_eq!(case.product_ean(), None);
}

#[test]
fn pickup_qr_and_code_are_recognised_and_verified() {
    let code = PickupCode::parse("K7Q2MZ").unwrap();
    let payload = qr_payload("ord-42", &code, b"key");
    let scan = parse_scan(&format!("]Q1{payload}\r")).unwrap();
    assert_eq!(scan, Scan::Pickup(payload.clone()));
    assert_eq!(scan.product_ean(), None);
    let qr = verify_pickup(&scan, &[b"key"]).unwrap();
    assert_eq!(qr.order_id(), "ord-42");
    assert!(verify_pickup(&scan, &[b"other"]).is_err());
    assert_eq!(
        parse_scan("k7q2mz").unwrap(),
        Scan::PickupCode(code.clone())
    );
    assert!(matches!(
        parse_scan("PU1:ord 1:K7Q2MZ:00"),
        Err(BarcodeError::Pickup(_))
    ));
    assert_eq!(
        verify_pickup(&Scan::PickupCode(code), &[b"key"]),
        Err(BarcodeError::NotPickup)
    );
}

#[test]
fn junk_is_refused_with_a_reason() {
    assert_eq!(parse_scan(" \r\n"), Err(BarcodeError::Empty));
    assert!(matches!(
        parse_scan("hello world"),
        Err(BarcodeError::Unrecognised(_))
    ));
    assert!(matches!(
        parse_scan("12345"),
        Err(BarcodeError::Unrecognised(_))
    ));
    let long = "9".repeat(SCAN_LEN_MAX + 1);
    assert_eq!(
        parse_scan(&long),
        Err(BarcodeError::TooLong(SCAN_LEN_MAX + 1))
    );
}

proptest! {
    #[test]
    fn random_bytes_never_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = parse_scan(&s);
    }

    #[test]
    fn gs1_like_strings_never_panic(s in "(\\]C1|\\]d2|\\(|)[0-9A-Z()\u{1d}]{0,80}") {
        let _ = parse_scan(&s);
    }

    #[test]
    fn every_completed_ean13_parses(body in "[0-9]{12}") {
        let ean = ean13_complete(&body).unwrap();
        prop_assert_eq!(parse_scan(ean.as_str()).unwrap(), Scan::Ean13(ean));
    }
}

#[test]
fn a_receipt_reference_qr_names_its_store_and_sale() {
    let scan = parse_scan("]Q1SR1:madrid-centro:S1764410000000-0a1b").unwrap();
    assert_eq!(
        scan,
        Scan::SaleReceipt {
            store: "madrid-centro".into(),
            sale: "S1764410000000-0a1b".into(),
        }
    );
    assert_eq!(scan.kind(), "sale_receipt");
    assert_eq!(scan.product_ean(), None);
    let err = parse_scan("SR1:Madrid Centro:S1").unwrap_err().to_string();
    assert!(err.contains("unrecognised scan"), "{err}");
    assert!(parse_scan("SR1:madrid-centro").is_err());
}
