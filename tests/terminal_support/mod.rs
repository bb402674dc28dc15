//! Shared fixture of the terminal tests: a store `madrid-centro` with a catalog, stock, an
//! allocation to HQ, a customer with a cart, a placed pickup order, and two staff members.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use storenode::devices::escpos::StoreHeader;
use storenode::domain::ids::gtin_check_digit;
use storenode::domain::op::{OrderLine, ProfilePatch, ReceiveReason};
use storenode::domain::{ActorId, CustomerId, Ean13, OrderId, Payload, Replica, Sku, StoreId};
use storenode::store::Node;
use storenode::terminal::link::{FixedLink, LinkStatus};
use storenode::terminal::print::{DeviceStatus, MemoryPrintSink, PrintJob, PrintSink, StagedJob};
use storenode::terminal::spool::{PrinterQueue, QueuePrintSink};
use storenode::terminal::{app, Role, TerminalConfig, TerminalState};
use tower::ServiceExt;

pub const ORDER: &str = "O-1001";
pub const CODE: &str = "ABC234";
pub const CUSTOMER: &str = "C-0001";
pub const KEY: &[u8] = b"chain-test-key";

pub fn ean(prefix12: &str) -> String {
    let digits: Vec<u8> = prefix12.bytes().map(|b| b - b'0').collect();
    format!("{prefix12}{}", gtin_check_digit(&digits))
}

/// (sku, ean, name, price_cents, vat_bp, store stock, allocated to HQ)
pub fn products() -> Vec<(&'static str, String, &'static str, i64, u32, u32, u32)> {
    vec![
        (
            "SKU-1",
            ean("841000000001"),
            "Café molido natural 250 g",
            349,
            1000,
            10,
            3,
        ),
        (
            "SKU-2",
            ean("841000000002"),
            "Leche entera 1 L",
            99,
            400,
            5,
            2,
        ),
        (
            "SKU-3",
            ean("841000000003"),
            "Aceite de oliva virgen extra 1 L",
            899,
            400,
            1,
            0,
        ),
        (
            "SKU-4",
            ean("841000000004"),
            "Galletas María 800 g",
            215,
            1000,
            0,
            0,
        ),
    ]
}

pub fn store() -> StoreId {
    StoreId::parse("madrid-centro").unwrap()
}

/// Every job goes to memory (for assertions) and to the node's durable print queue.
pub struct Tee {
    pub memory: Arc<MemoryPrintSink>,
    pub queue: QueuePrintSink,
}

impl PrintSink for Tee {
    fn stage(&self, job: PrintJob) -> StagedJob {
        let queue = self.queue.stage(job.clone());
        let memory = self.memory.stage(job);
        Box::new(move |tx| {
            queue(tx)?;
            memory(tx)
        })
    }
    fn committed(&self) {
        self.queue.committed();
    }
    fn devices(&self) -> Vec<DeviceStatus> {
        self.queue.devices()
    }
}

/// Print queue rows per kind (`receipt`, `bag_label`, `drawer`).
pub async fn queued(node: &Node, kind: &str) -> i64 {
    let kind = kind.to_string();
    node.query(move |c| {
        c.query_row(
            "SELECT count(*) FROM print_job WHERE kind = ?1",
            [kind],
            |r| r.get(0),
        )
    })
    .await
    .unwrap()
}

pub struct Fixture {
    pub state: TerminalState,
    pub node: Node,
    pub dir: tempfile::TempDir,
    pub printer: Arc<MemoryPrintSink>,
    pub link: Arc<FixedLink>,
    pub hq: Replica,
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::with_config(|_| {}).await
    }

    /// A fixture whose terminal config `tweak` adjusts (rate limits, keys).
    pub async fn with_config(tweak: impl FnOnce(&mut TerminalConfig)) -> Fixture {
        let store = store();
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(&dir.path().join("store.db"), store.actor()).unwrap();
        let mut hq = Replica::new(ActorId::hq());
        let customer = CustomerId::parse(CUSTOMER).unwrap();
        let mut hq_ops = Vec::new();
        let mut issue = |hq: &mut Replica, p: Payload| hq_ops.push(hq.prepare(1_000, p).unwrap().0);
        for (s, e, name, price, vat, _, _) in products() {
            issue(
                &mut hq,
                Payload::CatalogPut {
                    sku: sku(s),
                    ean: Ean13::parse(&e).unwrap(),
                    name: name.into(),
                    price_cents: price,
                    vat_bp: vat,
                },
            );
        }
        issue(
            &mut hq,
            Payload::CustomerUpdate {
                customer: customer.clone(),
                patch: ProfilePatch {
                    name: Some("Lucía Pérez Gómez".into()),
                    email: Some("lucia.perez@example.com".into()),
                    phone: Some("+34 600 111 222".into()),
                    loyalty_card: Some("2100000000017".into()),
                },
            },
        );
        issue(
            &mut hq,
            Payload::CartSet {
                customer: customer.clone(),
                sku: sku("SKU-3"),
                qty: 1,
            },
        );
        issue(
            &mut hq,
            Payload::CartSet {
                customer: customer.clone(),
                sku: sku("SKU-1"),
                qty: 2,
            },
        );
        issue(
            &mut hq,
            Payload::CartSet {
                customer: customer.clone(),
                sku: sku("SKU-4"),
                qty: 1,
            },
        );
        node.ingest(hq_ops).await.unwrap();
        let mut store_payloads = Vec::new();
        for (s, _, _, _, _, qty, to_hq) in products() {
            if qty > 0 {
                store_payloads.push(Payload::StockReceive {
                    store: store.clone(),
                    sku: sku(s),
                    qty,
                    reason: ReceiveReason::Delivery,
                });
            }
            if to_hq > 0 {
                store_payloads.push(Payload::StockTransfer {
                    store: store.clone(),
                    sku: sku(s),
                    to: ActorId::hq(),
                    qty: to_hq,
                });
            }
        }
        let store_ops = node.submit(store_payloads).await.unwrap().ops;
        for op in &store_ops {
            hq.apply(op).unwrap();
        }
        let (order, _) = hq
            .prepare(
                2_000,
                Payload::OrderPlace {
                    order_id: OrderId::parse(ORDER).unwrap(),
                    store: store.clone(),
                    customer,
                    lines: vec![
                        OrderLine {
                            sku: sku("SKU-1"),
                            qty: 2,
                        },
                        OrderLine {
                            sku: sku("SKU-2"),
                            qty: 1,
                        },
                    ],
                    pickup_code: CODE.into(),
                    placed_at_ms: storenode::store::now_ms(),
                },
            )
            .unwrap();
        node.ingest(vec![order]).await.unwrap();
        let printer = Arc::new(MemoryPrintSink::default());
        let header = StoreHeader {
            name: "Madrid Centro".into(),
            address: vec!["Calle Mayor 1, Madrid".into()],
            tax_id: "B12345678".into(),
        };
        let sink = Arc::new(Tee {
            memory: printer.clone(),
            queue: QueuePrintSink::new(
                PrinterQueue {
                    name: "receipt".into(),
                    wake: Default::default(),
                    health: None,
                },
                None,
                header,
            ),
        });
        let link = Arc::new(FixedLink::new(LinkStatus {
            online: true,
            since_ms: Some(1_000),
            outbox: 0,
            last_sync_ms: Some(2_000),
        }));
        let mut config = TerminalConfig::new(store);
        // Tests not about the drawer sell cash without one, as a store with
        // `[till] cash_session_required = false` does; the till tests turn it back on.
        config.till.cash_session_required = false;
        config.pickup_keys = vec![KEY.to_vec()];
        tweak(&mut config);
        let state = TerminalState::new(node.clone(), link.clone(), sink, config);
        state
            .upsert_staff("1001", "Ana García", Role::Associate, "1234")
            .await
            .unwrap();
        state
            .upsert_staff("9001", "Marta Ruiz", Role::Manager, "4321")
            .await
            .unwrap();
        Fixture {
            state,
            node,
            dir,
            printer,
            link,
            hq,
        }
    }

    pub fn app(&self) -> axum::Router {
        app(self.state.clone())
    }

    /// Log in and return the cookie header value.
    pub async fn login(&self, staff: &str, pin: &str) -> String {
        let (status, headers, body) = self
            .call(
                Method::POST,
                "/api/v1/session",
                Some(serde_json::json!({"staff": staff, "pin": pin})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let cookie = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        cookie: Option<&str>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let res = self.app().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, value)
    }
}
