use super::*;

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
