//! Reading only the parts of a Pod that injection reads or patches.
//!
//! Building a whole `serde_json::Value` of a Pod costs an allocation per key and string: on a 3 KB
//! Pod that was most of a review's time, and it grows with every env var of every container. The
//! decision reads a few fields, and every patch operation is an `add` under a few paths, so this
//! parses the object into a *skeleton*: the same JSON with every subtree the injection never looks
//! at left out (but still checked to be well-formed JSON). List items are kept, reduced to what is
//! read of them (a container to its name, env and mounts; an env var or volume to its name as a
//! plain string), so list lengths and indexes stay the same as in the real Pod.
//!
//! `copyEnv` and `shareVolumeMounts` need more: the app containers' env vars with their values and
//! their mounts whole. Only a review whose profiles use them pays for that, with a second pass over
//! the body that keeps just those ([`app_values`]); keeping them always doubled the cost of a Pod
//! with thousands of env vars.
//!
//! Why the patch check stays sound: an `add` operation only reads and writes along its path. Every
//! path prefix our patches use is present in the skeleton exactly as in the Pod, so applying the
//! patch to the skeleton does what it does to the Pod on those paths and leaves the rest alone,
//! and a patch that strayed elsewhere (or replaced a map) would fail to apply or fail the
//! comparison. The Pod the API server keeps is never rebuilt from this: fields we leave out here
//! are not dropped there.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// What to keep of a JSON value.
#[derive(Clone, Copy)]
enum Shape {
    /// The whole value.
    All,
    /// Only these fields of an object.
    Fields(&'static [(&'static str, Shape)]),
    /// Each item of a list, kept to this shape.
    Items(&'static Shape),
    /// An object reduced to one of its string fields, read back with [`key_of`]. This keeps a
    /// Pod with thousands of env vars cheap: one string each instead of a map each.
    Key(&'static str),
}

const NAMED: Shape = Shape::Key("name");
const CONTAINER: Shape = Shape::Fields(&[
    ("name", Shape::All),
    ("env", Shape::Items(&NAMED)),
    ("volumeMounts", Shape::Items(&Shape::Key("mountPath"))),
]);
const ENV_VAR: Shape =
    Shape::Fields(&[("name", Shape::All), ("value", Shape::All), ("valueFrom", Shape::All)]);
/// What `copyEnv` and `shareVolumeMounts` read of the app containers.
const APP_VALUES: Shape = Shape::Fields(&[(
    "spec",
    Shape::Fields(&[(
        "containers",
        Shape::Items(&Shape::Fields(&[
            ("env", Shape::Items(&ENV_VAR)),
            ("volumeMounts", Shape::Items(&Shape::All)),
        ])),
    )]),
)]);

/// The app containers of the review's Pod with their env vars (name, value, valueFrom) and mounts,
/// in the Pod's order; empty when the body has none to read (the first pass has refused any
/// body or Pod this could not read).
pub(crate) fn app_values(body: &[u8]) -> Vec<Value> {
    #[derive(serde::Deserialize)]
    struct Review {
        request: Option<Request>,
    }
    #[derive(serde::Deserialize)]
    struct Request {
        #[serde(default, deserialize_with = "app_values_of")]
        object: Value,
    }
    fn app_values_of<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        Keep(APP_VALUES).deserialize(deserializer)
    }
    let read: Option<Review> = serde_json::from_slice(body).ok();
    let mut pod = read.and_then(|r| r.request).map(|r| r.object).unwrap_or_default();
    match pod.pointer_mut("/spec/containers").map(Value::take) {
        Some(Value::Array(containers)) => containers,
        _ => Vec::new(),
    }
}

/// What a [`Shape::Key`] item was reduced to: `Ok(value)`, or why it has none.
pub(crate) fn key_of(item: &Value) -> Result<&str, &'static str> {
    match item {
        Value::String(value) => Ok(value),
        Value::Null => Err("is missing or not a string"),
        _ => Err("is not an object"),
    }
}
const POD: Shape = Shape::Fields(&[
    (
        "metadata",
        Shape::Fields(&[
            ("name", Shape::All),
            ("generateName", Shape::All),
            ("namespace", Shape::All),
            ("labels", Shape::All),
            ("annotations", Shape::All),
        ]),
    ),
    (
        "spec",
        Shape::Fields(&[
            ("hostNetwork", Shape::All),
            ("serviceAccountName", Shape::All),
            ("containers", Shape::Items(&CONTAINER)),
            ("initContainers", Shape::Items(&NAMED)),
            ("ephemeralContainers", Shape::Items(&NAMED)),
            ("volumes", Shape::Items(&NAMED)),
        ]),
    ),
]);

/// For `#[serde(deserialize_with)]`: the request's object as a Pod skeleton; `null` is `None`.
pub(crate) fn pod_skeleton<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    let value = Keep(POD).deserialize(deserializer)?;
    Ok(Some(value).filter(|v| !v.is_null()))
}

struct Keep(Shape);

impl<'de> DeserializeSeed<'de> for Keep {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.0 {
            Shape::All => Value::deserialize(deserializer),
            _ => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Keep {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if let Shape::Key(wanted) = self.0 {
            let mut kept = Value::Null;
            while let Some(index) = map.next_key_seed(FieldIndex(&[(wanted, Shape::All)]))? {
                match index {
                    Some(_) => {
                        kept =
                            Some(map.next_value::<Value>()?).filter(Value::is_string).unwrap_or(Value::Null)
                    }
                    None => map.next_value::<IgnoredAny>().map(drop)?,
                }
            }
            return Ok(kept);
        }
        let mut kept = Map::new();
        let Shape::Fields(fields) = self.0 else {
            // An object where a list belongs: its content does not matter, only that it is wrong.
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Value::Object(kept));
        };
        while let Some(index) = map.next_key_seed(FieldIndex(fields))? {
            match index {
                Some(i) => {
                    let (name, shape) = fields[i];
                    kept.insert(name.to_owned(), map.next_value_seed(Keep(shape))?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut kept = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        match self.0 {
            Shape::Items(item) => {
                while let Some(value) = seq.next_element_seed(Keep(*item))? {
                    kept.push(value);
                }
            }
            // A list where an object belongs: likewise only its wrongness matters.
            _ => while seq.next_element::<IgnoredAny>()?.is_some() {},
        }
        Ok(self.not_an_object(Value::Array(kept)))
    }

    // Scalars are kept as they are, so that a field of the wrong type is reported as such.
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(self.not_an_object(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(self.not_an_object(Value::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(self.not_an_object(Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(self.not_an_object(Value::from(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(self.not_an_object(Value::String(v.to_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(self.not_an_object(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(self.not_an_object(Value::Null))
    }
}

impl Keep {
    /// A [`Shape::Key`] item that is not an object becomes `false`, which [`key_of`] reports as
    /// "is not an object" (a string there would pass for the key's value).
    fn not_an_object(&self, value: Value) -> Value {
        match self.0 {
            Shape::Key(_) => Value::Bool(false),
            _ => value,
        }
    }
}

/// Matches an object key against the kept fields without allocating it. The key is read as bytes:
/// `review` has checked the whole body for UTF-8 already, and serde_json would check each key again.
struct FieldIndex<'f>(&'f [(&'static str, Shape)]);

impl<'de> DeserializeSeed<'de> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_bytes<E: de::Error>(self, key: &[u8]) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|(name, _)| name.as_bytes() == key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        self.visit_bytes(key.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn skeleton(pod: serde_json::Value) -> serde_json::Value {
        super::pod_skeleton(pod).unwrap().unwrap()
    }

    #[test]
    fn keeps_what_injection_reads_and_list_lengths() {
        let pod = json!({
            "apiVersion": "v1",
            "metadata": {"name": "a", "labels": {"x": "y"}, "managedFields": [{"big": true}]},
            "spec": {
                "containers": [
                    {"name": "app", "image": "i", "env": [{"name": "A", "value": "secret"}], "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
                    {"name": "two", "args": ["x"]}
                ],
                "volumes": [{"name": "v", "secret": {"secretName": "s"}}],
                "tolerations": [{"key": "k"}],
                "hostNetwork": true
            }
        });
        assert_eq!(
            skeleton(pod),
            json!({
                "metadata": {"name": "a", "labels": {"x": "y"}},
                "spec": {
                    "containers": [{"name": "app", "env": ["A"], "volumeMounts": ["/v"]}, {"name": "two"}],
                    "volumes": ["v"],
                    "hostNetwork": true
                }
            })
        );
    }

    #[test]
    fn keeps_wrong_types_so_they_can_be_reported() {
        let pod = json!({"metadata": "m", "spec": {"containers": {"name": "x"}, "volumes": [5, "v", {"name": 1}, {}]}});
        let kept = skeleton(pod);
        assert_eq!(
            kept,
            json!({"metadata": "m", "spec": {"containers": {}, "volumes": [false, false, null, null]}})
        );
        let volumes: Vec<_> = kept["spec"]["volumes"].as_array().unwrap().iter().map(super::key_of).collect();
        assert_eq!(
            volumes,
            [
                Err("is not an object"),
                Err("is not an object"),
                Err("is missing or not a string"),
                Err("is missing or not a string")
            ]
        );
        assert_eq!(super::pod_skeleton(serde_json::Value::Null).unwrap(), None);
    }
}
