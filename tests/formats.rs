//! Golden bytes of every format we persist or send: each `Payload` variant (postcard, as stored
//! in the op log inside `encode_op` and as carried in sync batches) and each sync `Message`
//! variant (`wire::encode`: version byte, then postcard), and the replica snapshot a node
//! starts from (`store::snapshot`).
//!
//! Postcard encodes an enum variant as its index, so the enums are APPEND-ONLY: reordering or
//! removing a variant silently changes what old databases and peers mean. A failure here means
//! a format changed; never "fix" it by updating the hex unless the change is deliberate and
//! versioned (`OP_FORMAT_V1`, `WIRE_VERSION`).
//!
//! Adding a variant: add a case at the end of `payload_cases` or `message_cases` with its
//! expected hex (the failure message prints the actual bytes), and its arm in `payload_index`
//! or `message_index` (those matches have no wildcard, so a new variant does not compile until
//! it has a golden case).

use sha2::{Digest as _, Sha256};
use storenode::domain::fiscal::record::{
    InvoiceRecord, InvoiceRef, InvoiceType, RecordKind, VatLine,
};
use storenode::domain::ids::{CashSessionId, Category, PromotionId, TillId};
use storenode::domain::op::{
    Advance, CancelKind, Channel, ConsumeReason, OrderLine, ProfilePatch, ReceiptLine,
    ReceiveReason, ReturnLine, SaleLine, SoldInvoice, SoldSnapshot, Tender,
};
use storenode::domain::till::{
    CashMoveKind, LineDiscount, Promotion, PromotionKind, SalePricing, SkuPromotion, TillDoc,
};
use storenode::domain::{
    ActorId, CustomerId, Ean13, Hlc, MotionId, Op, OpId, OrderId, Payload, Replica, ReturnId,
    SaleId, Sku, StoreId,
};
use storenode::store::{encode_op, snapshot};
use storenode::sync::lookup::{LookupReply, SignedLookup};
use storenode::sync::wire::{
    self, Ack, DownBatch, EpochAck, EpochDownBatch, Message, SignedDown, SignedReply, SignedUp,
    Status, UpBatch,
};

fn store() -> StoreId {
    StoreId::parse("madrid").unwrap()
}
fn sku() -> Sku {
    Sku::parse("SKU-1").unwrap()
}
fn customer() -> CustomerId {
    CustomerId::parse("c-1").unwrap()
}
fn motion(id: &str) -> MotionId {
    MotionId::parse(id).unwrap()
}
fn order() -> OrderId {
    OrderId::parse("o-1").unwrap()
}

/// The variant's position in `Payload`; no wildcard, so a new variant needs a golden case.
fn payload_index(p: &Payload) -> usize {
    match p {
        Payload::CatalogPut { .. } => 0,
        Payload::StockReceive { .. } => 1,
        Payload::StockTransfer { .. } => 2,
        Payload::StockConsume { .. } => 3,
        Payload::CountRecorded { .. } => 4,
        Payload::RightsReturnRequested { .. } => 5,
        Payload::Sale { .. } => 6,
        Payload::OrderPlace { .. } => 7,
        Payload::OrderAdvance { .. } => 8,
        Payload::OrderPick { .. } => 9,
        Payload::OrderCancel { .. } => 10,
        Payload::OrderRelease { .. } => 11,
        Payload::CartSet { .. } => 12,
        Payload::CartRemove { .. } => 13,
        Payload::CustomerUpdate { .. } => 14,
        Payload::ConsentSet { .. } => 15,
        Payload::CustomerErase { .. } => 16,
        Payload::CustomerFollow { .. } => 17,
        Payload::Invoice { .. } => 18,
        Payload::ShipmentNotice { .. } => 19,
        Payload::ShipmentReceive { .. } => 20,
        Payload::TransferDispatch { .. } => 21,
        Payload::TransferReceive { .. } => 22,
        Payload::ConflictResolve { .. } => 23,
        Payload::Return { .. } => 24,
        Payload::ReturnRightsRequested { .. } => 25,
        Payload::ReturnRightsGranted { .. } => 26,
        Payload::PromotionPut { .. } => 27,
        Payload::SalePriced { .. } => 28,
        Payload::CashOpen { .. } => 29,
        Payload::CashMove { .. } => 30,
        Payload::CashClose { .. } => 31,
        Payload::OrderShipToStore { .. } => 32,
        Payload::OrderArrived { .. } => 33,
        Payload::ShipDispatch { .. } => 34,
        Payload::ShipWithdraw { .. } => 35,
        Payload::CashOpenTill { .. } => 36,
        Payload::TakenAt { .. } => 37,
        Payload::CatalogCategory { .. } => 38,
        Payload::PromotionSet { .. } => 39,
    }
}

/// One example of every payload variant, in variant order, with its postcard bytes.
fn payload_cases() -> Vec<(Payload, &'static str)> {
    vec![
        (
            Payload::CatalogPut {
                sku: sku(),
                ean: Ean13::parse("8410234782535").unwrap(),
                name: "Leche".into(),
                price_cents: 99,
                vat_bp: 400,
            },
            "0005534b552d310d38343130323334373832353335054c65636865c6019003",
        ),
        (
            Payload::StockReceive {
                store: store(),
                sku: sku(),
                qty: 5,
                reason: ReceiveReason::CustomerReturn,
            },
            "01066d616472696405534b552d310502",
        ),
        (
            Payload::StockTransfer {
                store: store(),
                sku: sku(),
                to: ActorId::hq(),
                qty: 2,
            },
            "02066d616472696405534b552d3102687102",
        ),
        (
            Payload::StockConsume {
                store: store(),
                sku: sku(),
                qty: 1,
                reason: ConsumeReason::ShrinkageCovered,
            },
            "03066d616472696405534b552d310102",
        ),
        (
            Payload::CountRecorded {
                store: store(),
                sku: sku(),
                counted: 3,
                expected: 4,
                shrinkage: 1,
            },
            "04066d616472696405534b552d31030401",
        ),
        (
            Payload::RightsReturnRequested {
                store: store(),
                sku: sku(),
                qty: 2,
            },
            "05066d616472696405534b552d3102",
        ),
        (
            Payload::Sale {
                store: store(),
                sale_id: SaleId::parse("s-1").unwrap(),
                lines: vec![SaleLine {
                    sku: sku(),
                    qty: 2,
                    unit_cents: -150,
                    vat_bp: 2100,
                }],
                tender: Tender::Card,
                customer: Some(customer()),
            },
            "06066d616472696403732d310105534b552d3102ab02b410010103632d31",
        ),
        (
            Payload::OrderPlace {
                order_id: order(),
                store: store(),
                customer: customer(),
                lines: vec![OrderLine { sku: sku(), qty: 1 }],
                pickup_code: "AB2CD3".into(),
                placed_at_ms: 1_800_000_000_000,
            },
            "07036f2d31066d616472696403632d310105534b552d31010641423243443380a0f1c2b134",
        ),
        (
            Payload::OrderAdvance {
                order_id: order(),
                store: store(),
                to: Advance::HandedOver,
            },
            "08036f2d31066d616472696402",
        ),
        (
            Payload::OrderPick {
                order_id: order(),
                store: store(),
                sku: sku(),
                picked: 1,
            },
            "09036f2d31066d616472696405534b552d3101",
        ),
        (
            Payload::OrderCancel {
                order_id: order(),
                store: store(),
                kind: CancelKind::Expired,
            },
            "0a036f2d31066d616472696401",
        ),
        (
            Payload::OrderRelease {
                order_id: order(),
                store: store(),
            },
            "0b036f2d31066d6164726964",
        ),
        (
            Payload::CartSet {
                customer: customer(),
                sku: sku(),
                qty: 3,
            },
            "0c03632d3105534b552d3103",
        ),
        (
            Payload::CartRemove {
                customer: customer(),
                sku: sku(),
                observed: vec![OpId {
                    actor: ActorId::hq(),
                    seq: 300,
                }],
            },
            "0d03632d3105534b552d3101026871ac02",
        ),
        (
            Payload::CustomerUpdate {
                customer: customer(),
                patch: ProfilePatch {
                    name: Some("Ana".into()),
                    email: None,
                    phone: Some("600111222".into()),
                    loyalty_card: None,
                },
            },
            "0e03632d310103416e6100010936303031313132323200",
        ),
        (
            Payload::ConsentSet {
                customer: customer(),
                channel: Channel::Whatsapp,
                granted: true,
                source: "till".into(),
            },
            "0f03632d3102010474696c6c",
        ),
        (
            Payload::CustomerErase {
                customer: customer(),
            },
            "1003632d31",
        ),
        (
            Payload::CustomerFollow {
                customer: customer(),
                store: store(),
            },
            "1103632d31066d6164726964",
        ),
        (
            Payload::Invoice {
                store: store(),
                record: Box::new(InvoiceRecord {
                    position: 1,
                    kind: RecordKind::Alta,
                    issuer_nif: "B12345674".into(),
                    issuer_name: "Tienda".into(),
                    series: "T1".into(),
                    number: 1,
                    fecha: "01-12-2026".into(),
                    tipo: InvoiceType::R5,
                    cuota_cents: -21,
                    importe_cents: -121,
                    vat: vec![VatLine {
                        vat_bp: 2100,
                        base_cents: -100,
                        cuota_cents: -21,
                    }],
                    customer_tax_id: None,
                    rectifies: Some(InvoiceRef {
                        numserie: "T1-0".into(),
                        fecha: "30-11-2026".into(),
                    }),
                    reference: "s-1".into(),
                    generated_at: "2026-12-01T10:00:00+01:00".into(),
                    previous: "".into(),
                    huella: "AB".into(),
                }),
            },
            "12066d6164726964010009423132333435363734065469656e6461025431010a30312d31322d323032360329f10101b410c7012900010454312d300a33302d31312d3230323603732d3119323032362d31322d30315431303a30303a30302b30313a303000024142",
        ),
        (
            Payload::ShipmentNotice {
                shipment: motion("sh-1"),
                store: store(),
                reference: "ASN-7".into(),
                lines: vec![OrderLine { sku: sku(), qty: 4 }],
            },
            "130473682d31066d61647269640541534e2d370105534b552d3104",
        ),
        (
            Payload::ShipmentReceive {
                shipment: motion("sh-1"),
                store: store(),
                lines: vec![ReceiptLine {
                    sku: sku(),
                    received: 4,
                    damaged: 1,
                }],
                over_delivery: false,
            },
            "140473682d31066d61647269640105534b552d31040100",
        ),
        (
            Payload::TransferDispatch {
                transfer: motion("tr-1"),
                store: store(),
                to: StoreId::parse("sevilla").unwrap(),
                lines: vec![OrderLine { sku: sku(), qty: 2 }],
            },
            "150474722d31066d616472696407736576696c6c610105534b552d3102",
        ),
        (
            Payload::TransferReceive {
                transfer: motion("tr-1"),
                store: StoreId::parse("sevilla").unwrap(),
                from: store(),
                lines: vec![ReceiptLine {
                    sku: sku(),
                    received: 1,
                    damaged: 0,
                }],
                over_delivery: true,
            },
            "160474722d3107736576696c6c61066d61647269640105534b552d31010001",
        ),
        (
            Payload::ConflictResolve {
                store: store(),
                conflict: "order:o-1".into(),
                action: "confirm_goods_left".into(),
                note: "bag left".into(),
                by: "9001".into(),
            },
            "17066d6164726964096f726465723a6f2d3112636f6e6669726d5f676f6f64735f6c65667408626167206c6566740439303031",
        ),
        (
            Payload::Return {
                store: StoreId::parse("sevilla").unwrap(),
                return_id: ReturnId::parse("r-1").unwrap(),
                sale: SaleId::parse("s-1").unwrap(),
                sale_store: Some(store()),
                lines: vec![ReturnLine {
                    sku: sku(),
                    qty: 1,
                    restock: true,
                    refund_cents: 1210,
                }],
                tender: Tender::Cash,
                verified: true,
                customer: Some(customer()),
            },
            "1807736576696c6c6103722d3103732d3101066d61647269640105534b552d310101f41200010103632d31",
        ),
        (
            Payload::ReturnRightsRequested {
                sale: SaleId::parse("s-1").unwrap(),
                by: StoreId::parse("sevilla").unwrap(),
                holder: Some(store()),
                epoch: 0,
            },
            "1903732d3107736576696c6c6101066d616472696400",
        ),
        (
            Payload::ReturnRightsGranted {
                sale: SaleId::parse("s-1").unwrap(),
                from: store(),
                to: StoreId::parse("sevilla").unwrap(),
                epoch: 1,
                sold: SoldSnapshot {
                    store: store(),
                    lines: vec![SaleLine {
                        sku: sku(),
                        qty: 2,
                        unit_cents: 1210,
                        vat_bp: 2100,
                    }],
                    at_ms: 1_800_000_000_000,
                    tender: Tender::Card,
                    customer: None,
                    invoice: Some(SoldInvoice {
                        numserie: "T1-1".into(),
                        fecha: "30-11-2026".into(),
                        tipo: InvoiceType::F2,
                        importe_cents: 2420,
                        customer_tax_id: None,
                    }),
                },
                returned: vec![(sku(), 1)],
            },
            "1a03732d31066d616472696407736576696c6c6101066d61647269640105534b552d3102f412b41080a0f1c2b1340100010454312d310a33302d31312d3230323601e825000105534b552d3101",
        ),
        (
            Payload::PromotionPut {
                promotion: SkuPromotion {
                    id: PromotionId::parse("p-1").unwrap(),
                    name: "3x2".into(),
                    kind: PromotionKind::NForM { n: 3, m: 2 },
                    skus: vec![sku()],
                    starts_ms: 1_800_000_000_000,
                    ends_ms: 1_800_086_400_000,
                    priority: 5,
                },
            },
            "1b03702d31033378320103020105534b552d3180a0f1c2b13480d88aecb13405",
        ),
        (
            Payload::SalePriced {
                store: store(),
                sale_id: SaleId::parse("s-1").unwrap(),
                pricing: SalePricing {
                    lines: vec![LineDiscount {
                        sku: sku(),
                        promotion: Some(PromotionId::parse("p-1").unwrap()),
                        promotion_cents: 121,
                        manual_bp: 1000,
                        manual_cents: 109,
                        ticket_cents: 5,
                    }],
                    ticket_bp: 50,
                    approved_by: Some("9001".into()),
                },
            },
            "1c066d616472696403732d310105534b552d310103702d31f201e807da010a32010439303031",
        ),
        (
            Payload::CashOpen {
                store: store(),
                session: CashSessionId::parse("z-1").unwrap(),
                float_cents: 15_000,
                staff: "1001".into(),
                opened_ms: 1_800_000_000_000,
            },
            "1d066d6164726964037a2d31b0ea01043130303180a0f1c2b134",
        ),
        (
            Payload::CashMove {
                store: store(),
                session: CashSessionId::parse("z-1").unwrap(),
                kind: CashMoveKind::Out,
                cents: 5_000,
                reason: "banco".into(),
                staff: "1001".into(),
            },
            "1e066d6164726964037a2d3101904e0562616e636f0431303031",
        ),
        (
            Payload::CashClose {
                store: store(),
                session: CashSessionId::parse("z-1").unwrap(),
                counted_cents: 14_990,
                staff: "9001".into(),
                closed_ms: 1_800_040_000_000,
            },
            "1f066d6164726964037a2d319cea01043930303180d4fad5b134",
        ),
        (
            Payload::OrderShipToStore {
                order_id: OrderId::parse("o-2").unwrap(),
                store: store(),
                from: StoreId::parse("sevilla").unwrap(),
                transfer: motion("tr-2"),
                customer: customer(),
                lines: vec![OrderLine { sku: sku(), qty: 2 }],
                pickup_code: "ABC234".into(),
                placed_at_ms: 1_800_000_000_000,
                ready_by_ms: 1_800_172_800_000,
            },
            "20036f2d32066d616472696407736576696c6c610474722d3203632d310105534b552d31020641424332333480a0f1c2b1348090a495b234",
        ),
        (
            Payload::OrderArrived {
                order_id: OrderId::parse("o-2").unwrap(),
                store: store(),
                lines: vec![OrderLine { sku: sku(), qty: 2 }],
            },
            "21036f2d32066d61647269640105534b552d3102",
        ),
        (
            Payload::ShipDispatch {
                order_id: OrderId::parse("o-2").unwrap(),
                transfer: motion("tr-2"),
                store: store(),
                to: StoreId::parse("sevilla").unwrap(),
            },
            "22036f2d320474722d32066d616472696407736576696c6c61",
        ),
        (
            Payload::ShipWithdraw {
                order_id: OrderId::parse("o-2").unwrap(),
                transfer: motion("tr-2"),
                store: store(),
                to: StoreId::parse("sevilla").unwrap(),
            },
            "23036f2d320474722d32066d616472696407736576696c6c61",
        ),
        (
            Payload::CashOpenTill {
                store: store(),
                till: TillId::parse("T2").unwrap(),
                session: CashSessionId::parse("z-1").unwrap(),
                float_cents: 15_000,
                staff: "1001".into(),
                opened_ms: 1_800_000_000_000,
            },
            "24066d6164726964025432037a2d31b0ea01043130303180a0f1c2b134",
        ),
        (
            Payload::TakenAt {
                store: store(),
                till: TillId::parse("T2").unwrap(),
                doc: TillDoc::Sale(SaleId::parse("s-1").unwrap()),
            },
            "25066d61647269640254320003732d31",
        ),
        (
            Payload::CatalogCategory {
                sku: sku(),
                category: Some(Category::parse("cafe").unwrap()),
            },
            "2605534b552d31010463616665",
        ),
        (
            Payload::PromotionSet {
                promotion: Promotion {
                    id: PromotionId::parse("p-2").unwrap(),
                    name: "cafe -10 %".into(),
                    kind: PromotionKind::Percent { bp: 1000 },
                    skus: vec![],
                    starts_ms: 1_800_000_000_000,
                    ends_ms: 1_800_086_400_000,
                    priority: 1,
                    categories: vec![Category::parse("cafe").unwrap()],
                },
            },
            "2703702d320a63616665202d3130202500e8070080a0f1c2b13480d88aecb13401010463616665",
        ),
    ]
}

fn op(seq: u64, payload: Payload) -> Op {
    Op {
        actor: store().actor(),
        seq,
        hlc: Hlc::new(1_800_000_000_000, 7),
        payload,
    }
}

/// The variant's position in `Message`; no wildcard, so a new variant needs a golden case.
fn message_index(m: &Message) -> usize {
    match m {
        Message::Up(_) => 0,
        Message::Down(_) => 1,
        Message::Ack(_) => 2,
        Message::Status(_) => 3,
        Message::SignedUp(_) => 4,
        Message::Lookup(_) => 5,
        Message::LookupReply(_) => 6,
        Message::SignedDown(_) => 7,
        Message::SignedReply(_) => 8,
        Message::EpochDown(_) => 9,
        Message::SignedEpochDown(_) => 10,
        Message::EpochAck(_) => 11,
    }
}

/// One example of every sync message, in variant order, with its bytes on the wire.
fn message_cases() -> Vec<(Message, &'static str)> {
    let receive = || {
        op(
            1,
            Payload::StockReceive {
                store: store(),
                sku: sku(),
                qty: 5,
                reason: ReceiveReason::Delivery,
            },
        )
    };
    vec![
        (
            Message::Up(UpBatch {
                store: store(),
                ops: vec![receive()],
            }),
            "0100066d6164726964010c73746f72653a6d61647269640180a0f1c2b1340701066d616472696405534b552d310500",
        ),
        (
            Message::Down(DownBatch {
                first_idx: 9,
                ops: vec![receive()],
            }),
            "010109010c73746f72653a6d61647269640180a0f1c2b1340701066d616472696405534b552d310500",
        ),
        (
            Message::Ack(Ack {
                from: ActorId::hq(),
                vv: [(store().actor(), 12), (ActorId::hq(), 3)].into(),
                down_idx: 0,
                resend: true,
                reply: false,
            }),
            "010202687102026871030c73746f72653a6d61647269640c000100",
        ),
        (
            Message::Status(Status {
                online: true,
                version: "0.1.0".into(),
                outbox: 4,
                at_ms: 1_800_000_000_000,
            }),
            "01030105302e312e300480a0f1c2b134",
        ),
        (
            Message::SignedUp(SignedUp {
                store: store(),
                batch: vec![1, 2, 3],
                signature: vec![0xAA; 4],
            }),
            "0104066d61647269640301020304aaaaaaaa",
        ),
        (
            Message::Lookup(SignedLookup {
                store: store(),
                body: vec![4, 5],
                signature: None,
            }),
            "0105066d616472696402040500",
        ),
        (
            Message::LookupReply(LookupReply {
                id: 77,
                customers: vec![customer()],
            }),
            "01064d0103632d31",
        ),
        (
            Message::SignedDown(SignedDown {
                store: store(),
                batch: vec![6, 7],
                signature: vec![0xBB; 4],
            }),
            "0107066d616472696402060704bbbbbbbb",
        ),
        (
            Message::SignedReply(SignedReply {
                store: store(),
                message: vec![8, 9],
                signature: vec![0xCC; 4],
            }),
            "0108066d616472696402080904cccccccc",
        ),
        (
            Message::EpochDown(EpochDownBatch {
                epoch: 4,
                first_idx: 9,
                ops: vec![receive()],
            }),
            "01090409010c73746f72653a6d61647269640180a0f1c2b1340701066d616472696405534b552d310500",
        ),
        (
            Message::SignedEpochDown(SignedDown {
                store: store(),
                batch: vec![6, 7],
                signature: vec![0xBB; 4],
            }),
            "010a066d616472696402060704bbbbbbbb",
        ),
        (
            Message::EpochAck(EpochAck {
                epoch: 2,
                ack: Ack {
                    from: store().actor(),
                    vv: [(store().actor(), 12)].into(),
                    down_idx: 5,
                    resend: false,
                    reply: false,
                },
            }),
            "010b020c73746f72653a6d6164726964010c73746f72653a6d61647269640c050000",
        ),
    ]
}

/// Compare every case; on failure list each mismatch with the actual bytes to paste.
fn check<T>(
    cases: Vec<(T, &'static str)>,
    bytes: impl Fn(&T) -> Vec<u8>,
    name: impl Fn(&T) -> String,
) {
    let mismatches: Vec<String> = cases
        .iter()
        .filter_map(|(value, expected)| {
            let actual = hex::encode(bytes(value));
            (actual != *expected)
                .then(|| format!("{}: expected {expected:?}, got {actual:?}", name(value)))
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "formats changed:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn every_payload_variant_has_a_golden_case_in_variant_order() {
    let indices: Vec<usize> = payload_cases()
        .iter()
        .map(|(p, _)| payload_index(p))
        .collect();
    assert_eq!(indices, (0..indices.len()).collect::<Vec<_>>());
}

#[test]
fn every_payload_encodes_to_its_golden_bytes() {
    check(
        payload_cases(),
        |p| postcard::to_allocvec(p).unwrap(),
        |p| p.kind().to_string(),
    );
}

#[test]
fn a_stored_op_encodes_to_its_golden_bytes() {
    let (payload, _) = payload_cases().swap_remove(6); // a sale
    check(vec![(op(42, payload), "010c73746f72653a6d61647269642a80a0f1c2b1340706066d616472696403732d310105534b552d3102ab02b410010103632d31")], encode_op, |_| {
        "stored sale op".to_string()
    });
}

#[test]
fn every_message_variant_has_a_golden_case_in_variant_order() {
    let indices: Vec<usize> = message_cases()
        .iter()
        .map(|(m, _)| message_index(m))
        .collect();
    assert_eq!(indices, (0..indices.len()).collect::<Vec<_>>());
}

#[test]
fn every_message_encodes_to_its_golden_bytes_and_decodes_back() {
    check(
        message_cases(),
        |m| wire::encode(m).unwrap(),
        |m| m.kind().to_string(),
    );
    for (message, _) in message_cases() {
        let bytes = wire::encode(&message).unwrap();
        assert_eq!(wire::decode(&bytes).unwrap(), message);
    }
}

/// A replica that applied every payload case, each from the first actor allowed to author it
/// (the store, HQ, or the other store the cases name), for the snapshot's golden case. A case
/// no actor may author would be missing from the snapshot: that fails here.
fn replica_of_every_case() -> Replica {
    let hq = ActorId::parse("hq").unwrap();
    let mut replica = Replica::new(hq.clone());
    let mut seqs: std::collections::BTreeMap<ActorId, u64> = Default::default();
    for (payload, _) in payload_cases() {
        let other = StoreId::parse("sevilla").unwrap().actor();
        let authors = [store().actor(), hq.clone(), other];
        let applied = authors.into_iter().any(|actor| {
            let seq = seqs.get(&actor).copied().unwrap_or(0) + 1;
            let ok = replica
                .apply(&Op {
                    actor: actor.clone(),
                    ..op(seq, payload.clone())
                })
                .is_ok();
            if ok {
                seqs.insert(actor, seq);
            }
            ok
        });
        assert!(applied, "no actor may author {}", payload.kind());
    }
    replica
}

/// The snapshot a node starts from (`store::snapshot`: postcard over the domain's own types)
/// of `replica_of_every_case`, as its length and SHA-256. A failure means a type inside
/// `State` changed shape, or a payload case was added: bump `snapshot::FORMAT` (always safe:
/// older snapshots are then ignored and the log replayed once), then paste the new figures.
#[test]
fn a_replica_snapshot_encodes_to_its_golden_digest_and_decodes_back() {
    let mut replica = replica_of_every_case();
    // Its sales leave memory, so the history the snapshot keeps of them is covered too.
    let sales: Vec<_> = replica.state().sales.keys().cloned().collect();
    for sale in &sales {
        replica.evict_sale(sale);
    }
    assert!(replica.state().evictions() > 0, "no sale was evicted");
    // So do its finished orders, and the history the snapshot keeps of them.
    let orders: Vec<_> = replica.state().orders.keys().cloned().collect();
    let evicted = orders
        .iter()
        .filter(|o| replica.evict_order(o).is_some())
        .count();
    assert!(evicted > 0, "no order was evicted");
    let bytes = snapshot::encode(&replica);
    let actual = format!(
        "format {} {} bytes sha256 {}",
        snapshot::FORMAT,
        bytes.len(),
        hex::encode(Sha256::digest(&bytes))
    );
    assert_eq!(actual, "format 7 1307 bytes sha256 966aad5a282eefd591beee0b55e5a70fa37d5e8bc1e53fd763bbb916ec85389a", "snapshot format changed");
    let back = snapshot::decode(replica.actor().clone(), &bytes).unwrap();
    assert_eq!(
        format!("{:?}", back.state()),
        format!("{:?}", replica.state())
    );
    assert_eq!(back.version(), replica.version());
    assert_eq!(snapshot::encode(&back), bytes);
}
