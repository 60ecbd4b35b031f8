//! YAML read as kubectl reads a manifest: `sigs.k8s.io/yaml`'s `YAMLToJSON`, which decodes with
//! go-yaml v2 (YAML 1.1's scalars) into JSON. The rules, from go-yaml v2's `resolve.go` and
//! `sigs.k8s.io/yaml`'s `yaml.go`, each held by a row of `tests/yaml.rs` and of
//! `tests/manifests.rs`, which also asks kubectl itself:
//!
//! - A quoted or block scalar is a string. A plain one is, in this order:
//!   null for ``, `~`, `null`, `Null`, `NULL`; true for `y`, `Y`, `yes`, `Yes`, `YES`, `true`,
//!   `True`, `TRUE`, `on`, `On`, `ON`, false for `n`, `N`, `no`, `No`, `NO`, `false`, `False`,
//!   `FALSE`, `off`, `Off`, `OFF` (those spellings only: `yEs` is a string);
//! - when it starts with a digit, `+` or `-`: with every `_` removed, an integer as Go's
//!   `strconv.ParseInt(s, 0, 64)` reads one (`0x1F`, `0o17`, `0b101`, `0400` octal, `+12`), else
//!   an unsigned 64-bit one, else a float when it looks like one (`08`, `012.5`, `1e3`), else, for
//!   `0b`, a binary one; when it starts with `.`: `.inf`, `.nan` and their spellings, or a float
//!   (`.5`);
//! - anything else, a timestamp such as `2001-12-14` included, is a string.
//! - A mapping key is the text of what it resolves to: `1: a` has the key `"1"`, `0x10` has `"16"`,
//!   `y` has `"true"`. A key given twice keeps the last value. `<<: *anchor` (or a list of anchors)
//!   merges the anchored mappings in, in go-yaml v2's order: each merge overwrites the keys before
//!   it, and of several, the first wins.
//! - `!!str` makes a string of anything; `!!int`, `!!float`, `!!bool` and `!!null` read the text as
//!   a plain scalar of that type; a local tag such as `!foo` is ignored.
//!
//! A float that is a whole number in the 64-bit range is an integer here, as kubectl's JSON writes
//! it: `1.0` and `1e3` are `1` and `1000`. What kubectl refuses is refused, with the line: `.inf`
//! and `.nan` as values (JSON has no such numbers), a null or collection as a key.
//!
//! The events come from granit-parser, the parser under serde-saphyr; the resolution is ours, as
//! the Rust YAML crates (serde-saphyr, saphyr, yaml-rust2, serde_yaml) resolve scalars by YAML
//! 1.2's rules, where `0400` is not octal and `yes` is a string.

use std::collections::HashMap;

// The parser refuses nesting past 255 flow and 255 block levels itself, which bounds the loader's
// recursion.
use granit_parser::{Event, Parser, ScalarStyle, Span, StrInput, Tag};
use serde_json::{Map, Number, Value};

/// Why a YAML stream cannot be read as kubectl would read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

/// Values a stream may hold, aliases expanded: a defence against alias bombs.
const MOST_VALUES: usize = 1 << 22;

/// The documents of a YAML stream (empty ones as `null`), each as kubectl reads it.
pub fn documents(text: &str) -> Result<Vec<Value>, YamlError> {
    // Comments are no values; unemitted, they need no skipping (and no buffer of them, which
    // the parser bounds).
    let parser = Parser::new_from_str_with_options(text, granit_parser::options! { emit_comments: false });
    Loader { parser, anchors: HashMap::new(), values: 0 }.documents()
}

/// What a plain scalar is, as go-yaml v2 resolves it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Plain {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str,
}

/// The plain scalar `text`, resolved.
pub(crate) fn resolve(text: &str) -> Plain {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Plain::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Plain::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Plain::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Plain::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Plain::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Plain::Float(f64::NAN),
        _ => {}
    }
    match text.as_bytes()[0] {
        b'0'..=b'9' | b'+' | b'-' => number(&text.replace('_', "")),
        b'.' if looks_like_a_float(text) => text.parse().map_or(Plain::Str, Plain::Float),
        _ => Plain::Str,
    }
}

/// A plain scalar that starts with a digit or a sign, its underscores removed.
fn number(plain: &str) -> Plain {
    if let Some(int) = go_parse_int(plain) {
        return int;
    }
    if looks_like_a_float(plain)
        && let Ok(float) = plain.parse::<f64>()
        && float.is_finite()
    {
        return Plain::Float(float);
    }
    let binary = |digits: &str, negative: bool| {
        let magnitude = u64::from_str_radix(digits, 2).ok()?;
        signed(magnitude, negative)
    };
    let read = match (plain.strip_prefix("0b"), plain.strip_prefix("-0b")) {
        (Some(digits), _) => binary(digits, false),
        (_, Some(digits)) => binary(digits, true),
        _ => None,
    };
    read.unwrap_or(Plain::Str)
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint(s, 0, 64)`: a sign, then `0x`, `0o`, `0b`
/// (either case) or a leading `0` for octal, else decimal.
fn go_parse_int(text: &str) -> Option<Plain> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &unsigned[2..]),
        Some("0o") => (8, &unsigned[2..]),
        Some("0b") => (2, &unsigned[2..]),
        _ if unsigned.len() > 1 && unsigned.starts_with('0') => (8, &unsigned[1..]),
        _ => (10, unsigned),
    };
    // from_str_radix takes a sign itself; Go's digits may not have one here.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    signed(u64::from_str_radix(digits, radix).ok()?, negative)
}

fn signed(magnitude: u64, negative: bool) -> Option<Plain> {
    match (negative, i64::try_from(magnitude)) {
        (false, Ok(value)) => Some(Plain::Int(value)),
        (false, Err(_)) => Some(Plain::Uint(magnitude)),
        (true, _) if magnitude == 1 << 63 => Some(Plain::Int(i64::MIN)),
        (true, Ok(value)) => Some(Plain::Int(-value)),
        (true, Err(_)) => None,
    }
}

/// go-yaml v2's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn looks_like_a_float(text: &str) -> bool {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let mut rest = text.strip_prefix(['-', '+']).unwrap_or(text);
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    } else {
        let n = digits(rest);
        if n == 0 {
            return false;
        }
        rest = &rest[n..];
        if let Some(fraction) = rest.strip_prefix('.') {
            rest = &fraction[digits(fraction)..];
        }
    }
    match rest.strip_prefix(['e', 'E']) {
        None => rest.is_empty(),
        Some(exponent) => {
            let exponent = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
            digits(exponent) > 0 && digits(exponent) == exponent.len()
        }
    }
}

/// A resolved scalar as kubectl's JSON holds it; `None` for a number JSON cannot hold.
fn json(plain: Plain, text: &str) -> Option<Value> {
    Some(match plain {
        Plain::Null => Value::Null,
        Plain::Bool(b) => Value::Bool(b),
        Plain::Int(i) => Value::from(i),
        Plain::Uint(u) => Value::from(u),
        Plain::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Value::from(f as i64),
        Plain::Float(f) => Value::Number(Number::from_f64(f)?),
        Plain::Str => Value::String(text.to_owned()),
    })
}

mod load;

use load::Loader;
