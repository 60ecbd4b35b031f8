//! Kubernetes name rules, checked when a configuration loads. A key or name the API server would
//! refuse must be caught here: at request time it would fail every Pod creation in the cluster.
//!
//! Each check returns the reason as text that reads after the thing's name: `"container name " + why`.
//! [`name_of`] and [`mount_path`] read the name that identifies an item of a Pod's lists.

use serde_json::Value;

/// A DNS-1123 label: container, volume, namespace and profile names.
pub(crate) fn dns_label(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!("{name:?} must be 1 to 63 characters long"));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if !name.chars().all(ok_char) || name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "{name:?} must be lower-case letters, digits and '-', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: the names of ConfigMaps, Secrets and claims a volume refers to.
pub(crate) fn dns_subdomain(name: &str) -> Result<(), String> {
    let parts_ok = name.split('.').all(|part| dns_label(part).is_ok());
    if name.is_empty() || name.len() > 253 || !parts_ok {
        return Err(format!("{name:?} must be lower-case DNS labels joined by '.', at most 253 characters"));
    }
    Ok(())
}

/// A label or annotation key: an optional DNS subdomain prefix and `/`, then a name of at most 63
/// characters.
pub(crate) fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if prefix.is_some_and(|prefix| dns_subdomain(prefix).is_err()) {
        return Err(format!("{key:?} has a prefix that is not a lower-case DNS subdomain"));
    }
    if name.is_empty() || name.len() > 63 || !is_name_chars(name) {
        return Err(format!(
            "{key:?} must end in a name of 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of the same alphabet as a key's name.
pub(crate) fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 || !is_name_chars(value) {
        return Err(format!(
            "{value:?} must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A resource quantity as `resource.Quantity` parses it: a signed decimal number and an optional
/// suffix, binary (`Ki` to `Ei`), decimal (`m`, `k`, `M` to `E`) or an exponent (`e3`, `E-2`).
pub(crate) fn quantity(text: &str) -> Result<(), String> {
    let refuse = || Err(format!("{text:?} is not a quantity such as 100m, 64Mi or 1.5"));
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let number_end = unsigned.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let digits = number.replace('.', "");
    if digits.is_empty() || number.matches('.').count() > 1 {
        return refuse();
    }
    let exponent = suffix.strip_prefix(['e', 'E']).map(|e| e.strip_prefix(['+', '-']).unwrap_or(e));
    let suffix_ok = match exponent {
        Some(digits) => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
        None => ["", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].contains(&suffix),
    };
    if suffix_ok { Ok(()) } else { refuse() }
}

/// An environment variable name: printable ASCII without `=`, as the API server accepts it.
pub(crate) fn env_var_name(name: &str) -> Result<(), String> {
    if name.is_empty() || !name.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'=') {
        return Err(format!("{name:?} must be printable ASCII characters other than '='"));
    }
    Ok(())
}

/// A port name (IANA service name): at most 15 lower-case letters, digits and '-', with a letter,
/// not starting or ending with '-', and no '--'.
pub(crate) fn port_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 15
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} must be at most 15 lower-case letters, digits and single '-', with a letter"))
    }
}

fn is_name_chars(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.')) && s.starts_with(alnum) && s.ends_with(alnum)
}

/// The `name` of a container, volume, env var or mount (the volume it names); empty when it has
/// none.
pub(crate) fn name_of(item: &Value) -> &str {
    item.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// A mount's path; empty when it has none (the checks at load refuse that in our templates).
pub(crate) fn mount_path(mount: &Value) -> &str {
    mount.get("mountPath").and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantities() {
        for good in ["1", "100m", "64Mi", "1.5", ".5", "5.", "+1", "-1", "1e3", "1E-2", "2Gi", "0"] {
            assert!(super::quantity(good).is_ok(), "{good}");
        }
        for bad in ["", "lots", "1.2.3", "64MB", "1e", "Mi", "1 Mi", "--1", "1ki"] {
            assert!(super::quantity(bad).is_err(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn label_keys() {
        for good in ["foo", "app.kubernetes.io/name", "example.com/a_b.c-d", "A1"] {
            assert_eq!(qualified_name(good), Ok(()), "{good}");
        }
        for bad in ["", "/foo", "Example.com/foo", "foo/", "-foo", "a/b/c", &"x".repeat(64)] {
            assert!(qualified_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_values() {
        for good in ["", "bar", "v1.2_3-x"] {
            assert_eq!(label_value(good), Ok(()), "{good}");
        }
        for bad in ["-bar", "a b", "bar.", &"x".repeat(64)] {
            assert!(label_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_labels() {
        assert_eq!(dns_label("log-shipper"), Ok(()));
        for bad in ["", "Log", "a_b", "-a", "a-", &"x".repeat(64)] {
            assert!(dns_label(bad).is_err(), "{bad}");
        }
    }
}
