//! MQTT topic names: `storenode/v1/{chain}/store/{store}/{up|down|ack|status|lookup}`.
//!
//! Topics are built and parsed only here. A chain name is a slug (letters, digits, `-`, `_`),
//! so it can never contain a wildcard or a level separator.

use crate::domain::StoreId;
use thiserror::Error;

/// The kinds of sync topic per store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// Store -> HQ: the store's ops.
    Up,
    /// HQ -> store: ops the store needs.
    Down,
    /// Both ways: what the sender has durably applied.
    Ack,
    /// Store -> all, retained: online/offline (Last Will).
    Status,
    /// Store -> HQ: a customer lookup (`super::lookup`); HQ answers on `Down`.
    Lookup,
}

impl TopicKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            TopicKind::Up => "up",
            TopicKind::Down => "down",
            TopicKind::Ack => "ack",
            TopicKind::Status => "status",
            TopicKind::Lookup => "lookup",
        }
    }
}

/// Why a topic or chain name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopicError {
    /// The chain name is empty or holds characters other than letters, digits, `-`, `_`.
    #[error("chain name {0:?} must be 1-40 letters, digits, '-' or '_'")]
    Chain(String),
    /// Not a sync topic of this chain.
    #[error("topic {0:?} is not a sync topic of this chain")]
    Foreign(String),
    /// The store segment is not a valid store id.
    #[error("topic {0:?} names an invalid store")]
    Store(String),
}

/// Topic names of one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

/// Check a chain name for use in topics.
pub fn validate_chain(chain: &str) -> Result<(), TopicError> {
    let ok = !chain.is_empty()
        && chain.len() <= 40
        && chain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(TopicError::Chain(chain.to_string()))
    }
}

impl Topics {
    pub fn new(chain: &str) -> Result<Topics, TopicError> {
        validate_chain(chain)?;
        Ok(Topics {
            prefix: format!("storenode/v1/{chain}/store/"),
        })
    }

    /// The topic of `kind` for `store`.
    pub fn topic(&self, store: &StoreId, kind: TopicKind) -> String {
        format!("{}{}/{}", self.prefix, store.as_str(), kind.as_str())
    }

    /// The filter matching `kind` for every store (HQ subscriptions).
    pub fn wildcard(&self, kind: TopicKind) -> String {
        format!("{}+/{}", self.prefix, kind.as_str())
    }

    /// The store and kind a topic names.
    pub fn parse(&self, topic: &str) -> Result<(StoreId, TopicKind), TopicError> {
        let foreign = || TopicError::Foreign(topic.to_string());
        let rest = topic.strip_prefix(&self.prefix).ok_or_else(foreign)?;
        let (store, kind) = rest.split_once('/').ok_or_else(foreign)?;
        let kind = match kind {
            "up" => TopicKind::Up,
            "down" => TopicKind::Down,
            "ack" => TopicKind::Ack,
            "status" => TopicKind::Status,
            "lookup" => TopicKind::Lookup,
            _ => return Err(foreign()),
        };
        let store = StoreId::parse(store).map_err(|_| TopicError::Store(topic.to_string()))?;
        Ok((store, kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_through_parse() {
        let t = Topics::new("acme").unwrap();
        let store = StoreId::parse("madrid-centro").unwrap();
        for kind in [
            TopicKind::Up,
            TopicKind::Down,
            TopicKind::Ack,
            TopicKind::Status,
            TopicKind::Lookup,
        ] {
            let name = t.topic(&store, kind);
            assert_eq!(t.parse(&name).unwrap(), (store.clone(), kind));
        }
        assert_eq!(
            t.topic(&store, TopicKind::Up),
            "storenode/v1/acme/store/madrid-centro/up"
        );
        assert_eq!(t.wildcard(TopicKind::Ack), "storenode/v1/acme/store/+/ack");
    }

    #[test]
    fn foreign_topics_and_bad_chains_are_refused() {
        let t = Topics::new("acme").unwrap();
        assert!(t.parse("storenode/v1/other/store/x/up").is_err());
        assert!(t.parse("storenode/v1/acme/store/x/sideways").is_err());
        assert!(t.parse("storenode/v1/acme/store/X Y/up").is_err());
        assert!(t.parse("storenode/v1/acme/store/x/up/more").is_err());
        assert!(Topics::new("a/b").is_err());
        assert!(Topics::new("+").is_err());
        assert!(Topics::new("").is_err());
    }
}
