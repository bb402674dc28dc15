//! Property tests of erasure: it commutes with concurrent updates and follows them.
//!
//! Three actors write about one customer concurrently (profile, consent, cart, a sale naming
//! them) and one or more of them erases the customer. Each replica below keeps a log the way
//! the store does: ops about an erased customer are stored anonymous, and an erasure rewrites
//! the log. Whatever order the ops arrive in, and whether a replica receives original or
//! anonymous copies, every replica ends with one digest, no personal data in state or log, and
//! the anonymous sale total intact.

use super::erasure::to_store;
use super::ids::{ActorId, CustomerId, SaleId, Sku, StoreId};
use super::op::{Channel, Op, Payload, ProfilePatch, SaleLine, Tender};
use super::{Hlc, Replica};
use proptest::prelude::*;

const NAMES: [&str; 3] = ["Lucía Pérez Gómez", "Íñigo Ruiz", "Marta Sanz"];
const EMAILS: [&str; 3] = ["lucia@example.com", "inigo@example.es", "marta@example.org"];
const PHONES: [&str; 3] = ["+34600111222", "+34611222333", "+34622333444"];
const CARDS: [&str; 3] = ["LOY-9000111", "LOY-9000222", "LOY-9000333"];

fn lucia() -> CustomerId {
    CustomerId::parse("C-0042").unwrap()
}

fn actors() -> [ActorId; 3] {
    [
        ActorId::hq(),
        StoreId::parse("madrid-centro").unwrap().actor(),
        StoreId::parse("sevilla-nervion").unwrap().actor(),
    ]
}

/// A replica and its op log, kept as `store::Node` keeps them.
struct Logged {
    replica: Replica,
    log: Vec<Op>,
}

impl Logged {
    fn new(actor: ActorId) -> Logged {
        Logged {
            replica: Replica::new(actor),
            log: Vec::new(),
        }
    }

    fn apply(&mut self, op: &Op) {
        if let super::Applied::New(_) = self.replica.apply(op).unwrap() {
            let state = self.replica.state();
            self.log
                .push(to_store(op, state).unwrap_or_else(|| op.clone()));
            if matches!(op.payload, Payload::CustomerErase { .. }) {
                for stored in &mut self.log {
                    if let Some(anon) = to_store(stored, state) {
                        *stored = anon;
                    }
                }
            }
        }
    }

    fn log_bytes(&self) -> Vec<u8> {
        self.log
            .iter()
            .flat_map(|op| postcard::to_allocvec(op).unwrap())
            .collect()
    }
}

fn payload(what: u8, i: usize, actor: usize, n: usize) -> Payload {
    let customer = lucia();
    match what % 6 {
        0 => Payload::CustomerUpdate {
            customer,
            patch: ProfilePatch {
                name: Some(NAMES[i].into()),
                email: Some(EMAILS[i].into()),
                phone: Some(PHONES[i].into()),
                loyalty_card: Some(CARDS[i].into()),
            },
        },
        1 => Payload::ConsentSet {
            customer,
            channel: [Channel::Email, Channel::Sms, Channel::Whatsapp][i],
            granted: i != 1,
            source: format!("counter {}", NAMES[i]),
        },
        2 => Payload::CartSet {
            customer,
            sku: Sku::parse("SKU-A").unwrap(),
            qty: 1 + i as u32,
        },
        3 if actor > 0 => Payload::Sale {
            store: StoreId::parse(["madrid-centro", "sevilla-nervion"][actor - 1]).unwrap(),
            sale_id: SaleId::parse(&format!("S-{actor}-{n}")).unwrap(),
            lines: vec![SaleLine {
                sku: Sku::parse("SKU-A").unwrap(),
                qty: 1,
                unit_cents: 250,
                vat_bp: 2100,
            }],
            tender: Tender::Card,
            customer: Some(customer),
        },
        _ => Payload::CustomerErase { customer },
    }
}

/// Each actor's ops in its seq order; at least one erasure somewhere.
fn histories(steps: &[(u8, u8, u8)]) -> Vec<Vec<Op>> {
    let actors = actors();
    let mut out: Vec<Vec<Op>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for (n, (who, what, i)) in steps.iter().enumerate() {
        let who = *who as usize % 3;
        let seq = out[who].len() as u64 + 1;
        out[who].push(Op {
            actor: actors[who].clone(),
            seq,
            hlc: Hlc::new(1_000 + n as u64, 0),
            payload: payload(*what, *i as usize % 3, who, n),
        });
    }
    let seq = out[0].len() as u64 + 1;
    out[0].push(Op {
        actor: ActorId::hq(),
        seq,
        hlc: Hlc::new(1_000 + steps.len() as u64 / 2, 1),
        payload: Payload::CustomerErase { customer: lucia() },
    });
    out
}

/// Interleave the histories by `picks` (each pick chooses the next actor among those left).
fn interleave(histories: &[Vec<Op>], picks: &[u8]) -> Vec<Op> {
    let mut next = vec![0usize; histories.len()];
    let mut out = Vec::new();
    let mut picks = picks.iter().cycle();
    loop {
        let open: Vec<usize> = (0..histories.len())
            .filter(|&a| next[a] < histories[a].len())
            .collect();
        if open.is_empty() {
            return out;
        }
        let a = open[*picks.next().unwrap_or(&0) as usize % open.len()];
        out.push(histories[a][next[a]].clone());
        next[a] += 1;
    }
}

/// The first personal datum found in `bytes`, if any.
fn personal_data_in(bytes: &[u8]) -> Option<&'static str> {
    NAMES
        .iter()
        .chain(&EMAILS)
        .chain(&PHONES)
        .chain(&CARDS)
        .find(|needle| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .copied()
}

proptest! {
    #[test]
    fn erasure_commutes_with_concurrent_updates_in_any_order(
        steps in prop::collection::vec((0u8..3, 0u8..12, 0u8..3), 1..40),
        first in prop::collection::vec(any::<u8>(), 1..16),
        second in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let histories = histories(&steps);
        let order_a = interleave(&histories, &first);
        let order_b = interleave(&histories, &second);
        let sales_cents: i64 = order_a
            .iter()
            .filter(|op| matches!(op.payload, Payload::Sale { .. }))
            .count() as i64
            * 250;

        let mut a = Logged::new(ActorId::hq());
        for op in &order_a {
            a.apply(op);
        }
        let mut b = Logged::new(StoreId::parse("madrid-centro").unwrap().actor());
        for op in &order_b {
            b.apply(op);
        }
        // A third replica receives the first one's (partly anonymous) log in reverse order
        // per actor interleaving: original and rewritten copies of an op must agree.
        let mut c = Logged::new(StoreId::parse("sevilla-nervion").unwrap().actor());
        let mut from_a: Vec<Op> = a.log.clone();
        from_a.sort_by_key(|op| (std::cmp::Reverse(op.actor.clone()), op.seq));
        for op in &from_a {
            c.apply(op);
        }

        prop_assert_eq!(a.replica.digest(), b.replica.digest());
        prop_assert_eq!(a.replica.digest(), c.replica.digest());
        for (name, r) in [("a", &a), ("b", &b), ("c", &c)] {
            let state = r.replica.state();
            prop_assert!(state.customer_erased(&lucia()));
            prop_assert!(!state.customers[&lucia()].has_personal_data());
            prop_assert!(!state.carts.contains_key(&lucia()));
            let total: i64 = state.sales.values().map(|s| s.total_cents()).sum();
            prop_assert_eq!(total, sales_cents, "anonymous totals stay on {}", name);
            prop_assert_eq!(personal_data_in(&r.log_bytes()), None, "log of {}", name);
            // The rewritten log replays to the same state.
            let mut replay = Replica::new(ActorId::hq());
            for op in &r.log {
                replay.apply(op).unwrap();
            }
            prop_assert_eq!(replay.digest(), a.replica.digest());
        }
    }
}

#[test]
fn the_unerased_log_holds_the_personal_data_the_check_looks_for() {
    // Positive control: without an erasure the same check finds the data.
    let mut a = Logged::new(ActorId::hq());
    a.apply(&Op {
        actor: ActorId::hq(),
        seq: 1,
        hlc: Hlc::new(1, 0),
        payload: payload(0, 0, 0, 0),
    });
    assert_eq!(personal_data_in(&a.log_bytes()), Some(NAMES[0]));
}
