//! Catalog and prices: authored by HQ only, last writer (by HLC, then actor) wins.
//! A product's category (which promotions by category reach it) is a register of its own,
//! set by `CatalogCategory`, so a `CatalogPut` that predates categories never clears it.

use super::hlc::Hlc;
use super::ids::{ActorId, Category, Ean13, Sku};
use crdts::{CvRDT, LWWReg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One product as sold: name, barcode, price in cents and VAT in basis points (owned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub sku: Sku,
    pub ean: Ean13,
    pub name: String,
    pub price_cents: i64,
    pub vat_bp: u32,
}

/// A product as the catalog holds it, borrowed: what `Catalog::get` and friends return.
/// It serialises field for field as `Product` does (the digest hashes these bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProductRef<'a> {
    pub sku: &'a Sku,
    pub ean: Ean13,
    pub name: &'a str,
    pub price_cents: i64,
    pub vat_bp: u32,
}

impl ProductRef<'_> {
    /// An owned copy.
    pub fn to_product(&self) -> Product {
        Product {
            sku: self.sku.clone(),
            ean: self.ean,
            name: self.name.to_string(),
            price_cents: self.price_cents,
            vat_bp: self.vat_bp,
        }
    }
}

/// Ordering marker of a write: later HLC wins, the actor breaks ties.
pub type Marker = (Hlc, ActorId);

/// A product in memory, without its sku (the map's key) and with its writer as an index into
/// `Catalog::writers`: 56 bytes beside the key, where a `Product` in a `LWWReg` took 128 and a
/// `String` name 8 more. The catalog is most of a store's memory (one entry per SKU).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Listing {
    ean: Ean13,
    name: Box<str>,
    price_cents: i64,
    vat_bp: u32,
    /// Index into `Catalog::writers` of the actor of the write in force.
    writer: u32,
    /// HLC of the write in force.
    at: Hlc,
}

/// All products, each a last-writer-wins register on `(hlc, actor)`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "CatalogParts")]
pub struct Catalog {
    products: BTreeMap<Sku, Listing>,
    by_ean: BTreeMap<Ean13, Sku>,
    /// Each sku's category (`None`: set, then cleared), last writer wins per sku.
    categories: BTreeMap<Sku, LWWReg<Option<Category>, Marker>>,
    /// The actors whose writes are in force, in the order first seen (only HQ writes the
    /// catalog, so this holds one entry in practice; never more than the actors that wrote).
    writers: Vec<ActorId>,
}

/// A catalog as decoded from a snapshot, before its writer indexes are checked.
#[derive(Deserialize)]
struct CatalogParts {
    products: BTreeMap<Sku, Listing>,
    by_ean: BTreeMap<Ean13, Sku>,
    categories: BTreeMap<Sku, LWWReg<Option<Category>, Marker>>,
    writers: Vec<ActorId>,
}

/// Why decoded catalog bytes are not a catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogDecodeError {
    /// A product names a writer the catalog does not hold.
    #[error("product {sku} names writer {writer}, the catalog holds {writers}")]
    Writer {
        sku: Sku,
        writer: u32,
        writers: usize,
    },
}

impl TryFrom<CatalogParts> for Catalog {
    type Error = CatalogDecodeError;
    fn try_from(parts: CatalogParts) -> Result<Catalog, CatalogDecodeError> {
        let writers = parts.writers.len();
        if let Some((sku, l)) = parts
            .products
            .iter()
            .find(|(_, l)| l.writer as usize >= writers)
        {
            return Err(CatalogDecodeError::Writer {
                sku: sku.clone(),
                writer: l.writer,
                writers,
            });
        }
        Ok(Catalog {
            products: parts.products,
            by_ean: parts.by_ean,
            categories: parts.categories,
            writers: parts.writers,
        })
    }
}

impl PartialEq for Catalog {
    /// Equal contents, whatever order the writers were first seen in.
    fn eq(&self, other: &Catalog) -> bool {
        self.products.len() == other.products.len()
            && self.categories == other.categories
            && self.by_ean == other.by_ean
            && self
                .iter_with_marker()
                .zip(other.iter_with_marker())
                .all(|(a, b)| a == b)
    }
}

impl Eq for Catalog {}

impl Catalog {
    /// Merge a write; an older write than the current one changes nothing.
    pub fn put(&mut self, product: Product, marker: Marker) {
        if let Some(current) = self.products.get(&product.sku) {
            if (&current.at, &self.writers[current.writer as usize]) >= (&marker.0, &marker.1) {
                // As before listings: the ean in force points at this sku again.
                let ean = current.ean;
                self.by_ean.insert(ean, product.sku);
                return;
            }
            if current.ean != product.ean {
                self.by_ean.remove(&current.ean);
            }
        }
        let writer = self.writer_index(marker.1);
        let listing = Listing {
            ean: product.ean,
            name: product.name.into_boxed_str(),
            price_cents: product.price_cents,
            vat_bp: product.vat_bp,
            writer,
            at: marker.0,
        };
        self.by_ean.insert(product.ean, product.sku.clone());
        self.products.insert(product.sku, listing);
    }

    /// The index of `actor` in `writers`, added if new.
    fn writer_index(&mut self, actor: ActorId) -> u32 {
        match self.writers.iter().position(|w| *w == actor) {
            Some(i) => i as u32,
            None => {
                self.writers.push(actor);
                (self.writers.len() - 1) as u32
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

    pub fn get(&self, sku: &Sku) -> Option<ProductRef<'_>> {
        self.products
            .get_key_value(sku)
            .map(|(sku, l)| product_ref(sku, l))
    }

    /// The product in force for `sku` and the marker of the write that set it.
    pub fn get_with_marker(&self, sku: &Sku) -> Option<(ProductRef<'_>, Marker)> {
        self.products
            .get_key_value(sku)
            .map(|(sku, l)| (product_ref(sku, l), self.marker(l)))
    }

    fn marker(&self, listing: &Listing) -> Marker {
        (listing.at, self.writers[listing.writer as usize].clone())
    }

    pub fn by_ean(&self, ean: &Ean13) -> Option<ProductRef<'_>> {
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
    pub fn iter(&self) -> impl Iterator<Item = ProductRef<'_>> {
        self.products.iter().map(|(sku, l)| product_ref(sku, l))
    }

    /// Products in sku order, each with the marker of its write.
    fn iter_with_marker(&self) -> impl Iterator<Item = (ProductRef<'_>, Marker)> {
        self.products
            .iter()
            .map(|(sku, l)| (product_ref(sku, l), self.marker(l)))
    }
}

fn product_ref<'a>(sku: &'a Sku, listing: &'a Listing) -> ProductRef<'a> {
    ProductRef {
        sku,
        ean: listing.ean,
        name: &listing.name,
        price_cents: listing.price_cents,
        vat_bp: listing.vat_bp,
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

    #[test]
    fn a_product_as_held_hashes_and_encodes_as_the_product_that_was_put() {
        let put = product(250);
        let mut c = Catalog::default();
        c.put(put.clone(), (Hlc::new(1, 0), ActorId::hq()));
        let held = c.get(&put.sku).unwrap();
        assert_eq!(held.to_product(), put);
        assert_eq!(
            postcard::to_allocvec(&held).unwrap(),
            postcard::to_allocvec(&put).unwrap()
        );
        assert_eq!(c.by_ean(&put.ean), Some(held));
    }

    #[test]
    fn catalogs_with_the_same_writes_are_equal_whatever_writer_came_first() {
        let store = ActorId::parse("store:madrid-centro").unwrap();
        let mut other = product(300);
        other.sku = Sku::parse("SKU-2").unwrap();
        other.ean = Ean13::parse("0036000291452").unwrap();
        let mut a = Catalog::default();
        a.put(product(100), (Hlc::new(1, 0), ActorId::hq()));
        a.put(other.clone(), (Hlc::new(1, 0), store.clone()));
        let mut b = Catalog::default();
        b.put(other, (Hlc::new(1, 0), store.clone()));
        b.put(product(100), (Hlc::new(1, 0), ActorId::hq()));
        assert_eq!(a, b);
        let (_, marker) = a.get_with_marker(&product(0).sku).unwrap();
        assert_eq!(marker, (Hlc::new(1, 0), ActorId::hq()));
    }

    #[test]
    fn a_snapshot_naming_a_writer_the_catalog_lacks_does_not_decode() {
        let mut c = Catalog::default();
        c.put(product(100), (Hlc::new(1, 0), ActorId::hq()));
        c.writers.clear();
        let bytes = postcard::to_allocvec(&c).unwrap();
        assert!(postcard::from_bytes::<Catalog>(&bytes).is_err());
        c.writers.push(ActorId::hq());
        let bytes = postcard::to_allocvec(&c).unwrap();
        assert_eq!(postcard::from_bytes::<Catalog>(&bytes).unwrap(), c);
    }
}
