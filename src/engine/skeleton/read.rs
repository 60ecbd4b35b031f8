//! How the skeleton is read: a [`Shape`] per kind of value (`shapes.rs` has the common ones), each
//! JSON value of another kind than its field takes reported with where it is ([`At`]) and read
//! through, never a reason to stop.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The first problem found; later ones are not looked at.
#[derive(Default)]
pub(super) struct Problems(pub RefCell<Option<String>>);

impl Problems {
    pub fn report(&self, message: impl FnOnce() -> String) {
        let mut first = self.0.borrow_mut();
        if first.is_none() {
            *first = Some(message());
        }
    }
}

/// Where a value is, for messages only: made into text only when a problem is reported.
#[derive(Clone, Copy)]
pub(super) enum At<'a> {
    Top,
    Field(&'a At<'a>, &'a str),
    Item(&'a At<'a>, usize),
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            At::Top => Ok(()),
            At::Field(At::Top, name) => f.write_str(name),
            At::Field(parent, name) => write!(f, "{parent}.{name}"),
            At::Item(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// What reading one value gave.
pub(super) enum Got<T> {
    /// Absent or `null`: the same in Kubernetes objects (YAML's `labels:` with nothing after it).
    Absent,
    /// Another kind of value than the field takes; reported already.
    Wrong,
    Value(T),
}

impl<T> Got<T> {
    pub fn value(self) -> Option<T> {
        match self {
            Got::Value(value) => Some(value),
            Got::Absent | Got::Wrong => None,
        }
    }
}

/// What a shape's method gives: a value of the shape, or `None` for a value of another kind.
pub(super) type Outcome<T, E> = Result<Option<T>, E>;

/// What one value of the skeleton is read as. Each kind of JSON value goes to its method; one
/// that gives `None` is a kind the value does not take, read through as JSON and reported as
/// `WRONG` (when there is a message).
pub(super) trait Shape<'de>: Copy {
    type Out;
    /// "is not a list" …; `None` for a field whose other kinds are not reported, only ignored.
    const WRONG: Option<&'static str>;

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        let _ = (at, found);
        drain_map(map).map(|()| None)
    }

    fn seq<A: SeqAccess<'de>>(self, seq: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        let _ = (at, found);
        drain_seq(seq).map(|()| None)
    }

    fn text(self, text: Cow<'de, str>) -> Option<Self::Out> {
        let _ = text;
        None
    }

    fn boolean(self, value: bool) -> Option<Self::Out> {
        let _ = value;
        None
    }

    fn integer(self, value: i64) -> Option<Self::Out> {
        let _ = value;
        None
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

pub(super) fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The room a list or map of the skeleton starts with. serde_json gives no length; most of a Pod's
/// lists and maps are short, and a vector allocated once at its start costs less than one grown
/// from empty.
pub(super) const INITIAL_ROOM: usize = 4;

/// Reads one value at `at` as `shape`.
pub(super) struct Read<'p, S> {
    pub shape: S,
    pub at: At<'p>,
    pub found: &'p Problems,
}

impl<'p, S> Read<'p, S> {
    fn got<T>(&self, value: Option<T>, wrong: Option<&'static str>) -> Got<T> {
        match value {
            Some(value) => Got::Value(value),
            None => {
                if let Some(why) = wrong {
                    self.found.report(|| format!("{} {why}", self.at));
                }
                Got::Wrong
            }
        }
    }
}

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for Read<'_, S> {
    type Value = Got<S::Out>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, S: Shape<'de>> Visitor<'de> for Read<'_, S> {
    type Value = Got<S::Out>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = self.shape.map(map, &self.at, self.found)?;
        Ok(self.got(value, S::WRONG))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = self.shape.seq(seq, &self.at, self.found)?;
        Ok(self.got(value, S::WRONG))
    }
    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(self.got(self.shape.text(Cow::Borrowed(text)), S::WRONG))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(self.got(self.shape.text(Cow::Owned(text.to_owned())), S::WRONG))
    }
    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Ok(self.got(self.shape.boolean(value), S::WRONG))
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(self.got(self.shape.integer(value), S::WRONG))
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        // Beyond i64 only matters as "not 0", which saturating keeps.
        Ok(self.got(self.shape.integer(i64::try_from(value).unwrap_or(i64::MAX)), S::WRONG))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(self.got(None, S::WRONG))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Got::Absent)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Got::Absent)
    }
}

/// An object of known fields: each field `names` has is read by `read(object, index, at, map)`
/// into the object, begun as `T::default()`; the others are read through.
pub(super) fn object<'de, A: MapAccess<'de>, T: Default>(
    mut map: A,
    at: &At,
    names: &[&str],
    mut read: impl FnMut(&mut T, usize, At, &mut A) -> Result<(), A::Error>,
) -> Outcome<T, A::Error> {
    let mut object = T::default();
    while let Some(index) = map.next_key_seed(FieldIndex(names))? {
        match index {
            Some(index) => read(&mut object, index, At::Field(at, names[index]), &mut map)?,
            None => map.next_value::<IgnoredAny>().map(drop)?,
        }
    }
    Ok(Some(object))
}

/// Matches an object key against the fields read without allocating it. (As a string: serde_json
/// reads a key asked for as bytes without its check for control characters, which JSON forbids
/// in strings; found by the `review_bytes` fuzz target.)
pub(super) struct FieldIndex<'f>(&'f [&'f str]);

impl<'de> DeserializeSeed<'de> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        // The first byte before the whole: most keys differ there, and then no memcmp is called.
        let first = key.as_bytes().first();
        Ok(self
            .0
            .iter()
            .position(|name| name.len() == key.len() && name.as_bytes().first() == first && *name == key))
    }
}
