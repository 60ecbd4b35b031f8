//! A profile's declared `parameters`: checked at load, and read from a Pod at review.

use std::collections::BTreeMap;

use regex_lite::Regex;

use super::keys;
use super::raw::RawParameter;
use crate::error::ConfigError;
use crate::names;
use crate::template::{BUILT_INS, Names, Source};

/// One declared parameter, checked.
#[derive(Debug, Clone)]
pub(crate) struct Parameter {
    pub name: String,
    pub default: Option<String>,
    pub annotation: Option<String>,
    pub label: Option<String>,
    pub rule: Allowed,
}

/// What values a parameter allows.
#[derive(Debug, Clone)]
pub(crate) enum Allowed {
    Any,
    /// A full match of this expression (compiled as `^(?:…)$`); the text as written, for messages.
    Pattern(Regex, String),
    OneOf(Vec<String>),
}

/// Patterns come from the configuration, values from Pods: `regex_lite` matches in time linear in
/// the value, and this bounds the pattern's compiled size.
const PATTERN_SIZE_LIMIT: usize = 1 << 16;

impl Parameter {
    pub(super) fn compile(name: &str, raw: RawParameter, path: &str) -> Result<Parameter, ConfigError> {
        if !is_parameter_name(name) {
            return Err(ConfigError::at(
                path,
                format!("parameter name {name:?} must be a letter, then letters, digits, '_' or '-'"),
            ));
        }
        let rule = match (raw.pattern, raw.allowed) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::at(path, "give either pattern or enum, not both"));
            }
            (Some(pattern), None) => Allowed::Pattern(compile_pattern(&pattern, path)?, pattern),
            (None, Some(values)) if values.is_empty() => {
                return Err(ConfigError::at(format!("{path}.enum"), "an enum needs at least one value"));
            }
            (None, Some(values)) => Allowed::OneOf(values),
            (None, None) => Allowed::Any,
        };
        match (&raw.default, raw.required) {
            (Some(_), true) => {
                return Err(ConfigError::at(
                    path,
                    "a required parameter has no default; give one or the other",
                ));
            }
            (None, false) => {
                return Err(ConfigError::at(path, "give a default, or required: true"));
            }
            _ => {}
        }
        if let Some(default) = &raw.default
            && let Err(why) = rule.check(default)
        {
            return Err(ConfigError::at(format!("{path}.default"), format!("{default:?} {why}")));
        }
        if raw.annotation.is_none() && raw.label.is_none() && raw.required {
            return Err(ConfigError::at(
                path,
                "a required parameter needs an annotation or label to be set by",
            ));
        }
        for (field, key) in [("annotation", &raw.annotation), ("label", &raw.label)] {
            if let Some(key) = key {
                names::qualified_name(key)
                    .map_err(|why| ConfigError::at(format!("{path}.{field}"), format!("key {why}")))?;
                if key == keys::STATUS {
                    return Err(ConfigError::at(
                        format!("{path}.{field}"),
                        "this key is written by sidecar-injector itself",
                    ));
                }
            }
        }
        Ok(Parameter {
            name: name.to_owned(),
            default: raw.default,
            annotation: raw.annotation,
            label: raw.label,
            rule,
        })
    }

    /// A value to check templates with at load: the default, or the first allowed value.
    pub fn sample(&self) -> Option<&str> {
        match (&self.default, &self.rule) {
            (Some(default), _) => Some(default),
            (None, Allowed::OneOf(values)) => values.first().map(String::as_str),
            (None, _) => None,
        }
    }
}

impl Allowed {
    /// Why `value` is not allowed, as text that reads after the value.
    pub fn check(&self, value: &str) -> Result<(), String> {
        match self {
            Allowed::Any => Ok(()),
            Allowed::Pattern(regex, text) if !regex.is_match(value) => {
                Err(format!("does not match the pattern {text:?}"))
            }
            Allowed::OneOf(values) if !values.iter().any(|v| v == value) => {
                Err(format!("is not one of {}", values.join(", ")))
            }
            _ => Ok(()),
        }
    }
}

fn compile_pattern(pattern: &str, path: &str) -> Result<Regex, ConfigError> {
    regex_lite::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| ConfigError::at(format!("{path}.pattern"), format!("not a regular expression: {e}")))
}

fn is_parameter_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 63
}

/// A profile's parameters as placeholder names.
pub(crate) struct Declared<'a>(pub &'a [Parameter]);

impl Names for Declared<'_> {
    fn source(&self, name: &str) -> Option<Source> {
        let declared = self.0.iter().position(|p| p.name == name).map(Source::Parameter);
        declared.or_else(|| BUILT_INS.iter().find(|(n, _)| *n == name).map(|(_, source)| *source))
    }

    fn known(&self) -> String {
        let declared = self.0.iter().map(|p| p.name.as_str());
        let all: Vec<&str> = declared.chain(BUILT_INS.iter().map(|(n, _)| *n)).collect();
        all.join(", ")
    }
}

/// The parameters as written, checked, in name order.
pub(crate) fn compile_all(
    raw: BTreeMap<String, RawParameter>,
    path: &str,
) -> Result<Vec<Parameter>, ConfigError> {
    raw.into_iter()
        .map(|(name, p)| Parameter::compile(&name, p, &format!("{path}.parameters.{name}")))
        .collect()
}
