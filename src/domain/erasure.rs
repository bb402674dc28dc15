//! Erasure of stored ops (GDPR art. 17, DESIGN.md section 14): which ops carry a customer's
//! personal data, and their anonymous form.
//!
//! Once a replica has applied a `CustomerErase`, every op it stores about that customer is
//! kept in its anonymous form: ops already in the log are rewritten, and ops that arrive later
//! are stored rewritten. The anonymous form merges into exactly the state the original does,
//! because erasure wins over every write about the customer; so replicas that hold original
//! and rewritten copies of the same op still converge. Only profile fields and the free-text
//! consent source are personal data; ids (pseudonyms), carts and totals stay.

use super::op::{Op, Payload, ProfilePatch};
use super::state::State;

/// Consent source written in place of the original in an erased customer's consent ops.
pub const ERASED_SOURCE: &str = "erased";

/// Kinds (`Payload::kind`) of the ops that can carry personal data.
pub const PERSONAL_KINDS: [&str; 2] = ["customer_update", "consent_set"];

/// The anonymous form of `payload`, if it carries personal data (`None`: nothing to remove).
pub fn anonymous(payload: &Payload) -> Option<Payload> {
    match payload {
        Payload::CustomerUpdate { customer, patch } if *patch != ProfilePatch::default() => {
            Some(Payload::CustomerUpdate {
                customer: customer.clone(),
                patch: ProfilePatch::default(),
            })
        }
        Payload::ConsentSet {
            customer,
            channel,
            granted,
            source,
        } if source != ERASED_SOURCE => Some(Payload::ConsentSet {
            customer: customer.clone(),
            channel: *channel,
            granted: *granted,
            source: ERASED_SOURCE.to_string(),
        }),
        _ => None,
    }
}

/// The form of `op` to store on a replica whose state is `state`: anonymous when the op is
/// about an erased customer and carries personal data, `None` when it may be stored as is.
pub fn to_store(op: &Op, state: &State) -> Option<Op> {
    let customer = op.payload.customer()?;
    if !state.customer_erased(customer) {
        return None;
    }
    anonymous(&op.payload).map(|payload| Op {
        payload,
        ..op.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{ActorId, CustomerId};
    use crate::domain::op::Channel;
    use crate::domain::Replica;

    fn lucia() -> CustomerId {
        CustomerId::parse("C-0001").unwrap()
    }

    #[test]
    fn a_profile_update_loses_every_field_and_keeps_its_customer() {
        let payload = Payload::CustomerUpdate {
            customer: lucia(),
            patch: ProfilePatch {
                name: Some("Lucía Pérez".into()),
                email: Some("lucia@example.com".into()),
                phone: Some("+34600111222".into()),
                loyalty_card: Some("LOY-123".into()),
            },
        };
        let anon = anonymous(&payload).unwrap();
        assert_eq!(
            anon,
            Payload::CustomerUpdate {
                customer: lucia(),
                patch: ProfilePatch::default()
            }
        );
        assert_eq!(anonymous(&anon), None, "already anonymous");
    }

    #[test]
    fn ops_about_a_customer_not_erased_are_stored_as_they_are() {
        let mut hq = Replica::new(ActorId::hq());
        let (op, _) = hq
            .prepare(
                5,
                Payload::ConsentSet {
                    customer: lucia(),
                    channel: Channel::Email,
                    granted: true,
                    source: "shop".into(),
                },
            )
            .unwrap();
        assert_eq!(to_store(&op, hq.state()), None);
        hq.prepare(6, Payload::CustomerErase { customer: lucia() })
            .unwrap();
        let stored = to_store(&op, hq.state()).unwrap();
        assert_eq!((stored.actor.clone(), stored.seq), (op.actor, op.seq));
        assert!(
            matches!(stored.payload, Payload::ConsentSet { ref source, .. } if source == ERASED_SOURCE)
        );
    }
}
