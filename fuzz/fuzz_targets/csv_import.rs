//! CSV imports (catalog, stock, customers, carts): any bytes give rows or line errors, never
//! a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storenode::domain::{ActorId, Replica, StoreId};
use storenode::store::import::{parse, ImportKind};

fuzz_target!(|data: &[u8]| {
    // Replicas holding a catalog, so stock and cart rows get past the sku lookup.
    let mut hq = Replica::new(ActorId::hq());
    let mut store = Replica::new(StoreId::parse("madrid-centro").expect("store id").actor());
    for op in storenode::soak::soak_catalog().expect("catalog") {
        hq.apply(&op).expect("catalog op");
        store.apply(&op).expect("catalog op");
    }
    for kind in [
        ImportKind::Catalog,
        ImportKind::Stock,
        ImportKind::Customers,
        ImportKind::Carts,
    ] {
        let _ = parse(kind, data, &hq);
        let _ = parse(kind, data, &store);
    }
});
