//! Ids and indexes. The host names stations and tags by its own ids (u64 in the C ABI); the line
//! keeps them in vectors and refers to them by index; a write is followed through the session by
//! a token. Each has its own type, so that one cannot be passed where another is meant.

use std::fmt;

/// A station's id, chosen by the host.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct StationId(pub u64);

/// A tag's id, chosen by the host.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct TagId(pub u64);

/// A write's token in the session, from its PUBLISH until the broker acknowledges it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct WriteToken(pub u64);

impl fmt::Display for StationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for TagId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which connection of the line: A to `host`, B to `redundant_host` (a redundant line only,
/// issue 21). The shell names the connection in every call about one; events and statistics
/// name it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkId {
    A,
    B,
}

impl LinkId {
    /// The other connection of a redundant line.
    pub fn other(self) -> LinkId {
        match self {
            LinkId::A => LinkId::B,
            LinkId::B => LinkId::A,
        }
    }

    /// `A` or `B`, as events, logs and statistics name the connection.
    pub fn name(self) -> &'static str {
        match self {
            LinkId::A => "A",
            LinkId::B => "B",
        }
    }

    /// 0 for A, 1 for B: an index into per-connection arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A station's place in the line's station vector (and in the routing table).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct StationIndex(pub usize);

/// A tag's place in the line's tag vector.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct TagIndex(pub usize);

macro_rules! indexes {
    ($index:ty, $item:ty) => {
        impl std::ops::Index<$index> for Vec<$item> {
            type Output = $item;
            fn index(&self, i: $index) -> &$item {
                &self[i.0]
            }
        }
        impl std::ops::IndexMut<$index> for Vec<$item> {
            fn index_mut(&mut self, i: $index) -> &mut $item {
                &mut self[i.0]
            }
        }
    };
}
pub(crate) use indexes;
