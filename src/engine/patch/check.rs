//! The patch checked before it is answered: its operations applied, path by path, to a typed
//! outline of the Pod, and compared with the plan applied directly by separate code.

use std::borrow::Cow;

use json_patch::jsonptr::{Pointer, Token};
use litemap::LiteMap;

use super::{Add, Added};
use crate::plan::{AddedEntries, Plan};
use crate::pod_view::PodView;
use crate::template::Rendered;

/// Apply `ops` to the Pod in `view` and check that the result is `plan` applied directly.
///
/// Both are applied to the Pod's [`PodOutline`]. Each item the plan adds (a container, a volume …)
/// stands in both renderings for a token that names that very item; labels and annotations are
/// themselves. So the check compares where each item went, which is what `operations` decides,
/// without copying a template; the items' own content is written from the plan by `serde_json` as
/// it is. The operations' paths are read back as JSON Pointers, token by token (RFC 6901, by
/// `jsonptr`), and each `add` follows RFC 6902: a map's key is set, a list's item inserted at its
/// index or appended at `-`, and any parent it needs must be there.
pub(crate) fn verify(view: &PodView, plan: &Plan, ops: &[Add]) -> Result<(), String> {
    let mut pod = PodOutline::of(view, plan);
    let mut intended = pod.clone();
    intended.apply_directly(plan);
    for op in ops {
        pod.add(op).map_err(|why| format!("the patch does not apply to the Pod: {why}"))?;
    }
    if pod != intended {
        return Err("the patched Pod is not the intended Pod".into());
    }
    Ok(())
}

/// The Pod as far as a patch can reach it with `add`: its metadata maps with their keys (values
/// do not matter to an `add`), and its lists with as many items as the Pod's, the app containers
/// with their env and mount lists when the plan adds to them. Every path our patches use is here
/// as in the Pod; a patch that strays elsewhere fails to apply or to compare.
#[derive(Debug, Clone, PartialEq)]
struct PodOutline<'a> {
    metadata: Option<MetadataOutline<'a>>,
    init_containers: Option<Vec<Item>>,
    containers: Option<Vec<ContainerOutline>>,
    volumes: Option<Vec<Item>>,
    image_pull_secrets: Option<Vec<Item>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct MetadataOutline<'a> {
    labels: Option<MapOutline<'a>>,
    annotations: Option<MapOutline<'a>>,
}

/// A labels or annotations map: each key with its value when it is ours (`None` for the Pod's
/// own, which no `add` reads). A sorted vector, not a `BTreeMap`: a Pod has a handful of each, and
/// tree nodes cost more to build, copy and compare than the few keys do.
type MapOutline<'a> = LiteMap<Cow<'a, str>, Option<&'a str>>;

/// An item of a list: one of the Pod's own, or one we add, as its token.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Pods,
    Ours(usize),
}

#[derive(Debug, Clone, PartialEq)]
struct ContainerOutline {
    item: Item,
    env: Option<Vec<Item>>,
    volume_mounts: Option<Vec<Item>>,
}

/// What stands for `item` in [`verify`]: its address in the plan, the same in both renderings.
fn token(item: &Rendered) -> Item {
    Item::Ours(std::ptr::from_ref(item) as usize)
}

fn tokens(items: &[Rendered]) -> impl Iterator<Item = Item> {
    items.iter().map(token)
}

fn texts<'a>(pairs: &'a AddedEntries<'a>) -> MapOutline<'a> {
    pairs.iter().map(|(k, v)| (Cow::Borrowed(*k), Some(v.as_ref()))).collect()
}

impl<'a> PodOutline<'a> {
    fn of(view: &PodView<'a>, plan: &Plan) -> Self {
        let keys = |pairs: &'a [(Cow<'a, str>, Cow<'a, str>)]| -> MapOutline<'a> {
            pairs.iter().map(|(k, _)| (Cow::Borrowed(k.as_ref()), None)).collect()
        };
        let pods = |count: usize| vec![Item::Pods; count];
        let lists = !plan.app_containers.is_empty();
        let containers = (0..view.containers.len()).map(|i| {
            // Not read when no profile adds to them: then a patch that does fails the check.
            let own = view.app_lists.get(i).filter(|_| lists);
            ContainerOutline {
                item: Item::Pods,
                env: own.and_then(|o| o.env.as_ref()).map(|env| pods(env.len())),
                volume_mounts: own.and_then(|o| o.volume_mounts.as_ref()).map(|mounts| pods(mounts.len())),
            }
        });
        PodOutline {
            metadata: view.has.metadata.then(|| MetadataOutline {
                labels: view.has.labels.then(|| keys(view.labels())),
                annotations: view.has.annotations.then(|| keys(view.annotations())),
            }),
            init_containers: view.has.init_containers.then(|| pods(view.init_container_count())),
            containers: view.has.containers.then(|| containers.collect()),
            volumes: view.has.volumes.then(|| pods(view.volume_count())),
            image_pull_secrets: view.has.image_pull_secrets.then(|| pods(view.image_pull_secrets.len())),
        }
    }

    /// The plan applied by plain mutation, each item as its [`token`]: the reference the patch is
    /// checked against.
    fn apply_directly(&mut self, plan: &'a Plan) {
        if !plan.labels.is_empty() || !plan.annotations.is_empty() {
            let metadata = self.metadata.get_or_insert_default();
            for (map, pairs) in
                [(&mut metadata.labels, &plan.labels), (&mut metadata.annotations, &plan.annotations)]
            {
                if !pairs.is_empty() {
                    map.get_or_insert_default().extend(texts(pairs));
                }
            }
        }
        if !plan.init_containers.is_empty() {
            self.init_containers.get_or_insert_default().splice(0..0, tokens(&plan.init_containers));
        }
        if !plan.containers.is_empty() {
            let added = tokens(&plan.containers).map(ContainerOutline::ours);
            self.containers.get_or_insert_default().extend(added);
        }
        for (list, items) in
            [(&mut self.volumes, &plan.volumes), (&mut self.image_pull_secrets, &plan.image_pull_secrets)]
        {
            if !items.is_empty() {
                list.get_or_insert_default().extend(tokens(items));
            }
        }
        let containers = self.containers.iter_mut().flatten();
        for (container, added) in containers.zip(&plan.app_containers) {
            for (list, items) in
                [(&mut container.env, &added.env), (&mut container.volume_mounts, &added.volume_mounts)]
            {
                if !items.is_empty() {
                    list.get_or_insert_default().extend(tokens(items));
                }
            }
        }
    }

    /// One operation, read from its path as a patch's reader reads it.
    fn add(&mut self, op: &Add<'a>) -> Result<(), String> {
        // In arrays, not vectors: no allocation per operation.
        let mut raw: [Option<Token>; DEEPEST] = Default::default();
        let mut depth = 0;
        let path = Pointer::parse(&op.path).map_err(|e| format!("{} is not a JSON Pointer: {e}", op.path))?;
        for token in path.tokens() {
            *raw.get_mut(depth).ok_or_else(|| unknown(op))? = Some(token);
            depth += 1;
        }
        let decoded: [Cow<str>; DEEPEST] =
            std::array::from_fn(|i| raw[i].as_ref().map_or(Cow::Borrowed(""), Token::decoded));
        let path: [&str; DEEPEST] = std::array::from_fn(|i| decoded[i].as_ref());
        let missing = || format!("{} has no parent in the Pod", op.path);
        match (&path[..depth], &op.value) {
            (["metadata"], Added::Metadata { labels, annotations }) => {
                let map = |pairs: &'a AddedEntries<'a>| (!pairs.is_empty()).then(|| texts(pairs));
                self.metadata = Some(MetadataOutline { labels: map(labels), annotations: map(annotations) });
            }
            (["metadata", field], Added::Entries(pairs)) => {
                let metadata = self.metadata.as_mut().ok_or_else(missing)?;
                *metadata.map(field).ok_or_else(|| unknown(op))? = Some(texts(pairs));
            }
            (["metadata", field, key], Added::Entry(text)) => {
                let metadata = self.metadata.as_mut().ok_or_else(missing)?;
                let map = metadata.map(field).ok_or_else(|| unknown(op))?.as_mut().ok_or_else(missing)?;
                map.insert(Cow::Owned((*key).to_owned()), Some(text));
            }
            (["spec", "containers"], Added::Items(items)) => {
                self.containers = Some(tokens(items).map(ContainerOutline::ours).collect());
            }
            (["spec", field], Added::Items(items)) => {
                *self.list(field).ok_or_else(|| unknown(op))? = Some(tokens(items).collect());
            }
            (["spec", "containers", at], Added::Item(item)) => {
                let containers = self.containers.as_mut().ok_or_else(missing)?;
                containers.insert(index(at, containers.len(), op)?, ContainerOutline::ours(token(item)));
            }
            (["spec", field, at], Added::Item(item)) => {
                let list = self.list(field).ok_or_else(|| unknown(op))?.as_mut().ok_or_else(missing)?;
                list.insert(index(at, list.len(), op)?, token(item));
            }
            (["spec", "containers", which, field, rest @ ..], value) => {
                let containers = self.containers.as_mut().ok_or_else(missing)?;
                let which = Token::new(*which).to_index().ok().and_then(|i| i.for_len(containers.len()).ok());
                let container = &mut containers[which.ok_or_else(missing)?];
                if container.item != Item::Pods {
                    return Err(unknown(op));
                }
                let list = container.list(field).ok_or_else(|| unknown(op))?;
                match (rest, value) {
                    ([], Added::Items(items)) => *list = Some(tokens(items).collect()),
                    ([at], Added::Item(item)) => {
                        let list = list.as_mut().ok_or_else(missing)?;
                        list.insert(index(at, list.len(), op)?, token(item));
                    }
                    _ => return Err(unknown(op)),
                }
            }
            _ => return Err(unknown(op)),
        }
        Ok(())
    }

    fn list(&mut self, field: &str) -> Option<&mut Option<Vec<Item>>> {
        match field {
            "initContainers" => Some(&mut self.init_containers),
            "volumes" => Some(&mut self.volumes),
            "imagePullSecrets" => Some(&mut self.image_pull_secrets),
            _ => None,
        }
    }
}

impl<'a> MetadataOutline<'a> {
    fn map(&mut self, field: &str) -> Option<&mut Option<MapOutline<'a>>> {
        match field {
            "labels" => Some(&mut self.labels),
            "annotations" => Some(&mut self.annotations),
            _ => None,
        }
    }
}

impl ContainerOutline {
    fn ours(item: Item) -> Self {
        ContainerOutline { item, env: None, volume_mounts: None }
    }

    fn list(&mut self, field: &str) -> Option<&mut Option<Vec<Item>>> {
        match field {
            "env" => Some(&mut self.env),
            "volumeMounts" => Some(&mut self.volume_mounts),
            _ => None,
        }
    }
}

/// The most tokens in a path our patches write (`/spec/containers/0/env/-`); a longer one is
/// refused as a place they never add to.
const DEEPEST: usize = 5;

/// Where in a list of `len` items an `add` at `token` inserts: an index up to `len`, or `-`.
fn index(token: &str, len: usize, op: &Add) -> Result<usize, String> {
    let index = Token::new(token).to_index().map_err(|e| format!("{}: {e}", op.path))?;
    index.for_len_incl(len).map_err(|e| format!("{}: {e}", op.path))
}

/// A path, or a value at it, that our patches never write.
fn unknown(op: &Add) -> String {
    format!("{} is not a place our patches add {}", op.path, op.value.kind())
}

impl Added<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Added::Item(_) => "an item to",
            Added::Items(_) => "a list to",
            Added::Entry(_) => "a text to",
            Added::Entries(_) => "a map to",
            Added::Metadata { .. } => "metadata to",
        }
    }
}

#[cfg(test)]
mod tests;
