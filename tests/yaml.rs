//! `inject -f`'s YAML reader, on each YAML 1.1 form kubectl reads, one case each: the value
//! kubectl reads for a plain scalar, a key, a tag or a merge. The expected values follow the
//! rules in `src/engine/manifests/yaml.rs`; `tests/manifests.rs` asks kubectl itself for the
//! forms a manifest holds, on input and on output.

use serde_json::{Value, json};
use sidecar_injector::engine::manifests::{YamlError, documents};

mod common;

use common::rows;

/// The value of `v` in `v: TEXT`.
fn value_of(text: &str) -> Value {
    let read = documents(&format!("v: {text}\n")).unwrap_or_else(|e| panic!("{text}: {e}"));
    read[0]["v"].clone()
}

/// One row: the plain scalar `text` is read as `expected`, integers and floats apart.
fn plain_reads_as(text: &str, expected: Value) {
    let got = value_of(text);
    assert_eq!(got, expected, "{text}");
    assert_eq!(got.is_i64() || got.is_u64(), expected.is_i64() || expected.is_u64(), "{text}: {got:?}");
}

rows! { plain_reads_as;
    octal_leading_zero: ("0400", json!(256)),
    octal_mode_0755: ("0755", json!(493)),
    octal_zero_zero: ("00", json!(0)),
    octal_negative: ("-010", json!(-8)),
    octal_prefix_lower: ("0o17", json!(15)),
    octal_prefix_upper: ("0O17", json!(15)),
    octal_with_sign: ("+0o17", json!(15)),
    not_octal_08_is_a_float_8: ("08", json!(8)),
    not_octal_012_5_is_a_float: ("012.5", json!(12.5)),
    hex: ("0x1F", json!(31)),
    hex_upper_prefix: ("0X1f", json!(31)),
    hex_negative: ("-0x1A", json!(-26)),
    hex_with_sign: ("+0x10", json!(16)),
    hex_with_underscore: ("0x_1F", json!(31)),
    hex_without_digits_is_a_string: ("0x", json!("0x")),
    hex_bad_digit_is_a_string: ("0xG", json!("0xG")),
    binary: ("0b101", json!(5)),
    binary_upper_prefix: ("0B11", json!(3)),
    binary_negative: ("-0b101", json!(-5)),
    binary_bad_digit_is_a_string: ("0b2", json!("0b2")),
    plus_sign: ("+12", json!(12)),
    minus_zero: ("-0", json!(0)),
    underscores: ("1_000", json!(1000)),
    underscores_doubled: ("1__0", json!(10)),
    underscore_trailing: ("1_", json!(1)),
    underscore_leading_is_a_string: ("_1", json!("_1")),
    int64_max: ("9223372036854775807", json!(9223372036854775807_i64)),
    int64_min: ("-9223372036854775808", json!(-9223372036854775808_i64)),
    past_int64_is_unsigned: ("18446744073709551615", json!(18446744073709551615_u64)),
    past_uint64_is_a_float: ("99999999999999999999", json!(1e20)),
    octal_past_uint64_is_a_decimal_float: ("0777777777777777777777777", json!(7.777777777777778e23)),
    float: ("1.5", json!(1.5)),
    float_whole_is_an_integer: ("1.0", json!(1)),
    float_exponent: ("1e3", json!(1000)),
    float_exponent_signed: ("1.5e+3", json!(1500)),
    float_leading_dot: (".5", json!(0.5)),
    float_leading_dot_negative: ("-.5", json!(-0.5)),
    float_trailing_dot: ("3.", json!(3)),
    float_out_of_range_is_a_string: ("1e400", json!("1e400")),
    float_two_dots_is_a_string: ("1.2.3", json!("1.2.3")),
    sexagesimal_is_a_string: ("1:20", json!("1:20")),
    timestamp_is_a_string: ("2001-12-14", json!("2001-12-14")),
    sign_then_text_is_a_string: ("-x", json!("-x")),
    quoted_yes_is_a_string: ("\"yes\"", json!("yes")),
    single_quoted_octal_is_a_string: ("'0400'", json!("0400")),
    block_literal_is_a_string: ("|\n  0400\n", json!("0400\n")),
}

/// One row: every spelling of a boolean or a null in YAML 1.1 (go-yaml v2 knows these, and no
/// other case mix) reads as `expected`.
fn spellings_read_as(texts: &[&str], expected: Value) {
    for text in texts {
        assert_eq!(value_of(text), expected, "{text}");
    }
}

rows! { spellings_read_as;
    true_spellings: (&["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"], json!(true)),
    false_spellings: (&["n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"], json!(false)),
    null_spellings: (&["~", "null", "Null", "NULL", ""], Value::Null),
}

#[test]
fn other_case_mixes_are_strings() {
    for text in ["tRue", "yEs", "oN", "nO", "oFF", "fALSE", "nULL"] {
        assert_eq!(value_of(text), json!(text), "{text}");
    }
}

/// One row: a mapping with these plain keys has these keys as kubectl reads them.
fn keys_read_as(yaml: &str, expected: &[&str]) {
    let read = documents(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    let keys: Vec<&str> = read[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, expected, "{yaml}");
}

rows! { keys_read_as;
    key_n_is_false: ("n: 1\n", &["false"]),
    key_on_is_true: ("on: 1\n", &["true"]),
    key_int: ("1: a\n", &["1"]),
    key_hex: ("0x10: a\n", &["16"]),
    key_float: ("1.5: a\n", &["1.5"]),
    key_whole_float: ("1.0: a\n", &["1"]),
    key_float_in_exponent_form: ("1e6: a\n", &["1e+06"]),
    key_timestamp: ("2001-12-14: a\n", &["2001-12-14"]),
    key_quoted_stays_text: ("\"on\": a\n", &["on"]),
    key_given_twice_keeps_one: ("x: 1\nx: 2\n", &["x"]),
}

#[test]
fn a_key_given_twice_keeps_the_last_value() {
    assert_eq!(documents("x: 1\nx: 2\n").unwrap()[0], json!({"x": 2}));
}

#[test]
fn merge_keys_follow_go_yaml_v2s_order() {
    let yaml = "base: &base {a: 1, b: 2}\nother: &other {b: 20, c: 30}\n\
                before: {a: 0, <<: *base}\nafter: {<<: *base, a: 0}\nboth: {<<: [*base, *other], d: 4}\n";
    let read = &documents(yaml).unwrap()[0];
    assert_eq!(read["before"], json!({"a": 1, "b": 2}), "the merge overwrites the keys before it");
    assert_eq!(read["after"], json!({"a": 0, "b": 2}), "keys after the merge overwrite it");
    assert_eq!(read["both"], json!({"a": 1, "b": 2, "c": 30, "d": 4}), "of a list, the first wins");
}

/// One row: a tagged scalar is read as kubectl reads it.
fn tagged_reads_as(text: &str, expected: Value) {
    assert_eq!(value_of(text), expected, "{text}");
}

rows! { tagged_reads_as;
    tag_str_on_a_number: ("!!str 123", json!("123")),
    tag_int_on_a_quoted_number: ("!!int \"42\"", json!(42)),
    tag_float_on_a_quoted_integer: ("!!float \"1\"", json!(1)),
    tag_bool_on_yes: ("!!bool \"yes\"", json!(true)),
    tag_null_on_empty: ("!!null \"\"", Value::Null),
    local_tag_is_ignored: ("!foo bar", json!("bar")),
    non_specific_tag_is_a_string: ("! 0400", json!("0400")),
}

/// One row: what kubectl refuses is refused, naming the line and the cause.
fn refused(yaml: &str, line: usize, cause: &str) {
    let error: YamlError = documents(yaml).expect_err(yaml);
    assert_eq!(error.line, line, "{yaml}: {error}");
    assert!(error.message.contains(cause), "{yaml}: {error}");
}

rows! { refused;
    infinity_as_a_value: ("a: 1\nb: .inf\n", 2, "a number JSON cannot hold"),
    nan_as_a_value: ("b: .nan\n", 1, "a number JSON cannot hold"),
    null_key: ("~: a\n", 1, "is null"),
    list_as_a_key: ("? [a]\n: b\n", 1, "a list or a mapping"),
    int_tag_on_text: ("a: !!int abc\n", 1, "is not a !!int"),
    unknown_core_tag: ("a: !!binary aGk=\n", 1, "!!binary"),
    merge_of_a_scalar: ("a: {<<: 1}\n", 1, "a merge key"),
    unclosed_flow: ("a: [b\n", 1, "unclosed"),
}

#[test]
fn documents_are_split_and_empty_ones_kept_as_null() {
    let read = documents("a: 1\n---\n---\nb: 2\n").unwrap();
    assert_eq!(read, [json!({"a": 1}), Value::Null, json!({"b": 2})]);
}

#[test]
fn anchors_are_per_document_and_aliases_expand() {
    let read = documents("a: &x {k: v}\nb: *x\n").unwrap();
    assert_eq!(read[0]["b"], json!({"k": "v"}));
    assert!(documents("a: &x 1\n---\nb: *x\n").is_err(), "an anchor does not outlive its document");
}

#[test]
fn deep_nesting_and_alias_bombs_are_refused() {
    let deep = format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    assert!(documents(&deep).unwrap_err().message.contains("recursion limit"), "the parser's own limit");
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (name, previous) in
        ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        bomb.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{previous}"); 10].join(", ")));
    }
    assert!(documents(&bomb).unwrap_err().message.contains("aliases expand it past"));
}

#[test]
fn comments_anywhere_are_not_values() {
    let yaml = "# a file\n---\n# before\na: 1 # after\n# between\nb: # after a key\n  - 2 # in a list\n  # ending it\n---\n# alone\n";
    let read = documents(yaml).unwrap();
    assert_eq!(read, [json!({"a": 1, "b": [2]}), Value::Null]);
    let many = "# line\n".repeat(10_000) + "a: 1\n";
    assert_eq!(documents(&many).unwrap(), [json!({"a": 1})], "as many comments as a file holds");
}
