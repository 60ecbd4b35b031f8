//! The shapes the skeleton's values are read as: strings, booleans and integers, and the lists
//! and objects reduced, as they are read, to what injection and Pod Security ask of them.

use std::borrow::Cow;

use serde::de::{MapAccess, SeqAccess};

use super::read::{At, Got, INITIAL_ROOM, Outcome, Problems, Read, Shape, drain_seq, object};

/// A string, borrowed from the body when it has no escapes.
#[derive(Clone, Copy)]
pub(super) struct Text;

impl<'de> Shape<'de> for Text {
    type Out = Cow<'de, str>;
    const WRONG: Option<&'static str> = Some("is not a string");

    fn text(self, text: Cow<'de, str>) -> Option<Self::Out> {
        Some(text)
    }
}

/// `Text` without the report, for fields whose other kinds are only ignored (the Pod's name, which
/// is only logged) or reported otherwise (a key's).
#[derive(Clone, Copy)]
pub(super) struct AnyText;

impl<'de> Shape<'de> for AnyText {
    type Out = Cow<'de, str>;
    const WRONG: Option<&'static str> = None;

    fn text(self, text: Cow<'de, str>) -> Option<Self::Out> {
        Some(text)
    }
}

#[derive(Clone, Copy)]
pub(super) struct Boolean;

impl<'de> Shape<'de> for Boolean {
    type Out = bool;
    const WRONG: Option<&'static str> = Some("is not a boolean");

    fn boolean(self, value: bool) -> Option<bool> {
        Some(value)
    }
}

/// A whole number (`runAsUser`, `hostPort`).
#[derive(Clone, Copy)]
pub(super) struct Integer;

impl<'de> Shape<'de> for Integer {
    type Out = i64;
    const WRONG: Option<&'static str> = Some("is not an integer");

    fn integer(self, value: i64) -> Option<i64> {
        Some(value)
    }
}

/// An object reduced to one optional field, read as the shape: `seccompProfile` to its `type`,
/// `httpGet` to its `host`. `None` inside when the field is absent.
#[derive(Clone, Copy)]
pub(super) struct Field<S>(pub &'static str, pub S);

impl<'de, S: Shape<'de>> Shape<'de> for Field<S> {
    type Out = Option<S::Out>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        object(map, at, &[self.0], |field: &mut Option<S::Out>, _, at, map| {
            *field = map.next_value_seed(Read { shape: self.1, at, found })?.value();
            Ok(())
        })
    }
}

/// A list, each item read as the shape; an item that is not an object is reported as such.
#[derive(Clone, Copy)]
pub(super) struct List<S>(pub S);

impl<'de, S: Shape<'de>> Shape<'de> for List<S> {
    type Out = Vec<S::Out>;
    const WRONG: Option<&'static str> = Some("is not a list");

    fn seq<A: SeqAccess<'de>>(self, seq: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(INITIAL_ROOM));
        each_item(seq, self.0, at, found, |item| items.push(item))?;
        Ok(Some(items))
    }
}

/// A list reduced to whether any item, read as the shape, is what the function looks for: the
/// checks ask no more of `capabilities.drop` or of `ports`, and no list is kept.
pub(super) struct Any<S, T>(pub S, pub fn(&T) -> bool);

impl<S: Copy, T> Clone for Any<S, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: Copy, T> Copy for Any<S, T> {}

impl<'de, S: Shape<'de, Out = T>, T> Shape<'de> for Any<S, T> {
    type Out = bool;
    const WRONG: Option<&'static str> = Some("is not a list");

    fn seq<A: SeqAccess<'de>>(self, seq: A, at: &At, found: &Problems) -> Outcome<bool, A::Error> {
        let mut any = false;
        each_item(seq, self.0, at, found, |item| any |= (self.1)(&item))?;
        Ok(Some(any))
    }
}

/// Each item of a list read as `shape` and given to `take`, up to one that is not the shape: that
/// one is reported and the rest read through.
fn each_item<'de, A: SeqAccess<'de>, S: Shape<'de>>(
    mut seq: A,
    shape: S,
    at: &At,
    found: &Problems,
    mut take: impl FnMut(S::Out),
) -> Result<(), A::Error> {
    for index in 0.. {
        let item_at = At::Item(at, index);
        match seq.next_element_seed(Read { shape, at: item_at, found })? {
            None => break,
            Some(Got::Value(item)) => take(item),
            Some(Got::Absent) => {
                found.report(|| format!("{item_at} {}", S::WRONG.unwrap_or_default()));
                return drain_seq(seq);
            }
            Some(Got::Wrong) => return drain_seq(seq),
        }
    }
    Ok(())
}

/// A string reduced as it is read to what the function makes of it: a seccomp profile's `type` to
/// whether it confines.
pub(super) struct TextAs<T>(pub fn(&str) -> T);

impl<T> Clone for TextAs<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for TextAs<T> {}

impl<'de, T> Shape<'de> for TextAs<T> {
    type Out = T;
    const WRONG: Option<&'static str> = Some("is not a string");

    fn text(self, text: Cow<'de, str>) -> Option<T> {
        Some((self.0)(&text))
    }
}

/// An item of a list reduced to one of its string fields: a volume to its name, a mount to its
/// path. This keeps a Pod with thousands of env vars cheap: one string each.
#[derive(Clone, Copy)]
pub(super) struct Key(pub &'static str);

impl<'de> Shape<'de> for Key {
    type Out = Cow<'de, str>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        let key = object(map, at, &[self.0], |key: &mut Option<Cow<'de, str>>, _, at, map| {
            *key = map.next_value_seed(Read { shape: AnyText, at, found })?.value();
            Ok(())
        })?
        .flatten();
        if key.is_none() {
            found.report(|| format!("{at}.{} is missing or not a string", self.0));
        }
        Ok(Some(key.unwrap_or_default()))
    }
}
