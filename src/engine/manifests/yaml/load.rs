//! The YAML parser's events built into JSON values, as go-yaml v2 and `sigs.k8s.io/yaml` build
//! them: anchors, aliases, merge keys, tags and mapping keys.

use std::collections::HashMap;

use super::{Event, MOST_VALUES, Map, Parser, Plain, ScalarStyle, Span, StrInput, Tag, Value};
use super::{YamlError, json, resolve};

pub(super) struct Loader<'a> {
    pub parser: Parser<'a, StrInput<'a>>,
    /// Each anchor's value, and how many values it holds (what an alias to it costs).
    pub anchors: HashMap<usize, (Value, usize)>,
    /// Values built so far, aliases expanded.
    pub values: usize,
}

/// A value, and how many values it holds.
type Built = (Value, usize);

impl<'a> Loader<'a> {
    pub fn documents(mut self) -> Result<Vec<Value>, YamlError> {
        let mut documents = Vec::new();
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd => {}
                Event::StreamEnd => return Ok(documents),
                Event::DocumentStart(..) => {
                    self.anchors.clear();
                    let (event, span) = self.next()?;
                    let document = match event {
                        Event::DocumentEnd => Value::Null,
                        event => self.node(event, span)?.0,
                    };
                    documents.push(document);
                }
                other => return Err(at(span, format!("unexpected {other:?} between documents"))),
            }
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(error)) => Err(YamlError { line: error.marker().line(), message: error.info() }),
            None => Err(YamlError { line: 0, message: "the stream ended early".into() }),
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Built, YamlError> {
        let (built, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                ((scalar(&text, style, tag.as_deref(), span)?, 1), anchor)
            }
            Event::SequenceStart(_, anchor, tag) => {
                collection(tag.as_deref(), "seq", span)?;
                (self.sequence()?, anchor)
            }
            Event::MappingStart(_, anchor, tag) => {
                collection(tag.as_deref(), "map", span)?;
                (self.mapping()?, anchor)
            }
            Event::Alias(id) => {
                let aliased = self.anchors.get(&id).cloned();
                let (value, size) = aliased.ok_or_else(|| at(span, "an alias to no anchor".into()))?;
                self.spend(size, span)?;
                return Ok((value, size));
            }
            other => return Err(at(span, format!("unexpected {other:?}"))),
        };
        self.spend(1, span)?;
        if anchor != 0 {
            self.anchors.insert(anchor, built.clone());
        }
        Ok(built)
    }

    fn spend(&mut self, values: usize, span: Span) -> Result<(), YamlError> {
        self.values = self.values.saturating_add(values);
        if self.values > MOST_VALUES {
            return Err(at(span, format!("aliases expand it past {MOST_VALUES} values")));
        }
        Ok(())
    }

    fn sequence(&mut self) -> Result<Built, YamlError> {
        let (mut items, mut size) = (Vec::new(), 1);
        loop {
            match self.next()? {
                (Event::SequenceEnd, _) => return Ok((Value::Array(items), size)),
                (event, span) => {
                    let (item, held) = self.node(event, span)?;
                    items.push(item);
                    size += held;
                }
            }
        }
    }

    fn mapping(&mut self) -> Result<Built, YamlError> {
        let (mut map, mut size) = (Map::new(), 1);
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                return Ok((Value::Object(map), size));
            }
            let key = match &event {
                // Resolved here, not as a value: a key keeps the float its text is (`1e6: x`).
                Event::Scalar(text, ScalarStyle::Plain, 0, None) => Some(plain_key(text, span)?),
                _ => None,
            };
            let key = match key {
                Some(key) => key,
                None => key_text(self.node(event, span)?.0, span)?,
            };
            let (event, value_span) = self.next()?;
            let (value, held) = self.node(event, value_span)?;
            size += held;
            match key {
                Key::Merge => merged(&mut map, value, span)?,
                Key::Text(key) => drop(map.insert(key, value)),
            }
        }
    }
}

/// `<<: value`: a mapping's keys set into `map`, or, for a list of mappings, the first's last.
fn merged(map: &mut Map<String, Value>, value: Value, span: Span) -> Result<(), YamlError> {
    let not_a_map = || at(span, "a merge key (<<) takes a mapping or a list of mappings".into());
    let sources = match value {
        Value::Object(source) => vec![source],
        Value::Array(items) => {
            let mut sources = Vec::with_capacity(items.len());
            for item in items.into_iter().rev() {
                sources.push(item.as_object().cloned().ok_or_else(not_a_map)?);
            }
            sources
        }
        _ => return Err(not_a_map()),
    };
    for source in sources {
        map.extend(source);
    }
    Ok(())
}

/// A mapping key: `<<`, or the text `sigs.k8s.io/yaml` makes of what the key resolves to.
enum Key {
    Merge,
    Text(String),
}

/// A plain, untagged key, resolved as go-yaml v2 resolves it.
fn plain_key(text: &str, span: Span) -> Result<Key, YamlError> {
    Ok(Key::Text(match resolve(text) {
        _ if text == "<<" => return Ok(Key::Merge),
        Plain::Str => text.to_owned(),
        Plain::Bool(b) => b.to_string(),
        Plain::Int(i) => i.to_string(),
        Plain::Float(f) => go_float32_key(f),
        Plain::Uint(_) => return Err(at(span, format!("the key {text} is past the 64-bit integer range"))),
        Plain::Null => return Err(at(span, format!("the key {text:?} is null"))),
    }))
}

/// Any other key (quoted, tagged, an alias or a collection), as built.
fn key_text(key: Value, span: Span) -> Result<Key, YamlError> {
    Ok(Key::Text(match key {
        Value::String(text) => text,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => return Err(at(span, "a mapping key that is null".into())),
        Value::Array(_) | Value::Object(_) => {
            return Err(at(span, "a mapping key that is a list or a mapping".into()));
        }
    }))
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`, which `sigs.k8s.io/yaml` writes a float key with: the
/// shortest digits of the 32-bit float, in exponent form from 1e6 up or below 1e-4.
fn go_float32_key(value: f64) -> String {
    if value.is_nan() {
        return ".nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let single = value as f32;
    let scientific = format!("{single:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or_default();
    if (-4..6).contains(&exponent) {
        return single.to_string();
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// A scalar: a quoted or block one is a string; a plain one is resolved; a tag says which.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>, span: Span) -> Result<Value, YamlError> {
    let core = tag.and_then(core);
    let wanted = match core {
        None | Some("str" | "timestamp") if style != ScalarStyle::Plain || tag.is_some() => {
            return Ok(Value::String(text.to_owned()));
        }
        None => None,
        Some(name @ ("int" | "float" | "bool" | "null")) => Some(name),
        Some(other) => return Err(at(span, format!("the tag !!{other} is not one kubectl reads"))),
    };
    let plain = resolve(text);
    let fits = matches!(
        (wanted, plain),
        (None, _)
            | (Some("int"), Plain::Int(_) | Plain::Uint(_))
            | (Some("float"), Plain::Float(_) | Plain::Int(_) | Plain::Uint(_))
            | (Some("bool"), Plain::Bool(_))
            | (Some("null"), Plain::Null)
    );
    if !fits {
        return Err(at(span, format!("{text:?} is not a !!{}", wanted.unwrap_or_default())));
    }
    json(plain, text).ok_or_else(|| {
        at(span, format!("{text} is a number JSON cannot hold, which kubectl refuses; quote it for a string"))
    })
}

/// A collection's tag: none, its own core tag, or a local one (ignored, as go-yaml v2 does).
fn collection(tag: Option<&Tag>, own: &str, span: Span) -> Result<(), YamlError> {
    match tag.and_then(core) {
        Some(name) if name != own => Err(at(span, format!("the tag !!{name} is not one kubectl reads"))),
        _ => Ok(()),
    }
}

/// The name of a `!!` tag (`tag:yaml.org,2002:NAME`); `None` for a local one.
fn core(tag: &Tag) -> Option<&str> {
    (tag.handle() == "tag:yaml.org,2002:").then(|| tag.suffix())
}

fn at(span: Span, message: String) -> YamlError {
    YamlError { line: span.start.line(), message }
}
