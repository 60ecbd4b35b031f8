//! Reading only the parts of a Pod that injection reads or patches, straight from the body.
//!
//! A Pod read whole as a `serde_json::Value` costs an allocation per key and string: on a 3 KB Pod
//! that was most of a review's time, and it grows with every env var of every container. The
//! decision reads a few fields, and every patch operation is an `add` under a few paths, so this
//! reads the object into a [`Pod`] *skeleton*: the names, labels and annotations injection reads,
//! borrowed from the body where they have no escapes, whether each list and map the patch may add
//! to is there, and how long each list is. Everything else is only checked to be well-formed JSON.
//!
//! A field of a shape Kubernetes never gives (an offline manifest can hold one) does not stop the
//! reading: the first one found is kept in [`Pod::malformed`], for `PodView` to refuse the Pod
//! with, naming the field.
//!
//! Why the patch check stays sound: an `add` operation only reads and writes along its path, and
//! every path our patches use is in the skeleton as in the Pod (see `patch::verify`). The Pod the
//! API server keeps is never rebuilt from this: fields we leave out here are not dropped there.
//!
//! `copyEnv` and `shareVolumeMounts` need more: the app containers' env vars with their values and
//! their mounts whole. Only a review whose profiles use them pays for that, with a second pass over
//! the body ([`app_values`]); keeping them always doubled the cost of a Pod with thousands of env
//! vars.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The request's object, as far as injection reads it.
#[derive(Debug, Default)]
pub(crate) struct Pod<'b> {
    /// `None` when absent or `null`.
    pub metadata: Option<Metadata<'b>>,
    pub spec: Option<Spec<'b>>,
    /// The first field found that is not the shape Kubernetes gives it, as "spec.containers is not
    /// a list".
    pub malformed: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Metadata<'b> {
    pub name: Option<Cow<'b, str>>,
    pub generate_name: Option<Cow<'b, str>>,
    pub namespace: Option<Cow<'b, str>>,
    /// In the body's order; `None` when absent or `null`.
    pub labels: Option<Vec<(Cow<'b, str>, Cow<'b, str>)>>,
    pub annotations: Option<Vec<(Cow<'b, str>, Cow<'b, str>)>>,
}

#[derive(Debug, Default)]
pub(crate) struct Spec<'b> {
    pub host_network: bool,
    pub service_account_name: Option<Cow<'b, str>>,
    /// Each list `None` when absent or `null`.
    pub containers: Option<Vec<Container<'b>>>,
    /// The names of the init and ephemeral containers and of the volumes.
    pub init_containers: Option<Vec<Cow<'b, str>>>,
    pub ephemeral_containers: Option<Vec<Cow<'b, str>>>,
    pub volumes: Option<Vec<Cow<'b, str>>>,
}

#[derive(Debug, Default)]
pub(crate) struct Container<'b> {
    pub name: Cow<'b, str>,
    /// The env vars' names and the mounts' paths.
    pub env: Option<Vec<Cow<'b, str>>>,
    pub volume_mounts: Option<Vec<Cow<'b, str>>>,
}

/// The request's object: a Pod skeleton, or JSON that is not an object at all.
#[derive(Debug)]
pub(crate) enum Object<'b> {
    Pod(Box<Pod<'b>>),
    NotAnObject,
}

impl<'b> Object<'b> {
    pub fn metadata(&self) -> Option<&Metadata<'b>> {
        match self {
            Object::Pod(pod) => pod.metadata.as_ref(),
            Object::NotAnObject => None,
        }
    }
}

/// For `#[serde(deserialize_with)]`: the request's object as a Pod skeleton; `null` is `None`.
pub(crate) fn object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Object<'de>>, D::Error> {
    let problems = Problems::default();
    let read = Read { shape: PodShape, at: At::Top, problems: &problems };
    Ok(match read.deserialize(deserializer)? {
        Got::Absent => None,
        Got::Wrong => Some(Object::NotAnObject),
        Got::Value(mut pod) => {
            pod.malformed = problems.0.into_inner();
            Some(Object::Pod(Box::new(pod)))
        }
    })
}

/// The first problem found; later ones are not looked at.
#[derive(Default)]
struct Problems(RefCell<Option<String>>);

impl Problems {
    fn report(&self, message: impl FnOnce() -> String) {
        let mut first = self.0.borrow_mut();
        if first.is_none() {
            *first = Some(message());
        }
    }
}

/// Where a value is, for messages only: made into text only when a problem is reported.
#[derive(Clone, Copy)]
enum At<'a> {
    Top,
    Field(&'a At<'a>, &'a str),
    Item(&'a At<'a>, usize),
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            At::Top => Ok(()),
            At::Field(At::Top, name) => f.write_str(name),
            At::Field(parent, name) => write!(f, "{parent}.{name}"),
            At::Item(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// What reading one value gave.
enum Got<T> {
    /// Absent or `null`: the same in Kubernetes objects (YAML's `labels:` with nothing after it).
    Absent,
    /// Another kind of value than the field takes; reported already.
    Wrong,
    Value(T),
}

impl<T> Got<T> {
    fn value(self) -> Option<T> {
        match self {
            Got::Value(value) => Some(value),
            Got::Absent | Got::Wrong => None,
        }
    }
}

/// What one value of the skeleton is read as. Each kind of JSON value goes to its method; one
/// that gives `None` is a kind the value does not take, read through as JSON and reported as
/// `WRONG` (when there is a message).
trait Shape<'de>: Copy {
    type Out;
    /// "is not a list" …; `None` for a field whose other kinds are not reported, only ignored.
    const WRONG: Option<&'static str>;

    fn map<A: MapAccess<'de>>(
        self,
        map: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Self::Out>, A::Error> {
        let _ = (at, problems);
        drain_map(map).map(|()| None)
    }

    fn seq<A: SeqAccess<'de>>(
        self,
        seq: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Self::Out>, A::Error> {
        let _ = (at, problems);
        drain_seq(seq).map(|()| None)
    }

    fn text(self, text: Cow<'de, str>) -> Option<Self::Out> {
        let _ = text;
        None
    }

    fn boolean(self, value: bool) -> Option<Self::Out> {
        let _ = value;
        None
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads one value at `at` as `shape`.
struct Read<'p, S> {
    shape: S,
    at: At<'p>,
    problems: &'p Problems,
}

impl<'p, S> Read<'p, S> {
    fn got<T>(&self, value: Option<T>, wrong: Option<&'static str>) -> Got<T> {
        match value {
            Some(value) => Got::Value(value),
            None => {
                if let Some(why) = wrong {
                    self.problems.report(|| format!("{} {why}", self.at));
                }
                Got::Wrong
            }
        }
    }
}

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for Read<'_, S> {
    type Value = Got<S::Out>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, S: Shape<'de>> Visitor<'de> for Read<'_, S> {
    type Value = Got<S::Out>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = self.shape.map(map, &self.at, self.problems)?;
        Ok(self.got(value, S::WRONG))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = self.shape.seq(seq, &self.at, self.problems)?;
        Ok(self.got(value, S::WRONG))
    }
    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(self.got(self.shape.text(Cow::Borrowed(text)), S::WRONG))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(self.got(self.shape.text(Cow::Owned(text.to_owned())), S::WRONG))
    }
    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Ok(self.got(self.shape.boolean(value), S::WRONG))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(self.got(None, S::WRONG))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(self.got(None, S::WRONG))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(self.got(None, S::WRONG))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Got::Absent)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Got::Absent)
    }
}

/// Reads the fields of an object that `fields` names, each with `read(index, map)`, and reads the
/// others through.
fn fields<'de, A: MapAccess<'de>>(
    mut map: A,
    fields: &[&str],
    mut read: impl FnMut(usize, &mut A) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    while let Some(index) = map.next_key_seed(FieldIndex(fields))? {
        match index {
            Some(index) => read(index, &mut map)?,
            None => map.next_value::<IgnoredAny>().map(drop)?,
        }
    }
    Ok(())
}

/// A string, borrowed from the body when it has no escapes.
#[derive(Clone, Copy)]
struct Text;

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
struct AnyText;

impl<'de> Shape<'de> for AnyText {
    type Out = Cow<'de, str>;
    const WRONG: Option<&'static str> = None;

    fn text(self, text: Cow<'de, str>) -> Option<Self::Out> {
        Some(text)
    }
}

#[derive(Clone, Copy)]
struct Boolean;

impl<'de> Shape<'de> for Boolean {
    type Out = bool;
    const WRONG: Option<&'static str> = Some("is not a boolean");

    fn boolean(self, value: bool) -> Option<bool> {
        Some(value)
    }
}

#[derive(Clone, Copy)]
struct PodShape;

impl<'de> Shape<'de> for PodShape {
    type Out = Pod<'de>;
    const WRONG: Option<&'static str> = None; // the review says the object is not an object

    fn map<A: MapAccess<'de>>(
        self,
        map: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Pod<'de>>, A::Error> {
        let mut pod = Pod::default();
        fields(map, &["metadata", "spec"], |index, map| {
            let field = At::Field(at, ["metadata", "spec"][index]);
            if index == 0 {
                pod.metadata =
                    map.next_value_seed(Read { shape: MetadataShape, at: field, problems })?.value();
            } else {
                pod.spec = map.next_value_seed(Read { shape: SpecShape, at: field, problems })?.value();
            }
            Ok(())
        })?;
        Ok(Some(pod))
    }
}

#[derive(Clone, Copy)]
struct MetadataShape;

impl<'de> Shape<'de> for MetadataShape {
    type Out = Metadata<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(
        self,
        map: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Metadata<'de>>, A::Error> {
        const FIELDS: [&str; 5] = ["name", "generateName", "namespace", "labels", "annotations"];
        let mut metadata = Metadata::default();
        fields(map, &FIELDS, |index, map| {
            let at = At::Field(at, FIELDS[index]);
            let text = || Read { shape: AnyText, at, problems };
            let strings = || Read { shape: StringMap, at, problems };
            match index {
                0 => metadata.name = map.next_value_seed(text())?.value(),
                1 => metadata.generate_name = map.next_value_seed(text())?.value(),
                2 => metadata.namespace = map.next_value_seed(text())?.value(),
                3 => metadata.labels = map.next_value_seed(strings())?.value(),
                _ => metadata.annotations = map.next_value_seed(strings())?.value(),
            }
            Ok(())
        })?;
        Ok(Some(metadata))
    }
}

/// Labels or annotations: a map of strings.
#[derive(Clone, Copy)]
struct StringMap;

impl<'de> Shape<'de> for StringMap {
    type Out = Vec<(Cow<'de, str>, Cow<'de, str>)>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(
        self,
        mut map: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Self::Out>, A::Error> {
        let mut pairs = Vec::new();
        while let Some(key) = map.next_key_seed(Read { shape: AnyText, at: *at, problems })? {
            // serde_json only gives strings for keys.
            let key = key.value().unwrap_or_default();
            let at = At::Field(at, &key);
            match map.next_value_seed(Read { shape: Text, at, problems })? {
                Got::Value(value) => pairs.push((key, value)),
                Got::Absent => problems.report(|| format!("{at} is not a string")),
                Got::Wrong => {}
            }
        }
        Ok(Some(pairs))
    }
}

#[derive(Clone, Copy)]
struct SpecShape;

impl<'de> Shape<'de> for SpecShape {
    type Out = Spec<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(
        self,
        map: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Spec<'de>>, A::Error> {
        const FIELDS: [&str; 6] = [
            "hostNetwork",
            "serviceAccountName",
            "containers",
            "initContainers",
            "ephemeralContainers",
            "volumes",
        ];
        let mut spec = Spec::default();
        fields(map, &FIELDS, |index, map| {
            let at = At::Field(at, FIELDS[index]);
            let names = || Read { shape: List(Key("name")), at, problems };
            match index {
                0 => {
                    spec.host_network =
                        map.next_value_seed(Read { shape: Boolean, at, problems })?.value() == Some(true)
                }
                1 => {
                    spec.service_account_name =
                        map.next_value_seed(Read { shape: Text, at, problems })?.value()
                }
                2 => {
                    spec.containers =
                        map.next_value_seed(Read { shape: List(ContainerShape), at, problems })?.value()
                }
                3 => spec.init_containers = map.next_value_seed(names())?.value(),
                4 => spec.ephemeral_containers = map.next_value_seed(names())?.value(),
                _ => spec.volumes = map.next_value_seed(names())?.value(),
            }
            Ok(())
        })?;
        Ok(Some(spec))
    }
}

/// A list, each item read as the shape; an item that is not an object is reported as such.
#[derive(Clone, Copy)]
struct List<S>(S);

impl<'de, S: Shape<'de>> Shape<'de> for List<S> {
    type Out = Vec<S::Out>;
    const WRONG: Option<&'static str> = Some("is not a list");

    fn seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Self::Out>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let item_at = At::Item(at, items.len());
            match seq.next_element_seed(Read { shape: self.0, at: item_at, problems })? {
                None => return Ok(Some(items)),
                Some(Got::Value(item)) => items.push(item),
                Some(Got::Absent) => {
                    problems.report(|| format!("{item_at} {}", S::WRONG.unwrap_or_default()));
                    return drain_seq(seq).map(|()| Some(items));
                }
                Some(Got::Wrong) => return drain_seq(seq).map(|()| Some(items)),
            }
        }
    }
}

/// An item of a list reduced to one of its string fields: a volume to its name, a mount to its
/// path. This keeps a Pod with thousands of env vars cheap: one string each.
#[derive(Clone, Copy)]
struct Key(&'static str);

impl<'de> Shape<'de> for Key {
    type Out = Cow<'de, str>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(
        self,
        map: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Self::Out>, A::Error> {
        let mut key = None;
        fields(map, &[self.0], |_, map| {
            key = map.next_value_seed(Read { shape: AnyText, at: *at, problems })?.value();
            Ok(())
        })?;
        if key.is_none() {
            problems.report(|| format!("{at}.{} is missing or not a string", self.0));
        }
        Ok(Some(key.unwrap_or_default()))
    }
}

#[derive(Clone, Copy)]
struct ContainerShape;

impl<'de> Shape<'de> for ContainerShape {
    type Out = Container<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(
        self,
        map: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Container<'de>>, A::Error> {
        const FIELDS: [&str; 3] = ["name", "env", "volumeMounts"];
        let (mut name, mut container) = (None, Container::default());
        fields(map, &FIELDS, |index, map| {
            let at = At::Field(at, FIELDS[index]);
            match index {
                0 => name = map.next_value_seed(Read { shape: AnyText, at, problems })?.value(),
                1 => {
                    container.env =
                        map.next_value_seed(Read { shape: List(Key("name")), at, problems })?.value()
                }
                _ => {
                    let paths = Read { shape: List(Key("mountPath")), at, problems };
                    container.volume_mounts = map.next_value_seed(paths)?.value();
                }
            }
            Ok(())
        })?;
        match name {
            Some(name) => container.name = name,
            None => problems.report(|| format!("{at}.name is missing or not a string")),
        }
        Ok(Some(container))
    }
}

/// Matches an object key against the fields read without allocating it. (As a string: serde_json
/// reads a key asked for as bytes without its check for control characters, which JSON forbids
/// in strings; found by the `review_bytes` fuzz target.)
struct FieldIndex<'f>(&'f [&'f str]);

impl<'de> DeserializeSeed<'de> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|name| *name == key))
    }
}

/// The app containers of the review's Pod with their env vars (name, value, valueFrom) and mounts,
/// in the Pod's order, as JSON; empty when the body has none to read (the first pass has refused
/// any body or Pod this could not read).
pub(crate) fn app_values(body: &[u8]) -> Vec<Value> {
    #[derive(Deserialize)]
    struct Review {
        request: Option<Request>,
    }
    #[derive(Deserialize)]
    struct Request {
        object: Option<Object>,
    }
    #[derive(Deserialize)]
    struct Object {
        spec: Option<Spec>,
    }
    #[derive(Deserialize)]
    struct Spec {
        containers: Option<Vec<App>>,
    }
    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct App {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<Vec<EnvVar>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        volume_mounts: Option<Vec<Value>>,
    }
    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct EnvVar {
        name: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value_from: Option<Value>,
    }
    let read: Option<Review> = serde_json::from_slice(body).ok();
    let containers = read.and_then(|r| r.request?.object?.spec?.containers).unwrap_or_default();
    containers.into_iter().map(|app| serde_json::to_value(app).expect("JSON values serialize")).collect()
}

/// `object` read as the skeleton of a Pod, for tests (the text is leaked).
#[cfg(test)]
pub(crate) fn skeleton(object: Value) -> Pod<'static> {
    let text: &'static str = Box::leak(object.to_string().into_boxed_str());
    match self::object(&mut serde_json::Deserializer::from_str(text)).unwrap() {
        Some(Object::Pod(pod)) => *pod,
        other => panic!("not a Pod: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_what_injection_reads_and_list_lengths() {
        let pod = skeleton(json!({
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
        }));
        assert_eq!(pod.malformed, None);
        let metadata = pod.metadata.unwrap();
        assert_eq!(metadata.name.as_deref(), Some("a"));
        assert_eq!(metadata.labels.unwrap(), [(Cow::Borrowed("x"), Cow::Borrowed("y"))]);
        assert!(metadata.annotations.is_none());
        let spec = pod.spec.unwrap();
        assert!(spec.host_network);
        let containers = spec.containers.unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!((containers[0].name.as_ref(), containers[1].name.as_ref()), ("app", "two"));
        assert_eq!(containers[0].env.as_deref(), Some(&[Cow::Borrowed("A")][..]));
        assert_eq!(containers[0].volume_mounts.as_deref(), Some(&[Cow::Borrowed("/v")][..]));
        assert!(containers[1].env.is_none());
        assert_eq!(spec.volumes.unwrap(), ["v"]);
        assert!(spec.init_containers.is_none());
    }

    #[test]
    fn names_the_first_field_of_the_wrong_shape() {
        let cases = [
            (json!({"metadata": "m"}), "metadata is not an object"),
            (json!({"spec": {"containers": {"name": "x"}}}), "spec.containers is not a list"),
            (json!({"spec": {"volumes": [5]}}), "spec.volumes[0] is not an object"),
            (json!({"spec": {"volumes": [{"name": 1}]}}), "spec.volumes[0].name is missing or not a string"),
            (json!({"spec": {"volumes": [{}]}}), "spec.volumes[0].name is missing or not a string"),
            (json!({"spec": {"containers": [null]}}), "spec.containers[0] is not an object"),
            (
                json!({"spec": {"containers": [{"env": []}]}}),
                "spec.containers[0].name is missing or not a string",
            ),
            (json!({"metadata": {"labels": {"a": null}}}), "metadata.labels.a is not a string"),
            (json!({"spec": {"hostNetwork": "yes"}}), "spec.hostNetwork is not a boolean"),
        ];
        for (object, message) in cases {
            assert_eq!(skeleton(object.clone()).malformed.as_deref(), Some(message), "{object}");
        }
    }

    #[test]
    fn escaped_strings_are_read_unescaped() {
        let pod = skeleton(json!({"metadata": {"labels": {"a\"b": "c\\d"}}}));
        assert_eq!(pod.metadata.unwrap().labels.unwrap(), [(Cow::Borrowed("a\"b"), Cow::Borrowed("c\\d"))]);
    }
}
