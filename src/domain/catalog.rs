//! Catalog and prices: authored by HQ only, last writer (by HLC, then actor) wins.
//! A product's category (which promotions by category reach it) is a register of its own,
//! set by `CatalogCategory`, so a `CatalogPut` that predates categories never clears it.

use super::hlc::Hlc;
use super::ids::{ActorId, Category, Ean13, Sku};
use crdts::{CvRDT, LWWReg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One product as sold: name, barcode, price in cents and VAT in basis points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub sku: Sku,
    pub ean: Ean13,
    pub name: String,
    pub price_cents: i64,
    pub vat_bp: u32,
}

/// Ordering marker of a write: later HLC wins, the actor breaks ties.
pub type Marker = (Hlc, ActorId);

/// All products, each a last-writer-wins register.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Catalog {
    products: BTreeMap<Sku, LWWReg<Product, Marker>>,
    by_ean: BTreeMap<Ean13, Sku>,
    /// Each sku's category (`None`: set, then cleared), last writer wins per sku.
    categories: BTreeMap<Sku, LWWReg<Option<Category>, Marker>>,
}

impl Catalog {
    /// Merge a write; an older write than the current one changes nothing.
    pub fn put(&mut self, product: Product, marker: Marker) {
        let sku = product.sku.clone();
        let incoming = LWWReg {
            val: product,
            marker,
        };
        match self.products.get_mut(&sku) {
            Some(reg) => {
                let old_ean = reg.val.ean.clone();
                reg.merge(incoming);
                if reg.val.ean != old_ean {
                    self.by_ean.remove(&old_ean);
                }
                self.by_ean.insert(reg.val.ean.clone(), sku);
            }
            None => {
                self.by_ean.insert(incoming.val.ean.clone(), sku.clone());
                self.products.insert(sku, incoming);
            }
        }
    }

    /// Merge a category write for `sku`; an older write changes nothing.
    pub fn set_category(&mut self, sku: Sku, category: Option<Category>, marker: Marker) {
        let incoming = LWWReg {
            val: category,
            marker,
        };
        match self.categories.get_mut(&sku) {
            Some(reg) => reg.merge(incoming),
            None => {
                self.categories.insert(sku, incoming);
            }
        }
    }

    /// The category `sku` is in, if any.
    pub fn category(&self, sku: &Sku) -> Option<&Category> {
        self.categories.get(sku).and_then(|r| r.val.as_ref())
    }

    /// Every sku with a category, in sku order (for the digest).
    pub fn categories(&self) -> impl Iterator<Item = (&Sku, &Category)> {
        self.categories
            .iter()
            .filter_map(|(sku, r)| r.val.as_ref().map(|c| (sku, c)))
    }

    /// Rebuild the maps with densely packed nodes (see `State::compact`).
    pub fn compact(&mut self) {
        self.products = std::mem::take(&mut self.products).into_iter().collect();
        self.by_ean = std::mem::take(&mut self.by_ean).into_iter().collect();
        self.categories = std::mem::take(&mut self.categories).into_iter().collect();
    }

    pub fn get(&self, sku: &Sku) -> Option<&Product> {
        self.products.get(sku).map(|r| &r.val)
    }

    /// The product in force for `sku` and the marker of the write that set it.
    pub fn get_with_marker(&self, sku: &Sku) -> Option<(&Product, &Marker)> {
        self.products.get(sku).map(|r| (&r.val, &r.marker))
    }

    pub fn by_ean(&self, ean: &Ean13) -> Option<&Product> {
        self.by_ean.get(ean).and_then(|sku| self.get(sku))
    }

    pub fn contains(&self, sku: &Sku) -> bool {
        self.products.contains_key(sku)
    }

    pub fn len(&self) -> usize {
        self.products.len()
    }

    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    /// Products in sku order.
    pub fn iter(&self) -> impl Iterator<Item = &Product> {
        self.products.values().map(|r| &r.val)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(price: i64) -> Product {
        Product {
            sku: Sku::parse("SKU-1").unwrap(),
            ean: Ean13::parse("4006381333931").unwrap(),
            name: "Café molido".into(),
            price_cents: price,
            vat_bp: 1000,
        }
    }

    #[test]
    fn the_later_price_wins_in_either_order() {
        let early = (Hlc::new(1, 0), ActorId::hq());
        let late = (Hlc::new(2, 0), ActorId::hq());
        let mut a = Catalog::default();
        a.put(product(100), early.clone());
        a.put(product(200), late.clone());
        let mut b = Catalog::default();
        b.put(product(200), late);
        b.put(product(100), early);
        assert_eq!(a.get(&product(0).sku).unwrap().price_cents, 200);
        assert_eq!(a, b);
    }

    #[test]
    fn the_later_category_wins_in_either_order_and_a_clear_is_a_write() {
        let sku = product(0).sku;
        let cafe = Category::parse("cafe").unwrap();
        let early = (Hlc::new(1, 0), ActorId::hq());
        let late = (Hlc::new(2, 0), ActorId::hq());
        let mut a = Catalog::default();
        a.set_category(sku.clone(), Some(cafe.clone()), early.clone());
        a.set_category(sku.clone(), None, late.clone());
        let mut b = Catalog::default();
        b.set_category(sku.clone(), None, late);
        b.set_category(sku.clone(), Some(cafe), early);
        assert_eq!(a.category(&sku), None);
        assert_eq!(a, b);
    }
}
