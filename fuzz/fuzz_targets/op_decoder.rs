//! Op bytes from the log or a peer: decoding never panics, a decoded op re-encodes to bytes
//! that decode to the same op, and applying it to a replica (HQ or a store) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storenode::domain::{ActorId, Replica, StoreId};
use storenode::store::{decode_op, encode_op};

fuzz_target!(|data: &[u8]| {
    let Ok(op) = decode_op(data) else {
        return;
    };
    let again = decode_op(&encode_op(&op)).expect("re-encoded op decodes");
    assert_eq!(again, op);
    let store = StoreId::parse("madrid-centro").expect("store id").actor();
    for actor in [ActorId::hq(), store] {
        let mut replica = Replica::new(actor);
        let _ = replica.apply(&op);
        let _ = replica.apply(&op);
        let _ = replica.digest();
    }
});
