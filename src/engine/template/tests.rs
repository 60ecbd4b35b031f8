use super::Parsed::{Name, Text};
use super::*;

#[test]
fn parses_placeholders_escapes_and_lone_percents() {
    assert_eq!(parse("a%{x}b").unwrap(), [Text("a".into()), Name("x".into()), Text("b".into())]);
    assert_eq!(parse("100%%{x}").unwrap(), [Text("100%{x}".into())]);
    assert_eq!(parse("5% of %{ x }").unwrap(), [Text("5% of ".into()), Name("x".into())]);
    assert_eq!(parse("%{a}%{b}").unwrap(), [Name("a".into()), Name("b".into())]);
    assert!(parse("%{open").unwrap_err().contains("not closed"));
    assert_eq!(parse("").unwrap(), []);
}

#[test]
fn knows_where_kubernetes_expands() {
    assert!(expands_in_container("/args/0"));
    assert!(expands_in_container("/command/2"));
    assert!(expands_in_container("/env/3/value"));
    assert!(!expands_in_container("/env/3/name"));
    assert!(!expands_in_container("/image"));
    assert_eq!(readable("/env/3/value"), ".env[3].value");
}
