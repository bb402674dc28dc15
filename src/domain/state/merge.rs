//! The merge of one op into the state: total (it never refuses) and independent of the order
//! ops arrive in, so replicas holding the same ops hold the same state.
//! (Over 500 lines: one exhaustive `match` over every payload, kept whole so a new payload
//! cannot be merged in one place and forgotten in another.)

use super::{CountRecord, Effect, SaleRecord, State};
use crate::domain::catalog::Product;
use crate::domain::conflict::Resolution;
use crate::domain::customer::Consent;
use crate::domain::ids::{ActorId, OrderId, Sku, StoreId};
use crate::domain::motion::{merge_received, merge_sent, MotionKind, Received, Sent};
use crate::domain::op::{ConsumeReason, Op, Payload};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::till::cash::{Opening, TakenSale};
use crate::domain::till::{default_till, CashMovement};

impl State {
    /// Merge one new (never seen) op. Total: never refuses.
    pub(crate) fn merge(&mut self, op: &Op, effects: &mut Vec<Effect>) {
        if let Some(order_id) = op.payload.order() {
            let is_place = matches!(
                op.payload,
                Payload::OrderPlace { .. } | Payload::OrderShipToStore { .. }
            );
            if !is_place && !self.orders.contains_key(order_id) {
                self.pending_order_ops
                    .entry(order_id.clone())
                    .or_default()
                    .push(op.clone());
                return;
            }
        }
        self.merge_payload(op, effects);
        if let Payload::OrderPlace { order_id, .. } | Payload::OrderShipToStore { order_id, .. } =
            &op.payload
        {
            for waiting in self.pending_order_ops.remove(order_id).unwrap_or_default() {
                self.merge_payload(&waiting, effects);
            }
        }
    }

    fn merge_payload(&mut self, op: &Op, effects: &mut Vec<Effect>) {
        let actor = &op.actor;
        let marker = (op.hlc, actor.clone());
        match &op.payload {
            Payload::CatalogPut {
                sku,
                ean,
                name,
                price_cents,
                vat_bp,
            } => {
                self.supersede_price(sku, (op.hlc, actor.clone(), *price_cents));
                self.catalog.put(
                    Product {
                        sku: sku.clone(),
                        ean: *ean,
                        name: name.clone(),
                        price_cents: *price_cents,
                        vat_bp: *vat_bp,
                    },
                    marker,
                )
            }
            Payload::StockReceive {
                store, sku, qty, ..
            } => {
                self.counter_mut(store, sku).create(actor, *qty);
                self.rights_grew(store, sku, actor, effects);
            }
            Payload::StockTransfer {
                store,
                sku,
                to,
                qty,
            } => {
                self.counter_mut(store, sku).transfer(actor, to, *qty);
                self.rights_grew(store, sku, to, effects);
            }
            Payload::StockConsume {
                store,
                sku,
                qty,
                reason,
            } => {
                self.counter_mut(store, sku).consume(actor, *qty);
                if *reason == ConsumeReason::Damaged {
                    self.returns.write_off(store, sku, *qty);
                }
                if *reason == ConsumeReason::ShrinkageCovered {
                    let key = (store.clone(), sku.clone());
                    *self.shrinkage_covered.entry(key.clone()).or_default() += u64::from(*qty);
                    self.settle_shortfall(key);
                }
            }
            Payload::CountRecorded {
                store,
                sku,
                counted,
                expected,
                shrinkage,
            } => {
                self.counts.insert(
                    op.id(),
                    CountRecord {
                        store: store.clone(),
                        sku: sku.clone(),
                        counted: *counted,
                        expected: *expected,
                        shrinkage: *shrinkage,
                        at: op.hlc,
                    },
                );
                let key = (store.clone(), sku.clone());
                *self.shrinkage_counted.entry(key.clone()).or_default() += u64::from(*shrinkage);
                self.settle_shortfall(key);
            }
            Payload::RightsReturnRequested { store, sku, qty } => {
                effects.push(Effect::ReturnRequested {
                    store: store.clone(),
                    sku: sku.clone(),
                    qty: *qty,
                })
            }
            Payload::Sale {
                store,
                sale_id,
                lines,
                tender,
                customer,
            } => {
                for line in lines {
                    self.counter_mut(store, &line.sku).consume(actor, line.qty);
                }
                let record = SaleRecord {
                    id: sale_id.clone(),
                    store: store.clone(),
                    lines: lines.clone(),
                    tender: *tender,
                    customer: customer.clone(),
                    at: op.hlc,
                    pricing: self.sale_pricing.remove(sale_id),
                };
                if actor.is_store(store) {
                    let nets = record.net_lines();
                    let taken = TakenSale {
                        tender: *tender,
                        lines,
                        nets: &nets,
                        pricing: record.pricing.as_ref(),
                    };
                    self.cash.on_sale(store, sale_id, taken);
                }
                self.sales.insert(sale_id.clone(), record);
                self.recheck_double_returns(sale_id);
            }
            Payload::OrderPlace {
                order_id,
                store,
                customer,
                lines,
                pickup_code,
                placed_at_ms,
            } => {
                for line in lines {
                    self.counter_mut(store, &line.sku).consume(actor, line.qty);
                }
                let order = Order::new(
                    order_id.clone(),
                    store.clone(),
                    customer.clone(),
                    actor.clone(),
                    *placed_at_ms,
                    op.hlc,
                    pickup_code.clone(),
                    lines,
                );
                self.insert_order(order, effects);
            }
            Payload::OrderShipToStore { .. } => self.merge_ship_to_store(op, effects),
            Payload::OrderArrived {
                order_id,
                store,
                lines,
            } => self.merge_arrived(actor, order_id, store, lines),
            Payload::OrderAdvance { order_id, to, .. } => {
                if let Some(order) = self.orders.get_mut(order_id) {
                    let before = order.status;
                    order.raise((*to).into());
                    if order.status == OrderStatus::Ready && before != OrderStatus::Ready {
                        effects.push(Effect::OrderReady {
                            order: order_id.clone(),
                            store: order.store.clone(),
                        });
                    }
                }
            }
            Payload::OrderPick {
                order_id,
                sku,
                picked,
                ..
            } => {
                if let Some(order) = self.orders.get_mut(order_id) {
                    order.pick(sku, *picked);
                }
            }
            Payload::OrderCancel { order_id, kind, .. } => {
                let Some(order) = self.orders.get_mut(order_id) else {
                    return;
                };
                order.raise((*kind).into());
                let by_store = actor.is_store(&order.store);
                let needs_release =
                    !by_store && !order.released && order.status != OrderStatus::HandedOver;
                let store = order.store.clone();
                if by_store {
                    self.release(order_id, actor, effects);
                } else if needs_release {
                    effects.push(Effect::ReleaseNeeded {
                        order: order_id.clone(),
                        store,
                    });
                }
            }
            Payload::OrderRelease { order_id, .. } => self.release(order_id, actor, effects),
            Payload::CartSet { customer, sku, qty } => {
                if !self.customer_erased(customer) {
                    self.carts
                        .entry(customer.clone())
                        .or_default()
                        .set(op.id(), op.hlc, sku, *qty);
                }
            }
            Payload::CartRemove {
                customer,
                sku,
                observed,
            } => {
                if !self.customer_erased(customer) {
                    self.carts
                        .entry(customer.clone())
                        .or_default()
                        .remove(op.hlc, sku, observed);
                }
            }
            Payload::CustomerUpdate { customer, patch } => self
                .customers
                .entry(customer.clone())
                .or_default()
                .update(patch, &marker),
            Payload::ConsentSet {
                customer,
                channel,
                granted,
                source,
            } => self
                .customers
                .entry(customer.clone())
                .or_default()
                .set_consent(
                    *channel,
                    Consent {
                        granted: *granted,
                        at_ms: op.hlc.wall_ms(),
                        source: source.clone(),
                    },
                    &marker,
                ),
            Payload::CustomerErase { customer } => {
                let first = self.erased_at.entry(customer.clone()).or_insert(op.hlc);
                *first = (*first).min(op.hlc);
                self.customers.entry(customer.clone()).or_default().erase();
                self.carts.remove(customer);
            }
            Payload::CustomerFollow { customer, store } => {
                self.follows.insert((store.clone(), customer.clone()));
            }
            Payload::Return { .. } => {
                self.merge_return(op, effects);
                self.count_return(op);
            }
            Payload::ReturnRightsRequested {
                sale, by, epoch, ..
            } => self.merge_rights_request(sale, by, *epoch),
            Payload::ReturnRightsGranted { .. } => self.merge_rights_grant(&op.payload),
            Payload::Invoice { store, record } => {
                if actor.is_store(store) && record.kind == crate::domain::fiscal::RecordKind::Alta {
                    self.cash.on_invoice(store, record.numserie());
                }
                self.fiscal
                    .entry(store.clone())
                    .or_default()
                    .merge((**record).clone())
            }
            Payload::PromotionPut { promotion } => self
                .promotions
                .put(promotion.clone().into(), (op.hlc, actor.clone())),
            Payload::PromotionSet { promotion } => self
                .promotions
                .put(promotion.clone(), (op.hlc, actor.clone())),
            Payload::CatalogCategory { sku, category } => {
                self.catalog
                    .set_category(sku.clone(), category.clone(), (op.hlc, actor.clone()))
            }
            Payload::SalePriced {
                sale_id, pricing, ..
            } => match self.sales.get_mut(sale_id) {
                Some(sale) => sale.pricing = Some(pricing.clone()),
                None => {
                    self.sale_pricing.insert(sale_id.clone(), pricing.clone());
                }
            },
            Payload::CashOpen {
                store,
                session,
                float_cents,
                staff,
                opened_ms,
            } => self.cash.open(
                store,
                &default_till(),
                session,
                Opening {
                    float_cents: *float_cents,
                    opened_ms: *opened_ms,
                    staff: staff.clone(),
                },
            ),
            Payload::CashOpenTill {
                store,
                till,
                session,
                float_cents,
                staff,
                opened_ms,
            } => self.cash.open(
                store,
                till,
                session,
                Opening {
                    float_cents: *float_cents,
                    opened_ms: *opened_ms,
                    staff: staff.clone(),
                },
            ),
            Payload::TakenAt { store, till, doc } => {
                if actor.is_store(store) {
                    self.cash.taken_at(doc.clone(), till);
                }
            }
            Payload::CashMove {
                session,
                kind,
                cents,
                reason,
                staff,
                ..
            } => self.cash.movement(
                session,
                CashMovement {
                    kind: *kind,
                    cents: *cents,
                    reason: reason.clone(),
                    staff: staff.clone(),
                },
            ),
            Payload::CashClose {
                store,
                session,
                counted_cents,
                staff,
                closed_ms,
            } => self
                .cash
                .close(store, session, *counted_cents, *closed_ms, staff),
            Payload::ShipmentNotice {
                shipment,
                store,
                reference,
                lines,
            } => {
                let sent = Sent {
                    from: None,
                    to: store.clone(),
                    reference: reference.clone(),
                    lines: lines.clone(),
                    at: op.hlc,
                    awaits_dispatch: false,
                };
                merge_sent(&mut self.shipments, MotionKind::Shipment, shipment, sent);
            }
            Payload::TransferDispatch {
                transfer,
                store,
                to,
                lines,
            } => {
                for line in lines {
                    self.counter_mut(store, &line.sku).consume(actor, line.qty);
                }
                let sent = Sent {
                    from: Some(store.clone()),
                    to: to.clone(),
                    reference: String::new(),
                    lines: lines.clone(),
                    at: op.hlc,
                    awaits_dispatch: false,
                };
                merge_sent(&mut self.transfers, MotionKind::Transfer, transfer, sent);
            }
            Payload::ShipmentReceive {
                shipment: id,
                store,
                lines,
                over_delivery,
            }
            | Payload::TransferReceive {
                transfer: id,
                store,
                lines,
                over_delivery,
                ..
            } => {
                for line in lines {
                    let good = line.received.saturating_sub(line.damaged);
                    if good > 0 {
                        self.counter_mut(store, &line.sku).create(actor, good);
                        self.rights_grew(store, &line.sku, actor, effects);
                    }
                }
                let received = Received {
                    store: store.clone(),
                    lines: lines.clone(),
                    over_delivery: *over_delivery,
                    at: op.hlc,
                };
                let (map, kind) = match &op.payload {
                    Payload::ShipmentReceive { .. } => (&mut self.shipments, MotionKind::Shipment),
                    _ => (&mut self.transfers, MotionKind::Transfer),
                };
                merge_received(map, kind, id, received);
                if kind == MotionKind::Transfer {
                    self.reindex_dispatch(id);
                }
            }
            Payload::ShipDispatch { .. } | Payload::ShipWithdraw { .. } => {
                self.merge_ship_out(op, effects)
            }
            Payload::ConflictResolve {
                store,
                conflict,
                action,
                note,
                by,
            } => {
                let newer = self
                    .resolutions
                    .get(conflict)
                    .is_none_or(|r| (r.at, &r.actor) < (op.hlc, actor));
                if newer {
                    self.resolutions.insert(
                        conflict.clone(),
                        Resolution {
                            action: action.clone(),
                            note: note.clone(),
                            by: by.clone(),
                            actor: actor.clone(),
                            store: store.clone(),
                            at: op.hlc,
                        },
                    );
                }
            }
        }
    }

    /// A return the receiving store took itself counts in its open cash session; each line's
    /// VAT rate is the sale's (or the catalog's when the sale is not known here).
    fn count_return(&mut self, op: &Op) {
        let Payload::Return {
            store,
            return_id,
            sale,
            lines,
            tender,
            ..
        } = &op.payload
        else {
            return;
        };
        if op.actor != store.actor() {
            return;
        }
        let refunds: Vec<(i64, u32)> = lines
            .iter()
            .map(|l| {
                let sold = self
                    .sales
                    .get(sale)
                    .and_then(|s| s.lines.iter().find(|x| x.sku == l.sku))
                    .map(|x| x.vat_bp);
                let vat_bp = sold
                    .or_else(|| self.catalog.get(&l.sku).map(|p| p.vat_bp))
                    .unwrap_or(0);
                (l.refund_cents, vat_bp)
            })
            .collect();
        self.cash.on_return(store, return_id, *tender, &refunds);
    }

    /// Return an order's units to its store, once. `actor` is the store (checked by authority).
    /// A ship-to-store order returns only the units that arrived; the rest become the store's
    /// when its transfer is received.
    fn release(&mut self, order_id: &OrderId, actor: &ActorId, effects: &mut Vec<Effect>) {
        let Some(order) = self.orders.get_mut(order_id) else {
            return;
        };
        if order.released {
            return;
        }
        order.released = true;
        let store = order.store.clone();
        let lines: Vec<(Sku, u32)> = order
            .lines
            .keys()
            .map(|sku| (sku.clone(), order.units_here(sku)))
            .filter(|(_, n)| *n > 0)
            .collect();
        for (sku, qty) in lines {
            self.counter_mut(&store, &sku).create(actor, qty);
            self.rights_grew(&store, &sku, actor, effects);
        }
    }

    /// Units created at `actor` for (store, sku): `R[actor][actor] += qty`.
    pub(crate) fn create_units(
        &mut self,
        store: &StoreId,
        sku: &Sku,
        actor: &ActorId,
        qty: u32,
        effects: &mut Vec<Effect>,
    ) {
        self.counter_mut(store, sku).create(actor, qty);
        self.rights_grew(store, sku, actor, effects);
    }

    /// Recompute one shortfall from the two grow-only sums (counted minus covered). Each op is
    /// merged once, so the sums, and with them the shortfall, depend only on the set of ops.
    fn settle_shortfall(&mut self, key: (StoreId, Sku)) {
        let counted = self.shrinkage_counted.get(&key).copied().unwrap_or(0);
        let covered = self.shrinkage_covered.get(&key).copied().unwrap_or(0);
        self.shortfall.insert(key, counted.saturating_sub(covered));
    }

    fn rights_grew(&self, store: &StoreId, sku: &Sku, to: &ActorId, effects: &mut Vec<Effect>) {
        let open = self
            .shortfall
            .get(&(store.clone(), sku.clone()))
            .copied()
            .unwrap_or(0);
        if open > 0 && to.is_store(store) {
            effects.push(Effect::CoverShortfall {
                store: store.clone(),
                sku: sku.clone(),
            });
        }
    }
}
