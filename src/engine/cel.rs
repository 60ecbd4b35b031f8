//! CEL over the Pod and the request, as the webhook's `matchConditions` read them: keys of the
//! Pod's labels or annotations, their values, string literals and lists of them.

/// Whether the Pod's `field` (labels or annotations) has `key`.
pub(crate) fn has_key(field: &str, key: &str) -> String {
    format!("(has(object.metadata.{field}) && {} in object.metadata.{field})", quote(key))
}

/// The value of `key` in the Pod's `field`; only where [`has_key`] holds.
pub(crate) fn value_of(field: &str, key: &str) -> String {
    format!("object.metadata.{field}[{}]", quote(key))
}

/// A CEL string literal. Names, label keys and values never hold a quote or a backslash; escaped
/// all the same, so that no configuration can change an expression's meaning.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A CEL list of string literals.
pub(crate) fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|item| quote(item)).collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_quote_or_a_backslash_cannot_end_the_literal() {
        assert_eq!(super::quote(r"a'b\"), r"'a\'b\\'");
        assert_eq!(super::list(&["x".into(), "y'".into()]), r"['x', 'y\'']");
    }
}
