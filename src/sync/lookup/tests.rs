use super::*;
use crate::domain::op::ProfilePatch;
use crate::domain::ActorId;
use crate::http_security::RateLimit;
use proptest::prelude::*;

fn s(x: &str) -> StoreId {
    StoreId::parse(x).unwrap()
}

fn c(x: &str) -> CustomerId {
    CustomerId::parse(x).unwrap()
}

fn keys() -> (StoreKey, StoreKey, StoreKeys) {
    let a = StoreKey::from_secret(s("madrid-centro"), [1; 32]);
    let b = StoreKey::from_secret(s("sevilla-nervion"), [2; 32]);
    let keys = StoreKeys::parse([
        (a.store().clone(), a.public_hex().as_str()),
        (b.store().clone(), b.public_hex().as_str()),
    ])
    .unwrap();
    (a, b, keys)
}

fn lim() -> RateLimiter {
    RateLimiter::new(LOOKUP_RATE_DEFAULT)
}

fn request(store: &str, terms: Vec<LookupTerm>) -> LookupRequest {
    LookupRequest {
        store: s(store),
        id: 42,
        at_ms: 1_700_000_000_000,
        terms,
    }
}

fn signed(bytes: &[u8]) -> SignedLookup {
    match wire::decode(bytes).unwrap() {
        Message::Lookup(l) => l,
        other => panic!("expected a lookup, got {other:?}"),
    }
}

fn hq_with_customers() -> Replica {
    let mut r = Replica::new(ActorId::hq());
    let people = [
        (
            "c-1",
            "Ana",
            "ana@example.com",
            "+34 600 111 222",
            "1234567890",
        ),
        (
            "c-2",
            "Luis",
            "Luis.Gil@Example.com",
            "611222333",
            "2222333344",
        ),
        ("c-3", "Eva", "eva@example.com", "622333444", "3333444455"),
    ];
    for (id, name, email, phone, card) in people {
        r.prepare(
            1,
            Payload::CustomerUpdate {
                customer: c(id),
                patch: ProfilePatch {
                    name: Some(name.into()),
                    email: Some(email.into()),
                    phone: Some(phone.into()),
                    loyalty_card: Some(card.into()),
                },
            },
        )
        .unwrap();
    }
    r.prepare(2, Payload::CustomerErase { customer: c("c-3") })
        .unwrap();
    r
}

#[test]
fn a_signed_lookup_and_a_reply_round_trip_through_the_wire() {
    let (a, _, _) = keys();
    let req = request(
        "madrid-centro",
        vec![
            LookupTerm::Phone("600111222".into()),
            LookupTerm::LoyaltyCard("600111222".into()),
        ],
    );
    for key in [None, Some(&a)] {
        let bytes = encode_lookup(&req, key).unwrap();
        let l = signed(&bytes);
        assert_eq!(l.signature.is_some(), key.is_some());
        assert_eq!(open_lookup(&l).unwrap(), req);
        let json = wire::to_json(&Message::Lookup(l));
        assert_eq!(json["type"], "lookup");
        assert_eq!(json["id"], 42);
    }
    let reply = Message::LookupReply(LookupReply {
        id: 7,
        customers: vec![c("c-1"), c("c-2")],
    });
    let bytes = wire::encode(&reply).unwrap();
    assert_eq!(wire::decode(&bytes).unwrap(), reply);
    assert_eq!(wire::to_json(&reply)["customers"][1], "c-2");
}

#[test]
fn storenode_decode_prints_a_lookup_and_a_reply() {
    let (a, _, _) = keys();
    let req = request(
        "madrid-centro",
        vec![LookupTerm::Email("ana@example.com".into())],
    );
    let text =
        crate::sync::inspect::inspect(&encode_lookup(&req, Some(&a)).unwrap(), false).unwrap();
    assert!(
        text.contains("\"lookup\"") && text.contains("ana@example.com"),
        "{text}"
    );
    let reply = wire::encode(&Message::LookupReply(LookupReply {
        id: 3,
        customers: vec![c("c-1")],
    }))
    .unwrap();
    let text = crate::sync::inspect::inspect(hex::encode(reply).as_bytes(), true).unwrap();
    assert!(
        text.contains("lookup_reply") && text.contains("c-1"),
        "{text}"
    );
}

#[test]
fn oversized_lookups_and_replies_with_too_many_customers_are_refused() {
    let too_many = Message::LookupReply(LookupReply {
        id: 1,
        customers: (0..=LOOKUP_RESULTS_MAX)
            .map(|i| c(&format!("c-{i}")))
            .collect(),
    });
    let bytes = wire::encode(&too_many).unwrap();
    assert!(wire::decode(&bytes).is_err());
    let big = Message::Lookup(SignedLookup {
        store: s("madrid-centro"),
        body: vec![0; LOOKUP_BODY_BYTES_MAX + 1],
        signature: None,
    });
    assert!(wire::decode(&wire::encode(&big).unwrap()).is_err());
    let long = request(
        "madrid-centro",
        vec![LookupTerm::Email("x".repeat(LOOKUP_TERM_CHARS_MAX + 1))],
    );
    let l = signed(&encode_lookup(&long, None).unwrap());
    assert!(open_lookup(&l).is_err());
    let four = request(
        "madrid-centro",
        vec![LookupTerm::Phone("600111222".into()); LOOKUP_TERMS_MAX + 1],
    );
    let l = signed(&encode_lookup(&four, None).unwrap());
    assert!(open_lookup(&l).is_err());
}

#[test]
fn names_never_go_to_hq_and_identifiers_are_normalised() {
    assert!(terms_for("Ana García").is_empty());
    assert!(terms_for("ana@").is_empty());
    assert!(terms_for("12345").is_empty());
    assert_eq!(
        terms_for(" Ana@Example.COM "),
        vec![LookupTerm::Email("ana@example.com".into())]
    );
    assert_eq!(
        terms_for("+34 600 111 222"),
        vec![
            LookupTerm::Phone("34600111222".into()),
            LookupTerm::LoyaltyCard("34600111222".into()),
        ]
    );
}

#[test]
fn hq_finds_exact_matches_only_and_never_erased_customers() {
    let r = hq_with_customers();
    let find = |t: LookupTerm| search(&r, &[t]);
    assert_eq!(find(LookupTerm::Phone("600111222".into())), vec![c("c-1")]);
    assert_eq!(
        find(LookupTerm::Phone("34600111222".into())),
        vec![c("c-1")]
    );
    assert_eq!(
        find(LookupTerm::Phone("0034611222333".into())),
        vec![c("c-2")]
    );
    assert!(find(LookupTerm::Phone("111222".into())).is_empty());
    assert!(find(LookupTerm::Phone("600111".into())).is_empty());
    assert_eq!(
        find(LookupTerm::Email("luis.gil@example.com".into())),
        vec![c("c-2")]
    );
    assert!(find(LookupTerm::Email("luis".into())).is_empty());
    assert_eq!(
        find(LookupTerm::LoyaltyCard("2222333344".into())),
        vec![c("c-2")]
    );
    assert!(find(LookupTerm::LoyaltyCard("222233334".into())).is_empty());
    assert!(find(LookupTerm::Phone("622333444".into())).is_empty());
    assert!(find(LookupTerm::Email("eva@example.com".into())).is_empty());
}

#[test]
fn hq_answers_only_lookups_signed_by_the_topics_store_when_keys_are_configured() {
    let r = hq_with_customers();
    let (a, b, keys) = keys();
    let madrid = s("madrid-centro");
    let req = request("madrid-centro", vec![LookupTerm::Phone("600111222".into())]);
    let good = signed(&encode_lookup(&req, Some(&a)).unwrap());
    let reply = answer(&r, Some(&keys), &lim(), &madrid, &good).unwrap();
    assert_eq!((reply.id, reply.customers), (42, vec![c("c-1")]));
    let unsigned = signed(&encode_lookup(&req, None).unwrap());
    let e = answer(&r, Some(&keys), &lim(), &madrid, &unsigned).unwrap_err();
    assert_eq!(e.reason(), "unsigned");
    let forged = signed(&encode_lookup(&req, Some(&b)).unwrap());
    assert!(answer(&r, Some(&keys), &lim(), &madrid, &forged).is_err());
    let mut tampered = good.clone();
    if let Some(last) = tampered.body.last_mut() {
        *last ^= 1;
    }
    assert!(answer(&r, Some(&keys), &lim(), &madrid, &tampered).is_err());
    // On another store's topic, signed or not.
    let sevilla = s("sevilla-nervion");
    assert!(answer(&r, Some(&keys), &lim(), &sevilla, &good).is_err());
    assert!(answer(&r, None, &lim(), &sevilla, &unsigned).is_err());
    // Without keys (demo) an unsigned lookup on its own topic is answered.
    assert_eq!(
        answer(&r, None, &lim(), &madrid, &unsigned)
            .unwrap()
            .customers,
        vec![c("c-1")]
    );
    // A signature over the same bytes as an up-batch would not verify as a lookup.
    let as_batch = a.sign(&good.body).to_vec();
    let mut cross = good.clone();
    cross.signature = Some(as_batch);
    assert!(answer(&r, Some(&keys), &lim(), &madrid, &cross).is_err());
}

#[test]
fn a_store_over_its_lookup_budget_is_refused_and_forgeries_do_not_use_it_up() {
    let r = hq_with_customers();
    let (a, b, keys) = keys();
    let madrid = s("madrid-centro");
    let limiter = RateLimiter::new(RateLimit {
        per_minute: 1,
        burst: 2,
    });
    let req = request("madrid-centro", vec![LookupTerm::Phone("600111222".into())]);
    let good = signed(&encode_lookup(&req, Some(&a)).unwrap());
    let forged = signed(&encode_lookup(&req, Some(&b)).unwrap());
    for _ in 0..5 {
        assert!(answer(&r, Some(&keys), &limiter, &madrid, &forged).is_err());
    }
    assert!(answer(&r, Some(&keys), &limiter, &madrid, &good).is_ok());
    assert!(answer(&r, Some(&keys), &limiter, &madrid, &good).is_ok());
    let e = answer(&r, Some(&keys), &limiter, &madrid, &good).unwrap_err();
    assert_eq!(e.reason(), "rate_limited");
    // Another store's budget is its own.
    let (sevilla, key) = (s("sevilla-nervion"), b);
    let theirs = signed(&encode_lookup(&request("sevilla-nervion", vec![]), Some(&key)).unwrap());
    assert!(answer(&r, Some(&keys), &limiter, &sevilla, &theirs).is_ok());
}

#[test]
fn a_store_offline_gets_no_lookup_sent() {
    let (_tx, rx) = watch::channel(true);
    let lookups = StoreLookups::new("acme", s("madrid-centro"), None, rx);
    assert!(!lookups.online());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(lookups.ask(
        vec![LookupTerm::Phone("600111222".into())],
        Duration::from_secs(5),
    ));
    assert_eq!(got, Err(AskError::Offline));
}

proptest! {
    #[test]
    fn garbage_never_panics_the_lookup_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut framed = vec![wire::WIRE_VERSION];
        framed.extend_from_slice(&bytes);
        for input in [&bytes[..], &framed[..]] {
            if let Ok(Message::Lookup(l)) = wire::decode(input) {
                let _ = open_lookup(&l);
                let _ = wire::to_json(&Message::Lookup(l));
            }
        }
        let l = SignedLookup { store: s("madrid-centro"), body: bytes, signature: None };
        let _ = open_lookup(&l);
        let _ = answer(&hq_with_customers(), None, &lim(), &s("madrid-centro"), &l);
    }

    #[test]
    fn damaged_lookups_never_panic(cut in 0usize..200, flip in 0usize..200, bit in 0u8..8) {
        let req = request("madrid-centro", vec![LookupTerm::Email("ana@example.com".into())]);
        let mut bytes = encode_lookup(&req, None).unwrap();
        if !bytes.is_empty() {
            let i = flip % bytes.len();
            bytes[i] ^= 1 << bit;
        }
        bytes.truncate(cut.min(bytes.len()));
        if let Ok(Message::Lookup(l)) = wire::decode(&bytes) {
            let _ = open_lookup(&l);
        }
    }
}
