//! No file in `src/` depends on a file that depends on it back.
//!
//! A dependency is a path that goes up or across the module tree (`crate::…`, `super::…`, in a
//! `use` or inline); a module naming its own children is ownership, not dependency. A path is
//! charged to the deepest module file it reaches, so `super::plan::name_of` from `resolve.rs` is a
//! dependency of `resolve.rs` on `plan.rs`. `cargo test --test layout -- --nocapture` prints the
//! graph's circles, if any.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One crate's files, by module path (`["patch", "check"]` for `patch/check.rs`).
struct Crate {
    modules: BTreeMap<Vec<String>, PathBuf>,
}

impl Crate {
    /// The crate whose root is `root` (`mod.rs`, `lib.rs` or `main.rs`) and whose modules are the
    /// `.rs` files below its folder, other crates' folders left out.
    fn read(root: &Path, skip: &[&Path]) -> Crate {
        let folder = root.parent().unwrap();
        let mut modules = BTreeMap::from([(Vec::new(), root.to_owned())]);
        let mut files = Vec::new();
        files_under(folder, skip, &mut files);
        for file in files.into_iter().filter(|f| f != root && f.extension().is_some_and(|e| e == "rs")) {
            let relative = file.strip_prefix(folder).unwrap().with_extension("");
            let mut path: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_str().unwrap().to_owned()).collect();
            if path.last().is_some_and(|last| last == "mod") {
                path.pop();
            }
            modules.insert(path, file);
        }
        Crate { modules }
    }

    /// Each file's dependencies on the crate's other files.
    fn edges(&self) -> BTreeMap<&PathBuf, BTreeSet<&PathBuf>> {
        let mut edges = BTreeMap::new();
        for (module, file) in &self.modules {
            let text = std::fs::read_to_string(file).unwrap();
            let targets: BTreeSet<&PathBuf> = paths_in(&text)
                .into_iter()
                .filter_map(|path| self.resolve(module, &path))
                .filter(|target| *target != file)
                .collect();
            edges.insert(file, targets);
        }
        edges
    }

    /// The file a path from `module` reaches, when it goes up or across.
    fn resolve(&self, module: &[String], path: &[String]) -> Option<&PathBuf> {
        let mut at: Vec<String> = match path.first()?.as_str() {
            "crate" => Vec::new(),
            "super" => module[..module.len().checked_sub(1)?].to_vec(),
            _ => return None,
        };
        let mut rest = &path[1..];
        while rest.first().is_some_and(|s| s == "super") {
            at.pop();
            rest = &rest[1..];
        }
        let mut reached = self.modules.get(&at);
        for segment in rest {
            at.push(segment.clone());
            match self.modules.get(&at) {
                Some(file) => reached = Some(file),
                None => break,
            }
        }
        reached
    }
}

fn files_under(dir: &Path, skip: &[&Path], out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if skip.contains(&path.as_path()) {
            continue;
        }
        if path.is_dir() { files_under(&path, skip, out) } else { out.push(path) }
    }
}

/// Every `crate::…` and `super::…` path in `text`, with `use` groups (`{a, b::c}`) expanded.
fn paths_in(text: &str) -> Vec<Vec<String>> {
    let code: String = text.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n");
    let mut paths = Vec::new();
    let mut rest = code.as_str();
    let mut before = ' ';
    while let Some(c) = rest.chars().next() {
        let starts = (rest.starts_with("crate::") || rest.starts_with("super::"))
            && !(before.is_alphanumeric() || before == '_' || before == ':');
        if !starts {
            before = c;
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let end = path_end(rest);
        expand(&rest[..end], &mut paths);
        before = ' ';
        rest = &rest[end..];
    }
    paths
}

/// The length of the path at the start of `text`, a `use` group's braces included.
fn path_end(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if depth > 0 || c.is_alphanumeric() || c == '_' || c == ':' => {}
            _ => return i,
        }
    }
    text.len()
}

/// `a::{b, c::{d}}` as `a::b`, `a::c::d`; each path split at `::`.
fn expand(path: &str, out: &mut Vec<Vec<String>>) {
    let Some(open) = path.find('{') else {
        let segments: Vec<String> =
            path.split("::").filter(|s| !s.is_empty() && *s != "self").map(str::to_owned).collect();
        out.push(segments);
        return;
    };
    let (prefix, group) = (&path[..open], &path[open + 1..path.rfind('}').unwrap_or(path.len())]);
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in group.char_indices().chain([(group.len(), ',')]) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                let item = group[start..i.min(group.len())].trim();
                if !item.is_empty() {
                    expand(&format!("{prefix}{item}"), out);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
}

/// The circles of `edges`: its strongly connected components of more than one file.
fn circles<'a>(edges: &BTreeMap<&'a PathBuf, BTreeSet<&'a PathBuf>>) -> Vec<Vec<&'a PathBuf>> {
    let reaches = |from: &'a PathBuf| {
        let mut seen = BTreeSet::from([from]);
        let mut stack = vec![from];
        while let Some(file) = stack.pop() {
            for next in edges.get(file).into_iter().flatten() {
                if seen.insert(*next) {
                    stack.push(next);
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&PathBuf, BTreeSet<&PathBuf>> = edges.keys().map(|f| (*f, reaches(f))).collect();
    let mut found: Vec<Vec<&PathBuf>> = Vec::new();
    for file in edges.keys() {
        let circle: Vec<&PathBuf> =
            reach[file].iter().filter(|other| reach[*other].contains(file)).copied().collect();
        if circle.len() > 1 && !found.contains(&circle) {
            found.push(circle);
        }
    }
    found
}

#[test]
fn no_file_depends_on_a_file_that_depends_on_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let crates = [
        Crate::read(&src.join("engine/mod.rs"), &[]),
        Crate::read(&src.join("lib.rs"), &[&src.join("engine"), &src.join("bin")]),
        Crate::read(&src.join("bin/sidecar-injector/main.rs"), &[]),
    ];
    let mut all = Vec::new();
    for krate in &crates {
        let edges = krate.edges();
        for circle in circles(&edges) {
            let names: Vec<String> =
                circle.iter().map(|f| f.strip_prefix(&src).unwrap().display().to_string()).collect();
            println!("circle: {}", names.join(" <-> "));
            all.push(names);
        }
    }
    assert!(all.is_empty(), "files that depend on each other: {all:?}");
}
