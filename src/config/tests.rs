use super::*;
use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

fn store_text() -> String {
    std::fs::read_to_string(example("store.example.toml")).unwrap()
}

fn hq_text() -> String {
    std::fs::read_to_string(example("hq.example.toml")).unwrap()
}

#[test]
fn the_shipped_store_example_is_valid() {
    let config = Config::load(&example("store.example.toml")).unwrap();
    assert_eq!(config.describe(), "store madrid-centro");
    let Config::Store(c) = config else {
        panic!("not a store config")
    };
    assert_eq!(c.db_path(), PathBuf::from("/var/lib/storenode/store.db"));
    assert_eq!(c.allocation.policy().hq_share_percent, 30);
    assert_eq!(c.staff.len(), 2);
    assert_eq!(c.client_id(), "storenode-madrid-centro");
}

#[test]
fn the_shipped_hq_example_is_valid() {
    let c = HqConfig::load(&example("hq.example.toml")).unwrap();
    assert_eq!(c.stores.len(), 2);
    assert_eq!(c.tokens(), vec!["change-me-long-random-token".to_string()]);
    assert_eq!(c.webhook.retry_backoff_ms_max, 60_000);
}

#[test]
fn a_file_without_role_is_refused_naming_role() {
    let text = store_text().replace("role = \"store\"", "");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("role"), "{errs}");
}

#[test]
fn an_unknown_key_is_an_error_naming_its_path() {
    let text = store_text().replace("keepalive_s = 30", "keepalive_s = 30\nkeep_alive = 5");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("mqtt.keep_alive"), "{errs}");
    assert!(errs.to_string().contains("keep_alive"), "{errs}");
}

#[test]
fn a_wrongly_typed_port_names_mqtt_port() {
    let text = store_text().replace("port = 1883", "port = \"x\"");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("mqtt.port"), "{errs}");
}

#[test]
fn a_bad_store_id_names_the_store_key() {
    let text = store_text().replace("store = \"madrid-centro\"", "store = \"Madrid Centro\"");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("store"), "{errs}");
}

#[test]
fn out_of_range_values_are_all_reported_at_once() {
    let text = store_text()
        .replace("hq_share_percent = 30", "hq_share_percent = 130")
        .replace("expire_after_days = 7", "expire_after_days = 0")
        .replace("keepalive_s = 30", "keepalive_s = 1");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("allocation.hq_share_percent"), "{errs}");
    assert!(errs.names("pickup.expire_after_days"), "{errs}");
    assert!(errs.names("mqtt.keepalive_s"), "{errs}");
    assert_eq!(errs.0.len(), 3, "{errs}");
}

#[test]
fn a_plain_pin_instead_of_a_hash_names_the_staff_entry() {
    let text = store_text().replacen("pin_hash = \"$argon2id", "pin_hash = \"1234\" #", 1);
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("staff[0].pin_hash"), "{errs}");
}

#[test]
fn a_short_qr_key_names_the_key_index() {
    let text = store_text().replace("qr_keys = [\"3f1c", "qr_keys = [\"abcd\", \"3f1c");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("pickup.qr_keys[0]"), "{errs}");
}

#[test]
fn a_bad_printer_uri_names_the_printer() {
    let text = store_text().replace("tcp://192.168.1.50:9100", "lpt1");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("printers[0].uri"), "{errs}");
}

#[test]
fn hq_without_tokens_or_with_a_duplicate_store_is_refused() {
    let text = hq_text()
        .replace("api_tokens = [\"change-me-long-random-token\"]", "")
        .replace(
            "\"sevilla-nervion\"]",
            "\"sevilla-nervion\", \"madrid-centro\"]",
        );
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("api_tokens"), "{errs}");
    assert!(errs.names("stores[2]"), "{errs}");
}

#[test]
fn hq_webhook_url_must_be_http() {
    let text = hq_text().replace("https://shop.example.com", "ftp://shop.example.com");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("webhook.url"), "{errs}");
}

#[test]
fn a_store_config_is_refused_where_hq_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, store_text()).unwrap();
    let errs = HqConfig::load(&path).unwrap_err();
    assert!(errs.names("role"), "{errs}");
}

#[test]
fn broken_toml_is_reported_not_panicked() {
    let errs = Config::parse("role = \"store\"\n[mqtt\n").unwrap_err();
    assert!(errs.to_string().contains("not valid TOML"), "{errs}");
}

const KEY_A: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const KEY_B: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

#[test]
fn store_keys_register_every_store_and_turn_signatures_on() {
    let text = format!(
        "{}\n[store_keys]\nmadrid-centro = \"{KEY_A}\"\nsevilla-nervion = \"{KEY_B}\"\n",
        hq_text()
    );
    let Config::Hq(c) = Config::parse(&text).unwrap() else {
        panic!("not an hq config")
    };
    let keys = c.store_keys().unwrap().expect("keys set");
    let a = StoreId::parse("madrid-centro").unwrap();
    // An unsigned batch is now refused.
    assert!(keys.verify(&a, &a, b"batch", None).is_err());
    // Without the table, unsigned batches stay accepted (older configs keep working).
    assert!(HqConfig::load(&example("hq.example.toml"))
        .unwrap()
        .store_keys()
        .unwrap()
        .is_none());
}

#[test]
fn store_keys_name_a_missing_an_unknown_and_a_bad_key() {
    let text = format!(
        "{}\n[store_keys]\nmadrid-centro = \"abc\"\nnorte = \"{KEY_B}\"\n",
        hq_text()
    );
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("store_keys.madrid-centro"), "{errs}");
    assert!(errs.names("store_keys.norte"), "{errs}");
    assert!(errs.names("store_keys.sevilla-nervion"), "{errs}");
    assert!(errs.to_string().contains("storenode key"), "{errs}");
}

const QR_OLD: &str = "3f1c9a7b2e4d6f8011223344556677889900aabbccddeeff0011223344556677";

#[test]
fn a_rotated_qr_key_ring_signs_with_the_new_key_and_keeps_the_old_one_verifying() {
    let new = new_qr_key_hex();
    assert_eq!(new.len(), 64);
    assert_ne!(new, new_qr_key_hex());
    let text = hq_text().replace(
        &format!("qr_keys = [\"{QR_OLD}\"]"),
        &format!("qr_keys = [\"{new}\", \"{QR_OLD}\"]"),
    );
    let Config::Hq(c) = Config::parse(&text).unwrap() else {
        panic!("not an hq config")
    };
    assert_eq!(c.pickup.qr_keys.len(), 2);
    let settings = crate::hq::HqSettings::from_config(&c);
    assert_eq!(settings.qr_key, hex::decode(&new).unwrap());
    let store = store_text().replace(
        &format!("qr_keys = [\"{QR_OLD}\"]"),
        &format!("qr_keys = [\"{new}\", \"{QR_OLD}\"]"),
    );
    let Config::Store(s) = Config::parse(&store).unwrap() else {
        panic!("not a store config")
    };
    assert_eq!(s.pickup.qr_keys[1].bytes(), hex::decode(QR_OLD).unwrap());
}

#[test]
fn a_duplicated_or_overlong_qr_key_ring_is_refused() {
    let text = store_text().replace(
        &format!("qr_keys = [\"{QR_OLD}\"]"),
        &format!("qr_keys = [\"{QR_OLD}\", \"{QR_OLD}\"]"),
    );
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("pickup.qr_keys[1]"), "{errs}");
    let five: Vec<String> = (0..5)
        .map(|_| format!("\"{}\"", new_qr_key_hex()))
        .collect();
    let text = store_text().replace(
        &format!("qr_keys = [\"{QR_OLD}\"]"),
        &format!("qr_keys = [{}]", five.join(", ")),
    );
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("pickup.qr_keys"), "{errs}");
}

#[test]
fn returns_limits_are_read_and_bad_ones_name_their_keys() {
    let Config::Store(c) = Config::parse(&store_text()).unwrap() else {
        panic!("not a store config")
    };
    assert_eq!(c.returns.window_days, 30);
    assert_eq!(c.returns.policy().unverified_max_cents, 10_000);
    assert_eq!(c.returns.policy().window_ms, 30 * 86_400_000);
    let text = store_text()
        .replace("window_days = 30", "window_days = 0")
        .replace("unverified_max_cents = 10000", "unverified_max_cents = -5");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("returns.window_days"), "{errs}");
    assert!(errs.names("returns.unverified_max_cents"), "{errs}");
    let text = store_text().replace("window_days = 30", "window_days = 30\nwindow = 2");
    assert!(Config::parse(&text).unwrap_err().names("returns.window"));
}

#[test]
fn a_store_config_without_hq_public_key_or_with_a_bad_one_is_refused_naming_it() {
    let key_line = store_text()
        .lines()
        .find(|l| l.starts_with("hq_public_key"))
        .expect("the example names HQ's key")
        .to_string();
    let errs = Config::parse(&store_text().replace(&key_line, "")).unwrap_err();
    assert!(errs.names("hq_public_key"), "{errs}");
    assert!(errs.to_string().contains("storenode key --hq"), "{errs}");
    let bad = store_text().replace(&key_line, "hq_public_key = \"abc\"");
    let errs = Config::parse(&bad).unwrap_err();
    assert!(errs.names("hq_public_key"), "{errs}");
    assert!(
        errs.to_string().contains("HQ's public key is invalid"),
        "{errs}"
    );
}

#[test]
fn printers_that_would_never_get_a_job_are_refused_saying_why() {
    let two_receipts = format!(
        "{}\n[[printers]]\nname = \"second\"\nuri = \"tcp://127.0.0.1:9101\"\n",
        store_text()
    );
    let errs = Config::parse(&two_receipts).unwrap_err();
    assert!(errs.names("printers[1].kind"), "{errs}");
    assert!(errs.to_string().contains("never be sent a job"), "{errs}");

    let label_too = format!(
        "{}\n[[printers]]\nname = \"labels\"\nuri = \"tcp://127.0.0.1:9101\"\nkind = \"label\"\n",
        store_text()
    );
    assert!(Config::parse(&label_too).is_ok());

    let label_only = store_text().replace("kind = \"receipt\"", "kind = \"label\"");
    let errs = Config::parse(&label_only).unwrap_err();
    assert!(errs.names("printers"), "{errs}");
}

#[test]
fn the_example_fiscal_section_is_valid_and_a_bad_nif_check_letter_is_refused_with_the_reason() {
    let Config::Store(c) = Config::parse(&store_text()).unwrap() else {
        panic!("not a store config")
    };
    let fiscal = c.fiscal.unwrap();
    assert_eq!(fiscal.series, "MC");
    assert_eq!(fiscal.tax_id().unwrap().as_str(), "89890001K");
    let text = store_text().replace("nif = \"89890001K\"", "nif = \"89890001A\"");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("fiscal.nif"), "{errs}");
    assert!(
        errs.to_string()
            .contains("check character A, expected K in 89890001A"),
        "{errs}"
    );
    let text = store_text().replace("nif = \"89890001K\"", "nif = \"B12345675\"");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.to_string().contains("expected 4"), "{errs}");
}

#[test]
fn bad_fiscal_fields_are_each_named() {
    let text = store_text()
        .replace("series = \"MC\"", "series = \"M C\"")
        .replace(
            "timezone = \"Europe/Madrid\"",
            "timezone = \"Europe/Atlantis\"",
        )
        .replace(
            "qr_base_url = \"https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR\"",
            "qr_base_url = \"ftp://x\"\n[fiscal.aeat]\nurl = \"https://aeat.example\"",
        );
    let errs = Config::parse(&text).unwrap_err();
    for path in [
        "fiscal.series",
        "fiscal.timezone",
        "fiscal.qr_base_url",
        "fiscal.aeat.client_cert",
    ] {
        assert!(errs.names(path), "{path} not named in {errs}");
    }
}

#[test]
fn the_aeat_client_certificate_must_hold_a_certificate_and_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("client.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let text = store_text().replace(
        "qr_base_url = \"https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR\"",
        &format!(
            "qr_base_url = \"https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR\"\n[fiscal.aeat]\nurl = \"https://aeat.example\"\nclient_cert = {:?}",
            pem.display().to_string()
        ),
    );
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("fiscal.aeat.client_cert"), "{errs}");
    assert!(errs.to_string().contains("no PEM private key"), "{errs}");
}

#[test]
fn the_contact_policy_and_the_webhook_secret_are_checked_naming_their_keys() {
    let c = HqConfig::load(&example("hq.example.toml")).unwrap();
    let policy = c.contact_policy.policy();
    assert_eq!(policy.max_per_week, 2);
    assert!(policy.quiet_hours.is_some());
    assert_eq!(c.webhook.abandoned_cart_hours, Some(24));

    let text = hq_text()
        .replace("quiet_hours = \"21:00-09:00\"", "quiet_hours = \"9pm-9am\"")
        .replace("utc_offset = \"+01:00\"", "utc_offset = \"CET\"")
        .replace("max_per_week = 2", "max_per_week = 1000")
        .replace("abandoned_cart_hours = 24", "abandoned_cart_hours = 0");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("contact_policy.utc_offset"), "{errs}");
    assert!(errs.names("contact_policy.max_per_week"), "{errs}");
    assert!(errs.names("webhook.abandoned_cart_hours"), "{errs}");
    let text = hq_text().replace("quiet_hours = \"21:00-09:00\"", "quiet_hours = \"9pm-9am\"");
    let errs = Config::parse(&text).unwrap_err();
    assert!(errs.names("contact_policy.quiet_hours"), "{errs}");

    let no_secret: String = hq_text()
        .lines()
        .filter(|l| !l.starts_with("secret ="))
        .collect::<Vec<_>>()
        .join("\n");
    let errs = Config::parse(&no_secret).unwrap_err();
    assert!(errs.names("webhook.secret"), "a url needs a secret: {errs}");
    let short = hq_text().replace("change-me-webhook-secret-0123456789", "short");
    assert!(Config::parse(&short).unwrap_err().names("webhook.secret"));
}
