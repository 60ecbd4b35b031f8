//! A template as rendered for one Pod, and how the patch writes it.

use std::ops::Deref;

use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// A template rendered for one Pod: the configuration's own value with its JSON, written once at
/// load, or a value filled for this Pod. The patch writes the first as it is, rather than
/// serialising the sidecar's template again for every Pod. Changing one ([`Rendered::to_mut`]) makes it the second, so that no JSON ever describes another value.
#[derive(Debug, Clone)]
pub(crate) enum Rendered<'c> {
    Config { value: &'c Value, json: &'c RawValue },
    Filled(Value),
}

impl Deref for Rendered<'_> {
    type Target = Value;

    fn deref(&self) -> &Value {
        match self {
            Rendered::Config { value, .. } => value,
            Rendered::Filled(value) => value,
        }
    }
}

impl Rendered<'_> {
    /// The value to change, copied from the configuration first when it is its own.
    pub fn to_mut(&mut self) -> &mut Value {
        if let Rendered::Config { value, .. } = self {
            *self = Rendered::Filled((*value).clone());
        }
        match self {
            Rendered::Filled(value) => value,
            Rendered::Config { .. } => unreachable!("made Filled above"),
        }
    }
}

impl Serialize for Rendered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Rendered::Config { json, .. } => json.serialize(serializer),
            Rendered::Filled(value) => value.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_the_json_of_the_value_it_holds() {
        let value = json!({"name": "proxy", "args": ["--a=\"b\"", "é"], "ports": [{"containerPort": 15001}]});
        let json = serde_json::value::to_raw_value(&value).unwrap();
        let mut rendered = Rendered::Config { value: &value, json: &json };
        assert_eq!(serde_json::to_string(&rendered).unwrap(), value.to_string());
        rendered.to_mut()["name"] = json!("changed");
        assert!(matches!(rendered, Rendered::Filled(_)));
        assert_eq!(serde_json::to_value(&rendered).unwrap()["name"], "changed");
        assert_eq!(value["name"], "proxy", "the configuration's own value is never changed");
    }
}
