//! A [`Plan`] rendered as JSON Patch, and checked.
//!
//! The patch is built from the few additions the plan lists, never by diffing whole Pods (what made
//! Istio's injection slow on large Pods, istio/istio#34799), so its cost grows with what we add,
//! not with the Pod. Every operation is an `add`:
//! - a missing (or `null`) parent is created whole, with everything that goes in it;
//! - an existing map gains keys, an existing list gains items; nothing is replaced wholesale;
//! - every path is built from tokens, so `/` and `~` in keys are escaped per RFC 6901.
//!
//! [`verify`] (in `check`) applies the patch, path by path, to a typed outline of the Pod, and
//! compares the result with the same plan applied directly by separate code. The two renderings
//! must agree; if they ever do not, it is a bug, and the review fails instead of answering a wrong
//! patch.

use json_patch::jsonptr::Token;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::plan::{AddedEntries, Plan};
use super::pod_view::PodView;
use super::template::Rendered;

mod check;

pub(crate) use check::verify;

/// One `add` operation, its value borrowed from the plan: the patch is written straight from the
/// configuration's templates, never copied on the way. `path` is a JSON Pointer as written (see
/// [`pointer`]); `verify` reads it back with jsonptr.
#[derive(Debug)]
pub(crate) struct Add<'p> {
    path: String,
    value: Added<'p>,
}

/// What an [`Add`] adds.
#[derive(Debug)]
enum Added<'p> {
    /// One item of a list.
    Item(&'p Rendered<'p>),
    /// A whole list, where the Pod has none.
    Items(&'p [Rendered<'p>]),
    /// One label or annotation.
    Entry(&'p str),
    /// A whole labels or annotations map, where the Pod has none.
    Entries(&'p AddedEntries<'p>),
    /// `metadata`, where the Pod has none: its labels and annotations.
    Metadata { labels: &'p AddedEntries<'p>, annotations: &'p AddedEntries<'p> },
}

/// The JSON Patch for `plan`, against the Pod it was planned for.
pub(crate) fn operations<'p>(plan: &'p Plan, view: &PodView) -> Vec<Add<'p>> {
    let mut ops = Vec::new();
    let (labels, annotations) = (&plan.labels[..], &plan.annotations[..]);
    if !view.has.metadata {
        if !labels.is_empty() || !annotations.is_empty() {
            add(&mut ops, pointer(&[Token::new("metadata")]), Added::Metadata { labels, annotations });
        }
    } else {
        for (field, entries, has) in
            [("labels", labels, view.has.labels), ("annotations", annotations, view.has.annotations)]
        {
            if entries.is_empty() {
                continue;
            }
            let at = [Token::new("metadata"), Token::new(field)];
            if has {
                for (key, value) in entries {
                    add(&mut ops, pointer(at.iter().chain([&Token::new(*key)])), Added::Entry(value));
                }
            } else {
                add(&mut ops, pointer(&at), Added::Entries(entries));
            }
        }
    }

    let spec_at = [Token::new("spec")];
    let has = view.has;
    add_items(&mut ops, has.init_containers, &spec_at, "initContainers", &plan.init_containers, Where::Front);
    add_items(&mut ops, has.containers, &spec_at, "containers", &plan.containers, Where::End);
    add_items(&mut ops, has.volumes, &spec_at, "volumes", &plan.volumes, Where::End);
    let secrets = &plan.image_pull_secrets;
    add_items(&mut ops, has.image_pull_secrets, &spec_at, "imagePullSecrets", secrets, Where::End);
    for (index, (added, app)) in plan.app_containers.iter().zip(view.containers).enumerate() {
        let at = [Token::from("spec"), Token::from("containers"), Token::from(index)];
        add_items(&mut ops, app.env.is_some(), &at, "env", &added.env, Where::End);
        add_items(
            &mut ops,
            app.volume_mounts.is_some(),
            &at,
            "volumeMounts",
            &added.volume_mounts,
            Where::End,
        );
    }
    ops
}

/// `ops` as a JSON Patch document.
pub(crate) fn to_json(ops: &[Add]) -> Vec<u8> {
    let mut json = Vec::with_capacity(1024);
    serde_json::to_writer(&mut json, ops).expect("patches always serialize");
    json
}

impl Serialize for Add<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut op = serializer.serialize_map(Some(3))?;
        op.serialize_entry("op", "add")?;
        op.serialize_entry("path", self.path.as_str())?;
        op.serialize_entry("value", &self.value)?;
        op.end()
    }
}

impl Serialize for Added<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct EntryMap<'a>(&'a AddedEntries<'a>);
        impl Serialize for EntryMap<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
            }
        }
        match self {
            Added::Item(item) => item.serialize(serializer),
            Added::Items(items) => {
                let mut list = serializer.serialize_seq(Some(items.len()))?;
                for item in *items {
                    list.serialize_element(item)?;
                }
                list.end()
            }
            Added::Entry(text) => serializer.serialize_str(text),
            Added::Entries(pairs) => EntryMap(pairs).serialize(serializer),
            Added::Metadata { labels, annotations } => {
                let mut metadata = serializer.serialize_map(None)?;
                for (field, pairs) in [("labels", labels), ("annotations", annotations)] {
                    if !pairs.is_empty() {
                        metadata.serialize_entry(field, &EntryMap(pairs))?;
                    }
                }
                metadata.end()
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Where {
    Front,
    End,
}

fn add_items<'p>(
    ops: &mut Vec<Add<'p>>,
    present: bool,
    parent_at: &[Token],
    field: &str,
    items: &'p [Rendered<'p>],
    at: Where,
) {
    if items.is_empty() {
        return;
    }
    let field = Token::new(field);
    let list_at = || parent_at.iter().chain([&field]);
    if !present {
        add(ops, pointer(list_at()), Added::Items(items));
        return;
    }
    for (i, item) in items.iter().enumerate() {
        // Inserting at 0, 1, 2 … keeps our items in order, ahead of the Pod's own.
        let token = match at {
            Where::Front => Token::from(i),
            Where::End => Token::from("-"),
        };
        add(ops, pointer(list_at().chain([&token])), Added::Item(item));
    }
}

fn add<'p>(ops: &mut Vec<Add<'p>>, path: String, value: Added<'p>) {
    ops.push(Add { path, value });
}

/// The JSON Pointer of `tokens` (RFC 6901), each escaped by jsonptr, written into one string of its
/// size: jsonptr's `PointerBuf` grows its string token by token, and that with the copies of a
/// parent's path to extend was 13 of the typical review's 66 allocations and reallocations.
fn pointer<'t>(tokens: impl IntoIterator<Item = &'t Token<'t>, IntoIter: Clone>) -> String {
    let tokens = tokens.into_iter();
    let mut path = String::with_capacity(tokens.clone().map(|t| 1 + t.encoded().len()).sum());
    for token in tokens {
        path.push('/');
        path.push_str(token.encoded());
    }
    path
}
