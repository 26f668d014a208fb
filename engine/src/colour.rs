//! The five alert colours of CPRA and a compact set of them.
//!
//! What it is for: naming a colour the way a manifest does (`yellow`, `red`, `cyan`, `green`,
//! `gray`), indexing per-colour tables, and the per-monitor "which colours have a code that
//! dispatches" bitmask. What it is not for: what an alert of a colour says (that is
//! `alert.rs`) or when one is queued (that is `state.rs`).

use std::fmt;
use std::str::FromStr;

/// An alert colour. The discriminant is the index into per-colour tables (`Colour::index`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// Degraded: the first failure of an episode, or a warning (certificate expiring soon).
    Yellow = 0,
    /// Critical: the incident is open.
    Red = 1,
    /// An intervention succeeded; the monitor is being verified.
    Cyan = 2,
    /// Recovered.
    Green = 3,
    /// A maintenance window started.
    Gray = 4,
}

impl Colour {
    /// Every colour, in index order.
    pub const ALL: [Colour; 5] =
        [Colour::Yellow, Colour::Red, Colour::Cyan, Colour::Green, Colour::Gray];

    /// The number of colours: the length of every per-colour table.
    pub const COUNT: usize = Colour::ALL.len();

    /// Parses a colour name as written in a manifest, ignoring ASCII case. `grey` is accepted
    /// for `gray` because both spellings appear in real manifests and neither is ambiguous.
    pub fn parse(name: &str) -> Option<Colour> {
        const NAMES: [(&str, Colour); 6] = [
            ("yellow", Colour::Yellow),
            ("red", Colour::Red),
            ("cyan", Colour::Cyan),
            ("green", Colour::Green),
            ("gray", Colour::Gray),
            ("grey", Colour::Gray),
        ];
        let name = name.trim();
        NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, c)| c)
    }

    /// The canonical lowercase name (the one in logs, the API and the Go CPRA's `color` field).
    pub const fn as_str(self) -> &'static str {
        match self {
            Colour::Yellow => "yellow",
            Colour::Red => "red",
            Colour::Cyan => "cyan",
            Colour::Green => "green",
            Colour::Gray => "gray",
        }
    }

    /// The index into per-colour tables, `0..Colour::COUNT`.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// This colour's bit in a [`ColourSet`].
    pub const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of `Colour::from_str`: the name that is not a colour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownColour(pub String);

impl fmt::Display for UnknownColour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown colour `{}`: expected one of yellow, red, cyan, green, gray", self.0)
    }
}

impl std::error::Error for UnknownColour {}

impl FromStr for Colour {
    type Err = UnknownColour;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Colour::parse(s).ok_or_else(|| UnknownColour(s.to_owned()))
    }
}

/// A set of colours in one byte, e.g. the colours for which a monitor has a code with
/// `dispatch` not false.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ColourSet(u8);

impl ColourSet {
    pub const EMPTY: ColourSet = ColourSet(0);
    pub const ALL: ColourSet = ColourSet((1 << Colour::COUNT) - 1);

    /// The set from raw bits; bits above the last colour are dropped.
    pub const fn from_bits(bits: u8) -> ColourSet {
        ColourSet(bits & ColourSet::ALL.0)
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn contains(self, colour: Colour) -> bool {
        self.0 & colour.bit() != 0
    }

    #[must_use]
    pub const fn with(self, colour: Colour) -> ColourSet {
        ColourSet(self.0 | colour.bit())
    }

    #[must_use]
    pub const fn without(self, colour: Colour) -> ColourSet {
        ColourSet(self.0 & !colour.bit())
    }

    pub fn iter(self) -> impl Iterator<Item = Colour> {
        Colour::ALL.into_iter().filter(move |&c| self.contains(c))
    }
}

impl FromIterator<Colour> for ColourSet {
    fn from_iter<I: IntoIterator<Item = Colour>>(iter: I) -> Self {
        iter.into_iter().fold(ColourSet::EMPTY, ColourSet::with)
    }
}

impl fmt::Debug for ColourSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_ignores_case_and_round_trips() {
        for c in Colour::ALL {
            assert_eq!(Colour::parse(c.as_str()), Some(c));
            assert_eq!(Colour::parse(&c.as_str().to_uppercase()), Some(c));
            assert_eq!(c.as_str().parse::<Colour>(), Ok(c));
        }
        assert_eq!(Colour::parse("Grey"), Some(Colour::Gray));
        assert_eq!(Colour::parse(" Red "), Some(Colour::Red));
        assert_eq!(Colour::parse("purple"), None);
        let err = "purple".parse::<Colour>().unwrap_err();
        assert!(err.to_string().contains("`purple`"), "{err}");
    }

    #[test]
    fn index_matches_position_in_all() {
        for (i, c) in Colour::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }

    #[test]
    fn set_operations() {
        let s: ColourSet = [Colour::Red, Colour::Green].into_iter().collect();
        assert!(s.contains(Colour::Red) && s.contains(Colour::Green));
        assert!(!s.contains(Colour::Gray));
        assert_eq!(s.without(Colour::Red).iter().collect::<Vec<_>>(), vec![Colour::Green]);
        assert_eq!(ColourSet::ALL.iter().count(), Colour::COUNT);
        assert_eq!(ColourSet::from_bits(0xff), ColourSet::ALL);
        assert_eq!(format!("{s:?}"), "{Red, Green}");
    }

    #[test]
    fn serializes_lowercase() {
        assert_eq!(serde_json::to_string(&Colour::Gray).unwrap(), "\"gray\"");
    }
}
